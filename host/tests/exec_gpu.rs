//! The GPU executor's device-independent parts: kernel choice, the memory plan, the
//! precomputed launch list (run by the CPU emulator against the CPU reference backend)
//! and the NHWC weight permutation. No GPU needed.

use cnnergy_host::exec_cpu;
use cnnergy_host::exec_gpu::{
    blueprint, emulate, live_ranges, permute_linear_nhwc, plan_memory, rel_l2, select_kernels, BufKind, ExecOptions,
    Kernel, Step,
};
use cnnergy_host::graph::{Builder, Graph, Op, WeightRole};
use cnnergy_host::launch::tensorcore;
use cnnergy_host::models;
use cnnergy_host::ops::{Act, Conv2d, DType, Layout, Pool2d, PoolKind};
use cnnergy_host::registry::LayerType;
use cnnergy_host::rewrite::{self, RewriteOptions};
use cnnergy_host::weights::{seeded_input, Weights};

/// Small inputs that still exercise every layer (the reference convs are slow in debug
/// builds); the spatial-flatten permutation has its own test below.
fn small(name: &str) -> (usize, usize) {
    match name {
        "alexnet" => (2, 64),
        "vgg16" | "resnet50" | "mobilenet_v2" => (1, 32),
        _ => (2, 32),
    }
}

fn graphs() -> Vec<(String, Graph)> {
    let mut out = Vec::new();
    for &name in models::NAMES {
        let (batch, hw) = small(name);
        let g = models::build_with_input(name, batch, hw).unwrap().unwrap();
        let fused = rewrite::rewrite_graph(&g, RewriteOptions::default()).unwrap();
        out.push((format!("{name} unfused"), g));
        out.push((format!("{name} fused"), fused));
    }
    out
}

#[test]
fn memory_plan_never_overlaps_live_tensors() {
    for (label, g) in graphs() {
        for elem in [2, 4] {
            let m = plan_memory(&g, elem);
            let (root, range) = live_ranges(&g);
            assert_eq!(m.root, root);
            let roots: Vec<usize> = (0..g.tensors.len()).filter(|&t| root[t] == t).collect();
            for &t in &roots {
                let need = g.tensors[t].dims.iter().product::<usize>() * elem;
                assert!(m.slot_bytes[m.slot_of[t]] >= need, "{label}: slot too small for {}", g.tensors[t].name);
            }
            for (i, &a) in roots.iter().enumerate() {
                for &b in &roots[i + 1..] {
                    if m.slot_of[a] == m.slot_of[b] {
                        let (ra, rb) = (range[a], range[b]);
                        assert!(
                            ra.1 < rb.0 || rb.1 < ra.0,
                            "{label}: {} {ra:?} and {} {rb:?} share slot {}",
                            g.tensors[a].name,
                            g.tensors[b].name,
                            m.slot_of[a]
                        );
                    }
                }
            }
            // Aliases share their input's slot.
            for n in &g.nodes {
                if matches!(n.op, Op::Flatten | Op::Identity) {
                    assert_eq!(m.slot_of[n.output], m.slot_of[n.inputs[0]], "{label}");
                }
            }
            assert!(m.peak_activation_bytes <= m.naive_bytes, "{label}");
            assert!(m.slot_bytes.len() < roots.len().max(2), "{label}: no reuse");
        }
    }
}

#[test]
fn memory_plan_reuses_buffers_in_a_chain() {
    // A plain chain needs the input (kept for replays) and two ping-pong buffers.
    let g = models::build_with_input("vgg16", 1, 32).unwrap().unwrap();
    let m = plan_memory(&g, 4);
    assert_eq!(m.slot_bytes.len(), 3, "{:?}", m.slot_bytes);
    assert!(m.peak_activation_bytes * 2 < m.naive_bytes);
}

