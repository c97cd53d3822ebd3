//! `cnnergy profile`: record a trace of a model run, then summarise it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use cnnergy_host::exec_gpu::{ExecOptions, Plan};
use cnnergy_host::gpu::Gpu;
use cnnergy_host::ops::DType;
use cnnergy_host::profile::{self, ProfileMeta, ProfileOptions, ReplayCache, ReplayOptions};
use cnnergy_traces::energy;
use cnnergy_traces::{Trace, TraceData};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

/// `cnnergy profile`'s arguments (also filled by `cnnergy replay` from a trace's header).
#[derive(clap::Args)]
pub struct ProfileArgs {
    /// A built-in model name (see `cnnergy models`) or an ONNX file.
    pub model: String,
    /// GPU to use (CUDA ordinal).
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// f32 (SIMT kernels, NCHW), tf32 (f32 data, TF32 tensor-core convs and linear
    /// layers, NHWC) or f16 (tensor cores, NHWC).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Seed for the weights (built-in models).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run the unfused graph.
    #[arg(long)]
    pub no_fuse: bool,
    /// Kernel variant overrides, e.g. `conv=implicit_gemm_64`.
    #[arg(long, default_value = "")]
    pub variants: String,
    /// Replay one captured CUDA graph per iteration.
    #[arg(long)]
    pub graphs: bool,
    /// Measured iterations (default: as many as fit in --seconds).
    #[arg(long)]
    pub iters: Option<u32>,
    /// Length of the measured phase when --iters is not given (≥ 5 s lets the energy
    /// counter update ≥ 50 times).
    #[arg(long, default_value_t = 6.0)]
    pub seconds: f64,
    /// Warm-up iterations (not measured).
    #[arg(long, default_value_t = 20)]
    pub warmup: u32,
    /// Trace file (default: MODEL-bBATCH-DTYPE-TIME.cnt).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// No CUPTI (no kernel records): for overhead measurements.
    #[arg(long)]
    pub no_cupti: bool,
    /// No NVML sampling: for overhead measurements.
    #[arg(long)]
    pub no_nvml: bool,
    /// Also save CUPTI's raw activity buffers in this folder (parser fixtures).
    #[arg(long)]
    pub dump_cupti: Option<PathBuf>,
    /// Write the recording's counters as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Layers in the summary.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Exit 1 unless every kernel maps to a layer, none is dropped and records = launches.
    #[arg(long)]
    pub strict: bool,
    /// After the measured phase, replay every layer in isolation for per-layer energy
    /// with confidence intervals (docs/energy-method.md).
    #[arg(long)]
    pub per_layer: bool,
    /// Replay: steady-state seconds per layer window (plus 0.2 s rise skipped).
    #[arg(long, default_value_t = 1.0)]
    pub replay_window: f64,
    /// Replay: trials per layer (separated by random delays).
    #[arg(long, default_value_t = 3)]
    pub replay_trials: u32,
    /// Replay: cache state of a replayed layer: `model` (outputs and weights rotate
    /// through copies spanning >= 2 x L2, inputs stay in L2, as in the model), `cold`
    /// (inputs rotate too) or `warm` (nothing rotates).
    #[arg(long, default_value = "model", value_parser = clap::builder::PossibleValuesParser::new(ReplayCache::NAMES))]
    pub replay_cache: String,
    /// Replay: what the GPU does in the random delays between windows: `idle`, or `model`
    /// (runs the whole model: keeps the die hot, which over a long replay drifts above the
    /// temperature of the measure phase).
    #[arg(long, default_value = "idle", value_parser = ["idle", "model"])]
    pub replay_between: String,
    /// Replay: alternate each layer with whole-model iterations (measured alone and
    /// subtracted) so the board runs at the model's power; for layers that exceed the
    /// power limit when run alone (see the report's "power-capped" note). Noisier.
    #[arg(long)]
    pub replay_in_context: bool,
}

