//! Streaming writer: constant memory (beyond the interned-string table), no
//! allocation per record, whole frames only.
//!
//! Records are encoded into a reused frame buffer; when it reaches the frame target
//! (64 KiB by default) the frame is sealed (length + CRC) and handed to the
//! underlying writer in one `write_all`. Pending strings and layers always go out
//! before the events frame that may refer to them, so a file cut at any frame
//! boundary is a valid trace.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};

use crate::format::{
    preamble, put_ivarint, put_str, put_uvarint, seal_frame, tag, FrameKind, Version, FRAME_HEADER_LEN,
    MAX_FRAME_PAYLOAD, MAX_RECORD_LEN, MAX_SITES_PER_FRAME,
};
use crate::records::*;

/// Writer tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// An events (or strings/layers) frame is closed once its payload reaches this
    /// many bytes. Smaller loses less on a crash, larger compresses a little better.
    /// Clamped to 64 B ..= 1 MiB.
    pub frame_target_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { frame_target_bytes: crate::format::DEFAULT_FRAME_TARGET }
    }
}

/// Per-frame delta bases; all reset at the start of each events frame so every
/// frame decodes on its own.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Regs {
    pub kernel_end: u64,
    pub sample_t: u64,
    pub iteration: u32,
    pub correlation: u32,
    /// Correlation-id step of the previous kernel record (1 at frame start).
    pub corr_step: u32,
    pub energy_mj: u64,
}

impl Regs {
    pub(crate) fn new(base_t: u64) -> Regs {
        Regs { kernel_end: base_t, sample_t: base_t, corr_step: 1, ..Regs::default() }
    }
}

/// Writes a trace to any `io::Write` (a `File`, a `Vec<u8>`, a socket).
///
/// ```
/// use cnnergy_traces::{Header, TraceWriter, Event, PowerSample};
/// let mut w = TraceWriter::new(Vec::new(), &Header::default()).unwrap();
/// let sensor = w.intern("nvml.power_usage").unwrap();
/// w.power(&PowerSample { t_ns: 1_000, sensor, power_mw: 250_000 }).unwrap();
/// let bytes = w.finish().unwrap();
/// let trace = cnnergy_traces::Trace::parse(&bytes).unwrap();
/// assert!(trace.is_complete());
/// ```
///
/// Dropping a writer without [`finish`](Self::finish) flushes whole frames but
/// writes no summary, so readers report the trace as cut short.
pub struct TraceWriter<W: Write> {
    out: Option<W>,
    // Each buffer is [FRAME_HEADER_LEN reserved bytes][payload]; the header is
    // filled in place so a frame reaches `out` in one write.
    events: Vec<u8>,
    strings_buf: Vec<u8>,
    layers_buf: Vec<u8>,
    scratch: Vec<u8>,
    frame_target: usize,
    strings: HashMap<Box<str>, StrId, FxBuild>,
    n_strings: u32,
    sites: HashMap<SiteKey, u32, FxBuild>,
    /// This frame's sites by index, and the last one used: launch sequences repeat
    /// every inference, so "the site after the previous one" is nearly always right
    /// and saves the hash lookup.
    site_list: Vec<KernelLaunch>,
    last_site: u32,
    regs: Regs,
    summary: Summary,
    any_event: bool,
    poisoned: bool,
}

impl<W: Write> TraceWriter<W> {
    /// Writes the preamble and the header frame; events can follow at once.
    pub fn new(out: W, header: &Header<'_>) -> io::Result<Self> {
        Self::with_options(out, header, WriterOptions::default())
    }