#[test]
fn every_node_gets_a_kernel() {
    for (label, g) in graphs() {
        for dtype in [DType::F32, DType::F16] {
            let ks = select_kernels(&g, &ExecOptions::new(dtype), 132).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(ks.len(), g.nodes.len());
            for (n, k) in g.nodes.iter().zip(&ks) {
                match (&n.op, k, dtype) {
                    (Op::Flatten | Op::Identity, Kernel::Alias, _) => {}
                    (Op::Conv { .. }, Kernel::ConvSimt(_), DType::F32) => {}
                    (Op::Conv { conv, .. }, Kernel::ConvTc, DType::F16) => assert_eq!(conv.groups, 1),
                    (Op::Conv { conv, .. }, Kernel::ConvDw, DType::F16) => {
                        assert!(conv.groups > 1 && conv.groups == conv.c_in && conv.c_out == conv.c_in)
                    }
                    (Op::Conv { conv, .. }, Kernel::Island(k), DType::F16) => {
                        assert!(
                            conv.groups > 1
                                && !(conv.groups == conv.c_in && conv.c_out == conv.c_in)
                                && matches!(**k, Kernel::ConvSimt(_)),
                            "{label} {}",
                            n.name
                        )
                    }
                    (Op::Linear { .. }, Kernel::GemmSimt(_), DType::F32) => {}
                    (Op::Linear { .. }, Kernel::GemmTc, DType::F16) => {}
                    (_, Kernel::Memory, _) => {}
                    (
                        Op::Concat | Op::BatchNorm(_) | Op::Lrn(_) | Op::Softmax(_) | Op::Pool(_),
                        Kernel::Island(_),
                        DType::F16,
                    ) => {}
                    (op, k, d) => panic!("{label} {d:?}: {} got {}", n.name, k.describe(op)),
                }
            }
        }
    }
}

#[test]
fn variant_overrides_and_clear_errors() {
    let g = models::build_with_input("mobilenet_v2", 1, 32).unwrap().unwrap();
    let opts = ExecOptions::new(DType::F32).with_variants("conv=direct").unwrap();
    let ks = select_kernels(&g, &opts, 132).unwrap();
    assert!(ks.iter().all(|k| !matches!(k, Kernel::ConvSimt(s) if s.variant != "direct")));
    // pointwise cannot run the 3x3 stem: the error names the layer and the op.
    let opts = ExecOptions::new(DType::F32).with_variants("conv=pointwise").unwrap();
    let e = select_kernels(&g, &opts, 132).unwrap_err().to_string();
    assert!(e.contains("layer `") && e.contains("(Conv)") && e.contains("pointwise needs"), "{e}");
    let opts = ExecOptions { dtype: DType::F32, tf32: false, variants: vec![(LayerType::Conv, "nope".into())] };
    assert!(select_kernels(&g, &opts, 132).unwrap_err().to_string().contains("is not one of"));
    // The tensor-core variant forced on depthwise convs.
    let opts = ExecOptions::new(DType::F16).with_variants("conv=implicit_gemm_tc").unwrap();
    let e = select_kernels(&g, &opts, 132).unwrap_err().to_string();
    assert!(e.contains("does not run grouped convs"), "{e}");
    assert!(select_kernels(&g, &ExecOptions::new(DType::BF16), 132).is_err());
    // TF32 is f32 data only; it has no depthwise kernel and no grouped tensor-core conv.
    let e = select_kernels(&g, &ExecOptions { tf32: true, ..ExecOptions::new(DType::F16) }, 132).unwrap_err();
    assert!(e.to_string().contains("tf32 with f16 data"), "{e}");
    let opts = ExecOptions::tf32().with_variants("conv=depthwise_nhwc").unwrap();
    let e = select_kernels(&g, &opts, 132).unwrap_err().to_string();
    assert!(e.contains("layer `") && e.contains("f16 kernels only"), "{e}");
    let opts = ExecOptions::tf32().with_variants("conv=implicit_gemm_tc").unwrap();
    let e = select_kernels(&g, &opts, 132).unwrap_err().to_string();
    assert!(e.contains("does not run grouped convs"), "{e}");
    // A softmax over a spatial axis has no kernel.
    let (mut b, x) = Builder::new("sm", [1, 4, 2, 2]);
    let s = b.softmax(x, "softmax").unwrap();
    let g = b.finish(s).unwrap();
    let e = select_kernels(&g, &ExecOptions::new(DType::F32), 132).unwrap_err().to_string();
    assert!(e.contains("layer `softmax` (Softmax)"), "{e}");
}

