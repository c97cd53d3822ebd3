//! Graph rewrites that merge layers into the fused epilogues of convolutions and linear
//! layers: what an inference engine launches, as opposed to the layer-per-op graph the
//! model is written as.
//!
//! Three rewrites, each switchable off ([`RewriteOptions`]), applied in this order:
//!
//! 1. **Batch-norm absorption.** A `Conv` whose output only a `BatchNorm` reads (and whose
//!    epilogue has no activation, residual or scale/shift yet) absorbs it.
//!    * `fold_bn`: folded into the conv's weights, computed in f64 and stored as f32:
//!      `s = gamma / sqrt(var + eps)`, `w' = w · s[oc]`, `b' = (b − mean) · s + beta`
//!      (`b = 0` for a conv without bias; the conv gains a bias).
//!    * `fold_bn` off but `fuse_act` or `fuse_residual` on: the BN becomes the epilogue's
//!      per-channel scale / shift instead (`Epilogue::scale_shift`, weights
//!      `{conv}.scale` = `s` and `{conv}.shift` = `beta − mean · s`, from
//!      [`reference::fold_batch_norm`]); without that the activation after a BN could
//!      not be fused.
//! 2. **Residual fusion** (`fuse_residual`): `Add(a, b)` where one operand is the output of
//!    a conv read by nothing else (epilogue without activation or residual) becomes that
//!    conv with `epi.residual` and the other operand as its second input; the Add's
//!    activation moves into the epilogue (`act((acc + bias) · scale + shift + residual)`).
//!    The first operand is preferred (ResNet's main path: torchvision's `out += identity`
//!    and [`crate::models`] both put it first). If the other operand is computed after the
//!    conv (ResNet's downsample branch), the fused node takes the Add's place in the node
//!    order, where both are available; otherwise it stays where the conv was.
//! 3. **Activation fusion** (`fuse_act`): `Relu` or `Clip` (ReLU6) reading a tensor that
//!    only it reads, produced by a `Conv`, `Linear` or `Add` without an activation yet,
//!    moves into that node. Runs last, so ONNX's `Conv → Add → Relu` (three nodes) ends
//!    as one conv.
//!
//! The graph output is never fused away (it counts as a reader). Fused nodes keep the
//! conv's (or linear's, or add's) name and list the layers they absorbed in
//! [`Node::fused`]; tensor ids are renumbered (input first, then node outputs in order)
//! but tensor names are kept. Since weights are named and materialised separately,
//! [`rewrite`] returns new [`Weights`] that go with the new graph: exactly the weights it
//! references, folded values under the conv's own kernel / bias names (so never mix them
//! with the original graph).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::graph::{Graph, Node, Op, TensorId, TensorInfo, Weight, WeightRole};
use crate::ops::{Act, Epilogue};
use crate::weights::Weights;
use crate::{reference, Error, Result};

/// Which rewrites [`rewrite`] applies. `Default` is all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RewriteOptions {
    /// Fold batch-norms into the preceding conv's weights and bias.
    pub fold_bn: bool,
    /// Fuse ReLU / Clip into the preceding conv, linear or add.
    pub fuse_act: bool,
    /// Fuse residual adds (and their activation) into the conv producing one operand.
    pub fuse_residual: bool,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        RewriteOptions::all()
    }
}

impl RewriteOptions {
    pub const fn all() -> Self {
        RewriteOptions { fold_bn: true, fuse_act: true, fuse_residual: true }
    }

    /// No rewrite: [`rewrite`] returns the graph unchanged.
    pub const fn none() -> Self {
        RewriteOptions { fold_bn: false, fuse_act: false, fuse_residual: false }
    }

    /// Whether a batch-norm after a conv is absorbed at all (folded, or as scale/shift).
    pub const fn absorbs_bn(&self) -> bool {
        self.fold_bn || self.fuse_act || self.fuse_residual
    }
}

/// Rewrites `g` with `opts`, returning the new graph and the weights that go with it (see
/// the module docs). Fails when a weight the rewrite reads is missing from `w` or has the
/// wrong length, or when a weight of the result is missing.
pub fn rewrite(g: &Graph, w: &Weights, opts: RewriteOptions) -> Result<(Graph, Weights)> {
    let mut work = Work::new(g, Some(w));
    work.run(opts)?;
    let g2 = work.finish()?;
    let mut out = Weights::default();
    for node in &g2.nodes {
        for wt in &node.weights {
            let v = work.value(&wt.name).ok_or_else(|| {
                Error::Invalid(format!("rewrite: weight `{}` of `{}` is missing", wt.name, node.name))
            })?;
            check_len(&wt.name, &v, wt.len())?;
            out.insert_shared(wt.name.clone(), v);
        }
    }
    Ok((g2, out))
}

