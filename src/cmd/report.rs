//! `cnnergy report`: a trace's energy figures as a table, CSV, JSON, Markdown or one
//! self-contained HTML page.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cnnergy_traces::energy;
use cnnergy_traces::report::{self, table::Format, Analysis, By, Sort};
use cnnergy_traces::{Trace, TraceData};

/// Opens, parses and analyses a trace; errors name the file.
pub fn analyse(path: &Path, sensor: Option<&str>) -> Result<Analysis> {
    let opts = energy::Options { sensor: sensor.map(str::to_string), ..energy::Options::default() };
    analyse_with(path, &opts)
}

/// [`analyse`] with explicit analysis options.
pub fn analyse_with(path: &Path, opts: &energy::Options) -> Result<Analysis> {
    let data = TraceData::open(path).with_context(|| path.display().to_string())?;
    let trace = Trace::parse(&data).with_context(|| path.display().to_string())?;
    Analysis::of(&trace, &path.display().to_string(), opts).with_context(|| path.display().to_string())
}

/// Writes `f`'s output to `output` (created) or to `out`.
pub fn to_output(
    out: &mut impl Write,
    output: Option<&Path>,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    match output {
        Some(p) => {
            let file = std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            let mut w = std::io::BufWriter::new(file);
            f(&mut w).with_context(|| format!("writing {}", p.display()))?;
            w.flush().with_context(|| format!("writing {}", p.display()))?;
        }
        None => f(out)?,
    }
    Ok(())
}

pub struct ReportArgs<'a> {
    pub trace: &'a Path,
    pub format: &'a str,
    pub sort: &'a str,
    pub by: &'a str,
    pub output: Option<&'a Path>,
    pub sensor: Option<&'a str>,
    /// "timeline", "replay" or "auto" (None = auto).
    pub method: Option<&'a str>,
}

pub fn report(out: &mut impl Write, a: &ReportArgs) -> Result<ExitCode> {
    let format: Format = a.format.parse().map_err(anyhow::Error::msg)?;
    let sort: Sort = a.sort.parse().map_err(anyhow::Error::msg)?;
    let by: By = a.by.parse().map_err(anyhow::Error::msg)?;
    let method = energy::parse_method(a.method.unwrap_or("auto")).map_err(anyhow::Error::msg)?;
    let opts = energy::Options { sensor: a.sensor.map(str::to_string), method, ..energy::Options::default() };
    let analysis = analyse_with(a.trace, &opts)?;
    if format == Format::Csv {
        // CSV holds one table; the notes go to stderr so they are not lost.
        for n in &analysis.notes {
            eprintln!("note: {n}");
        }
    }
    to_output(out, a.output, |w| match format {
        Format::Html => report::html::report(&analysis, sort, w),
        f => report::render(&analysis, f, by, sort, w),
    })?;
    if let Some(p) = a.output {
        writeln!(out, "wrote {}", p.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
