//! ONNX import: every supported op and attribute form on models built here with the prost
//! messages, numeric checks through the CPU references, error messages, fixtures, a
//! round trip of the six built-in models, and no panics on arbitrary bytes.

use std::collections::HashMap;
use std::path::PathBuf;

use cnnergy_host::graph::{Graph, Node, Op};
use cnnergy_host::models;
use cnnergy_host::onnx::proto::{data_type, ValueInfoProto};
use cnnergy_host::onnx::proto::{AttributeProto as A, Dim, GraphProto, ModelProto, NodeProto, TensorProto};
use cnnergy_host::onnx::{self, ExportWeights, ImportOptions, OnnxError};
use cnnergy_host::ops::{Act, Conv2d, Gemm, Layout, PoolKind};
use cnnergy_host::reference;
use cnnergy_host::weights::Weights;
use proptest::prelude::*;

// ---- Helpers ---------------------------------------------------------------------------

/// Input "x", float32, with `shape`.
fn input(shape: &[Dim]) -> ValueInfoProto {
    ValueInfoProto::tensor("x", data_type::FLOAT, shape)
}

fn fixed(shape: &[usize]) -> ValueInfoProto {
    ValueInfoProto::f32("x", shape)
}

fn model_at(opset: i64, x: ValueInfoProto, nodes: Vec<NodeProto>, inits: Vec<TensorProto>, out: &str) -> ModelProto {
    let graph = GraphProto {
        name: "test".into(),
        node: nodes,
        initializer: inits,
        input: vec![x],
        output: vec![ValueInfoProto { name: out.into(), ..Default::default() }],
        ..Default::default()
    };
    ModelProto::new(graph, opset)
}

fn model(x: ValueInfoProto, nodes: Vec<NodeProto>, inits: Vec<TensorProto>, out: &str) -> Vec<u8> {
    model_at(17, x, nodes, inits, out).to_bytes()
}

fn import(bytes: &[u8]) -> (Graph, Weights) {
    onnx::import_bytes(bytes, None).unwrap_or_else(|e| panic!("import failed: {e}"))
}

fn import_err(bytes: &[u8]) -> String {
    let e = onnx::import_bytes(bytes, None).expect_err("import should fail");
    let s = e.to_string();
    assert!(!s.contains('\n'), "multi-line error: {s}");
    s
}

fn node<'a>(g: &'a Graph, name: &str) -> &'a Node {
    g.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node '{name}' in {:?}", names(g)))
}

fn names(g: &Graph) -> Vec<&str> {
    g.nodes.iter().map(|n| n.name.as_str()).collect()
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.nodes.iter().map(|n| n.op.op_name()).collect()
}

fn out_dims(g: &Graph, name: &str) -> [usize; 4] {
    g.tensors[node(g, name).output].dims
}

fn w(ws: &Weights, name: &str) -> Vec<f32> {
    ws.get(name).unwrap_or_else(|| panic!("no weight '{name}'")).to_vec()
}

/// Distinct small values.
fn vals(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 + 3) % 11) as f32 * 0.25 - 1.0 + k).collect()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "element {i}: got {g}, want {w}");
    }
}

fn as_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

// ---- Conv ------------------------------------------------------------------------------

#[test]
fn conv_pads_strides_dilations_groups_bias() {
    let (wt, bt) = (vals(6 * 2 * 3 * 3, 0.0), vals(6, 0.5));
    let conv = NodeProto::new("Conv", "conv1", &["x", "conv1.w", "conv1.b"], &["y"])
        .with(A::ints("kernel_shape", &[3, 3]))
        .with(A::ints("pads", &[1, 0, 2, 1]))
        .with(A::ints("strides", &[2, 1]))
        .with(A::ints("dilations", &[1, 2]))
        .with(A::int("group", 2));
    let bytes = model(
        fixed(&[1, 4, 9, 9]),
        vec![conv],
        vec![TensorProto::f32_raw("conv1.w", &[6, 2, 3, 3], &wt), TensorProto::f32_typed("conv1.b", &[6], &bt)],
        "y",
    );
    let (g, ws) = import(&bytes);
    assert_eq!(g.name, "test");
    let n = node(&g, "conv1");
    let Op::Conv { conv, epi } = &n.op else { panic!("{:?}", n.op) };
    assert!(epi.bias);
    let want =
        Conv2d::new(1, 4, 9, 9, 6, 3, 3).with_pads(1, 0, 2, 1).with_stride(2, 1).with_dilation(1, 2).with_groups(2);
    assert_eq!(*conv, want);
    // h: (9 + 1 + 2 - 3)/2 + 1 = 5; w: (9 + 0 + 1 - 5)/1 + 1 = 6.
    assert_eq!(out_dims(&g, "conv1"), [1, 6, 5, 6]);
    assert_eq!(
        n.weights.iter().map(|w| (w.name.as_str(), w.shape.clone())).collect::<Vec<_>>(),
        [("conv1.weight", vec![6, 2, 3, 3]), ("conv1.bias", vec![6])]
    );
    assert_eq!(w(&ws, "conv1.weight"), wt);
    assert_eq!(w(&ws, "conv1.bias"), bt);
    assert_eq!(ws.len(), 2);
}

#[test]
fn conv_auto_pad_forms() {
    let conv_with = |auto: &str, k: usize, s: i64| {
        let conv = NodeProto::new("Conv", "c", &["x", "w"], &["y"])
            .with(A::string("auto_pad", auto))
            .with(A::ints("strides", &[s, s]));
        let bytes = model(
            fixed(&[1, 1, 7, 7]),
            vec![conv],
            vec![TensorProto::f32_raw("w", &[1, 1, k, k], &vals(k * k, 0.0))],
            "y",
        );
        let (g, _) = import(&bytes);
        let Op::Conv { conv, .. } = node(&g, "c").op else { panic!() };
        ((conv.pad_t, conv.pad_l, conv.pad_b, conv.pad_r), out_dims(&g, "c"))
    };
    // k2 s1: total pad (7-1)*1 + 2 - 7 = 1; UPPER puts it at the end, LOWER at the start.
    assert_eq!(conv_with("SAME_UPPER", 2, 1), ((0, 0, 1, 1), [1, 1, 7, 7]));
    assert_eq!(conv_with("SAME_LOWER", 2, 1), ((1, 1, 0, 0), [1, 1, 7, 7]));
    // k3 s2: out = ceil(7/2) = 4, total (4-1)*2 + 3 - 7 = 2 -> 1 each side.
    assert_eq!(conv_with("SAME_UPPER", 3, 2), ((1, 1, 1, 1), [1, 1, 4, 4]));
    assert_eq!(conv_with("VALID", 3, 2), ((0, 0, 0, 0), [1, 1, 3, 3]));
    assert_eq!(conv_with("NOTSET", 3, 1), ((0, 0, 0, 0), [1, 1, 5, 5]));
}

#[test]
fn conv_plus_constant_add_folds_into_bias() {
    // Conv without bias, then Add of a [1, C, 1, 1] Constant: the Add becomes the bias.
    let k = TensorProto::f32_raw("", &[1, 2, 1, 1], &[10.0, 20.0]);
    let nodes = vec![
        NodeProto::new("Constant", "k", &[], &["kval"]).with(A::tensor("value", k)),
        NodeProto::new("Conv", "conv", &["x", "w"], &["c"]),
        NodeProto::new("Add", "bias_add", &["c", "kval"], &["y"]),
        NodeProto::new("Relu", "relu", &["y"], &["z"]),
    ];
    let bytes = model(fixed(&[1, 1, 2, 2]), nodes, vec![TensorProto::f32_raw("w", &[2, 1, 1, 1], &[1.0, 2.0])], "z");
    let (g, ws) = import(&bytes);
    assert_eq!(names(&g), ["conv", "relu"]);
    let Op::Conv { epi, .. } = node(&g, "conv").op else { panic!() };
    assert!(epi.bias);
    assert_eq!(w(&ws, "conv.bias"), [10.0, 20.0]);
    // Conv with its own bias plus a scalar Add: the sum.
    let nodes =
        vec![NodeProto::new("Conv", "conv", &["x", "w", "b"], &["c"]), NodeProto::new("Add", "a", &["k", "c"], &["y"])];
    let inits = vec![
        TensorProto::f32_raw("w", &[2, 1, 1, 1], &[1.0, 2.0]),
        TensorProto::f32_raw("b", &[2], &[1.0, 2.0]),
        TensorProto::f32_raw("k", &[], &[0.5]),
    ];
    let (g, ws) = import(&model(fixed(&[1, 1, 2, 2]), nodes, inits, "y"));
    assert_eq!(names(&g), ["conv"]);
    assert_eq!(w(&ws, "conv.bias"), [1.5, 2.5]);
}

