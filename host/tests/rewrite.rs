//! Graph rewrites: fused graphs compute the same logits as unfused ones on the CPU
//! backend, BN folding is the textbook formula, and fused launch counts follow from the
//! architectures.

use cnnergy_host::exec_cpu;
use cnnergy_host::graph::{Builder, Graph, Op, WeightRole};
use cnnergy_host::models;
use cnnergy_host::ops::{Act, BatchNorm, Conv2d, Epilogue, Layout};
use cnnergy_host::reference::{self, rel_l2, EpilogueArgs};
use cnnergy_host::rewrite::{rewrite, rewrite_graph, RewriteOptions};
use cnnergy_host::weights::{seeded_input, Weights};

const fn opts(fold_bn: bool, fuse_act: bool, fuse_residual: bool) -> RewriteOptions {
    RewriteOptions { fold_bn, fuse_act, fuse_residual }
}

/// Every option set checked against the unfused graph: each rewrite alone, the
/// scale/shift path (BN absorbed without folding), and all together.
const OPTION_SETS: [RewriteOptions; 5] = [
    opts(true, false, false),
    opts(false, true, false),
    opts(false, false, true),
    opts(false, true, true),
    opts(true, true, true),
];

fn count(g: &Graph, f: impl Fn(&Op) -> bool) -> usize {
    g.nodes.iter().filter(|n| f(&n.op)).count()
}

/// Runs `model` at `hw`×`hw`, batch 1, unfused and under every option set (skipping
/// option sets that give an already-run graph), and compares the logits.
fn fused_matches_unfused(model: &str, hw: usize) {
    let g = models::build_with_input(model, 1, hw).unwrap().unwrap();
    let w = Weights::seeded(&g, 7);
    let x = seeded_input(g.tensors[g.input].dims, 7);
    let base = exec_cpu::run(&g, &w, &x).unwrap();
    let base64: Vec<f64> = base.iter().map(|&v| v as f64).collect();
    assert!(base.iter().all(|v| v.is_finite()));
    assert!(base.iter().any(|&v| v != 0.0), "{model}: all-zero logits test nothing");

    let (none, _) = rewrite(&g, &w, RewriteOptions::none()).unwrap();
    assert_eq!(none, g, "{model}: no-op rewrite changed the graph");

    let mut seen: Vec<Graph> = vec![g.clone()];
    for o in OPTION_SETS {
        let (g2, w2) = rewrite(&g, &w, o).unwrap();
        g2.validate().unwrap();
        // Structure alone gives the same graph.
        assert_eq!(rewrite_graph(&g, o).unwrap(), g2, "{model} {o:?}");
        if o.absorbs_bn() {
            assert_eq!(count(&g2, |op| matches!(op, Op::BatchNorm(_))), 0, "{model} {o:?}");
        }
        // The output tensor keeps its name and shape.
        assert_eq!(g2.tensors[g2.output], g.tensors[g.output]);
        if seen.contains(&g2) {
            continue;
        }
        let out = exec_cpu::run(&g2, &w2, &x).unwrap();
        let err = rel_l2(&out, &base64);
        assert!(err < 1e-5, "{model} {o:?}: rel L2 {err:e}");
        seen.push(g2);
    }
}

// One test per model so the two CI cores share them. Sizes: the smallest round size at
// or above each model's minimum (see `models::build_with_input`), to keep debug-build
// reference convolutions cheap.
#[test]
fn fused_matches_unfused_alexnet() {
    fused_matches_unfused("alexnet", 63);
}

#[test]
fn fused_matches_unfused_vgg16() {
    fused_matches_unfused("vgg16", 32);
}

#[test]
fn fused_matches_unfused_resnet50() {
    fused_matches_unfused("resnet50", 16);
}

#[test]
fn fused_matches_unfused_googlenet() {
    fused_matches_unfused("googlenet", 32);
}

#[test]
fn fused_matches_unfused_mobilenet_v2() {
    fused_matches_unfused("mobilenet_v2", 32);
}