/// The structural part of [`rewrite`] alone, without weight values: what a fused model
/// looks like and how many kernels it launches.
pub fn rewrite_graph(g: &Graph, opts: RewriteOptions) -> Result<Graph> {
    let mut work = Work::new(g, None);
    work.run(opts)?;
    work.finish()
}

fn check_len(name: &str, v: &[f32], want: usize) -> Result<()> {
    if v.len() == want {
        Ok(())
    } else {
        Err(Error::Invalid(format!("rewrite: weight `{name}` has {} values, expected {want}", v.len())))
    }
}

/// The graph being rewritten: nodes keep their slots (a fused-away node leaves `None`),
/// tensors keep their ids until [`Work::finish`].
struct Work<'a> {
    name: String,
    tensors: Vec<TensorInfo>,
    input: TensorId,
    nodes: Vec<Option<Node>>,
    /// Slot of the node producing each tensor (`None`: the graph input, or dead).
    producer: Vec<Option<usize>>,
    /// Readers of each tensor, the graph output counting as one.
    uses: Vec<usize>,
    output: TensorId,
    src: Option<&'a Weights>,
    /// Values computed by the rewrite, overriding `src`.
    computed: HashMap<String, Arc<Vec<f32>>>,
    /// Weight names in use (so new names never collide), and how many nodes share each.
    taken: HashSet<String>,
    shared: HashMap<String, usize>,
}

impl<'a> Work<'a> {
    fn new(g: &Graph, src: Option<&'a Weights>) -> Self {
        let mut producer = vec![None; g.tensors.len()];
        for (i, n) in g.nodes.iter().enumerate() {
            producer[n.output] = Some(i);
        }
        let mut shared = HashMap::new();
        for n in &g.nodes {
            for w in &n.weights {
                *shared.entry(w.name.clone()).or_insert(0) += 1;
            }
        }
        Work {
            name: g.name.clone(),
            tensors: g.tensors.clone(),
            input: g.input,
            nodes: g.nodes.iter().cloned().map(Some).collect(),
            producer,
            uses: g.use_counts(),
            output: g.output,
            src,
            computed: HashMap::new(),
            taken: shared.keys().cloned().collect(),
            shared,
        }
    }

    fn run(&mut self, opts: RewriteOptions) -> Result<()> {
        if opts.absorbs_bn() {
            self.absorb_batch_norms(opts.fold_bn)?;
        }
        if opts.fuse_residual {
            self.fuse_residuals();
        }
        if opts.fuse_act {
            self.fuse_activations();
        }
        Ok(())
    }

    /// Current values of weight `name`: computed by the rewrite, else the source's.
    /// `None` when absent (always, for a structure-only rewrite).
    fn value(&self, name: &str) -> Option<Arc<Vec<f32>>> {
        self.computed.get(name).or_else(|| self.src.and_then(|w| w.get(name))).cloned()
    }

    /// Values of a weight the rewrite needs; `None` only in a structure-only rewrite.
    fn need(&self, w: &Weight, node: &str) -> Result<Option<Arc<Vec<f32>>>> {
        if self.src.is_none() {
            return Ok(None);
        }
        let v = self
            .value(&w.name)
            .ok_or_else(|| Error::Invalid(format!("rewrite: weight `{}` of `{node}` is missing", w.name)))?;
        check_len(&w.name, &v, w.len())?;
        Ok(Some(v))
    }