// ---- Gemm / MatMul ------------------------------------------------------------------------

#[test]
fn gemm_trans_b_alpha_beta_forms() {
    // transB=0: B is [K=3, N=4]; the layer's weight is 2 * Bᵀ, its bias 0.5 * C.
    let b: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let c = vals(4, 0.0);
    let gemm = NodeProto::new("Gemm", "fc", &["x", "B", "C"], &["y"])
        .with(A::float("alpha", 2.0))
        .with(A::float("beta", 0.5))
        .with(A::int("transB", 0));
    let bytes = model(
        fixed(&[2, 3]),
        vec![gemm],
        vec![TensorProto::f32_raw("B", &[3, 4], &b), TensorProto::f32_raw("C", &[4], &c)],
        "y",
    );
    let (g, ws) = import(&bytes);
    let n = node(&g, "fc");
    assert_eq!(n.op, Op::Linear { gemm: Gemm::linear(2, 3, 4, true), bias: true, act: Act::None });
    assert_eq!(g.tensors[g.input].dims, [2, 3, 1, 1]);
    assert_eq!(out_dims(&g, "fc"), [2, 4, 1, 1]);
    // Bᵀ row j = column j of B = [j, 4 + j, 8 + j], doubled.
    let wt: Vec<f32> = (0..4).flat_map(|j| [0, 4, 8].map(|r| 2.0 * (r + j) as f32)).collect();
    assert_eq!(w(&ws, "fc.weight"), wt);
    assert_eq!(w(&ws, "fc.bias"), c.iter().map(|v| v * 0.5).collect::<Vec<_>>());

    // transB=1 (torchvision's Linear), C as [1, N], float16 B, typed-field C.
    let b16 = [0.5f32, -1.0, 2.0, 0.25, 1.5, -0.75];
    let gemm = NodeProto::new("Gemm", "fc", &["x", "B", "C"], &["y"]).with(A::int("transB", 1));
    let bytes = model(
        fixed(&[1, 3]),
        vec![gemm],
        vec![TensorProto::f16_raw("B", &[2, 3], &b16), TensorProto::f32_typed("C", &[1, 2], &[1.0, 2.0])],
        "y",
    );
    let (g, ws) = import(&bytes);
    assert_eq!(out_dims(&g, "fc"), [1, 2, 1, 1]);
    assert_eq!(w(&ws, "fc.weight"), b16);
    assert_eq!(w(&ws, "fc.bias"), [1.0, 2.0]);

    // No C; scalar C is broadcast.
    let gemm = NodeProto::new("Gemm", "fc", &["x", "B"], &["y"]).with(A::int("transB", 1));
    let (g, ws) = import(&model(fixed(&[1, 3]), vec![gemm], vec![TensorProto::f32_raw("B", &[2, 3], &b16)], "y"));
    assert_eq!(node(&g, "fc").weights.len(), 1);
    assert_eq!(ws.len(), 1);
    let gemm = NodeProto::new("Gemm", "fc", &["x", "B", "C"], &["y"]).with(A::int("transB", 1));
    let inits = vec![TensorProto::f32_raw("B", &[2, 3], &b16), TensorProto::f32_raw("C", &[], &[3.0])];
    let (_, ws) = import(&model(fixed(&[1, 3]), vec![gemm], inits, "y"));
    assert_eq!(w(&ws, "fc.bias"), [3.0, 3.0]);
}

#[test]
fn matmul_with_constant_b_and_bias_add_is_one_linear_layer() {
    // The dynamo exporter's Linear: Transpose(W) of an initializer, MatMul, Add(bias).
    let wt = vals(3 * 4, 0.0); // torch weight [out=3, in=4]
    let nodes = vec![
        NodeProto::new("Flatten", "flatten", &["x"], &["f"]).with(A::int("axis", 1)),
        NodeProto::new("Transpose", "t", &["fc.weight"], &["wT"]).with(A::ints("perm", &[1, 0])),
        NodeProto::new("MatMul", "matmul", &["f", "wT"], &["mm"]),
        NodeProto::new("Add", "add", &["mm", "fc.bias"], &["y"]),
    ];
    let inits =
        vec![TensorProto::f32_raw("fc.weight", &[3, 4], &wt), TensorProto::f32_raw("fc.bias", &[3], &[1.0, 2.0, 3.0])];
    let (g, ws) = import(&model(fixed(&[1, 1, 2, 2]), nodes, inits, "y"));
    assert_eq!(ops(&g), ["Flatten", "Gemm"]);
    assert_eq!(names(&g), ["flatten", "matmul"]);
    assert_eq!(out_dims(&g, "matmul"), [1, 3, 1, 1]);
    // Transposed twice: the torch weight again.
    assert_eq!(w(&ws, "matmul.weight"), wt);
    assert_eq!(w(&ws, "matmul.bias"), [1.0, 2.0, 3.0]);

    // MatMul alone: no bias, B [4, 3] transposed to [3, 4].
    let b: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let nodes = vec![NodeProto::new("MatMul", "mm", &["x", "B"], &["y"])];
    let (g, ws) = import(&model(fixed(&[2, 4]), nodes, vec![TensorProto::f32_raw("B", &[4, 3], &b)], "y"));
    assert_eq!(node(&g, "mm").op, Op::Linear { gemm: Gemm::linear(2, 4, 3, false), bias: false, act: Act::None });
    assert_eq!(w(&ws, "mm.weight"), [0., 3., 6., 9., 1., 4., 7., 10., 2., 5., 8., 11.]);
}

// ---- Pooling -----------------------------------------------------------------------------

#[test]
fn pool_attribute_forms() {
    let pool = |n: NodeProto, hw: usize| {
        let (g, _) = import(&model(fixed(&[1, 2, hw, hw]), vec![n], vec![], "y"));
        let Op::Pool(p) = node(&g, "p").op else { panic!("{:?}", ops(&g)) };
        (p, out_dims(&g, "p"))
    };
    // MaxPool k3 s2 ceil_mode: 6 -> ceil(3/2)+1 = 3 (floor would give 2).
    let mp = NodeProto::new("MaxPool", "p", &["x"], &["y"])
        .with(A::ints("kernel_shape", &[3, 3]))
        .with(A::ints("strides", &[2, 2]))
        .with(A::int("ceil_mode", 1));
    let (p, d) = pool(mp, 6);
    assert_eq!((p.kind, p.ceil_mode, d), (PoolKind::Max, true, [1, 2, 3, 3]));
    // Max pool with dilation and pads.
    let mp = NodeProto::new("MaxPool", "p", &["x"], &["y"])
        .with(A::ints("kernel_shape", &[2, 2]))
        .with(A::ints("dilations", &[2, 2]))
        .with(A::ints("pads", &[1, 1, 1, 1]));
    let (p, d) = pool(mp, 5);
    assert_eq!((p.dil_h, p.pad_b, d), (2, 1, [1, 2, 5, 5]));
    // AveragePool count_include_pad on and off (off is the default).
    for cip in [None, Some(0), Some(1)] {
        let mut ap = NodeProto::new("AveragePool", "p", &["x"], &["y"])
            .with(A::ints("kernel_shape", &[3, 3]))
            .with(A::ints("strides", &[1, 1]))
            .with(A::ints("pads", &[1, 1, 1, 1]));
        if let Some(v) = cip {
            ap = ap.with(A::int("count_include_pad", v));
        }
        let (p, d) = pool(ap, 4);
        assert_eq!((p.kind, p.count_include_pad, d), (PoolKind::Avg, cip == Some(1), [1, 2, 4, 4]));
    }
    // auto_pad SAME_UPPER on a pool: out = ceil(5/2) = 3, total (3-1)*2 + 2 - 5 = 1 at the end.
    let ap = NodeProto::new("AveragePool", "p", &["x"], &["y"])
        .with(A::ints("kernel_shape", &[2, 2]))
        .with(A::ints("strides", &[2, 2]))
        .with(A::string("auto_pad", "SAME_UPPER"));
    let (p, d) = pool(ap, 5);
    assert_eq!(((p.pad_t, p.pad_b), d), ((0, 1), [1, 2, 3, 3]));
    // Global pools.
    let (p, d) = pool(NodeProto::new("GlobalAveragePool", "p", &["x"], &["y"]), 5);
    assert_eq!((p.kind, d), (PoolKind::GlobalAvg, [1, 2, 1, 1]));
    let (p, d) = pool(NodeProto::new("GlobalMaxPool", "p", &["x"], &["y"]), 5);
    assert_eq!((p.kind, p.kh, p.kw, d), (PoolKind::Max, 5, 5, [1, 2, 1, 1]));
    // A 1x1 stride-1 average pool (AdaptiveAvgPool2d to the same size) is an identity.
    let ap = NodeProto::new("AveragePool", "p", &["x"], &["y"]).with(A::ints("kernel_shape", &[1, 1]));
    let (g, _) = import(&model(fixed(&[1, 2, 6, 6]), vec![ap], vec![], "y"));
    assert_eq!(ops(&g), ["Identity"]);
}