#[test]
fn fused_matches_unfused_squeezenet() {
    fused_matches_unfused("squeezenet1_0", 32);
}

/// Launch counts at 224, unfused and fully fused, derived from the architectures:
/// * ResNet-50: 53 convs (stem 1 + 16 bottlenecks × 3 + 4 downsamples), 53 BNs, 33 ReLUs
///   (stem 1 + 2 per bottleneck), 16 adds, maxpool, avgpool, fc = 158 unfused. Fused: BN
///   and ReLU go into the convs, every add (with its ReLU) into a conv3 → 53 + 3 = 56.
/// * MobileNetV2: 52 convs (stem 1; block 1 (t = 1) 2; 16 blocks × 3; final 1×1 1), 52
///   BNs, 35 ReLU6 (stem, final, 1 in block 1, 2 in each other block: 2 + 1 + 32), 10
///   residual adds (stride-1 repeats: 1 + 2 + 3 + 2 + 2), avgpool, fc = 151. Fused: each
///   add goes into its block's projection conv (the block input was computed earlier)
///   → 52 + 2 = 54.
/// * GoogLeNet: 57 convs (3 stem + 9 inceptions × 6), as many BNs and ReLUs, 13 max
///   pools (4 between stages + 9 branch-4 pools), avgpool, 9 concats, fc
///   = 171 + 13 + 1 + 9 + 1 = 195. Fused: 57 + 14 + 9 + 1 = 81.
/// * AlexNet: 5 conv + 5 ReLU + 3 pools + 3 linear + 2 ReLU = 18 → 11 (dropouts, the
///   adaptive pool and flatten never launch).
/// * VGG-16: 13 conv + 13 ReLU + 5 pools + 3 linear + 2 ReLU = 36 → 21.
/// * SqueezeNet 1.0: 26 convs (stem, 8 fires × 3, classifier) + 26 ReLU + 3 max pools +
///   global avgpool + 8 concats = 64 → 38.
#[test]
fn fused_kernel_counts_at_224() {
    for (model, unfused, fused) in [
        ("resnet50", 158, 56),
        ("mobilenet_v2", 151, 54),
        ("googlenet", 195, 81),
        ("alexnet", 18, 11),
        ("vgg16", 36, 21),
        ("squeezenet1_0", 64, 38),
    ] {
        let g = models::build(model, 1).unwrap().unwrap();
        assert_eq!(g.kernel_layers(), unfused, "{model} unfused");
        let f = rewrite_graph(&g, RewriteOptions::default()).unwrap();
        assert_eq!(f.kernel_layers(), fused, "{model} fused");
        // Only convs, pools, linear layers and concats are left.
        let rest = count(&f, |op| !matches!(op, Op::Conv { .. } | Op::Pool(_) | Op::Linear { .. } | Op::Concat));
        assert_eq!(rest, count(&f, |op| !op.launches()), "{model}: unfused elementwise layers left");
        // Every absorbed layer is recorded once.
        let covered: usize = f.nodes.iter().map(|n| n.covered_layers().count()).sum();
        assert_eq!(covered, g.nodes.len(), "{model}");
    }
}