    pub fn with_options(mut out: W, header: &Header<'_>, opts: WriterOptions) -> io::Result<Self> {
        let frame_target = opts.frame_target_bytes.clamp(64, 1 << 20);
        let cap = FRAME_HEADER_LEN + frame_target + 2 * MAX_RECORD_LEN;
        let mut hdr = vec![0u8; FRAME_HEADER_LEN];
        encode_header(&mut hdr, header);
        if hdr.len() - FRAME_HEADER_LEN > MAX_FRAME_PAYLOAD as usize {
            return Err(invalid("header larger than the maximum frame payload"));
        }
        seal_frame(&mut hdr, FrameKind::HEADER);
        out.write_all(&preamble(Version::CURRENT))?;
        out.write_all(&hdr)?;
        let mut sites = HashMap::with_capacity_and_hasher(MAX_SITES_PER_FRAME, FxBuild::default());
        sites.insert(SiteKey(KernelLaunch::default()), 0); // pre-size the table, then empty it
        sites.clear();
        Ok(TraceWriter {
            out: Some(out),
            events: reserved(cap),
            strings_buf: reserved(cap),
            layers_buf: reserved(cap),
            scratch: Vec::with_capacity(256),
            frame_target,
            strings: HashMap::default(),
            n_strings: 0,
            sites,
            site_list: Vec::with_capacity(MAX_SITES_PER_FRAME),
            last_site: u32::MAX,
            regs: Regs::default(),
            summary: Summary::default(),
            any_event: false,
            poisoned: false,
        })
    }

    /// Returns the id of `s` in the string table, adding it on first use. Ids are
    /// dense from 0 in order of first use.
    pub fn intern(&mut self, s: &str) -> io::Result<StrId> {
        if let Some(&id) = self.strings.get(s) {
            return Ok(id);
        }
        self.check()?;
        if s.len() > MAX_FRAME_PAYLOAD as usize - 32 {
            return Err(invalid("string longer than the maximum frame payload"));
        }
        if self.n_strings == u32::MAX {
            return Err(invalid("string table full (2^32 - 1 strings)"));
        }
        if self.strings_buf.len() > FRAME_HEADER_LEN
            && self.strings_buf.len() - FRAME_HEADER_LEN + s.len() > self.frame_target
        {
            self.emit_strings()?;
        }
        let id = StrId(self.n_strings);
        if self.strings_buf.len() == FRAME_HEADER_LEN {
            put_uvarint(&mut self.strings_buf, id.0 as u64);
        }
        put_str(&mut self.strings_buf, s);
        self.n_strings += 1;
        self.strings.insert(s.into(), id);
        Ok(id)
    }

    /// Adds a layer to the layer table. Intern its strings first.
    pub fn layer(&mut self, layer: &Layer) -> io::Result<()> {
        self.check()?;
        self.scratch.clear();
        encode_layer(&mut self.scratch, layer);
        if self.scratch.len() > MAX_FRAME_PAYLOAD as usize - 16 {
            return Err(invalid("layer entry larger than the maximum frame payload"));
        }
        if self.layers_buf.len() > FRAME_HEADER_LEN
            && self.layers_buf.len() - FRAME_HEADER_LEN + self.scratch.len() > self.frame_target
        {
            self.emit_layers()?;
        }
        put_uvarint(&mut self.layers_buf, self.scratch.len() as u64);
        self.layers_buf.extend_from_slice(&self.scratch);
        Ok(())
    }

    /// Writes any event.
    pub fn event(&mut self, e: &Event) -> io::Result<()> {
        match e {
            Event::Kernel(k) => self.kernel(k),
            Event::Power(s) => self.power(s),
            Event::Energy(s) => self.energy(s),
            Event::Clocks(s) => self.clocks(s),
            Event::Temperature(s) => self.temperature(s),
            Event::Throttle(s) => self.throttle(s),
            Event::Marker(m) => self.marker(m),
            Event::Dropped(d) => self.dropped(d),
            Event::ClockSync(c) => self.clock_sync(c),
        }
    }