// ---- Activations -------------------------------------------------------------------------

#[test]
fn clip_attribute_and_input_forms() {
    let clip_act = |m: ModelProto| {
        let (g, ws) = import(&m.to_bytes());
        assert!(ws.is_empty(), "clip bounds are not weights");
        let Op::Act(a) = node(&g, "clip").op else { panic!() };
        a
    };
    // Opset 6: attributes.
    let n = NodeProto::new("Clip", "clip", &["x"], &["y"]).with(A::float("min", 0.0)).with(A::float("max", 6.0));
    assert_eq!(clip_act(model_at(6, fixed(&[1, 2, 2, 2]), vec![n], vec![], "y")), Act::RELU6);
    // Opset 13: initializer inputs.
    let n = NodeProto::new("Clip", "clip", &["x", "lo", "hi"], &["y"]);
    let inits = vec![TensorProto::f32_raw("lo", &[], &[-1.0]), TensorProto::f32_raw("hi", &[], &[1.0])];
    assert_eq!(clip_act(model_at(13, fixed(&[1, 2, 2, 2]), vec![n], inits, "y")), Act::Clip { min: -1.0, max: 1.0 });
    // Opset 17: Constant-node inputs, max omitted ("") -> +inf.
    let nodes = vec![
        NodeProto::new("Constant", "c0", &[], &["zero"]).with(A::float("value_float", 0.0)),
        NodeProto::new("Clip", "clip", &["x", "zero", ""], &["y"]),
    ];
    assert_eq!(
        clip_act(model_at(17, fixed(&[1, 2, 2, 2]), nodes, vec![], "y")),
        Act::Clip { min: 0.0, max: f32::INFINITY }
    );
    // Relu, Sigmoid, Tanh.
    for (op, act) in [("Relu", Act::Relu), ("Sigmoid", Act::Sigmoid), ("Tanh", Act::Tanh)] {
        let (g, _) = import(&model(fixed(&[1, 3]), vec![NodeProto::new(op, "a", &["x"], &["y"])], vec![], "y"));
        assert_eq!(node(&g, "a").op, Op::Act(act));
    }
}

#[test]
fn add_of_activations_fuses_its_only_reader_activation() {
    let nodes = vec![
        NodeProto::new("Relu", "r", &["x"], &["a"]),
        NodeProto::new("Add", "add", &["a", "x"], &["s"]),
        NodeProto::new("Relu", "add_relu", &["s"], &["y"]),
    ];
    let (g, _) = import(&model(fixed(&[1, 2, 3, 3]), nodes, vec![], "y"));
    assert_eq!(names(&g), ["r", "add"]);
    assert_eq!(node(&g, "add").op, Op::Add { act: Act::Relu });
    assert_eq!(g.output, node(&g, "add").output);
    // The sum read twice: no fusion.
    let nodes = vec![
        NodeProto::new("Add", "add", &["x", "x"], &["s"]),
        NodeProto::new("Relu", "relu", &["s"], &["r"]),
        NodeProto::new("Add", "add2", &["r", "s"], &["y"]),
    ];
    let (g, _) = import(&model(fixed(&[1, 2, 3, 3]), nodes, vec![], "y"));
    assert_eq!(ops(&g), ["Add", "Relu", "Add"]);
    assert_eq!(node(&g, "add").op, Op::Add { act: Act::None });
}

// ---- Shape ops -----------------------------------------------------------------------------

#[test]
fn reduce_mean_keepdims_and_axes_forms() {
    // keepdims=1 (default), axes attribute (opset 17), negative axes.
    let n = NodeProto::new("ReduceMean", "gap", &["x"], &["y"]).with(A::ints("axes", &[-1, -2]));
    let (g, _) = import(&model(fixed(&[2, 8, 5, 5]), vec![n], vec![], "y"));
    assert_eq!(ops(&g), ["GlobalAveragePool"]);
    assert_eq!(out_dims(&g, "gap"), [2, 8, 1, 1]);
    // keepdims=0: pool + flatten, so a Gemm can follow.
    let nodes = vec![
        NodeProto::new("ReduceMean", "gap", &["x"], &["p"]).with(A::ints("axes", &[2, 3])).with(A::int("keepdims", 0)),
        NodeProto::new("Gemm", "fc", &["p", "W"], &["y"]).with(A::int("transB", 1)),
    ];
    let (g, _) =
        import(&model(fixed(&[2, 8, 5, 5]), nodes, vec![TensorProto::f32_raw("W", &[3, 8], &vals(24, 0.0))], "y"));
    assert_eq!(names(&g), ["gap", "gap.flatten", "fc"]);
    assert_eq!(ops(&g), ["GlobalAveragePool", "Flatten", "Gemm"]);
    assert_eq!(out_dims(&g, "fc"), [2, 3, 1, 1]);
    // Opset 18: axes as an input.
    let n = NodeProto::new("ReduceMean", "gap", &["x", "axes"], &["y"]).with(A::int("keepdims", 0));
    let m = model_at(18, fixed(&[1, 4, 3, 3]), vec![n], vec![TensorProto::i64("axes", &[2], &[2, 3])], "y");
    let (g, _) = import(&m.to_bytes());
    assert_eq!(ops(&g), ["GlobalAveragePool", "Flatten"]);
    // Other axes are unsupported.
    let n = NodeProto::new("ReduceMean", "rm", &["x"], &["y"]).with(A::ints("axes", &[1]));
    let e = import_err(&model(fixed(&[1, 4, 3, 3]), vec![n], vec![], "y"));
    assert!(e.starts_with("ReduceMean node 'rm': axes=[1] unsupported; only the spatial axes"), "{e}");
}

#[test]
fn reshape_with_constant_shape_and_flatten() {
    let reshape = |shape: &[i64], batch: Option<usize>| {
        let nodes = vec![
            NodeProto::new("Constant", "shape", &[], &["s"])
                .with(A::tensor("value", TensorProto::i64("", &[shape.len()], shape))),
            NodeProto::new("Reshape", "r", &["x", "s"], &["y"]),
        ];
        onnx::import_bytes(&model(fixed(&[1, 3, 4, 4]), nodes, vec![], "y"), batch)
    };
    for shape in [&[1, -1][..], &[0, -1], &[-1, 48], &[1, 48]] {
        let (g, _) = reshape(shape, None).unwrap();
        assert_eq!((ops(&g), out_dims(&g, "r")), (vec!["Flatten"], [1, 48, 1, 1]), "{shape:?}");
    }
    // The file's fixed batch 1 spelled in the shape follows a batch override.
    let (g, _) = reshape(&[1, 48], Some(4)).unwrap();
    assert_eq!(out_dims(&g, "r"), [4, 48, 1, 1]);
    // A no-op reshape is an identity; anything else is unsupported.
    let (g, _) = reshape(&[1, 3, 4, 4], None).unwrap();
    assert_eq!(ops(&g), ["Identity"]);
    let e = reshape(&[1, 3, 16], None).unwrap_err().to_string();
    assert_eq!(
        e,
        "Reshape node 'r': shape=[1, 3, 16] (input [1, 3, 4, 4]) unsupported; only flattening to [N, C*H*W] or a no-op reshape"
    );
    // Flatten with axis 1 and -3.
    for axis in [1, -3] {
        let n = NodeProto::new("Flatten", "f", &["x"], &["y"]).with(A::int("axis", axis));
        let (g, _) = import(&model(fixed(&[2, 3, 4, 4]), vec![n], vec![], "y"));
        assert_eq!(out_dims(&g, "f"), [2, 48, 1, 1]);
    }
    let n = NodeProto::new("Flatten", "f", &["x"], &["y"]).with(A::int("axis", 2));
    assert_eq!(
        import_err(&model(fixed(&[2, 3, 4, 4]), vec![n], vec![], "y")),
        "Flatten node 'f': axis=2 unsupported; only axis 1 ([N, C*H*W])"
    );
}