    /// A weight name based on `base` that no other weight of the graph uses.
    fn fresh(&mut self, base: String) -> String {
        let mut name = base.clone();
        let mut k = 1;
        while self.taken.contains(&name) {
            name = format!("{base}.{k}");
            k += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    /// Name for rewritten values of `w` (a weight of node `owner`): its own name unless
    /// another node shares it.
    fn own_name(&mut self, w: &Weight, owner: &str) -> String {
        if self.shared.get(&w.name).copied().unwrap_or(0) <= 1 {
            w.name.clone()
        } else {
            let suffix = w.name.rsplit('.').next().unwrap_or("weight").to_string();
            self.fresh(format!("{owner}.{suffix}.folded"))
        }
    }

    /// Slot of the node producing `t` if nothing but one reader uses `t`.
    fn sole_producer(&self, t: TensorId) -> Option<usize> {
        if self.uses[t] == 1 {
            self.producer[t]
        } else {
            None
        }
    }

    /// Moves node `b` (slot `bi`) into node `a` (slot `ai`): `a` now produces `b`'s output,
    /// at slot `at` (`ai` or `bi`); `a`'s old output is dead.
    fn merge(&mut self, ai: usize, bi: usize, at: usize) {
        let b = self.nodes[bi].take().expect("merge: live node");
        let mut a = self.nodes[ai].take().expect("merge: live node");
        self.uses[a.output] = 0;
        self.producer[a.output] = None;
        a.output = b.output;
        a.fused.push(b.name);
        a.fused.extend(b.fused);
        self.producer[b.output] = Some(at);
        self.nodes[at] = Some(a);
    }

    fn absorb_batch_norms(&mut self, fold: bool) -> Result<()> {
        for i in 0..self.nodes.len() {
            let Some(Node { op: Op::BatchNorm(bn), inputs, .. }) = &self.nodes[i] else { continue };
            let (eps, x) = (bn.eps, inputs[0]);
            let Some(p) = self.sole_producer(x) else { continue };
            let Some(Node { op: Op::Conv { epi, .. }, .. }) = &self.nodes[p] else { continue };
            if epi.act != Act::None || epi.residual || epi.scale_shift {
                continue;
            }
            let bn_node = self.nodes[i].as_ref().expect("live");
            let bn_name = bn_node.name.clone();
            let mut params = Vec::with_capacity(4);
            for role in [WeightRole::BnGamma, WeightRole::BnBeta, WeightRole::BnMean, WeightRole::BnVar] {
                let w = bn_node
                    .weight(role)
                    .cloned()
                    .ok_or_else(|| Error::Invalid(format!("rewrite: batch-norm `{bn_name}` has no {role:?} weight")))?;
                params.push(w);
            }
            let mut vals = Vec::with_capacity(4);
            for w in &params {
                vals.push(self.need(w, &bn_name)?);
            }
            if fold {
                self.fold_into(p, eps, &vals)?;
            } else {
                self.scale_shift_into(p, eps, &vals, &bn_name)?;
            }
            self.merge(p, i, p);
        }
        Ok(())
    }

    /// Folds BN parameters `[gamma, beta, mean, var]` into conv `p`'s kernel and bias.
    fn fold_into(&mut self, p: usize, eps: f32, bn: &[Option<Arc<Vec<f32>>>]) -> Result<()> {
        let conv_node = self.nodes[p].clone().expect("live");
        let Op::Conv { conv, mut epi } = conv_node.op else { unreachable!("checked by the caller") };
        let kernel = conv_node
            .weight(WeightRole::Kernel)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("rewrite: conv `{}` has no kernel weight", conv_node.name)))?;
        let bias = if epi.bias {
            Some(conv_node.weight(WeightRole::Bias).cloned().ok_or_else(|| {
                Error::Invalid(format!("rewrite: conv `{}` has a bias epilogue but no bias weight", conv_node.name))
            })?)
        } else {
            None
        };
        let kernel_vals = self.need(&kernel, &conv_node.name)?;
        let bias_vals = match &bias {
            Some(b) => self.need(b, &conv_node.name)?,
            None => None,
        };
        let kname = self.own_name(&kernel, &conv_node.name);
        let bias_w = match &bias {
            Some(b) => Weight { name: self.own_name(b, &conv_node.name), ..b.clone() },
            None => Weight {
                name: self.fresh(format!("{}.bias", conv_node.name)),
                role: WeightRole::Bias,
                shape: vec![conv.c_out],
            },
        };
        if let (Some(k), [Some(g), Some(be), Some(m), Some(v)]) = (&kernel_vals, bn) {
            let c = conv.c_out;
            for (what, x) in [("gamma", g), ("beta", be), ("mean", m), ("var", v)] {
                check_len(what, x, c)?;
            }
            let per = k.len() / c;
            let s: Vec<f64> = (0..c).map(|oc| g[oc] as f64 / (v[oc] as f64 + eps as f64).sqrt()).collect();
            let folded: Vec<f32> = k.iter().enumerate().map(|(i, &wv)| (wv as f64 * s[i / per]) as f32).collect();
            let b0 = |oc: usize| bias_vals.as_ref().map_or(0.0, |b| b[oc] as f64);
            let new_bias: Vec<f32> =
                (0..c).map(|oc| ((b0(oc) - m[oc] as f64) * s[oc] + be[oc] as f64) as f32).collect();
            self.computed.insert(kname.clone(), Arc::new(folded));
            self.computed.insert(bias_w.name.clone(), Arc::new(new_bias));
        }
        epi.bias = true;
        let node = self.nodes[p].as_mut().expect("live");
        node.op = Op::Conv { conv, epi };
        node.weights = node
            .weights
            .iter()
            .filter(|w| w.role != WeightRole::Bias)
            .map(|w| if w.role == WeightRole::Kernel { Weight { name: kname.clone(), ..w.clone() } } else { w.clone() })
            .chain(std::iter::once(bias_w))
            .collect();
        Ok(())
    }

