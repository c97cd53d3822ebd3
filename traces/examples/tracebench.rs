//! Size and speed of the trace format on a synthetic trace shaped like a real one:
//! ResNet-50 (110 kernels per inference over 72 layers), 10 000 inferences, a power
//! sample every 20 ms, energy + clocks every 100 ms, temperature every second,
//! iteration/phase markers, a dropped-records report and clock syncs. Durations,
//! gaps and sensor values come from a seeded RNG.
//!
//! `cargo run --release -p cnnergy-traces --example tracebench`
//!
//! Last line: `bytes_per_kernel=X write_Mrec_s=Y read_Mrec_s=Z json_ratio=R`
//! * bytes_per_kernel: whole file size / kernel records.
//! * write_Mrec_s: records encoded per second into memory (writer + finish).
//! * read_Mrec_s: records per second for parse (CRC of every frame) + decoding every
//!   field of every record from a memory-mapped file.
//! * json_ratio: size of the same events as Chrome trace-event JSON / our size.

use std::hint::black_box;
use std::io::{self, Write};
use std::time::Instant;

use cnnergy_traces::*;

const INFERENCES: u32 = 10_000;
const WARMUP: u32 = 100;
const RUNS: usize = 5;
const SEED: u64 = 0x5EED_CAFE_F00D_0001;

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
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-300);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

struct Site {
    launch: KernelLaunch,
    nominal_ns: f64,
}

struct Model {
    header: Header<'static>,
    strings: Vec<String>,
    layers: Vec<Layer>,
    sites: Vec<Site>,
}

