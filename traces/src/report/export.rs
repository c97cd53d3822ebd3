//! `cnnergy export --chrome`: the trace as Chrome / Perfetto Trace Event Format JSON
//! (opens in ui.perfetto.dev and chrome://tracing).
//!
//! Layout (one process, "GPU: <device>"):
//! * per CUDA stream three tracks, top to bottom: `stream S · inferences` (one slice per
//!   iteration, first kernel start to last kernel end), `stream S · layers` (one slice
//!   per consecutive run of a layer's kernels, named by layer) and `stream S · kernels`
//!   (one slice per kernel, named by kernel; args: layer, type, op, iteration, grid,
//!   block, registers, shared memory, correlation id). Separate tracks, so slices never
//!   have to nest across host/GPU clocks.
//! * `phases`: the recorder's phase markers as slices, labels as instant events.
//! * counter tracks ("C" events): `power <sensor> (W)` for every power sensor,
//!   `energy (J)` (counter minus its first value), `power from energy counter (W)`
//!   (its slope between updates), `clocks (MHz)` (sm, mem), `temperature <sensor> (C)`,
//!   `throttle reasons` (bitmask).
//!
//! Timestamps are microseconds (with ns decimals) since the earliest event. The kernel
//! path formats from per-site fragments built once, so export runs at hundreds of MB/s.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::json;

use crate::energy::LayerType;
use crate::reader::Trace;
use crate::records::*;

const PID: u32 = 1;
const TID_PHASES: u64 = 1;
/// Track ids of stream s: `TRACKS + 4 s + kind` (JSON tids are 32-bit in some viewers).
const TRACKS: u64 = 1000;
const INFERENCES: u64 = 0;
const LAYERS: u64 = 1;
const KERNELS: u64 = 2;

fn tid(stream: u32, kind: u64) -> u64 {
    TRACKS + 4 * stream as u64 + kind
}

/// What was written.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ExportStats {
    pub kernel_slices: u64,
    pub layer_slices: u64,
    pub inference_slices: u64,
    pub phase_slices: u64,
    pub counter_events: u64,
    pub instant_events: u64,
    /// Set when decoding stopped early (damaged trace): what precedes it was exported.
    pub stopped_at: Option<String>,
}

/// Static JSON of one kernel launch site: everything but the per-event numbers.
struct SiteText {
    /// `{"ph":"X","name":..,"cat":..,"pid":1,"tid":..,"ts":`
    head: String,
    /// `,"args":{...,"iteration":`
    args: String,
}

/// An open slice on a per-stream track (layer or inference).
#[derive(Clone, Copy)]
struct Open {
    key: u32,
    iteration: u32,
    start: u64,
    end: u64,
    kernels: u32,
}

struct Writer<'t, W: Write> {
    out: W,
    origin: u64,
    first: bool,
    trace: &'t Trace<'t>,
    stats: ExportStats,
    ibuf: itoa::Buffer,
    /// Per layer id: JSON fragments of its slices (head up to `"tid":`, args head).
    layer_index: HashMap<u32, usize>,
    layer_text: Vec<(String, String)>,
}

impl<'t, W: Write> Writer<'t, W> {
    /// Writes the separator before an event.
    fn sep(&mut self) -> io::Result<()> {
        if self.first {
            self.first = false;
            self.out.write_all(b"\n")
        } else {
            self.out.write_all(b",\n")
        }
    }

    fn num(&mut self, v: u64) -> io::Result<()> {
        let s = self.ibuf.format(v);
        self.out.write_all(s.as_bytes())
    }

    /// A trace-clock instant as microseconds since the origin, with 3 decimals (ns).
    fn ts(&mut self, t_ns: u64) -> io::Result<()> {
        let rel = t_ns.saturating_sub(self.origin);
        self.us(rel)
    }

    fn us(&mut self, ns: u64) -> io::Result<()> {
        self.num(ns / 1000)?;
        let frac = ns % 1000;
        if frac != 0 {
            let digits = [b'.', b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8];
            self.out.write_all(&digits)?;
        }
        Ok(())
    }

    fn value(&mut self, v: serde_json::Value) -> io::Result<()> {
        self.sep()?;
        serde_json::to_writer(&mut self.out, &v).map_err(io::Error::other)
    }

    fn counter(&mut self, name: &str, t_ns: u64, args: serde_json::Value) -> io::Result<()> {
        self.stats.counter_events += 1;
        let ts = self.ts_f64(t_ns);
        self.value(json!({"ph": "C", "name": name, "pid": PID, "ts": ts, "args": args}))
    }

