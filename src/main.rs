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
        /// Only cases whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Seed for the random inputs (default: from the clock; printed either way).
        #[arg(long)]
        seed: Option<u64>,
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
        /// GPU precision: f32 (SIMT kernels, NCHW) or f16 (tensor cores, NHWC).
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
        /// relative L2 error (fails above 1e-4 for f32, 1e-2 for f16).
        #[arg(long)]
        check: bool,
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
    /// Describe a trace: header, device, workload, record counts, time span, damage.
    Info {
        /// The trace file.
        trace: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Devices => cmd::devices(&mut out),
        Command::Selftest { device, filter, seed } => cmd::selftest(&mut out, device, filter.as_deref(), seed),
        Command::Kernels { offline, arch } => cmd::kernels(&mut out, offline, &arch),
        Command::Models => cmd::models(&mut out),
        Command::Run { model, device, batch, seed, no_fuse, top_layers, dtype, variants, graphs, iters, check } => {
            cmd::run(
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
                },
            )
        }
        Command::BenchLayers { models, batch, filter, cases_out, json, device } => cmd::bench_layers(
            &mut out,
            &models,
            &batch,
            filter.as_deref(),
            cases_out.as_deref(),
            json.as_deref(),
            device,
        ),
        Command::Info { trace, json } => cmd::info(&mut out, &trace, json),
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
