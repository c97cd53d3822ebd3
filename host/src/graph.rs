//! The layer graph: a DAG of layers over named tensors, with shapes inferred as it is
//! built and, per layer, the FLOPs and bytes every efficiency report divides by.
//!
//! Tensors are logical NCHW (`[n, c, h, w]`) or, after `Flatten`, `[n, features, 1, 1]`:
//! one 4-D shape type keeps every op's shape rule simple. Weights are described (name,
//! role, shape) but hold no data: the runtime materialises them from a seed, so listing
//! a model costs nothing.

use crate::ops::{Act, BatchNorm, Conv2d, DType, Epilogue, Gemm, Lrn, OpError, Pool2d, PoolKind, Softmax};

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// A tensor's logical NCHW shape.
pub type Dims = [usize; 4];

#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Dims,
}

/// What a weight tensor is for; decides how it is initialised and whether it counts as a
/// trainable parameter (batch-norm running statistics do not, as in PyTorch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightRole {
    /// Conv weights OIHW, or a linear layer's `[out, in]`.
    Kernel,
    Bias,
    BnGamma,
    BnBeta,
    BnMean,
    BnVar,
    /// Per-output-channel epilogue scale of a conv that absorbed a batch-norm
    /// (`gamma / sqrt(var + eps)`; see [`crate::rewrite`]).
    Scale,
    /// Per-output-channel epilogue shift of a conv that absorbed a batch-norm
    /// (`beta - mean * scale`).
    Shift,
}

impl WeightRole {
    /// Whether the weight counts as a trainable parameter. An absorbed batch-norm's
    /// scale and shift stand in for its gamma and beta, so they count.
    pub fn is_parameter(self) -> bool {
        !matches!(self, WeightRole::BnMean | WeightRole::BnVar)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Weight {
    pub name: String,
    pub role: WeightRole,
    pub shape: Vec<usize>,
}

impl Weight {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A layer's operation, with its geometry at the graph's batch size.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Convolution with its fused epilogue (a plain conv has `Epilogue::NONE` or a bias).
    /// With `epi.residual` the node's second input is the residual tensor.
    Conv {
        conv: Conv2d,
        epi: Epilogue,
    },
    BatchNorm(BatchNorm),
    Act(Act),
    Pool(Pool2d),
    /// Fully connected: `[n, k] x [m, k]^T (+ bias) -> [n, m]`, then `act`.
    Linear {
        gemm: Gemm,
        bias: bool,
        act: Act,
    },
    /// `act(a + b)`.
    Add {
        act: Act,
    },
    /// Channel concatenation of all inputs.
    Concat,
    /// `[n, c, h, w] -> [n, c*h*w, 1, 1]`; no data moves.
    Flatten,
    Softmax(Softmax),
    Lrn(Lrn),
    /// Identity at inference (Dropout, Identity); no kernel.
    Identity,
}

impl Op {
    /// The layer type the reports group by.
    pub fn layer_type(&self) -> crate::registry::LayerType {
        use crate::registry::LayerType as L;
        match self {
            Op::Conv { .. } => L::Conv,
            Op::Linear { .. } => L::Gemm,
            Op::Pool(_) => L::Pool,
            Op::Act(_) => L::Activation,
            Op::BatchNorm(_) | Op::Lrn(_) => L::Norm,
            Op::Softmax(_) => L::Softmax,
            Op::Add { .. } => L::Add,
            Op::Concat => L::Concat,
            Op::Flatten | Op::Identity => L::Convert,
        }
    }

    /// ONNX-style op name, for tables and traces.
    pub fn op_name(&self) -> &'static str {
        match self {
            Op::Conv { .. } => "Conv",
            Op::BatchNorm(_) => "BatchNormalization",
            Op::Act(Act::Relu) => "Relu",
            Op::Act(Act::Clip { .. }) => "Clip",
            Op::Act(Act::Sigmoid) => "Sigmoid",
            Op::Act(Act::Tanh) => "Tanh",
            Op::Act(Act::None) => "Identity",
            Op::Pool(p) => match p.kind {
                PoolKind::Max => "MaxPool",
                PoolKind::Avg => "AveragePool",
                PoolKind::GlobalAvg => "GlobalAveragePool",
            },
            Op::Linear { .. } => "Gemm",
            Op::Add { .. } => "Add",
            Op::Concat => "Concat",
            Op::Flatten => "Flatten",
            Op::Softmax(_) => "Softmax",
            Op::Lrn(_) => "LRN",
            Op::Identity => "Identity",
        }
    }

    /// Whether executing this op launches a kernel (Flatten and Identity are views).
    pub fn launches(&self) -> bool {
        !matches!(self, Op::Flatten | Op::Identity)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub output: TensorId,
    pub weights: Vec<Weight>,
    /// Names of the layers a graph rewrite merged into this node (in graph order: e.g.
    /// `["bn1", "bn1.act"]` for a conv that absorbed its batch-norm and ReLU), so reports
    /// can say what one kernel covers. Empty for a node built as is.
    pub fused: Vec<String>,
}

impl Node {
    /// The node's weight with `role`, if any (a node has at most one of each role).
    pub fn weight(&self, role: WeightRole) -> Option<&Weight> {
        self.weights.iter().find(|w| w.role == role)
    }

    /// The node's own name followed by the names of the layers fused into it.
    pub fn covered_layers(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.fused.iter().map(String::as_str))
    }
}

/// A model at one batch size.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub name: String,
    pub tensors: Vec<TensorInfo>,
    pub nodes: Vec<Node>,
    pub input: TensorId,
    pub output: TensorId,
}

