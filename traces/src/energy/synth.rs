//! Synthetic traces with a known ground truth, for tests: a piecewise-constant true
//! power (per-kernel power levels, idle power in gaps) seen through simulated NVML
//! sensors (boxcar-averaged sample buffer with delay, 100 ms energy counter, instant
//! field averaging 25 ms of every 100 ms).

use std::collections::BTreeMap;

use super::replay;
use crate::records::*;
use crate::TraceWriter;

const MS: u64 = 1_000_000;

/// Deterministic splitmix64 generator (tests must not depend on an RNG crate's stream).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in [lo, hi] (hi >= lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + (self.uniform() * (hi - lo + 1) as f64) as u64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// The true power: contiguous constant segments `(start, end, watts)`, with a prefix
/// integral for exact window averages.
#[derive(Debug, Clone)]
pub struct PowerTruth {
    segs: Vec<(u64, u64, f64)>,
    /// Energy (J) before each segment.
    prefix: Vec<f64>,
    idle_w: f64,
}

impl PowerTruth {
    pub fn new(mut segs: Vec<(u64, u64, f64)>, idle_w: f64) -> PowerTruth {
        segs.sort_by_key(|s| s.0);
        let mut prefix = Vec::with_capacity(segs.len());
        let mut acc = 0.0;
        for s in &segs {
            prefix.push(acc);
            acc += (s.1 - s.0) as f64 * s.2 * 1e-9;
        }
        PowerTruth { segs, prefix, idle_w }
    }

    /// `∫_0^t P` (J); before the first and after the last segment the power is idle.
    pub fn cumulative(&self, t: u64) -> f64 {
        let first = self.segs.first().map_or(0, |s| s.0);
        if t <= first {
            return self.idle_w * t as f64 * 1e-9;
        }
        let base = self.idle_w * first as f64 * 1e-9;
        let i = self.segs.partition_point(|s| s.0 <= t) - 1;
        let s = self.segs[i];
        let inside = (t.min(s.1) - s.0) as f64 * s.2 * 1e-9;
        let after = if t > s.1 { (t - s.1) as f64 * self.idle_w * 1e-9 } else { 0.0 };
        base + self.prefix[i] + inside + after
    }

    /// Mean power over `[a, b]` (W).
    pub fn mean(&self, a: u64, b: u64) -> f64 {
        (self.cumulative(b) - self.cumulative(a)) / (b - a) as f64 * 1e9
    }
}

/// The driver's power-sample buffer ("nvml.samples"): a sample every `period_ns`
/// (± `jitter_ns`), each the mean of the last `window_ns` (0 = since the previous
/// sample) ending `delay_ns` before its timestamp, plus Gaussian noise.
#[derive(Debug, Clone, Copy)]
pub struct SamplesSensor {
    pub period_ns: u64,
    pub jitter_ns: u64,
    pub window_ns: u64,
    pub delay_ns: u64,
    pub noise_w: f64,
    /// Multiplies every reading (a miscalibrated sensor).
    pub gain: f64,
}

impl Default for SamplesSensor {
    fn default() -> Self {
        // delay: as measured on an H200 (docs/energy-method.md, section 1)
        SamplesSensor { period_ns: 20 * MS, jitter_ns: 3 * MS, window_ns: 0, delay_ns: 5 * MS, noise_w: 1.0, gain: 1.0 }
    }
}

/// A polled value that the sensor updates every `period_ns` with the mean of the
/// last `window_ns` ("nvml.instant": ~100 ms of every 100 ms on an H200); the recorder polls it
/// every `poll_ns`.
#[derive(Debug, Clone, Copy)]
pub struct PolledSensor {
    pub period_ns: u64,
    pub window_ns: u64,
    pub delay_ns: u64,
    pub poll_ns: u64,
}

impl Default for PolledSensor {
    fn default() -> Self {
        PolledSensor { period_ns: 100 * MS, window_ns: 100 * MS, delay_ns: 0, poll_ns: 10 * MS }
    }
}

/// The total-energy counter: updated every `period_ns` (first update at `phase_ns`)
/// with the energy up to `delay_ns` before the update; polled every `poll_ns`.
#[derive(Debug, Clone, Copy)]
pub struct CounterSensor {
    pub period_ns: u64,
    pub phase_ns: u64,
    pub delay_ns: u64,
    pub poll_ns: u64,
    /// Each poll interval varies uniformly by ± this (the read itself takes ~4 ms).
    pub poll_jitter_ns: u64,
}

