//! Deterministic synthetic traces shaped like real recordings, for the offline tools'
//! tests, golden fixtures and benchmarks (no GPU needed).
//!
//! A small CNN (conversion, convolutions with fused ReLU, a split-K convolution, an
//! unfused batch-norm + ReLU, pooling, a residual add, a fully connected layer,
//! softmax) is "run" `warmup + measure` times on one stream. The GPU's true power is
//! piecewise constant: `idle_w` between kernels, `idle_w + dynamic(type)` during a
//! kernel. The sensors sample that truth the way NVML does: "nvml.samples" every
//! 20 ms (mean over the last 20 ms), "nvml.instant" every 5 ms, the total-energy
//! counter every 100 ms (its exact integral), clocks every 100 ms, temperature every
//! second, with iteration and phase markers and a clock sync at both ends.
//! [`Truth`] returns the exact energies so tests can check analyses against them.

use std::io::{self, Write};

use crate::records::*;
use crate::writer::TraceWriter;

/// What to synthesize.
#[derive(Debug, Clone)]
pub struct Spec {
    pub seed: u64,
    pub batch: u32,
    pub warmup: u32,
    pub measure: u32,
    /// The middle residual block is repeated this many times (more kernels per
    /// inference).
    pub blocks: u32,
    /// Multiplies every kernel's nominal duration.
    pub time_scale: f64,
    pub idle_w: f64,
    /// Write power and energy samples (false: a time-only trace).
    pub power: bool,
    pub model: String,
    pub sm_clock_mhz: u32,
    pub power_limit_w: u32,
    /// Kernel variant name recorded in the header for convolutions.
    pub conv_variant: String,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            seed: 0x5EED,
            batch: 8,
            warmup: 50,
            measure: 500,
            blocks: 1,
            // ~5.6 ms inferences: the measure phase lasts ~3 s (150 power samples).
            time_scale: 100.0,
            idle_w: 70.0,
            power: true,
            model: "tinynet".into(),
            sm_clock_mhz: 1755,
            power_limit_w: 700,
            conv_variant: "implicit_gemm_128x64".into(),
        }
    }
}

/// Exact figures of the synthetic run's measure phase.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Energy of each layer per inference (mJ), averaged over the measure phase,
    /// dynamic + idle power during its kernels; indexed by layer id.
    pub layer_energy_mj: Vec<f64>,
    /// GPU time of each layer per inference (ns), averaged.
    pub layer_time_ns: Vec<f64>,
    /// Whole measure window: first kernel start to last kernel end (ns).
    pub window_ns: u64,
    pub total_energy_j: f64,
    pub kernels: u64,
}

/// SplitMix64: tiny, seeded, good enough for synthetic jitter.
struct Rng(u64);

impl Rng {
    fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
}

struct Site {
    launch: KernelLaunch,
    nominal_ns: f64,
    dynamic_w: f64,
}

