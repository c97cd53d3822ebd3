//! The CPU reference backend and seeded weights: hand-computed graphs, determinism,
//! memory freeing and error reporting.

use std::collections::HashMap;

use cnnergy_host::exec_cpu::{self, LayerRun};
use cnnergy_host::graph::{Builder, Graph, WeightRole};
use cnnergy_host::models;
use cnnergy_host::ops::{Act, Conv2d, Pool2d};
use cnnergy_host::weights::{seeded_input, Weights};

fn weights(pairs: &[(&str, &[f32])]) -> Weights {
    Weights::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect::<HashMap<_, _>>())
}

/// input [1, 2, 1, 2]: c0 = (1, −2), c1 = (3, 4).
/// conv 1×1 2→1, w = (1, 1), bias 0.5: (1+3+0.5, −2+4+0.5) = (4.5, 2.5); relu keeps it.
/// concat with the input's c0: channels (4.5, 2.5), (1, −2).
/// max pool 1×2: (4.5), (1). flatten → [1, 2]; dropout (identity).
/// linear 2→2, W = [[2, −1], [0, 1]], b = (0, 1): (9 − 1, 1 + 1) = (8, 2).
/// softmax: (e^8, e^2) / (e^8 + e^2) = (1 / (1 + e^−6), 1 / (1 + e^6)).
#[test]
fn small_graph_by_hand() {
    let (mut b, x) = Builder::new("tiny", [1, 2, 1, 2]);
    let c = b.conv(x, "conv", 1, Conv2d::new(0, 0, 0, 0, 0, 1, 1), true).unwrap();
    let r = b.act(c, "relu", Act::Relu).unwrap();
    let cat = b.concat(&[r, x], "cat").unwrap();
    let p = b.pool(cat, "pool", Pool2d::max(0, 0, 0, 0, 1, 2).with_stride(1, 2)).unwrap();
    let f = b.flatten(p, "flatten");
    let d = b.identity(f, "dropout");
    let l = b.linear(d, "fc", 2, true).unwrap();
    let s = b.softmax(l, "softmax").unwrap();
    let g = b.finish(s).unwrap();
    assert_eq!(g.tensors[cat].dims, [1, 3, 1, 2]);
    let w = weights(&[
        ("conv.weight", &[1.0, 1.0]),
        ("conv.bias", &[0.5]),
        ("fc.weight", &[2.0, -1.0, 0.0, 0.0, 1.0, 0.0]),
        ("fc.bias", &[0.0, 1.0]),
    ]);
    // The concat feeds 3 channels into the pool, so fc sees 3 features: the third (the
    // input's c1 max, 4) gets weight 0 in both rows.
    assert_eq!(g.nodes[6].weights[0].shape, [2, 3]);
    let input = [1.0, -2.0, 3.0, 4.0];
    let mut outputs = Vec::new();
    let y = exec_cpu::run_with(&g, &w, &input, |r: &LayerRun| outputs.push((r.node.name.clone(), r.output.to_vec())))
        .unwrap();
    let seen: Vec<(&str, &[f32])> = outputs.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    assert_eq!(seen[0], ("conv", &[4.5f32, 2.5][..]));
    assert_eq!(seen[2], ("cat", &[4.5f32, 2.5, 1.0, -2.0, 3.0, 4.0][..]));
    assert_eq!(seen[3], ("pool", &[4.5f32, 1.0, 4.0][..]));
    assert_eq!(seen[6], ("fc", &[8.0f32, 2.0][..]));
    let e6 = 6f64.exp();
    let want = [1.0 / (1.0 + 1.0 / e6), 1.0 / (1.0 + e6)];
    assert!(y.iter().zip(want).all(|(&a, b)| (a as f64 - b).abs() < 1e-7), "{y:?}");

    let (y2, times) = exec_cpu::run_timed(&g, &w, &input).unwrap();
    assert_eq!(y2, y);
    let names: Vec<&str> = times.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["conv", "relu", "cat", "pool", "flatten", "dropout", "fc", "softmax"]);
    assert_eq!(times[0].op, "Conv");
}

/// Tensors are freed after their last reader: in a chain only the newest activation
/// is held; a residual keeps the block input alive until the add.
#[test]
fn intermediates_are_freed_after_last_use() {
    let (mut b, x) = Builder::new("chain", [1, 4, 6, 6]);
    let spec = Conv2d::new(0, 0, 0, 0, 0, 3, 3).with_pad(1, 1);
    let c1 = b.conv(x, "c1", 8, spec, true).unwrap(); // 288 elements
    let r1 = b.act(c1, "r1", Act::Relu).unwrap();
    let c2 = b.conv(r1, "c2", 4, spec, true).unwrap(); // 144
    let a = b.add(c2, x, "add", Act::None).unwrap();
    let f = b.flatten(a, "flat");
    let g = b.finish(f).unwrap();
    let w = Weights::seeded(&g, 5);
    let mut live = Vec::new();
    exec_cpu::run_with(&g, &w, &seeded_input([1, 4, 6, 6], 5), |r| live.push(r.live_elements)).unwrap();
    // After c1: x (144, read by the add later) + c1 (288). After r1: x + r1. After c2:
    // x + c2. After add: the sum only. Flatten aliases it: still 144.
    assert_eq!(live, [432, 432, 288, 144, 144]);
}

