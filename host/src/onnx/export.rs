//! [`Graph`] + [`Weights`] → ONNX (opset 17), the inverse of the importer: every graph
//! the [`Builder`](crate::graph::Builder) makes exports to a model that imports back to an
//! equal graph. Used for test fixtures and to hand a built-in model to other tools.

use std::collections::HashMap;

use super::proto::{AttributeProto as A, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto};
use super::OnnxError;
use crate::graph::{Graph, Node, Op, WeightRole};
use crate::ops::{Act, PoolKind};
use crate::weights::Weights;

/// Opset the exporter writes.
const OPSET: i64 = 17;

/// Where exported initializers get their values.
#[derive(Clone, Copy, Debug)]
pub enum ExportWeights<'a> {
    /// From these weights (every weight of the graph must be present, with its length).
    Values(&'a Weights),
    /// No data, only dims: a small file describing the architecture, which
    /// [`import_with`](super::import_with) reads with `load_weights: false`. Not a valid
    /// ONNX model for other tools.
    ShapesOnly,
}

/// Exports `graph` as an ONNX model's bytes; see [`export_model`].
pub fn export(graph: &Graph, weights: ExportWeights<'_>) -> Result<Vec<u8>, OnnxError> {
    export_model(graph, weights).map(|m| m.to_bytes())
}

/// Exports `graph` as an ONNX `ModelProto` (opset 17, the input with a fixed batch).
///
/// One ONNX node per layer, named after it, except: an add's fused activation and a linear
/// layer's activation become a second node (`{name}.act`), a linear layer on an unflattened
/// `[n, k, 1, 1]` input gets a `Flatten` (`{name}.flatten`) first, and a clip's bounds are
/// scalar initializers `{name}.min` / `{name}.max`. Weights keep their graph names.
/// Fails for ops with no single ONNX equivalent (a conv with a fused batch-norm, residual
/// or activation epilogue) and for missing weights.
pub fn export_model(graph: &Graph, weights: ExportWeights<'_>) -> Result<ModelProto, OnnxError> {
    graph.validate().map_err(|e| OnnxError::Export { graph: graph.name.clone(), msg: e.to_string() })?;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &graph.tensors {
        *counts.entry(t.name.as_str()).or_default() += 1;
    }
    let values = graph
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| if counts[t.name.as_str()] == 1 { t.name.clone() } else { format!("{}#{i}", t.name) })
        .collect();
    let mut ex = Exporter {
        g: graph,
        w: weights,
        nodes: Vec::new(),
        inits: Vec::new(),
        values,
        rank: vec![0; graph.tensors.len()],
    };
    ex.rank[graph.input] = 4;
    for node in &graph.nodes {
        ex.node(node)?;
    }
    let shape = |t: usize, rank: usize| {
        let d = graph.tensors[t].dims;
        ValueInfoProto::f32(&ex.values[t], &d[..rank.clamp(2, 4)])
    };
    let g = GraphProto {
        name: graph.name.clone(),
        input: vec![shape(graph.input, 4)],
        output: vec![shape(graph.output, ex.rank[graph.output])],
        node: std::mem::take(&mut ex.nodes),
        initializer: std::mem::take(&mut ex.inits),
        ..Default::default()
    };
    Ok(ModelProto::new(g, OPSET))
}

struct Exporter<'a> {
    g: &'a Graph,
    w: ExportWeights<'a>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    /// ONNX value name per graph tensor.
    values: Vec<String>,
    /// ONNX rank per graph tensor (2 after a flatten or linear layer, else 4).
    rank: Vec<usize>,
}

fn i(v: usize) -> i64 {
    v as i64
}