impl Default for CounterSensor {
    fn default() -> Self {
        CounterSensor { period_ns: 100 * MS, phase_ns: 37 * MS, delay_ns: 0, poll_ns: 5 * MS, poll_jitter_ns: MS }
    }
}

#[derive(Debug, Clone)]
pub struct SynthLayer {
    pub name: String,
    pub op: String,
    /// (duration ns, power W) per kernel, in launch order.
    pub kernels: Vec<(u64, f64)>,
    pub flops: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub layers: Vec<SynthLayer>,
    pub idle_w: f64,
    pub warmup_iters: u32,
    pub measure_iters: u32,
    /// Gap between consecutive kernels of one inference.
    pub kernel_gap_ns: u64,
    /// Gap between inferences, uniform in this range.
    pub iter_gap_ns: (u64, u64),
    /// Idle time before the first and after the last kernel.
    pub lead_in_ns: u64,
    pub tail_ns: u64,
    pub samples: Option<SamplesSensor>,
    pub instant: Option<PolledSensor>,
    pub counter: Option<CounterSensor>,
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            layers: Vec::new(),
            idle_w: 100.0,
            warmup_iters: 5,
            measure_iters: 100,
            kernel_gap_ns: 5_000,
            iter_gap_ns: (0, 2 * MS),
            lead_in_ns: 300 * MS,
            tail_ns: 300 * MS,
            samples: Some(SamplesSensor::default()),
            instant: None,
            counter: Some(CounterSensor::default()),
            seed: 1,
        }
    }
}

/// What the analysis should find.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Energy per execution by layer id (mJ).
    pub layer_mj: BTreeMap<u32, f64>,
    /// GPU time per execution by layer id (ns).
    pub layer_ns: BTreeMap<u32, f64>,
    /// Per kernel event of the measure phase, in trace order: (event index, mJ).
    pub kernel_mj: Vec<(u64, f64)>,
    /// Measure phase `[begin, end]`.
    pub window: (u64, u64),
    /// Energy in the measure window (J): kernels, idle gaps.
    pub kernel_j: f64,
    pub idle_j: f64,
    pub power: Option<PowerTruth>,
}