/// The executor options of a `--dtype` precision (`f32`, `tf32`, `f16`), no variants.
pub fn parse_dtype(s: &str) -> Result<ExecOptions> {
    ExecOptions::from_name(s).ok_or_else(|| anyhow::anyhow!("--dtype {s}: expected f32, tf32 or f16"))
}

/// Validates what needs no GPU: precision, kernel variants, the model name. Returns the
/// data type (f32 for tf32) and the options.
pub fn check_args(a: &ProfileArgs) -> Result<(DType, ExecOptions)> {
    let opts = parse_dtype(&a.dtype)?.with_variants(&a.variants)?;
    let dtype = opts.dtype;
    let m = std::path::Path::new(&a.model);
    if !m.is_file() && !cnnergy_host::models::NAMES.contains(&a.model.as_str()) {
        anyhow::bail!(
            "`{}` is neither a file nor a built-in model ({})",
            a.model,
            cnnergy_host::models::NAMES.join(", ")
        );
    }
    Ok((dtype, opts))
}

/// A flag that Ctrl-C sets: the measured phase then ends early with a complete trace.
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    // A second handler cannot be installed; that only matters to tests running twice.
    let _ = ctrlc::set_handler(move || s.store(true, Ordering::Relaxed));
    stop
}

/// Records one setting (`a.model` at `a.batch`, `a.dtype`, …) on `gpu` into `path`: loads
/// the model, builds the plan (which fails, naming the batch and the memory needed, when
/// it does not fit) and runs [`profile::record`]. Shared by `profile` and `sweep`.
pub fn record_setting(
    gpu: &Gpu,
    a: &ProfileArgs,
    path: &std::path::Path,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(f64),
) -> Result<profile::ProfileOutcome> {
    let (dtype, opts) = check_args(a)?;
    let (g, w) = crate::cmd::load_model(&a.model, a.batch, a.seed, a.no_fuse)?;
    let plan = Plan::new(gpu, &g, &w, &opts)?;
    drop(w);
    let meta = ProfileMeta {
        model: a.model.clone(),
        command_line: std::env::args().collect(),
        // Besides the kernel overrides, the two settings `cnnergy replay` needs to
        // rebuild the same plan: the rewrite and the weight seed.
        variants: a
            .variants
            .split(',')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.split_once('=').map(|(t, v)| (t.to_owned(), v.to_owned())))
            .chain([
                ("rewrite".to_owned(), if a.no_fuse { "unfused" } else { "fused" }.to_owned()),
                ("seed".to_owned(), a.seed.to_string()),
            ])
            .chain(a.per_layer.then(|| ("replay.cache".to_owned(), a.replay_cache.clone())))
            // In context the delays run the model whatever --replay-between says.
            .chain(a.per_layer.then(|| {
                let between = if a.replay_in_context { "model" } else { a.replay_between.as_str() };
                ("replay.between".to_owned(), between.to_owned())
            }))
            .chain(a.per_layer.then(|| {
                ("replay.context".to_owned(), if a.replay_in_context { "model" } else { "isolated" }.to_owned())
            }))
            .collect(),
    };
    let popts = ProfileOptions {
        warmup: a.warmup,
        iterations: a.iters,
        seconds: a.seconds,
        graphs: a.graphs,
        cupti: !a.no_cupti,
        nvml: !a.no_nvml,
        dump_cupti: a.dump_cupti.clone(),
        replay: a.per_layer.then(|| ReplayOptions {
            window_s: a.replay_window,
            trials: a.replay_trials,
            cache: ReplayCache::parse(&a.replay_cache).unwrap_or(ReplayCache::Model),
            model_between: a.replay_between != "idle",
            in_context: a.replay_in_context,
            ..ReplayOptions::default()
        }),
    };
    profile::record(plan, &g, dtype, &meta, &popts, path, stop, progress)
        .with_context(|| format!("profiling {} (trace: {})", a.model, path.display()))
}