/// The launch list, run by the CPU emulator (buffers poisoned, memory reuse as planned),
/// matches the CPU reference backend: f32 to rounding, tf32 (operands rounded to tf32 as
/// the kernels do) within `--check`'s 5e-3, f16 to 1e-2.
fn emulated_matches(model: &str) {
    // VGG's unfused graph adds nothing the fused one lacks but doubles the (slow, debug)
    // reference convs.
    let keep = |l: &str| l.split(' ').next() == Some(model) && !(model == "vgg16" && l.ends_with("unfused"));
    for (label, g) in graphs().into_iter().filter(|(l, _)| keep(l)) {
        let w = Weights::seeded(&g, 7);
        let input = seeded_input(g.tensors[g.input].dims, 7);
        let want = exec_cpu::run(&g, &w, &input).unwrap();
        for (opts, tol) in
            [(ExecOptions::new(DType::F32), 1e-5), (ExecOptions::tf32(), 5e-3), (ExecOptions::new(DType::F16), 1e-2)]
        {
            let dtype = opts.precision();
            let bp = blueprint(&g, &w, &opts, 132).unwrap_or_else(|e| panic!("{label}: {e}"));
            let got = emulate(&bp, &input).unwrap_or_else(|e| panic!("{label} {dtype}: {e}"));
            let rel = rel_l2(&got, &want).unwrap_or_else(|e| panic!("{label} {dtype}: {e}"));
            assert!(rel < tol, "{label} {dtype}: rel L2 {rel:e}");
            // Buffers referenced exist and are large enough.
            assert!(bp.launches.iter().all(|l| l.layer_id == u32::MAX || (l.layer_id as usize) < g.nodes.len()));
        }
    }
}

#[test]
fn emulated_alexnet() {
    emulated_matches("alexnet");
}
#[test]
fn emulated_vgg16() {
    emulated_matches("vgg16");
}
#[test]
fn emulated_resnet50() {
    emulated_matches("resnet50");
}
#[test]
fn emulated_googlenet() {
    emulated_matches("googlenet");
}
#[test]
fn emulated_mobilenet_v2() {
    emulated_matches("mobilenet_v2");
}
#[test]
fn emulated_squeezenet() {
    emulated_matches("squeezenet1_0");
}

#[test]
fn spatial_flatten_linear_gets_nhwc_weights_in_f16() {
    // conv -> [1, 8, 3, 3] -> flatten -> linear: the f16 plan must permute the weight.
    let (mut b, x) = Builder::new("flat", [2, 3, 5, 5]);
    let c = b.conv(x, "conv", 8, Conv2d::new(0, 0, 0, 0, 0, 3, 3), true).unwrap();
    let r = b.act(c, "relu", Act::Relu).unwrap();
    let p = b.pool(r, "pool", Pool2d::max(0, 0, 0, 0, 1, 1)).unwrap();
    let f = b.flatten(p, "flatten");
    let l = b.linear(f, "fc", 10, true).unwrap();
    let g = b.finish(l).unwrap();
    let w = Weights::seeded(&g, 3);
    let bp = blueprint(&g, &w, &ExecOptions::new(DType::F16), 132).unwrap();
    let fc = w.get("fc.weight").unwrap();
    let perm = permute_linear_nhwc(fc, 10, [8, 3, 3]).unwrap();
    let Some(Step::GemmTc { w: wi, .. }) =
        bp.launches.iter().map(|l| &l.step).find(|s| matches!(s, Step::GemmTc { .. }))
    else {
        panic!("no tensor-core gemm")
    };
    assert_eq!(bp.w16[*wi], cnnergy_host::reference::f32_to_f16_bits(&perm));
    let input = seeded_input([2, 3, 5, 5], 3);
    let want = exec_cpu::run(&g, &w, &input).unwrap();
    let rel = rel_l2(&emulate(&bp, &input).unwrap(), &want).unwrap();
    assert!(rel < 1e-2, "{rel}");
    // Without the permutation the answer is wrong: the check has teeth.
    let mut bad = blueprint(&g, &w, &ExecOptions::new(DType::F16), 132).unwrap();
    bad.w16[*wi] = cnnergy_host::reference::f32_to_f16_bits(fc);
    let rel = rel_l2(&emulate(&bad, &input).unwrap(), &want).unwrap();
    assert!(rel > 0.05, "{rel}");
}