    pub fn kernel(&mut self, k: &KernelEvent) -> io::Result<()> {
        self.begin_record(k.start_ns)?;
        let guess = self.last_site.wrapping_add(1);
        let site = if self.site_list.get(guess as usize) == Some(&k.launch) {
            guess
        } else if let Some(&s) = self.sites.get(&SiteKey(k.launch)) {
            s
        } else {
            if self.site_list.len() >= MAX_SITES_PER_FRAME {
                self.emit_events()?;
                self.begin_record(k.start_ns)?;
            }
            let s = self.site_list.len() as u32;
            self.sites.insert(SiteKey(k.launch), s);
            self.site_list.push(k.launch);
            encode_site(&mut self.events, &k.launch);
            s
        };
        self.last_site = site;
        let b = &mut self.events;
        let r = &mut self.regs;
        // Within an inference the iteration repeats and correlation ids advance by a
        // constant step, so both usually cost only a flag bit in the tag.
        let d_iter = k.iteration.wrapping_sub(r.iteration);
        let d_corr = k.correlation_id.wrapping_sub(r.correlation);
        let mut t = tag::KERNEL;
        if d_iter != 0 {
            t |= tag::KERNEL_ITERATION;
        }
        if d_corr != r.corr_step {
            t |= tag::KERNEL_CORRELATION;
        }
        b.push(t);
        put_uvarint(b, site as u64);
        if d_iter != 0 {
            put_ivarint(b, d_iter as i32 as i64);
        }
        put_ivarint(b, k.start_ns.wrapping_sub(r.kernel_end) as i64);
        put_uvarint(b, k.duration_ns);
        if d_corr != r.corr_step {
            put_ivarint(b, d_corr as i32 as i64);
        }
        r.iteration = k.iteration;
        r.correlation = k.correlation_id;
        r.corr_step = d_corr;
        r.kernel_end = k.end_ns();
        self.account(EventKind::Kernel, k.start_ns, k.end_ns());
        Ok(())
    }

    pub fn power(&mut self, s: &PowerSample) -> io::Result<()> {
        self.sample(tag::POWER, s.t_ns)?;
        put_uvarint(&mut self.events, s.sensor.0 as u64);
        put_uvarint(&mut self.events, s.power_mw as u64);
        self.account(EventKind::Power, s.t_ns, s.t_ns);
        Ok(())
    }

    pub fn energy(&mut self, s: &EnergySample) -> io::Result<()> {
        self.sample(tag::ENERGY, s.t_ns)?;
        let d = s.energy_mj.wrapping_sub(self.regs.energy_mj) as i64;
        put_ivarint(&mut self.events, d);
        self.regs.energy_mj = s.energy_mj;
        self.account(EventKind::Energy, s.t_ns, s.t_ns);
        Ok(())
    }

    pub fn clocks(&mut self, s: &ClockSample) -> io::Result<()> {
        self.sample(tag::CLOCKS, s.t_ns)?;
        put_uvarint(&mut self.events, s.sm_mhz as u64);
        put_uvarint(&mut self.events, s.mem_mhz as u64);
        self.account(EventKind::Clocks, s.t_ns, s.t_ns);
        Ok(())
    }

    pub fn temperature(&mut self, s: &TemperatureSample) -> io::Result<()> {
        self.sample(tag::TEMPERATURE, s.t_ns)?;
        put_uvarint(&mut self.events, s.sensor.0 as u64);
        put_ivarint(&mut self.events, s.temp_c as i64);
        self.account(EventKind::Temperature, s.t_ns, s.t_ns);
        Ok(())
    }

    pub fn throttle(&mut self, s: &ThrottleSample) -> io::Result<()> {
        self.sample(tag::THROTTLE, s.t_ns)?;
        put_uvarint(&mut self.events, s.reasons);
        self.account(EventKind::Throttle, s.t_ns, s.t_ns);
        Ok(())
    }

