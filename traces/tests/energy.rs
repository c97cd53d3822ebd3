//! Energy attribution on synthetic traces with a known ground truth (see
//! `cnnergy_traces::energy::synth`): the expected values come from the generator's
//! true power function, never from the analysis.

use cnnergy_traces::energy::synth::*;
use cnnergy_traces::energy::*;
use cnnergy_traces::Trace;

const MS: u64 = 1_000_000;

fn layer(name: &str, op: &str, kernels: &[(u64, f64)]) -> SynthLayer {
    SynthLayer { name: name.into(), op: op.into(), kernels: kernels.to_vec(), flops: 2_000_000_000, bytes: 50_000_000 }
}

/// A small CNN-like model: a conv with two kernels of different power, a short
/// activation, an fc, and a kernel 1000x shorter than a sample period.
fn model() -> Vec<SynthLayer> {
    vec![
        layer("conv1", "Conv", &[(3 * MS, 700.0), (500_000, 650.0)]),
        layer("relu1", "Relu", &[(400_000, 420.0)]),
        layer("fc", "Gemm", &[(1_500_000, 550.0)]),
        layer("tiny", "Add", &[(20_000, 300.0)]),
    ]
}

fn run(cfg: &SynthConfig, opts: &Options) -> (Attribution, Truth, Vec<u8>) {
    let (bytes, truth) = generate(cfg);
    let att = analyze(&Trace::parse(&bytes).unwrap(), opts).unwrap();
    (att, truth, bytes)
}

fn check_layers(att: &Attribution, truth: &Truth, max_rel_big: f64) {
    assert_eq!(att.layers.len(), truth.layer_mj.len());
    for l in &att.layers {
        let want = truth.layer_mj[&l.layer.0];
        let e = l.energy_mj;
        assert!(e.ci95.is_finite() && e.ci95 > 0.0, "layer {}: CI {e:?}", l.layer.0);
        assert!(e.contains(want), "layer {}: truth {want} mJ outside {} ± {}", l.layer.0, e.value, e.ci95);
        // Layers of ≥ 0.4 ms must also be accurate, not just covered by a wide CI.
        if truth.layer_ns[&l.layer.0] >= 400_000.0 {
            assert!((e.value / want - 1.0).abs() < max_rel_big, "layer {}: {} vs {want}", l.layer.0, e.value);
        }
        assert!((l.time_ns.value - truth.layer_ns[&l.layer.0]).abs() < 1.0);
        assert!((l.static_mj + l.dynamic_mj - e.value).abs() < 1e-9);
    }
}

#[test]
fn timeline_recovers_layers_kernels_idle_and_counter() {
    let cfg = SynthConfig { layers: model(), measure_iters: 3000, ..SynthConfig::default() };
    let (att, truth, _) = run(&cfg, &Options::default());
    assert_eq!(att.method, Method::Timeline);
    assert_eq!(att.sensor, "nvml.samples");
    assert_eq!(att.run.inferences, 3000);
    check_layers(&att, &truth, 0.02);

    // The 20 µs kernel (1/1000 of a sample period) gets energy, and an honest, wide CI.
    let tiny = att.layers.iter().find(|l| l.layer.0 == 3).unwrap();
    assert!(tiny.energy_mj.value > 0.0 && tiny.energy_mj.relative() > 0.2, "{tiny:?}");
    let conv = att.layers.iter().find(|l| l.layer.0 == 0).unwrap();
    assert!(conv.energy_mj.relative() < 0.01, "{conv:?}");

    // Kernels: the 3 ms conv kernels, one by one, within 10% (single executions are
    // noisier than the per-layer mean) and 1% on average.
    let mut sum = (0.0, 0.0);
    for (k, (idx, want)) in att.kernels.iter().zip(&truth.kernel_mj) {
        assert_eq!(k.event_index, *idx);
        if k.duration_ns == 3 * MS {
            assert!((k.energy_mj / want - 1.0).abs() < 0.10, "kernel {idx}: {} vs {want}", k.energy_mj);
            sum.0 += k.energy_mj;
            sum.1 += want;
        }
    }
    assert!((sum.0 / sum.1 - 1.0).abs() < 0.01);

    // Idle gaps are accounted separately, at the idle power.
    let r = &att.run;
    assert!((r.idle_power_w - cfg.idle_w).abs() < 3.0, "{r:?}");
    assert!((r.idle_energy_j / truth.idle_j - 1.0).abs() < 0.03, "{} vs {}", r.idle_energy_j, truth.idle_j);
    assert!((r.kernel_energy_j / truth.kernel_j - 1.0).abs() < 0.005, "{} vs {}", r.kernel_energy_j, truth.kernel_j);
    assert!((r.kernel_energy_j + r.idle_energy_j - r.total_energy_j.value).abs() < 1e-6);
    let true_total = truth.kernel_j + truth.idle_j;
    assert!(r.total_energy_j.contains(true_total), "{:?} vs {true_total}", r.total_energy_j);
    assert_eq!(r.window_ns, truth.window.1 - truth.window.0);

    // Counter cross-check: sensors agree, so the mismatch is tiny and the counter's
    // estimate of the window energy is close to the truth.
    let m = r.counter_mismatch.unwrap();
    assert!(m.abs() < 0.005, "mismatch {m}");
    assert!((r.counter_energy_j.unwrap() / true_total - 1.0).abs() < 0.01);
    assert!(att.warnings.is_empty(), "{:?}", att.warnings);
}