#[test]
fn weights_and_buffers_are_accounted() {
    let g = models::build_with_input("resnet50", 1, 32).unwrap().unwrap();
    let g = rewrite::rewrite_graph(&g, RewriteOptions::default()).unwrap();
    let w = Weights::seeded(&g, 1);
    let params: usize = g.nodes.iter().flat_map(|n| &n.weights).map(|w| w.len()).sum();
    let bp = blueprint(&g, &w, &ExecOptions::new(DType::F32), 132).unwrap();
    assert_eq!(bp.weight_bytes, params * 4);
    let bp16 = blueprint(&g, &w, &ExecOptions::new(DType::F16), 132).unwrap();
    assert!(bp16.weight_bytes < bp.weight_bytes);
    assert!(bp16.activation_bytes() > 0 && bp.activation_bytes() > 0);
    // One launch per kernel layer in f32 (no conversions).
    assert_eq!(bp.launches.len(), g.kernel_layers());
}

#[test]
fn depthwise_convs_run_natively_in_f16() {
    let g = models::build_with_input("mobilenet_v2", 1, 32).unwrap().unwrap();
    let g = rewrite::rewrite_graph(&g, RewriteOptions::default()).unwrap();
    let ks = select_kernels(&g, &ExecOptions::new(DType::F16), 132).unwrap();
    let dw = g.nodes.iter().zip(&ks).filter(|(n, _)| matches!(n.op, Op::Conv { conv, .. } if conv.groups > 1));
    let (mut count, mut islands) = (0, 0);
    for (n, k) in dw {
        count += 1;
        assert_eq!(*k, Kernel::ConvDw, "{}", n.name);
        islands += matches!(k, Kernel::Island(_)) as usize;
    }
    assert_eq!((count, islands), (17, 0));
    // The override keeps dense convs on the tensor cores; a grouped (non-depthwise) conv
    // under it is a clear error.
    let opts = ExecOptions::new(DType::F16).with_variants("conv=depthwise_nhwc").unwrap();
    assert_eq!(select_kernels(&g, &opts, 132).unwrap(), ks);
    let (mut b, x) = Builder::new("grouped", [1, 8, 6, 6]);
    let c = b.conv(x, "conv", 8, Conv2d::new(0, 0, 0, 0, 0, 3, 3).with_groups(2).with_pad(1, 1), true).unwrap();
    let gg = b.finish(c).unwrap();
    assert!(matches!(select_kernels(&gg, &ExecOptions::new(DType::F16), 132).unwrap()[0], Kernel::Island(_)));
    let e = select_kernels(&gg, &opts, 132).unwrap_err().to_string();
    assert!(e.contains("layer `conv`") && e.contains("multiplier 1"), "{e}");
    // The emulated plan matches the reference, and only with the tap-major weights.
    let w = Weights::seeded(&g, 5);
    let input = seeded_input(g.tensors[g.input].dims, 5);
    let want = exec_cpu::run(&g, &w, &input).unwrap();
    let mut bp = blueprint(&g, &w, &ExecOptions::new(DType::F16), 132).unwrap();
    let rel = rel_l2(&emulate(&bp, &input).unwrap(), &want).unwrap();
    assert!(rel < 1e-2, "{rel}");
    // OIHW order in place of [kh][kw][c] in every depthwise layer: the answer must go wrong.
    let dws: Vec<(usize, usize, usize)> = bp
        .launches
        .iter()
        .filter_map(|l| match &l.step {
            Step::ConvDw { conv, w, .. } => Some((*w, conv.c_out, conv.kh * conv.kw)),
            _ => None,
        })
        .collect();
    assert_eq!(dws.len(), 17);
    for (wi, c, taps) in dws {
        let hwc = bp.w16[wi].clone();
        bp.w16[wi] = (0..c * taps).map(|i| hwc[(i % c) * taps + i / c]).collect();
        assert_ne!(bp.w16[wi], hwc);
    }
    let rel = rel_l2(&emulate(&bp, &input).unwrap(), &want).unwrap();
    assert!(rel > 0.05, "{rel}");
}