/// ResNet-50 as cnnergy would run it: NHWC f16, implicit-GEMM convolutions (some
/// with a split-K reduction kernel), fused add+ReLU, pools, FC.
fn resnet50(rng: &mut Rng) -> Model {
    let mut strings: Vec<String> = Vec::new();
    let mut intern = |s: &str| -> StrId {
        if let Some(i) = strings.iter().position(|x| x == s) {
            return StrId(i as u32);
        }
        strings.push(s.to_string());
        StrId(strings.len() as u32 - 1)
    };
    let mut layers = Vec::new();
    let mut sites = Vec::new();
    let batch = 32u64;
    let mut add_layer = |intern: &mut dyn FnMut(&str) -> StrId,
                         name: &str,
                         op: &str,
                         inp: Vec<u64>,
                         out: Vec<u64>,
                         attrs: Vec<(&str, AttrValue)>,
                         flops: u64,
                         kernels: Vec<(&str, u32, u32, u32)>,
                         rng: &mut Rng| {
        let id = LayerId(layers.len() as u32);
        let kernel_ids: Vec<StrId> = kernels.iter().map(|k| intern(k.0)).collect();
        let elems = |s: &Vec<u64>| s.iter().product::<u64>();
        layers.push(Layer {
            id,
            name: intern(name),
            op: intern(op),
            inputs: vec![inp.clone()],
            outputs: vec![out.clone()],
            attrs: attrs.into_iter().map(|(k, value)| Attr { key: intern(k), value }).collect(),
            flops,
            bytes_moved: 2 * (elems(&inp) + elems(&out)),
            kernels: kernel_ids.clone(),
        });
        for ((_, block, regs, smem), kernel) in kernels.into_iter().zip(kernel_ids) {
            let out_elems = elems(&out);
            // Nominal time from work at ~40% of an H100's f16 tensor rate, floored by
            // launch granularity; log-normal per-site spread.
            let ideal_ns = flops as f64 / 400e3 + out_elems as f64 * 2.0 / 1.5e3;
            let nominal_ns = (ideal_ns * rng.range(0.7, 1.4)).clamp(3_000.0, 900_000.0);
            sites.push(Site {
                launch: KernelLaunch {
                    layer: id,
                    kernel,
                    grid: [(out_elems / (block as u64 * 8)).clamp(1, 65_535) as u32, 1, 1],
                    block: [block, 1, 1],
                    registers_per_thread: regs,
                    static_smem_bytes: if smem > 0 { 0 } else { 1024 },
                    dynamic_smem_bytes: smem,
                    stream: 13,
                    graph_node: 0,
                },
                nominal_ns,
            });
        }
    };

    let (mut h, mut w, mut c) = (224u64, 224u64, 3u64);
    let nhwc = |h, w, c| vec![batch, h, w, c];
    add_layer(
        &mut intern,
        "input",
        "layout_convert",
        vec![batch, 3, 224, 224],
        nhwc(224, 224, 3),
        vec![],
        0,
        vec![("nchw_f32_to_nhwc_f16", 256, 32, 0)],
        rng,
    );
    add_layer(
        &mut intern,
        "conv1",
        "conv2d",
        nhwc(h, w, c),
        nhwc(112, 112, 64),
        vec![("kernel", AttrValue::Ints(vec![7, 7])), ("stride", AttrValue::Ints(vec![2, 2]))],
        2 * batch * 112 * 112 * 64 * 7 * 7 * 3,
        vec![("conv2d_igemm_nhwc_f16_tc_128x64x32_s3", 128, 168, 65_536)],
        rng,
    );
    (h, w, c) = (56, 56, 64);
    add_layer(
        &mut intern,
        "maxpool",
        "maxpool2d",
        nhwc(112, 112, 64),
        nhwc(h, w, c),
        vec![("kernel", AttrValue::Ints(vec![3, 3]))],
        batch * h * w * c * 9,
        vec![("maxpool2d_3x3s2_nhwc_f16", 256, 40, 0)],
        rng,
    );
    let stages = [(3, 64u64), (4, 128), (6, 256), (3, 512)];
    let mut splitk_budget = 36;
    for (si, &(blocks, width)) in stages.iter().enumerate() {
        for b in 0..blocks {
            let stride = if b == 0 && si > 0 { 2 } else { 1 };
            let (oh, ow) = (h / stride, w / stride);
            let out_c = width * 4;
            let convs = [(1u64, c, width, h, w, 1u64), (3, width, width, oh, ow, stride), (1, width, out_c, oh, ow, 1)];
            for (ci, &(k, ic, oc, hh, ww, s)) in convs.iter().enumerate() {
                let name = format!("layer{}.{b}.conv{}", si + 1, ci + 1);
                let variant = match (k, oc) {
                    (3, _) => "conv2d_igemm_nhwc_f16_tc_128x128x32_s4",
                    (_, o) if o >= 1024 => "conv2d_igemm_nhwc_f16_tc_256x128x32_s3",
                    _ => "conv2d_igemm_nhwc_f16_tc_128x64x32_s3",
                };
                let mut ks = vec![(variant, 256u32, 232u32, 98_304u32)];
                if splitk_budget > 0 && (si >= 2 || ci >= 1) {
                    splitk_budget -= 1;
                    ks.push(("splitk_reduce_f32_to_f16_relu", 256, 32, 0));
                }
                let (ih, iw) = if ci == 1 { (h, w) } else { (hh, ww) };
                add_layer(
                    &mut intern,
                    &name,
                    "conv2d",
                    nhwc(ih, iw, ic),
                    nhwc(hh, ww, oc),
                    vec![
                        ("kernel", AttrValue::Ints(vec![k as i64, k as i64])),
                        ("stride", AttrValue::Ints(vec![s as i64, s as i64])),
                        ("relu", AttrValue::Int(i64::from(ci < 2))),
                    ],
                    2 * batch * hh * ww * oc * k * k * ic,
                    ks,
                    rng,
                );
            }
            if b == 0 {
                add_layer(
                    &mut intern,
                    &format!("layer{}.0.downsample", si + 1),
                    "conv2d",
                    nhwc(h, w, c),
                    nhwc(oh, ow, out_c),
                    vec![("stride", AttrValue::Ints(vec![stride as i64; 2]))],
                    2 * batch * oh * ow * out_c * c,
                    vec![("conv2d_igemm_nhwc_f16_tc_128x64x32_s3", 256, 200, 65_536)],
                    rng,
                );
            }
            add_layer(
                &mut intern,
                &format!("layer{}.{b}.add_relu", si + 1),
                "add_relu",
                nhwc(oh, ow, out_c),
                nhwc(oh, ow, out_c),
                vec![],
                batch * oh * ow * out_c * 2,
                vec![("add_relu_nhwc_f16_vec8", 256, 24, 0)],
                rng,
            );
            (h, w, c) = (oh, ow, out_c);
        }
    }
    add_layer(
        &mut intern,
        "avgpool",
        "global_avgpool",
        nhwc(7, 7, 2048),
        vec![batch, 2048],
        vec![],
        batch * 7 * 7 * 2048,
        vec![("global_avgpool_nhwc_f16", 256, 32, 4096)],
        rng,
    );
    add_layer(
        &mut intern,
        "fc",
        "linear",
        vec![batch, 2048],
        vec![batch, 1000],
        vec![("bias", AttrValue::Int(1))],
        2 * batch * 2048 * 1000,
        vec![("gemm_f16_tc_64x64x32_s4", 128, 128, 32_768), ("bias_add_softmax_f16", 128, 40, 0)],
        rng,
    );
    let header = Header {
        tool_version: "cnnergy 0.1.0 (tracebench)".into(),
        command_line: ["cnnergy", "run", "--model", "resnet50", "--batch", "32", "--iterations", "10000"]
            .map(Into::into)
            .to_vec(),
        start_unix_ns: 1_795_782_896_000_000_000,
        host: "bench-host".into(),
        device: Device {
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: "GPU-5f3c2a1e-0b7d-4c9e-8a61-2d4f0e9b7c13".into(),
            cc_major: 9,
            cc_minor: 0,
            sm_count: 132,
            memory_bytes: 85_520_809_984,
            driver_version: "580.65.06".into(),
            cuda_version: "13.0".into(),
            power_limit_mw: 700_000,
            sm_clock_mhz: 1980,
            mem_clock_mhz: 2619,
        },
        workload: Workload {
            model: "resnet50".into(),
            batch_size: 32,
            dtype: "f16".into(),
            kernel_variants: vec![KernelVariant { target: "conv2d".into(), variant: "igemm_tc".into() }],
            iterations: INFERENCES,
            phases: vec![
                Phase { name: "warmup".into(), iterations: WARMUP },
                Phase { name: "measure".into(), iterations: INFERENCES - WARMUP },
            ],
        },
        timebase: Timebase {
            clock: "cupti".into(),
            t0_ns: 1_700_000_000_000,
            nvml_offset_ns: -3_214_557,
            residual_ns: 840,
        },
    };
    Model { header, strings, layers, sites }
}