fn numel(d: &Dims) -> usize {
    d.iter().product()
}

impl Graph {
    pub fn batch(&self) -> usize {
        self.tensors[self.input].dims[0]
    }

    /// Trainable parameters (what torchvision's `sum(p.numel())` counts).
    pub fn parameter_count(&self) -> usize {
        self.nodes.iter().flat_map(|n| &n.weights).filter(|w| w.role.is_parameter()).map(Weight::len).sum()
    }

    /// Multiply-accumulates of the convolutions and linear layers (the usual "model FLOPs"
    /// are twice this).
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Conv { conv, .. } => conv.macs(),
                Op::Linear { gemm, .. } => (gemm.m * gemm.n * gemm.k) as u64,
                _ => 0,
            })
            .sum()
    }

    /// FLOPs of one node, epilogues and elementwise work included.
    pub fn node_flops(&self, node: &Node) -> u64 {
        let out = numel(&self.tensors[node.output].dims) as u64;
        match &node.op {
            Op::Conv { conv, epi } => conv.flops_with(epi),
            Op::Linear { gemm, bias, act } => gemm.flops() + out * (*bias as u64 + act.flops_per_elem()),
            Op::BatchNorm(b) => b.flops(),
            Op::Act(a) => out * a.flops_per_elem(),
            Op::Pool(p) => p.flops(),
            Op::Add { act } => out * (1 + act.flops_per_elem()),
            Op::Softmax(s) => s.flops(),
            Op::Lrn(l) => l.flops(),
            Op::Concat | Op::Flatten | Op::Identity => 0,
        }
    }

    /// Minimal device-memory traffic of one node: inputs and weights read once, output
    /// written once.
    pub fn node_bytes(&self, node: &Node, dtype: DType) -> u64 {
        if !node.op.launches() {
            return 0;
        }
        let elems: usize = node.inputs.iter().map(|&t| numel(&self.tensors[t].dims)).sum::<usize>()
            + node.weights.iter().map(Weight::len).sum::<usize>()
            + numel(&self.tensors[node.output].dims);
        (elems * dtype.size_bytes()) as u64
    }

    /// Nodes that launch a kernel: one launch per node, so after [`crate::rewrite`] a
    /// fused conv (+ batch-norm + activation + residual add) counts once.
    pub fn kernel_layers(&self) -> usize {
        self.nodes.iter().filter(|n| n.op.launches()).count()
    }

    /// How many times each tensor is read: once per node input slot, plus one for the
    /// graph output (so the output is never "dead").
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.tensors.len()];
        for n in &self.nodes {
            for &t in &n.inputs {
                uses[t] += 1;
            }
        }
        uses[self.output] += 1;
        uses
    }

    /// Per tensor, the index in [`Graph::nodes`] of the last node reading it; `None` for a
    /// tensor nobody reads. The graph output's entry is `Some(nodes.len())`: it outlives
    /// every node. Executors free a tensor once its last reader has run.
    pub fn last_uses(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.tensors.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &t in &n.inputs {
                last[t] = Some(i);
            }
        }
        last[self.output] = Some(self.nodes.len());
        last
    }

    /// Checks the graph is a DAG in topological order with consistent shapes.
    pub fn validate(&self) -> Result<(), OpError> {
        let mut defined = vec![false; self.tensors.len()];
        defined[self.input] = true;
        for n in &self.nodes {
            for &i in &n.inputs {
                if !defined.get(i).copied().unwrap_or(false) {
                    return Err(OpError::Invalid { op: "graph", msg: format!("{} reads an undefined tensor", n.name) });
                }
            }
            if defined.get(n.output).copied().unwrap_or(true) {
                return Err(OpError::Invalid { op: "graph", msg: format!("{} rewrites tensor {}", n.name, n.output) });
            }
            if let Op::Conv { epi, .. } = &n.op {
                let want = 1 + epi.residual as usize;
                if n.inputs.len() != want {
                    return Err(OpError::Invalid {
                        op: "graph",
                        msg: format!("{}: conv has {} inputs, its epilogue needs {want}", n.name, n.inputs.len()),
                    });
                }
                if epi.residual && self.tensors[n.inputs[1]].dims != self.tensors[n.output].dims {
                    return Err(OpError::Invalid {
                        op: "graph",
                        msg: format!("{}: residual input is not shaped like the output", n.name),
                    });
                }
            }
            defined[n.output] = true;
        }
        if !defined.get(self.output).copied().unwrap_or(false) {
            return Err(OpError::Invalid { op: "graph", msg: "the output tensor is never produced".into() });
        }
        Ok(())
    }
}

