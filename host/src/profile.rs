//! The recorder behind `cnnergy profile`: runs a [`Plan`] for a warm-up and a measured
//! phase while CUPTI timestamps every kernel (tagged with its layer and iteration) and the
//! NVML sampler reads the power sensors, and streams everything into one trace.
//!
//! Threads: the caller's thread launches (its only extra work per kernel is two atomic
//! stores into the [`TagCell`]); CUPTI's activity thread turns completed buffers into
//! kernel records and writes them; a drain thread moves sampler records into the trace.
//! The writer sits behind a mutex shared by those two background threads only.
//!
//! Kernels map to layers two ways (docs/design.md, "Kernels of a CUDA graph"):
//! * direct launches: the launch callback stores the current tag under the launch's
//!   correlation id, which the kernel's activity record carries;
//! * CUDA graph replays: every kernel of one `cuGraphLaunch` carries that launch's
//!   correlation id; the graph is a single-stream chain, so its kernels run in capture
//!   order. The first warm-up iteration always runs without the graph and records the
//!   sequence of (layer, kernel name); the k-th kernel of each replay is mapped to the
//!   k-th entry, and its name must match (a mismatch is counted as unmapped).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cnnergy_cupti::{ActivityCollector, CollectorConfig, LaunchTagger, Tag, TagCell, TagTable};
use cnnergy_traces::records::*;
use cnnergy_traces::TraceWriter;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::exec_gpu::Plan;
use crate::graph::Graph;
use crate::libs::{self, Lib};
use crate::ops::DType;
use crate::sampler::{DeviceId, Sampler, SamplerConfig, SamplerStats, SensorIds};
use crate::timebase::Timebase;

/// Tag layer value for a CUDA graph launch (its kernels are mapped by order).
const GRAPH_LAYER: u32 = u32::MAX - 1;

/// What to record and for how long.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// Warm-up iterations (the first always runs without a CUDA graph).
    pub warmup: u32,
    /// Measured iterations; `None`: as many as fit in `seconds`.
    pub iterations: Option<u32>,
    pub seconds: f64,
    /// Replay a captured CUDA graph per iteration.
    pub graphs: bool,
    /// Record kernels with CUPTI.
    pub cupti: bool,
    /// Sample NVML.
    pub nvml: bool,
    /// Also write CUPTI's raw activity buffers here (parser fixtures).
    pub dump_cupti: Option<PathBuf>,
    /// After the measured phase, replay every layer in isolation (docs/energy-method.md).
    pub replay: Option<ReplayOptions>,
}

/// The replay phase: each layer's launches re-run back to back (as a CUDA graph of many
/// repetitions) for `skip_s + window_s`, `trials` times, in random order with random idle
/// delays between windows so the energy counter's 100 ms phase differs per trial.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub window_s: f64,
    /// Rise time skipped at the start of each window (the analysis skips it too).
    pub skip_s: f64,
    pub trials: u32,
    /// Only these layer ids (default: every layer that launches kernels).
    pub layers: Option<Vec<u32>>,
    /// An idle window after every this many busy windows (and one first and last).
    pub idle_every: usize,
    /// Seed of the random order and delays.
    pub seed: u64,
    /// Which of a layer's buffers and weights rotate through copies during replay.
    pub cache: ReplayCache,
    /// Run the whole model (not idle) during the random delays before busy windows.
    pub model_between: bool,
    /// In context: each busy window alternates the layer's ~2 ms graph with whole-model
    /// iterations (≥ 2× its time), measured alone in reference windows and subtracted,
    /// so the board runs at the model's power (a layer that alone exceeds the power
    /// limit is clocked down otherwise). Noisier than isolated replay.
    pub in_context: bool,
}

/// Cache state of a replayed layer (docs/energy-method.md, "Cache state and temperature").
/// In the model a layer reads an input the previous layer has just written (in L2),
/// weights last touched an iteration ago (evicted), and writes its output into an L2
/// full of other layers' dirty lines. Replayed alone on the same buffers, everything
/// stays in L2: small layers ran up to 40 % faster than in the model and used less energy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayCache {
    /// As in the model: the layer's outputs and weights rotate through copies spanning
    /// ≥ 2 × L2; its inputs stay put.
    Model,
    /// Inputs, outputs and weights rotate (every repetition starts from HBM).
    Cold,
    /// Same buffers every repetition (everything the layer touches stays in L2).
    Warm,
}

impl ReplayCache {
    pub const NAMES: [&'static str; 3] = ["model", "cold", "warm"];

    pub fn parse(s: &str) -> Option<ReplayCache> {
        Some(match s {
            "model" => ReplayCache::Model,
            "cold" => ReplayCache::Cold,
            "warm" => ReplayCache::Warm,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ReplayCache::Model => "model",
            ReplayCache::Cold => "cold",
            ReplayCache::Warm => "warm",
        }
    }
}

/// Rotated copies span at least this many L2 sizes.
const ROTATE_L2_FACTOR: usize = 2;
/// At most this many copies of a layer's buffers.
const ROTATE_MAX_COPIES: usize = 64;

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            window_s: 1.0,
            skip_s: 0.2,
            trials: 3,
            layers: None,
            idle_every: 10,
            seed: 1,
            cache: ReplayCache::Model,
            model_between: false,
            in_context: false,
        }
    }
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            warmup: 20,
            iterations: None,
            seconds: 6.0,
            graphs: false,
            cupti: true,
            nvml: true,
            dump_cupti: None,
            replay: None,
        }
    }
}