    fn ts_f64(&self, t_ns: u64) -> f64 {
        t_ns.saturating_sub(self.origin) as f64 / 1000.0
    }

    fn layer_name(&self, id: LayerId) -> (&'t str, &'t str) {
        match self.trace.layer(id) {
            Some(l) => (self.trace.string(l.name).unwrap_or("?"), self.trace.string(l.op).unwrap_or("?")),
            None if id == LayerId::NONE => ("(no layer)", ""),
            None => ("(unknown layer)", ""),
        }
    }

    fn close_layer(&mut self, stream: u32, o: Open) -> io::Result<()> {
        self.stats.layer_slices += 1;
        let i = match self.layer_index.get(&o.key) {
            Some(&i) => i,
            None => {
                let (name, op) = self.layer_name(LayerId(o.key));
                let ty = LayerType::from_op(op).name();
                let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into());
                self.layer_text.push((
                    format!(r#"{{"ph":"X","name":{},"cat":"{ty}","pid":{PID},"tid":"#, q(name)),
                    format!(r#","args":{{"type":"{ty}","op":{},"iteration":"#, q(op)),
                ));
                self.layer_index.insert(o.key, self.layer_text.len() - 1);
                self.layer_text.len() - 1
            }
        };
        self.sep()?;
        self.out.write_all(self.layer_text[i].0.as_bytes())?;
        self.slice_tail(tid(stream, LAYERS), o, i)
    }

    /// `tid,"ts":..,"dur":..` then the args head of layer `args` (or an inference's) and the tail.
    fn slice_tail(&mut self, tid: u64, o: Open, args: usize) -> io::Result<()> {
        self.num(tid)?;
        self.out.write_all(b",\"ts\":")?;
        self.ts(o.start)?;
        self.out.write_all(b",\"dur\":")?;
        self.us(o.end.saturating_sub(o.start))?;
        if args == usize::MAX {
            self.out.write_all(br#","args":{"iteration":"#)?;
        } else {
            self.out.write_all(self.layer_text[args].1.as_bytes())?;
        }
        self.num(o.iteration as u64)?;
        self.out.write_all(br#","kernels":"#)?;
        self.num(o.kernels as u64)?;
        self.out.write_all(b"}}")
    }

    fn close_inference(&mut self, stream: u32, o: Open) -> io::Result<()> {
        self.stats.inference_slices += 1;
        self.sep()?;
        self.out.write_all(br#"{"ph":"X","name":"inference "#)?;
        self.num(o.iteration as u64)?;
        self.out.write_all(format!(r#"","cat":"inference","pid":{PID},"tid":"#).as_bytes())?;
        self.slice_tail(tid(stream, INFERENCES), o, usize::MAX)
    }
}

fn site_text(trace: &Trace<'_>, l: &KernelLaunch) -> SiteText {
    let (layer, op) = match trace.layer(l.layer) {
        Some(x) => (trace.string(x.name).unwrap_or("?"), trace.string(x.op).unwrap_or("?")),
        None => ("(no layer)", ""),
    };
    let ty = LayerType::from_op(op).name();
    let name = trace.string(l.kernel).unwrap_or("?");
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into());
    let head =
        format!(r#"{{"ph":"X","name":{},"cat":"{ty}","pid":{PID},"tid":{},"ts":"#, q(name), tid(l.stream, KERNELS));
    let args = format!(
        r#","args":{{"layer":{},"type":"{ty}","op":{},"grid":[{},{},{}],"block":[{},{},{}],"registers":{},"smem":{},"iteration":"#,
        q(layer),
        q(op),
        l.grid[0],
        l.grid[1],
        l.grid[2],
        l.block[0],
        l.block[1],
        l.block[2],
        l.registers_per_thread,
        l.static_smem_bytes as u64 + l.dynamic_smem_bytes as u64,
    );
    SiteText { head, args }
}

/// Writes `trace` as Trace Event Format JSON to `out`.
pub fn chrome<W: Write>(trace: &Trace<'_>, out: W) -> io::Result<ExportStats> {
    // The origin: the earliest event, so timestamps start near 0 (one cheap pass).
    let mut origin = u64::MAX;
    for e in trace.events() {
        match e {
            Ok(e) => origin = origin.min(e.t_ns()),
            Err(_) => break,
        }
    }
    if origin == u64::MAX {
        origin = 0;
    }
    let h = trace.header();
    let mut w = Writer {
        out,
        origin,
        first: true,
        trace,
        stats: ExportStats::default(),
        ibuf: itoa::Buffer::new(),
        layer_index: HashMap::new(),
        layer_text: Vec::new(),
    };
    let other = json!({
        "tool": h.tool_version, "host": h.host, "device": h.device.name, "driver": h.device.driver_version,
        "power_limit_w": h.device.power_limit_mw as f64 / 1000.0, "sm_clock_mhz": h.device.sm_clock_mhz,
        "mem_clock_mhz": h.device.mem_clock_mhz, "model": h.workload.model, "batch": h.workload.batch_size,
        "dtype": h.workload.dtype, "origin_trace_ns": origin, "trace_clock": h.timebase.clock,
    });
    w.out.write_all(b"{\"displayTimeUnit\":\"ns\",\"otherData\":")?;
    serde_json::to_writer(&mut w.out, &other).map_err(io::Error::other)?;
    w.out.write_all(b",\"traceEvents\":[")?;
    w.value(
        json!({"ph": "M", "name": "process_name", "pid": PID, "args": {"name": format!("GPU: {}", h.device.name)}}),
    )?;
    w.value(json!({"ph": "M", "name": "thread_name", "pid": PID, "tid": TID_PHASES, "args": {"name": "phases"}}))?;
    w.value(json!({"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": TID_PHASES, "args": {"sort_index": 0}}))?;

    let mut sites: HashMap<KernelLaunch, SiteText> = HashMap::new();
    // Per stream: open layer slice, open inference slice.
    let mut streams: Vec<(u32, Option<Open>, Option<Open>)> = Vec::new();
    let mut open_phases: Vec<(StrId, u32, u64)> = Vec::new();
    let mut energy0: Option<(u64, u64)> = None;
    let mut energy_prev: Option<(u64, u64)> = None;
    let mut last_t = origin;
    for e in trace.events() {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                w.stats.stopped_at = Some(err.to_string());
                break;
            }
        };
        last_t = last_t.max(e.end_ns());
        match e {
            Event::Kernel(k) => {
                let l = &k.launch;
                let si = match streams.iter().position(|s| s.0 == l.stream) {
                    Some(i) => i,
                    None => {
                        streams.push((l.stream, None, None));
                        for (kind, label) in [(INFERENCES, "inferences"), (LAYERS, "layers"), (KERNELS, "kernels")] {
                            let tid = tid(l.stream, kind);
                            let name = format!("stream {} · {label}", l.stream);
                            w.value(json!({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid, "args": {"name": name}}))?;
                            let idx = tid;
                            w.value(json!({"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid, "args": {"sort_index": idx}}))?;
                        }
                        streams.len() - 1
                    }
                };
                // Layer and inference slices: extend the open one or close it and start anew.
                let (s_id, layer_open, inf_open) = streams[si];
                let (end, start) = (k.end_ns(), k.start_ns);
                let new_layer = match layer_open {
                    Some(mut o) if o.key == l.layer.0 && o.iteration == k.iteration => {
                        o.end = o.end.max(end);
                        o.kernels += 1;
                        o
                    }
                    prev => {
                        if let Some(p) = prev {
                            w.close_layer(s_id, p)?;
                        }
                        Open { key: l.layer.0, iteration: k.iteration, start, end, kernels: 1 }
                    }
                };
                let new_inf = match inf_open {
                    Some(mut o) if o.iteration == k.iteration => {
                        o.end = o.end.max(end);
                        o.kernels += 1;
                        o
                    }
                    prev => {
                        if let Some(p) = prev {
                            w.close_inference(s_id, p)?;
                        }
                        Open { key: 0, iteration: k.iteration, start, end, kernels: 1 }
                    }
                };
                streams[si] = (s_id, Some(new_layer), Some(new_inf));

                // The kernel slice, from the cached site fragments.
                let text = sites.entry(*l).or_insert_with(|| site_text(trace, l));
                w.sep()?;
                w.out.write_all(text.head.as_bytes())?;
                w.ts(start)?;
                w.out.write_all(b",\"dur\":")?;
                w.us(k.duration_ns)?;
                w.out.write_all(text.args.as_bytes())?;
                w.num(k.iteration as u64)?;
                w.out.write_all(b",\"correlation\":")?;
                w.num(k.correlation_id as u64)?;
                w.out.write_all(b"}}")?;
                w.stats.kernel_slices += 1;
            }
            Event::Power(p) => {
                let name = format!("power {} (W)", trace.string(p.sensor).unwrap_or("?"));
                w.counter(&name, p.t_ns, json!({"W": p.power_mw as f64 / 1000.0}))?;
            }
            Event::Energy(s) => {
                let (t0, e0) = *energy0.get_or_insert((s.t_ns, s.energy_mj));
                let _ = t0;
                w.counter("energy (J)", s.t_ns, json!({"J": s.energy_mj.saturating_sub(e0) as f64 / 1000.0}))?;
                // The counter's slope between two distinct updates is an average power.
                if let Some((tp, ep)) = energy_prev {
                    if s.energy_mj != ep && s.t_ns > tp {
                        let watts = (s.energy_mj.saturating_sub(ep)) as f64 / 1000.0 / ((s.t_ns - tp) as f64 * 1e-9);
                        w.counter("power from energy counter (W)", tp, json!({"W": watts}))?;
                    }
                }
                if energy_prev.is_none_or(|(_, ep)| ep != s.energy_mj) {
                    energy_prev = Some((s.t_ns, s.energy_mj));
                }
            }
            Event::Clocks(c) => {
                w.counter("clocks (MHz)", c.t_ns, json!({"sm": c.sm_mhz, "mem": c.mem_mhz}))?;
            }
            Event::Temperature(t) => {
                let name = format!("temperature {} (C)", trace.string(t.sensor).unwrap_or("?"));
                w.counter(&name, t.t_ns, json!({"C": t.temp_c}))?;
            }
            Event::Throttle(t) => {
                w.counter("throttle reasons", t.t_ns, json!({"bits": t.reasons}))?;
            }
            Event::Marker(m) => match m.kind {
                MarkerKind::PhaseBegin { phase, index } => open_phases.push((phase, index, m.t_ns)),
                MarkerKind::PhaseEnd { phase, index } => {
                    if let Some(i) = open_phases.iter().rposition(|p| p.0 == phase && p.1 == index) {
                        let (_, _, start) = open_phases.remove(i);
                        w.stats.phase_slices += 1;
                        let name = trace.string(phase).unwrap_or("?");
                        let (ts, dur) = (w.ts_f64(start), m.t_ns.saturating_sub(start) as f64 / 1000.0);
                        w.value(json!({"ph": "X", "name": name, "cat": "phase", "pid": PID, "tid": TID_PHASES,
                            "ts": ts, "dur": dur, "args": {"index": index}}))?;
                    }
                }
                MarkerKind::Label { label } => {
                    w.stats.instant_events += 1;
                    let ts = w.ts_f64(m.t_ns);
                    w.value(json!({"ph": "i", "s": "t", "name": trace.string(label).unwrap_or("?"), "pid": PID,
                        "tid": TID_PHASES, "ts": ts}))?;
                }
                // Iterations are drawn from their kernels (GPU clock) rather than from
                // host-side markers, so the slices enclose their kernels exactly.
                MarkerKind::IterationBegin { .. } | MarkerKind::IterationEnd { .. } | MarkerKind::Other { .. } => {}
            },
            Event::Dropped(d) => {
                w.stats.instant_events += 1;
                let ts = w.ts_f64(d.t_ns);
                let src = trace.string(d.source).unwrap_or("?");
                w.value(json!({"ph": "i", "s": "p", "name": format!("dropped {} {src} records", d.count),
                    "pid": PID, "tid": TID_PHASES, "ts": ts, "args": {"source": src, "count": d.count}}))?;
            }
            Event::ClockSync(_) => {}
        }
    }
    for (s, layer, inf) in streams.clone() {
        if let Some(o) = layer {
            w.close_layer(s, o)?;
        }
        if let Some(o) = inf {
            w.close_inference(s, o)?;
        }
    }
    // A phase still open at the end (a cut-short recording) runs to the last event.
    for (phase, index, start) in std::mem::take(&mut open_phases) {
        w.stats.phase_slices += 1;
        let name = format!("{} (unfinished)", trace.string(phase).unwrap_or("?"));
        let (ts, dur) = (w.ts_f64(start), last_t.saturating_sub(start) as f64 / 1000.0);
        w.value(json!({"ph": "X", "name": name, "cat": "phase", "pid": PID, "tid": TID_PHASES, "ts": ts, "dur": dur,
            "args": {"index": index}}))?;
    }
    w.out.write_all(b"\n]}\n")?;
    w.out.flush()?;
    Ok(w.stats)
}