/// Builds a graph layer by layer, inferring shapes; every method validates its op and
/// returns a clear error instead of panicking on a bad shape.
pub struct Builder {
    g: Graph,
}

fn w(name: &str, suffix: &str, role: WeightRole, shape: Vec<usize>) -> Weight {
    Weight { name: format!("{name}.{suffix}"), role, shape }
}

impl Builder {
    /// A graph named `name` whose input has `dims`.
    pub fn new(name: &str, dims: Dims) -> (Builder, TensorId) {
        let g = Graph {
            name: name.to_string(),
            tensors: vec![TensorInfo { name: "input".into(), dims }],
            nodes: Vec::new(),
            input: 0,
            output: 0,
        };
        (Builder { g }, 0)
    }

    pub fn dims(&self, t: TensorId) -> Dims {
        self.g.tensors[t].dims
    }

    fn push(&mut self, name: &str, op: Op, inputs: Vec<TensorId>, dims: Dims, weights: Vec<Weight>) -> TensorId {
        let out = self.g.tensors.len();
        self.g.tensors.push(TensorInfo { name: name.to_string(), dims });
        self.g.nodes.push(Node { name: name.to_string(), op, inputs, output: out, weights, fused: Vec::new() });
        out
    }

    /// Adds a convolution (weights OIHW, optional bias); `conv`'s input geometry is taken
    /// from `x`, so only the kernel, stride, padding, dilation and groups matter in it.
    pub fn conv(
        &mut self,
        x: TensorId,
        name: &str,
        c_out: usize,
        spec: Conv2d,
        bias: bool,
    ) -> Result<TensorId, OpError> {
        let [n, c, h, wd] = self.dims(x);
        let conv = Conv2d { n, c_in: c, h, w: wd, c_out, ..spec };
        conv.validate()?;
        let (oh, ow) = conv.out_hw();
        let mut ws = vec![w(name, "weight", WeightRole::Kernel, vec![c_out, c / conv.groups, conv.kh, conv.kw])];
        if bias {
            ws.push(w(name, "bias", WeightRole::Bias, vec![c_out]));
        }
        let epi = Epilogue { bias, ..Epilogue::NONE };
        Ok(self.push(name, Op::Conv { conv, epi }, vec![x], [n, c_out, oh, ow], ws))
    }

    pub fn batch_norm(&mut self, x: TensorId, name: &str, eps: f32) -> Result<TensorId, OpError> {
        let [n, c, h, wd] = self.dims(x);
        let bn = BatchNorm::new(n, c, h, wd).with_eps(eps);
        bn.validate()?;
        let ws = vec![
            w(name, "weight", WeightRole::BnGamma, vec![c]),
            w(name, "bias", WeightRole::BnBeta, vec![c]),
            w(name, "running_mean", WeightRole::BnMean, vec![c]),
            w(name, "running_var", WeightRole::BnVar, vec![c]),
        ];
        Ok(self.push(name, Op::BatchNorm(bn), vec![x], [n, c, h, wd], ws))
    }

