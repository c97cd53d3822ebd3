//! Zero-copy reader over any `&[u8]` (a memory map, a `Vec`, a fuzzer input).
//!
//! [`Trace::parse`] walks the frames once, checking every frame's length and CRC and
//! decoding the small tables (header, strings, layers, summary). Event frames are
//! only located; [`Trace::events`] decodes them lazily, allocating nothing per
//! record. Damage never hides what came before it: parsing stops at the first bad
//! frame, keeps every complete frame before it and records the error (with its
//! byte offset) in [`Trace::damage`].

use std::borrow::Cow;

use byteorder::{ByteOrder, LittleEndian};
use serde::Serialize;

use crate::error::{Offset, Result, TraceError};
use crate::format::{
    attr_type, tag, unzigzag, FrameKind, Version, FRAME_HEADER_LEN, MAGIC, MAX_FRAME_PAYLOAD, MAX_SITES_PER_FRAME,
    PREAMBLE_LEN,
};
use crate::records::*;
use crate::writer::Regs;

// ---------------------------------------------------------------------------------
// Cursor: bounds-checked little-endian / varint decoding within one frame
// ---------------------------------------------------------------------------------

/// Reads primitives from one frame's payload; errors carry absolute file offsets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Self {
        Cursor { buf, pos: 0, base }
    }

    #[inline(always)]
    fn at(&self) -> u64 {
        self.base + self.pos as u64
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// By value into a cold constructor: taking `&self` there would make the
    /// cursor escape and pin it to the stack on the hot path.
    #[inline(always)]
    fn err(&self, what: &'static str) -> TraceError {
        TraceError::malformed(self.at(), what)
    }

    #[inline(always)]
    fn u8(&mut self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.err("record runs past the end of its frame")),
        }
    }

    /// Unsigned LEB128, at most 10 bytes, value must fit 64 bits.
    #[inline(always)]
    fn uvarint(&mut self) -> Result<u64> {
        // Fast path away from the frame's end: one bounds check, then the 1-3 byte
        // forms that nearly every field uses, unrolled. (A branch-free SWAR decode
        // measured 40 % slower here: the lengths are predictable per field.)
        if let Some(b) = self.buf.get(self.pos..self.pos + 10) {
            let b0 = b[0] as u64;
            if b0 < 0x80 {
                self.pos += 1;
                return Ok(b0);
            }
            let b1 = b[1] as u64;
            let v = (b0 & 0x7f) | (b1 & 0x7f) << 7;
            if b1 < 0x80 {
                self.pos += 2;
                return Ok(v);
            }
            let b2 = b[2] as u64;
            if b2 < 0x80 {
                self.pos += 3;
                return Ok(v | b2 << 14);
            }
        }
        self.uvarint_multi()
    }

    #[inline(always)]
    fn uvarint_multi(&mut self) -> Result<u64> {
        let (v, pos) = uvarint_slow(self.buf, self.pos, self.base)?;
        self.pos = pos;
        Ok(v)
    }

    #[inline(always)]
    fn ivarint(&mut self) -> Result<i64> {
        Ok(unzigzag(self.uvarint()?))
    }

    #[inline(always)]
    fn u32v(&mut self) -> Result<u32> {
        let at = self.pos;
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| {
            self.pos = at;
            self.err("value does not fit 32 bits")
        })
    }

    /// A zigzag delta of a 32-bit field, applied with wrapping arithmetic.
    #[inline(always)]
    fn delta32(&mut self, prev: u32) -> Result<u32> {
        let at = self.pos;
        let v = self.uvarint()?;
        if v > u32::MAX as u64 {
            self.pos = at;
            return Err(self.err("32-bit delta out of range"));
        }
        Ok(prev.wrapping_add(unzigzag(v) as i32 as u32))
    }

    #[inline(always)]
    fn bytes(&mut self, n: u64) -> Result<&'a [u8]> {
        let rest = self.buf.len() - self.pos.min(self.buf.len());
        if n > rest as u64 {
            return Err(self.err("length runs past the end of its frame"));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn str(&mut self) -> Result<&'a str> {
        let at = self.pos;
        let n = self.uvarint()?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| {
            self.pos = at;
            self.err("string is not valid UTF-8")
        })
    }

    fn cow(&mut self) -> Result<Cow<'a, str>> {
        Ok(Cow::Borrowed(self.str()?))
    }

    /// A count of items that each take at least one byte; a larger count than bytes
    /// left is corruption, caught before anything is allocated for it.
    fn count(&mut self) -> Result<usize> {
        let at = self.pos;
        let n = self.uvarint()?;
        if n > (self.buf.len() - self.pos) as u64 {
            self.pos = at;
            return Err(self.err("item count exceeds the bytes left in its frame"));
        }
        Ok(n as usize)
    }

    fn list<T>(&mut self, mut f: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        let n = self.count()?;
        let mut v = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v)
    }
}