fn header(model: &str, phases: Vec<Phase<'static>>) -> Header<'static> {
    Header {
        tool_version: "cnnergy synth".into(),
        host: "synth".into(),
        device: Device { name: "Synthetic GPU".into(), ..Device::default() },
        workload: Workload {
            model: model.to_string().into(),
            batch_size: 1,
            dtype: "f32".into(),
            iterations: phases.iter().map(|p| p.iterations).sum(),
            phases,
            ..Workload::default()
        },
        ..Header::default()
    }
}

fn simulate_sensors(
    out: &mut Vec<Event>,
    truth: &PowerTruth,
    end: u64,
    cfg: (Option<SamplesSensor>, Option<PolledSensor>, Option<CounterSensor>),
    ids: (StrId, StrId),
    rng: &mut Rng,
) {
    let (samples, instant, counter) = cfg;
    if let Some(s) = samples {
        let mut prev = s.delay_ns + s.period_ns;
        let mut t = prev + s.period_ns;
        while t < end {
            let wend = t - s.delay_ns;
            let wbeg = if s.window_ns == 0 { prev - s.delay_ns } else { wend.saturating_sub(s.window_ns) };
            let w = s.gain * truth.mean(wbeg, wend) + s.noise_w * rng.normal();
            out.push(Event::Power(PowerSample { t_ns: t, sensor: ids.0, power_mw: (w * 1e3).round().max(0.0) as u32 }));
            prev = t;
            t += s.period_ns - s.jitter_ns + rng.range(0, 2 * s.jitter_ns);
        }
    }
    if let Some(s) = instant {
        let mut t = s.poll_ns;
        while t < end {
            // value of the last update at or before t
            let k = t / s.period_ns;
            if k >= 1 {
                let u = k * s.period_ns - s.delay_ns;
                let w = truth.mean(u.saturating_sub(s.window_ns), u);
                out.push(Event::Power(PowerSample { t_ns: t, sensor: ids.1, power_mw: (w * 1e3).round() as u32 }));
            }
            t += s.poll_ns;
        }
    }
    if let Some(c) = counter {
        let base = 987_654_321u64;
        let mut t = c.poll_ns;
        while t < end {
            let value = if t < c.phase_ns {
                base
            } else {
                let u = c.phase_ns + (t - c.phase_ns) / c.period_ns * c.period_ns;
                base + (truth.cumulative(u.saturating_sub(c.delay_ns)) * 1e3).floor() as u64
            };
            out.push(Event::Energy(EnergySample { t_ns: t, energy_mj: value }));
            t +=
                c.poll_ns - c.poll_jitter_ns.min(c.poll_ns / 2) + rng.range(0, 2 * c.poll_jitter_ns.min(c.poll_ns / 2));
        }
    }
}

fn write(header: &Header<'_>, strings: &[&str], layers: &[Layer], mut events: Vec<Event>) -> Vec<u8> {
    events.sort_by_key(|e| e.t_ns());
    let mut w = TraceWriter::new(Vec::new(), header).expect("in-memory writer");
    for s in strings {
        w.intern(s).expect("intern");
    }
    for l in layers {
        w.layer(l).expect("layer");
    }
    for e in &events {
        w.event(e).expect("event");
    }
    w.finish().expect("finish")
}

/// Builds a profile trace ("warmup" then "measure" phases) and its ground truth.
pub fn generate(cfg: &SynthConfig) -> (Vec<u8>, Truth) {
    let mut rng = Rng::new(cfg.seed);
    // String table: fixed ids so records can be built before writing.
    let mut strings: Vec<String> =
        vec!["nvml.samples".into(), "nvml.instant".into(), "warmup".into(), "measure".into()];
    let (s_samples, s_instant, s_warm, s_meas) = (StrId(0), StrId(1), StrId(2), StrId(3));
    let mut layers = Vec::new();
    for (i, l) in cfg.layers.iter().enumerate() {
        let base = strings.len() as u32;
        strings.push(l.name.clone());
        strings.push(l.op.clone());
        let mut kernels = Vec::new();
        for k in 0..l.kernels.len() {
            kernels.push(StrId(strings.len() as u32));
            strings.push(format!("{}_k{k}", l.name));
        }
        layers.push(Layer {
            id: LayerId(i as u32),
            name: StrId(base),
            op: StrId(base + 1),
            flops: l.flops,
            bytes_moved: l.bytes,
            kernels,
            ..Layer::default()
        });
    }

    let mut events = Vec::new();
    let mut segs = Vec::new();
    let mut truth = Truth::default();
    let mut t = cfg.lead_in_ns;
    let mut kernel_index = 0u64;
    let total_iters = cfg.warmup_iters + cfg.measure_iters;
    let mut sum_layer_j: BTreeMap<u32, f64> = BTreeMap::new();
    let mut sum_layer_ns: BTreeMap<u32, f64> = BTreeMap::new();
    for it in 0..total_iters {
        let measure = it >= cfg.warmup_iters;
        if it == 0 {
            events.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::PhaseBegin { phase: s_warm, index: 0 } }));
        }
        if it == cfg.warmup_iters {
            events.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::PhaseEnd { phase: s_warm, index: 0 } }));
            events.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::PhaseBegin { phase: s_meas, index: 0 } }));
            truth.window.0 = t;
        }
        events.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::IterationBegin { iteration: it } }));
        for (li, l) in cfg.layers.iter().enumerate() {
            for (ki, &(dur, watts)) in l.kernels.iter().enumerate() {
                let launch = KernelLaunch {
                    layer: LayerId(li as u32),
                    kernel: layers[li].kernels[ki],
                    grid: [ki as u32 + 1, li as u32 + 1, 1],
                    block: [128, 1, 1],
                    ..KernelLaunch::default()
                };
                events.push(Event::Kernel(KernelEvent {
                    launch,
                    iteration: it,
                    start_ns: t,
                    duration_ns: dur,
                    correlation_id: kernel_index as u32,
                }));
                segs.push((t, t + dur, watts));
                if measure {
                    let e = watts * dur as f64 * 1e-9;
                    truth.kernel_mj.push((kernel_index, e * 1e3));
                    truth.kernel_j += e;
                    *sum_layer_j.entry(li as u32).or_default() += e;
                    *sum_layer_ns.entry(li as u32).or_default() += dur as f64;
                }
                kernel_index += 1;
                t += dur;
                let gap = cfg.kernel_gap_ns;
                segs.push((t, t + gap, cfg.idle_w));
                if measure {
                    truth.idle_j += cfg.idle_w * gap as f64 * 1e-9;
                }
                t += gap;
            }
        }
        events.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::IterationEnd { iteration: it } }));
        let gap = rng.range(cfg.iter_gap_ns.0, cfg.iter_gap_ns.1);
        if it + 1 < total_iters {
            segs.push((t, t + gap, cfg.idle_w));
            if measure {
                truth.idle_j += cfg.idle_w * gap as f64 * 1e-9;
            }
            t += gap;
        }
    }
    events.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::PhaseEnd { phase: s_meas, index: 0 } }));
    truth.window.1 = t;
    let end = t + cfg.tail_ns;
    let n = cfg.measure_iters.max(1) as f64;
    truth.layer_mj = sum_layer_j.iter().map(|(k, v)| (*k, v / n * 1e3)).collect();
    truth.layer_ns = sum_layer_ns.iter().map(|(k, v)| (*k, v / n)).collect();

    let power = PowerTruth::new(segs, cfg.idle_w);
    simulate_sensors(
        &mut events,
        &power,
        end,
        (cfg.samples, cfg.instant, cfg.counter),
        (s_samples, s_instant),
        &mut rng,
    );
    truth.power = Some(power);

    let h = header(
        "synth",
        vec![
            Phase { name: "warmup".into(), iterations: cfg.warmup_iters },
            Phase { name: "measure".into(), iterations: cfg.measure_iters },
        ],
    );
    let strs: Vec<&str> = strings.iter().map(|s| s.as_str()).collect();
    (write(&h, &strs, &layers, events), truth)
}