fn generate(model: &Model, rng: &mut Rng) -> Vec<Event> {
    let sid = |s: &str| StrId(model.strings.iter().position(|x| x == s).unwrap() as u32);
    let (power_sensor, temp_sensor, cupti) = (sid("nvml.power_usage"), sid("gpu"), sid("cupti"));
    let (warmup, measure) = (sid("warmup"), sid("measure"));
    let mut ev = Vec::with_capacity(INFERENCES as usize * 115 + 10_000);
    let mut t = model.header.timebase.t0_ns + 5_000_000;
    let mut corr = 1_000u32;
    let (mut next_power, mut next_100ms, mut next_temp) = (t, t, t);
    let (mut energy_mj, mut last_energy_t) = (48_123_456_789u64, t);
    let mut power_w = 320.0f64;
    let mut temp = 44.0f64;
    let mut throttled = false;
    ev.push(Event::ClockSync(ClockSync { t_ns: t, nvml_offset_ns: -3_214_557, residual_ns: 840 }));
    let phase = |t_ns, phase, begin| {
        Event::Marker(Marker {
            t_ns,
            kind: if begin {
                MarkerKind::PhaseBegin { phase, index: 0 }
            } else {
                MarkerKind::PhaseEnd { phase, index: 0 }
            },
        })
    };
    ev.push(phase(t, warmup, true));
    for it in 0..INFERENCES {
        if it == WARMUP {
            ev.push(phase(t, warmup, false));
            ev.push(phase(t, measure, true));
        }
        ev.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::IterationBegin { iteration: it } }));
        t += rng.range(8_000.0, 15_000.0) as u64; // launch latency of the first kernel
        for s in &model.sites {
            // NVML samples land between kernels, in time order.
            while next_power <= t {
                power_w = (power_w + rng.normal() * 6.0).clamp(250.0, 690.0);
                ev.push(Event::Power(PowerSample {
                    t_ns: next_power,
                    sensor: power_sensor,
                    power_mw: (power_w * 1000.0) as u32,
                }));
                next_power += 20_000_000 + rng.range(-150_000.0, 150_000.0) as u64;
            }
            while next_100ms <= t {
                energy_mj += ((next_100ms - last_energy_t) as f64 * power_w / 1e6) as u64;
                last_energy_t = next_100ms;
                ev.push(Event::Energy(EnergySample { t_ns: next_100ms, energy_mj }));
                let sm = if throttled { 1755 } else { 1980 } - (rng.f64() * 3.0) as u32 * 15;
                ev.push(Event::Clocks(ClockSample { t_ns: next_100ms + 40_000, sm_mhz: sm, mem_mhz: 2619 }));
                next_100ms += 100_000_000 + rng.range(-200_000.0, 200_000.0) as u64;
            }
            while next_temp <= t {
                temp += (68.0 - temp) * 0.05 + rng.normal() * 0.3;
                ev.push(Event::Temperature(TemperatureSample {
                    t_ns: next_temp,
                    sensor: temp_sensor,
                    temp_c: temp.round() as i32,
                }));
                if rng.f64() < 0.15 {
                    throttled = !throttled;
                    ev.push(Event::Throttle(ThrottleSample {
                        t_ns: next_temp + 10_000,
                        reasons: if throttled { throttle::SW_POWER_CAP } else { 0 },
                    }));
                }
                next_temp += 1_000_000_000;
            }
            let jitter = 1.0 + 0.02 * rng.normal() + if rng.f64() < 0.01 { 0.25 } else { 0.0 };
            let dur = (s.nominal_ns * jitter.max(0.5)) as u64;
            ev.push(Event::Kernel(KernelEvent {
                launch: s.launch,
                iteration: it,
                start_ns: t,
                duration_ns: dur,
                correlation_id: corr,
            }));
            corr += if rng.f64() < 0.05 { 2 } else { 1 };
            t += dur + rng.range(1_200.0, 3_500.0) as u64;
        }
        ev.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::IterationEnd { iteration: it } }));
        if it == INFERENCES / 2 {
            ev.push(Event::Dropped(Dropped { t_ns: t, source: cupti, count: 37 }));
        }
        t += rng.range(20_000.0, 60_000.0) as u64; // host sync + next launch
    }
    ev.push(phase(t, measure, false));
    ev.push(Event::ClockSync(ClockSync { t_ns: t, nvml_offset_ns: -3_209_912, residual_ns: 910 }));
    ev
}

