//! Speed of the offline tools on a synthetic trace of about 1 M kernels with power,
//! energy, clock and temperature samples (`report::synth`: 12 kernels per inference,
//! 83 000 inferences, ~8 s of simulated GPU time).
//!
//! `cargo run --release -p cnnergy-traces --example reportbench [-- KERNELS]`
//!
//! Prints the time of each stage, best of 3 runs:
//! * read: parse + decode every record (the zero-copy reader),
//! * analyze: energy attribution + figures + the report's own pass (`Analysis::of`),
//! * render: the layer table as text, CSV and JSON, and the HTML page with its charts,
//! * export: Chrome / Perfetto JSON into memory.
//!
//! Last line: `kernels=N read_s=.. analyze_s=.. render_s=.. report_s=.. export_s=.. export_mb=..`
//! (report_s = analyze + render).

use std::time::Instant;

use cnnergy_traces::report::{self, synth, table::Format, Analysis, By, Sort};
use cnnergy_traces::{energy, Trace, TraceData};

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    (best, last.expect("runs > 0"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let per_inference = 12; // kernels of the default synthetic model with one block
    let iters = (target / per_inference) as u32;
    let spec = synth::Spec {
        warmup: iters / 20,
        measure: iters - iters / 20,
        batch: 1,
        time_scale: 0.05, // ~130 µs inferences: 1 M kernels in ~12 s of GPU time
        ..synth::Spec::default()
    };
    let dir = std::env::temp_dir().join(format!("cnnergy-reportbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.cnt");
    let t = Instant::now();
    let truth = synth::write(std::io::BufWriter::new(std::fs::File::create(&path)?), &spec)?;
    eprintln!(
        "synthesized {} ({:.1} MB, {} measured kernels, {:.1} s window) in {:.2} s",
        path.display(),
        std::fs::metadata(&path)?.len() as f64 / 1e6,
        truth.kernels,
        truth.window_ns as f64 * 1e-9,
        t.elapsed().as_secs_f64()
    );

    let data = TraceData::open(&path)?;
    let (read_s, kernels) = best(3, || {
        let trace = Trace::parse(&data).expect("parse");
        trace.events().filter(|e| matches!(e, Ok(cnnergy_traces::Event::Kernel(_)))).count() as u64
    });
    let trace = Trace::parse(&data)?;
    let (energy_s, _) = best(3, || energy::analyze(&trace, &energy::Options::default()).map(|a| a.layers.len()));
    eprintln!("energy::analyze alone: {energy_s:.3} s");
    let (analyze_s, analysis) = best(3, || Analysis::of(&trace, "bench.cnt", &energy::Options::default()));
    let analysis = analysis?;
    let (render_s, bytes) = best(3, || {
        let mut n = 0;
        for f in [Format::Table, Format::Csv, Format::Json] {
            let mut v = Vec::new();
            report::render(&analysis, f, By::Layer, Sort::Energy, &mut v).expect("render");
            n += v.len();
        }
        let mut v = Vec::new();
        report::html::report(&analysis, Sort::Energy, &mut v).expect("html");
        n + v.len()
    });
    let (export_s, size) = best(3, || {
        let mut v = Vec::with_capacity(400 << 20);
        report::export::chrome(&trace, &mut v).expect("export");
        v.len()
    });
    eprintln!(
        "read {read_s:.3} s, analyze {analyze_s:.3} s, render {render_s:.3} s ({bytes} bytes), export {export_s:.3} s"
    );
    for n in &analysis.notes {
        eprintln!("note: {n}");
    }
    println!(
        "kernels={kernels} read_s={read_s:.3} analyze_s={analyze_s:.3} render_s={render_s:.3} report_s={:.3} export_s={export_s:.3} export_mb={:.0}",
        analyze_s + render_s,
        size as f64 / 1e6
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
