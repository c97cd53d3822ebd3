//! `cnnergy info`: a human (and JSON) report on one trace, damage included.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::error::{Result, TraceError};
use crate::format::Version;
use crate::reader::Trace;
use crate::records::*;
use crate::TraceData;

/// What `inspect` found. `Display` is the multi-line human report.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Path (or label) of the inspected data.
    pub source: String,
    pub file_bytes: u64,
    pub version: Version,
    pub header: Header<'static>,
    pub strings: u64,
    pub layers: u64,
    /// Intact frames, all kinds.
    pub frames: u64,
    pub event_frames: u64,
    /// Frames of kinds newer than this reader (skipped).
    pub unknown_frames: u64,
    /// Records decoded, per kind.
    pub counts: Counts,
    /// Earliest event timestamp and latest event end (trace clock).
    pub first_t_ns: Option<u64>,
    pub last_t_ns: Option<u64>,
    /// Lowest and highest kernel iteration seen.
    pub iterations: Option<[u32; 2]>,
    pub power: Option<PowerStats>,
    /// Last minus first energy counter reading.
    pub energy_mj: Option<u64>,
    /// Dropped records summed per source.
    pub dropped: Vec<DroppedSource>,
    pub last_clock_sync: Option<ClockSync>,
    /// The closing summary frame, if the writer finished cleanly.
    pub summary: Option<Summary>,
    /// Set when the summary frame disagrees with the records actually present.
    pub summary_mismatch: Option<String>,
    /// First damage found (frames after it are unreadable).
    pub damage: Option<Damage>,
    /// Bytes before the damage (the whole file when undamaged).
    pub intact_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PowerStats {
    pub samples: u64,
    pub min_mw: u32,
    pub mean_mw: f64,
    pub max_mw: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedSource {
    pub source: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub offset: u64,
    /// "truncated", "checksum" or "malformed".
    pub kind: String,
    pub message: String,
}

impl Damage {
    fn from_error(e: &TraceError) -> Damage {
        Damage { offset: e.offset().map_or(0, |o| o.0), kind: e.kind().to_string(), message: e.to_string() }
    }
}

impl Inspection {
    /// True when the trace is damaged, its summary is missing (recording cut short)
    /// or the summary disagrees with the records.
    pub fn is_damaged(&self) -> bool {
        self.damage.is_some() || self.summary.is_none() || self.summary_mismatch.is_some()
    }
}

/// Inspects a trace file (memory-mapped). `Err` only when the file cannot be read or
/// is not a trace at all (bad magic, empty, unsupported version, unreadable
/// header); damage after the header is reported inside the `Inspection`.
pub fn inspect(path: &Path) -> Result<Inspection, TraceError> {
    let data = TraceData::open(path)?;
    inspect_bytes(&data, &path.display().to_string())
}

/// [`inspect`] over bytes already in memory; `source` names them in the report.
pub fn inspect_bytes(data: &[u8], source: &str) -> Result<Inspection, TraceError> {
    let trace = Trace::parse(data)?;
    let mut counts = Counts::default();
    let (mut first, mut last) = (u64::MAX, 0u64);
    let mut iters: Option<[u32; 2]> = None;
    let (mut pmin, mut pmax, mut psum) = (u32::MAX, 0u32, 0u128);
    let (mut e_first, mut e_last) = (None::<u64>, 0u64);
    let mut dropped: Vec<(StrId, u64)> = Vec::new();
    let mut last_sync = None;
    let mut damage = trace.damage().map(Damage::from_error);
    let mut event_damage = None;

    for ev in trace.events() {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                event_damage = Some(e);
                break;
            }
        };
        counts.add(ev.kind(), 1);
        first = first.min(ev.t_ns());
        last = last.max(ev.end_ns()).max(ev.t_ns());
        match ev {
            Event::Kernel(k) => {
                let [lo, hi] = iters.get_or_insert([k.iteration, k.iteration]);
                *lo = (*lo).min(k.iteration);
                *hi = (*hi).max(k.iteration);
            }
            Event::Power(p) => {
                pmin = pmin.min(p.power_mw);
                pmax = pmax.max(p.power_mw);
                psum += p.power_mw as u128;
            }
            Event::Energy(e) => {
                e_first.get_or_insert(e.energy_mj);
                e_last = e.energy_mj;
            }
            Event::Dropped(d) => {
                if let Some((_, n)) = dropped.iter_mut().find(|(s, _)| *s == d.source) {
                    *n = n.saturating_add(d.count);
                } else if dropped.len() < 64 {
                    // More sources than that is corruption-shaped; counts still show.
                    dropped.push((d.source, d.count));
                }
            }
            Event::ClockSync(c) => last_sync = Some(c),
            _ => {}
        }
    }

    // Damage inside an events frame lies before any frame-level damage found later.
    let mut intact = trace.intact_len().0;
    if let Some(e) = &event_damage {
        let off = e.offset().map_or(0, |o| o.0);
        let frame_start = trace.frames().iter().rev().find(|f| f.offset.0 <= off).map_or(off, |f| f.offset.0);
        intact = intact.min(frame_start);
        damage = Some(Damage::from_error(e));
    }

    let any = counts.total() > 0;
    let summary = trace.summary().copied();
    let summary_mismatch = match (&summary, &damage) {
        (Some(s), None) => check_summary(s, &counts, any.then_some((first, last)), &trace),
        _ => None,
    };

    Ok(Inspection {
        source: source.to_string(),
        file_bytes: data.len() as u64,
        version: trace.version(),
        header: trace.header().clone().into_owned(),
        strings: trace.strings().len() as u64,
        layers: trace.layers().len() as u64,
        frames: trace.frames().len() as u64,
        event_frames: trace.frames().iter().filter(|f| f.kind == crate::FrameKind::EVENTS).count() as u64,
        unknown_frames: trace.unknown_frames(),
        counts,
        first_t_ns: any.then_some(first),
        last_t_ns: any.then_some(last),
        iterations: iters,
        power: (counts.power > 0).then(|| PowerStats {
            samples: counts.power,
            min_mw: pmin,
            mean_mw: psum as f64 / counts.power as f64,
            max_mw: pmax,
        }),
        energy_mj: e_first.map(|f| e_last.wrapping_sub(f)),
        dropped: dropped
            .into_iter()
            .map(|(s, count)| DroppedSource {
                source: trace.string(s).map_or_else(|| format!("string #{}", s.0), str::to_string),
                count,
            })
            .collect(),
        last_clock_sync: last_sync,
        summary,
        summary_mismatch,
        damage,
        intact_bytes: intact,
    })
}