/// Varints of 4+ bytes and those near a frame's end. Takes and returns the position
/// by value so the caller's cursor can stay in registers.
#[inline(never)]
fn uvarint_slow(buf: &[u8], start: usize, base: u64) -> Result<(u64, usize)> {
    let mut pos = start;
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        let Some(&b) = buf.get(pos) else {
            return Err(TraceError::malformed(base + start as u64, "varint runs past the end of its frame"));
        };
        pos += 1;
        if shift == 63 && b > 1 {
            return Err(TraceError::malformed(base + start as u64, "varint overflows 64 bits"));
        }
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return Ok((v, pos));
        }
        shift += 7;
    }
}

// ---------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------

/// Checks the 16-byte preamble and returns the file's format version.
pub fn read_preamble(data: &[u8]) -> Result<Version> {
    if data.is_empty() {
        return Err(TraceError::Empty);
    }
    let n = data.len().min(MAGIC.len());
    if data[..n] != MAGIC[..n] {
        return Err(TraceError::BadMagic { offset: Offset(0) });
    }
    if data.len() < PREAMBLE_LEN {
        return Err(TraceError::Truncated {
            offset: Offset(0),
            needed: (PREAMBLE_LEN - data.len()) as u64,
            what: "file preamble",
        });
    }
    let stored = LittleEndian::read_u32(&data[12..16]);
    let computed = crc32c::crc32c(&data[..12]);
    if stored != computed {
        return Err(TraceError::Checksum { offset: Offset(0), what: "file preamble", stored, computed });
    }
    let found = Version { major: LittleEndian::read_u16(&data[8..10]), minor: LittleEndian::read_u16(&data[10..12]) };
    if found.major != Version::CURRENT.major {
        return Err(TraceError::UnsupportedVersion { offset: Offset(8), found, supported: Version::CURRENT });
    }
    Ok(found)
}

/// One checked frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Offset of the frame header.
    pub offset: Offset,
    pub kind: FrameKind,
    pub payload: &'a [u8],
}

impl Frame<'_> {
    pub fn info(&self) -> FrameInfo {
        FrameInfo { offset: self.offset, kind: self.kind, payload_len: self.payload.len() as u32 }
    }
}

/// Where a frame sits in the file; enough to seek back to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FrameInfo {
    pub offset: Offset,
    pub kind: FrameKind,
    pub payload_len: u32,
}

impl FrameInfo {
    pub fn payload_offset(&self) -> Offset {
        Offset(self.offset.0 + FRAME_HEADER_LEN as u64)
    }

    /// Offset just past the frame.
    pub fn end(&self) -> Offset {
        Offset(self.payload_offset().0 + self.payload_len as u64)
    }
}

/// Low-level frame iterator: checks length and CRC, yields frames of any kind in
/// file order, stops after the first error. Useful for streaming (a reader
/// following a file as it grows can re-slice and resume at [`Frames::position`]).
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
    version: Version,
    failed: bool,
}

