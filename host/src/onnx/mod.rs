//! ONNX import into the layer [`Graph`](crate::graph::Graph), and [`export`] back (for
//! fixtures, round trips, and handing a built-in model to other tools).
//!
//! [`import`] reads an `.onnx` file as torchvision models export it
//! (`torch.onnx.export(..., opset_version=13..17)`, TorchScript or dynamo exporter) and
//! builds the graph through [`graph::Builder`](crate::graph::Builder), so shapes are
//! inferred and checked exactly as for the built-in models; initializers become
//! [`Weights`](crate::weights::Weights) keyed by the names the builder gives each layer's weights
//! (`{node}.weight`, `{node}.bias`, `{node}.running_mean`, ...).
//!
//! # Parsing
//! The file is decoded with `prost` from message definitions of the `onnx.proto` subset
//! we need ([`proto`]), with upstream's field numbers. We declare the messages ourselves
//! rather than depend on `onnx-protobuf` (rust-protobuf 3 and its runtime, generated code
//! for all of `onnx-ml.proto`, MPL-2.0) or `onnx-ir` (burn's IR, a large dependency tree
//! with its own op model): a few dozen derive-annotated fields give the same wire format,
//! zero-copy `raw_data` (`bytes::Bytes`, so a 500 MB VGG file is not copied on decode),
//! and no build script or `protoc`. Initializers kept in an external data file (the dynamo
//! exporter's default, `model.onnx.data` beside the model) are read when importing by path.
//!
//! # Operators
//! See [`SUPPORTED_OPS`]. Mappings that are not one-to-one:
//! * `Gemm` → linear layer: `transB=0` weights are transposed to `[out, in]`, `alpha` is
//!   folded into the weights and `beta` into the bias; `transA=1` is unsupported.
//! * `MatMul` with a constant B → linear layer without bias (weights transposed).
//! * `Add` of a constant to the output of a `Conv`/`Gemm`/`MatMul` that nothing else
//!   reads → folded into that layer's bias (the dynamo exporter's `MatMul` + `Add`);
//!   `Add` of two activations → an add layer, with a following `Relu`/`Clip`/`Sigmoid`/
//!   `Tanh` fused into it when it is the add's only reader (ResNet's residual join, as
//!   [`models`](crate::models) builds it).
//! * `Flatten(axis=1)`, and `Reshape` to `[N, C*H*W]` → flatten; a `Reshape` that keeps
//!   the shape → identity.
//! * `ReduceMean` over axes {2, 3} → global average pool (+ flatten when `keepdims=0`).
//! * `MaxPool`/`AveragePool` with a 1×1 window, stride 1 and no padding (torchvision's
//!   `AdaptiveAvgPool2d` on a map already of the target size) → identity, as the
//!   built-in AlexNet and VGG-16 model it.
//! * `Dropout`, `Identity` → identity layer; `Constant`, and `Identity`/`Transpose` of
//!   constants, are evaluated at import and produce no layer.
//! * `auto_pad=SAME_UPPER/SAME_LOWER` → explicit (possibly asymmetric) pads.
//!
//! Node names: the ONNX node name when present and unique in the graph, else
//! `{op_type}_{index}`. The input is the one graph input that is not an initializer,
//! `[N, C, H, W]` (or `[N, F]`); a symbolic or zero batch dimension becomes `batch`
//! (default 1), and `batch: Some(b)` overrides a fixed one too.
//!
//! Nothing here panics on a malformed or hostile file: sizes are bounded
//! ([`MAX_ELEMENTS`]) before anything is allocated or multiplied.

mod export;
mod import;
pub mod proto;

pub use export::{export, export_model, ExportWeights};
pub use import::{import, import_bytes, import_with, ImportOptions};

use crate::ops::OpError;

/// Operators [`import`] understands (default domain), in the order error messages list them.
pub const SUPPORTED_OPS: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "Dropout",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Identity",
    "LRN",
    "MatMul",
    "MaxPool",
    "ReduceMean",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Transpose",
];

