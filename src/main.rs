//! The `cnnergy` command: parses arguments, calls the library crates, prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(name = "cnnergy", version, about = "Where the energy of CNN inference goes on NVIDIA GPUs, layer by layer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the GPUs, their clocks, power limits and which energy sensors answer.
    Devices,
    /// Check every GPU kernel against the CPU reference on fresh random inputs.
    Selftest {
        /// GPU to use (CUDA ordinal).
        #[arg(long, default_value_t = 0)]
        device: usize,
        /// Only cases whose name contains this text (`^text`: whose name starts with it).
        #[arg(long)]
        filter: Option<String>,
        /// Seed for the random inputs (default: from the clock; printed either way).
        #[arg(long)]
        seed: Option<u64>,
        /// Print the case names (matching --filter) and exit; needs no GPU.
        #[arg(long)]
        list: bool,
    },
    /// List every kernel: layer type, variant, precision, layout, registers, shared memory, spills.
    Kernels {
        /// Use ptxas on the embedded PTX even when a GPU is present.
        #[arg(long)]
        offline: bool,
        /// Module to report offline: sm_80 or sm_90a.
        #[arg(long, default_value = "sm_90a")]
        arch: String,
    },
    /// List the built-in models: parameters, GFLOPs at 224x224, layers, kernel launches.
    Models,
    /// Run a model and print its top classes: on the CPU reference backend (`--device
    /// cpu`, per-layer times) or on a GPU with cnnergy's kernels (`--device gpu`, batch
    /// latency, throughput and device memory).
    Run {
        /// A built-in model name (see `cnnergy models`) or an ONNX file.
        model: String,
        /// Execution backend: `cpu` (f64-accumulating reference layers, slow) or `gpu`
        /// (`gpu:N` for CUDA ordinal N).
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Seed for the weights and the input.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Run the unfused graph (no batch-norm folding or conv+activation/residual fusion).
        #[arg(long)]
        no_fuse: bool,
        /// Print the N slowest layers (CPU).
        #[arg(long, default_value_t = 10)]
        top_layers: usize,
        /// GPU precision: f32 (SIMT kernels, NCHW), tf32 (f32 data, TF32 tensor-core convs and
        /// linear layers, NHWC) or f16 (tensor cores, NHWC).
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// GPU: kernel variant overrides, e.g. `conv=implicit_gemm_64,gemm=simt`.
        #[arg(long, default_value = "")]
        variants: String,
        /// GPU: replay one captured CUDA graph per batch instead of launching each kernel.
        #[arg(long)]
        graphs: bool,
        /// GPU: timed batches (default: enough for at least one second).
        #[arg(long)]
        iters: Option<usize>,
        /// GPU: first compare the logits against the CPU reference at batch 1 and print the
        /// relative L2 error (fails above 1e-4 for f32, 5e-3 for tf32, 1e-2 for f16).
        #[arg(long)]
        check: bool,
        /// Input images: raw little-endian f32, NCHW, exactly batch x C x H x W values
        /// (default: a seeded random input).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Write the logits as raw little-endian f32 (batch x classes).
        #[arg(long)]
        logits_out: Option<PathBuf>,
        /// GPU: write the latency / throughput / memory summary as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Time every kernel variant on the real layer shapes of built-in models.
    BenchLayers {
        /// Models (comma-separated built-in names).
        #[arg(long, value_delimiter = ',', default_value = "resnet50,vgg16,mobilenet_v2")]
        models: Vec<String>,
        /// Batch sizes (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,64")]
        batch: Vec<usize>,
        /// Only layer cases whose id contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Write the layer cases (the input of bench/torch_layers.py) here, then time them.
        #[arg(long)]
        cases_out: Option<PathBuf>,
        /// Write every result as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// GPU to use (CUDA ordinal).
        #[arg(long, default_value_t = 0)]
        device: usize,
    },
    /// Record a trace of a model run (kernels via CUPTI, power via NVML), then summarise it.
    Profile(cmd::profile::ProfileArgs),
    /// Profile a model at several batch sizes (and precisions), one trace per setting, and
    /// write a `cnnergy.sweep/1` summary for `cnnergy tradeoff`.
    Sweep {
        /// A built-in model name (see `cnnergy models`) or an ONNX file.
        model: String,
        /// Batch sizes, comma-separated, e.g. 1,2,4,8,16. A batch that does not fit in device
        /// memory is reported and skipped.
        #[arg(long)]
        batch: String,
        /// Precisions, comma-separated: f32, tf32 and/or f16.
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// Kernel variant overrides for every setting, e.g. `conv=implicit_gemm_64`.
        #[arg(long, default_value = "")]
        variants: String,
        /// Length of each setting's measured phase.
        #[arg(long, default_value_t = 6.0)]
        seconds: f64,
        /// Warm-up iterations per setting.
        #[arg(long, default_value_t = 20)]
        warmup: u32,
        /// Replay one captured CUDA graph per iteration.
        #[arg(long)]
        graphs: bool,
        /// GPU to use (CUDA ordinal).
        #[arg(long, default_value_t = 0)]
        device: usize,
        /// Folder for the traces and sweep.json (default: sweep-MODEL-TIME).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Replay every layer of a recorded trace (same model, batch, precision, kernels) on this
    /// GPU and write a new trace with per-layer energy ± CI.
    Replay {
        /// The trace to replay.
        trace: PathBuf,
        /// GPU to use (CUDA ordinal).
        #[arg(long, default_value_t = 0)]
        device: usize,
        /// The new trace (default: MODEL-bBATCH-DTYPE-TIME.cnt).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Steady-state seconds per layer window (plus 0.2 s rise skipped).
        #[arg(long, default_value_t = 1.0)]
        window: f64,
        /// Trials per layer.
        #[arg(long, default_value_t = 3)]
        trials: u32,
        /// Cache state of a replayed layer (see `profile --replay-cache`).
        #[arg(long, default_value = "model", value_parser = ["model", "cold", "warm"])]
        cache: String,
        /// What the GPU does between windows (see `profile --replay-between`).
        #[arg(long, default_value = "idle", value_parser = ["idle", "model"])]
        between: String,
        /// Alternate each layer with whole-model iterations (see `profile --replay-in-context`).
        #[arg(long)]
        in_context: bool,
        /// Seconds of whole-model measurement before the replay.
        #[arg(long, default_value_t = 6.0)]
        seconds: f64,
        /// Replay with a captured CUDA graph for the whole-model phase.
        #[arg(long)]
        graphs: bool,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Characterise the NVML sensors on this GPU: call costs, update periods, and the
    /// delay, rise time and averaging window of each power sensor under a load step.
    Calibrate {
        /// GPU to use (CUDA ordinal).
        #[arg(long, default_value_t = 0)]
        device: usize,
        /// Length of the step experiment in seconds (2 s idle, then 3 s on / 3 s off cycles).
        #[arg(long, default_value_t = 40.0)]
        seconds: f64,
        /// Write the estimates and the raw series as JSON here.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Describe a trace: header, device, workload, record counts, time span, damage.
    Info {
        /// The trace file.
        trace: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Energy figures of a trace: per layer (time, mJ ± CI, power, shares, GFLOP/s,
    /// GFLOP/J, bytes/J, intensity), per model and per layer type.
    Report {
        /// The trace file.
        trace: PathBuf,
        /// table, csv (the --by table), json (everything), md, or html (one page with charts).
        #[arg(long, default_value = "table", value_parser = ["table", "csv", "json", "md", "html"])]
        format: String,
        /// Row order: energy, time, efficiency (least GFLOP/J first) or id (model order).
        #[arg(long, default_value = "energy", value_parser = ["energy", "time", "efficiency", "id"])]
        sort: String,
        /// Rows: layer, type, kernel or model.
        #[arg(long, default_value = "layer", value_parser = ["layer", "type", "kernel", "model"])]
        by: String,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Power sensor to attribute from (default: the best present).
        #[arg(long)]
        sensor: Option<String>,
        /// Attribution method: timeline (the measure phase, also of a replay trace), replay, or auto
        /// (replay when the trace has replay windows).
        #[arg(long, default_value = "auto", value_parser = ["timeline", "replay", "auto"])]
        method: String,
    },
    /// Convert a trace for ui.perfetto.dev / chrome://tracing (Trace Event Format JSON).
    Export {
        /// The trace file.
        trace: PathBuf,
        /// Output JSON file.
        #[arg(long)]
        chrome: PathBuf,
    },
    /// Per-layer differences in time, energy and efficiency between two traces, with
    /// significance from the confidence intervals.
    Diff {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, default_value = "table", value_parser = ["table", "csv", "json", "md"])]
        format: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Rank settings (one trace each, or a sweep summary JSON) by revenue: value per
    /// image x throughput minus energy cost, under a latency SLO (docs/revenue-model.md).
    Tradeoff {
        /// Traces and/or sweep summary files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Latency limit per batch (ms); slower settings are excluded.
        #[arg(long)]
        slo_ms: Option<f64>,
        /// Energy price per kWh.
        #[arg(long, default_value_t = 0.15)]
        energy_price: f64,
        /// Value of one processed image (same currency); without it settings are ranked by J/image.
        #[arg(long)]
        value_per_image: Option<f64>,
        #[arg(long, default_value = "table", value_parser = ["table", "csv", "json", "md"])]
        format: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Also write the settings read from traces as a sweep summary JSON.
        #[arg(long)]
        write_summary: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Devices => cmd::devices(&mut out),
        Command::Selftest { device, filter, seed, list } => {
            cmd::selftest(&mut out, device, filter.as_deref(), seed, list)
        }
        Command::Kernels { offline, arch } => cmd::kernels(&mut out, offline, &arch),
        Command::Models => cmd::models(&mut out),
        Command::Run {
            model,
            device,
            batch,
            seed,
            no_fuse,
            top_layers,
            dtype,
            variants,
            graphs,
            iters,
            check,
            input,
            logits_out,
            json,
        } => cmd::run(
            &mut out,
            &cmd::RunArgs {
                model,
                device,
                batch,
                seed,
                no_fuse,
                top_layers,
                dtype,
                variants,
                graphs,
                iters,
                check,
                input,
                logits_out,
                json,
            },
        ),
        Command::BenchLayers { models, batch, filter, cases_out, json, device } => cmd::bench_layers(
            &mut out,
            &models,
            &batch,
            filter.as_deref(),
            cases_out.as_deref(),
            json.as_deref(),
            device,
        ),
        Command::Profile(a) => cmd::profile::profile(&mut out, &a),
        Command::Sweep { model, batch, dtype, variants, seconds, warmup, graphs, device, output } => cmd::sweep::sweep(
            &mut out,
            &cmd::sweep::SweepArgs { model, device, batch, dtype, variants, graphs, seconds, warmup, output },
        ),
        Command::Replay {
            trace,
            device,
            output,
            window,
            trials,
            cache,
            between,
            in_context,
            seconds,
            graphs,
            json,
        } => {
            let output = output.or_else(|| {
                let stem = trace.file_stem()?.to_str()?.to_owned();
                Some(trace.with_file_name(format!("{stem}-replay.cnt")))
            });
            cmd::profile::replay(
                &mut out,
                &trace,
                cmd::profile::ProfileArgs {
                    model: String::new(),
                    device,
                    batch: 1,
                    dtype: "f32".into(),
                    seed: 0,
                    no_fuse: false,
                    variants: String::new(),
                    graphs,
                    iters: None,
                    seconds,
                    warmup: 20,
                    output,
                    no_cupti: false,
                    no_nvml: false,
                    dump_cupti: None,
                    json,
                    top: 10,
                    strict: false,
                    per_layer: true,
                    replay_window: window,
                    replay_trials: trials,
                    replay_cache: cache,
                    replay_between: between,
                    replay_in_context: in_context,
                },
            )
        }
        Command::Info { trace, json } => cmd::info(&mut out, &trace, json),
        Command::Calibrate { device, seconds, output } => {
            cmd::calibrate::calibrate(&mut out, device, seconds, output.as_deref())
        }
        Command::Report { trace, format, sort, by, output, sensor, method } => cmd::report::report(
            &mut out,
            &cmd::report::ReportArgs {
                trace: &trace,
                format: &format,
                sort: &sort,
                by: &by,
                output: output.as_deref(),
                sensor: sensor.as_deref(),
                method: Some(&method),
            },
        ),
        Command::Export { trace, chrome } => cmd::export::export(&mut out, &trace, &chrome),
        Command::Diff { a, b, format, output } => cmd::diff::diff(&mut out, &a, &b, &format, output.as_deref()),
        Command::Tradeoff { inputs, slo_ms, energy_price, value_per_image, format, output, write_summary } => {
            cmd::tradeoff::tradeoff(
                &mut out,
                &cmd::tradeoff::TradeoffArgs {
                    inputs: &inputs,
                    slo_ms,
                    energy_price,
                    value_per_image,
                    format: &format,
                    output: output.as_deref(),
                    write_summary: write_summary.as_deref(),
                },
            )
        }
    };
    let _ = out.flush();
    match result {
        Ok(code) => code,
        // A closed pipe (`cnnergy info t | head`) is not an error worth a message.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