impl Exporter<'_> {
    fn err(&self, node: &Node, msg: impl std::fmt::Display) -> OnnxError {
        OnnxError::Export { graph: self.g.name.clone(), msg: format!("node '{}': {msg}", node.name) }
    }

    fn input(&self, node: &Node, k: usize) -> Result<usize, OnnxError> {
        node.inputs.get(k).copied().ok_or_else(|| self.err(node, format!("input {k} is missing")))
    }

    /// Adds the node's weight with `role` as an initializer; returns its name.
    fn weight(&mut self, node: &Node, role: WeightRole) -> Result<String, OnnxError> {
        let w = node
            .weights
            .iter()
            .find(|w| w.role == role)
            .ok_or_else(|| self.err(node, format!("has no {role:?} weight")))?;
        let t = match self.w {
            ExportWeights::ShapesOnly => TensorProto::f32_placeholder(&w.name, &w.shape),
            ExportWeights::Values(ws) => {
                let data =
                    ws.get(&w.name).ok_or_else(|| self.err(node, format!("no values for weight '{}'", w.name)))?;
                if data.len() != w.len() {
                    let msg = format!(
                        "weight '{}' has {} values, its shape {:?} needs {}",
                        w.name,
                        data.len(),
                        w.shape,
                        w.len()
                    );
                    return Err(self.err(node, msg));
                }
                TensorProto::f32_raw(&w.name, &w.shape, data)
            }
        };
        self.inits.push(t);
        Ok(w.name.clone())
    }

    fn push(&mut self, n: NodeProto) {
        self.nodes.push(n);
    }

    /// An activation node `act(x) -> y`.
    fn act(&mut self, name: &str, x: &str, y: &str, act: Act) {
        let n = match act {
            Act::None => NodeProto::new("Identity", name, &[x], &[y]),
            Act::Relu => NodeProto::new("Relu", name, &[x], &[y]),
            Act::Sigmoid => NodeProto::new("Sigmoid", name, &[x], &[y]),
            Act::Tanh => NodeProto::new("Tanh", name, &[x], &[y]),
            Act::Clip { min, max } => {
                let (lo, hi) = (format!("{name}.min"), format!("{name}.max"));
                self.inits.push(TensorProto::f32_raw(&lo, &[], &[min]));
                self.inits.push(TensorProto::f32_raw(&hi, &[], &[max]));
                NodeProto::new("Clip", name, &[x, &lo, &hi], &[y])
            }
        };
        self.push(n);
    }

    fn node(&mut self, node: &Node) -> Result<(), OnnxError> {
        let x = self.input(node, 0)?;
        let (xv, out) = (self.values[x].clone(), self.values[node.output].clone());
        let name = node.name.as_str();
        let mut rank = self.rank[x];
        let spatial =
            |s: &Self| if rank == 4 { Ok(()) } else { Err(s.err(node, "a spatial op on a flattened tensor")) };
        match &node.op {
            Op::Conv { conv, epi } => {
                spatial(self)?;
                if epi.scale_shift || epi.residual || epi.act != Act::None {
                    return Err(self.err(node, format!("fused conv epilogue {epi:?} has no single ONNX op")));
                }
                let mut ins = vec![xv, self.weight(node, WeightRole::Kernel)?];
                if epi.bias {
                    ins.push(self.weight(node, WeightRole::Bias)?);
                }
                let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
                self.push(
                    NodeProto::new("Conv", name, &ins, &[&out])
                        .with(A::ints("kernel_shape", &[i(conv.kh), i(conv.kw)]))
                        .with(A::ints("strides", &[i(conv.stride_h), i(conv.stride_w)]))
                        .with(A::ints("pads", &[i(conv.pad_t), i(conv.pad_l), i(conv.pad_b), i(conv.pad_r)]))
                        .with(A::ints("dilations", &[i(conv.dil_h), i(conv.dil_w)]))
                        .with(A::int("group", i(conv.groups))),
                );
            }
            Op::BatchNorm(bn) => {
                let mut ins = vec![xv];
                for role in [WeightRole::BnGamma, WeightRole::BnBeta, WeightRole::BnMean, WeightRole::BnVar] {
                    ins.push(self.weight(node, role)?);
                }
                let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
                self.push(NodeProto::new("BatchNormalization", name, &ins, &[&out]).with(A::float("epsilon", bn.eps)));
            }
            Op::Act(a) => self.act(name, &xv, &out, *a),
            Op::Pool(p) => {
                spatial(self)?;
                let n = match p.kind {
                    PoolKind::GlobalAvg => NodeProto::new("GlobalAveragePool", name, &[&xv], &[&out]),
                    kind => {
                        let op = if kind == PoolKind::Max { "MaxPool" } else { "AveragePool" };
                        let mut n = NodeProto::new(op, name, &[&xv], &[&out])
                            .with(A::ints("kernel_shape", &[i(p.kh), i(p.kw)]))
                            .with(A::ints("strides", &[i(p.stride_h), i(p.stride_w)]))
                            .with(A::ints("pads", &[i(p.pad_t), i(p.pad_l), i(p.pad_b), i(p.pad_r)]));
                        if p.ceil_mode {
                            n = n.with(A::int("ceil_mode", 1));
                        }
                        if (p.dil_h, p.dil_w) != (1, 1) {
                            n = n.with(A::ints("dilations", &[i(p.dil_h), i(p.dil_w)]));
                        }
                        if kind == PoolKind::Avg {
                            n = n.with(A::int("count_include_pad", p.count_include_pad as i64));
                        }
                        n
                    }
                };
                self.push(n);
            }
            Op::Linear { gemm, bias, act } => {
                let mut a = xv;
                if rank == 4 {
                    let f = format!("{name}.flatten");
                    self.push(NodeProto::new("Flatten", &f, &[&a], &[&f]).with(A::int("axis", 1)));
                    a = f;
                }
                let mut ins = vec![a, self.weight(node, WeightRole::Kernel)?];
                if *bias {
                    ins.push(self.weight(node, WeightRole::Bias)?);
                }
                let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
                let y = if *act == Act::None { out.clone() } else { format!("{out}.linear") };
                let mut n = NodeProto::new("Gemm", name, &ins, &[&y]).with(A::int("transB", gemm.trans_b as i64));
                if gemm.trans_a {
                    n = n.with(A::int("transA", 1));
                }
                if gemm.alpha != 1.0 {
                    n = n.with(A::float("alpha", gemm.alpha));
                }
                if gemm.beta != 1.0 {
                    n = n.with(A::float("beta", gemm.beta));
                }
                self.push(n);
                if *act != Act::None {
                    self.act(&format!("{name}.act"), &y, &out, *act);
                }
                rank = 2;
            }
            Op::Add { act } => {
                let b = self.values[self.input(node, 1)?].clone();
                let y = if *act == Act::None { out.clone() } else { format!("{out}.sum") };
                self.push(NodeProto::new("Add", name, &[&xv, &b], &[&y]));
                if *act != Act::None {
                    self.act(&format!("{name}.act"), &y, &out, *act);
                }
            }
            Op::Concat => {
                let ins: Vec<&str> = node.inputs.iter().map(|&t| self.values[t].as_str()).collect();
                let n = NodeProto::new("Concat", name, &ins, &[&out]).with(A::int("axis", 1));
                self.push(n);
            }
            Op::Flatten => {
                self.push(NodeProto::new("Flatten", name, &[&xv], &[&out]).with(A::int("axis", 1)));
                rank = 2;
            }
            Op::Softmax(_) => self.push(NodeProto::new("Softmax", name, &[&xv], &[&out]).with(A::int("axis", 1))),
            Op::Lrn(l) => {
                spatial(self)?;
                self.push(
                    NodeProto::new("LRN", name, &[&xv], &[&out])
                        .with(A::int("size", i(l.size)))
                        .with(A::float("alpha", l.alpha))
                        .with(A::float("beta", l.beta))
                        .with(A::float("bias", l.bias)),
                );
            }
            Op::Identity => self.push(NodeProto::new("Identity", name, &[&xv], &[&out])),
        }
        self.rank[node.output] = rank;
        Ok(())
    }
}