struct LayerSpec<'s> {
    name: String,
    op: &'static str,
    inputs: Vec<Shape>,
    output: Shape,
    flops: u64,
    bytes: u64,
    kernels: Vec<(&'s str, u32)>,
    attrs: Vec<(&'static str, AttrValue)>,
}

/// Dynamic power (W above idle) of a kernel of this op, the "truth" of the synthetic GPU.
fn dynamic_w(op: &str) -> f64 {
    match op {
        "Conv" => 210.0,
        "Gemm" => 150.0,
        "MaxPool" | "GlobalAveragePool" | "AveragePool" => 90.0,
        "Relu" | "Clip" | "Sigmoid" => 70.0,
        "BatchNormalization" => 80.0,
        _ => 55.0,
    }
}

fn layer_specs(batch: u64, blocks: u32) -> Vec<LayerSpec<'static>> {
    let nhwc = |h: u64, w: u64, c: u64| vec![batch, h, w, c];
    let el = |s: &Shape| s.iter().product::<u64>();
    let conv = |name: String, h: u64, c_in: u64, c_out: u64, k: u64, stride: u64, kern: Vec<(&'static str, u32)>| {
        let ho = h / stride;
        let inp = nhwc(h, h, c_in);
        let out = nhwc(ho, ho, c_out);
        let flops = 2 * batch * ho * ho * c_out * c_in * k * k;
        let bytes = 2 * (el(&inp) + el(&out) + c_in * c_out * k * k);
        LayerSpec {
            name,
            op: "Conv",
            inputs: vec![inp],
            output: out,
            flops,
            bytes,
            kernels: kern,
            attrs: vec![
                ("kernel_shape", AttrValue::Ints(vec![k as i64, k as i64])),
                ("strides", AttrValue::Ints(vec![stride as i64, stride as i64])),
            ],
        }
    };
    let eltwise = |name: String, op: &'static str, s: Shape, kern: &'static str, inputs: u64| LayerSpec {
        name,
        op,
        inputs: (0..inputs).map(|_| s.clone()).collect(),
        output: s.clone(),
        flops: el(&s) * inputs.max(1),
        bytes: 2 * el(&s) * (inputs + 1),
        kernels: vec![(kern, 256)],
        attrs: vec![],
    };
    let mut v = vec![
        LayerSpec {
            name: "input.convert".into(),
            op: "Convert",
            inputs: vec![vec![batch, 3, 224, 224]],
            output: nhwc(224, 224, 3),
            flops: 0,
            bytes: (4 + 2) * batch * 3 * 224 * 224,
            kernels: vec![("nchw_f32_to_nhwc_f16", 256)],
            attrs: vec![],
        },
        conv("conv1".into(), 224, 3, 64, 7, 2, vec![("conv_igemm_nhwc_f16_tc_128x64_relu", 128)]),
        LayerSpec {
            name: "pool1".into(),
            op: "MaxPool",
            inputs: vec![nhwc(112, 112, 64)],
            output: nhwc(56, 56, 64),
            flops: batch * 56 * 56 * 64 * 9,
            bytes: 2 * batch * (112 * 112 + 56 * 56) * 64,
            kernels: vec![("maxpool_nhwc_f16_3x3s2", 256)],
            attrs: vec![("kernel_shape", AttrValue::Ints(vec![3, 3]))],
        },
    ];
    for b in 0..blocks {
        let p = format!("block{b}");
        v.push(conv(format!("{p}.conv1"), 56, 64, 64, 3, 1, vec![("conv_igemm_nhwc_f16_tc_128x64", 128)]));
        v.push(eltwise(format!("{p}.bn1"), "BatchNormalization", nhwc(56, 56, 64), "batchnorm_nhwc_f16", 1));
        v.push(eltwise(format!("{p}.relu1"), "Relu", nhwc(56, 56, 64), "relu_f16", 1));
        v.push(conv(
            format!("{p}.conv2"),
            56,
            64,
            64,
            3,
            1,
            vec![("conv_igemm_nhwc_f16_tc_64x64_splitk", 128), ("splitk_reduce_f16", 256)],
        ));
        v.push(eltwise(format!("{p}.add"), "Add", nhwc(56, 56, 64), "add_relu_f16", 2));
    }
    v.push(LayerSpec {
        name: "gap".into(),
        op: "GlobalAveragePool",
        inputs: vec![nhwc(56, 56, 64)],
        output: vec![batch, 64],
        flops: batch * 56 * 56 * 64,
        bytes: 2 * batch * (56 * 56 * 64 + 64),
        kernels: vec![("global_avgpool_nhwc_f16", 256)],
        attrs: vec![],
    });
    v.push(LayerSpec {
        name: "fc".into(),
        op: "Gemm",
        inputs: vec![vec![batch, 64]],
        output: vec![batch, 1000],
        flops: 2 * batch * 64 * 1000,
        bytes: 2 * (batch * 64 + 64 * 1000 + batch * 1000),
        kernels: vec![("gemm_f16_simt_64x64", 256)],
        attrs: vec![],
    });
    v.push(eltwise("softmax".into(), "Softmax", vec![batch, 1000], "softmax_f32", 1));
    v
}