    /// Makes BN parameters `[gamma, beta, mean, var]` conv `p`'s epilogue scale / shift.
    fn scale_shift_into(&mut self, p: usize, eps: f32, bn: &[Option<Arc<Vec<f32>>>], bn_name: &str) -> Result<()> {
        let conv_name = self.nodes[p].as_ref().expect("live").name.clone();
        let Some(Node { op: Op::Conv { conv, epi }, .. }) = self.nodes[p].clone() else { unreachable!() };
        let scale_w =
            Weight { name: self.fresh(format!("{conv_name}.scale")), role: WeightRole::Scale, shape: vec![conv.c_out] };
        let shift_w =
            Weight { name: self.fresh(format!("{conv_name}.shift")), role: WeightRole::Shift, shape: vec![conv.c_out] };
        if let [Some(g), Some(be), Some(m), Some(v)] = bn {
            let (s, t) = reference::fold_batch_norm(g, be, m, v, eps)
                .map_err(|e| Error::Invalid(format!("rewrite: batch-norm `{bn_name}`: {e}")))?;
            check_len(&scale_w.name, &s, conv.c_out)?;
            self.computed.insert(scale_w.name.clone(), Arc::new(s));
            self.computed.insert(shift_w.name.clone(), Arc::new(t));
        }
        let node = self.nodes[p].as_mut().expect("live");
        node.op = Op::Conv { conv, epi: Epilogue { scale_shift: true, ..epi } };
        node.weights.extend([scale_w, shift_w]);
        Ok(())
    }

    fn fuse_residuals(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(Node { op: Op::Add { act }, inputs, .. }) = &self.nodes[i] else { continue };
            let (act, a, b) = (*act, inputs[0], inputs[1]);
            if a == b {
                continue;
            }
            let eligible = |t: TensorId| {
                let p = self.sole_producer(t)?;
                match &self.nodes[p] {
                    Some(Node { op: Op::Conv { epi, .. }, .. }) if epi.act == Act::None && !epi.residual => Some(p),
                    _ => None,
                }
            };
            let Some((p, other)) = eligible(a).map(|p| (p, b)).or_else(|| eligible(b).map(|p| (p, a))) else {
                continue;
            };
            // Stay at the conv's slot when the residual is ready by then, else take the Add's.
            let ready = self.producer[other].is_none_or(|q| q < p);
            let at = if ready { p } else { i };
            let conv = self.nodes[p].as_mut().expect("live");
            if let Op::Conv { epi, .. } = &mut conv.op {
                epi.residual = true;
                epi.act = act;
            }
            conv.inputs.push(other);
            self.merge(p, i, at);
        }
    }

    fn fuse_activations(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(Node { op: Op::Act(act @ (Act::Relu | Act::Clip { .. })), inputs, .. }) = &self.nodes[i] else {
                continue;
            };
            let (act, x) = (*act, inputs[0]);
            let Some(p) = self.sole_producer(x) else { continue };
            let Some(node) = self.nodes[p].as_mut() else { continue };
            let slot = match &mut node.op {
                Op::Conv { epi, .. } => &mut epi.act,
                Op::Linear { act, .. } => act,
                Op::Add { act } => act,
                _ => continue,
            };
            if *slot != Act::None {
                continue;
            }
            *slot = act;
            self.merge(p, i, p);
        }
    }

    /// Drops fused-away slots, renumbers tensors (input first, then node outputs in order)
    /// and validates.
    fn finish(&self) -> Result<Graph> {
        let mut map: Vec<Option<TensorId>> = vec![None; self.tensors.len()];
        let mut tensors = vec![self.tensors[self.input].clone()];
        map[self.input] = Some(0);
        let live: Vec<&Node> = self.nodes.iter().flatten().collect();
        for n in &live {
            map[n.output] = Some(tensors.len());
            tensors.push(self.tensors[n.output].clone());
        }
        let id = |t: TensorId| {
            map[t]
                .ok_or_else(|| Error::Invalid(format!("rewrite: tensor `{}` lost its producer", self.tensors[t].name)))
        };
        let mut nodes = Vec::with_capacity(live.len());
        for n in live {
            let mut n = n.clone();
            n.output = id(n.output)?;
            n.inputs = n.inputs.iter().map(|&t| id(t)).collect::<Result<_>>()?;
            nodes.push(n);
        }
        let g = Graph { name: self.name.clone(), tensors, nodes, input: 0, output: id(self.output)? };
        g.validate().map_err(|e| Error::Invalid(format!("rewrite produced an invalid graph: {e}")))?;
        Ok(g)
    }
}