/// One layer of a synthetic replay: its steady-state power and time per execution.
#[derive(Debug, Clone, Copy)]
pub struct ReplayLayer {
    pub power_w: f64,
    pub exec_ns: u64,
}

#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub layers: Vec<ReplayLayer>,
    pub idle_w: f64,
    pub trials: u32,
    /// Busy window length (the planner's skip + window).
    pub busy_ns: u64,
    /// Power rises linearly from idle to the layer's level over this time.
    pub rise_ns: u64,
    /// Random delay between windows, uniform in [0, this].
    pub max_delay_ns: u64,
    pub idle_windows: u32,
    /// Write kernel events (one per execution) for this layer index.
    pub kernel_events_for: Option<usize>,
    pub counter: CounterSensor,
    pub seed: u64,
    /// A measure phase (the model run) before the replay.
    pub measure: Option<MeasurePrefix>,
    /// In-context replay: busy windows alternate ~2 ms of the layer with model iterations,
    /// and every idle window is followed by a reference window of model iterations only.
    pub context: Option<ContextModel>,
}

/// The whole model as the in-context filler: power and time of one iteration.
#[derive(Debug, Clone, Copy)]
pub struct ContextModel {
    pub power_w: f64,
    pub iter_ns: u64,
    pub iters_per_block: u64,
}

/// The whole-model phase of a synthetic replay trace: every layer's kernel once per
/// iteration, taking `time_scale[l]` × its replay time; die temperature samples every
/// 50 ms, constant within each phase.
#[derive(Debug, Clone)]
pub struct MeasurePrefix {
    pub iterations: u32,
    pub time_scale: Vec<f64>,
    pub temp_measure_c: i32,
    pub temp_replay_c: i32,
    /// SM clock (measure phase, replay), with the same 50 ms samples.
    pub sm_mhz: (u32, u32),
    /// Power-cap clock-event bit set on every replay sample.
    pub capped_in_replay: bool,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            layers: Vec::new(),
            idle_w: 90.0,
            trials: 5,
            busy_ns: 1200 * MS,
            rise_ns: 120 * MS,
            max_delay_ns: 150 * MS,
            idle_windows: 3,
            kernel_events_for: None,
            counter: CounterSensor { poll_ns: 4 * MS, ..CounterSensor::default() },
            seed: 7,
            measure: None,
            context: None,
        }
    }
}

