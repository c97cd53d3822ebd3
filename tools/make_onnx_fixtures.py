#!/usr/bin/env python3
"""Writes the ONNX import fixtures checked by host/tests/onnx_fixtures.rs.

Usage: python3 tools/make_onnx_fixtures.py [OUTDIR]   (default host/tests/fixtures/onnx)
Needs: pip install onnx onnxruntime numpy   (no torch: graphs are built with onnx.helper)

Writes OUTDIR/ort/: one small model per group of operators (every operator cnnergy imports,
each at least once, with the attribute forms torchvision exports use and a few more), its
input and its expected output as raw little-endian float32 (NAME.in.f32, NAME.out.f32), and
manifest.json with shapes and the tolerance. The expected outputs come from onnxruntime's
CPU provider, an engine independent of cnnergy; the Rust test runs the same input through
cnnergy's importer and CPU reference backend and compares (relative L2).

Writes OUTDIR/invalid/: files the importer must reject with a clear one-line error (an
unsupported operator, an unsupported attribute value, an unknown attribute, Dropout in
training mode, a truncated file, a non-ONNX file).

Deterministic: fixed seeds, so a rerun rewrites the same bytes (up to onnxruntime's
floating-point summation order in the outputs, far inside the tolerance).
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

TOL = 1e-5  # relative L2, cnnergy CPU reference (f64 inside a layer, f32 between) vs onnxruntime fp32


class G:
    """A graph under construction: nodes, initializers, a seeded generator."""

    def __init__(self, name, seed):
        self.name = name
        self.nodes = []
        self.inits = []
        self.rng = np.random.RandomState(seed)

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def weight(self, name, shape, fan_in):
        # He-style scale keeps activations O(1) through a few layers.
        w = self.rng.standard_normal(shape).astype(np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        return self.const(name, w)

    def vec(self, name, n, lo=-0.5, hi=0.5):
        return self.const(name, self.rng.uniform(lo, hi, n).astype(np.float32))

    def node(self, op, inputs, name, n_out=1, **attrs):
        outs = [name if i == 0 else f"{name}.out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0]

    def conv(self, x, name, cin, cout, k, bias=True, group=1, **attrs):
        kh, kw = (k, k) if isinstance(k, int) else k
        ins = [x, self.weight(f"{name}.weight", (cout, cin // group, kh, kw), cin // group * kh * kw)]
        if bias:
            ins.append(self.vec(f"{name}.bias", cout))
        return self.node("Conv", ins, name, kernel_shape=[kh, kw], group=group, **attrs)

    def constant(self, name, arr):
        """A `Constant` node (as the TorchScript exporter writes shapes and clip bounds)."""
        t = numpy_helper.from_array(np.asarray(arr), f"{name}.value")
        return self.node("Constant", [], name, value=t)

    def model(self, x_shape, out, opset, batch_param=None, out_shape=None):
        shape = list(x_shape)
        if batch_param:
            shape[0] = batch_param
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)
        if out_shape is not None:
            out_shape = [batch_param or out_shape[0]] + list(out_shape[1:])
        y = helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)
        graph = helper.make_graph(self.nodes, self.name, [x], [y], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_onnx_fixtures")
        m.ir_version = 8  # readable by every onnxruntime since 1.14
        return m


# ---- Positive fixtures: (name, opset, input shape, builder) -------------------------------------


def conv_attrs(g):
    """Conv: asymmetric pads, unequal strides and dilations, groups, with and without bias."""
    y = g.conv("input", "conv_a", 4, 6, 3, group=2, pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2])
    y = g.node("Relu", [y], "relu_a")
    y = g.conv(y, "conv_b", 6, 8, (1, 3), bias=False, pads=[0, 1, 0, 1], strides=[1, 2])
    y = g.node("Relu", [y], "relu_b")
    # Dilation 2 in both axes, stride 3, no padding.
    return g.conv(y, "conv_c", 8, 5, 2, dilations=[2, 2], strides=[3, 3])


def conv_autopad_depthwise_clip(g):
    """auto_pad SAME_UPPER/SAME_LOWER/VALID, depthwise conv (MobileNet), Clip bounds as inputs."""
    y = g.conv("input", "conv_same_upper", 3, 8, 3, auto_pad="SAME_UPPER", strides=[2, 2])
    lo = g.constant("clip_min", np.array(0.0, np.float32))
    hi = g.constant("clip_max", np.array(6.0, np.float32))
    y = g.node("Clip", [y, lo, hi], "relu6_a")
    y = g.conv(y, "conv_dw", 8, 8, 3, group=8, pads=[1, 1, 1, 1])
    # Only the upper bound given (the lower input left empty).
    hi2 = g.const("clip_hi2", np.array(0.75, np.float32))
    y = g.node("Clip", [y, "", hi2], "clip_max_only")
    y = g.conv(y, "conv_same_lower", 8, 6, (2, 3), auto_pad="SAME_LOWER", strides=[2, 1])
    lo2 = g.const("clip_lo2", np.array(-0.25, np.float32))
    y = g.node("Clip", [y, lo2], "clip_min_only")
    return g.conv(y, "conv_valid", 6, 4, 3, auto_pad="VALID")


def clip_attributes_softmax_opset10(g):
    """Opset 10: Clip's bounds are attributes; Softmax on a 2-D input (axis=1)."""
    y = g.conv("input", "conv", 3, 4, 3, pads=[1, 1, 1, 1])
    y = g.node("Clip", [y], "clip_attr", min=-0.5, max=0.8)
    y = g.node("Flatten", [y], "flatten", axis=1)
    y = g.node("Gemm", [y, g.weight("fc.w", (6, 4 * 5 * 5), 100), g.vec("fc.b", 6)], "fc", transB=1)
    y = g.node("Clip", [y], "clip_min_attr_only", min=0.0)
    return g.node("Softmax", [y], "softmax", axis=1)