/// Largest element count of any tensor (activation or weight) an imported graph may have:
/// 2^40, far beyond any GPU, small enough that no size or FLOP count overflows.
pub const MAX_ELEMENTS: usize = 1 << 40;

/// Largest kernel size, stride, padding, dilation, group count or LRN size accepted.
pub const MAX_ATTR: usize = 1 << 24;

/// Why an ONNX file could not be imported (or a graph exported). Every message is one line
/// and names the node, operator and attribute concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    #[error("cannot read {path}: {msg}")]
    Io { path: String, msg: String },
    /// The bytes are not a protobuf `ModelProto`.
    #[error("not an ONNX model: {0}")]
    NotOnnx(String),
    #[error("model has no graph")]
    NoGraph,
    /// An operator outside [`SUPPORTED_OPS`] (or outside the default domain).
    #[error("{op} node '{node}': unsupported operator{domain}; supported: {}", SUPPORTED_OPS.join(", "))]
    UnsupportedOp {
        op: String,
        node: String,
        /// Empty, or " in domain 'x'".
        domain: String,
    },
    /// A supported operator with an attribute value we cannot map,
    /// e.g. "Conv node 'conv1': auto_pad=SAME_LOWER with ceil_mode=1 unsupported".
    #[error("{op} node '{node}': {attr}={value} unsupported{hint}")]
    UnsupportedAttr {
        op: String,
        node: String,
        attr: String,
        value: String,
        /// Empty, or "; ..." with what is supported.
        hint: String,
    },
    /// A node that cannot be mapped for another reason (a non-constant weight, a missing
    /// input, a rank we do not model).
    #[error("{op} node '{node}': {msg}")]
    Node { op: String, node: String, msg: String },
    /// The layer builder rejected the node's shapes.
    #[error("{op} node '{node}': {source}")]
    Shape {
        op: String,
        node: String,
        #[source]
        source: OpError,
    },
    /// A malformed initializer or constant tensor.
    #[error("tensor '{name}': {msg}")]
    Tensor { name: String, msg: String },
    /// A problem with the graph as a whole (inputs, outputs, batch size).
    #[error("{0}")]
    Model(String),
    #[error("cannot export graph '{graph}': {msg}")]
    Export { graph: String, msg: String },
}

/// `s` with control characters (newlines, tabs, ...) escaped, so a message stays one line
/// whatever names a file contains.
fn one_line(s: String) -> String {
    if s.chars().any(char::is_control) {
        s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
    } else {
        s
    }
}

impl OnnxError {
    /// The same error with every text field made one line.
    fn one_line(self) -> OnnxError {
        use OnnxError as E;
        match self {
            E::Io { path, msg } => E::Io { path: one_line(path), msg: one_line(msg) },
            E::NotOnnx(m) => E::NotOnnx(one_line(m)),
            E::NoGraph => E::NoGraph,
            E::UnsupportedOp { op, node, domain } => {
                E::UnsupportedOp { op: one_line(op), node: one_line(node), domain: one_line(domain) }
            }
            E::UnsupportedAttr { op, node, attr, value, hint } => E::UnsupportedAttr {
                op: one_line(op),
                node: one_line(node),
                attr: one_line(attr),
                value: one_line(value),
                hint: one_line(hint),
            },
            E::Node { op, node, msg } => E::Node { op: one_line(op), node: one_line(node), msg: one_line(msg) },
            E::Shape { op, node, source } => {
                let source = match source {
                    OpError::Invalid { op, msg } => OpError::Invalid { op, msg: one_line(msg) },
                    other => other,
                };
                E::Shape { op: one_line(op), node: one_line(node), source }
            }
            E::Tensor { name, msg } => E::Tensor { name: one_line(name), msg: one_line(msg) },
            E::Model(m) => E::Model(one_line(m)),
            E::Export { graph, msg } => E::Export { graph: one_line(graph), msg: one_line(msg) },
        }
    }
}
