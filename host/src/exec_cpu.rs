//! The CPU reference backend: runs a whole [`Graph`] node by node with the f64
//! [`reference`] functions (`--device cpu`), NCHW layout.
//!
//! Each layer computes in f64 from f32 operands, and its result is rounded to f32 before
//! the next layer reads it: activations travel between layers as f32, exactly as on the
//! GPU path, so the two differ only by what happens *inside* a layer. Weights are the f32
//! values of [`Weights`].
//!
//! `Flatten` and `Identity` alias their input (no copy), as on the GPU. Every tensor is
//! freed right after its last reader has run (last uses are computed once, from
//! [`Graph::last_uses`]), so peak memory is the widest cut of the graph, not its sum
//! (VGG-16 at batch 1 holds two or three activations at a time).

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::graph::{Graph, Node, Op, WeightRole};
use crate::ops::{Layout, OpError};
use crate::reference::{self, EpilogueArgs};
use crate::weights::Weights;
use crate::{Error, Result};

/// What [`run_with`] reports after each node.
#[derive(Debug)]
pub struct LayerRun<'a> {
    /// Index in [`Graph::nodes`].
    pub index: usize,
    pub node: &'a Node,
    /// Wall time of the node: the reference computation and the rounding to f32.
    pub elapsed: Duration,
    /// The node's output, NCHW, as the next layer will read it.
    pub output: &'a [f32],
    /// f32 elements of all activations held once this node has run and the tensors it
    /// was the last reader of are freed (aliases counted once).
    pub live_elements: usize,
}

/// One node's time, from [`run_timed`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerTime {
    pub index: usize,
    pub name: String,
    /// ONNX-style op name ([`Op::op_name`]).
    pub op: &'static str,
    pub elapsed: Duration,
}

/// Runs `g` on `input` (NCHW, the graph input's length) with weights `w`; returns the
/// graph output.
pub fn run(g: &Graph, w: &Weights, input: &[f32]) -> Result<Vec<f32>> {
    run_with(g, w, input, |_| {})
}

/// [`run`], also returning each node's wall time, in node order.
pub fn run_timed(g: &Graph, w: &Weights, input: &[f32]) -> Result<(Vec<f32>, Vec<LayerTime>)> {
    let mut times = Vec::with_capacity(g.nodes.len());
    let out = run_with(g, w, input, |r| {
        times.push(LayerTime { index: r.index, name: r.node.name.clone(), op: r.node.op.op_name(), elapsed: r.elapsed })
    })?;
    Ok((out, times))
}

/// [`run`], calling `on_layer` after every node.
pub fn run_with(g: &Graph, w: &Weights, input: &[f32], mut on_layer: impl FnMut(&LayerRun)) -> Result<Vec<f32>> {
    g.validate().map_err(|e| Error::Invalid(format!("{}: {e}", g.name)))?;
    let want = numel(g, g.input);
    if input.len() != want {
        return Err(Error::Invalid(format!(
            "{}: input has {} elements, expected {want} ({:?})",
            g.name,
            input.len(),
            g.tensors[g.input].dims
        )));
    }
    let last = g.last_uses();
    let mut slots: Vec<Option<Rc<Vec<f32>>>> = vec![None; g.tensors.len()];
    slots[g.input] = Some(Rc::new(input.to_vec()));
    for (i, node) in g.nodes.iter().enumerate() {
        let t0 = Instant::now();
        let out = exec_node(g, w, node, &slots).map_err(|e| Error::Invalid(format!("{}: {e}", node.name)))?;
        let elapsed = t0.elapsed();
        if out.len() != numel(g, node.output) {
            return Err(Error::Invalid(format!(
                "{}: produced {} elements for a {:?} tensor",
                node.name,
                out.len(),
                g.tensors[node.output].dims
            )));
        }
        slots[node.output] = Some(out);
        for &t in &node.inputs {
            if last[t] == Some(i) {
                slots[t] = None;
            }
        }
        let output = Rc::clone(slots[node.output].as_ref().expect("just stored"));
        if last[node.output].is_none() {
            slots[node.output] = None; // nobody reads it
        }
        let mut seen: Vec<*const Vec<f32>> = Vec::new();
        let mut live_elements = 0;
        for s in slots.iter().flatten() {
            let p = Rc::as_ptr(s);
            if !seen.contains(&p) {
                seen.push(p);
                live_elements += s.len();
            }
        }
        on_layer(&LayerRun { index: i, node, elapsed, output: &output, live_elements });
    }
    let out = slots[g.output].take().ok_or_else(|| Error::Invalid(format!("{}: no output", g.name)))?;
    drop(slots);
    Ok(Rc::try_unwrap(out).unwrap_or_else(|rc| rc.as_ref().clone()))
}