#[test]
fn concat_lrn_bn_dropout_identity_softmax() {
    let nodes = vec![
        NodeProto::new("Conv", "a", &["x", "wa"], &["ya"]),
        NodeProto::new("Conv", "b", &["x", "wb"], &["yb"]),
        NodeProto::new("Concat", "cat", &["ya", "yb"], &["c"]).with(A::int("axis", 1)),
        NodeProto::new("LRN", "lrn", &["c"], &["l"])
            .with(A::int("size", 3))
            .with(A::float("alpha", 2e-4))
            .with(A::float("beta", 0.5))
            .with(A::float("bias", 2.0)),
        NodeProto::new("BatchNormalization", "bn", &["l", "g", "be", "m", "v"], &["n"]).with(A::float("epsilon", 1e-3)),
        NodeProto::new("Dropout", "drop", &["n"], &["d", "mask"]),
        NodeProto::new("Flatten", "flat", &["d"], &["f"]),
        NodeProto::new("Identity", "id", &["f"], &["i"]),
        NodeProto::new("Softmax", "sm", &["i"], &["y"]),
    ];
    let inits = vec![
        TensorProto::f32_raw("wa", &[2, 3, 1, 1], &vals(6, 0.0)),
        TensorProto::f32_raw("wb", &[3, 3, 1, 1], &vals(9, 1.0)),
        TensorProto::f32_raw("g", &[5], &[1., 2., 3., 4., 5.]),
        TensorProto::f32_raw("be", &[5], &[0.; 5]),
        TensorProto::f32_raw("m", &[5], &[0.; 5]),
        TensorProto::f32_raw("v", &[5], &[1.; 5]),
    ];
    let (g, ws) = import(&model(input(&["N".into(), 3.into(), 4.into(), 4.into()]), nodes, inits, "y"));
    assert_eq!(
        ops(&g),
        ["Conv", "Conv", "Concat", "LRN", "BatchNormalization", "Identity", "Flatten", "Identity", "Softmax"]
    );
    assert_eq!(out_dims(&g, "cat"), [1, 5, 4, 4]);
    let Op::Lrn(l) = node(&g, "lrn").op else { panic!() };
    assert_eq!((l.size, l.alpha, l.beta, l.bias), (3, 2e-4, 0.5, 2.0));
    let Op::BatchNorm(bn) = node(&g, "bn").op else { panic!() };
    assert_eq!(bn.eps, 1e-3);
    let bn_names: Vec<_> = node(&g, "bn").weights.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(bn_names, ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]);
    assert_eq!(w(&ws, "bn.weight"), [1., 2., 3., 4., 5.]);
    let Op::Softmax(s) = node(&g, "sm").op else { panic!() };
    assert_eq!((s.outer, s.len, s.inner), (1, 80, 1));
    assert_eq!(g.tensors[g.output].dims, [1, 80, 1, 1]);
    assert_eq!(ws.len(), 2 + 4);
}