#[test]
fn resnet_block_fusion_structure() {
    let g = models::build_with_input("resnet50", 1, 32).unwrap().unwrap();
    let f = rewrite_graph(&g, RewriteOptions::default()).unwrap();
    let node = |name: &str| f.nodes.iter().position(|n| n.name == name).unwrap();
    let n = &f.nodes[node("layer1.0.conv3")];
    assert_eq!(n.fused, ["layer1.0.bn3", "layer1.0.add"]);
    let Op::Conv { epi, .. } = n.op else { panic!() };
    assert_eq!(epi, Epilogue { bias: true, scale_shift: false, act: Act::Relu, residual: true });
    // The residual is the downsample branch, computed after conv3 in the model: the fused
    // conv3 moved after it.
    let ds = node("layer1.0.downsample.0");
    assert!(ds < node("layer1.0.conv3"));
    assert_eq!(n.inputs[1], f.nodes[ds].output);
    // Identity blocks: the residual is the block input, conv3 stays after conv2.
    let n = &f.nodes[node("layer1.1.conv3")];
    assert_eq!(n.inputs[1], f.nodes[node("layer1.0.conv3")].output);
    assert_eq!(node("layer1.1.conv3"), node("layer1.1.conv2") + 1);
    assert_eq!(f.nodes[node("conv1")].fused, ["bn1", "bn1.act"]);
    // Folding: the BN weights are gone, the conv gained a bias.
    let c1 = &f.nodes[node("conv1")];
    let names: Vec<&str> = c1.weights.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["conv1.weight", "conv1.bias"]);
    // Without folding: scale/shift instead.
    let s = rewrite_graph(&g, opts(false, true, true)).unwrap();
    let c1 = &s.nodes[s.nodes.iter().position(|n| n.name == "conv1").unwrap()];
    let roles: Vec<WeightRole> = c1.weights.iter().map(|w| w.role).collect();
    assert_eq!(roles, [WeightRole::Kernel, WeightRole::Scale, WeightRole::Shift]);
    assert_eq!(c1.weights[1].name, "conv1.scale");
    // Residual fusion alone: the add moves into conv3 with its ReLU, the other ReLUs stay.
    let r = rewrite_graph(&g, opts(false, false, true)).unwrap();
    assert_eq!(count(&r, |op| matches!(op, Op::Add { .. })), 0);
    assert_eq!(count(&r, |op| matches!(op, Op::Act(_))), 33);
    assert_eq!(count(&r, |op| matches!(op, Op::Conv { epi, .. } if epi.scale_shift)), 53);
    // Folding alone leaves the activations and adds.
    let b = rewrite_graph(&g, opts(true, false, false)).unwrap();
    assert_eq!(b.kernel_layers(), 158 - 53);
}

/// The conv + BN pair at random data: folded weights, the scale/shift epilogue and the
/// unfused pair (conv reference, then `reference::batch_norm` on the f32-rounded conv
/// output) agree.
#[test]
fn bn_folding_matches_reference_batch_norm() {
    let spec = Conv2d::new(0, 0, 0, 0, 0, 3, 3).with_stride(2, 1).with_pad(1, 1);
    for bias in [false, true] {
        let (mut b, x) = Builder::new("convbn", [2, 3, 7, 6]);
        let y = b.conv(x, "c", 5, spec, bias).unwrap();
        let y = b.batch_norm(y, "bn", 1e-3).unwrap();
        let g = b.finish(y).unwrap();
        let w = Weights::seeded(&g, 11);
        let input = seeded_input(g.tensors[g.input].dims, 11);
        let Op::Conv { conv, .. } = g.nodes[0].op else { panic!() };
        let get = |n: &str| w.get(n).unwrap().as_slice();
        let args = EpilogueArgs { bias: bias.then(|| get("c.bias")), ..EpilogueArgs::none() };
        let y = reference::conv2d(&conv, Layout::Nchw, &input, get("c.weight"), &args).unwrap();
        let y: Vec<f32> = y.into_iter().map(|v| v as f32).collect();
        let bn = BatchNorm::new(2, 5, conv.out_hw().0, conv.out_hw().1).with_eps(1e-3);
        let (gamma, beta) = (get("bn.weight"), get("bn.bias"));
        let (mean, var) = (get("bn.running_mean"), get("bn.running_var"));
        let want = reference::batch_norm(&bn, Layout::Nchw, &y, gamma, beta, mean, var).unwrap();
        for o in [opts(true, false, false), opts(false, true, false)] {
            let (g2, w2) = rewrite(&g, &w, o).unwrap();
            assert_eq!(g2.nodes.len(), 1);
            let out = exec_cpu::run(&g2, &w2, &input).unwrap();
            let err = rel_l2(&out, &want);
            assert!(err < 1e-6, "bias {bias} {o:?}: {err:e}");
        }
    }
}