    /// `MarkerKind::Other` must use a code of 5 or more (0-4 are the known kinds).
    pub fn marker(&mut self, m: &Marker) -> io::Result<()> {
        if matches!(m.kind, MarkerKind::Other { code: 0..=4, .. }) {
            return Err(invalid("MarkerKind::Other needs a code >= 5"));
        }
        self.sample(tag::MARKER, m.t_ns)?;
        let (code, a, b) = m.kind.to_wire();
        self.events.push(code);
        put_uvarint(&mut self.events, a);
        put_uvarint(&mut self.events, b);
        self.account(EventKind::Marker, m.t_ns, m.t_ns);
        Ok(())
    }

    pub fn dropped(&mut self, d: &Dropped) -> io::Result<()> {
        self.sample(tag::DROPPED, d.t_ns)?;
        put_uvarint(&mut self.events, d.source.0 as u64);
        put_uvarint(&mut self.events, d.count);
        self.summary.dropped_total = self.summary.dropped_total.wrapping_add(d.count);
        self.account(EventKind::Dropped, d.t_ns, d.t_ns);
        Ok(())
    }

    pub fn clock_sync(&mut self, c: &ClockSync) -> io::Result<()> {
        self.sample(tag::CLOCK_SYNC, c.t_ns)?;
        put_ivarint(&mut self.events, c.nvml_offset_ns);
        put_uvarint(&mut self.events, c.residual_ns);
        self.account(EventKind::ClockSync, c.t_ns, c.t_ns);
        Ok(())
    }

    /// Writes every buffered record as whole frames and flushes the underlying
    /// writer. After this returns the file is a valid (if unfinished) trace; safe to
    /// call from a shutdown / Ctrl-C path.
    pub fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.emit_events()?; // also emits pending strings and layers
        self.emit_strings()?;
        self.emit_layers()?;
        let r = self.out_mut().flush();
        self.guard(r)
    }

    /// Flushes everything, writes the closing summary frame and returns the
    /// underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        let mut buf = vec![0u8; FRAME_HEADER_LEN];
        let mut summary = self.summary;
        if !self.any_event {
            summary.first_t_ns = 0;
            summary.last_t_ns = 0;
        }
        encode_summary(&mut buf, &summary);
        seal_frame(&mut buf, FrameKind::SUMMARY);
        let out = self.out.as_mut().expect("writer present until finish");
        out.write_all(&buf)?;
        out.flush()?;
        Ok(self.out.take().expect("writer present until finish"))
    }

    /// Per-kind record counts so far.
    pub fn counts(&self) -> &Counts {
        &self.summary.counts
    }

    pub fn get_ref(&self) -> &W {
        self.out.as_ref().expect("writer present until finish")
    }

    // --- internals -------------------------------------------------------------

    fn check(&self) -> io::Result<()> {
        if self.poisoned {
            Err(io::Error::other("trace writer unusable after an earlier I/O error"))
        } else {
            Ok(())
        }
    }

    fn out_mut(&mut self) -> &mut W {
        self.out.as_mut().expect("writer present until finish")
    }

    /// After a failed write the file may end in a partial frame; appending more
    /// frames behind it would only hide them from readers, so stop.
    fn guard<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    /// Closes the frame if it is full and opens a new one based at `t`.
    #[inline]
    fn begin_record(&mut self, t: u64) -> io::Result<()> {
        if self.poisoned {
            return self.check();
        }
        if self.events.len() >= FRAME_HEADER_LEN + self.frame_target {
            self.emit_events()?;
        }
        if self.events.len() == FRAME_HEADER_LEN {
            put_uvarint(&mut self.events, t);
            self.regs = Regs::new(t);
            self.sites.clear();
            self.site_list.clear();
            self.last_site = u32::MAX;
        }
        Ok(())
    }

    #[inline]
    fn sample(&mut self, tag: u8, t: u64) -> io::Result<()> {
        self.begin_record(t)?;
        self.events.push(tag);
        put_ivarint(&mut self.events, t.wrapping_sub(self.regs.sample_t) as i64);
        self.regs.sample_t = t;
        Ok(())
    }

    #[inline]
    fn account(&mut self, kind: EventKind, t: u64, end: u64) {
        let s = &mut self.summary;
        s.counts.add(kind, 1);
        if self.any_event {
            s.first_t_ns = s.first_t_ns.min(t);
            s.last_t_ns = s.last_t_ns.max(end).max(t);
        } else {
            s.first_t_ns = t;
            s.last_t_ns = end.max(t);
            self.any_event = true;
        }
    }

    fn emit_strings(&mut self) -> io::Result<()> {
        if self.strings_buf.len() == FRAME_HEADER_LEN {
            return Ok(());
        }
        seal_frame(&mut self.strings_buf, FrameKind::STRINGS);
        let r = self.out.as_mut().expect("writer present").write_all(&self.strings_buf);
        self.strings_buf.truncate(FRAME_HEADER_LEN);
        self.guard(r)
    }

    fn emit_layers(&mut self) -> io::Result<()> {
        if self.layers_buf.len() == FRAME_HEADER_LEN {
            return Ok(());
        }
        self.emit_strings()?;
        seal_frame(&mut self.layers_buf, FrameKind::LAYERS);
        let r = self.out.as_mut().expect("writer present").write_all(&self.layers_buf);
        self.layers_buf.truncate(FRAME_HEADER_LEN);
        self.guard(r)
    }

    fn emit_events(&mut self) -> io::Result<()> {
        if self.events.len() == FRAME_HEADER_LEN {
            return Ok(());
        }
        self.emit_strings()?;
        self.emit_layers()?;
        seal_frame(&mut self.events, FrameKind::EVENTS);
        let r = self.out.as_mut().expect("writer present").write_all(&self.events);
        self.events.truncate(FRAME_HEADER_LEN);
        self.summary.event_frames += 1;
        self.guard(r)
    }
}