#[test]
fn small_channel_input_is_padded_to_8_for_the_fast_tensor_core_conv() {
    use cnnergy_host::launch::tensorcore::conv_kernel;
    use cnnergy_host::reference::f32_to_f16_bits;
    let g = models::build_with_input("resnet50", 1, 32).unwrap().unwrap();
    let g = rewrite::rewrite_graph(&g, RewriteOptions::default()).unwrap();
    let w = Weights::seeded(&g, 7);
    let bp = blueprint(&g, &w, &ExecOptions::new(DType::F16), 132).unwrap();
    // The input conversion writes [1, 32, 32, 8] halves.
    let Step::ToNhwcF16Pad8 { dims, y: conv_in, .. } = bp.launches[0].step else {
        panic!("first launch: {:?}", bp.launches[0].step)
    };
    assert_eq!((dims, conv_in.len), ([1, 3, 32, 32], 32 * 32 * 8));
    // conv1 reads it as an 8-channel input and runs on the non-gather kernel.
    let (conv, x, wi) = bp
        .launches
        .iter()
        .find_map(|l| match &l.step {
            Step::ConvTc { conv, x, w, .. } => Some((*conv, *x, *w)),
            _ => None,
        })
        .unwrap();
    assert_eq!((conv.c_in, conv.c_out, conv.kh, conv.kw), (8, 64, 7, 7));
    assert_eq!(x, conv_in);
    let sym = conv_kernel(DType::F16, conv.c_in, conv.c_out).0;
    assert!(!sym.ends_with("_gather"), "{sym}");
    // OHWI [64, 7, 7, 8] weights: lanes 0..3 the graph's OIHW [64, 3, 7, 7] weights, 3..8 zero.
    let conv1 = g.nodes.iter().find(|n| n.inputs.contains(&g.input)).unwrap();
    let orig = f32_to_f16_bits(w.get(&conv1.weight(WeightRole::Kernel).unwrap().name).unwrap());
    let got = &bp.w16[wi];
    assert_eq!(got.len(), 64 * 49 * 8);
    for o in 0..64 {
        for tap in 0..49 {
            for c in 0..8 {
                let want = if c < 3 { orig[(o * 3 + c) * 49 + tap] } else { 0 };
                assert_eq!(got[(o * 49 + tap) * 8 + c], want, "o {o} tap {tap} c {c}");
            }
        }
    }
    // The emulated plan (buffers poisoned with NaN: an unwritten padding lane would
    // poison the logits) matches the CPU reference.
    let input = seeded_input([1, 3, 32, 32], 7);
    let want = exec_cpu::run(&g, &w, &input).unwrap();
    let rel = rel_l2(&emulate(&bp, &input).unwrap(), &want).unwrap();
    assert!(rel < 1e-2, "{rel}");
    // f32 plans and 8-channel inputs are not padded.
    let bp32 = blueprint(&g, &w, &ExecOptions::new(DType::F32), 132).unwrap();
    assert!(!bp32.launches.iter().any(|l| matches!(l.step, Step::ToNhwcF16Pad8 { .. })));
    let (mut b, x) = Builder::new("c8", [1, 8, 6, 6]);
    let c = b.conv(x, "conv", 8, Conv2d::new(0, 0, 0, 0, 0, 3, 3), true).unwrap();
    let g8 = b.finish(c).unwrap();
    let bp8 = blueprint(&g8, &Weights::seeded(&g8, 1), &ExecOptions::new(DType::F16), 132).unwrap();
    assert!(matches!(bp8.launches[0].step, Step::ToNhwcF16 { .. }));
}

#[test]
fn small_channel_input_read_by_a_non_conv_is_not_padded() {
    // The input feeds a conv and (as the residual) an add: the add reads 3-channel NHWC,
    // so the input must keep 3 channels.
    let (mut b, x) = Builder::new("res", [2, 3, 5, 5]);
    let c = b.conv(x, "conv", 3, Conv2d::new(0, 0, 0, 0, 0, 3, 3).with_pad(1, 1), true).unwrap();
    let s = b.add(c, x, "add", Act::Relu).unwrap();
    let g = b.finish(s).unwrap();
    let w = Weights::seeded(&g, 2);
    let bp = blueprint(&g, &w, &ExecOptions::new(DType::F16), 132).unwrap();
    assert!(matches!(bp.launches[0].step, Step::ToNhwcF16 { .. }), "{:?}", bp.launches[0].step);
    let input = seeded_input([2, 3, 5, 5], 2);
    let want = exec_cpu::run(&g, &w, &input).unwrap();
    let rel = rel_l2(&emulate(&bp, &input).unwrap(), &want).unwrap();
    assert!(rel < 1e-2, "{rel}");
}