fn check_summary(s: &Summary, counts: &Counts, span: Option<(u64, u64)>, trace: &Trace<'_>) -> Option<String> {
    for k in EventKind::ALL {
        if s.counts.get(k) != counts.get(k) {
            return Some(format!(
                "summary says {} {} records, the file holds {}",
                s.counts.get(k),
                k.name(),
                counts.get(k)
            ));
        }
    }
    let (first, last) = span.unwrap_or((0, 0));
    if (s.first_t_ns, s.last_t_ns) != (first, last) {
        return Some(format!(
            "summary time span {}..{} ns differs from the records' {}..{} ns",
            s.first_t_ns, s.last_t_ns, first, last
        ));
    }
    let frames = trace.frames().iter().filter(|f| f.kind == crate::FrameKind::EVENTS).count() as u64;
    if s.event_frames != frames {
        return Some(format!("summary says {} events frames, the file holds {frames}", s.event_frames));
    }
    None
}

// ---------------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------------

/// `2026-11-27T10:00:00.123456789Z` from Unix nanoseconds (proleptic Gregorian, UTC).
pub fn format_unix_ns(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z", sod / 3600, sod / 60 % 60, sod % 60, ns % 1_000_000_000)
}

fn secs(ns: u64) -> String {
    format!("{:.6} s", ns as f64 / 1e9)
}