    pub fn act(&mut self, x: TensorId, name: &str, act: Act) -> Result<TensorId, OpError> {
        act.validate()?;
        let d = self.dims(x);
        Ok(self.push(name, Op::Act(act), vec![x], d, vec![]))
    }

    /// Adds a pooling layer; `pool`'s input geometry is taken from `x`.
    pub fn pool(&mut self, x: TensorId, name: &str, pool: Pool2d) -> Result<TensorId, OpError> {
        let [n, c, h, wd] = self.dims(x);
        let mut p = Pool2d { n, c, h, w: wd, ..pool };
        if p.kind == PoolKind::GlobalAvg {
            (p.kh, p.kw) = (h, wd);
        }
        p.validate()?;
        let (oh, ow) = p.out_hw();
        Ok(self.push(name, Op::Pool(p), vec![x], [n, c, oh, ow], vec![]))
    }

    /// Fully connected layer over a flattened input `[n, k, 1, 1]`.
    pub fn linear(&mut self, x: TensorId, name: &str, out_features: usize, bias: bool) -> Result<TensorId, OpError> {
        let [n, k, h, wd] = self.dims(x);
        if h != 1 || wd != 1 {
            return Err(OpError::Invalid {
                op: "linear",
                msg: format!("{name}: input must be flattened, got {h}x{wd}"),
            });
        }
        let gemm = Gemm::linear(n, k, out_features, bias);
        gemm.validate()?;
        let mut ws = vec![w(name, "weight", WeightRole::Kernel, vec![out_features, k])];
        if bias {
            ws.push(w(name, "bias", WeightRole::Bias, vec![out_features]));
        }
        Ok(self.push(name, Op::Linear { gemm, bias, act: Act::None }, vec![x], [n, out_features, 1, 1], ws))
    }

    pub fn add(&mut self, a: TensorId, b: TensorId, name: &str, act: Act) -> Result<TensorId, OpError> {
        let (da, db) = (self.dims(a), self.dims(b));
        if da != db {
            return Err(OpError::Invalid { op: "add", msg: format!("{name}: shapes {da:?} and {db:?} differ") });
        }
        Ok(self.push(name, Op::Add { act }, vec![a, b], da, vec![]))
    }

    pub fn concat(&mut self, xs: &[TensorId], name: &str) -> Result<TensorId, OpError> {
        let first = xs
            .first()
            .map(|&t| self.dims(t))
            .ok_or(OpError::Invalid { op: "concat", msg: format!("{name}: no inputs") })?;
        let mut c = 0;
        for &t in xs {
            let d = self.dims(t);
            if (d[0], d[2], d[3]) != (first[0], first[2], first[3]) {
                return Err(OpError::Invalid {
                    op: "concat",
                    msg: format!("{name}: input {d:?} does not match {first:?} outside the channel axis"),
                });
            }
            c += d[1];
        }
        Ok(self.push(name, Op::Concat, xs.to_vec(), [first[0], c, first[2], first[3]], vec![]))
    }

    pub fn flatten(&mut self, x: TensorId, name: &str) -> TensorId {
        let [n, c, h, wd] = self.dims(x);
        self.push(name, Op::Flatten, vec![x], [n, c * h * wd, 1, 1], vec![])
    }

    pub fn identity(&mut self, x: TensorId, name: &str) -> TensorId {
        let d = self.dims(x);
        self.push(name, Op::Identity, vec![x], d, vec![])
    }

    pub fn softmax(&mut self, x: TensorId, name: &str) -> Result<TensorId, OpError> {
        let [n, c, h, wd] = self.dims(x);
        let s = Softmax::over_axis(&[n, c, h, wd], 1)?;
        Ok(self.push(name, Op::Softmax(s), vec![x], [n, c, h, wd], vec![]))
    }

    pub fn lrn(
        &mut self,
        x: TensorId,
        name: &str,
        size: usize,
        alpha: f32,
        beta: f32,
        bias: f32,
    ) -> Result<TensorId, OpError> {
        let [n, c, h, wd] = self.dims(x);
        let l = Lrn::new(n, c, h, wd, size).with_params(alpha, beta, bias);
        l.validate()?;
        Ok(self.push(name, Op::Lrn(l), vec![x], [n, c, h, wd], vec![]))
    }

    pub fn finish(mut self, output: TensorId) -> Result<Graph, OpError> {
        self.g.output = output;
        self.g.validate()?;
        Ok(self.g)
    }
}