impl<'a> Frames<'a> {
    /// Checks the preamble and positions at the first frame.
    pub fn new(data: &'a [u8]) -> Result<Self> {
        let version = read_preamble(data)?;
        Ok(Frames { data, pos: PREAMBLE_LEN, version, failed: false })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Offset of the next frame (= end of the last good one).
    pub fn position(&self) -> Offset {
        Offset(self.pos as u64)
    }

    /// `Ok(None)` at a clean end of data.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'a>>> {
        let rest = &self.data[self.pos..];
        if rest.is_empty() {
            return Ok(None);
        }
        let offset = Offset(self.pos as u64);
        if rest.len() < FRAME_HEADER_LEN {
            return Err(TraceError::Truncated {
                offset,
                needed: (FRAME_HEADER_LEN - rest.len()) as u64,
                what: "frame header",
            });
        }
        let stored = LittleEndian::read_u32(&rest[0..4]);
        let kind = FrameKind(rest[4]);
        let len = LittleEndian::read_u32(&rest[5..9]);
        if len > MAX_FRAME_PAYLOAD {
            return Err(TraceError::Malformed { offset, what: "frame length exceeds the 16 MiB limit" });
        }
        let avail = rest.len() - FRAME_HEADER_LEN;
        if (len as usize) > avail {
            return Err(TraceError::Truncated { offset, needed: len as u64 - avail as u64, what: kind.name() });
        }
        let end = FRAME_HEADER_LEN + len as usize;
        let computed = crc32c::crc32c(&rest[4..end]);
        if computed != stored {
            return Err(TraceError::Checksum { offset, what: kind.name(), stored, computed });
        }
        self.pos += end;
        Ok(Some(Frame { offset, kind, payload: &rest[FRAME_HEADER_LEN..end] }))
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_frame() {
            Ok(f) => f.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn frame_cursor<'a>(f: &Frame<'a>) -> Cursor<'a> {
    Cursor::new(f.payload, f.offset.0 + FRAME_HEADER_LEN as u64)
}

// ---------------------------------------------------------------------------------
// Trace
// ---------------------------------------------------------------------------------

/// A parsed trace borrowing from its bytes.
///
/// ```no_run
/// # fn main() -> Result<(), cnnergy_traces::TraceError> {
/// let data = cnnergy_traces::TraceData::open("run.cnt".as_ref())?;
/// let trace = cnnergy_traces::Trace::parse(&data)?;
/// for ev in trace.events() {
///     if let cnnergy_traces::Event::Kernel(k) = ev? {
///         println!("{} {} ns", trace.string(k.launch.kernel).unwrap_or("?"), k.duration_ns);
///     }
/// }
/// if let Some(d) = trace.damage() { eprintln!("{d}"); }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Trace<'a> {
    data: &'a [u8],
    version: Version,
    header: Header<'a>,
    strings: Vec<&'a str>,
    layers: Vec<Layer>,
    frames: Vec<FrameInfo>,
    summary: Option<Summary>,
    damage: Option<TraceError>,
    intact_len: Offset,
    unknown_frames: u64,
}