/// Writes the synthetic trace to `out`; returns the ground truth.
pub fn write<W: Write>(out: W, spec: &Spec) -> io::Result<Truth> {
    let mut rng = Rng(spec.seed);
    let header = Header {
        tool_version: "cnnergy 0.1.0 (synthetic)".into(),
        command_line: vec!["cnnergy".into(), "profile".into(), spec.model.clone().into()],
        start_unix_ns: 1_767_225_600_000_000_000,
        host: "synthetic".into(),
        device: Device {
            name: "NVIDIA H100 80GB HBM3 (synthetic)".into(),
            uuid: "GPU-00000000-0000-0000-0000-000000000000".into(),
            cc_major: 9,
            cc_minor: 0,
            sm_count: 132,
            memory_bytes: 85_520_809_984,
            driver_version: "580.65.06".into(),
            cuda_version: "13.0".into(),
            power_limit_mw: spec.power_limit_w * 1000,
            sm_clock_mhz: spec.sm_clock_mhz,
            mem_clock_mhz: 2619,
        },
        workload: Workload {
            model: spec.model.clone().into(),
            batch_size: spec.batch,
            dtype: "f16".into(),
            kernel_variants: vec![
                KernelVariant { target: "Conv".into(), variant: spec.conv_variant.clone().into() },
                KernelVariant { target: "Gemm".into(), variant: "simt_64x64".into() },
            ],
            iterations: spec.warmup + spec.measure,
            phases: vec![
                Phase { name: "warmup".into(), iterations: spec.warmup },
                Phase { name: "measure".into(), iterations: spec.measure },
            ],
        },
        timebase: Timebase { clock: "cupti".into(), t0_ns: 1_000_000_000, nvml_offset_ns: -12_345, residual_ns: 800 },
    };
    let mut w = TraceWriter::new(out, &header)?;
    let specs = layer_specs(spec.batch as u64, spec.blocks);
    let mut sites = Vec::new();
    for (i, l) in specs.iter().enumerate() {
        let id = LayerId(i as u32);
        let mut kernels = Vec::new();
        let n = l.kernels.len();
        for (kname, block) in &l.kernels {
            let kernel = w.intern(kname)?;
            kernels.push(kernel);
            let out_el: u64 = l.output.iter().product();
            // Time from work at ~35% of an H100's f16 tensor rate and traffic at ~2 TB/s.
            let ideal = l.flops as f64 / 350e3 + l.bytes as f64 / 2.0e3;
            let nominal_ns = (ideal * rng.range(0.8, 1.25) / n as f64).max(3_000.0) * spec.time_scale;
            sites.push(Site {
                launch: KernelLaunch {
                    layer: id,
                    kernel,
                    grid: [(out_el / (*block as u64 * 8)).clamp(1, 65_535) as u32, 1, 1],
                    block: [*block, 1, 1],
                    registers_per_thread: if l.op == "Conv" { 168 } else { 32 },
                    static_smem_bytes: 0,
                    dynamic_smem_bytes: if l.op == "Conv" { 49_152 } else { 0 },
                    stream: 7,
                    graph_node: 0,
                },
                nominal_ns,
                dynamic_w: dynamic_w(l.op) * rng.range(0.9, 1.1),
            });
        }
        let layer = Layer {
            id,
            name: w.intern(&l.name)?,
            op: w.intern(l.op)?,
            inputs: l.inputs.clone(),
            outputs: vec![l.output.clone()],
            attrs: l
                .attrs
                .iter()
                .map(|(k, v)| Ok(Attr { key: w.intern(k)?, value: v.clone() }))
                .collect::<io::Result<_>>()?,
            flops: l.flops,
            bytes_moved: l.bytes,
            kernels,
        };
        w.layer(&layer)?;
    }
    let s_samples = w.intern("nvml.samples")?;
    let s_instant = w.intern("nvml.instant")?;
    let s_gpu = w.intern("gpu")?;
    let warmup = w.intern("warmup")?;
    let measure = w.intern("measure")?;

    let mut sim = Sim {
        w,
        t: 2_000_000_000,
        cum_j: 0.0,
        idle_w: spec.idle_w,
        power: spec.power,
        next_samples: 0,
        next_instant: 0,
        next_counter: 0,
        next_temp: 0,
        window_j: 0.0,
        s_samples,
        s_instant,
        s_gpu,
        rng: Rng(spec.seed ^ 0xA5A5),
        cur_w: spec.idle_w,
    };
    sim.next_samples = sim.t + 20_000_000;
    sim.next_instant = sim.t + 5_000_000;
    sim.next_counter = sim.t;
    sim.next_temp = sim.t;
    sim.w.clock_sync(&ClockSync { t_ns: sim.t, nvml_offset_ns: -12_345, residual_ns: 800 })?;
    sim.idle_until(sim.t + 250_000_000)?; // idle lead-in: the sensors see idle power first

    let n_layers = specs.len();
    let mut truth =
        Truth { layer_energy_mj: vec![0.0; n_layers], layer_time_ns: vec![0.0; n_layers], ..Truth::default() };
    let mut corr = 1u32;
    let mut window = (0u64, 0u64);
    let mut window_j = (0f64, 0f64);
    for (phase, count, first) in [(warmup, spec.warmup, 0), (measure, spec.measure, spec.warmup)] {
        sim.marker(MarkerKind::PhaseBegin { phase, index: 0 })?;
        let measuring = phase == measure;
        for it in first..first + count {
            sim.marker(MarkerKind::IterationBegin { iteration: it })?;
            sim.idle_until(sim.t + 8_000)?;
            for s in &sites {
                let gap = rng.range(1_500.0, 4_000.0) as u64;
                sim.idle_until(sim.t + gap)?;
                let dur = (s.nominal_ns * rng.range(0.97, 1.03)) as u64;
                let k = KernelEvent {
                    launch: s.launch,
                    iteration: it,
                    start_ns: sim.t,
                    duration_ns: dur,
                    correlation_id: corr,
                };
                corr = corr.wrapping_add(2);
                if measuring && window.0 == 0 {
                    window.0 = sim.t;
                    window_j.0 = sim.cum_j;
                }
                let j0 = sim.cum_j;
                sim.busy_until(sim.t + dur, spec.idle_w + s.dynamic_w)?;
                sim.w.kernel(&k)?;
                if measuring {
                    window.1 = sim.t;
                    window_j.1 = sim.cum_j;
                    let l = s.launch.layer.0 as usize;
                    truth.layer_energy_mj[l] += (sim.cum_j - j0) * 1e3;
                    truth.layer_time_ns[l] += dur as f64;
                    truth.kernels += 1;
                }
            }
            sim.idle_until(sim.t + 5_000)?;
            sim.marker(MarkerKind::IterationEnd { iteration: it })?;
            // The host prepares the next batch: an idle gap between inferences.
            sim.idle_until(sim.t + rng.range(20_000.0, 60_000.0) as u64)?;
        }
        sim.marker(MarkerKind::PhaseEnd { phase, index: 0 })?;
        if !measuring {
            sim.idle_until(sim.t + 1_000_000)?;
        }
    }
    sim.idle_until(sim.t + 30_000_000)?;
    sim.w.clock_sync(&ClockSync { t_ns: sim.t, nvml_offset_ns: -12_100, residual_ns: 750 })?;
    for e in &mut truth.layer_energy_mj {
        *e /= spec.measure.max(1) as f64;
    }
    for t in &mut truth.layer_time_ns {
        *t /= spec.measure.max(1) as f64;
    }
    truth.window_ns = window.1 - window.0;
    truth.total_energy_j = window_j.1 - window_j.0;
    sim.w.finish()?;
    Ok(truth)
}