/// One channel, 1×1 kernel, by hand: w = 2, bias 1, gamma 3, beta 0.5, mean 2, var 3,
/// eps 1: s = 3/√4 = 1.5, w' = 2·1.5 = 3, b' = (1 − 2)·1.5 + 0.5 = −1. Without the conv
/// bias b' = (0 − 2)·1.5 + 0.5 = −2.5, and the scale/shift path gives scale 1.5, shift
/// 0.5 − 2·1.5 = −2.5. Then x = 4 → conv 2·4 (+1) → BN: 3·4 − 1 = 11 (bias) and
/// 3·4 − 2.5 = 9.5 (no bias).
#[test]
fn folded_values_by_hand() {
    for (bias, want_b, want_y) in [(true, -1.0f32, 11.0f32), (false, -2.5, 9.5)] {
        let (mut b, x) = Builder::new("one", [1, 1, 1, 1]);
        let y = b.conv(x, "c", 1, Conv2d::new(0, 0, 0, 0, 0, 1, 1), bias).unwrap();
        let y = b.batch_norm(y, "bn", 1.0).unwrap();
        let g = b.finish(y).unwrap();
        let mut w = Weights::default();
        for (name, v) in [
            ("c.weight", 2.0),
            ("c.bias", 1.0),
            ("bn.weight", 3.0),
            ("bn.bias", 0.5),
            ("bn.running_mean", 2.0),
            ("bn.running_var", 3.0),
        ] {
            w.insert(name, vec![v]);
        }
        let (f, fw) = rewrite(&g, &w, RewriteOptions::default()).unwrap();
        assert_eq!(f.nodes.len(), 1);
        assert_eq!(f.nodes[0].fused, ["bn"]);
        assert_eq!(fw.get("c.weight").unwrap().as_slice(), [3.0]);
        assert_eq!(fw.get("c.bias").unwrap().as_slice(), [want_b]);
        assert_eq!(fw.len(), 2, "only the weights the new graph uses");
        assert_eq!(exec_cpu::run(&f, &fw, &[4.0]).unwrap(), [want_y]);
        assert_eq!(exec_cpu::run(&g, &w, &[4.0]).unwrap(), [want_y]);

        let (s, sw) = rewrite(&g, &w, opts(false, true, false)).unwrap();
        assert_eq!(sw.get("c.scale").unwrap().as_slice(), [1.5]);
        assert_eq!(sw.get("c.shift").unwrap().as_slice(), [-2.5]);
        assert_eq!(sw.get("c.weight").unwrap().as_slice(), [2.0]);
        assert_eq!(exec_cpu::run(&s, &sw, &[4.0]).unwrap(), [want_y]);
    }
}

/// ONNX-style graphs: Conv(bias) → Add → Relu as three nodes ends as one conv;
/// an Add neither of whose operands is a single-use conv only takes the ReLU; a conv
/// whose output has two readers keeps its BN.
#[test]
fn onnx_style_patterns() {
    let (mut b, x) = Builder::new("onnxish", [1, 4, 5, 5]);
    let spec = Conv2d::new(0, 0, 0, 0, 0, 3, 3).with_pad(1, 1);
    let c1 = b.conv(x, "c1", 4, spec, true).unwrap();
    let a1 = b.add(c1, x, "add1", Act::None).unwrap();
    let r1 = b.act(a1, "relu1", Act::Relu).unwrap();
    // Two readers of c2's output: no BN folding, no residual fusion into c2.
    let c2 = b.conv(r1, "c2", 4, spec, false).unwrap();
    let n2 = b.batch_norm(c2, "bn2", 1e-5).unwrap();
    let a2 = b.add(n2, c2, "add2", Act::None).unwrap();
    let r2 = b.act(a2, "relu2", Act::RELU6).unwrap();
    // Sigmoid is never fused.
    let s = b.act(r2, "sig", Act::Sigmoid).unwrap();
    let g = b.finish(s).unwrap();
    let w = Weights::seeded(&g, 3);
    let input = seeded_input([1, 4, 5, 5], 3);
    let (f, fw) = rewrite(&g, &w, RewriteOptions::default()).unwrap();
    let names: Vec<&str> = f.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["c1", "c2", "bn2", "add2", "sig"]);
    assert_eq!(f.nodes[0].fused, ["add1", "relu1"]);
    assert!(matches!(f.nodes[0].op, Op::Conv { epi: Epilogue { residual: true, act: Act::Relu, .. }, .. }));
    assert_eq!(f.nodes[0].inputs, [f.input, f.input]);
    assert_eq!(f.nodes[3].fused, ["relu2"]);
    assert_eq!(f.nodes[3].op, Op::Add { act: Act::RELU6 });
    let want: Vec<f64> = exec_cpu::run(&g, &w, &input).unwrap().into_iter().map(f64::from).collect();
    let got = exec_cpu::run(&f, &fw, &input).unwrap();
    assert!(rel_l2(&got, &want) < 1e-6);
}