/// Whether a recording passes `--strict`: CUPTI on, every kernel record mapped to a
/// layer, none dropped, records = launches, no layout mismatch.
pub fn mapping_ok(a: &ProfileArgs, o: &profile::ProfileOutcome) -> bool {
    !a.no_cupti
        && o.unmapped == 0
        && o.dropped == 0
        && o.kernel_records == o.kernels_expected
        && o.layout_mismatches == 0
}

pub fn profile(out: &mut impl Write, a: &ProfileArgs) -> Result<ExitCode> {
    let (_, opts) = check_args(a)?;
    let precision = opts.precision();
    let gpu = Gpu::open(a.device, cnnergy::ptx::module_set())?;
    let path = match &a.output {
        Some(p) => p.clone(),
        None => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            PathBuf::from(profile::default_trace_name(&a.model, a.batch, precision, now))
        }
    };
    let stop = ctrl_c_flag();
    let long = a.iters.is_none() && a.seconds > 1.0;
    let bar = if long {
        let b = indicatif::ProgressBar::new(1000);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} measuring {bar:40} {percent:>3}% {elapsed}/{duration}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let mut progress = |f: f64| {
        if let Some(b) = &bar {
            b.set_position((f * 1000.0) as u64);
        }
    };
    let res = record_setting(&gpu, a, &path, &stop, &mut progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let o = res?;

    writeln!(
        out,
        "{} on {}, batch {}, {}{}: {} iterations in {:.2} s, {:.1} images/s{}",
        a.model,
        gpu.info.name,
        a.batch,
        precision,
        if a.graphs { ", CUDA graph" } else { "" },
        o.iterations,
        o.measure_ns as f64 * 1e-9,
        o.images_per_s,
        if o.interrupted { " (interrupted)" } else { "" }
    )?;
    writeln!(
        out,
        "kernels: {} records, {} expected ({} per iteration), {} launch calls, {} unmapped, {} dropped; sensor records: {}",
        o.kernel_records, o.kernels_expected, o.kernels_per_iteration, o.launch_calls, o.unmapped, o.dropped, o.sensor_records
    )?;
    for w in &o.warnings {
        writeln!(out, "warning: {w}")?;
    }
    if o.replay_windows > 0 {
        writeln!(out, "replay: {} layer windows in {:.1} s", o.replay_windows, o.replay_ns as f64 * 1e-9)?;
    }
    writeln!(out, "trace: {}", path.display())?;
    if let Some(j) = &a.json {
        std::fs::write(j, serde_json::to_string_pretty(&o)?).with_context(|| format!("writing {}", j.display()))?;
    }
    summarize(out, &path, a.top)?;
    if a.strict && !mapping_ok(a, &o) {
        writeln!(
            out,
            "strict check FAILED: every kernel record must map to a layer, none dropped, records = launches"
        )?;
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The short summary printed after a profile: per layer type, then the top layers.
pub fn summarize(out: &mut impl Write, path: &std::path::Path, top: usize) -> Result<()> {
    let data = TraceData::open(path).with_context(|| format!("reading {}", path.display()))?;
    let trace = Trace::parse(&data).with_context(|| format!("parsing {}", path.display()))?;
    let att = match energy::analyze(&trace, &energy::Options::default()) {
        Ok(a) => a,
        Err(e) => {
            writeln!(out, "no energy figures: {e}")?;
            return Ok(());
        }
    };
    let r = energy::figures::build(&trace, &att);
    let m = &r.model_figures;
    writeln!(
        out,
        "per inference: {:.3} ms, {:.1} mJ ± {:.1} per image, {:.0} W average ({:.0} W idle); energy counter mismatch {}",
        m.latency_ms,
        m.j_per_image.value * 1e3,
        m.j_per_image.ci95 * 1e3,
        m.avg_power_w,
        m.idle_power_w,
        m.counter_mismatch.map_or("n/a".to_owned(), |x| format!("{:+.1} %", x * 100.0))
    )?;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "layer type",
        "layers",
        "time ms",
        "time %",
        "energy mJ",
        "energy %",
        "W",
    ]);
    for ty in &r.types {
        t.add_row(vec![
            ty.layer_type.name().to_owned(),
            ty.layers.to_string(),
            format!("{:.3}", ty.time_ms),
            format!("{:.1}", ty.time_share * 100.0),
            format!("{:.2}", ty.energy_mj),
            format!("{:.1}", ty.energy_share * 100.0),
            format!("{:.0}", ty.avg_power_w),
        ]);
    }
    writeln!(out, "{t}")?;
    let mut layers: Vec<_> = r.layers.iter().collect();
    layers.sort_by(|a, b| b.energy_mj.value.total_cmp(&a.energy_mj.value));
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["layer", "op", "time ms", "energy mJ", "± mJ", "W", "GFLOP/J"]);
    for l in layers.iter().take(top) {
        t.add_row(vec![
            l.name.clone(),
            l.op.clone(),
            format!("{:.4}", l.time_ms.value),
            format!("{:.3}", l.energy_mj.value),
            format!("{:.3}", l.energy_mj.ci95),
            format!("{:.0}", l.avg_power_w),
            l.gflop_per_j.map_or("-".into(), |x| format!("{x:.1}")),
        ]);
    }
    writeln!(
        out,
        "top {} layers by energy (`cnnergy report {}` for all):\n{t}",
        top.min(layers.len()),
        path.display()
    )?;
    Ok(())
}