def pools(g):
    """MaxPool/AveragePool: ceil_mode, pads, count_include_pad both ways, dilations; 1x1 no-op; global pools."""
    y = g.node("MaxPool", ["input"], "maxpool_ceil", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    y = g.node("AveragePool", [y], "avgpool_incl", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
               count_include_pad=1)
    y = g.node("AveragePool", [y], "avgpool_excl_ceil", kernel_shape=[2, 3], strides=[2, 2], pads=[1, 0, 0, 1],
               count_include_pad=0, ceil_mode=1)
    y = g.node("MaxPool", [y], "maxpool_pad_dil", kernel_shape=[2, 2], strides=[1, 1], pads=[1, 1, 1, 1],
               dilations=[2, 2])
    # torchvision's AdaptiveAvgPool2d on a map already of the target size.
    y = g.node("AveragePool", [y], "avgpool_1x1", kernel_shape=[1, 1])
    a = g.node("GlobalAveragePool", [y], "gap")
    b = g.node("GlobalMaxPool", [y], "gmp")
    return g.node("Concat", [a, b], "concat_global", axis=1)


def gemm_matmul(g):
    """Flatten, Gemm transB 0/1 with alpha/beta and bias shapes, MatMul (+Add bias), Transpose of a weight,
    Sigmoid, Tanh, Softmax(axis=-1)."""
    y = g.node("Flatten", ["input"], "flatten", axis=1)
    y = g.node("Gemm", [y, g.weight("fc1.w", (10, 48), 48), g.vec("fc1.b", 10)], "fc1", transB=1, alpha=0.5,
               beta=2.0)
    y = g.node("Relu", [y], "relu1")
    y = g.node("Gemm", [y, g.weight("fc2.w", (10, 7), 10), g.vec("fc2.b", (1, 7))], "fc2", transB=0, alpha=1.5,
               beta=0.25)
    y = g.node("Sigmoid", [y], "sigmoid")
    # A scalar C, broadcast to every output.
    y = g.node("Gemm", [y, g.weight("fc3.w", (9, 7), 7), g.const("fc3.c", np.array([0.3], np.float32))], "fc3",
               transB=1)
    y = g.node("Tanh", [y], "tanh")
    wt = g.node("Transpose", [g.weight("fc4.w_t", (5, 9), 9)], "fc4.transpose", perm=[1, 0])
    y = g.node("MatMul", [y, wt], "fc4")
    y = g.node("Add", [y, g.vec("fc4.bias", 5)], "fc4.add")
    # MatMul without a bias: a linear layer with none.
    y = g.node("MatMul", [y, g.weight("fc5.w", (5, 6), 5)], "fc5")
    return g.node("Softmax", [y], "softmax", axis=-1)


def reduce_reshape_opset17(g):
    """ReduceMean over the spatial axes (keepdims 1 and 0, axes as an attribute), Reshape with 0/-1 and a no-op
    Reshape, Flatten of [N, C, 1, 1]; the dynamo exporter's Conv + Add bias form."""
    y = g.conv("input", "conv", 3, 8, 3, bias=False, pads=[1, 1, 1, 1])
    y = g.node("Add", [y, g.const("conv.add_bias", g.rng.uniform(-0.5, 0.5, (1, 8, 1, 1)).astype(np.float32))],
               "conv.add")
    y = g.node("Relu", [y], "relu")
    shape = g.constant("noop_shape", np.array([0, 0, -1, 6], np.int64))
    y = g.node("Reshape", [y, shape], "reshape_noop")
    k = g.node("ReduceMean", [y], "mean_keep", axes=[2, 3], keepdims=1)
    k = g.node("Reshape", [k, g.const("flat_shape", np.array([0, -1], np.int64))], "reshape_flat")
    d = g.node("ReduceMean", [y], "mean_drop", axes=[-1, -2], keepdims=0)
    s = g.node("Add", [k, d], "sum")
    return g.node("Gemm", [s, g.weight("fc.w", (4, 8), 8), g.vec("fc.b", 4)], "fc", transB=1)


def reduce_axes_input_opset18(g):
    """Opset 18: ReduceMean's axes are an input; Flatten axis=-3 on the pooled map; Reshape to [-1, C*H*W]."""
    y = g.conv("input", "conv", 3, 6, 3, strides=[2, 2])
    axes = g.const("axes", np.array([2, 3], np.int64))
    p = g.node("ReduceMean", [y, axes], "mean", keepdims=1)
    p = g.node("Flatten", [p], "flatten_neg", axis=-3)
    q = g.node("Reshape", [y, g.const("shape", np.array([-1, 6 * 4 * 4], np.int64))], "reshape")
    q = g.node("Gemm", [q, g.weight("fc.w", (6, 96), 96), g.vec("fc.b", 6)], "fc", transB=1)
    return g.node("Add", [p, q], "add")


def alexnet_block(g):
    """Conv, ReLU, LRN (AlexNet/GoogLeNet), MaxPool, Flatten, Dropout (with its ratio input), Gemm, Softmax."""
    y = g.conv("input", "conv1", 3, 10, 5, strides=[2, 2], pads=[2, 2, 2, 2])
    y = g.node("Relu", [y], "relu1")
    y = g.node("LRN", [y], "lrn1", size=5, alpha=0.05, beta=0.75, bias=2.0)
    y = g.node("MaxPool", [y], "pool1", kernel_shape=[3, 3], strides=[2, 2])
    y = g.conv(y, "conv2", 10, 6, 3, pads=[1, 1, 1, 1])
    y = g.node("LRN", [y], "lrn2", size=3, alpha=0.2, beta=0.5, bias=1.0)
    y = g.node("Flatten", [y], "flatten")
    y = g.node("Dropout", [y, g.const("ratio", np.array(0.5, np.float32))], "dropout")
    y = g.node("Gemm", [y, g.weight("fc.w", (12, 6 * 3 * 3), 54), g.vec("fc.b", 12)], "fc", transB=1)
    return g.node("Softmax", [y], "softmax", axis=1)


def residual_inception_bn(g):
    """Conv+BatchNormalization (foldable) with an Add residual and fused ReLU; Inception-style branches joined by
    Concat (axis 1 and -3); a BatchNormalization that cannot fold (after the Concat); Identity on an activation and on
    a constant weight; Dropout with a mask output nobody reads; a channel Softmax on a 4-D map."""

    def bn(x, name, c):
        return g.node("BatchNormalization",
                      [x, g.vec(f"{name}.scale", c, 0.5, 1.5), g.vec(f"{name}.b", c),
                       g.vec(f"{name}.mean", c), g.vec(f"{name}.var", c, 0.5, 2.0)], name, epsilon=1e-3)

    y = g.conv("input", "stem", 4, 8, 3, bias=False, pads=[1, 1, 1, 1])
    y = bn(y, "stem.bn", 8)
    y = g.node("Relu", [y], "stem.relu")
    r = g.conv(y, "res.conv", 8, 8, 3, bias=False, pads=[1, 1, 1, 1])
    r = bn(r, "res.bn", 8)
    y = g.node("Add", [r, y], "res.add")
    y = g.node("Relu", [y], "res.relu")
    b1 = g.conv(y, "b1", 8, 4, 1)
    w2 = g.node("Identity", [g.weight("b2.w_src", (6, 8, 3, 3), 72)], "b2.weight_identity")
    b2 = g.node("Conv", [y, w2, g.vec("b2.b", 6)], "b2", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b3 = g.node("MaxPool", [y], "b3.pool", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    b3 = g.conv(b3, "b3", 8, 2, 1)
    cat = g.node("Concat", [b1, b2, b3], "concat", axis=1)
    cat = bn(cat, "concat.bn", 12)
    cat = g.node("Identity", [cat], "identity")
    b4 = g.conv(y, "b4", 8, 3, 1)
    cat = g.node("Concat", [cat, b4], "concat_neg", axis=-3)
    cat = g.node("Dropout", [cat], "dropout", n_out=2)
    return g.node("Softmax", [cat], "softmax_channels", axis=1)


POSITIVE = [
    # name, opset, input shape, symbolic batch name, builder
    ("conv_attrs", 13, (2, 4, 11, 12), None, conv_attrs),
    ("conv_autopad_depthwise_clip", 14, (2, 3, 13, 10), "N", conv_autopad_depthwise_clip),
    ("clip_attributes_softmax_opset10", 10, (2, 3, 5, 5), None, clip_attributes_softmax_opset10),
    ("pools", 15, (2, 3, 14, 13), None, pools),
    ("gemm_matmul", 13, (3, 3, 4, 4), "batch", gemm_matmul),
    ("reduce_reshape_opset17", 17, (2, 3, 6, 6), None, reduce_reshape_opset17),
    ("reduce_axes_input_opset18", 18, (2, 3, 9, 9), None, reduce_axes_input_opset18),
    ("alexnet_block", 16, (2, 3, 15, 15), None, alexnet_block),
    ("residual_inception_bn", 13, (2, 4, 7, 7), None, residual_inception_bn),
]


# ---- Negative fixtures ----------------------------------------------------------------------------


def unsupported_op():
    g = G("unsupported_op", 100)
    y = g.conv("input", "features.0.conv", 3, 4, 3, pads=[1, 1, 1, 1])
    # MobileNetV3's activation, valid ONNX since opset 14, not something cnnergy maps.
    y = g.node("HardSwish", [y], "features.0.hardswish")
    y = g.node("GlobalAveragePool", [y], "pool")
    return g.model((1, 3, 8, 8), y, 14, out_shape=(1, 4, 1, 1))


def unsupported_attr():
    g = G("unsupported_attr", 101)
    y = g.node("Flatten", ["input"], "flatten")
    # transA=1 needs A as [K, N]: the activation would have to be transposed.
    y = g.node("Gemm", [y, g.weight("fc.w", (4, 5), 4), g.vec("fc.b", 5)], "fc", transA=1)
    return g.model((4, 4, 1, 1), y, 13, out_shape=(4, 5))


def dropout_training():
    g = G("dropout_training", 102)
    y = g.node("Dropout", ["input", g.const("ratio", np.array(0.5, np.float32)), g.const("train", np.array(True))],
               "drop")
    return g.model((2, 8), y, 13, out_shape=(2, 8))


def unknown_attr():
    g = G("unknown_attr", 103)
    # An attribute no opset of Conv defines: ignoring it could silently change the result.
    y = g.conv("input", "conv", 3, 4, 3, padding_mode="reflect")
    return g.model((1, 3, 6, 6), y, 13, out_shape=(1, 4, 4, 4))


# ---- Writing -------------------------------------------------------------------------------------


def write_f32(path, arr):
    np.ascontiguousarray(arr, dtype="<f4").tofile(path)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "host", "tests",
                                                                   "fixtures", "onnx")
    pos_dir, neg_dir = os.path.join(outdir, "ort"), os.path.join(outdir, "invalid")
    os.makedirs(pos_dir, exist_ok=True)
    os.makedirs(neg_dir, exist_ok=True)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph as written
    opts.intra_op_num_threads = 1
    entries = []
    for i, (name, opset, shape, batch_param, build) in enumerate(POSITIVE):
        g = G(name, 1000 + i)
        out = build(g)
        x = np.random.RandomState(2000 + i).uniform(-1.0, 1.0, shape).astype(np.float32)
        # onnxruntime does not need the output's shape; the checker wants one: run, then declare it.
        m = g.model(shape, out, opset, batch_param)
        sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"input": x})
        y = np.asarray(y, np.float32)
        m = g.model(shape, out, opset, batch_param, y.shape)
        onnx.checker.check_model(m, full_check=True)
        data = m.SerializeToString()
        (y2,) = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"]).run(None, {"input": x})
        assert np.array_equal(y, y2)
        with open(os.path.join(pos_dir, f"{name}.onnx"), "wb") as f:
            f.write(data)
        write_f32(os.path.join(pos_dir, f"{name}.in.f32"), x)
        write_f32(os.path.join(pos_dir, f"{name}.out.f32"), y)
        ops = sorted({n.op_type for n in m.graph.node})
        entries.append({
            "name": name,
            "model": f"{name}.onnx",
            "opset": opset,
            "ops": ops,
            "input": f"{name}.in.f32",
            "input_shape": list(shape),
            "output": f"{name}.out.f32",
            "output_shape": list(y.shape),
            "tolerance": TOL,
        })
        print(f"{name}: opset {opset}, {len(m.graph.node)} nodes, {len(data)} bytes, output {list(y.shape)}")
        if name == "conv_attrs":
            # The same model with its weights in a separate file, as the dynamo exporter writes them by default.
            ext = onnx.ModelProto()
            ext.CopyFrom(m)
            data_file = os.path.join(pos_dir, f"{name}_external.onnx.data")
            if os.path.exists(data_file):
                os.remove(data_file)  # onnx appends to an existing data file
            onnx.save_model(ext, os.path.join(pos_dir, f"{name}_external.onnx"), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=os.path.basename(data_file), size_threshold=0)
            os.chmod(data_file, 0o644)
            entries.append(dict(entries[-1], name=f"{name}_external", model=f"{name}_external.onnx"))
    manifest = {
        "generator": "tools/make_onnx_fixtures.py",
        "reference": f"onnxruntime {ort.__version__} CPUExecutionProvider, graph optimizations off",
        "onnx": onnx.__version__,
        "format": "raw little-endian float32, row-major (NCHW, or [N, F] for rank 2)",
        "metric": "relative L2: |got - want|_2 / |want|_2",
        "fixtures": entries,
    }
    with open(os.path.join(pos_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")

    for name, m in [("unsupported_op", unsupported_op()), ("unsupported_attr", unsupported_attr()),
                    ("dropout_training", dropout_training())]:
        onnx.checker.check_model(m, full_check=True)
        with open(os.path.join(neg_dir, f"{name}.onnx"), "wb") as f:
            f.write(m.SerializeToString())
    # The checker rejects attributes an operator does not define, so this one is written unchecked.
    with open(os.path.join(neg_dir, "unknown_attr.onnx"), "wb") as f:
        f.write(unknown_attr().SerializeToString())
    # A valid model cut inside its first initializer's raw data: a download that stopped early.
    full = unsupported_attr().SerializeToString()
    with open(os.path.join(neg_dir, "truncated.onnx"), "wb") as f:
        f.write(full[: len(full) * 2 // 3])
    with open(os.path.join(neg_dir, "not_onnx.onnx"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nthis is an image, not a model\n")
    print(f"wrote {len(entries)} models to {pos_dir} and 6 invalid files to {neg_dir}")


if __name__ == "__main__":
    main()