/// Builds a replay trace following the conventions of [`replay`]. Truth: energy per
/// execution (mJ) per layer = power × time per execution.
pub fn generate_replay(cfg: &ReplayConfig) -> (Vec<u8>, BTreeMap<u32, f64>) {
    let mut rng = Rng::new(cfg.seed);
    let strings = [
        "replay",
        replay::LAYER_PHASE,
        replay::IDLE_PHASE,
        "layer",
        "Conv",
        "kern",
        "measure",
        "gpu",
        replay::REFERENCE_PHASE,
    ];
    let (s_replay, s_layer, s_idle) = (StrId(0), StrId(1), StrId(2));
    let layers: Vec<Layer> = (0..cfg.layers.len())
        .map(|i| Layer {
            id: LayerId(i as u32),
            name: StrId(3),
            op: StrId(4),
            kernels: vec![StrId(5)],
            ..Layer::default()
        })
        .collect();
    let mut events = Vec::new();
    let mut segs: Vec<(u64, u64, f64)> = Vec::new();
    let mut t = 200 * MS;
    let mut window = 0u32;
    let temp = |t_ns, c| Event::Temperature(TemperatureSample { t_ns, sensor: StrId(7), temp_c: c });
    let clock = |t_ns, sm_mhz| Event::Clocks(ClockSample { t_ns, sm_mhz, mem_mhz: 3201 });
    let cap =
        |t_ns, on: bool| Event::Throttle(ThrottleSample { t_ns, reasons: if on { throttle::SW_POWER_CAP } else { 0 } });
    if let Some(m) = &cfg.measure {
        let (s_measure, begin) = (StrId(6), t);
        events.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::PhaseBegin { phase: s_measure, index: 0 } }));
        for it in 0..m.iterations {
            for (l, ly) in cfg.layers.iter().enumerate() {
                let d = (ly.exec_ns as f64 * m.time_scale.get(l).copied().unwrap_or(1.0)) as u64;
                let launch = KernelLaunch { layer: LayerId(l as u32), kernel: StrId(5), ..KernelLaunch::default() };
                events.push(Event::Kernel(KernelEvent {
                    launch,
                    iteration: it,
                    start_ns: t,
                    duration_ns: d,
                    correlation_id: it * cfg.layers.len() as u32 + l as u32,
                }));
                segs.push((t, t + d, ly.power_w));
                t += d;
            }
        }
        events.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::PhaseEnd { phase: s_measure, index: 0 } }));
        for x in (begin..t).step_by(50 * MS as usize) {
            events.extend([temp(x, m.temp_measure_c), clock(x, m.sm_mhz.0), cap(x, false)]);
        }
        t += 100 * MS;
    }
    let replay_begin = t;
    events.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::PhaseBegin { phase: s_replay, index: 0 } }));
    let mk = |t_ns, kind| Event::Marker(Marker { t_ns, kind });
    // Windows: idle ones first and last, layers × trials in between, trial-major.
    // (None, false) idle, (None, true) reference, (Some(layer, trial), _) busy.
    let mut plan: Vec<(Option<(usize, u32)>, bool)> = Vec::new();
    let half = cfg.idle_windows / 2;
    let idle_then_ref = |plan: &mut Vec<(Option<(usize, u32)>, bool)>| {
        plan.push((None, false));
        if cfg.context.is_some() {
            plan.push((None, true));
        }
    };
    (0..half).for_each(|_| idle_then_ref(&mut plan));
    for trial in 0..cfg.trials {
        plan.extend((0..cfg.layers.len()).map(|l| (Some((l, trial)), false)));
    }
    (half..cfg.idle_windows).for_each(|_| idle_then_ref(&mut plan));
    for (w, reference) in plan {
        t += rng.range(MS, cfg.max_delay_ns.max(MS));
        let begin = t;
        // Busy windows end with their last launch (in context: a whole block).
        let end = match (w, cfg.context) {
            (Some((l, _)), Some(c)) => {
                let block =
                    (2 * MS).div_ceil(cfg.layers[l].exec_ns) * cfg.layers[l].exec_ns + c.iters_per_block * c.iter_ns;
                t + cfg.busy_ns / block * block
            }
            (None, Some(c)) if reference => t + cfg.busy_ns / c.iter_ns * c.iter_ns,
            _ => t + cfg.busy_ns,
        };
        match w {
            None if reference => {
                let c = cfg.context.expect("reference windows only in context");
                let s_ref = StrId(8);
                let iters = cfg.busy_ns / c.iter_ns;
                events.push(mk(begin, MarkerKind::PhaseBegin { phase: s_ref, index: window }));
                segs.push((begin, end, c.power_w));
                events
                    .push(mk(end, MarkerKind::Other { code: replay::CODE_EXECUTIONS, a: iters, b: iters * c.iter_ns }));
                events.push(mk(end, MarkerKind::PhaseEnd { phase: s_ref, index: window }));
            }
            None => {
                events.push(mk(begin, MarkerKind::PhaseBegin { phase: s_idle, index: window }));
                events.push(mk(end, MarkerKind::PhaseEnd { phase: s_idle, index: window }));
            }
            Some((l, trial)) if cfg.context.is_some() => {
                let (c, ly) = (
                    cfg.context.unwrap_or(ContextModel { power_w: 0.0, iter_ns: 1, iters_per_block: 0 }),
                    cfg.layers[l],
                );
                let _ = ly.power_w;
                events.push(mk(begin, MarkerKind::PhaseBegin { phase: s_layer, index: window }));
                events.push(mk(begin, MarkerKind::Other { code: replay::CODE_LAYER, a: l as u64, b: trial as u64 }));
                // Blocks of ~2 ms of the layer, then the model iterations, until the window is full.
                let reps = (2 * MS).div_ceil(ly.exec_ns);
                let block = reps * ly.exec_ns + c.iters_per_block * c.iter_ns;
                let blocks = cfg.busy_ns / block;
                let mut x = begin;
                for _ in 0..blocks {
                    segs.push((x, x + reps * ly.exec_ns, ly.power_w));
                    x += reps * ly.exec_ns;
                    segs.push((x, x + c.iters_per_block * c.iter_ns, c.power_w));
                    x += c.iters_per_block * c.iter_ns;
                }
                debug_assert_eq!(x, end);
                let iters = blocks * c.iters_per_block;
                events.push(mk(end, MarkerKind::Other { code: replay::CODE_CONTEXT, a: iters, b: 0 }));
                events.push(mk(
                    end,
                    MarkerKind::Other { code: replay::CODE_EXECUTIONS, a: blocks * reps, b: blocks * block },
                ));
                events.push(mk(end, MarkerKind::PhaseEnd { phase: s_layer, index: window }));
            }
            Some((l, trial)) => {
                let ly = cfg.layers[l];
                events.push(mk(begin, MarkerKind::PhaseBegin { phase: s_layer, index: window }));
                events.push(mk(begin, MarkerKind::Other { code: replay::CODE_LAYER, a: l as u64, b: trial as u64 }));
                // Rise: linear ramp approximated by 10 steps.
                let steps = 10u64;
                for s in 0..steps {
                    let a = begin + cfg.rise_ns * s / steps;
                    let b = begin + cfg.rise_ns * (s + 1) / steps;
                    let frac = (s as f64 + 0.5) / steps as f64;
                    segs.push((a, b, cfg.idle_w + frac * (ly.power_w - cfg.idle_w)));
                }
                segs.push((begin + cfg.rise_ns, end, ly.power_w));
                let execs = cfg.busy_ns / ly.exec_ns;
                let span = execs * ly.exec_ns;
                if cfg.kernel_events_for == Some(l) {
                    for e in 0..execs {
                        let launch =
                            KernelLaunch { layer: LayerId(l as u32), kernel: StrId(5), ..KernelLaunch::default() };
                        events.push(Event::Kernel(KernelEvent {
                            launch,
                            iteration: 0,
                            start_ns: begin + e * ly.exec_ns,
                            duration_ns: ly.exec_ns,
                            correlation_id: e as u32,
                        }));
                    }
                }
                events.push(mk(end, MarkerKind::Other { code: replay::CODE_EXECUTIONS, a: execs, b: span }));
                events.push(mk(end, MarkerKind::PhaseEnd { phase: s_layer, index: window }));
            }
        }
        window += 1;
        t = end;
    }
    events.push(mk(t, MarkerKind::PhaseEnd { phase: s_replay, index: 0 }));
    if let Some(m) = &cfg.measure {
        for x in (replay_begin..t).step_by(50 * MS as usize) {
            events.extend([temp(x, m.temp_replay_c), clock(x, m.sm_mhz.1), cap(x, m.capped_in_replay)]);
        }
    }
    let power = PowerTruth::new(segs, cfg.idle_w);
    simulate_sensors(
        &mut events,
        &power,
        t + 300 * MS,
        (None, None, Some(cfg.counter)),
        (StrId(0), StrId(0)),
        &mut rng,
    );
    let mut phases = vec![Phase { name: "replay".into(), iterations: 0 }];
    if let Some(m) = &cfg.measure {
        phases.insert(0, Phase { name: "measure".into(), iterations: m.iterations });
    }
    let h = header("synth-replay", phases);
    let truth = cfg.layers.iter().enumerate().map(|(i, l)| (i as u32, l.power_w * l.exec_ns as f64 * 1e-6)).collect();
    (write(&h, &strings, &layers, events), truth)
}