/// Descriptive fields for the trace header.
#[derive(Debug, Clone, Default)]
pub struct ProfileMeta {
    pub model: String,
    pub command_line: Vec<String>,
    pub variants: Vec<(String, String)>,
}

/// What happened, for the summary and the checks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProfileOutcome {
    pub trace: PathBuf,
    pub warmup_iterations: u32,
    pub iterations: u32,
    pub batch: usize,
    /// Wall time of the measured phase (GPU-synchronised at both ends), ns.
    pub measure_ns: u64,
    pub images_per_s: f64,
    /// Kernels per iteration (from the first warm-up iteration).
    pub kernels_per_iteration: u64,
    /// Launch API calls CUPTI saw (kernel launches and graph launches).
    pub launch_calls: u64,
    /// Kernel records expected: every iteration's kernels.
    pub kernels_expected: u64,
    pub kernel_records: u64,
    /// Kernel records whose layer could not be established.
    pub unmapped: u64,
    pub dropped: u64,
    /// CUPTI records whose size disagreed with the parser's layout (must be 0).
    pub layout_mismatches: u64,
    pub cupti_pool_exhausted: u64,
    pub tag_collisions: u64,
    pub sampler: Option<SamplerStats>,
    /// Sampler records written.
    pub sensor_records: u64,
    /// Busy windows replayed (layers × trials) and the replay phase's length.
    pub replay_windows: u64,
    pub replay_ns: u64,
    pub interrupted: bool,
    pub warnings: Vec<String>,
    pub clock_drift_ns: Option<i64>,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    unmapped: AtomicU64,
    dropped: AtomicU64,
    learned: AtomicU64,
    write_errors: AtomicU64,
}

type Writer = TraceWriter<BufWriter<File>>;

/// The CUPTI consumer's state (lives on CUPTI's activity thread).
struct KernelSink {
    w: Arc<Mutex<Writer>>,
    table: Arc<TagTable>,
    counters: Arc<Counters>,
    /// CUPTI name id → trace string id.
    names: Vec<Option<StrId>>,
    /// (layer, cupti name id) per kernel of one iteration, learned from iteration 0.
    sequence: Vec<(u32, u32)>,
    learn_iteration: u32,
    graph_corr: u32,
    graph_k: usize,
    dropped_source: StrId,
    /// Kernel names per layer id, learned from iteration 0 (for the `Layer` records).
    learned: Arc<Mutex<Vec<(u32, String)>>>,
    /// CUPTI name id → name, for `learned`.
    name_text: Vec<String>,
}