#[test]
fn input_batch_dimension_and_naming() {
    let relu = || vec![NodeProto::new("Relu", "", &["x"], &["y"])];
    let dims = |x: ValueInfoProto, batch| {
        let (g, _) = onnx::import_bytes(&model(x, relu(), vec![], "y"), batch).unwrap();
        g.tensors[g.input].dims
    };
    assert_eq!(dims(input(&["batch".into(), 3.into(), 5.into(), 5.into()]), None), [1, 3, 5, 5]);
    assert_eq!(dims(input(&["batch".into(), 3.into(), 5.into(), 5.into()]), Some(3)), [3, 3, 5, 5]);
    assert_eq!(dims(fixed(&[2, 3, 5, 5]), None), [2, 3, 5, 5]);
    assert_eq!(dims(fixed(&[2, 3, 5, 5]), Some(5)), [5, 3, 5, 5]);
    assert_eq!(dims(input(&[Dim::Fixed(0), 3.into(), 5.into(), 5.into()]), None), [1, 3, 5, 5]);
    // Unnamed and duplicate node names become {op_type}_{index}.
    let nodes = vec![
        NodeProto::new("Relu", "", &["x"], &["a"]),
        NodeProto::new("Relu", "dup", &["a"], &["b"]),
        NodeProto::new("Relu", "dup", &["b"], &["c"]),
        NodeProto::new("Relu", "Relu_0", &["c"], &["y"]),
    ];
    let (g, _) = import(&model(fixed(&[1, 2]), nodes, vec![], "y"));
    assert_eq!(names(&g), ["Relu_0_1", "Relu_1", "Relu_2", "Relu_0"]);
    // An initializer also listed as a graph input (IR < 4) is not the input.
    let mut m = model_at(9, fixed(&[1, 3]), vec![NodeProto::new("MatMul", "mm", &["x", "B"], &["y"])], vec![], "y");
    let gr = m.graph.as_mut().unwrap();
    gr.initializer.push(TensorProto::f32_raw("B", &[3, 2], &vals(6, 0.0)));
    gr.input.insert(0, ValueInfoProto::f32("B", &[3, 2]));
    let (g, _) = import(&m.to_bytes());
    assert_eq!(g.tensors[g.input].dims, [1, 3, 1, 1]);
    // A file's stem names the graph.
    let dir = std::env::temp_dir().join(format!("cnnergy-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny_relu.onnx");
    std::fs::write(&path, model(fixed(&[1, 2]), relu(), vec![], "y")).unwrap();
    let (g, _) = onnx::import(&path, None).unwrap();
    assert_eq!(g.name, "tiny_relu");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- Numerics through the CPU references ----------------------------------------------------

#[test]
fn numeric_conv_bias_relu_maxpool_by_hand() {
    // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]], bias -40.
    // conv: 1*x00+2*x01+3*x10+4*x11 -> 37, 47, 67, 77; +bias -> -3, 7, 27, 37;
    // relu -> 0, 7, 27, 37; max pool 2x2 -> 37; global average (0+7+27+37)/4 = 17.75.
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let nodes = vec![
        NodeProto::new("Conv", "conv", &["x", "w", "b"], &["c"]).with(A::ints("kernel_shape", &[2, 2])),
        NodeProto::new("Relu", "relu", &["c"], &["r"]),
        NodeProto::new("MaxPool", "pool", &["r"], &["y"]).with(A::ints("kernel_shape", &[2, 2])),
    ];
    let inits =
        vec![TensorProto::f32_raw("w", &[1, 1, 2, 2], &[1., 2., 3., 4.]), TensorProto::f32_raw("b", &[1], &[-40.0])];
    let (g, ws) = import(&model(fixed(&[1, 1, 3, 3]), nodes, inits, "y"));
    let Op::Conv { conv, .. } = node(&g, "conv").op else { panic!() };
    let bias = w(&ws, "conv.bias");
    let epi = reference::EpilogueArgs { bias: Some(&bias), ..Default::default() };
    let c = reference::conv2d(&conv, Layout::Nchw, &x, &w(&ws, "conv.weight"), &epi).unwrap();
    assert_close(&c, &[-3., 7., 27., 37.]);
    let Op::Act(a) = node(&g, "relu").op else { panic!() };
    let r = reference::activation(a, &as_f32(&c)).unwrap();
    assert_close(&r, &[0., 7., 27., 37.]);
    let Op::Pool(p) = node(&g, "pool").op else { panic!() };
    assert_close(&reference::pool2d(&p, Layout::Nchw, &as_f32(&r)).unwrap(), &[37.]);
    let gap = cnnergy_host::ops::Pool2d::global_avg(1, 1, 2, 2);
    assert_close(&reference::pool2d(&gap, Layout::Nchw, &as_f32(&r)).unwrap(), &[17.75]);
}

#[test]
fn numeric_gemm_trans_b0_alpha_beta_by_hand() {
    // Y = 2 * x B + 0.5 * C, x = [1, 2, 3], B = [[1,0],[0,1],[1,1]], C = [10, 20]:
    // x B = [1 + 3, 2 + 3] = [4, 5]; Y = [8 + 5, 10 + 10] = [13, 20].
    let gemm =
        NodeProto::new("Gemm", "fc", &["x", "B", "C"], &["y"]).with(A::float("alpha", 2.0)).with(A::float("beta", 0.5));
    let inits = vec![
        TensorProto::f32_raw("B", &[3, 2], &[1., 0., 0., 1., 1., 1.]),
        TensorProto::f32_raw("C", &[2], &[10., 20.]),
    ];
    let (g, ws) = import(&model(fixed(&[1, 3]), vec![gemm], inits, "y"));
    let Op::Linear { gemm, .. } = node(&g, "fc").op else { panic!() };
    let y = reference::gemm(&gemm, &[1., 2., 3.], &w(&ws, "fc.weight"), Some(&w(&ws, "fc.bias"))).unwrap();
    assert_close(&y, &[13., 20.]);
}

#[test]
fn numeric_bn_add_concat_by_hand() {
    // x: channel 0 = [1, 2], channel 1 = [3, 4] (1x2x1x2). BN with eps 0 (an explicit
    // zero attribute), scale [2, 1], B [0, 1], mean [1, 3], var [4, 1]:
    // ch0 (x-1)/2*2 = [0, 1]; ch1 (x-3)/1*1 + 1 = [1, 2]. Add x: [1, 3, 4, 6].
    // Concat(sum, x) along channels: [1, 3, 4, 6, 1, 2, 3, 4].
    let x = [1f32, 2., 3., 4.];
    let nodes = vec![
        NodeProto::new("BatchNormalization", "bn", &["x", "s", "b", "m", "v"], &["n"]).with(A::float("epsilon", 0.0)),
        NodeProto::new("Add", "add", &["n", "x"], &["a"]),
        NodeProto::new("Concat", "cat", &["a", "x"], &["y"]).with(A::int("axis", -3)),
    ];
    let inits = vec![
        TensorProto::f32_raw("s", &[2], &[2., 1.]),
        TensorProto::f32_raw("b", &[2], &[0., 1.]),
        TensorProto::f32_raw("m", &[2], &[1., 3.]),
        TensorProto::f32_raw("v", &[2], &[4., 1.]),
    ];
    let (g, ws) = import(&model(fixed(&[1, 2, 1, 2]), nodes, inits, "y"));
    let Op::BatchNorm(bn) = node(&g, "bn").op else { panic!() };
    assert_eq!(bn.eps, 0.0);
    let (s, b, m, v) = (w(&ws, "bn.weight"), w(&ws, "bn.bias"), w(&ws, "bn.running_mean"), w(&ws, "bn.running_var"));
    let n = reference::batch_norm(&bn, Layout::Nchw, &x, &s, &b, &m, &v).unwrap();
    assert_close(&n, &[0., 1., 1., 2.]);
    let Op::Add { act } = node(&g, "add").op else { panic!() };
    let a = reference::add(&as_f32(&n), &x, act).unwrap();
    assert_close(&a, &[1., 3., 4., 6.]);
    assert_eq!(out_dims(&g, "cat"), [1, 4, 1, 2]);
    let y = reference::concat_channels(&[(&as_f32(&a), 2), (&x, 2)], [1, 1, 2], Layout::Nchw).unwrap();
    assert_close(&y, &[1., 3., 4., 6., 1., 2., 3., 4.]);
}

#[test]
fn numeric_lrn_softmax_by_hand() {
    // LRN size 1, alpha 1, beta 1, bias 1 over x = [1, 2] (2 channels, 1x1):
    // y = x / (1 + 1 * x² / 1) = [1/2, 2/5]. Softmax over the 2 channels of [0, ln 3]:
    // [1/4, 3/4].
    let nodes = vec![NodeProto::new("LRN", "lrn", &["x"], &["y"])
        .with(A::int("size", 1))
        .with(A::float("alpha", 1.0))
        .with(A::float("beta", 1.0))
        .with(A::float("bias", 1.0))];
    let (g, _) = import(&model(fixed(&[1, 2, 1, 1]), nodes, vec![], "y"));
    let Op::Lrn(l) = node(&g, "lrn").op else { panic!() };
    assert_close(&reference::lrn(&l, Layout::Nchw, &[1., 2.]).unwrap(), &[0.5, 0.4]);
    let nodes = vec![NodeProto::new("Softmax", "sm", &["x"], &["y"]).with(A::int("axis", 1))];
    let (g, _) = import(&model(fixed(&[1, 2, 1, 1]), nodes, vec![], "y"));
    let Op::Softmax(s) = node(&g, "sm").op else { panic!() };
    assert_close(&reference::softmax(&s, &[0.0, 3f32.ln()]).unwrap(), &[0.25, 0.75]);
}

// ---- Errors ----------------------------------------------------------------------------------

#[test]
fn unsupported_op_names_op_node_and_supported_list() {
    let n = NodeProto::new("Resize", "up1", &["x"], &["y"]);
    let e = import_err(&model(fixed(&[1, 1, 2, 2]), vec![n], vec![], "y"));
    assert!(e.starts_with("Resize node 'up1': unsupported operator; supported: Add, AveragePool, "), "{e}");
    for op in onnx::SUPPORTED_OPS {
        assert!(e.contains(op), "{e}");
    }
    let mut n = NodeProto::new("FusedConv", "", &["x"], &["y"]);
    n.domain = "com.microsoft".into();
    let e = import_err(&model(fixed(&[1, 1, 2, 2]), vec![n], vec![], "y"));
    assert!(e.starts_with("FusedConv node 'FusedConv_0': unsupported operator in domain 'com.microsoft'"), "{e}");
}

#[test]
fn malformed_files_are_one_line_errors() {
    let e = import_err(&[]);
    assert_eq!(e, "not an ONNX model: the file is empty");
    let e = import_err(b"\xff\xff\xff\xff garbage, not protobuf \x00\x01");
    assert!(e.starts_with("not an ONNX model: protobuf decode error at "), "{e}");
    let e = import_err(b"<html>\n<body>404</body>\n</html>\n");
    assert!(e.starts_with("not an ONNX model: protobuf decode error"), "{e}");
    // A valid ModelProto without a graph (e.g. a truncated header).
    let m = ModelProto { ir_version: 8, ..Default::default() };
    assert_eq!(import_err(&m.to_bytes()), "model has no graph");
    let e = onnx::import(std::path::Path::new("/nonexistent/model.onnx"), None).unwrap_err().to_string();
    assert!(e.starts_with("cannot read /nonexistent/model.onnx: "), "{e}");
    assert!(matches!(onnx::import_bytes(&[], None), Err(OnnxError::NotOnnx(_))));
}

#[test]
fn attribute_and_structure_errors_name_node_and_value() {
    let one = |n: NodeProto, inits: Vec<TensorProto>| import_err(&model(fixed(&[1, 2, 6, 6]), vec![n], inits, "y"));
    let mp = NodeProto::new("MaxPool", "pool", &["x"], &["y"])
        .with(A::ints("kernel_shape", &[3, 3]))
        .with(A::int("ceil_mode", 1))
        .with(A::string("auto_pad", "SAME_LOWER"));
    assert_eq!(
        one(mp, vec![]),
        "MaxPool node 'pool': auto_pad=SAME_LOWER with ceil_mode=1 unsupported; use explicit pads"
    );
    let conv = NodeProto::new("Conv", "conv1", &["x", "w"], &["y"]).with(A::string("auto_pad", "SAME_MIDDLE"));
    let wt = || vec![TensorProto::f32_raw("w", &[2, 2, 3, 3], &vals(36, 0.0))];
    assert_eq!(
        one(conv, wt()),
        "Conv node 'conv1': auto_pad=SAME_MIDDLE unsupported; expected NOTSET, VALID, SAME_UPPER or SAME_LOWER"
    );
    let conv = NodeProto::new("Conv", "conv1", &["x", "w"], &["y"]).with(A::ints("strides", &[-1, 1]));
    assert!(one(conv, wt()).starts_with("Conv node 'conv1': strides=[-1, 1] unsupported"));
    let conv = NodeProto::new("Conv", "conv1", &["x", "w"], &["y"]).with(A::ints("pads", &[1, 1]));
    assert!(one(conv, wt()).starts_with("Conv node 'conv1': pads=[1, 1] unsupported; expected 4 values"));
    let conv = NodeProto::new("Conv", "conv1", &["x", "w"], &["y"]).with(A::int("group", 2));
    assert_eq!(
        one(conv, wt()),
        "Conv node 'conv1': weight dims [2, 2, 3, 3] with group 2 expect 4 input channels, the input has 2"
    );
    // A weight computed at run time.
    let nodes =
        vec![NodeProto::new("Relu", "r", &["x"], &["wr"]), NodeProto::new("Conv", "conv", &["x", "wr"], &["y"])];
    let e = import_err(&model(fixed(&[1, 2, 6, 6]), nodes, vec![], "y"));
    assert_eq!(e, "Conv node 'conv': weight 'wr' is computed at run time; it must be an initializer or a Constant");
    // A shape error from the builder passes through with the node name.
    let nodes = vec![
        NodeProto::new("MaxPool", "p", &["x"], &["a"]).with(A::ints("kernel_shape", &[2, 2])),
        NodeProto::new("Add", "join", &["a", "x"], &["y"]),
    ];
    let e = import_err(&model(fixed(&[1, 2, 6, 6]), nodes, vec![], "y"));
    assert_eq!(e, "Add node 'join': add: join: shapes [1, 2, 5, 5] and [1, 2, 6, 6] differ");
    let big = NodeProto::new("MaxPool", "p", &["x"], &["y"]).with(A::ints("kernel_shape", &[7, 7]));
    assert!(one(big, vec![]).starts_with("MaxPool node 'p': pool: "));
    // Adding a constant that cannot be a bias.
    let add = NodeProto::new("Add", "plus", &["x", "k"], &["y"]);
    let e = one(add, vec![TensorProto::f32_raw("k", &[1], &[1.0])]);
    assert!(e.starts_with("Add node 'plus': adding a constant is only supported as the bias"), "{e}");
    // Matrix product of two activations.
    let e = import_err(&model(fixed(&[1, 4]), vec![NodeProto::new("MatMul", "mm", &["x", "x"], &["y"])], vec![], "y"));
    assert!(e.starts_with("MatMul node 'mm': only activation × constant"), "{e}");
    // Gemm on an unflattened input, transA.
    let gemm = NodeProto::new("Gemm", "fc", &["x", "B"], &["y"]);
    let e = one(gemm, vec![TensorProto::f32_raw("B", &[72, 2], &vals(144, 0.0))]);
    assert!(e.starts_with("Gemm node 'fc': expects a 2-D input [N, K] (flatten first), got [1, 2, 6, 6]"), "{e}");
    let gemm = NodeProto::new("Gemm", "fc", &["x", "B"], &["y"]).with(A::int("transA", 1));
    let e = import_err(&model(fixed(&[1, 2]), vec![gemm], vec![TensorProto::f32_raw("B", &[2, 2], &[0.; 4])], "y"));
    assert_eq!(e, "Gemm node 'fc': transA=1 unsupported; A must be the [N, K] activation");
    // Softmax over a spatial axis; Concat without an axis; an unknown input.
    let sm = NodeProto::new("Softmax", "sm", &["x"], &["y"]);
    assert!(one(sm, vec![]).starts_with("Softmax node 'sm': axis=-1 unsupported; only softmax over the channel axis"));
    let cat = NodeProto::new("Concat", "cat", &["x", "x"], &["y"]);
    assert_eq!(one(cat, vec![]), "Concat node 'cat': attribute 'axis' is missing");
    let r = NodeProto::new("Relu", "r", &["nope"], &["y"]);
    assert_eq!(
        one(r, vec![]),
        "Relu node 'r': input 'nope' is not produced by an earlier node, an initializer or the graph input"
    );
    // A used second output (MaxPool indices).
    let nodes = vec![
        NodeProto::new("MaxPool", "p", &["x"], &["a", "idx"]).with(A::ints("kernel_shape", &[2, 2])),
        NodeProto::new("Add", "s", &["a", "idx"], &["y"]),
    ];
    let e = import_err(&model(fixed(&[1, 2, 6, 6]), nodes, vec![], "y"));
    assert_eq!(e, "MaxPool node 'p': output 1 'idx' is used; only the first output is supported");
    // Attribute of the wrong type.
    let conv = NodeProto::new("Conv", "c", &["x", "w"], &["y"]).with(A::float("group", 1.0));
    assert_eq!(one(conv, wt()), "Conv node 'c': attribute 'group' has type FLOAT, expected INT");
}

#[test]
fn tensor_and_graph_errors() {
    let conv = || vec![NodeProto::new("Conv", "c", &["x", "w"], &["y"])];
    let e = import_err(&model(
        fixed(&[1, 1, 4, 4]),
        conv(),
        vec![TensorProto::f32_raw("w", &[1, 1, 2, 2], &[1.0; 3])],
        "y",
    ));
    assert_eq!(e, "Conv node 'c': tensor 'w': raw_data has 12 bytes, its dims [1, 1, 2, 2] need 16");
    let mut ext = TensorProto::f32_placeholder("w", &[1, 1, 2, 2]);
    ext.data_location = 1;
    let e = import_err(&model(fixed(&[1, 1, 4, 4]), conv(), vec![ext], "y"));
    assert!(e.contains("external data) is unsupported"), "{e}");
    let int_w = TensorProto::i64("w", &[1, 1, 2, 2], &[1, 2, 3, 4]);
    let e = import_err(&model(fixed(&[1, 1, 4, 4]), conv(), vec![int_w], "y"));
    assert!(e.ends_with("int64 values where a floating-point tensor is needed"), "{e}");
    // Missing weight data is an error only when loading weights.
    let bytes = model(fixed(&[1, 1, 4, 4]), conv(), vec![TensorProto::f32_placeholder("w", &[1, 1, 2, 2])], "y");
    assert!(import_err(&bytes).contains("float_data holds 0 values"));
    let opts = ImportOptions { load_weights: false, ..Default::default() };
    let (g, ws) = onnx::import_with(&bytes, &opts).unwrap();
    assert_eq!((g.parameter_count(), ws.len()), (4, 0));
    // Symbolic spatial dims, several inputs, no output, batch 0.
    let e = import_err(&model(input(&["N".into(), 3.into(), "H".into(), 8.into()]), vec![], vec![], "x"));
    assert_eq!(e, "input 'x': symbolic dimension 'H' at axis 2; only the batch dimension may be symbolic");
    let mut m = model_at(17, fixed(&[1, 2]), vec![], vec![], "x");
    m.graph.as_mut().unwrap().input.push(ValueInfoProto::f32("x2", &[1, 2]));
    assert_eq!(import_err(&m.to_bytes()), "the graph has 2 inputs ('x', 'x2'); only single-input models are supported");
    let e = onnx::import_bytes(&model(fixed(&[1, 2]), vec![], vec![], "x"), Some(0)).unwrap_err().to_string();
    assert_eq!(e, "batch size 0 out of range 1..=16777216");
    assert_eq!(
        import_err(&model(fixed(&[1, 2]), vec![], vec![], "zzz")),
        "graph output 'zzz' is not produced by any node"
    );
    // Absurd sizes are refused before anything is allocated.
    let e = import_err(&model(fixed(&[1, 1 << 30, 1 << 20, 1 << 20]), vec![], vec![], "x"));
    assert!(e.contains("exceeds"), "{e}");
}

// ---- Export round trip -------------------------------------------------------------------------

/// Deterministic weights for every weight of `g` (positive where BN needs it).
fn pattern_weights(g: &Graph) -> Weights {
    let mut map = HashMap::new();
    for (k, wt) in g.nodes.iter().flat_map(|n| &n.weights).enumerate() {
        let pos = wt.name.ends_with("running_var");
        let v = (0..wt.len())
            .map(|i| {
                let x = ((i * 31 + k * 17) % 97) as f32 / 97.0;
                if pos {
                    0.5 + x
                } else {
                    x - 0.5
                }
            })
            .collect();
        map.insert(wt.name.clone(), v);
    }
    Weights::from_map(map)
}

#[test]
fn builtin_models_round_trip_through_onnx() {
    let t0 = std::time::Instant::now();
    for &name in models::NAMES {
        let g = models::build(name, 1).unwrap().unwrap();
        let bytes = onnx::export(&g, ExportWeights::ShapesOnly).unwrap();
        assert!(bytes.len() < 200_000, "{name}: shape-only export is {} bytes", bytes.len());
        let opts = ImportOptions { load_weights: false, ..Default::default() };
        let (back, ws) = onnx::import_with(&bytes, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(ws.is_empty());
        assert_eq!(ops(&back), ops(&g), "{name}");
        assert_eq!(back.parameter_count(), g.parameter_count(), "{name}");
        assert_eq!(back.macs(), g.macs(), "{name}");
        assert_eq!(back, g, "{name}: the imported graph differs");
        // At another batch size, the same graph as the builder makes.
        let (b4, _) = onnx::import_with(&bytes, &ImportOptions { batch: Some(4), ..opts }).unwrap();
        assert_eq!(b4, models::build(name, 4).unwrap().unwrap(), "{name} at batch 4");
    }
    // With real weight payloads for the smaller models: every value comes back.
    for name in ["squeezenet1_0", "mobilenet_v2"] {
        let g = models::build(name, 1).unwrap().unwrap();
        let ws = pattern_weights(&g);
        let bytes = onnx::export(&g, ExportWeights::Values(&ws)).unwrap();
        let (back, back_ws) = onnx::import_bytes(&bytes, None).unwrap();
        assert_eq!(back, g, "{name}");
        assert_eq!(back_ws.len(), ws.len(), "{name}");
        for n in ws.names() {
            assert_eq!(back_ws.get(n), ws.get(n), "{name}: weight {n}");
        }
    }
    assert!(t0.elapsed().as_secs() < 60, "round trip took {:?}", t0.elapsed());
}

#[test]
fn export_errors() {
    let g = models::build("squeezenet1_0", 1).unwrap().unwrap();
    let e = onnx::export(&g, ExportWeights::Values(&Weights::default())).unwrap_err().to_string();
    assert_eq!(e, "cannot export graph 'squeezenet1_0': node 'features.0': no values for weight 'features.0.weight'");
}

// ---- Fixtures -------------------------------------------------------------------------------------

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

/// The committed fixtures as this encoder writes them: (file, model, output dims at batch 1).
fn fixture_models() -> Vec<(&'static str, ModelProto, [usize; 4])> {
    let cnn = {
        // conv(bias) relu maxpool conv bn clip(0,6) gap flatten gemm softmax; symbolic batch.
        let nodes = vec![
            NodeProto::new("Conv", "conv1", &["x", "conv1.weight", "conv1.bias"], &["c1"])
                .with(A::ints("kernel_shape", &[3, 3]))
                .with(A::ints("pads", &[1, 1, 1, 1])),
            NodeProto::new("Relu", "relu1", &["c1"], &["r1"]),
            NodeProto::new("MaxPool", "pool1", &["r1"], &["p1"])
                .with(A::ints("kernel_shape", &[2, 2]))
                .with(A::ints("strides", &[2, 2])),
            NodeProto::new("Conv", "conv2", &["p1", "conv2.weight"], &["c2"]),
            NodeProto::new(
                "BatchNormalization",
                "bn2",
                &["c2", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var"],
                &["b2"],
            ),
            NodeProto::new("Constant", "lo", &[], &["six_lo"]).with(A::float("value_float", 0.0)),
            NodeProto::new("Constant", "hi", &[], &["six_hi"]).with(A::float("value_float", 6.0)),
            NodeProto::new("Clip", "relu6", &["b2", "six_lo", "six_hi"], &["a2"]),
            NodeProto::new("GlobalAveragePool", "gap", &["a2"], &["g"]),
            NodeProto::new("Flatten", "flatten", &["g"], &["f"]).with(A::int("axis", 1)),
            NodeProto::new("Gemm", "fc", &["f", "fc.weight", "fc.bias"], &["logits"]).with(A::int("transB", 1)),
            NodeProto::new("Softmax", "softmax", &["logits"], &["probs"]).with(A::int("axis", 1)),
        ];
        let inits = vec![
            TensorProto::f32_raw("conv1.weight", &[4, 3, 3, 3], &vals(108, 0.0)),
            TensorProto::f32_raw("conv1.bias", &[4], &vals(4, 0.1)),
            TensorProto::f32_raw("conv2.weight", &[6, 4, 1, 1], &vals(24, -0.1)),
            TensorProto::f32_raw("bn2.weight", &[6], &[1.0; 6]),
            TensorProto::f32_raw("bn2.bias", &[6], &vals(6, 0.0)),
            TensorProto::f32_raw("bn2.running_mean", &[6], &vals(6, 0.2)),
            TensorProto::f32_raw("bn2.running_var", &[6], &[1.5; 6]),
            TensorProto::f32_raw("fc.weight", &[5, 6], &vals(30, 0.0)),
            TensorProto::f32_raw("fc.bias", &[5], &vals(5, 0.0)),
        ];
        let x = input(&["batch".into(), 3.into(), 8.into(), 8.into()]);
        model_at(17, x, nodes, inits, "probs")
    };
    let residual = {
        // Dynamo-exporter style: BN unfolded, residual Add + Relu, ReduceMean, MatMul + Add.
        let conv = |n: &str, i: &str, o: &str, w: &str| {
            NodeProto::new("Conv", n, &[i, w], &[o])
                .with(A::ints("kernel_shape", &[3, 3]))
                .with(A::ints("pads", &[1, 1, 1, 1]))
        };
        let nodes = vec![
            conv("node_conv2d", "x", "c1", "layer.conv1.weight"),
            NodeProto::new("BatchNormalization", "node_bn", &["c1", "bn.w", "bn.b", "bn.m", "bn.v"], &["b1"]),
            NodeProto::new("Relu", "node_relu", &["b1"], &["r1"]),
            conv("node_conv2d_1", "r1", "c2", "layer.conv2.weight"),
            NodeProto::new("Add", "node_add", &["c2", "x"], &["s"]),
            NodeProto::new("Relu", "node_relu_1", &["s"], &["r2"]),
            NodeProto::new("ReduceMean", "node_mean", &["r2"], &["m"])
                .with(A::ints("axes", &[-1, -2]))
                .with(A::int("keepdims", 0)),
            NodeProto::new("MatMul", "node_matmul", &["m", "fc.weight_t"], &["mm"]),
            NodeProto::new("Add", "node_add_1", &["mm", "fc.bias"], &["y"]),
        ];
        let inits = vec![
            TensorProto::f32_raw("layer.conv1.weight", &[4, 4, 3, 3], &vals(144, 0.0)),
            TensorProto::f32_raw("bn.w", &[4], &[1.0; 4]),
            TensorProto::f32_raw("bn.b", &[4], &[0.0; 4]),
            TensorProto::f32_raw("bn.m", &[4], &[0.0; 4]),
            TensorProto::f32_raw("bn.v", &[4], &[1.0; 4]),
            TensorProto::f32_raw("layer.conv2.weight", &[4, 4, 3, 3], &vals(144, 0.5)),
            TensorProto::f32_raw("fc.weight_t", &[4, 3], &vals(12, 0.0)),
            TensorProto::f32_raw("fc.bias", &[3], &[0.1, 0.2, 0.3]),
        ];
        model_at(17, fixed(&[1, 4, 6, 6]), nodes, inits, "y")
    };
    let inception = {
        // Branches + Concat, AveragePool(count_include_pad=0), LRN, ceil-mode MaxPool,
        // Dropout, Reshape via a Constant shape, Gemm with transB=0.
        let nodes = vec![
            NodeProto::new("Conv", "b1", &["x", "b1.weight"], &["y1"]),
            NodeProto::new("Relu", "b1.relu", &["y1"], &["r1"]),
            NodeProto::new("AveragePool", "b2.pool", &["x"], &["p2"])
                .with(A::ints("kernel_shape", &[3, 3]))
                .with(A::ints("pads", &[1, 1, 1, 1])),
            NodeProto::new("Conv", "b2", &["p2", "b2.weight", "b2.bias"], &["y2"]),
            NodeProto::new("Relu", "b2.relu", &["y2"], &["r2"]),
            NodeProto::new("Concat", "cat", &["r1", "r2"], &["c"]).with(A::int("axis", 1)),
            NodeProto::new("LRN", "lrn", &["c"], &["l"]).with(A::int("size", 3)),
            NodeProto::new("MaxPool", "pool", &["l"], &["p"])
                .with(A::ints("kernel_shape", &[3, 3]))
                .with(A::ints("strides", &[2, 2]))
                .with(A::int("ceil_mode", 1)),
            NodeProto::new("Dropout", "drop", &["p"], &["d"]),
            NodeProto::new("Constant", "shape", &[], &["s"])
                .with(A::tensor("value", TensorProto::i64("", &[2], &[1, -1]))),
            NodeProto::new("Reshape", "flatten", &["d", "s"], &["f"]),
            NodeProto::new("Gemm", "fc", &["f", "fc.B", "fc.C"], &["y"]),
        ];
        let inits = vec![
            TensorProto::f32_raw("b1.weight", &[2, 3, 1, 1], &vals(6, 0.0)),
            TensorProto::f32_raw("b2.weight", &[2, 3, 1, 1], &vals(6, 0.3)),
            TensorProto::f32_raw("b2.bias", &[2], &[0.1, -0.1]),
            TensorProto::f32_raw("fc.B", &[64, 3], &vals(192, 0.0)),
            TensorProto::f32_raw("fc.C", &[3], &[0.0, 0.5, 1.0]),
        ];
        model_at(13, fixed(&[1, 3, 8, 8]), nodes, inits, "y")
    };
    vec![
        ("tiny_cnn.onnx", cnn, [1, 5, 1, 1]),
        ("tiny_residual.onnx", residual, [1, 3, 1, 1]),
        ("tiny_inception.onnx", inception, [1, 3, 1, 1]),
    ]
}

/// Rewrites the fixtures: `CNNERGY_WRITE_ONNX_FIXTURES=1 cargo test -p cnnergy-host --test onnx fixtures`.
#[test]
fn fixtures_import() {
    let dir = fixture_dir();
    let models = fixture_models();
    if std::env::var_os("CNNERGY_WRITE_ONNX_FIXTURES").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (file, m, _) in &models {
            std::fs::write(dir.join(file), m.to_bytes()).unwrap();
        }
    }
    let expected: HashMap<&str, [usize; 4]> = models.iter().map(|(f, _, d)| (*f, *d)).collect();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "onnx") {
            continue;
        }
        let (g, ws) = onnx::import(&path, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        g.validate().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 16 * 1024, "{}: fixtures stay tiny", path.display());
        // Import checks every weight is present; the count of tensors is the count of weights.
        let n_weights: usize = g.nodes.iter().map(|n| n.weights.len()).sum();
        assert_eq!(ws.len(), n_weights, "{}", path.display());
        let file = path.file_name().unwrap().to_str().unwrap();
        // Our own fixtures must match the models above (a real PyTorch export replacing one
        // only has to import).
        let bytes = std::fs::read(&path).unwrap();
        let decoded = <ModelProto as prost::Message>::decode(&bytes[..]).unwrap();
        if let Some((_, m, _)) =
            models.iter().find(|(f, _, _)| *f == file).filter(|_| decoded.producer_name == "cnnergy")
        {
            assert_eq!(decoded.graph, m.graph, "{file} is stale: rerun with CNNERGY_WRITE_ONNX_FIXTURES=1");
        }
        if let Some(d) = expected.get(file) {
            assert_eq!(g.tensors[g.output].dims, *d, "{file}");
            assert_eq!(g.name, file.trim_end_matches(".onnx"));
            seen += 1;
        }
        // At batch 2 (the file may fix batch 1; its Reshape target must follow).
        let (g2, _) = onnx::import(&path, Some(2)).unwrap();
        assert_eq!(g2.batch(), 2, "{file}");
    }
    assert_eq!(seen, models.len(), "missing fixtures in {}", dir.display());
}

#[test]
fn fixtures_structure() {
    let import_fixture = |f: &str| onnx::import(&fixture_dir().join(f), None).unwrap();
    let (g, ws) = import_fixture("tiny_cnn.onnx");
    assert_eq!(
        ops(&g),
        [
            "Conv",
            "Relu",
            "MaxPool",
            "Conv",
            "BatchNormalization",
            "Clip",
            "GlobalAveragePool",
            "Flatten",
            "Gemm",
            "Softmax"
        ]
    );
    assert_eq!(g.parameter_count(), 108 + 4 + 24 + 12 + 30 + 5);
    assert_eq!(w(&ws, "bn2.running_var"), [1.5; 6]);
    let (g, ws) = import_fixture("tiny_residual.onnx");
    assert_eq!(
        names(&g),
        [
            "node_conv2d",
            "node_bn",
            "node_relu",
            "node_conv2d_1",
            "node_add",
            "node_mean",
            "node_mean.flatten",
            "node_matmul"
        ]
    );
    assert_eq!(node(&g, "node_add").op, Op::Add { act: Act::Relu });
    assert_eq!(w(&ws, "node_matmul.bias"), [0.1, 0.2, 0.3]);
    let (g, _) = import_fixture("tiny_inception.onnx");
    assert_eq!(out_dims(&g, "pool"), [1, 4, 4, 4]);
    assert_eq!(out_dims(&g, "flatten"), [1, 64, 1, 1]);
    let Op::Pool(p) = node(&g, "b2.pool").op else { panic!() };
    assert!(!p.count_include_pad);
}

// ---- No panics --------------------------------------------------------------------------------------

fn small_valid_model() -> Vec<u8> {
    fixture_models().swap_remove(2).1.to_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = onnx::import_bytes(&bytes, None);
    }

    #[test]
    fn mutated_models_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), batch in 0usize..4) {
        let mut bytes = small_valid_model();
        for (pos, v) in edits {
            let i = pos % bytes.len();
            bytes[i] = v;
        }
        let _ = onnx::import_bytes(&bytes, if batch == 0 { None } else { Some(batch) });
    }

    #[test]
    fn arbitrary_attribute_values_never_panic(
        k in any::<i64>(), s in any::<i64>(), p in any::<i64>(), d in any::<i64>(), g in -2i64..5,
        auto in 0usize..5, ceil in -1i64..3, hw in 1usize..12, op in 0usize..3,
    ) {
        let pad = ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "bogus"][auto];
        let common = |n: NodeProto| n
            .with(A::ints("strides", &[s, 1]))
            .with(A::ints("pads", &[p, 0, 0, p]))
            .with(A::ints("dilations", &[d, 1]))
            .with(A::string("auto_pad", pad));
        let n = match op {
            0 => common(NodeProto::new("Conv", "c", &["x", "w"], &["y"])).with(A::int("group", g)),
            1 => common(NodeProto::new("MaxPool", "c", &["x"], &["y"]))
                .with(A::ints("kernel_shape", &[k, 2]))
                .with(A::int("ceil_mode", ceil)),
            _ => common(NodeProto::new("AveragePool", "c", &["x"], &["y"]))
                .with(A::ints("kernel_shape", &[k, 2]))
                .with(A::int("count_include_pad", ceil)),
        };
        let kk = (k.unsigned_abs() % 5) as usize;
        let inits = vec![TensorProto::f32_raw("w", &[2, 2, kk, 2], &vec![0.5; 8 * kk])];
        let _ = onnx::import_bytes(&model(fixed(&[1, 4, hw, hw]), vec![n], inits, "y"), None);
    }
}
