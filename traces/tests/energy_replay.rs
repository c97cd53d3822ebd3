//! Replay analysis and the replay planner on synthetic traces.

use cnnergy_traces::energy::replay::*;
use cnnergy_traces::energy::synth::*;
use cnnergy_traces::energy::*;
use cnnergy_traces::Trace;

const MS: u64 = 1_000_000;

fn layers() -> Vec<ReplayLayer> {
    vec![
        ReplayLayer { power_w: 720.0, exec_ns: 850_000 },
        ReplayLayer { power_w: 430.0, exec_ns: 12_000 },
        ReplayLayer { power_w: 560.0, exec_ns: 3_300 },
    ]
}

#[test]
fn replay_recovers_layer_energy_with_student_t_ci() {
    let cfg = ReplayConfig { layers: layers(), ..ReplayConfig::default() };
    let (bytes, truth) = generate_replay(&cfg);
    let trace = Trace::parse(&bytes).unwrap();
    let att = analyze(&trace, &Options::default()).unwrap();
    assert_eq!(att.method, Method::Replay);
    assert!(att.kernels.is_empty());
    assert_eq!(att.layers.len(), 3);
    let (wins, _) = measure_windows(&trace, &Options::default()).unwrap();
    let idle: Vec<f64> = wins.iter().filter(|w| w.layer.is_none()).map(|w| w.power_w).collect();
    assert_eq!(idle.len(), 3);
    for l in &att.layers {
        let want = truth[&l.layer.0];
        let e = l.energy_mj;
        assert!((e.value / want - 1.0).abs() < 0.01, "layer {}: {} vs {want}", l.layer.0, e.value);
        assert!(e.ci95 > 0.0 && e.contains(want), "layer {}: {want} outside {e:?}", l.layer.0);
        // Recompute the CI by hand from this layer's trials: mean ± t(0.975, 4)·s/√5.
        let xs: Vec<f64> =
            wins.iter().filter(|w| w.layer == Some(l.layer)).map(|w| w.power_w * w.span_per_exec_ns * 1e-6).collect();
        assert_eq!(xs.len(), 5);
        let mean = xs.iter().sum::<f64>() / 5.0;
        let s = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
        assert!((e.ci95 - 2.776_445_105 * s / 5f64.sqrt()).abs() < 1e-9 * e.value.max(1.0));
        let p = cfg.layers[l.layer.0 as usize];
        let t_exec = p.exec_ns as f64;
        assert!((l.static_mj - 90.0 * t_exec * 1e-6).abs() < 0.01 * l.static_mj, "{l:?}");
        assert!((l.avg_power_w - p.power_w).abs() < 0.01 * p.power_w);
        assert_eq!(l.executions, 5 * (cfg.busy_ns / p.exec_ns));
    }
    assert!((att.run.idle_power_w - 90.0).abs() < 1.0);
}

#[test]
fn replay_without_rise_skip_is_biased_low() {
    // The counter edges in the first ~120 ms see the power ramp: skipping them is what
    // makes the estimate right (guards the skip logic).
    let cfg = ReplayConfig { layers: layers(), rise_ns: 400 * MS, ..ReplayConfig::default() };
    let (bytes, truth) = generate_replay(&cfg);
    let trace = Trace::parse(&bytes).unwrap();
    let no_skip = analyze(&trace, &Options { replay_skip_ns: 0, ..Options::default() }).unwrap();
    let skip = analyze(&trace, &Options { replay_skip_ns: 450 * MS, ..Options::default() }).unwrap();
    let rel = |a: &Attribution| a.layers[0].energy_mj.value / truth[&0] - 1.0;
    assert!(rel(&no_skip) < -0.05, "{}", rel(&no_skip));
    assert!(rel(&skip).abs() < 0.01, "{}", rel(&skip));
}

#[test]
fn replay_time_from_kernel_events() {
    let cfg = ReplayConfig { layers: layers()[..1].to_vec(), kernel_events_for: Some(0), ..ReplayConfig::default() };
    let (bytes, truth) = generate_replay(&cfg);
    let att = analyze(&Trace::parse(&bytes).unwrap(), &Options::default()).unwrap();
    let l = &att.layers[0];
    assert!((l.time_ns.value - 850_000.0).abs() < 1.0);
    assert!((l.energy_mj.value / truth[&0] - 1.0).abs() < 0.01);
}