fn numel(g: &Graph, t: usize) -> usize {
    g.tensors[t].dims.iter().product()
}

/// The values of `node`'s weight with `role`, length-checked.
fn weight<'w>(w: &'w Weights, node: &Node, role: WeightRole) -> std::result::Result<&'w [f32], String> {
    let spec = node.weight(role).ok_or_else(|| format!("no {role:?} weight"))?;
    let v = w.get(&spec.name).ok_or_else(|| format!("weight `{}` is missing", spec.name))?;
    if v.len() != spec.len() {
        return Err(format!(
            "weight `{}` has {} values, expected {} ({:?})",
            spec.name,
            v.len(),
            spec.len(),
            spec.shape
        ));
    }
    Ok(v.as_slice())
}

fn to_f32(y: std::result::Result<Vec<f64>, OpError>) -> std::result::Result<Rc<Vec<f32>>, String> {
    let y = y.map_err(|e| e.to_string())?;
    Ok(Rc::new(y.into_iter().map(|v| v as f32).collect()))
}

fn exec_node(
    g: &Graph,
    w: &Weights,
    node: &Node,
    slots: &[Option<Rc<Vec<f32>>>],
) -> std::result::Result<Rc<Vec<f32>>, String> {
    let x = |k: usize| -> std::result::Result<&[f32], String> {
        let t = *node.inputs.get(k).ok_or_else(|| format!("has no input {k}"))?;
        slots[t].as_deref().map(Vec::as_slice).ok_or_else(|| format!("input `{}` is not available", g.tensors[t].name))
    };
    let nchw = Layout::Nchw;
    match &node.op {
        Op::Conv { conv, epi } => {
            let opt = |on: bool, role| if on { weight(w, node, role).map(Some) } else { Ok(None) };
            let args = EpilogueArgs {
                bias: opt(epi.bias, WeightRole::Bias)?,
                scale: opt(epi.scale_shift, WeightRole::Scale)?,
                shift: opt(epi.scale_shift, WeightRole::Shift)?,
                residual: if epi.residual { Some(x(1)?) } else { None },
                act: epi.act,
            };
            to_f32(reference::conv2d(conv, nchw, x(0)?, weight(w, node, WeightRole::Kernel)?, &args))
        }
        Op::BatchNorm(bn) => to_f32(reference::batch_norm(
            bn,
            nchw,
            x(0)?,
            weight(w, node, WeightRole::BnGamma)?,
            weight(w, node, WeightRole::BnBeta)?,
            weight(w, node, WeightRole::BnMean)?,
            weight(w, node, WeightRole::BnVar)?,
        )),
        Op::Act(a) => to_f32(reference::activation(*a, x(0)?)),
        Op::Pool(p) => to_f32(reference::pool2d(p, nchw, x(0)?)),
        Op::Linear { gemm, bias, act } => {
            let b = if *bias { Some(weight(w, node, WeightRole::Bias)?) } else { None };
            let y = reference::gemm(gemm, x(0)?, weight(w, node, WeightRole::Kernel)?, b);
            to_f32(y.map(|y| y.into_iter().map(|v| act.apply(v)).collect()))
        }
        Op::Add { act } => to_f32(reference::add(x(0)?, x(1)?, *act)),
        Op::Concat => {
            let [n, _, h, wd] = g.tensors[node.output].dims;
            let mut parts = Vec::with_capacity(node.inputs.len());
            for (k, &t) in node.inputs.iter().enumerate() {
                parts.push((x(k)?, g.tensors[t].dims[1]));
            }
            to_f32(reference::concat_channels(&parts, [n, h, wd], nchw))
        }
        Op::Flatten | Op::Identity => {
            let t = node.inputs[0];
            slots[t].clone().ok_or_else(|| format!("input `{}` is not available", g.tensors[t].name))
        }
        Op::Softmax(s) => to_f32(reference::softmax(s, x(0)?)),
        Op::Lrn(l) => to_f32(reference::lrn(l, nchw, x(0)?)),
    }
}