impl<'a> Trace<'a> {
    /// Parses the preamble, header and tables. Fails only when not even the header
    /// can be read; later damage is kept in [`Trace::damage`].
    pub fn parse(data: &'a [u8]) -> Result<Trace<'a>> {
        let mut frames = Frames::new(data)?;
        let version = frames.version();
        let first = match frames.next_frame()? {
            Some(f) => f,
            None => {
                return Err(TraceError::Truncated {
                    offset: Offset(PREAMBLE_LEN as u64),
                    needed: FRAME_HEADER_LEN as u64,
                    what: "header frame",
                })
            }
        };
        if first.kind != FrameKind::HEADER {
            return Err(TraceError::Malformed { offset: first.offset, what: "first frame is not a header frame" });
        }
        let header = decode_header(&mut frame_cursor(&first))?;
        let mut t = Trace {
            data,
            version,
            header,
            strings: Vec::new(),
            layers: Vec::new(),
            frames: vec![first.info()],
            summary: None,
            damage: None,
            intact_len: first.info().end(),
            unknown_frames: 0,
        };
        loop {
            let f = match frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    t.damage = Some(e);
                    break;
                }
            };
            if let Err(e) = t.absorb(&f) {
                t.damage = Some(e);
                break;
            }
            t.frames.push(f.info());
            t.intact_len = f.info().end();
        }
        Ok(t)
    }

    fn absorb(&mut self, f: &Frame<'a>) -> Result<()> {
        if self.summary.is_some() {
            return Err(TraceError::Malformed { offset: f.offset, what: "frame after the summary frame" });
        }
        let mut c = frame_cursor(f);
        match f.kind {
            FrameKind::HEADER => Err(TraceError::Malformed { offset: f.offset, what: "second header frame" }),
            FrameKind::STRINGS => decode_strings(&mut c, &mut self.strings),
            FrameKind::LAYERS => {
                while !c.is_empty() {
                    let n = c.uvarint()?;
                    let entry_at = c.at();
                    let entry = c.bytes(n)?;
                    self.layers.push(decode_layer(&mut Cursor::new(entry, entry_at))?);
                }
                Ok(())
            }
            FrameKind::EVENTS => Ok(()), // decoded lazily
            FrameKind::SUMMARY => {
                self.summary = Some(decode_summary(&mut c)?);
                Ok(())
            }
            _ => {
                // A kind from a newer minor version: length-prefixed, so skip it.
                self.unknown_frames += 1;
                Ok(())
            }
        }
    }

    /// The file's format version (minor may be newer than this crate's).
    pub fn version(&self) -> Version {
        self.version
    }

    pub fn header(&self) -> &Header<'a> {
        &self.header
    }

    /// The bytes this trace was parsed from.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Resolves an interned string (None if the id was never defined).
    #[inline]
    pub fn string(&self, id: StrId) -> Option<&'a str> {
        self.strings.get(id.0 as usize).copied()
    }

    pub fn strings(&self) -> &[&'a str] {
        &self.strings
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn layer(&self, id: LayerId) -> Option<&Layer> {
        self.layers.iter().find(|l| l.id == id)
    }

    /// Every intact frame, in file order (header first).
    pub fn frames(&self) -> &[FrameInfo] {
        &self.frames
    }

    /// Frames of kinds this reader does not know (skipped).
    pub fn unknown_frames(&self) -> u64 {
        self.unknown_frames
    }

    /// The closing summary, present only if the writer finished cleanly.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// True when the summary frame is present and nothing is damaged.
    pub fn is_complete(&self) -> bool {
        self.summary.is_some() && self.damage.is_none()
    }

    /// The first frame-level damage (truncation, bad CRC, malformed table frame).
    /// Damage inside an events frame surfaces as an `Err` from [`Trace::events`].
    pub fn damage(&self) -> Option<&TraceError> {
        self.damage.as_ref()
    }

    /// Length of the intact prefix: everything before this offset was read.
    pub fn intact_len(&self) -> Offset {
        self.intact_len
    }

    /// All event records in file order.
    pub fn events(&self) -> Events<'a, '_> {
        self.events_from(0)
    }

    /// Event records starting at frame `frame_index` (an index into
    /// [`Trace::frames`]): every events frame decodes on its own, so this is a seek.
    pub fn events_from(&self, frame_index: usize) -> Events<'a, '_> {
        let frames = self.frames.get(frame_index..).unwrap_or(&[]);
        Events {
            data: self.data,
            frames: frames.iter(),
            cur: Cursor::new(&[], 0),
            regs: Regs::default(),
            sites: Vec::with_capacity(MAX_SITES_PER_FRAME),
        }
    }
}

fn decode_strings<'a>(c: &mut Cursor<'a>, strings: &mut Vec<&'a str>) -> Result<()> {
    let at = c.at();
    let first = c.uvarint()?;
    if first != strings.len() as u64 {
        return Err(TraceError::malformed(at, "strings frame does not continue the string table"));
    }
    while !c.is_empty() {
        if strings.len() == u32::MAX as usize {
            return Err(c.err("more than 2^32 - 1 strings"));
        }
        strings.push(c.str()?);
    }
    Ok(())
}