#[test]
fn replay_windows_too_short_are_skipped_with_a_warning() {
    let cfg = ReplayConfig { layers: layers(), busy_ns: 250 * MS, ..ReplayConfig::default() };
    let (bytes, _) = generate_replay(&cfg);
    let err = analyze(&Trace::parse(&bytes).unwrap(), &Options::default()).unwrap_err();
    assert!(err.to_string().contains("no usable busy window"), "{err}");
}

#[test]
fn planner_copies_one_iteration_and_fills_the_window() {
    let ls = vec![
        SynthLayer {
            name: "conv1".into(),
            op: "Conv".into(),
            kernels: vec![(2 * MS, 700.0), (300_000, 600.0)],
            flops: 1,
            bytes: 1,
        },
        SynthLayer { name: "relu1".into(), op: "Relu".into(), kernels: vec![(7_000, 400.0)], flops: 1, bytes: 1 },
    ];
    let cfg = SynthConfig { layers: ls, warmup_iters: 2, measure_iters: 20, ..SynthConfig::default() };
    let (bytes, _) = generate(&cfg);
    let trace = Trace::parse(&bytes).unwrap();
    let plan = plan_replay(&trace, &Options::default()).unwrap();
    assert_eq!(plan.source_iteration, 2, "first measure iteration");
    assert_eq!(plan.layers.len(), 2);
    let conv = &plan.layers[0];
    assert_eq!((conv.name.as_str(), conv.op.as_str()), ("conv1", "Conv"));
    let names: Vec<&str> = conv.kernels.iter().map(|k| k.kernel.as_str()).collect();
    assert_eq!(names, ["conv1_k0", "conv1_k1"]);
    assert_eq!(conv.kernels[1].grid, [2, 1, 1]);
    assert_eq!(conv.kernels[0].mean_ns, 2e6);
    assert_eq!(conv.mean_ns, 2.3e6);
    // (200 ms skip + 1 s window) / 2.3 ms = 521.7 → 522
    assert_eq!(conv.repetitions, 522);
    assert_eq!(plan.layers[1].repetitions, 171_429); // 1.2e9 / 7000 = 171428.6
    let json = serde_json::to_string(&plan).unwrap();
    let back: ReplayPlan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
}

#[test]
fn replay_consistency_compares_the_layer_sum_with_the_measure_phase() {
    let cfg = ReplayConfig { layers: layers(), ..ReplayConfig::default() };
    let (bytes, truth) = generate_replay(&cfg);
    let trace = Trace::parse(&bytes).unwrap();
    let mut att = analyze(&trace, &Options::default()).unwrap();
    let true_sum_j: f64 = truth.values().sum::<f64>() * 1e-3;

    // No measure phase in this trace: only the layer sum.
    let f = figures::build(&trace, &att).model_figures;
    let sum = f.replay_sum_j_per_inference.unwrap();
    assert!((sum / true_sum_j - 1.0).abs() < 0.01, "{sum} vs {true_sum_j}");
    assert!(f.measured_j_per_inference.is_none() && f.replay_consistency.is_none() && f.gap_j_per_inference.is_none());

    // The same layers with a measure phase of 250 inferences whose counter saw the true
    // layer energy plus 3 mJ of gaps per inference (the timeline put 3 mJ in idle gaps).
    let n = 250u64;
    let gap_j = 0.003;
    att.run.inferences = n;
    att.run.counter_energy_j = Some(n as f64 * (true_sum_j + gap_j));
    att.run.idle_energy_j = n as f64 * gap_j;
    let f = figures::build(&trace, &att).model_figures;
    let measured = f.measured_j_per_inference.unwrap();
    assert!((measured - (true_sum_j + gap_j)).abs() < 1e-12);
    assert!((f.gap_j_per_inference.unwrap() - gap_j).abs() < 1e-12);
    let want = true_sum_j / (true_sum_j + gap_j) - 1.0; // the gaps are missing from the replay sum
    let got = f.replay_consistency.unwrap();
    assert!((got - want).abs() < 0.01, "consistency {got} vs {want}");
    assert!(((sum + f.gap_j_per_inference.unwrap()) / measured - 1.0).abs() < 0.01);
}