impl KernelSink {
    fn on_event(&mut self, e: cnnergy_cupti::Event) {
        use cnnergy_cupti::Event as E;
        match e {
            E::NewName { id, name } => {
                let sid = self.w.lock().ok().and_then(|mut w| w.intern(&name).ok());
                let i = id as usize;
                if self.names.len() <= i {
                    self.names.resize(i + 1, None);
                }
                self.names[i] = sid;
                if self.name_text.len() <= i {
                    self.name_text.resize(i + 1, String::new());
                }
                self.name_text[i] = name;
            }
            E::Kernel { record: k, name } => self.on_kernel(&k, name),
            E::Dropped { count } => {
                self.counters.dropped.fetch_add(count, Ordering::Relaxed);
                let d = Dropped { t_ns: 0, source: self.dropped_source, count };
                if let Ok(mut w) = self.w.lock() {
                    if w.dropped(&d).is_err() {
                        self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            E::Other(_) => {}
        }
    }

    fn on_kernel(&mut self, k: &cnnergy_cupti::KernelRecord, name: u32) {
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        let tag = self.table.get(k.correlation_id);
        let (layer, iteration) = match tag {
            Some(Tag { layer: GRAPH_LAYER, iteration }) => {
                if k.correlation_id != self.graph_corr {
                    self.graph_corr = k.correlation_id;
                    self.graph_k = 0;
                }
                let entry = self.sequence.get(self.graph_k).copied();
                self.graph_k += 1;
                match entry {
                    Some((layer, n)) if n == name => (layer, iteration),
                    _ => (u32::MAX, iteration),
                }
            }
            Some(t) => {
                if t.iteration == self.learn_iteration && t.layer != u32::MAX {
                    self.sequence.push((t.layer, name));
                    self.counters.learned.fetch_add(1, Ordering::Relaxed);
                    // Once per kernel of iteration 0 only.
                    if let (Ok(mut l), Some(n)) = (self.learned.lock(), self.name_text.get(name as usize)) {
                        l.push((t.layer, n.clone()));
                    }
                }
                (t.layer, t.iteration)
            }
            None => (u32::MAX, u32::MAX),
        };
        if layer == u32::MAX {
            self.counters.unmapped.fetch_add(1, Ordering::Relaxed);
        }
        let kernel = self.names.get(name as usize).copied().flatten().unwrap_or_default();
        let ev = KernelEvent {
            launch: KernelLaunch {
                layer: LayerId(layer),
                kernel,
                grid: k.grid,
                block: k.block,
                registers_per_thread: k.registers,
                static_smem_bytes: k.static_smem,
                dynamic_smem_bytes: k.dynamic_smem,
                stream: k.stream_id,
                graph_node: k.graph_node_id,
            },
            iteration,
            start_ns: k.start_ns,
            duration_ns: k.end_ns.saturating_sub(k.start_ns),
            correlation_id: k.correlation_id,
        };
        if let Ok(mut w) = self.w.lock() {
            if w.kernel(&ev).is_err() {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn lock(w: &Mutex<Writer>) -> Result<std::sync::MutexGuard<'_, Writer>> {
    w.lock().map_err(|_| Error::Invalid("trace writer poisoned".into()))
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Invalid(format!("writing trace {}: {e}", path.display()))
}

/// Gives the plan's unlabelled launches (its own input/output conversions) two pseudo
/// layers after the graph's nodes: `input.convert` (before the first node's launch) and
/// `output.convert`. Returns their ids.
fn label_conversions(plan: &mut Plan, nodes: usize) -> (u32, u32) {
    let (inp, outp) = (nodes as u32, nodes as u32 + 1);
    let mut seen_node = false;
    for l in &mut plan.blueprint.launches {
        if l.layer_id == u32::MAX {
            l.layer_id = if seen_node { outp } else { inp };
        } else {
            seen_node = true;
        }
    }
    (inp, outp)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// Header of a trace recorded on `plan`'s GPU.
pub fn header(
    plan: &Plan,
    g: &Graph,
    dtype: DType,
    meta: &ProfileMeta,
    tb: &Timebase,
    phases: &[(&str, u32)],
) -> Header<'static> {
    let i = &plan.gpu.info;
    Header {
        tool_version: format!("cnnergy {}", env!("CARGO_PKG_VERSION")).into(),
        command_line: meta.command_line.iter().map(|s| s.clone().into()).collect(),
        start_unix_ns: tb.start_unix_ns(),
        host: hostname().into(),
        device: Device {
            name: i.name.clone().into(),
            uuid: i.uuid.clone().into(),
            cc_major: i.cc_major as u32,
            cc_minor: i.cc_minor as u32,
            sm_count: i.sm_count,
            memory_bytes: i.memory_bytes,
            driver_version: i.driver_version.clone().unwrap_or_default().into(),
            cuda_version: format!("{}.{}", i.cuda_driver_version.0, i.cuda_driver_version.1).into(),
            power_limit_mw: i.power_limit_mw.unwrap_or(0),
            sm_clock_mhz: i.sm_clock_mhz.unwrap_or(0),
            mem_clock_mhz: i.mem_clock_mhz.unwrap_or(0),
        },
        workload: Workload {
            model: meta.model.clone().into(),
            batch_size: g.batch() as u32,
            // The plan's precision: "tf32" is f32 data on the TF32 tensor cores.
            dtype: if plan.blueprint.tf32 { "tf32" } else { dtype.name() }.into(),
            kernel_variants: meta
                .variants
                .iter()
                .map(|(t, v)| KernelVariant { target: t.clone().into(), variant: v.clone().into() })
                .collect(),
            iterations: phases.iter().map(|p| p.1).sum(),
            phases: phases.iter().map(|&(n, it)| Phase { name: n.to_owned().into(), iterations: it }).collect(),
        },
        timebase: tb.header(),
    }
}

/// Writes one `Layer` record per graph node that launches kernels, plus the plan's two
/// conversion pseudo-layers. `kernels[layer]` = the layer's kernel names, in order.
fn write_layers(
    w: &mut Writer,
    g: &Graph,
    dtype: DType,
    ids: (u32, u32),
    kernels: &[Vec<String>],
) -> std::io::Result<()> {
    let shape = |t: usize| g.tensors[t].dims.iter().map(|&d| d as u64).collect::<Vec<u64>>();
    for (i, n) in g.nodes.iter().enumerate() {
        let ks = kernels.get(i).cloned().unwrap_or_default();
        if ks.is_empty() && !n.op.launches() {
            continue;
        }
        let name = w.intern(&n.name)?;
        let op = w.intern(n.op.op_name())?;
        let kernels = ks.iter().map(|k| w.intern(k)).collect::<std::io::Result<Vec<_>>>()?;
        let mut attrs = Vec::new();
        if !n.fused.is_empty() {
            let key = w.intern("fused")?;
            let value = w.intern(&n.fused.join(","))?;
            attrs.push(Attr { key, value: AttrValue::Str(value) });
        }
        w.layer(&Layer {
            id: LayerId(i as u32),
            name,
            op,
            inputs: n.inputs.iter().map(|&t| shape(t)).collect(),
            outputs: vec![shape(n.output)],
            attrs,
            flops: g.node_flops(n),
            bytes_moved: g.node_bytes(n, dtype),
            kernels,
        })?;
    }
    for (id, label) in [(ids.0, "input.convert"), (ids.1, "output.convert")] {
        let ks = kernels.get(id as usize).cloned().unwrap_or_default();
        if ks.is_empty() {
            continue;
        }
        let name = w.intern(label)?;
        let op = w.intern("Convert")?;
        let kernels = ks.iter().map(|k| w.intern(k)).collect::<std::io::Result<Vec<_>>>()?;
        w.layer(&Layer { id: LayerId(id), name, op, kernels, ..Layer::default() })?;
    }
    Ok(())
}

/// Records a profile of `plan` (built from `g`) into `path`. `stop` ends the measured
/// phase early (Ctrl-C) and still leaves a complete trace; `progress(fraction)` is called
/// now and then from this thread.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
pub fn record(
    mut plan: Plan,
    g: &Graph,
    dtype: DType,
    meta: &ProfileMeta,
    opts: &ProfileOptions,
    path: &Path,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(f64),
) -> Result<ProfileOutcome> {
    let mut out = ProfileOutcome { trace: path.to_path_buf(), batch: g.batch(), ..Default::default() };
    let conv_ids = label_conversions(&mut plan, g.nodes.len());

    // Clocks first: the header needs the timebase.
    let (tb, why) = if opts.cupti { Timebase::measure() } else { (Timebase::realtime(), None) };
    if let Some(why) = why {
        out.warnings.push(why);
    }
    let cupti_on = opts.cupti && tb.clock == crate::timebase::TraceClock::Cupti;
    if opts.cupti && !cupti_on {
        out.warnings.push("CUPTI unavailable: the trace has no kernel records".into());
    }
    let measure_iters = opts.iterations.unwrap_or(0);
    let mut phases = vec![("warmup", opts.warmup.max(1)), ("measure", measure_iters)];
    if opts.replay.is_some() {
        phases.push((cnnergy_traces::energy::replay::PHASE, 0));
    }
    let hdr = header(&plan, g, dtype, meta, &tb, &phases);
    let file = File::create(path).map_err(|e| Error::Invalid(format!("creating trace {}: {e}", path.display())))?;
    let writer = TraceWriter::new(BufWriter::with_capacity(1 << 20, file), &hdr).map_err(io_err(path))?;
    let w = Arc::new(Mutex::new(writer));
    let (phase_warm, phase_measure, cupti_src) = {
        let mut wr = lock(&w)?;
        let e = io_err(path);
        (wr.intern("warmup").map_err(&e)?, wr.intern("measure").map_err(&e)?, wr.intern("cupti").map_err(&e)?)
    };

    // CUPTI: tag cell + table, launch callbacks, activity collection.
    let counters = Arc::new(Counters::default());
    let cell = Arc::new(TagCell::default());
    let table = Arc::new(TagTable::new(1 << 20));
    let learned = Arc::new(Mutex::new(Vec::new()));
    let mut tagger = None;
    let mut collector = None;
    if cupti_on {
        libs::load(Lib::Cupti).map_err(|e| Error::Invalid(e.to_string()))?;
        tagger = Some(LaunchTagger::new(cell.clone(), table.clone()).map_err(|e| Error::Invalid(e.to_string()))?);
        let mut sink = KernelSink {
            w: w.clone(),
            table: table.clone(),
            counters: counters.clone(),
            names: Vec::new(),
            sequence: Vec::new(),
            learn_iteration: 0,
            graph_corr: 0,
            graph_k: 0,
            dropped_source: cupti_src,
            learned: learned.clone(),
            name_text: Vec::new(),
        };
        let cfg = CollectorConfig {
            buffers: 16,
            buffer_size: 4 << 20,
            memcpy: true,
            memset: true,
            graph_trace: false,
            dump_buffers_to: opts.dump_cupti.clone(),
        };
        collector =
            Some(ActivityCollector::new(cfg, move |e| sink.on_event(e)).map_err(|e| Error::Invalid(e.to_string()))?);
        plan.set_tag_cell(Some(cell.clone()));
    }

    // NVML sampler + the thread that moves its records into the trace.
    let mut sampler = None;
    let drain_stop = Arc::new(AtomicBool::new(false));
    let mut drain_thread = None;
    let sensor_records = Arc::new(AtomicU64::new(0));
    if opts.nvml {
        let ids = {
            let mut wr = lock(&w)?;
            SensorIds::intern(|s| wr.intern(s)).map_err(io_err(path))?
        };
        let mut cfg = SamplerConfig::new(ids);
        if opts.replay.is_some() {
            // Replay finds the counter's update edges: poll it back to back (own thread).
            cfg = cfg.with_period(crate::sampler::Sensor::Energy, Some(Duration::ZERO));
        }
        match Sampler::start(DeviceId::Uuid(plan.gpu.info.uuid.clone()), cfg, tb) {
            Ok(s) => {
                let s = Arc::new(Mutex::new(s));
                sampler = Some(s.clone());
                let (w2, stop2, n2) = (w.clone(), drain_stop.clone(), sensor_records.clone());
                drain_thread = Some(
                    std::thread::Builder::new()
                        .name("cnnergy-nvml-drain".into())
                        .spawn(move || loop {
                            let last = stop2.load(Ordering::Acquire);
                            if let (Ok(s), Ok(mut wr)) = (s.lock(), w2.lock()) {
                                let n = s.drain(|e| {
                                    let _ = write_sample(&mut wr, &e);
                                });
                                n2.fetch_add(n as u64, Ordering::Relaxed);
                            }
                            if last {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        })
                        .map_err(|e| Error::Invalid(format!("cannot start the NVML drain thread: {e}")))?,
                );
            }
            Err(e) => out.warnings.push(format!("NVML sampling off: {e}")),
        }
    }

    let now_trace = |tb: &Timebase| -> u64 {
        if cupti_on {
            cnnergy_cupti::timestamp_ns().unwrap_or_else(|_| tb.realtime_to_trace(crate::timebase::realtime_now_ns()))
        } else {
            tb.realtime_to_trace(crate::timebase::realtime_now_ns())
        }
    };
    let sync = |plan: &Plan| plan.gpu.stream.synchronize().map_err(Error::driver("running the model"));
    let marker = |w: &Arc<Mutex<Writer>>, kind: MarkerKind, t_ns: u64| -> Result<()> {
        lock(w)?.marker(&Marker { t_ns, kind }).map_err(io_err(path))
    };

    // Input: seeded, fixed.
    let input = crate::weights::seeded_input(g.tensors[g.input].dims, 0);
    plan.upload_input(&input)?;
    sync(&plan)?;

    let result = (|| -> Result<()> {
        // Warm-up: iteration 0 direct (learns the kernel sequence), then graphs if asked.
        let warm = opts.warmup.max(1);
        marker(&w, MarkerKind::PhaseBegin { phase: phase_warm, index: 0 }, now_trace(&tb))?;
        plan.set_iteration(0);
        plan.enqueue_planned()?;
        sync(&plan)?;
        if let Some(c) = &collector {
            c.flush().map_err(|e| Error::Invalid(e.to_string()))?;
        }
        out.kernels_per_iteration = counters.learned.load(Ordering::Relaxed);
        let graph = if opts.graphs {
            plan.set_tag_cell(None); // capture launches are not kernels that run
            let gr = plan.capture()?;
            plan.set_tag_cell(if cupti_on { Some(cell.clone()) } else { None });
            Some(gr)
        } else {
            None
        };
        let run_one = |plan: &Plan, it: u32| -> Result<()> {
            plan.set_iteration(it);
            match &graph {
                Some(gr) => {
                    cell.set(Tag { layer: GRAPH_LAYER, iteration: it });
                    gr.launch()?;
                    cell.set(TagCell::NONE);
                    Ok(())
                }
                None => plan.enqueue_planned(),
            }
        };
        for it in 1..warm {
            run_one(&plan, it)?;
        }
        sync(&plan)?;
        marker(&w, MarkerKind::PhaseEnd { phase: phase_warm, index: 0 }, now_trace(&tb))?;
        out.warmup_iterations = warm;

        // Measured phase.
        let t_begin = now_trace(&tb);
        marker(&w, MarkerKind::PhaseBegin { phase: phase_measure, index: 0 }, t_begin)?;
        let wall = Instant::now();
        let limit = Duration::from_secs_f64(opts.seconds.max(0.0));
        let mut it = 0u32;
        let mut last_progress = Instant::now();
        loop {
            if let Some(n) = opts.iterations {
                if it >= n {
                    break;
                }
            } else if wall.elapsed() >= limit {
                break;
            }
            if stop.load(Ordering::Relaxed) {
                out.interrupted = true;
                break;
            }
            run_one(&plan, warm + it)?;
            it += 1;
            if last_progress.elapsed() > Duration::from_millis(100) {
                last_progress = Instant::now();
                let f = match opts.iterations {
                    Some(n) => it as f64 / n.max(1) as f64,
                    None => wall.elapsed().as_secs_f64() / opts.seconds.max(1e-9),
                };
                progress(f.min(1.0));
            }
        }
        sync(&plan)?;
        let t_end = now_trace(&tb);
        marker(&w, MarkerKind::PhaseEnd { phase: phase_measure, index: 0 }, t_end)?;
        progress(1.0);
        out.iterations = it;
        out.measure_ns = t_end.saturating_sub(t_begin);
        out.images_per_s =
            if out.measure_ns > 0 { it as f64 * g.batch() as f64 / (out.measure_ns as f64 * 1e-9) } else { 0.0 };
        if let Some(r) = &opts.replay {
            if let Some(c) = &collector {
                c.flush().map_err(|e| Error::Invalid(e.to_string()))?;
                c.pause_kernels().map_err(|e| Error::Invalid(e.to_string()))?;
            }
            plan.set_tag_cell(None);
            let t0 = now_trace(&tb);
            let ctx = ReplayCtx { w: &w, path, tb: &tb, now_trace: &now_trace };
            let (windows, notes) = replay_layers(&mut plan, r, &ctx, stop, progress, &mut out.interrupted)?;
            out.replay_windows = windows;
            out.warnings.extend(notes);
            out.replay_ns = now_trace(&tb).saturating_sub(t0);
        }
        Ok(())
    })();

    // Shut down in order: CUPTI (flush delivers every record), sampler, drain, writer.
    plan.set_tag_cell(None);
    if let Some(c) = &collector {
        if let Err(e) = c.flush() {
            out.warnings.push(format!("CUPTI flush: {e}"));
        }
        out.layout_mismatches = c.stats().layout_mismatches.load(Ordering::Relaxed);
        out.cupti_pool_exhausted = c.pool_exhausted();
    }
    if let Some(t) = &tagger {
        out.launch_calls = t.launches();
        out.tag_collisions = t.table().collisions();
    }
    drop(collector);
    drop(tagger);
    if let Some(s) = &sampler {
        if let Ok(mut s) = s.lock() {
            out.sampler = Some(s.stop());
        }
    }
    drain_stop.store(true, Ordering::Release);
    if let Some(t) = drain_thread {
        let _ = t.join();
    }
    out.sensor_records = sensor_records.load(Ordering::Relaxed);
    out.kernel_records = counters.records.load(Ordering::Relaxed);
    out.unmapped = counters.unmapped.load(Ordering::Relaxed);
    out.dropped = counters.dropped.load(Ordering::Relaxed);
    out.kernels_expected = out.kernels_per_iteration * (out.warmup_iterations as u64 + out.iterations as u64);
    if counters.write_errors.load(Ordering::Relaxed) > 0 {
        out.warnings.push(format!("{} records could not be written", counters.write_errors.load(Ordering::Relaxed)));
    }

    // Layers (kernel names learned from iteration 0), end-of-run clock sync, summary.
    let mut wr = Arc::try_unwrap(w)
        .map_err(|_| Error::Invalid("trace writer still shared".into()))?
        .into_inner()
        .map_err(|_| Error::Invalid("trace writer poisoned".into()))?;
    let kernels = layer_kernels(&learned.lock().map(|l| l.clone()).unwrap_or_default(), conv_ids);
    write_layers(&mut wr, g, dtype, conv_ids, &kernels).map_err(io_err(path))?;
    match tb.remeasure() {
        Ok(end) => {
            let cs = tb.clock_sync(&end);
            out.clock_drift_ns = Some(end.offset_ns - tb.start.offset_ns);
            wr.clock_sync(&cs).map_err(io_err(path))?;
        }
        Err(e) => out.warnings.push(format!("end-of-run clock calibration failed: {e}")),
    }
    wr.finish().map_err(io_err(path))?;
    result?;
    Ok(out)
}

struct ReplayCtx<'a> {
    w: &'a Arc<Mutex<Writer>>,
    path: &'a Path,
    tb: &'a Timebase,
    now_trace: &'a dyn Fn(&Timebase) -> u64,
}

/// The replay phase (trace conventions: `cnnergy_traces::energy::replay`). Returns the
/// number of busy windows run and notes for the summary.
fn replay_layers(
    plan: &mut Plan,
    r: &ReplayOptions,
    cx: &ReplayCtx<'_>,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(f64),
    interrupted: &mut bool,
) -> Result<(u64, Vec<String>)> {
    use cnnergy_traces::energy::replay::{
        CODE_CONTEXT, CODE_EXECUTIONS, CODE_LAYER, IDLE_PHASE, LAYER_PHASE, PHASE, REFERENCE_PHASE,
    };
    use cudarc::driver::sys::CUevent_flags;
    use rand::{Rng, SeedableRng};

    let mut layers: Vec<u32> = Vec::new();
    for l in &plan.blueprint.launches {
        if !layers.contains(&l.layer_id) && r.layers.as_ref().is_none_or(|v| v.contains(&l.layer_id)) {
            layers.push(l.layer_id);
        }
    }
    let (phase, lphase, iphase, rphase) = {
        let mut wr = lock(cx.w)?;
        let e = io_err(cx.path);
        (
            wr.intern(PHASE).map_err(&e)?,
            wr.intern(LAYER_PHASE).map_err(&e)?,
            wr.intern(IDLE_PHASE).map_err(&e)?,
            wr.intern(REFERENCE_PHASE).map_err(&e)?,
        )
    };
    let mark = |kind: MarkerKind, t_ns: u64| -> Result<()> {
        lock(cx.w)?.marker(&Marker { t_ns, kind }).map_err(io_err(cx.path))
    };
    let stream = plan.gpu.stream.clone();
    let s = &stream;
    let gctx = plan.gpu.ctx.clone();
    let ev = || gctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(Error::driver("creating an event"));
    let (e0, e1) = (ev()?, ev()?);
    let sync = || s.synchronize().map_err(Error::driver("replaying a layer"));
    let elapsed_ns = |a: &cudarc::driver::CudaEvent, b: &cudarc::driver::CudaEvent| -> Result<u64> {
        Ok((a.elapsed_ms(b).map_err(Error::driver("reading an event"))? as f64 * 1e6) as u64)
    };

    // Per layer: one execution's time (events, after a warm run), then a graph of `reps`
    // executions lasting ~2 ms so launch gaps stay negligible even for µs kernels.
    struct Prepared {
        layer: u32,
        graph: crate::exec_gpu::GraphExec,
        reps: u64,
        graph_ns: f64,
    }
    let mut notes = Vec::new();
    let originals = plan.buffer_count();
    // Rotating copies: at most half of the free memory (less 1 GiB) over all layers.
    let mut budget = plan.gpu.ctx.mem_get_info().map(|(free, _)| free.saturating_sub(1 << 30) / 2).unwrap_or(0);
    let l2 = plan.gpu.info.l2_bytes as usize;
    let (mut rotated, mut short) = (0usize, 0usize);
    let mut prepared = Vec::with_capacity(layers.len());
    for &layer in &layers {
        let (read, written) = plan.layer_buffers(layer);
        let (which, weights): (Vec<usize>, _) = match r.cache {
            ReplayCache::Warm => (Vec::new(), Vec::new()),
            ReplayCache::Model => (written, plan.layer_weights(layer)),
            ReplayCache::Cold => (read.into_iter().chain(written).collect(), plan.layer_weights(layer)),
        };
        let bytes = plan.buffers_bytes(&which) + plan.weights_bytes(&weights);
        let mut copies = crate::exec_gpu::rotation_copies(bytes, l2, ROTATE_L2_FACTOR, ROTATE_MAX_COPIES);
        if (copies - 1) * bytes > budget {
            copies = (budget / bytes.max(1) + 1).min(copies);
            short += 1;
        }
        budget -= (copies - 1) * bytes;
        let rot = plan.add_rotation(&which, &weights, copies)?;
        rotated += usize::from(copies > 1);
        // Time one execution on the rotated buffers (warm run first).
        let probe = plan.capture_layer_rotating(layer, copies.max(3), &rot)?;
        probe.launch()?;
        e0.record(s).map_err(Error::driver("recording an event"))?;
        probe.launch()?;
        e1.record(s).map_err(Error::driver("recording an event"))?;
        sync()?;
        drop(probe);
        let one = (elapsed_ns(&e0, &e1)? as f64 / copies.max(3) as f64).max(500.0);
        // ~2 ms of executions, a whole number of passes over the copies.
        let reps = ((2e6 / one).ceil() as u64).clamp(1, 4000).div_ceil(copies as u64) * copies as u64;
        let graph = plan.capture_layer_rotating(layer, reps as usize, &rot)?;
        graph.launch()?;
        e0.record(s).map_err(Error::driver("recording an event"))?;
        graph.launch()?;
        e1.record(s).map_err(Error::driver("recording an event"))?;
        sync()?;
        let graph_ns = (elapsed_ns(&e0, &e1)? as f64).max(1000.0);
        prepared.push(Prepared { layer, graph, reps, graph_ns });
    }
    if r.cache != ReplayCache::Warm {
        notes.push(format!(
            "replay cache state {}: {rotated} of {} layers on rotating copies (>= {ROTATE_L2_FACTOR} x the {:.0} MB \
             L2){}",
            r.cache.name(),
            layers.len(),
            l2 as f64 / 1e6,
            if short > 0 { format!("; {short} layers got fewer copies (device memory)") } else { String::new() }
        ));
    }
    // The whole model, run during the random delays so the die stays near the model's
    // temperature (leakage power depends on it) instead of cooling between windows.
    let filler = if r.model_between || r.in_context {
        let g = plan.capture()?;
        g.launch()?;
        e0.record(s).map_err(Error::driver("recording an event"))?;
        g.launch()?;
        e1.record(s).map_err(Error::driver("recording an event"))?;
        sync()?;
        let ns = (elapsed_ns(&e0, &e1)? as f64).max(1000.0);
        Some((g, ns))
    } else {
        None
    };

    let mut rng = rand::rngs::StdRng::seed_from_u64(r.seed);
    let mut order: Vec<(usize, u32)> = (0..r.trials).flat_map(|t| (0..prepared.len()).map(move |i| (i, t))).collect();
    // Random order within each trial round keeps neighbouring layers from sharing a
    // thermal/clock history in every trial.
    for t in 0..r.trials as usize {
        let n = prepared.len();
        let chunk = &mut order[t * n..(t + 1) * n];
        for i in (1..chunk.len()).rev() {
            chunk.swap(i, rng.random_range(0..=i));
        }
    }
    let busy = Duration::from_secs_f64(r.skip_s + r.window_s);
    let total = order.len();
    let mut window = 0u32;
    let idle = |window: &mut u32| -> Result<()> {
        sync()?;
        mark(MarkerKind::PhaseBegin { phase: iphase, index: *window }, (cx.now_trace)(cx.tb))?;
        std::thread::sleep(busy);
        mark(MarkerKind::PhaseEnd { phase: iphase, index: *window }, (cx.now_trace)(cx.tb))?;
        *window += 1;
        // In context: a reference window of whole-model iterations after every idle one.
        if let (true, Some((g, ns))) = (r.in_context, &filler) {
            let n = ((busy.as_nanos() as f64 / ns).ceil() as u64).max(1);
            mark(MarkerKind::PhaseBegin { phase: rphase, index: *window }, (cx.now_trace)(cx.tb))?;
            e0.record(s).map_err(Error::driver("recording an event"))?;
            for _ in 0..n {
                g.launch()?;
            }
            e1.record(s).map_err(Error::driver("recording an event"))?;
            sync()?;
            let busy_ns = elapsed_ns(&e0, &e1)?;
            mark(MarkerKind::Other { code: CODE_EXECUTIONS, a: n, b: busy_ns }, (cx.now_trace)(cx.tb))?;
            mark(MarkerKind::PhaseEnd { phase: rphase, index: *window }, (cx.now_trace)(cx.tb))?;
            *window += 1;
        }
        Ok(())
    };
    mark(MarkerKind::PhaseBegin { phase, index: 0 }, (cx.now_trace)(cx.tb))?;
    idle(&mut window)?;
    let mut done = 0u64;
    for (k, &(i, trial)) in order.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            *interrupted = true;
            break;
        }
        let p = &prepared[i];
        // Random delay so the counter's update phase differs between trials.
        let delay_ns = rng.random_range(1_000_000..150_000_000u64);
        match &filler {
            Some((g, ns)) => {
                for _ in 0..((delay_ns as f64 / ns).ceil() as u64).max(1) {
                    g.launch()?;
                }
                sync()?;
            }
            None => std::thread::sleep(Duration::from_nanos(delay_ns)),
        }
        // In context, every layer graph is followed by `m` model iterations.
        let (m, model) = match (&filler, r.in_context) {
            (Some((g, ns)), true) => (((2.0 * p.graph_ns / ns).ceil() as u64).max(1), Some((g, *ns))),
            _ => (0, None),
        };
        let block_ns = p.graph_ns + model.map_or(0.0, |(_, ns)| m as f64 * ns);
        let n = ((busy.as_nanos() as f64 / block_ns).ceil() as u64).max(1);
        mark(MarkerKind::PhaseBegin { phase: lphase, index: window }, (cx.now_trace)(cx.tb))?;
        mark(MarkerKind::Other { code: CODE_LAYER, a: p.layer as u64, b: trial as u64 }, (cx.now_trace)(cx.tb))?;
        e0.record(s).map_err(Error::driver("recording an event"))?;
        for _ in 0..n {
            p.graph.launch()?;
            if let Some((g, _)) = model {
                for _ in 0..m {
                    g.launch()?;
                }
            }
        }
        e1.record(s).map_err(Error::driver("recording an event"))?;
        sync()?;
        let busy_ns = elapsed_ns(&e0, &e1)?;
        if model.is_some() {
            mark(MarkerKind::Other { code: CODE_CONTEXT, a: n * m, b: 0 }, (cx.now_trace)(cx.tb))?;
        }
        mark(MarkerKind::Other { code: CODE_EXECUTIONS, a: n * p.reps, b: busy_ns }, (cx.now_trace)(cx.tb))?;
        mark(MarkerKind::PhaseEnd { phase: lphase, index: window }, (cx.now_trace)(cx.tb))?;
        window += 1;
        done += 1;
        progress((k + 1) as f64 / total as f64);
        if r.idle_every > 0 && (k + 1) % r.idle_every == 0 && k + 1 < total {
            idle(&mut window)?;
        }
    }
    idle(&mut window)?;
    mark(MarkerKind::PhaseEnd { phase, index: 0 }, (cx.now_trace)(cx.tb))?;
    drop(filler);
    drop(prepared);
    sync()?;
    plan.truncate_buffers(originals);
    Ok((done, notes))
}

/// Kernel names per layer id, in first-launch order, from the learned (layer, name) list.
fn layer_kernels(learned: &[(u32, String)], ids: (u32, u32)) -> Vec<Vec<String>> {
    let mut v = vec![Vec::new(); ids.1 as usize + 1];
    for (layer, name) in learned {
        if let Some(slot) = v.get_mut(*layer as usize) {
            if !slot.contains(name) {
                slot.push(name.clone());
            }
        }
    }
    v
}

/// Writes one sampler record.
fn write_sample(w: &mut Writer, e: &Event) -> std::io::Result<()> {
    match e {
        Event::Power(s) => w.power(s),
        Event::Energy(s) => w.energy(s),
        Event::Clocks(s) => w.clocks(s),
        Event::Temperature(s) => w.temperature(s),
        Event::Throttle(s) => w.throttle(s),
        Event::Dropped(d) => w.dropped(d),
        Event::Marker(m) => w.marker(m),
        Event::ClockSync(c) => w.clock_sync(c),
        Event::Kernel(k) => w.kernel(k),
    }
}

/// Default trace file name: `MODEL-bB-PRECISION-YYYYmmddTHHMMSS.cnt` (UTC); `precision`
/// as `ExecOptions::precision` names it (`f32`, `tf32`, `f16`).
pub fn default_trace_name(model: &str, batch: usize, precision: &str, unix_s: u64) -> String {
    let stem = Path::new(model).file_stem().and_then(|s| s.to_str()).unwrap_or(model);
    let d = precision;
    let (y, mo, da, h, mi, s) = civil(unix_s);
    format!("{stem}-b{batch}-{d}-{y:04}{mo:02}{da:02}T{h:02}{mi:02}{s:02}.cnt")
}

/// Unix seconds → (year, month, day, hour, minute, second), UTC (proleptic Gregorian).
fn civil(t: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (t / 86400) as i64;
    let rem = t % 86400;
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        // Hand-checked: 0 = 1970-01-01 00:00:00; 951782400 = 2000-02-29 00:00:00;
        // 1795775696 = 2026-11-27 10:34:56.
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_795_775_696), (2026, 11, 27, 10, 34, 56));
        assert_eq!(default_trace_name("resnet50", 8, "f16", 0), "resnet50-b8-f16-19700101T000000.cnt");
        assert_eq!(default_trace_name("/x/y/net.onnx", 1, "tf32", 0), "net-b1-tf32-19700101T000000.cnt");
    }

    #[test]
    fn replay_cache_names_round_trip() {
        for n in ReplayCache::NAMES {
            assert_eq!(ReplayCache::parse(n).map(|c| c.name()), Some(n));
        }
        assert_eq!(ReplayCache::parse("hot"), None);
    }

    #[test]
    fn rotation_spans_the_cache_a_whole_number_of_times() {
        use crate::exec_gpu::rotation_copies;
        let l2 = 50 << 20;
        // 1 MiB per copy: 100 copies would be needed, capped at 64.
        assert_eq!(rotation_copies(1 << 20, l2, 2, 64), 64);
        // 30 MiB per copy: ceil(100 / 30) = 4 copies = 120 MiB >= 2 x L2.
        assert_eq!(rotation_copies(30 << 20, l2, 2, 64), 4);
        // Already larger than 2 x L2: no copies; nothing to rotate: none either.
        assert_eq!(rotation_copies(200 << 20, l2, 2, 64), 1);
        assert_eq!(rotation_copies(0, l2, 2, 64), 1);
    }
}