/// The simulated GPU: true power, time, and the sensors polled as time advances.
struct Sim<W: Write> {
    w: TraceWriter<W>,
    t: u64,
    /// Energy since the start (J), exact.
    cum_j: f64,
    idle_w: f64,
    power: bool,
    next_samples: u64,
    next_instant: u64,
    next_counter: u64,
    next_temp: u64,
    window_j: f64,
    s_samples: StrId,
    s_instant: StrId,
    s_gpu: StrId,
    rng: Rng,
    cur_w: f64,
}

impl<W: Write> Sim<W> {
    fn marker(&mut self, kind: MarkerKind) -> io::Result<()> {
        self.w.marker(&Marker { t_ns: self.t, kind })
    }

    fn idle_until(&mut self, t: u64) -> io::Result<()> {
        self.busy_until(t, self.idle_w)
    }

    /// Advances to `t` at constant power `p`, emitting every sensor reading due on the way.
    fn busy_until(&mut self, t: u64, p: f64) -> io::Result<()> {
        self.cur_w = p;
        loop {
            let due = self.next_samples.min(self.next_instant).min(self.next_counter).min(self.next_temp);
            if due > t {
                break;
            }
            self.advance(due, p);
            self.poll(due)?;
        }
        self.advance(t, p);
        Ok(())
    }

    fn advance(&mut self, t: u64, p: f64) {
        if t > self.t {
            self.cum_j += p * (t - self.t) as f64 * 1e-9;
            self.t = t;
        }
    }

    fn poll(&mut self, t: u64) -> io::Result<()> {
        if t == self.next_samples {
            if self.power {
                // Mean over the last 20 ms: (E(t) - E(t - 20 ms)) / 20 ms, approximated by
                // the running difference kept in window_j.
                let mean_w = (self.cum_j - self.window_j) / 0.020;
                self.window_j = self.cum_j;
                let noisy = mean_w * (1.0 + self.rng.range(-0.01, 0.01));
                self.w.power(&PowerSample { t_ns: t, sensor: self.s_samples, power_mw: (noisy * 1e3) as u32 })?;
            }
            self.next_samples += 20_000_000;
        }
        if t == self.next_instant {
            if self.power {
                let noisy = self.cur_w * (1.0 + self.rng.range(-0.02, 0.02));
                self.w.power(&PowerSample { t_ns: t, sensor: self.s_instant, power_mw: (noisy * 1e3) as u32 })?;
            }
            self.next_instant += 5_000_000;
        }
        if t == self.next_counter {
            if self.power {
                // The counter started long before the trace (it counts since driver load).
                self.w.energy(&EnergySample { t_ns: t, energy_mj: 987_654_321 + (self.cum_j * 1e3) as u64 })?;
            }
            self.w.clocks(&ClockSample { t_ns: t, sm_mhz: 1755, mem_mhz: 2619 })?;
            self.next_counter += 100_000_000;
        }
        if t == self.next_temp {
            let c = 45 + (self.cum_j / 200.0).min(30.0) as i32;
            self.w.temperature(&TemperatureSample { t_ns: t, sensor: self.s_gpu, temp_c: c })?;
            self.next_temp += 1_000_000_000;
        }
        Ok(())
    }
}