#[test]
fn timeline_traces_have_no_replay_consistency() {
    let layers =
        vec![SynthLayer { name: "conv".into(), op: "Conv".into(), kernels: vec![(2 * MS, 600.0)], flops: 1, bytes: 1 }];
    let (bytes, _) = generate(&SynthConfig { layers, measure_iters: 300, ..SynthConfig::default() });
    let trace = Trace::parse(&bytes).unwrap();
    let att = analyze(&trace, &Options::default()).unwrap();
    assert_eq!(att.method, Method::Timeline);
    let f = figures::build(&trace, &att).model_figures;
    assert!(f.counter_energy_j.is_some());
    assert!(f.measured_j_per_inference.is_none() && f.replay_sum_j_per_inference.is_none());
    assert!(f.replay_consistency.is_none() && f.gap_j_per_inference.is_none());
}

#[test]
fn method_can_be_forced() {
    assert_eq!(parse_method("auto"), Ok(None));
    assert_eq!(parse_method("timeline"), Ok(Some(Method::Timeline)));
    assert_eq!(parse_method("replay"), Ok(Some(Method::Replay)));
    assert!(parse_method("both").unwrap_err().contains("timeline, replay or auto"));

    // A replay trace (with kernel events for layer 0): auto and replay pick replay,
    // timeline attributes its kernels from the energy counter instead. Long kernels: the
    // replayed kernels all belong to one iteration, so each is a timeline model column.
    let mut ls = layers();
    ls[0].exec_ns = 100 * MS;
    let cfg = ReplayConfig { layers: ls, kernel_events_for: Some(0), ..ReplayConfig::default() };
    let (bytes, _) = generate_replay(&cfg);
    let trace = Trace::parse(&bytes).unwrap();
    let with = |m| analyze(&trace, &Options { method: m, ..Options::default() });
    assert_eq!(with(None).unwrap().method, Method::Replay);
    assert_eq!(with(Some(Method::Replay)).unwrap().method, Method::Replay);
    let t = with(Some(Method::Timeline)).unwrap();
    assert_eq!(t.method, Method::Timeline);
    assert_eq!(t.layers.len(), 1, "only layer 0 has kernel events");
    assert!(!t.kernels.is_empty());

    // Replay forced on a trace without replay windows is an error, not a timeline.
    let layers =
        vec![SynthLayer { name: "c".into(), op: "Conv".into(), kernels: vec![(MS, 500.0)], flops: 1, bytes: 1 }];
    let (bytes, _) = generate(&SynthConfig { layers, measure_iters: 100, ..SynthConfig::default() });
    let trace = Trace::parse(&bytes).unwrap();
    let err = analyze(&trace, &Options { method: Some(Method::Replay), ..Options::default() }).unwrap_err();
    assert!(err.to_string().contains("not a replay trace"), "{err}");
}