impl<W: Write> Drop for TraceWriter<W> {
    fn drop(&mut self) {
        // Like BufWriter: keep what was recorded (as a valid, unfinished trace).
        if self.out.is_some() && !self.poisoned {
            let _ = self.flush();
        }
    }
}

fn reserved(cap: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(cap);
    v.resize(FRAME_HEADER_LEN, 0);
    v
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn put_u32s(b: &mut Vec<u8>, v: &[u32]) {
    for &x in v {
        put_uvarint(b, x as u64);
    }
}

fn encode_site(b: &mut Vec<u8>, l: &KernelLaunch) {
    b.push(tag::SITE);
    put_uvarint(b, l.layer.0 as u64);
    put_uvarint(b, l.kernel.0 as u64);
    put_u32s(b, &l.grid);
    put_u32s(b, &l.block);
    put_u32s(b, &[l.registers_per_thread, l.static_smem_bytes, l.dynamic_smem_bytes, l.stream]);
    put_uvarint(b, l.graph_node);
}

fn put_list<T>(b: &mut Vec<u8>, items: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
    put_uvarint(b, items.len() as u64);
    for i in items {
        f(b, i);
    }
}

pub(crate) fn encode_header(b: &mut Vec<u8>, h: &Header<'_>) {
    put_str(b, &h.tool_version);
    put_list(b, &h.command_line, |b, s| put_str(b, s));
    put_uvarint(b, h.start_unix_ns);
    put_str(b, &h.host);
    let d = &h.device;
    put_str(b, &d.name);
    put_str(b, &d.uuid);
    put_u32s(b, &[d.cc_major, d.cc_minor, d.sm_count]);
    put_uvarint(b, d.memory_bytes);
    put_str(b, &d.driver_version);
    put_str(b, &d.cuda_version);
    put_u32s(b, &[d.power_limit_mw, d.sm_clock_mhz, d.mem_clock_mhz]);
    let w = &h.workload;
    put_str(b, &w.model);
    put_uvarint(b, w.batch_size as u64);
    put_str(b, &w.dtype);
    put_list(b, &w.kernel_variants, |b, v| {
        put_str(b, &v.target);
        put_str(b, &v.variant);
    });
    put_uvarint(b, w.iterations as u64);
    put_list(b, &w.phases, |b, p| {
        put_str(b, &p.name);
        put_uvarint(b, p.iterations as u64);
    });
    let t = &h.timebase;
    put_str(b, &t.clock);
    put_uvarint(b, t.t0_ns);
    put_ivarint(b, t.nvml_offset_ns);
    put_uvarint(b, t.residual_ns);
}

pub(crate) fn encode_layer(b: &mut Vec<u8>, l: &Layer) {
    put_uvarint(b, l.id.0 as u64);
    put_uvarint(b, l.name.0 as u64);
    put_uvarint(b, l.op.0 as u64);
    for shapes in [&l.inputs, &l.outputs] {
        put_list(b, shapes, |b, s| put_list(b, s, |b, d| put_uvarint(b, *d)));
    }
    put_list(b, &l.attrs, |b, a| {
        put_uvarint(b, a.key.0 as u64);
        use crate::format::attr_type as t;
        match &a.value {
            AttrValue::Int(v) => {
                b.push(t::INT);
                put_ivarint(b, *v);
            }
            AttrValue::Float(v) => {
                b.push(t::FLOAT);
                b.extend_from_slice(&v.to_le_bytes());
            }
            AttrValue::Str(s) => {
                b.push(t::STR);
                put_uvarint(b, s.0 as u64);
            }
            AttrValue::Ints(v) => {
                b.push(t::INTS);
                put_list(b, v, |b, x| put_ivarint(b, *x));
            }
        }
    });
    put_uvarint(b, l.flops);
    put_uvarint(b, l.bytes_moved);
    put_list(b, &l.kernels, |b, k| put_uvarint(b, k.0 as u64));
}

pub(crate) fn encode_summary(b: &mut Vec<u8>, s: &Summary) {
    put_uvarint(b, EventKind::ALL.len() as u64);
    for k in EventKind::ALL {
        b.push(k as u8);
        put_uvarint(b, s.counts.get(k));
    }
    put_uvarint(b, s.first_t_ns);
    put_uvarint(b, s.last_t_ns);
    put_uvarint(b, s.dropped_total);
    put_uvarint(b, s.event_frames);
}

/// Site-table key. Hashing every field through a chained hasher costs ~15
/// dependent multiply rounds per kernel record (most of the writer's budget), so the
/// fields are folded independently into one word first; `Eq` still compares all.
#[derive(PartialEq, Eq)]
struct SiteKey(KernelLaunch);

impl std::hash::Hash for SiteKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let l = &self.0;
        let w = |a: u32, b: u32| (a as u64) | (b as u64) << 32;
        let h = w(l.layer.0, l.kernel.0)
            ^ w(l.grid[0], l.grid[1]).rotate_left(7)
            ^ w(l.grid[2], l.block[0]).rotate_left(19)
            ^ w(l.block[1], l.block[2]).rotate_left(29)
            ^ w(l.registers_per_thread, l.static_smem_bytes).rotate_left(41)
            ^ w(l.dynamic_smem_bytes, l.stream).rotate_left(53)
            ^ l.graph_node.rotate_left(13);
        state.write_u64(h);
    }
}

// FxHash (rustc's hasher): the site and string tables are keyed by small trusted
// values, so a fast non-DoS-resistant hash is the right trade (SipHash would cost
// a measurable share of the per-record budget).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

type FxBuild = BuildHasherDefault<FxHasher>;

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline(always)]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn writer_is_send() {
        assert_send::<TraceWriter<std::fs::File>>();
        assert_send::<TraceWriter<Vec<u8>>>();
    }

    #[test]
    fn interning_dedups() {
        let mut w = TraceWriter::new(Vec::new(), &Header::default()).unwrap();
        let a = w.intern("a").unwrap();
        let b = w.intern("b").unwrap();
        assert_eq!(w.intern("a").unwrap(), a);
        assert_eq!((a, b), (StrId(0), StrId(1)));
    }
}
