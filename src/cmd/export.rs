//! `cnnergy export --chrome`: the trace as Chrome / Perfetto trace JSON.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cnnergy_traces::report::export;
use cnnergy_traces::{Trace, TraceData};

pub fn export(out: &mut impl Write, trace: &Path, chrome: &Path) -> Result<ExitCode> {
    let data = TraceData::open(trace).with_context(|| trace.display().to_string())?;
    let t = Trace::parse(&data).with_context(|| trace.display().to_string())?;
    let file = std::fs::File::create(chrome).with_context(|| format!("creating {}", chrome.display()))?;
    // Large buffer: the exporter writes many small pieces.
    let w = std::io::BufWriter::with_capacity(1 << 20, file);
    let s = export::chrome(&t, w).with_context(|| format!("writing {}", chrome.display()))?;
    if let Some(d) = t.damage() {
        eprintln!("warning: {}: {d}; exported what precedes the damage", trace.display());
    }
    if let Some(e) = &s.stopped_at {
        eprintln!("warning: {}: {e}; exported what precedes it", trace.display());
    }
    writeln!(
        out,
        "wrote {}: {} kernel, {} layer, {} inference and {} phase slices, {} counter values; open it in ui.perfetto.dev",
        chrome.display(),
        s.kernel_slices,
        s.layer_slices,
        s.inference_slices,
        s.phase_slices,
        s.counter_events
    )?;
    Ok(ExitCode::SUCCESS)
}