fn write_trace(model: &Model, events: &[Event]) -> io::Result<Vec<u8>> {
    let mut w = TraceWriter::new(Vec::with_capacity(16 << 20), &model.header)?;
    for s in &model.strings {
        w.intern(s)?;
    }
    for l in &model.layers {
        w.layer(l)?;
    }
    for e in events {
        w.event(e)?;
    }
    w.finish()
}

/// Decodes every record and folds every field, so nothing is optimised away.
fn read_trace(data: &[u8]) -> (u64, u64) {
    let trace = Trace::parse(data).expect("bench trace parses");
    let (mut n, mut acc) = (0u64, 0u64);
    for ev in trace.events() {
        n += 1;
        let x = match ev.expect("bench trace decodes") {
            Event::Kernel(k) => {
                let l = &k.launch;
                k.start_ns
                    ^ k.duration_ns.rotate_left(7)
                    ^ (k.iteration as u64) << 32
                    ^ k.correlation_id as u64
                    ^ (l.layer.0 ^ l.kernel.0) as u64
                    ^ (l.grid[0] ^ l.grid[1] ^ l.grid[2]) as u64
                    ^ (l.block[0] ^ l.block[1] ^ l.block[2]) as u64
                    ^ (l.registers_per_thread ^ l.static_smem_bytes ^ l.dynamic_smem_bytes) as u64
                    ^ l.stream as u64
                    ^ l.graph_node
            }
            Event::Power(p) => p.t_ns ^ p.power_mw as u64 ^ p.sensor.0 as u64,
            Event::Energy(e) => e.t_ns ^ e.energy_mj,
            Event::Clocks(c) => c.t_ns ^ c.sm_mhz as u64 ^ c.mem_mhz as u64,
            Event::Temperature(t) => t.t_ns ^ t.temp_c as u64 ^ t.sensor.0 as u64,
            Event::Throttle(t) => t.t_ns ^ t.reasons,
            Event::Marker(m) => {
                m.t_ns
                    ^ match m.kind {
                        MarkerKind::IterationBegin { iteration } => iteration as u64,
                        MarkerKind::IterationEnd { iteration } => !(iteration as u64),
                        MarkerKind::PhaseBegin { phase, index } | MarkerKind::PhaseEnd { phase, index } => {
                            (phase.0 ^ index) as u64
                        }
                        MarkerKind::Label { label } => label.0 as u64,
                        MarkerKind::Other { code, a, b } => code as u64 ^ a ^ b,
                    }
            }
            Event::Dropped(d) => d.t_ns ^ d.count ^ d.source.0 as u64,
            Event::ClockSync(c) => c.t_ns ^ c.nvml_offset_ns as u64 ^ c.residual_ns,
        };
        acc = acc.wrapping_mul(31).wrapping_add(x);
    }
    (n, acc)
}

