//! `cnnergy diff A B`: per-layer deltas with significance.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use cnnergy_traces::report::{diff, table::Format};

use super::report::{analyse, to_output};

pub fn diff(out: &mut impl Write, a: &Path, b: &Path, format: &str, output: Option<&Path>) -> Result<ExitCode> {
    let format: Format = format.parse().map_err(anyhow::Error::msg)?;
    if format == Format::Html {
        anyhow::bail!("--format html: diff writes table, csv, json or md");
    }
    let (x, y) = (analyse(a, None)?, analyse(b, None)?);
    let d = diff::diff(&x, &y);
    to_output(out, output, |w| diff::render(&d, format, w))?;
    Ok(ExitCode::SUCCESS)
}