#[test]
fn same_seed_same_bits_other_seed_differs() {
    let g = models::build_with_input("squeezenet1_0", 1, 32).unwrap().unwrap();
    let dims = g.tensors[g.input].dims;
    let run = |wseed, iseed| exec_cpu::run(&g, &Weights::seeded(&g, wseed), &seeded_input(dims, iseed)).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let a = run(42, 42);
    assert_eq!(a.len(), 1000);
    assert!(a.iter().all(|v| v.is_finite()) && a.iter().any(|&v| v != 0.0));
    assert_eq!(bits(&a), bits(&run(42, 42)));
    assert_ne!(bits(&a), bits(&run(43, 42)), "weights seed ignored");
    let b = run(42, 43);
    assert_ne!(bits(&a), bits(&b), "input seed ignored");
    // The logits really depend on the input: the signal survives 26 layers.
    let a64: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let moved = cnnergy_host::reference::rel_l2(&b, &a64);
    assert!(moved > 1e-3, "input moves the logits by only {moved:e}");
}

/// Values depend on (seed, name) only: not on node order, batch size or input size.
#[test]
fn seeded_weights_are_keyed_by_name() {
    let two = |first: &str, second: &str| {
        let (mut b, x) = Builder::new("two", [1, 3, 4, 4]);
        let spec = Conv2d::new(0, 0, 0, 0, 0, 3, 3);
        let y = b.conv(x, first, 8, spec, true).unwrap();
        let z = b.conv(x, second, 8, spec, true).unwrap();
        let s = b.add(y, z, "add", Act::None).unwrap();
        Weights::seeded(&b.finish(s).unwrap(), 9)
    };
    let (ab, ba) = (two("a", "b"), two("b", "a"));
    for name in ["a.weight", "a.bias", "b.weight", "b.bias"] {
        assert_eq!(ab.get(name), ba.get(name), "{name}");
    }
    assert_ne!(ab.get("a.weight"), ab.get("b.weight"));

    let g1 = models::build_with_input("mobilenet_v2", 1, 8).unwrap().unwrap();
    let g2 = models::build_with_input("mobilenet_v2", 3, 16).unwrap().unwrap();
    let (w1, w2) = (Weights::seeded(&g1, 1), Weights::seeded(&g2, 1));
    assert_eq!(w1.len(), g1.nodes.iter().map(|n| n.weights.len()).sum::<usize>());
    for name in w1.names() {
        assert_eq!(w1.get(name), w2.get(name), "{name}");
    }
    assert_ne!(Weights::seeded(&g1, 2).get("features.0.0.weight"), w1.get("features.0.0.weight"));
}

/// Init bounds (kernels ±√3/√fan_in, biases ±1/√fan_in) and the batch-norm ranges, on MobileNetV2 (grouped convs,
/// linear with bias, BN).
#[test]
fn seeded_weight_ranges() {
    let g = models::build_with_input("mobilenet_v2", 1, 8).unwrap().unwrap();
    let w = Weights::seeded(&g, 3);
    let mut roles = HashMap::new();
    for n in &g.nodes {
        let fan_in: usize = n.weight(WeightRole::Kernel).map_or(1, |k| k.shape[1..].iter().product());
        let bias = 1.0 / (fan_in as f32).sqrt();
        let kernel = 3f32.sqrt() * bias;
        for spec in &n.weights {
            let v = w.get(&spec.name).unwrap();
            assert_eq!(v.len(), spec.len());
            let (lo, hi) = match spec.role {
                WeightRole::Kernel => (-kernel, kernel),
                WeightRole::Bias => (-bias, bias),
                WeightRole::BnGamma | WeightRole::BnVar => (0.5, 1.5),
                _ => (-0.1, 0.1),
            };
            assert!(v.iter().all(|x| (lo..=hi).contains(x)), "{} outside [{lo}, {hi}]", spec.name);
            // Not degenerate: spans most of the range (every tensor here has >= 16 values).
            let (mn, mx) = v.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            assert!(mx - mn > 0.5 * (hi - lo), "{}: [{mn}, {mx}]", spec.name);
            *roles.entry(format!("{:?}", spec.role)).or_insert(0) += 1;
        }
    }
    // 52 convs + fc kernels, one fc bias, 52 BNs.
    assert_eq!(roles["Kernel"], 53);
    assert_eq!(roles["Bias"], 1);
    assert_eq!(roles["BnVar"], 52);
}

#[test]
fn errors_name_the_problem() {
    let g: Graph = models::build_with_input("mobilenet_v2", 1, 4).unwrap().unwrap();
    let w = Weights::seeded(&g, 1);
    let e = exec_cpu::run(&g, &w, &[0.0; 5]).unwrap_err().to_string();
    assert!(e.contains("input has 5 elements, expected 48"), "{e}");
    let mut partial = HashMap::new();
    for name in w.names().filter(|n| *n != "features.1.conv.1.weight") {
        partial.insert(name.to_string(), w.get(name).unwrap().to_vec());
    }
    let e = exec_cpu::run(&g, &Weights::from_map(partial), &[0.0; 48]).unwrap_err().to_string();
    assert!(e.contains("features.1.conv.1") && e.contains("is missing"), "{e}");
}