fn watts(mw: f64) -> String {
    format!("{:.3} W", mw / 1000.0)
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        let (d, w, tb) = (&h.device, &h.workload, &h.timebase);
        writeln!(f, "trace      {} ({} bytes, format {})", self.source, self.file_bytes, self.version)?;
        writeln!(f, "tool       {}", h.tool_version)?;
        writeln!(f, "command    {}", h.command_line.join(" "))?;
        writeln!(f, "started    {}", format_unix_ns(h.start_unix_ns))?;
        writeln!(f, "host       {}", h.host)?;
        writeln!(f, "device     {} ({})", d.name, d.uuid)?;
        writeln!(
            f,
            "           sm_{}{}, {} SMs, {:.1} GiB, driver {}, CUDA {}",
            d.cc_major,
            d.cc_minor,
            d.sm_count,
            d.memory_bytes as f64 / (1u64 << 30) as f64,
            d.driver_version,
            d.cuda_version
        )?;
        writeln!(
            f,
            "           power limit {}, clocks at start {} MHz SM / {} MHz memory",
            watts(d.power_limit_mw as f64),
            d.sm_clock_mhz,
            d.mem_clock_mhz
        )?;
        writeln!(f, "workload   {}, batch {}, {}, {} iterations", w.model, w.batch_size, w.dtype, w.iterations)?;
        if !w.phases.is_empty() {
            let p: Vec<String> = w.phases.iter().map(|p| format!("{} x{}", p.name, p.iterations)).collect();
            writeln!(f, "phases     {}", p.join(", "))?;
        }
        if !w.kernel_variants.is_empty() {
            let v: Vec<String> = w.kernel_variants.iter().map(|v| format!("{}={}", v.target, v.variant)).collect();
            writeln!(f, "variants   {}", v.join(", "))?;
        }
        write!(
            f,
            "timebase   clock {}, NVML offset {} ns (±{} ns) at start",
            tb.clock, tb.nvml_offset_ns, tb.residual_ns
        )?;
        match &self.last_clock_sync {
            Some(c) => writeln!(
                f,
                "; {} ns (±{} ns) at last sync, drift {} ns",
                c.nvml_offset_ns,
                c.residual_ns,
                c.nvml_offset_ns.wrapping_sub(tb.nvml_offset_ns)
            )?,
            None => writeln!(f)?,
        }
        writeln!(f, "tables     {} strings, {} layers", self.strings, self.layers)?;
        write!(f, "frames     {} ({} events)", self.frames, self.event_frames)?;
        if self.unknown_frames > 0 {
            write!(f, ", {} of unknown kinds skipped", self.unknown_frames)?;
        }
        writeln!(f)?;
        writeln!(f, "records    {} in all", self.counts.total())?;
        for k in EventKind::ALL {
            writeln!(f, "  {:<12} {:>12}", k.name(), self.counts.get(k))?;
        }
        match (self.first_t_ns, self.last_t_ns) {
            (Some(a), Some(b)) => writeln!(f, "time span  {} (t = {a} .. {b} ns)", secs(b.saturating_sub(a)))?,
            _ => writeln!(f, "time span  no events")?,
        }
        if let Some([lo, hi]) = self.iterations {
            writeln!(f, "iterations {lo} .. {hi}")?;
        }
        if let Some(p) = &self.power {
            writeln!(
                f,
                "power      min {} / mean {} / max {} over {} samples",
                watts(p.min_mw as f64),
                watts(p.mean_mw),
                watts(p.max_mw as f64),
                p.samples
            )?;
        }
        if let Some(e) = self.energy_mj {
            writeln!(f, "energy     {:.3} J (counter delta)", e as f64 / 1000.0)?;
        }
        if self.dropped.is_empty() {
            writeln!(f, "dropped    none")?;
        } else {
            let v: Vec<String> = self.dropped.iter().map(|d| format!("{}: {}", d.source, d.count)).collect();
            writeln!(f, "dropped    {}", v.join(", "))?;
        }
        match (&self.summary, &self.summary_mismatch) {
            (Some(_), None) => writeln!(f, "summary    present, matches the records")?,
            (Some(_), Some(m)) => writeln!(f, "summary    present but inconsistent: {m}")?,
            (None, _) => writeln!(f, "summary    MISSING: the recording was cut short (no closing summary frame)")?,
        }
        match &self.damage {
            None => write!(f, "damage     none")?,
            Some(d) => write!(
                f,
                "damage     {}\n           everything before byte offset {} ({} of {} bytes) was read",
                d.message, self.intact_bytes, self.intact_bytes, self.file_bytes
            )?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::format_unix_ns;

    #[test]
    fn civil_dates() {
        assert_eq!(format_unix_ns(0), "1970-01-01T00:00:00.000000000Z");
        // 2026-11-27T12:34:56.5Z
        assert_eq!(format_unix_ns(1_795_782_896_500_000_000), "2026-11-27T12:34:56.500000000Z");
        assert_eq!(format_unix_ns(951_782_400_000_000_000), "2000-02-29T00:00:00.000000000Z");
    }
}