/// Bytes the same events take as Chrome trace-event JSON (what chrome://tracing and
/// Perfetto load): "X" complete events for kernels, "C" counters for samples, "i"
/// instants for markers, drops and clock syncs. Timestamps in µs with ns decimals.
fn chrome_json_size(model: &Model, events: &[Event]) -> io::Result<u64> {
    struct Count(u64);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let esc: Vec<String> = model.strings.iter().map(|s| serde_json::to_string(s).expect("string to JSON")).collect();
    let s = |id: StrId| esc[id.0 as usize].as_str();
    let layer_name: std::collections::HashMap<LayerId, &str> = model.layers.iter().map(|l| (l.id, s(l.name))).collect();
    let us = |ns: u64| format!("{}.{:03}", ns / 1000, ns % 1000);
    let mut out = io::BufWriter::new(Count(0));
    writeln!(out, "{{\"traceEvents\":[")?;
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            writeln!(out, ",")?;
        }
        match e {
            Event::Kernel(k) => {
                let l = &k.launch;
                write!(
                    out,
                    "{{\"name\":{},\"cat\":\"kernel\",\"ph\":\"X\",\"ts\":{},\"dur\":{},\"pid\":0,\"tid\":{},\
                     \"args\":{{\"layer\":{},\"iteration\":{},\"correlation\":{},\"grid\":[{},{},{}],\
                     \"block\":[{},{},{}],\"registers\":{},\"static_smem\":{},\"dynamic_smem\":{}}}}}",
                    s(l.kernel),
                    us(k.start_ns),
                    us(k.duration_ns),
                    l.stream,
                    layer_name.get(&l.layer).copied().unwrap_or("null"),
                    k.iteration,
                    k.correlation_id,
                    l.grid[0],
                    l.grid[1],
                    l.grid[2],
                    l.block[0],
                    l.block[1],
                    l.block[2],
                    l.registers_per_thread,
                    l.static_smem_bytes,
                    l.dynamic_smem_bytes
                )?;
            }
            Event::Power(p) => write!(
                out,
                "{{\"name\":\"power\",\"ph\":\"C\",\"ts\":{},\"pid\":0,\"args\":{{{}:{}}}}}",
                us(p.t_ns),
                s(p.sensor),
                p.power_mw
            )?,
            Event::Energy(e) => write!(
                out,
                "{{\"name\":\"energy\",\"ph\":\"C\",\"ts\":{},\"pid\":0,\"args\":{{\"energy_mj\":{}}}}}",
                us(e.t_ns),
                e.energy_mj
            )?,
            Event::Clocks(c) => write!(
                out,
                "{{\"name\":\"clocks\",\"ph\":\"C\",\"ts\":{},\"pid\":0,\"args\":{{\"sm_mhz\":{},\"mem_mhz\":{}}}}}",
                us(c.t_ns),
                c.sm_mhz,
                c.mem_mhz
            )?,
            Event::Temperature(t) => write!(
                out,
                "{{\"name\":\"temperature\",\"ph\":\"C\",\"ts\":{},\"pid\":0,\"args\":{{{}:{}}}}}",
                us(t.t_ns),
                s(t.sensor),
                t.temp_c
            )?,
            Event::Throttle(t) => write!(
                out,
                "{{\"name\":\"throttle\",\"ph\":\"C\",\"ts\":{},\"pid\":0,\"args\":{{\"reasons\":{}}}}}",
                us(t.t_ns),
                t.reasons
            )?,
            Event::Marker(m) => {
                let name = match m.kind {
                    MarkerKind::IterationBegin { iteration } => format!("\"iteration {iteration} begin\""),
                    MarkerKind::IterationEnd { iteration } => format!("\"iteration {iteration} end\""),
                    MarkerKind::PhaseBegin { phase, .. } => format!("\"phase begin {}\"", s(phase).trim_matches('"')),
                    MarkerKind::PhaseEnd { phase, .. } => format!("\"phase end {}\"", s(phase).trim_matches('"')),
                    _ => "\"marker\"".to_string(),
                };
                write!(
                    out,
                    "{{\"name\":{name},\"ph\":\"i\",\"s\":\"p\",\"ts\":{},\"pid\":0,\"tid\":0}}",
                    us(m.t_ns)
                )?
            }
            Event::Dropped(d) => write!(
                out,
                "{{\"name\":\"dropped\",\"ph\":\"i\",\"s\":\"g\",\"ts\":{},\"pid\":0,\"tid\":0,\"args\":{{\"source\":{},\"count\":{}}}}}",
                us(d.t_ns),
                s(d.source),
                d.count
            )?,
            Event::ClockSync(c) => write!(
                out,
                "{{\"name\":\"clock_sync\",\"ph\":\"i\",\"s\":\"g\",\"ts\":{},\"pid\":0,\"tid\":0,\"args\":{{\"nvml_offset_ns\":{},\"residual_ns\":{}}}}}",
                us(c.t_ns),
                c.nvml_offset_ns,
                c.residual_ns
            )?,
        }
    }
    write!(out, "\n]}}\n")?;
    out.flush()?;
    let count = out.into_inner().map_err(|e| e.into_error())?;
    Ok(count.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> io::Result<()> {
    let mut rng = Rng(SEED);
    let mut model = resnet50(&mut rng);
    for s in ["nvml.power_usage", "gpu", "cupti", "warmup", "measure"] {
        model.strings.push(s.to_string());
    }
    let events = generate(&model, &mut rng);
    let n = events.len() as u64;
    let kernels = events.iter().filter(|e| matches!(e, Event::Kernel(_))).count() as u64;
    println!(
        "synthetic ResNet-50: {} layers, {} kernels/inference, {INFERENCES} inferences, {n} records ({kernels} kernels)",
        model.layers.len(),
        model.sites.len()
    );

    let mut write_s = Vec::new();
    let mut bytes = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        bytes = write_trace(&model, black_box(&events))?;
        write_s.push(t0.elapsed().as_secs_f64());
    }
    // TRACEBENCH_OUT=path keeps the trace (e.g. for `cnnergy info` or format analysis).
    let keep = std::env::var_os("TRACEBENCH_OUT").map(std::path::PathBuf::from);
    let path =
        keep.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("tracebench-{}.cnt", std::process::id())));
    std::fs::write(&path, &bytes)?;
    let data = TraceData::open(&path).map_err(io::Error::other)?;

    // Correctness first: the mapped file decodes to exactly what was written.
    {
        let trace = Trace::parse(&data).map_err(io::Error::other)?;
        assert!(trace.is_complete());
        let back: Vec<Event> = trace.events().map(Result::unwrap).collect();
        assert!(back == events, "round trip mismatch");
    }
    if let Some(loops) = std::env::var("TRACEBENCH_READ_LOOPS").ok().and_then(|v| v.parse::<u32>().ok()) {
        // Profiling aid (`perf record`): only the read path, many times.
        let t0 = Instant::now();
        for _ in 0..loops {
            black_box(read_trace(black_box(&data)));
        }
        println!("read x{loops}: {:?}", t0.elapsed());
        return Ok(());
    }
    let mut read_s = Vec::new();
    let mut sink = 0u64;
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let (m, acc) = read_trace(black_box(&data));
        read_s.push(t0.elapsed().as_secs_f64());
        assert_eq!(m, n);
        sink ^= acc;
    }
    black_box(sink);
    let json = chrome_json_size(&model, &events)?;
    drop(data);
    if keep.is_none() {
        let _ = std::fs::remove_file(&path);
    }

    let (ws, rs) = (median(write_s), median(read_s));
    println!(
        "trace {} bytes, Chrome JSON {} bytes; write {:.1} ms, read {:.1} ms (median of {RUNS})",
        bytes.len(),
        json,
        ws * 1e3,
        rs * 1e3
    );
    println!(
        "bytes_per_kernel={:.2} write_Mrec_s={:.1} read_Mrec_s={:.1} json_ratio={:.1}",
        bytes.len() as f64 / kernels as f64,
        n as f64 / ws / 1e6,
        n as f64 / rs / 1e6,
        json as f64 / bytes.len() as f64
    );
    Ok(())
}
