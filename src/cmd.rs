//! One function per subcommand. Each writes to `out` and returns the exit code.

pub mod calibrate;
pub mod diff;
pub mod export;
pub mod profile;
pub mod report;
pub mod sweep;
pub mod tradeoff;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use cnnergy_host::gpu::{self, Gpu};
use cnnergy_host::libs::{self, Lib};
use cnnergy_host::selftest;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map(|v| format!("{v}{unit}")).unwrap_or_else(|| "n/a".into())
}

pub fn devices(out: &mut impl Write) -> Result<ExitCode> {
    let devs = gpu::list_devices()?;
    let cupti = match libs::load(Lib::Cupti) {
        Ok(l) => l.path.display().to_string(),
        Err(e) => format!("not found ({e})"),
    };
    for d in &devs {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![format!("GPU {}", d.ordinal), d.name.clone()]);
        let rows: Vec<(&str, String)> = vec![
            ("UUID", d.uuid.clone()),
            ("compute capability", d.cc()),
            (
                "kernel module",
                cnnergy_host::registry::Target::for_cc(d.cc_major, d.cc_minor)
                    .map_or("none (needs >= 8.0)".into(), |t| t.name().to_string()),
            ),
            ("SMs", d.sm_count.to_string()),
            ("memory", format!("{:.1} GiB", d.memory_bytes as f64 / (1u64 << 30) as f64)),
            ("driver", opt(d.driver_version.as_deref(), "")),
            ("CUDA (driver API)", format!("{}.{}", d.cuda_driver_version.0, d.cuda_driver_version.1)),
            ("power limit", opt(d.power_limit_mw.map(|p| format!("{:.0}", p as f64 / 1000.0)), " W")),
            ("SM clock", opt(d.sm_clock_mhz, " MHz")),
            ("memory clock", opt(d.mem_clock_mhz, " MHz")),
            (
                "total-energy counter",
                match &d.energy_counter_mj {
                    Ok(mj) => format!("answers ({:.3} kJ)", *mj as f64 / 1e6),
                    Err(e) => format!("no ({e})"),
                },
            ),
            (
                "power-sample buffer",
                match &d.power_samples {
                    Ok(n) => format!("answers ({n} samples held)"),
                    Err(e) => format!("no ({e})"),
                },
            ),
            ("libcupti", cupti.clone()),
        ];
        for (k, v) in rows {
            t.add_row(vec![k.to_string(), v]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn selftest(
    out: &mut impl Write,
    device: usize,
    filter: Option<&str>,
    seed: Option<u64>,
    list: bool,
) -> Result<ExitCode> {
    if list {
        for n in selftest::case_names().into_iter().filter(|n| filter.is_none_or(|f| selftest::matches(n, f))) {
            writeln!(out, "{n}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let gpu = Gpu::open(device, cnnergy::ptx::module_set())?;
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    writeln!(
        out,
        "selftest on GPU {} {} (cc {}, module {}), seed {seed:#x}",
        gpu.info.ordinal,
        gpu.info.name,
        gpu.info.cc(),
        gpu.target.name()
    )?;
    let mut io_err = None;
    let mut print = |c: &selftest::CaseResult| {
        let r = writeln!(
            out,
            "{} {:<48} {:>9.1} ms  {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.millis,
            c.detail
        );
        if let Err(e) = r {
            io_err.get_or_insert(e);
        }
    };
    let mut report = selftest::run(&gpu, filter, seed, &mut print);
    // Then the recorder: a short profile, direct and as a CUDA graph, every kernel mapped.
    report.cases.extend(selftest::profile::run_profile_checks(&gpu, filter, seed, &mut print));
    if let Some(e) = io_err {
        return Err(e.into());
    }
    writeln!(out, "{} passed, {} failed", report.passed(), report.failed())?;
    Ok(if report.failed() == 0 && !report.cases.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn kernels(out: &mut impl Write, offline: bool, arch: &str) -> Result<ExitCode> {
    use cnnergy_host::ptxas::{self, KernelResources};
    use std::collections::HashMap;
    let (source, res): (String, HashMap<String, KernelResources>) =
        match (offline, Gpu::open(0, cnnergy::ptx::module_set())) {
            (false, Ok(gpu)) => {
                let mut m = HashMap::new();
                for k in cnnergy_host::registry::all() {
                    m.insert(k.symbol.to_string(), cnnergy_host::registry::driver_resources(&gpu.module, k.symbol)?);
                }
                (format!("driver attributes on {} ({})", gpu.info.name, gpu.target.name()), m)
            }
            _ => {
                let ptx = cnnergy::ptx::MODULES
                    .iter()
                    .find(|(a, _)| *a == arch)
                    .ok_or_else(|| anyhow::anyhow!("no embedded module for {arch}: choose sm_80 or sm_90a"))?
                    .1;
                match ptxas::locate() {
                    Some(p) => {
                        let r = ptxas::assemble(&p, arch, ptx).map_err(|e| anyhow::anyhow!("ptxas failed:\n{e}"))?;
                        (
                            format!("ptxas -arch={arch} ({})", p.display()),
                            r.into_iter().map(|k| (k.name.clone(), k)).collect(),
                        )
                    }
                    None => (
                        "no GPU and no ptxas (pip install nvidia-cuda-nvcc==13.0.88): resources unknown".into(),
                        HashMap::new(),
                    ),
                }
            }
        };
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "kernel",
        "layer",
        "variant",
        "dtype",
        "layout",
        "regs",
        "smem B",
        "stack/local B",
        "spills B",
        "launch",
    ]);
    for k in cnnergy_host::registry::all() {
        let r = res.get(k.symbol);
        let f = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
        t.add_row(vec![
            k.symbol.to_string(),
            k.layer.name().to_string(),
            k.variant.to_string(),
            k.dtype.name().to_string(),
            format!("{:?}", k.layout).to_uppercase(),
            f(r.map(|r| r.registers)),
            f(r.map(|r| r.smem_bytes)),
            f(r.map(|r| r.stack_bytes)),
            f(r.map(|r| r.spill_store_bytes + r.spill_load_bytes)),
            k.launch_rule.to_string(),
        ]);
    }
    writeln!(out, "{t}\nresources from {source}")?;
    Ok(ExitCode::SUCCESS)
}

pub fn models(out: &mut impl Write) -> Result<ExitCode> {
    use cnnergy_host::rewrite::{rewrite_graph, RewriteOptions};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "model",
        "parameters",
        "GFLOPs",
        "layers",
        "kernels/inference (unfused)",
        "kernels/inference (fused)",
    ]);
    for name in cnnergy_host::models::NAMES {
        let g = cnnergy_host::models::build(name, 1).expect("built-in model")?;
        t.add_row(vec![
            name.to_string(),
            g.parameter_count().to_string(),
            format!("{:.2}", 2.0 * g.macs() as f64 / 1e9),
            g.nodes.len().to_string(),
            g.kernel_layers().to_string(),
            rewrite_graph(&g, RewriteOptions::default())?.kernel_layers().to_string(),
        ]);
    }
    writeln!(out, "{t}")?;
    writeln!(out, "GFLOPs = 2 x multiply-adds of convolutions and linear layers, batch 1, 224x224 input.")?;
    writeln!(out, "kernels/inference: one launch per layer that moves data; fused = batch-norm folded, activations and residual adds in the conv epilogue.")?;
    Ok(ExitCode::SUCCESS)
}

/// `cnnergy run`'s arguments.
pub struct RunArgs {
    pub model: String,
    pub device: String,
    pub batch: usize,
    pub seed: u64,
    pub no_fuse: bool,
    pub top_layers: usize,
    pub dtype: String,
    pub variants: String,
    pub graphs: bool,
    pub iters: Option<usize>,
    pub check: bool,
    /// Raw little-endian f32 NCHW input (default: the seeded input).
    pub input: Option<PathBuf>,
    /// Write the logits here as raw little-endian f32.
    pub logits_out: Option<PathBuf>,
    /// Write the timing summary here as JSON (GPU).
    pub json: Option<PathBuf>,
}

/// The model input: `--input FILE` (raw little-endian f32, exactly `dims` elements) or the seeded input.
fn model_input(a: &RunArgs, dims: [usize; 4]) -> Result<Vec<f32>> {
    let Some(path) = &a.input else { return Ok(cnnergy_host::weights::seeded_input(dims, a.seed)) };
    let bytes = std::fs::read(path).with_context(|| format!("reading --input {}", path.display()))?;
    let n: usize = dims.iter().product();
    if bytes.len() != n * 4 {
        anyhow::bail!(
            "--input {}: {} bytes, expected {} (f32 little-endian, shape {}x{}x{}x{})",
            path.display(),
            bytes.len(),
            n * 4,
            dims[0],
            dims[1],
            dims[2],
            dims[3]
        );
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn write_logits(a: &RunArgs, logits: &[f32]) -> Result<()> {
    if let Some(path) = &a.logits_out {
        let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, bytes).with_context(|| format!("writing --logits-out {}", path.display()))?;
    }
    Ok(())
}

/// The graph (rewritten unless `no_fuse`) and weights of a built-in model or ONNX file.
pub(crate) fn load_model(
    model: &str,
    batch: usize,
    seed: u64,
    no_fuse: bool,
) -> Result<(cnnergy_host::graph::Graph, cnnergy_host::weights::Weights)> {
    use cnnergy_host::{models, rewrite, weights};
    let (g, w) = if Path::new(model).is_file() {
        // An ONNX file brings its own weights.
        cnnergy_host::onnx::import(Path::new(model), Some(batch)).map_err(|e| anyhow::anyhow!("{model}: {e}"))?
    } else {
        let g = models::build(model, batch).ok_or_else(|| {
            anyhow::anyhow!("`{model}` is neither a file nor a built-in model ({})", models::NAMES.join(", "))
        })??;
        let w = weights::Weights::seeded(&g, seed);
        (g, w)
    };
    let opts = if no_fuse { rewrite::RewriteOptions::none() } else { rewrite::RewriteOptions::default() };
    Ok(rewrite::rewrite(&g, &w, opts)?)
}

fn print_top5(out: &mut impl Write, logits: &[f32], batch: usize) -> Result<()> {
    let classes = logits.len() / batch.max(1);
    for (b, row) in logits.chunks(classes.max(1)).enumerate().take(4) {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        idx.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
        let top: Vec<String> = idx.iter().take(5).map(|&i| format!("{i}:{:.4}", row[i])).collect();
        writeln!(out, "image {b}: top-5 logits {}", top.join(" "))?;
    }
    Ok(())
}

pub fn run(out: &mut impl Write, a: &RunArgs) -> Result<ExitCode> {
    use cnnergy_host::exec_cpu;
    let (model, batch, seed, no_fuse, top_layers) = (a.model.as_str(), a.batch, a.seed, a.no_fuse, a.top_layers);
    if a.device == "gpu" || a.device.starts_with("gpu:") {
        return run_gpu(out, a);
    }
    if a.device != "cpu" {
        anyhow::bail!("--device {}: expected cpu, gpu or gpu:N", a.device);
    }
    let (g, w) = load_model(model, batch, seed, no_fuse)?;
    let input = model_input(a, g.tensors[g.input].dims)?;
    let t0 = std::time::Instant::now();
    let (logits, mut times) = exec_cpu::run_timed(&g, &w, &input)?;
    let total = t0.elapsed();
    write_logits(a, &logits)?;
    writeln!(
        out,
        "{model} on the CPU reference backend, batch {batch}, seed {seed}, {} graph: {:.2} s",
        if no_fuse { "unfused" } else { "fused" },
        total.as_secs_f64()
    )?;
    print_top5(out, &logits, batch)?;
    times.sort_by_key(|l| std::cmp::Reverse(l.elapsed));
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["layer", "op", "ms", "share"]);
    for l in times.iter().take(top_layers) {
        t.add_row(vec![
            l.name.clone(),
            l.op.to_string(),
            format!("{:.1}", l.elapsed.as_secs_f64() * 1e3),
            format!("{:.1}%", 100.0 * l.elapsed.as_secs_f64() / total.as_secs_f64()),
        ]);
    }
    writeln!(out, "{t}")?;
    Ok(ExitCode::SUCCESS)
}

/// `cnnergy run --device gpu`: builds a plan, optionally checks it against the CPU
/// reference, runs once for the logits, then times batches with CUDA events.
fn run_gpu(out: &mut impl Write, a: &RunArgs) -> Result<ExitCode> {
    use cnnergy_host::exec_gpu::{self, Plan};
    let ordinal: usize = match a.device.strip_prefix("gpu:") {
        Some(n) => n.parse().map_err(|_| anyhow::anyhow!("--device {}: expected gpu:N", a.device))?,
        None => 0,
    };
    let opts = crate::cmd::profile::parse_dtype(&a.dtype)?.with_variants(&a.variants)?;
    let dtype = opts.precision();
    let gpu = Gpu::open(ordinal, cnnergy::ptx::module_set())?;
    if a.check {
        let (g1, w1) = load_model(&a.model, 1, a.seed, a.no_fuse)?;
        let rel = exec_gpu::check_against_cpu(&gpu, &g1, &w1, &opts, a.seed)?;
        writeln!(out, "check: batch 1 {dtype} GPU logits vs CPU reference: relative L2 {rel:.3e} (ok)")?;
    }
    let (g, w) = load_model(&a.model, a.batch, a.seed, a.no_fuse)?;
    let plan = Plan::new(&gpu, &g, &w, &opts)?;
    let input = model_input(a, g.tensors[g.input].dims)?;
    let logits = plan.run(&input)?;
    write_logits(a, &logits)?;
    let mib = |b: usize| b as f64 / 1048576.0;
    writeln!(
        out,
        "{} on {} (GPU {}), batch {}, {}, {} graph, {} launches{}",
        a.model,
        gpu.info.name,
        ordinal,
        a.batch,
        dtype,
        if a.no_fuse { "unfused" } else { "fused" },
        plan.blueprint.launches.len(),
        if a.graphs { ", CUDA graph" } else { "" }
    )?;
    print_top5(out, &logits, a.batch)?;
    let graph = if a.graphs { Some(plan.capture()?) } else { None };
    let mut ms = plan.time_batches(graph.as_ref(), a.iters)?;
    let iters = ms.len();
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    let p95 = ms[((ms.len() as f64 * 0.95).ceil() as usize).clamp(1, ms.len()) - 1];
    let (free, total) = plan.mem_info()?;
    writeln!(
        out,
        "latency per batch: median {median:.3} ms, p95 {p95:.3} ms over {iters} batches; {:.1} images/s",
        a.batch as f64 * 1000.0 / median
    )?;
    writeln!(
        out,
        "device memory: activations {:.1} MiB (peak, reused buffers), weights {:.1} MiB; device in use {:.0} of {:.0} MiB",
        mib(plan.peak_activation_bytes()),
        mib(plan.weight_bytes()),
        mib(total - free),
        mib(total)
    )?;
    if let Some(path) = &a.json {
        let j = serde_json::json!({
            "model": a.model, "device": gpu.info.name, "batch": a.batch, "dtype": a.dtype,
            "fused": !a.no_fuse, "graphs": a.graphs, "launches": plan.blueprint.launches.len(),
            "batches": iters, "latency_ms_median": median, "latency_ms_p95": p95,
            "images_per_s": a.batch as f64 * 1000.0 / median,
            "peak_activation_bytes": plan.peak_activation_bytes(), "weight_bytes": plan.weight_bytes(),
            "device_used_bytes": total - free,
        });
        std::fs::write(path, serde_json::to_string_pretty(&j)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bench_layers(
    out: &mut impl Write,
    models: &[String],
    batches: &[usize],
    filter: Option<&str>,
    cases_out: Option<&Path>,
    json: Option<&Path>,
    device: usize,
) -> Result<ExitCode> {
    use cnnergy_host::bench;
    let names: Vec<&str> = models.iter().map(String::as_str).collect();
    let mut cases = bench::layer_cases(&names, batches)?;
    if let Some(f) = filter {
        cases.retain(|c| c.id.contains(f));
    }
    if let Some(p) = cases_out {
        std::fs::write(p, serde_json::to_string_pretty(&cases)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
    }
    let gpu = Gpu::open(device, cnnergy::ptx::module_set())?;
    let copy_gbs = bench::copy_bandwidth_gbs(&gpu, 1 << 30)?;
    writeln!(
        out,
        "{} ({}), device-to-device copy {copy_gbs:.0} GB/s (read + write)",
        gpu.info.name,
        gpu.target.name()
    )?;
    let rnd = bench::RandomSource::new(&gpu, 0x5eed)?;
    let bar = indicatif::ProgressBar::new(cases.len() as u64);
    let mut results = Vec::new();
    for c in &cases {
        bar.set_message(c.id.clone());
        match bench::run_case(&gpu, &rnd, c) {
            Ok(r) => results.extend(r),
            Err(e) => bar.println(format!("{}: {e}", c.id)),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "layer",
        "x",
        "precision",
        "variant",
        "median us",
        "TFLOP/s",
        "GB/s",
        "% copy BW",
    ]);
    for r in &results {
        t.add_row(vec![
            r.id.clone(),
            r.count.to_string(),
            r.precision.clone(),
            r.variant.clone(),
            format!("{:.1}", r.median_us),
            format!("{:.2}", r.tflops),
            format!("{:.0}", r.gbs),
            format!("{:.0}", 100.0 * r.gbs / copy_gbs),
        ]);
    }
    writeln!(out, "{t}")?;
    if let Some(p) = json {
        let doc = serde_json::json!({
            "device": gpu.info.name, "target": gpu.target.name(), "copy_gbs": copy_gbs, "results": results,
        });
        std::fs::write(p, serde_json::to_string_pretty(&doc)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn info(out: &mut impl Write, trace: &Path, json: bool) -> Result<ExitCode> {
    let report = cnnergy_traces::info::inspect(trace).map_err(|e| anyhow::anyhow!("{}: {e}", trace.display()))?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{report}")?;
    }
    // A damaged or unfinished trace is still described in full, but is not a success.
    Ok(if report.is_damaged() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