/// Every node of every built-in model (fused and unfused) gets its TF32-mode kernel:
/// dense convs and linear layers on the TF32 tensor cores, global pooling, activations,
/// adds, concats and the classifier softmax natively on NHWC f32, the rest as islands;
/// every buffer holds f32 and the launch list names only TF32 tensor-core symbols.
#[test]
fn tf32_plans_put_convs_and_linears_on_tf32_tensor_cores() {
    for (label, g) in graphs() {
        let ks = select_kernels(&g, &ExecOptions::tf32(), 132).unwrap_or_else(|e| panic!("{label}: {e}"));
        let (mut dense, mut linear) = (0, 0);
        for (n, k) in g.nodes.iter().zip(&ks) {
            match (&n.op, k) {
                (Op::Flatten | Op::Identity, Kernel::Alias) => {}
                (Op::Conv { conv, .. }, Kernel::ConvTc) if conv.groups == 1 => dense += 1,
                (Op::Conv { conv, .. }, Kernel::Island(k)) if conv.groups > 1 && matches!(**k, Kernel::ConvSimt(_)) => {
                }
                (Op::Linear { .. }, Kernel::GemmTc) => linear += 1,
                (Op::Pool(p), Kernel::Memory) if p.kind == PoolKind::GlobalAvg => {}
                (Op::Pool(p), Kernel::Island(k)) if p.kind != PoolKind::GlobalAvg && **k == Kernel::Memory => {}
                (Op::Act(_) | Op::Add { .. } | Op::Concat | Op::Softmax(_), Kernel::Memory) => {}
                (Op::BatchNorm(_) | Op::Lrn(_), Kernel::Island(_)) => {}
                (op, k) => panic!("{label} tf32: {} got {}", n.name, k.describe(op)),
            }
        }
        assert!(dense > 0, "{label}");
        let w = Weights::seeded(&g, 1);
        let bp = blueprint(&g, &w, &ExecOptions::tf32(), 132).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(bp.precision(), "tf32");
        assert!(bp.bufs.iter().all(|&(k, _)| k == BufKind::F32), "{label}: a non-f32 buffer");
        assert!(bp.w16.is_empty(), "{label}: 16-bit weights");
        let (mut conv_steps, mut gemm_steps) = (0, 0);
        for l in &bp.launches {
            match &l.step {
                Step::ConvTf32 { conv, .. } => {
                    conv_steps += 1;
                    let (sym, _) = tensorcore::conv_kernel(DType::F32, conv.c_in, conv.c_out);
                    assert!(sym.starts_with("conv2d_igemm_tf32_nhwc"), "{label}: {sym}");
                    // Only the 3-channel first conv misses the c_in % 4 fast path.
                    assert_eq!(sym.ends_with("_gather"), conv.c_in == 3, "{label}: {sym} for c_in {}", conv.c_in);
                }
                Step::GemmTf32 { gemm, .. } => {
                    gemm_steps += 1;
                    assert!(tensorcore::gemm_symbol(DType::F32, gemm).starts_with("gemm_tf32"), "{label}");
                }
                Step::ConvTc { .. } | Step::GemmTc { .. } | Step::ConvDw { .. } | Step::GemmSimt { .. } => {
                    panic!("{label}: {:?} in a tf32 plan", l.step)
                }
                Step::ConvSimt { conv, .. } => assert!(conv.groups > 1, "{label}: a dense SIMT conv"),
                _ => {}
            }
        }
        assert_eq!((conv_steps, gemm_steps), (dense, linear), "{label}");
        // ResNet-50 has no grouped conv: no SIMT conv at all.
        if label.starts_with("resnet50") {
            assert!(!bp.launches.iter().any(|l| matches!(l.step, Step::ConvSimt { .. })), "{label}");
        }
    }
}