#[test]
fn replay_notes_say_how_far_the_replay_ran_from_the_model_conditions() {
    // Layer 1 took 25 % longer in the model than alone; the die was 8 °C cooler in replay.
    let measure = MeasurePrefix {
        iterations: 400,
        time_scale: vec![1.0, 1.25, 1.0],
        temp_measure_c: 60,
        temp_replay_c: 52,
        sm_mhz: (1980, 1881),
        capped_in_replay: true,
    };
    let cfg = ReplayConfig { layers: layers(), trials: 3, measure: Some(measure), ..ReplayConfig::default() };
    let (bytes, _) = generate_replay(&cfg);
    let trace = Trace::parse(&bytes).unwrap();
    let att = analyze(&trace, &Options::default()).unwrap();
    let exec: Vec<f64> = layers().iter().map(|l| l.exec_ns as f64).collect();
    let (t_replay, t_model) = (exec.iter().sum::<f64>(), exec[0] + 1.25 * exec[1] + exec[2]);
    let want_total = format!("({:+.1} %)", (t_replay / t_model - 1.0) * 100.0);
    let time = att.warnings.iter().find(|w| w.starts_with("replay vs model")).expect("time note");
    assert!(time.contains(&want_total), "{time} lacks {want_total}");
    assert!(time.contains("1 layers off by more than 10 %: layer -20 %"), "{time}");
    let temp = att.warnings.iter().find(|w| w.starts_with("die temperature")).expect("temperature note");
    assert!(temp.contains("60.0 °C in the measure phase, 52.0 °C in the replay windows (-8.0 °C)"), "{temp}");
    // 1881 / 1980 - 1 = -5.0 %; every replay sample power-capped, none in the measure phase.
    let clk = att.warnings.iter().find(|w| w.starts_with("SM clock")).expect("clock note");
    assert!(clk.contains("1980 MHz in the measure phase, 1881 MHz in the replay windows (-5.0 %)"), "{clk}");
    assert!(clk.contains("power-capped samples 0 % vs 100 %"), "{clk}");
    let capped = att.warnings.iter().find(|w| w.starts_with("power-capped in isolated replay")).expect("cap note");
    assert!(capped.contains("layer (100 %)"), "{capped}");

    // Same conditions in both: the time note names no layer, the temperature note says +0.0.
    let measure = MeasurePrefix {
        iterations: 400,
        time_scale: vec![1.0, 1.0, 1.0],
        temp_measure_c: 55,
        temp_replay_c: 55,
        sm_mhz: (1980, 1980),
        capped_in_replay: false,
    };
    let cfg = ReplayConfig { layers: layers(), trials: 3, measure: Some(measure), ..ReplayConfig::default() };
    let (bytes, _) = generate_replay(&cfg);
    let trace = Trace::parse(&bytes).unwrap();
    let att = analyze(&trace, &Options::default()).unwrap();
    let time = att.warnings.iter().find(|w| w.starts_with("replay vs model")).expect("time note");
    assert!(time.contains("(+0.0 %)") && !time.contains("off by"), "{time}");
    assert!(att.warnings.iter().any(|w| w.contains("(+0.0 °C)")));
    assert!(att.warnings.iter().any(|w| w.contains("(+0.0 %); power-capped samples 0 % vs 0 %")));
    assert!(!att.warnings.iter().any(|w| w.starts_with("power-capped in isolated replay")));
}

#[test]
fn in_context_replay_subtracts_the_model_iterations() {
    // Each layer alternates with 3 model iterations of 400 µs at 610 W; the reference
    // windows give the model's share, and the layer's own energy must come out.
    let context = ContextModel { power_w: 610.0, iter_ns: 400_000, iters_per_block: 3 };
    let cfg = ReplayConfig { layers: layers(), context: Some(context), idle_windows: 4, ..ReplayConfig::default() };
    let (bytes, truth) = generate_replay(&cfg);
    let trace = Trace::parse(&bytes).unwrap();
    let att = analyze(&trace, &Options::default()).unwrap();
    assert_eq!(att.method, Method::Replay);
    for l in &att.layers {
        let want = truth[&l.layer.0];
        let got = l.energy_mj.value;
        // The model carries 1.2 ms of every ~3.2 ms block: its share is taken off exactly
        // up to the counter's noise, amplified by the ratio of block to layer energy.
        assert!((got / want - 1.0).abs() < 0.03, "layer {}: {got} mJ vs {want} mJ", l.layer.0);
        assert!(l.energy_mj.ci95 > 0.0 && l.energy_mj.ci95 < 0.1 * want, "layer {} CI {}", l.layer.0, l.energy_mj.ci95);
        let want_t = cfg.layers[l.layer.0 as usize].exec_ns as f64;
        assert!((l.time_ns.value / want_t - 1.0).abs() < 1e-6, "time {} vs {want_t}", l.time_ns.value);
        let want_p = cfg.layers[l.layer.0 as usize].power_w;
        assert!((l.avg_power_w / want_p - 1.0).abs() < 0.03, "power {} vs {want_p}", l.avg_power_w);
    }
    assert!(att.warnings.iter().any(|w| w.starts_with("in-context replay")), "{:?}", att.warnings);

    // Without the reference windows the subtraction is impossible: a clear error.
    let no_ref = ReplayConfig { idle_windows: 0, ..cfg.clone() };
    let (bytes, _) = generate_replay(&no_ref);
    let trace = Trace::parse(&bytes).unwrap();
    let err = analyze(&trace, &Options::default()).unwrap_err().to_string();
    assert!(err.contains("without a usable reference window"), "{err}");
}