#[test]
fn missing_weights_are_errors() {
    let g = models::build_with_input("resnet50", 1, 8).unwrap().unwrap();
    let e = rewrite(&g, &Weights::default(), RewriteOptions::default()).unwrap_err();
    assert!(e.to_string().contains("is missing"), "{e}");
    let mut w = Weights::seeded(&g, 1);
    w.insert("bn1.running_var", vec![1.0; 3]);
    let e = rewrite(&g, &w, RewriteOptions::default()).unwrap_err();
    assert!(e.to_string().contains("bn1.running_var"), "{e}");
}

/// Two convs sharing one kernel (possible in ONNX files): folding gives each its own
/// copy under a fresh name instead of overwriting the shared one.
#[test]
fn shared_kernels_are_not_overwritten() {
    let (mut b, x) = Builder::new("shared", [1, 2, 4, 4]);
    let spec = Conv2d::new(0, 0, 0, 0, 0, 3, 3).with_pad(1, 1);
    let y1 = b.conv(x, "c1", 2, spec, false).unwrap();
    let y1 = b.batch_norm(y1, "bn1", 1e-5).unwrap();
    let y2 = b.conv(y1, "c2", 2, spec, false).unwrap();
    let y2 = b.batch_norm(y2, "bn2", 1e-5).unwrap();
    let mut g = b.finish(y2).unwrap();
    g.nodes[2].weights[0].name = "c1.weight".into();
    let w = Weights::seeded(&g, 4);
    assert_eq!(w.len(), 9);
    let input = seeded_input([1, 2, 4, 4], 4);
    let want: Vec<f64> = exec_cpu::run(&g, &w, &input).unwrap().into_iter().map(f64::from).collect();
    let (f, fw) = rewrite(&g, &w, RewriteOptions::default()).unwrap();
    let names: Vec<&str> = f.nodes.iter().flat_map(|n| n.weights.iter().map(|w| w.name.as_str())).collect();
    assert_eq!(names, ["c1.weight.folded", "c1.bias", "c2.weight.folded", "c2.bias"]);
    assert!(rel_l2(&exec_cpu::run(&f, &fw, &input).unwrap(), &want) < 1e-6);
}

#[test]
fn validate_checks_residual_inputs() {
    let (mut b, x) = Builder::new("v", [1, 2, 3, 3]);
    let y = b.conv(x, "c", 2, Conv2d::new(0, 0, 0, 0, 0, 1, 1), false).unwrap();
    let mut g = b.finish(y).unwrap();
    let Op::Conv { epi, .. } = &mut g.nodes[0].op else { panic!() };
    epi.residual = true;
    assert!(g.validate().unwrap_err().to_string().contains("conv has 1 inputs, its epilogue needs 2"));
    g.nodes[0].inputs.push(x);
    g.validate().unwrap();
    g.output = 99;
    assert!(g.validate().is_err());
}
