//! `cnnergy tradeoff`: the revenue model over several settings (docs/revenue-model.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use cnnergy_traces::report::table::Format;
use cnnergy_traces::report::tradeoff::{self, Prices, SweepEntry};

use super::report::{analyse, to_output};

pub struct TradeoffArgs<'a> {
    pub inputs: &'a [PathBuf],
    pub slo_ms: Option<f64>,
    pub energy_price: f64,
    pub value_per_image: Option<f64>,
    pub format: &'a str,
    pub output: Option<&'a Path>,
    pub write_summary: Option<&'a Path>,
}

/// A sweep summary is JSON (starts with `{`); anything else is read as a trace.
fn is_summary(p: &Path) -> bool {
    std::fs::read(p).ok().and_then(|b| b.iter().copied().find(|c| !c.is_ascii_whitespace())) == Some(b'{')
}

pub fn tradeoff(out: &mut impl Write, a: &TradeoffArgs) -> Result<ExitCode> {
    let format: Format = a.format.parse().map_err(anyhow::Error::msg)?;
    if format == Format::Html {
        anyhow::bail!("--format html: tradeoff writes table, csv, json or md");
    }
    for (name, v) in
        [("--slo-ms", a.slo_ms), ("--energy-price", Some(a.energy_price)), ("--value-per-image", a.value_per_image)]
    {
        if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
            anyhow::bail!("{name} must be a non-negative number");
        }
    }
    let mut settings: Vec<SweepEntry> = Vec::new();
    for p in a.inputs {
        if is_summary(p) {
            settings.extend(tradeoff::read_summary(p).map_err(anyhow::Error::msg)?.settings);
        } else {
            let analysis = analyse(p, None)?;
            if !analysis.energy {
                eprintln!("note: {}: no power data, J/image unknown (excluded from the ranking)", p.display());
            }
            settings.push(SweepEntry::from_analysis(&p.display().to_string(), &analysis));
        }
    }
    if settings.is_empty() {
        anyhow::bail!("no settings: give traces or a sweep summary");
    }
    if let Some(p) = a.write_summary {
        tradeoff::write_summary(p, &settings).map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
    }
    let prices = Prices { slo_ms: a.slo_ms, energy_price_per_kwh: a.energy_price, value_per_image: a.value_per_image };
    let t = tradeoff::evaluate(&settings, prices);
    to_output(out, a.output, |w| tradeoff::render(&t, format, w))?;
    Ok(if t.best.is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