#[test]
fn counter_cross_check_reports_a_miscalibrated_sensor() {
    let samples = SamplesSensor { gain: 1.10, ..SamplesSensor::default() };
    let cfg = SynthConfig { layers: model(), measure_iters: 1000, samples: Some(samples), ..SynthConfig::default() };
    let (att, _, _) = run(&cfg, &Options::default());
    let m = att.run.counter_mismatch.unwrap();
    assert!((m - 0.10).abs() < 0.01, "mismatch {m}");
    assert!(att.warnings.iter().any(|w| w.contains("disagree")), "{:?}", att.warnings);
}

#[test]
fn sensor_delay_is_found_within_its_uncertainty() {
    let samples = SamplesSensor { delay_ns: 3 * MS, ..SamplesSensor::default() };
    let cfg = SynthConfig { layers: model(), measure_iters: 3000, samples: Some(samples), ..SynthConfig::default() };
    let (att, truth, _) = run(&cfg, &Options::default());
    assert!((att.sensor_delay_ns - 3 * MS as i64).abs() <= MS as i64, "delay {}", att.sensor_delay_ns);
    check_layers(&att, &truth, 0.03);
}

#[test]
fn instant_field_alone_still_gives_covered_estimates() {
    let cfg = SynthConfig {
        layers: model(),
        measure_iters: 4000,
        samples: None,
        instant: Some(PolledSensor::default()),
        ..SynthConfig::default()
    };
    let (att, truth, _) = run(&cfg, &Options::default());
    assert_eq!(att.sensor, "nvml.instant");
    check_layers(&att, &truth, 0.05);
}

#[test]
fn counter_alone_is_used_as_a_coarse_sensor() {
    let cfg = SynthConfig { layers: model(), measure_iters: 4000, samples: None, ..SynthConfig::default() };
    let (att, truth, _) = run(&cfg, &Options::default());
    assert_eq!(att.sensor, "nvml.energy");
    assert!(att.warnings.iter().any(|w| w.contains("energy counter")), "{:?}", att.warnings);
    let r = &att.run;
    assert!((r.total_energy_j.value / (truth.kernel_j + truth.idle_j) - 1.0).abs() < 0.01);
}

#[test]
fn no_power_data_is_a_clear_error() {
    let cfg =
        SynthConfig { layers: model(), measure_iters: 10, samples: None, counter: None, ..SynthConfig::default() };
    let (bytes, _) = generate(&cfg);
    let err = analyze(&Trace::parse(&bytes).unwrap(), &Options::default()).unwrap_err();
    assert!(matches!(err, EnergyError::NoPowerData), "{err}");
    assert!(err.to_string().contains("no power or energy samples"));

    let cfg = SynthConfig { layers: model(), measure_iters: 10, ..SynthConfig::default() };
    let (bytes, _) = generate(&cfg);
    let opts = Options { sensor: Some("nvml.bogus".into()), ..Options::default() };
    let err = analyze(&Trace::parse(&bytes).unwrap(), &opts).unwrap_err();
    assert!(err.to_string().contains("nvml.bogus") && err.to_string().contains("nvml.samples"), "{err}");
}