fn decode_header<'a>(c: &mut Cursor<'a>) -> Result<Header<'a>> {
    // Fields in order; bytes after the last known field belong to newer minor
    // versions and are ignored.
    Ok(Header {
        tool_version: c.cow()?,
        command_line: c.list(|c| c.cow())?,
        start_unix_ns: c.uvarint()?,
        host: c.cow()?,
        device: Device {
            name: c.cow()?,
            uuid: c.cow()?,
            cc_major: c.u32v()?,
            cc_minor: c.u32v()?,
            sm_count: c.u32v()?,
            memory_bytes: c.uvarint()?,
            driver_version: c.cow()?,
            cuda_version: c.cow()?,
            power_limit_mw: c.u32v()?,
            sm_clock_mhz: c.u32v()?,
            mem_clock_mhz: c.u32v()?,
        },
        workload: Workload {
            model: c.cow()?,
            batch_size: c.u32v()?,
            dtype: c.cow()?,
            kernel_variants: c.list(|c| Ok(KernelVariant { target: c.cow()?, variant: c.cow()? }))?,
            iterations: c.u32v()?,
            phases: c.list(|c| Ok(Phase { name: c.cow()?, iterations: c.u32v()? }))?,
        },
        timebase: Timebase {
            clock: c.cow()?,
            t0_ns: c.uvarint()?,
            nvml_offset_ns: c.ivarint()?,
            residual_ns: c.uvarint()?,
        },
    })
}

fn decode_layer(c: &mut Cursor<'_>) -> Result<Layer> {
    let id = LayerId(c.u32v()?);
    let name = StrId(c.u32v()?);
    let op = StrId(c.u32v()?);
    let inputs = c.list(|c| c.list(|c| c.uvarint()))?;
    let outputs = c.list(|c| c.list(|c| c.uvarint()))?;
    let attrs = c.list(|c| {
        let key = StrId(c.u32v()?);
        let value = match c.u8()? {
            attr_type::INT => AttrValue::Int(c.ivarint()?),
            attr_type::FLOAT => {
                let b = c.bytes(8)?;
                AttrValue::Float(LittleEndian::read_f64(b))
            }
            attr_type::STR => AttrValue::Str(StrId(c.u32v()?)),
            attr_type::INTS => AttrValue::Ints(c.list(|c| c.ivarint())?),
            _ => return Err(c.err("unknown attribute type")),
        };
        Ok(Attr { key, value })
    })?;
    Ok(Layer {
        id,
        name,
        op,
        inputs,
        outputs,
        attrs,
        flops: c.uvarint()?,
        bytes_moved: c.uvarint()?,
        kernels: c.list(|c| Ok(StrId(c.u32v()?)))?,
    })
}

fn decode_summary(c: &mut Cursor<'_>) -> Result<Summary> {
    let mut s = Summary::default();
    let n = c.count()?;
    for _ in 0..n {
        let t = c.u8()?;
        let count = c.uvarint()?;
        // Kinds from newer minor versions are not ours to count.
        if let Some(k) = EventKind::from_tag(t) {
            s.counts.add(k, count);
        }
    }
    s.first_t_ns = c.uvarint()?;
    s.last_t_ns = c.uvarint()?;
    s.dropped_total = c.uvarint()?;
    s.event_frames = c.uvarint()?;
    Ok(s)
}

// ---------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------

/// Iterator over event records; yields at most one `Err` and then stops.
/// Allocates nothing while iterating (the per-frame site table is allocated once,
/// at its maximum size, when the iterator is created).
#[derive(Debug, Clone)]
pub struct Events<'a, 't> {
    data: &'a [u8],
    frames: std::slice::Iter<'t, FrameInfo>,
    cur: Cursor<'a>,
    regs: Regs,
    sites: Vec<KernelLaunch>,
}

