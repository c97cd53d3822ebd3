//! Shared test fixtures: a realistic header and a small deterministic trace.
#![allow(dead_code)]

use std::borrow::Cow;

use cnnergy_traces::*;

pub fn header() -> Header<'static> {
    Header {
        tool_version: "cnnergy 0.1.0 (test)".into(),
        command_line: vec!["cnnergy".into(), "run".into(), "--model".into(), "resnet50".into()],
        start_unix_ns: 1_795_782_896_000_000_000,
        host: "testbox".into(),
        device: Device {
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: "GPU-00000000-1111-2222-3333-444444444444".into(),
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
            kernel_variants: vec![KernelVariant { target: "conv2d".into(), variant: "igemm_tc_128x64".into() }],
            iterations: 4,
            phases: vec![
                Phase { name: "warmup".into(), iterations: 1 },
                Phase { name: "measure".into(), iterations: 3 },
            ],
        },
        timebase: Timebase {
            clock: Cow::Borrowed("cupti"),
            t0_ns: 1_000_000,
            nvml_offset_ns: -12_345,
            residual_ns: 250,
        },
    }
}

/// A small finished trace with every record kind, several events frames and its
/// events as written. `frame_target` controls how many frames it has.
pub fn small_trace(frame_target: usize, finish: bool) -> (Vec<u8>, Vec<Event>) {
    let opts = WriterOptions { frame_target_bytes: frame_target };
    let mut w = TraceWriter::with_options(Vec::new(), &header(), opts).unwrap();
    let conv = w.intern("conv2d").unwrap();
    let power = w.intern("nvml.power_usage").unwrap();
    let gpu = w.intern("gpu").unwrap();
    let cupti = w.intern("cupti").unwrap();
    let measure = w.intern("measure").unwrap();
    let mut kernels = Vec::new();
    for l in 0..3u32 {
        let name = w.intern(&format!("layer{l}")).unwrap();
        let k = w.intern(&format!("conv_kernel_{l}")).unwrap();
        kernels.push((LayerId(l), k));
        w.layer(&Layer {
            id: LayerId(l),
            name,
            op: conv,
            inputs: vec![vec![32, 64, 56, 56]],
            outputs: vec![vec![32, 64, 56, 56]],
            attrs: vec![Attr { key: conv, value: AttrValue::Ints(vec![3, 3]) }],
            flops: 1 << 30,
            bytes_moved: 1 << 24,
            kernels: vec![k],
        })
        .unwrap();
    }
    let mut evs = Vec::new();
    let mut t = 1_000_000u64;
    let mut corr = 100u32;
    evs.push(Event::ClockSync(ClockSync { t_ns: t, nvml_offset_ns: -12_345, residual_ns: 250 }));
    evs.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::PhaseBegin { phase: measure, index: 0 } }));
    for it in 0..4u32 {
        evs.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::IterationBegin { iteration: it } }));
        for (i, &(layer, kernel)) in kernels.iter().enumerate() {
            let dur = 10_000 + 137 * i as u64 + 7 * it as u64;
            evs.push(Event::Kernel(KernelEvent {
                launch: KernelLaunch {
                    layer,
                    kernel,
                    grid: [128, 2, 1],
                    block: [256, 1, 1],
                    registers_per_thread: 96,
                    static_smem_bytes: 0,
                    dynamic_smem_bytes: 49_152,
                    stream: 7,
                    graph_node: if it == 3 { 42 + i as u64 } else { 0 },
                },
                iteration: it,
                start_ns: t,
                duration_ns: dur,
                correlation_id: corr,
            }));
            corr += 1;
            t += dur + 2_000;
        }
        evs.push(Event::Power(PowerSample { t_ns: t - 500, sensor: power, power_mw: 300_000 + it * 1000 }));
        evs.push(Event::Energy(EnergySample { t_ns: t - 400, energy_mj: 5_000_000 + it as u64 * 12 }));
        evs.push(Event::Clocks(ClockSample { t_ns: t - 300, sm_mhz: 1980, mem_mhz: 2619 }));
        evs.push(Event::Temperature(TemperatureSample { t_ns: t - 200, sensor: gpu, temp_c: 55 + it as i32 }));
        evs.push(Event::Throttle(ThrottleSample { t_ns: t - 100, reasons: 0x4 }));
        evs.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::IterationEnd { iteration: it } }));
    }
    evs.push(Event::Dropped(Dropped { t_ns: t, source: cupti, count: 3 }));
    evs.push(Event::Marker(Marker { t_ns: t, kind: MarkerKind::PhaseEnd { phase: measure, index: 0 } }));
    evs.push(Event::ClockSync(ClockSync { t_ns: t, nvml_offset_ns: -12_100, residual_ns: 300 }));
    for e in &evs {
        w.event(e).unwrap();
    }
    let bytes = if finish {
        w.finish().unwrap()
    } else {
        // What a process killed after its last flush leaves behind.
        w.flush().unwrap();
        w.get_ref().clone()
    };
    (bytes, evs)
}

/// Offsets at which frames start (and the file end), from an intact trace.
pub fn frame_bounds(data: &[u8]) -> Vec<u64> {
    let t = Trace::parse(data).unwrap();
    assert!(t.damage().is_none());
    let mut v: Vec<u64> = t.frames().iter().map(|f| f.offset.0).collect();
    v.push(t.intact_len().0);
    v
}

pub fn read_all(t: &Trace<'_>) -> (Vec<Event>, Option<TraceError>) {
    let mut out = Vec::new();
    for e in t.events() {
        match e {
            Ok(e) => out.push(e),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}