/// `cnnergy replay TRACE`: rebuilds the recorded model, batch, precision, rewrite, seed and
/// kernel variants, replays every layer (and re-measures the whole model) into a new trace,
/// and checks that each layer runs the same kernels as in the original.
pub fn replay(out: &mut impl Write, trace: &std::path::Path, mut a: ProfileArgs) -> Result<ExitCode> {
    let data = TraceData::open(trace).with_context(|| format!("reading {}", trace.display()))?;
    let t = Trace::parse(&data).with_context(|| format!("parsing {}", trace.display()))?;
    let h = t.header();
    a.model = h.workload.model.to_string();
    a.batch = h.workload.batch_size.max(1) as usize;
    a.dtype = h.workload.dtype.to_string();
    let mut variants = Vec::new();
    for v in &h.workload.kernel_variants {
        match &*v.target {
            "rewrite" => a.no_fuse = v.variant == "unfused",
            "seed" => a.seed = v.variant.parse().unwrap_or(0),
            _ => variants.push(format!("{}={}", v.target, v.variant)),
        }
    }
    a.variants = variants.join(",");
    a.per_layer = true;
    if a.model.is_empty() {
        anyhow::bail!("{}: the trace names no model to replay", trace.display());
    }
    writeln!(
        out,
        "replaying {} batch {} {} from {} (recorded on {})",
        a.model,
        a.batch,
        a.dtype,
        trace.display(),
        h.device.name
    )?;
    let code = profile(out, &a)?;
    // Same layers, same kernels?
    let new_path = a.output.clone().unwrap_or_default();
    if let Ok(nd) = TraceData::open(&new_path) {
        if let Ok(nt) = Trace::parse(&nd) {
            let names = |t: &Trace<'_>, l: &cnnergy_traces::Layer| -> (String, Vec<String>) {
                (
                    t.string(l.name).unwrap_or("").to_owned(),
                    l.kernels.iter().map(|k| t.string(*k).unwrap_or("").to_owned()).collect(),
                )
            };
            let mut differ = 0;
            for l in t.layers() {
                let old = names(&t, l);
                match nt.layer(l.id).map(|n| names(&nt, n)) {
                    Some(new) if new == old => {}
                    other => {
                        differ += 1;
                        if differ <= 5 {
                            writeln!(
                                out,
                                "warning: layer {} `{}` ran {:?} then, {:?} now",
                                l.id.0,
                                old.0,
                                old.1,
                                other.map(|o| o.1)
                            )?;
                        }
                    }
                }
            }
            if differ > 0 {
                writeln!(out, "warning: {differ} layers run different kernels than in the original trace")?;
            }
        }
    }
    Ok(code)
}