impl<'a> Events<'a, '_> {
    /// gimli-style: `Ok(None)` at the end. After an `Err` the iterator is exhausted.
    #[inline(always)]
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        match self.kernel_fast() {
            Some(k) => Ok(Some(Event::Kernel(k))),
            None => self.next_event_general(),
        }
    }

    /// The common case, small enough to inline into the consumer's loop: a kernel
    /// record whose fields all use the 1-3 byte varint forms, at least 16 bytes
    /// before the frame's end. Anything else (including every error) is left to
    /// the general decoder, which starts over at the same byte.
    #[inline(always)]
    fn kernel_fast(&mut self) -> Option<KernelEvent> {
        #[inline(always)]
        fn v3(w: &[u8; 16], i: &mut usize) -> Option<u64> {
            let j = *i;
            let b0 = w[j & 15] as u64;
            if b0 < 0x80 {
                *i = j + 1;
                return Some(b0);
            }
            let b1 = w[(j + 1) & 15] as u64;
            if b1 < 0x80 {
                *i = j + 2;
                return Some((b0 & 0x7f) | b1 << 7);
            }
            let b2 = w[(j + 2) & 15] as u64;
            if b2 < 0x80 {
                *i = j + 3;
                return Some((b0 & 0x7f) | (b1 & 0x7f) << 7 | b2 << 14);
            }
            None
        }
        let c = &self.cur;
        let w: &[u8; 16] = c.buf.get(c.pos..c.pos + 16)?.try_into().ok()?;
        let t = w[0];
        if t & !0x03 != tag::KERNEL {
            return None;
        }
        // Tag + at most four fields of at most 3 bytes each end within the 16-byte
        // window (the `& 15` in `v3` only spares the bounds checks).
        let mut i = 1;
        let site = v3(w, &mut i)?;
        let launch = *self.sites.get(site as usize)?;
        let r = &mut self.regs;
        let iteration = if t & tag::KERNEL_ITERATION != 0 {
            r.iteration.wrapping_add(unzigzag(v3(w, &mut i)?) as i32 as u32)
        } else {
            r.iteration
        };
        let start_ns = r.kernel_end.wrapping_add(unzigzag(v3(w, &mut i)?) as u64);
        let duration_ns = v3(w, &mut i)?;
        let step = if t & tag::KERNEL_CORRELATION != 0 { unzigzag(v3(w, &mut i)?) as i32 as u32 } else { r.corr_step };
        let correlation_id = r.correlation.wrapping_add(step);
        r.iteration = iteration;
        r.correlation = correlation_id;
        r.corr_step = step;
        r.kernel_end = start_ns.wrapping_add(duration_ns);
        self.cur.pos += i;
        Some(KernelEvent { launch, iteration, start_ns, duration_ns, correlation_id })
    }

    #[inline(always)]
    fn next_event_general(&mut self) -> Result<Option<Event>> {
        loop {
            if self.cur.is_empty() && !self.next_frame()? {
                return Ok(None);
            }
            // Decode on local copies so the cursor and delta bases stay in
            // registers instead of round-tripping through memory per field.
            let mut c = self.cur;
            let mut r = self.regs;
            let res = decode_record(&mut c, &mut r, &mut self.sites);
            self.cur = c;
            self.regs = r;
            match res {
                Ok(Some(ev)) => return Ok(Some(ev)),
                Ok(None) => {}
                Err(e) => return Err(self.stop(e)),
            }
        }
    }

    /// Exhausts the iterator (no `failed` flag to test per record).
    #[cold]
    fn stop(&mut self, e: TraceError) -> TraceError {
        self.cur = Cursor::new(&[], 0);
        self.frames = [].iter();
        e
    }

    /// Opens the next events frame; false when there is none.
    #[cold]
    fn next_frame(&mut self) -> Result<bool> {
        for f in self.frames.by_ref() {
            if f.kind != FrameKind::EVENTS {
                continue;
            }
            let start = f.payload_offset().0 as usize;
            let payload = &self.data[start..start + f.payload_len as usize];
            self.cur = Cursor::new(payload, start as u64);
            let base = match self.cur.uvarint() {
                Ok(b) => b,
                Err(e) => return Err(self.stop(e)),
            };
            self.regs = Regs::new(base);
            self.sites.clear();
            if !self.cur.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[inline(always)]
fn decode_record(c: &mut Cursor<'_>, r: &mut Regs, sites: &mut Vec<KernelLaunch>) -> Result<Option<Event>> {
    let at = c.pos;
    let t = c.u8()?;
    if t & !0x03 == tag::KERNEL {
        let site = c.uvarint()?;
        let Some(&launch) = sites.get(site as usize) else {
            c.pos = at;
            return Err(c.err("kernel record refers to an undefined site"));
        };
        let iteration = if t & tag::KERNEL_ITERATION != 0 { c.delta32(r.iteration)? } else { r.iteration };
        let start_ns = r.kernel_end.wrapping_add(c.ivarint()? as u64);
        let duration_ns = c.uvarint()?;
        let step = if t & tag::KERNEL_CORRELATION != 0 { c.delta32(0)? } else { r.corr_step };
        let correlation_id = r.correlation.wrapping_add(step);
        r.iteration = iteration;
        r.correlation = correlation_id;
        r.corr_step = step;
        r.kernel_end = start_ns.wrapping_add(duration_ns);
        return Ok(Some(Event::Kernel(KernelEvent { launch, iteration, start_ns, duration_ns, correlation_id })));
    }
    let ev = match t {
        tag::SITE => {
            if sites.len() >= MAX_SITES_PER_FRAME {
                c.pos = at;
                return Err(c.err("more than 1024 sites in one events frame"));
            }
            let site = KernelLaunch {
                layer: LayerId(c.u32v()?),
                kernel: StrId(c.u32v()?),
                grid: [c.u32v()?, c.u32v()?, c.u32v()?],
                block: [c.u32v()?, c.u32v()?, c.u32v()?],
                registers_per_thread: c.u32v()?,
                static_smem_bytes: c.u32v()?,
                dynamic_smem_bytes: c.u32v()?,
                stream: c.u32v()?,
                graph_node: c.uvarint()?,
            };
            sites.push(site);
            return Ok(None);
        }
        tag::POWER => {
            let t_ns = sample_t(c, r)?;
            Event::Power(PowerSample { t_ns, sensor: StrId(c.u32v()?), power_mw: c.u32v()? })
        }
        tag::ENERGY => {
            let t_ns = sample_t(c, r)?;
            r.energy_mj = r.energy_mj.wrapping_add(c.ivarint()? as u64);
            Event::Energy(EnergySample { t_ns, energy_mj: r.energy_mj })
        }
        tag::CLOCKS => {
            let t_ns = sample_t(c, r)?;
            Event::Clocks(ClockSample { t_ns, sm_mhz: c.u32v()?, mem_mhz: c.u32v()? })
        }
        tag::TEMPERATURE => {
            let t_ns = sample_t(c, r)?;
            let sensor = StrId(c.u32v()?);
            let v = c.ivarint()?;
            let Ok(temp_c) = i32::try_from(v) else {
                return Err(c.err("temperature does not fit 32 bits"));
            };
            Event::Temperature(TemperatureSample { t_ns, sensor, temp_c })
        }
        tag::THROTTLE => {
            let t_ns = sample_t(c, r)?;
            Event::Throttle(ThrottleSample { t_ns, reasons: c.uvarint()? })
        }
        tag::MARKER => {
            let t_ns = sample_t(c, r)?;
            let code = c.u8()?;
            let (a, b) = (c.uvarint()?, c.uvarint()?);
            let Some(kind) = MarkerKind::from_wire(code, a, b) else {
                return Err(c.err("marker value out of range for its kind"));
            };
            Event::Marker(Marker { t_ns, kind })
        }
        tag::DROPPED => {
            let t_ns = sample_t(c, r)?;
            Event::Dropped(Dropped { t_ns, source: StrId(c.u32v()?), count: c.uvarint()? })
        }
        tag::CLOCK_SYNC => {
            let t_ns = sample_t(c, r)?;
            Event::ClockSync(ClockSync { t_ns, nvml_offset_ns: c.ivarint()?, residual_ns: c.uvarint()? })
        }
        t if t >= tag::FIRST_EXTENSION => {
            // Record kind from a newer minor version: skip by its length.
            let n = c.uvarint()?;
            c.bytes(n)?;
            return Ok(None);
        }
        _ => {
            c.pos = at;
            return Err(c.err("unknown record tag"));
        }
    };
    Ok(Some(ev))
}

#[inline(always)]
fn sample_t(c: &mut Cursor<'_>, r: &mut Regs) -> Result<u64> {
    r.sample_t = r.sample_t.wrapping_add(c.ivarint()? as u64);
    Ok(r.sample_t)
}

impl Iterator for Events<'_, '_> {
    type Item = Result<Event>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

impl std::iter::FusedIterator for Events<'_, '_> {}
