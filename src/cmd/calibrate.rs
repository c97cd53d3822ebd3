//! `cnnergy calibrate`: NVML call costs, sensor update periods and step responses on
//! this machine's GPU (the work is in `cnnergy_host::calibrate`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use cnnergy_host::calibrate::{self, CalibrateOptions, Calibration, ResponseSummary};
use cnnergy_host::gpu::Gpu;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

fn ms(ns: i64) -> String {
    format!("{:.1}", ns as f64 / 1e6)
}

pub fn calibrate(out: &mut impl Write, device: usize, seconds: f64, output: Option<&Path>) -> Result<ExitCode> {
    if !(seconds.is_finite() && seconds >= 8.0) {
        bail!("--seconds must be at least 8 (a 2 s idle lead-in and one 3 s on / 3 s off cycle), got {seconds}");
    }
    let gpu = Gpu::open(device, cnnergy::ptx::module_set())?;
    let opts = CalibrateOptions { seconds, ..Default::default() };
    writeln!(out, "calibrating {} ({}), about {seconds:.0} s", gpu.info.name, gpu.info.uuid)?;
    out.flush()?;
    let cal = calibrate::run(&gpu, &opts, &mut |msg| eprintln!("  {msg}"))?;
    print(out, &cal)?;
    if let Some(p) = output {
        let f = std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
        serde_json::to_writer(std::io::BufWriter::new(f), &cal).with_context(|| format!("writing {}", p.display()))?;
        writeln!(out, "wrote {}", p.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print(out: &mut impl Write, cal: &Calibration) -> Result<()> {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "NVML call (idle)",
        "n",
        "min µs",
        "median µs",
        "p95 µs",
        "max µs",
    ]);
    for c in &cal.costs {
        match (&c.cost, &c.error) {
            (Some(s), _) => {
                t.add_row(vec![
                    c.sensor.to_string(),
                    s.n.to_string(),
                    us(s.min_ns),
                    us(s.median_ns),
                    us(s.p95_ns),
                    us(s.max_ns),
                ]);
            }
            (None, e) => {
                t.add_row(vec![c.sensor.to_string(), "0".into(), e.clone().unwrap_or_default()]);
            }
        }
    }
    writeln!(out, "{t}")?;

    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "update period",
        "read every ms",
        "idle median ms (p10-p90)",
        "busy median ms (p10-p90)",
    ]);
    let p = |e: &Option<calibrate::PeriodEstimate>| {
        e.map_or("no change seen".into(), |e| {
            format!("{} ({}-{}), n={}", ms(e.median_ns), ms(e.p10_ns), ms(e.p90_ns), e.intervals)
        })
    };
    for s in &cal.periods {
        t.add_row(vec![
            s.sensor.to_string(),
            s.read_period_ns.map_or("-".into(), |r| ms(r as i64)),
            p(&s.idle),
            p(&s.busy),
        ]);
    }
    writeln!(out, "{t}")?;

    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "step response",
        "edge",
        "edges",
        "delay ms",
        "to 50 % ms",
        "rise 10-90 % ms",
        "window ms",
    ]);
    let row = |name: &str, r: &Option<ResponseSummary>, edge: &str| match r {
        Some(r) => vec![
            name.to_string(),
            edge.into(),
            r.edges.to_string(),
            ms(r.delay_ns),
            ms(r.t50_ns),
            ms(r.rise_ns),
            ms(r.window_ns),
        ],
        None => vec![name.to_string(), edge.into(), "0".into(), "no clear step".into()],
    };
    for r in &cal.responses {
        t.add_row(row(r.sensor, &r.rising, "on"));
        t.add_row(row(r.sensor, &r.falling, "off"));
    }
    writeln!(out, "{t}")?;

    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "sampler (step experiment)",
        "reads",
        "missed",
        "errors",
        "median call µs",
        "max late µs",
    ]);
    for s in &cal.sampler.sensors {
        t.add_row(vec![
            s.name.to_string(),
            s.reads.to_string(),
            s.missed.to_string(),
            s.errors.to_string(),
            s.cost.map_or("-".into(), |c| us(c.median_ns)),
            us(s.max_late_ns),
        ]);
    }
    writeln!(out, "{t}")?;
    writeln!(
        out,
        "load: {} 8192^3, {:.2} ms per kernel; {} on/off cycles; {} records dropped",
        cal.load_kernel,
        cal.load_kernel_ms,
        cal.edges.len(),
        cal.sampler.dropped
    )?;
    Ok(())
}