#[test]
fn figures_follow_from_the_attribution() {
    let cfg = SynthConfig { layers: model(), measure_iters: 1000, ..SynthConfig::default() };
    let (att, truth, bytes) = run(&cfg, &Options::default());
    let trace = Trace::parse(&bytes).unwrap();
    let rep = figures::build(&trace, &att);
    assert_eq!(rep.model, "synth");
    let names: Vec<(&str, LayerType)> = rep.layers.iter().map(|l| (l.name.as_str(), l.layer_type)).collect();
    assert_eq!(
        names,
        [
            ("conv1", LayerType::Conv),
            ("relu1", LayerType::Activation),
            ("fc", LayerType::Fc),
            ("tiny", LayerType::Other)
        ]
    );
    let conv = &rep.layers[0];
    // 2 GFLOP in 3.5 ms = 571.4 GFLOP/s; 2 GFLOP / 50 MB = 40 flop/byte.
    assert!((conv.gflop_per_s.unwrap() - 2.0 / 3.5e-3).abs() < 0.1);
    assert!((conv.arithmetic_intensity.unwrap() - 40.0).abs() < 1e-9);
    // energy ≈ 2.425 J per execution → ≈ 0.825 GFLOP/J
    let want_gflop_j = 2.0 / (truth.layer_mj[&0] / 1e3);
    assert!((conv.gflop_per_j.unwrap() / want_gflop_j - 1.0).abs() < 0.02);
    let shares: f64 = rep.layers.iter().map(|l| l.energy_share).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    let tshares: f64 = rep.types.iter().map(|t| t.time_share).sum();
    assert!((tshares - 1.0).abs() < 1e-9);
    assert_eq!(rep.types.len(), 4);
    let mf = &rep.model_figures;
    let true_j_per_inf = (truth.kernel_j + truth.idle_j) / 1000.0;
    assert!((mf.j_per_image.value / true_j_per_inf - 1.0).abs() < 0.01, "{mf:?}");
    let window_ms = (truth.window.1 - truth.window.0) as f64 * 1e-6;
    assert!((mf.latency_ms - window_ms / 1000.0).abs() < 1e-9);
    assert!((mf.images_per_s - 1000.0 / (window_ms / 1e3)).abs() < 1e-6);
    // Serialisable for the CLI's --json.
    let json = serde_json::to_string(&rep).unwrap();
    assert!(json.contains("\"layer_type\":\"conv\""));
}

#[test]
fn layer_types_from_onnx_ops() {
    let cases = [
        ("Conv", LayerType::Conv),
        ("Gemm", LayerType::Fc),
        ("MaxPool", LayerType::Pool),
        ("AveragePool", LayerType::Pool),
        ("GlobalAveragePool", LayerType::Pool),
        ("Relu", LayerType::Activation),
        ("Clip", LayerType::Activation),
        ("Sigmoid", LayerType::Activation),
        ("Tanh", LayerType::Activation),
        ("BatchNormalization", LayerType::Norm),
        ("LRN", LayerType::Norm),
        ("Add", LayerType::Other),
        ("Concat", LayerType::Other),
        ("Flatten", LayerType::Other),
        ("Softmax", LayerType::Other),
        ("Identity", LayerType::Other),
        ("Convert", LayerType::Other),
        ("conv2d", LayerType::Conv),
    ];
    for (op, ty) in cases {
        assert_eq!(LayerType::from_op(op), ty, "{op}");
    }
}
#[test]
fn timeline_cis_cover_the_truth_across_seeds() {
    // 5 seeds x 4 layers: a 95% CI may miss once in 20; more misses mean it is too narrow.
    let mut misses = Vec::new();
    for seed in 10..15 {
        let cfg = SynthConfig { layers: model(), measure_iters: 1500, seed, ..SynthConfig::default() };
        let (att, truth, _) = run(&cfg, &Options::default());
        for l in &att.layers {
            if !l.energy_mj.contains(truth.layer_mj[&l.layer.0]) {
                misses.push((seed, l.layer.0, l.energy_mj, truth.layer_mj[&l.layer.0]));
            }
        }
    }
    assert!(misses.len() <= 2, "{misses:?}");
}