#[test]
fn spatial_flatten_linear_gets_nhwc_weights_in_tf32() {
    // As the f16 case: conv -> [2, 8, 3, 3] -> flatten -> linear, here on f32 weights.
    let (mut b, x) = Builder::new("flat", [2, 3, 5, 5]);
    let c = b.conv(x, "conv", 8, Conv2d::new(0, 0, 0, 0, 0, 3, 3), true).unwrap();
    let r = b.act(c, "relu", Act::Relu).unwrap();
    let f = b.flatten(r, "flatten");
    let l = b.linear(f, "fc", 10, true).unwrap();
    let g = b.finish(l).unwrap();
    let w = Weights::seeded(&g, 3);
    let fc = w.get("fc.weight").unwrap();
    let perm = permute_linear_nhwc(fc, 10, [8, 3, 3]).unwrap();
    let input = seeded_input([2, 3, 5, 5], 3);
    let want = exec_cpu::run(&g, &w, &input).unwrap();
    // The tensor-core GEMM and a SIMT override (which reads the NHWC f32 data directly).
    for opts in [ExecOptions::tf32(), ExecOptions::tf32().with_variants("gemm=gemv").unwrap()] {
        let mut bp = blueprint(&g, &w, &opts, 132).unwrap();
        let wi = bp
            .launches
            .iter()
            .find_map(|l| match l.step {
                Step::GemmTf32 { w, .. } | Step::GemmSimt { w, .. } => Some(w),
                _ => None,
            })
            .expect("a gemm step");
        assert_eq!(bp.w32[wi], perm, "{:?}", opts.variants);
        let rel = rel_l2(&emulate(&bp, &input).unwrap(), &want).unwrap();
        assert!(rel < 5e-3, "{rel}");
        // Without the permutation the answer is wrong: the check has teeth.
        bp.w32[wi] = fc.to_vec();
        let rel = rel_l2(&emulate(&bp, &input).unwrap(), &want).unwrap();
        assert!(rel > 0.05, "{rel}");
    }
    // The first (3-channel) conv reads the transposed, unpadded input.
    let bp = blueprint(&g, &w, &ExecOptions::tf32(), 132).unwrap();
    let Step::Transpose { dims, to: Layout::Nhwc, .. } = bp.launches[0].step else {
        panic!("first launch: {:?}", bp.launches[0].step)
    };
    assert_eq!(dims, [2, 3, 5, 5]);
    assert!(matches!(bp.launches[1].step, Step::ConvTf32 { conv, .. } if conv.c_in == 3));
}

#[test]
fn tf32_concat_runs_over_pixels_and_matches_the_reference() {
    // Two branches of different widths concatenated: each part is a pixel-major copy.
    let (mut b, x) = Builder::new("cat", [2, 4, 3, 5]);
    let c1 = b.conv(x, "c1", 3, Conv2d::new(0, 0, 0, 0, 0, 1, 1), true).unwrap();
    let c2 = b.conv(x, "c2", 5, Conv2d::new(0, 0, 0, 0, 0, 3, 3).with_pad(1, 1), true).unwrap();
    let cat = b.concat(&[c1, c2], "cat").unwrap();
    let g = b.finish(cat).unwrap();
    let w = Weights::seeded(&g, 4);
    let bp = blueprint(&g, &w, &ExecOptions::tf32(), 132).unwrap();
    let parts: Vec<(usize, usize, usize, usize, usize)> = bp
        .launches
        .iter()
        .filter_map(|l| match l.step {
            Step::ConcatPart { n, c, hw, c_total, offset, .. } => Some((n, c, hw, c_total, offset)),
            _ => None,
        })
        .collect();
    assert_eq!(parts, vec![(2 * 15, 3, 1, 8, 0), (2 * 15, 5, 1, 8, 3)]);
    let input = seeded_input([2, 4, 3, 5], 4);
    let want = exec_cpu::run(&g, &w, &input).unwrap();
    let rel = rel_l2(&emulate(&bp, &input).unwrap(), &want).unwrap();
    assert!(rel < 5e-3, "{rel}");
}
