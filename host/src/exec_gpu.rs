//! The GPU backend (`--device gpu`): runs a whole [`Graph`] on one GPU with cnnergy's own
//! kernels, through the typed launchers of [`crate::launch`].
//!
//! A [`Plan`] is built once per (GPU, graph, weights, options). Building it
//! 1. picks a kernel for every node ([`select_kernels`], pure and unit-tested) and fails
//!    with an error naming the layer and its op when a node cannot run;
//! 2. assigns every activation to one of a few reusable device buffers by liveness
//!    ([`plan_memory`], pure and unit-tested: greedy best-fit over sizes, an output never
//!    shares a buffer with its inputs or with anything still to be read; `Flatten` and
//!    `Identity` alias their input);
//! 3. checks free device memory ([`CudaContext::mem_get_info`]) and only then allocates;
//! 4. uploads the weights once and precomputes every launch's parameters and buffers.
//!
//! [`Plan::enqueue`] then only pushes launches on the plan's stream: no allocation, no
//! host-side data work. (The typed launchers it calls still re-validate their
//! arguments and look the kernel up in the module by name on every launch; that costs a
//! few microseconds of CPU per layer, which `--graphs` removes entirely — a CUDA graph
//! replays the captured launches without the host.)
//!
//! # Precision and layout
//! * `DType::F32` (`--dtype f32`): NCHW f32 end to end, SIMT kernels only (no TF32), so
//!   results match the f64 CPU reference to ~1e-5.
//! * `DType::F16`: the input is converted once from NCHW f32 to NHWC f16 (padded with
//!   zero channels to 8 when it has fewer and only tensor-core convs read it: those get
//!   zero weights for the extra channels and take the fast `c_in % 8 == 0` kernels); convs with
//!   `groups == 1` run on the tensor-core kernels (OHWI f16 weights, f32 epilogue
//!   operands), pooling (`c % 8 == 0`), activations and adds on the NHWC f16 memory
//!   kernels, linear layers on the tensor-core GEMM (f16 `[out, in]` weights), depthwise
//!   convs with channel multiplier 1 (MobileNetV2's) on the NHWC f16 depthwise kernel
//!   ([`depthwise`]: tap-major `[kh][kw][c]` f16 weights, the same fused epilogue). The
//!   output is converted back to NCHW f32.
//! * TF32 (`ExecOptions::tf32`, `--dtype tf32`): f32 data, NHWC, with convs (`groups ==
//!   1`) and linear layers on the TF32 tensor-core kernels (OHWI / `[out, in]` f32
//!   weights, rounded to tf32 by the kernels, f32 accumulation and epilogue), which is
//!   what PyTorch's default fp32 convolutions do; results match the CPU reference to
//!   ~1e-3 (`--check` accepts 5e-3). The input is transposed once from NCHW to NHWC f32
//!   and not padded (the tf32 fast path needs `c_in % 4 == 0`; with no f32 pad-to-4
//!   conversion a 3-channel first conv takes the gather kernel). Global average pooling,
//!   activations, adds (layout-free) and a softmax of `[n, c, 1, 1]` run the f32
//!   kernels; a channel concat runs the NCHW concat kernel over pixels (`n·h·w` images of
//!   `c` channels); windowed pooling, grouped and depthwise convs, batch-norm and LRN run
//!   as f32 islands (NHWC → NCHW transpose, the SIMT kernel, transpose back). A SIMT gemm
//!   override (`gemm=gemv`) reads the f32 data directly. The output is transposed back to
//!   NCHW.
//! * f16 ops without an f16 NHWC kernel (other grouped convs, concat, batch-norm of an
//!   unfused graph, LRN, softmax, pooling with `c % 8 != 0`) run as an **f32 island**: each input is converted NHWC f16 →
//!   NCHW f32 (`half_to_f32` then `transpose_f32`), the f32 SIMT kernel runs, and the
//!   result is converted back with `nchw_f32_to_nhwc_half`. This is the simplest correct
//!   choice (it reuses tested kernels); it costs two to three extra memory passes per
//!   such layer, which an energy report must attribute to that layer (the conversion
//!   launches carry the layer's id). A native NHWC f16 concat kernel would remove it.
//! * NHWC flatten order (f16 and tf32): a `Flatten` of an NHWC `[n, c, h, w]` tensor yields features in
//!   `(h, w, c)` order, not PyTorch's `(c, h, w)`; a linear layer reading such a flatten
//!   gets its weight columns permuted at upload ([`permute_linear_nhwc`]). After global
//!   pooling (`h = w = 1`) both orders agree and nothing is permuted.
//!
//! # Streams and CUDA graphs
//! The plan runs on its own non-blocking stream (the legacy default stream of
//! [`Gpu`] cannot be captured), and it turns the context's cross-stream event tracking
//! off before allocating (see [`Plan::new`]): all of the plan's work is on one stream, and
//! events recorded outside a capture may not be waited on inside it. The graph input
//! lives in a buffer the plan owns ([`Plan::input_buffer`]); [`Plan::enqueue`] copies the
//! caller's input there first, [`Plan::enqueue_planned`] and captured graphs read it as
//! is.

use std::cell::{Ref, RefCell, RefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{CudaGraph, CudaSlice, CudaStream};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::graph::{Dims, Graph, Node, Op, TensorId, WeightRole};
use crate::launch::{conv, depthwise, gemm, memory, smallm, tensorcore};
use crate::ops::{Act, Activation, Add, BatchNorm, Conv2d, DType, Epilogue, Gemm, Layout, Lrn, Pool2d, Softmax};
use crate::registry::{KernelSpec, LayerType};
use crate::weights::Weights;

/// The layer (index in [`Graph::nodes`]) whose launches are being enqueued right now, or
/// `u32::MAX` outside [`Plan::enqueue`]; set (relaxed) before each launch so a profiler
/// callback (CUPTI) can attribute kernels to layers without a callback into the plan.
pub static CURRENT_LAYER: AtomicU32 = AtomicU32::new(u32::MAX);

/// How to run a graph.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecOptions {
    /// `F32` (SIMT, NCHW, or TF32 tensor cores, NHWC, with `tf32`) or `F16` (tensor
    /// cores, NHWC). BF16 is not wired yet.
    pub dtype: DType,
    /// With `dtype == F32`: keep f32 data but run convs and linear layers on the TF32
    /// tensor-core kernels, NHWC (PyTorch's default fp32 convolution math).
    pub tf32: bool,
    /// Variant overrides by layer type, e.g. `(Conv, "implicit_gemm")`; a type not listed
    /// gets the default rule. F32: any SIMT conv variant of [`conv::KERNELS`] / gemm
    /// variant of [`gemm::KERNELS`]. F16: conv `implicit_gemm_tc` (default for
    /// `groups == 1`), `depthwise_nhwc` (default for depthwise convs with multiplier 1;
    /// dense convs keep the tensor cores) or a SIMT variant (runs as an f32 island); gemm
    /// `tc` (default) or a SIMT variant (f32 island). TF32: as F16 without
    /// `depthwise_nhwc`; a SIMT gemm variant reads the f32 data directly (no island).
    pub variants: Vec<(LayerType, String)>,
}

impl ExecOptions {
    pub fn new(dtype: DType) -> ExecOptions {
        ExecOptions { dtype, tf32: false, variants: Vec::new() }
    }

    /// F32 data, TF32 tensor-core convs and linear layers, NHWC.
    pub fn tf32() -> ExecOptions {
        ExecOptions { tf32: true, ..ExecOptions::new(DType::F32) }
    }

    /// The options of a precision name as `--dtype` takes it: `f32`/`fp32`, `tf32`,
    /// `f16`/`fp16`; `None` for anything else.
    pub fn from_name(name: &str) -> Option<ExecOptions> {
        match name {
            "f32" | "fp32" => Some(ExecOptions::new(DType::F32)),
            "tf32" => Some(ExecOptions::tf32()),
            "f16" | "fp16" => Some(ExecOptions::new(DType::F16)),
            _ => None,
        }
    }

    /// The precision's canonical name for reports and traces: `f32`, `tf32`, `f16`, `bf16`.
    pub fn precision(&self) -> &'static str {
        if self.tf32 && self.dtype == DType::F32 {
            "tf32"
        } else {
            self.dtype.name()
        }
    }

    /// Parses `conv=implicit_gemm_64,gemm=simt` style overrides.
    pub fn with_variants(mut self, spec: &str) -> Result<ExecOptions> {
        for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (ty, v) = part
                .split_once('=')
                .ok_or_else(|| Error::Invalid(format!("variant override `{part}`: expected TYPE=VARIANT")))?;
            let ty = match ty.trim() {
                "conv" => LayerType::Conv,
                "gemm" | "linear" => LayerType::Gemm,
                t => {
                    return Err(Error::Invalid(format!(
                        "variant override `{part}`: layer type `{t}` has no variants (conv, gemm)"
                    )))
                }
            };
            self.variants.push((ty, v.trim().to_string()));
        }
        Ok(self)
    }

    fn variant(&self, ty: LayerType) -> Option<&str> {
        self.variants.iter().rev().find(|(t, _)| *t == ty).map(|(_, v)| v.as_str())
    }
}

/// The kernel a node runs on.
#[derive(Clone, Debug)]
pub enum Kernel {
    /// Flatten / Identity: a view of the input, no launch.
    Alias,
    /// fp32 SIMT conv, NCHW.
    ConvSimt(&'static KernelSpec),
    /// Tensor-core implicit GEMM conv, NHWC: f16, or TF32 math on f32 data.
    ConvTc,
    /// f16 depthwise conv (channel multiplier 1), NHWC.
    ConvDw,
    /// fp32 SIMT gemm / gemv.
    GemmSimt(&'static KernelSpec),
    /// Tensor-core GEMM: f16, or TF32 math on f32 data.
    GemmTc,
    /// The memory-bound kernel of the op in the plan's precision and layout
    /// (f32 NCHW; NHWC f16 for pool / activation / add; NHWC f32 for global pool /
    /// activation / add / concat / softmax of `[n, c, 1, 1]`).
    Memory,
    /// NHWC modes (f16, tf32): inputs converted to NCHW f32, this f32 kernel, output
    /// converted back.
    Island(Box<Kernel>),
}

impl PartialEq for Kernel {
    fn eq(&self, other: &Kernel) -> bool {
        match (self, other) {
            (Kernel::ConvSimt(a), Kernel::ConvSimt(b)) | (Kernel::GemmSimt(a), Kernel::GemmSimt(b)) => {
                a.symbol == b.symbol
            }
            (Kernel::Island(a), Kernel::Island(b)) => a == b,
            (a, b) => {
                std::mem::discriminant(a) == std::mem::discriminant(b)
                    && !matches!(a, Kernel::ConvSimt(_) | Kernel::GemmSimt(_) | Kernel::Island(_))
            }
        }
    }
}

impl Kernel {
    /// Short description for reports, e.g. `conv:implicit_gemm_64` or `f32-island(conv:depthwise)`.
    pub fn describe(&self, op: &Op) -> String {
        match self {
            Kernel::Alias => "view".into(),
            Kernel::ConvSimt(s) => format!("conv:{}", s.variant),
            Kernel::ConvTc => "conv:implicit_gemm_tc".into(),
            Kernel::ConvDw => "conv:depthwise_nhwc".into(),
            Kernel::GemmSimt(s) => format!("gemm:{}", s.variant),
            Kernel::GemmTc => "gemm:tc".into(),
            Kernel::Memory => op.op_name().to_string(),
            Kernel::Island(k) => format!("f32-island({})", k.describe(op)),
        }
    }
}

fn layer_err(node: &Node, msg: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("layer `{}` ({}): {msg}", node.name, node.op.op_name()))
}

fn conv_simt_spec(node: &Node, conv: &Conv2d, opts: &ExecOptions, sm: u32) -> Result<&'static KernelSpec> {
    let spec = match opts.variant(LayerType::Conv) {
        Some(v) if opts.dtype == DType::F32 || v != "implicit_gemm_tc" => {
            conv::KERNELS.iter().find(|k| k.variant == v).ok_or_else(|| {
                let names: Vec<&str> = conv::KERNELS.iter().map(|k| k.variant).collect();
                layer_err(node, format!("conv variant `{v}` is not one of {}", names.join(", ")))
            })?
        }
        _ => conv::pick_for(conv, sm),
    };
    conv::check_supported(spec, conv).map_err(|e| layer_err(node, e))?;
    Ok(spec)
}

fn gemm_simt_spec(node: &Node, g: &Gemm, opts: &ExecOptions) -> Result<&'static KernelSpec> {
    let spec = match opts.variant(LayerType::Gemm) {
        Some(v) if v != "tc" => gemm::KERNELS.iter().find(|k| k.variant == v).ok_or_else(|| {
            let names: Vec<&str> = gemm::KERNELS.iter().map(|k| k.variant).collect();
            layer_err(node, format!("gemm variant `{v}` is not one of {}", names.join(", ")))
        })?,
        _ => gemm::pick_default(g),
    };
    gemm::check_supported(spec, g).map_err(|e| layer_err(node, e))?;
    Ok(spec)
}

/// The f32 NCHW kernel of a node, validated.
fn select_f32(node: &Node, opts: &ExecOptions, sm: u32) -> Result<Kernel> {
    Ok(match &node.op {
        Op::Flatten | Op::Identity => Kernel::Alias,
        Op::Conv { conv, epi } => {
            epi.act.validate().map_err(|e| layer_err(node, e))?;
            Kernel::ConvSimt(conv_simt_spec(node, conv, opts, sm)?)
        }
        Op::Linear { gemm: g, act, .. } => {
            act.validate().map_err(|e| layer_err(node, e))?;
            Kernel::GemmSimt(gemm_simt_spec(node, g, opts)?)
        }
        Op::Pool(p) => {
            memory::pool_params(p).map_err(|e| layer_err(node, e))?;
            Kernel::Memory
        }
        Op::Softmax(s) => {
            s.validate().map_err(|e| layer_err(node, e))?;
            if s.inner != 1 {
                return Err(layer_err(
                    node,
                    format!("softmax over a non-last axis (inner = {}) has no kernel", s.inner),
                ));
            }
            Kernel::Memory
        }
        Op::Act(a) | Op::Add { act: a } => {
            a.validate().map_err(|e| layer_err(node, e))?;
            Kernel::Memory
        }
        Op::BatchNorm(b) => {
            b.validate().map_err(|e| layer_err(node, e))?;
            Kernel::Memory
        }
        Op::Lrn(l) => {
            l.validate().map_err(|e| layer_err(node, e))?;
            Kernel::Memory
        }
        Op::Concat => Kernel::Memory,
    })
}

/// Picks and validates the kernel of every node of `g` for `opts` on a GPU with
/// `sm_count` SMs (pure: no GPU needed). The error names the first layer that cannot run.
pub fn select_kernels(g: &Graph, opts: &ExecOptions, sm_count: u32) -> Result<Vec<Kernel>> {
    g.validate().map_err(|e| Error::Invalid(format!("{}: {e}", g.name)))?;
    if !matches!(opts.dtype, DType::F32 | DType::F16) || (opts.tf32 && opts.dtype != DType::F32) {
        return Err(Error::Invalid(format!(
            "GPU executor: precision {} is not supported (f32, tf32, f16)",
            if opts.tf32 { format!("tf32 with {} data", opts.dtype) } else { opts.dtype.to_string() }
        )));
    }
    let f16 = opts.dtype == DType::F16;
    let tf32 = opts.tf32;
    let mut out = Vec::with_capacity(g.nodes.len());
    for node in &g.nodes {
        let k = if !f16 && !tf32 {
            select_f32(node, opts, sm_count)?
        } else {
            match &node.op {
                Op::Flatten | Op::Identity => Kernel::Alias,
                Op::Conv { conv, epi }
                    if conv.groups == 1
                        && matches!(
                            opts.variant(LayerType::Conv),
                            None | Some("implicit_gemm_tc") | Some("depthwise_nhwc")
                        ) =>
                {
                    tensorcore::conv_params(conv, epi).map_err(|e| layer_err(node, e))?;
                    Kernel::ConvTc
                }
                Op::Conv { .. } if tf32 && opts.variant(LayerType::Conv) == Some("depthwise_nhwc") => {
                    return Err(layer_err(
                        node,
                        "conv variant depthwise_nhwc has f16 kernels only (tf32 runs depthwise convs as f32 islands)",
                    ))
                }
                Op::Conv { conv, epi }
                    if f16
                        && conv.groups > 1
                        && depthwise::check_supported(conv).is_ok()
                        && matches!(opts.variant(LayerType::Conv), None | Some("depthwise_nhwc")) =>
                {
                    depthwise::conv_params(conv, epi).map_err(|e| layer_err(node, e))?;
                    Kernel::ConvDw
                }
                Op::Conv { conv, .. } if opts.variant(LayerType::Conv) == Some("depthwise_nhwc") => {
                    return Err(layer_err(
                        node,
                        format!(
                            "conv variant depthwise_nhwc runs depthwise convs with channel multiplier 1 only \
                             (groups = c_in = c_out), got groups {} c_in {} c_out {}",
                            conv.groups, conv.c_in, conv.c_out
                        ),
                    ))
                }
                Op::Conv { conv, .. } if opts.variant(LayerType::Conv) == Some("implicit_gemm_tc") => {
                    return Err(layer_err(
                        node,
                        format!("conv variant implicit_gemm_tc does not run grouped convs (groups = {})", conv.groups),
                    ))
                }
                Op::Linear { gemm: gm, bias, act } if matches!(opts.variant(LayerType::Gemm), None | Some("tc")) => {
                    let tc = tensorcore::GemmTc::from_gemm(gm).map_err(|e| layer_err(node, e))?.with_act(*act);
                    tensorcore::gemm_params(&tc, *bias).map_err(|e| layer_err(node, e))?;
                    Kernel::GemmTc
                }
                // tf32: a linear layer reads a flat [m, k] f32 matrix, the same in both
                // layouts (the NHWC flatten order is handled by permuting the weight).
                Op::Linear { .. } if tf32 => select_f32(node, opts, sm_count)?,
                // Global average pooling has a dedicated NHWC kernel for any channel count.
                Op::Pool(p) if p.kind == crate::ops::PoolKind::GlobalAvg || (f16 && p.c.is_multiple_of(8)) => {
                    memory::pool_params(p).map_err(|e| layer_err(node, e))?;
                    Kernel::Memory
                }
                Op::Act(a) | Op::Add { act: a } => {
                    a.validate().map_err(|e| layer_err(node, e))?;
                    Kernel::Memory
                }
                // NHWC f32: a channel concat is the NCHW kernel over pixels (`n·h·w`
                // "images" of `c` channels each); a softmax over the channels of a
                // `[n, c, 1, 1]` tensor reads the same memory in both layouts.
                Op::Concat if tf32 => Kernel::Memory,
                Op::Softmax(s) if tf32 && s.inner == 1 && spatial(g, node.inputs[0]) == 1 => {
                    select_f32(node, opts, sm_count)?
                }
                _ => Kernel::Island(Box::new(select_f32(node, opts, sm_count)?)),
            }
        };
        out.push(k);
    }
    Ok(out)
}

/// `h * w` of tensor `t`.
fn spatial(g: &Graph, t: TensorId) -> usize {
    let [_, _, h, w] = g.tensors[t].dims;
    h * w
}

/// Where the activations live: per tensor, the buffer ("slot") holding it.
#[derive(Clone, Debug, PartialEq)]
pub struct MemPlan {
    /// Per tensor: its slot; aliases (Flatten/Identity outputs) share their input's.
    pub slot_of: Vec<usize>,
    /// Per tensor: the tensor whose storage it is (itself unless an alias).
    pub root: Vec<TensorId>,
    /// Bytes of each slot (multiples of 256).
    pub slot_bytes: Vec<usize>,
    /// Sum of the slots: the device memory the activations take.
    pub peak_activation_bytes: usize,
    /// What one buffer per tensor would take (aliases counted once).
    pub naive_bytes: usize,
}

/// Live range of each storage root: `(defined, last read)` in node indices, the graph
/// input defined at -1, a tensor nobody reads dying where it is defined, the graph output
/// living to `nodes.len()`.
pub fn live_ranges(g: &Graph) -> (Vec<TensorId>, Vec<(i64, i64)>) {
    let mut root: Vec<TensorId> = (0..g.tensors.len()).collect();
    let mut def = vec![i64::MIN; g.tensors.len()];
    def[g.input] = -1;
    for (i, n) in g.nodes.iter().enumerate() {
        if !n.op.launches() {
            root[n.output] = root[n.inputs[0]];
        }
        def[n.output] = i as i64;
    }
    let last = g.last_uses();
    // The graph input stays intact for the whole run, so a plan can be replayed on it.
    let mut range: Vec<(i64, i64)> = def.iter().map(|&d| (d, d)).collect();
    for t in 0..g.tensors.len() {
        let r = root[t];
        let end = last[t].map_or(def[t], |l| l as i64).max(def[t]);
        range[r].1 = range[r].1.max(end);
    }
    range[root[g.input]].1 = g.nodes.len() as i64;
    (root, range)
}

const ALIGN: usize = 256;

/// Assigns every activation of `g` (elements of `elem_bytes`) to a reusable slot:
/// tensors are placed in definition order; a node's output takes the free slot with the
/// smallest size that fits (best fit), else grows the largest free slot, else opens a new
/// one; a tensor's slot is freed after its last reader (aliases included) has run — after
/// the node's output was placed, so an output never shares a slot with its own inputs.
pub fn plan_memory(g: &Graph, elem_bytes: usize) -> MemPlan {
    let (root, range) = live_ranges(g);
    let bytes = |t: TensorId| (g.tensors[t].dims.iter().product::<usize>() * elem_bytes).div_ceil(ALIGN) * ALIGN;
    let mut slot_of = vec![usize::MAX; g.tensors.len()];
    let mut slot_bytes: Vec<usize> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let place = |t: TensorId, slot_bytes: &mut Vec<usize>, free: &mut Vec<usize>| -> usize {
        let need = bytes(t);
        let best = free.iter().enumerate().filter(|(_, &s)| slot_bytes[s] >= need).min_by_key(|(_, &s)| slot_bytes[s]);
        let pick = match best {
            Some((i, _)) => Some(i),
            None => free.iter().enumerate().max_by_key(|(_, &s)| slot_bytes[s]).map(|(i, _)| i),
        };
        match pick {
            Some(i) => {
                let s = free.swap_remove(i);
                slot_bytes[s] = slot_bytes[s].max(need);
                s
            }
            None => {
                slot_bytes.push(need);
                slot_bytes.len() - 1
            }
        }
    };
    slot_of[g.input] = place(g.input, &mut slot_bytes, &mut free);
    for (i, n) in g.nodes.iter().enumerate() {
        let i = i as i64;
        if n.op.launches() {
            slot_of[n.output] = place(n.output, &mut slot_bytes, &mut free);
        } else {
            slot_of[n.output] = slot_of[root[n.output]];
        }
        let mut dying: Vec<TensorId> = n.inputs.iter().map(|&t| root[t]).collect();
        dying.push(root[n.output]);
        dying.sort_unstable();
        dying.dedup();
        for r in dying {
            if range[r].1 == i && !free.contains(&slot_of[r]) {
                free.push(slot_of[r]);
            }
        }
    }
    let naive_bytes = (0..g.tensors.len()).filter(|&t| root[t] == t).map(bytes).sum();
    let peak_activation_bytes = slot_bytes.iter().sum();
    MemPlan { slot_of, root, slot_bytes, peak_activation_bytes, naive_bytes }
}

/// A linear layer's `[out, c*h*w]` weight with its columns reordered from NCHW flatten
/// order `(c, h, w)` to NHWC flatten order `(h, w, c)`, for a flatten of `[_, c, h, w]`.
pub fn permute_linear_nhwc(w: &[f32], out: usize, [c, h, wd]: [usize; 3]) -> Result<Vec<f32>> {
    let k = c * h * wd;
    if w.len() != out * k {
        return Err(Error::Invalid(format!("linear weight has {} values, expected {out} x {k}", w.len())));
    }
    let mut p = vec![0f32; w.len()];
    for o in 0..out {
        let (src, dst) = (&w[o * k..(o + 1) * k], &mut p[o * k..(o + 1) * k]);
        for ci in 0..c {
            for y in 0..h {
                for x in 0..wd {
                    dst[(y * wd + x) * c + ci] = src[(ci * h + y) * wd + x];
                }
            }
        }
    }
    Ok(p)
}

/// Per tensor, the `[c, h, w]` of the spatial tensor it is a flatten of (through
/// Flatten/Identity chains), if any.
pub fn flatten_origins(g: &Graph) -> Vec<Option<[usize; 3]>> {
    let mut o: Vec<Option<[usize; 3]>> = vec![None; g.tensors.len()];
    for n in &g.nodes {
        match n.op {
            Op::Flatten => {
                let [_, c, h, w] = g.tensors[n.inputs[0]].dims;
                o[n.output] = o[n.inputs[0]].or(if h * w > 1 { Some([c, h, w]) } else { None });
            }
            Op::Identity => o[n.output] = o[n.inputs[0]],
            _ => {}
        }
    }
    o
}

/// Inference batch-norm as a per-channel affine: `(scale, shift)` with
/// `scale = gamma / sqrt(var + eps)`, `shift = beta - mean * scale` (computed in f64).
pub fn bn_affine(gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let mut scale = Vec::with_capacity(gamma.len());
    let mut shift = Vec::with_capacity(gamma.len());
    for c in 0..gamma.len() {
        let s = gamma[c] as f64 / (var[c] as f64 + eps as f64).sqrt();
        scale.push(s as f32);
        shift.push((beta[c] as f64 - mean[c] as f64 * s) as f32);
    }
    (scale, shift)
}

// ---------------------------------------------------------------------------------------
// The launch list (precomputed) and the device side.

/// A device buffer of the plan: index into `Plan::bufs` and the element count used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufRef {
    pub idx: usize,
    pub len: usize,
}

/// One precomputed launch. Weight operands are indices into `Plan::w32` / `Plan::w16`.
#[derive(Clone, Debug)]
pub enum Step {
    ConvSimt {
        spec: &'static KernelSpec,
        conv: Conv2d,
        epi: Epilogue,
        x: BufRef,
        w: usize,
        bias: Option<usize>,
        scale: Option<usize>,
        shift: Option<usize>,
        residual: Option<BufRef>,
        y: BufRef,
    },
    ConvTc {
        conv: Conv2d,
        act: Act,
        x: BufRef,
        w: usize,
        bias: Option<usize>,
        scale: Option<usize>,
        shift: Option<usize>,
        residual: Option<BufRef>,
        y: BufRef,
    },
    /// TF32 tensor-core conv on NHWC f32; `w` indexes `w32` (OHWI f32).
    ConvTf32 {
        conv: Conv2d,
        act: Act,
        x: BufRef,
        w: usize,
        bias: Option<usize>,
        scale: Option<usize>,
        shift: Option<usize>,
        residual: Option<BufRef>,
        y: BufRef,
    },
    /// f16 NHWC depthwise conv; `w` indexes `w16` (tap-major `[kh][kw][c]`).
    ConvDw {
        conv: Conv2d,
        act: Act,
        x: BufRef,
        w: usize,
        bias: Option<usize>,
        scale: Option<usize>,
        shift: Option<usize>,
        residual: Option<BufRef>,
        y: BufRef,
    },
    GemmSimt {
        spec: &'static KernelSpec,
        gemm: Gemm,
        act: Act,
        a: BufRef,
        w: usize,
        bias: Option<usize>,
        c: BufRef,
    },
    GemmTc {
        gemm: tensorcore::GemmTc,
        a: BufRef,
        w: usize,
        bias: Option<usize>,
        c: BufRef,
    },
    /// TF32 tensor-core GEMM on f32; `w` indexes `w32` (`[out, in]`, NHWC-flatten order).
    GemmTf32 {
        gemm: tensorcore::GemmTc,
        a: BufRef,
        w: usize,
        bias: Option<usize>,
        c: BufRef,
    },
    Pool {
        p: Pool2d,
        x: BufRef,
        y: BufRef,
    },
    /// NHWC f32 pooling (global average only).
    PoolNhwcF32 {
        p: Pool2d,
        x: BufRef,
        y: BufRef,
    },
    PoolF16 {
        p: Pool2d,
        x: BufRef,
        y: BufRef,
    },
    Act {
        op: Activation,
        x: BufRef,
        y: BufRef,
    },
    ActF16 {
        op: Activation,
        x: BufRef,
        y: BufRef,
    },
    Add {
        op: Add,
        a: BufRef,
        b: BufRef,
        y: BufRef,
    },
    AddF16 {
        op: Add,
        a: BufRef,
        b: BufRef,
        y: BufRef,
    },
    BatchNorm {
        bn: BatchNorm,
        scale: usize,
        shift: usize,
        x: BufRef,
        y: BufRef,
    },
    Lrn {
        l: Lrn,
        x: BufRef,
        y: BufRef,
    },
    Softmax {
        s: Softmax,
        x: BufRef,
        y: BufRef,
    },
    /// Copies `x` (`[n, c, hw]`) into channels `offset..offset+c` of `y` (`[n, c_total, hw]`).
    ConcatPart {
        n: usize,
        c: usize,
        hw: usize,
        c_total: usize,
        offset: usize,
        x: BufRef,
        y: BufRef,
    },
    /// NCHW f32 → NHWC f16.
    ToNhwcF16 {
        dims: Dims,
        x: BufRef,
        y: BufRef,
    },
    /// NCHW f32 `[n, c, h, w]` (`c < 8`) → NHWC f16 `[n, h, w, 8]`, channels `c..8` zero.
    ToNhwcF16Pad8 {
        dims: Dims,
        x: BufRef,
        y: BufRef,
    },
    /// f16 → f32, elementwise.
    HalfToF32 {
        x: BufRef,
        y: BufRef,
    },
    /// f32 layout transpose (NHWC → NCHW with `to = Nchw`).
    Transpose {
        dims: Dims,
        to: Layout,
        x: BufRef,
        y: BufRef,
    },
    /// Device-to-device copy of f32 (the user's input into the plan's input buffer).
    CopyF32 {
        x: BufRef,
        y: BufRef,
    },
}

impl Step {
    /// The launch's main weight tensor, if any: (stored in `w16`, index). Bias, scale
    /// and shift vectors are not included (small; replay leaves them in place).
    pub fn main_weight(&self) -> Option<(bool, usize)> {
        match self {
            Step::ConvTc { w, .. } | Step::ConvDw { w, .. } | Step::GemmTc { w, .. } => Some((true, *w)),
            Step::ConvSimt { w, .. }
            | Step::ConvTf32 { w, .. }
            | Step::GemmSimt { w, .. }
            | Step::GemmTf32 { w, .. } => Some((false, *w)),
            _ => None,
        }
    }

    /// The buffers the step reads and the one it writes.
    pub fn buffers(&self) -> (Vec<BufRef>, BufRef) {
        match self {
            Step::ConvSimt { x, residual, y, .. }
            | Step::ConvTc { x, residual, y, .. }
            | Step::ConvTf32 { x, residual, y, .. }
            | Step::ConvDw { x, residual, y, .. } => (std::iter::once(*x).chain(*residual).collect(), *y),
            Step::GemmSimt { a, c, .. } | Step::GemmTc { a, c, .. } | Step::GemmTf32 { a, c, .. } => (vec![*a], *c),
            Step::Add { a, b, y, .. } | Step::AddF16 { a, b, y, .. } => (vec![*a, *b], *y),
            Step::Pool { x, y, .. }
            | Step::PoolF16 { x, y, .. }
            | Step::PoolNhwcF32 { x, y, .. }
            | Step::Act { x, y, .. }
            | Step::ActF16 { x, y, .. }
            | Step::BatchNorm { x, y, .. }
            | Step::Lrn { x, y, .. }
            | Step::Softmax { x, y, .. }
            | Step::ConcatPart { x, y, .. }
            | Step::ToNhwcF16 { x, y, .. }
            | Step::ToNhwcF16Pad8 { x, y, .. }
            | Step::HalfToF32 { x, y }
            | Step::Transpose { x, y, .. }
            | Step::CopyF32 { x, y } => (vec![*x], *y),
        }
    }
}

/// A step with the layer it belongs to (`u32::MAX`: the plan's own input/output conversions).
#[derive(Clone, Debug)]
pub struct Launch {
    pub layer_id: u32,
    pub step: Step,
}

/// Buffer kinds, for the pure planning stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufKind {
    F32,
    F16,
}

/// The device-independent part of a plan: kernel choice, memory plan, buffer sizes,
/// host-side weight data and the launch list. [`Plan::new`] uploads it.
#[derive(Debug)]
pub struct Blueprint {
    pub dtype: DType,
    /// F32 data with TF32 tensor-core convs and linear layers, NHWC ([`ExecOptions::tf32`]).
    pub tf32: bool,
    pub kernels: Vec<Kernel>,
    pub mem: MemPlan,
    /// Per device buffer: kind and element count. Slots first (`0..slot count`), then the
    /// plan's input (NHWC modes), output (NHWC modes) and island scratch buffers.
    pub bufs: Vec<(BufKind, usize)>,
    pub w32: Vec<Vec<f32>>,
    pub w16: Vec<Vec<u16>>,
    pub launches: Vec<Launch>,
    /// Where the caller's NCHW f32 input goes (an f32 buffer).
    pub input: BufRef,
    /// Where the NCHW f32 logits are read from.
    pub output: BufRef,
    pub weight_bytes: usize,
}

impl Blueprint {
    /// The precision's name, as [`ExecOptions::precision`].
    pub fn precision(&self) -> &'static str {
        if self.tf32 {
            "tf32"
        } else {
            self.dtype.name()
        }
    }

    pub fn activation_bytes(&self) -> usize {
        self.bufs.iter().map(|&(k, n)| n * if k == BufKind::F32 { 4 } else { 2 }).sum()
    }
}

fn numel(d: &Dims) -> usize {
    d.iter().product()
}

struct Builder<'a> {
    g: &'a Graph,
    w: &'a Weights,
    bp: Blueprint,
}

impl Builder<'_> {
    fn weight(&self, node: &Node, role: WeightRole) -> Result<&[f32]> {
        let spec = node.weight(role).ok_or_else(|| layer_err(node, format!("has no {role:?} weight")))?;
        let v = self.w.get(&spec.name).ok_or_else(|| layer_err(node, format!("weight `{}` is missing", spec.name)))?;
        if v.len() != spec.len() {
            return Err(layer_err(
                node,
                format!("weight `{}` has {} values, expected {} ({:?})", spec.name, v.len(), spec.len(), spec.shape),
            ));
        }
        Ok(v.as_slice())
    }
    fn push32(&mut self, v: Vec<f32>) -> usize {
        self.bp.weight_bytes += v.len() * 4;
        self.bp.w32.push(v);
        self.bp.w32.len() - 1
    }
    fn push16(&mut self, v: Vec<u16>) -> usize {
        self.bp.weight_bytes += v.len() * 2;
        self.bp.w16.push(v);
        self.bp.w16.len() - 1
    }
    fn opt32(&mut self, node: &Node, on: bool, role: WeightRole) -> Result<Option<usize>> {
        if !on {
            return Ok(None);
        }
        let v = self.weight(node, role)?.to_vec();
        Ok(Some(self.push32(v)))
    }
    fn tensor(&self, t: TensorId) -> BufRef {
        BufRef { idx: self.bp.mem.slot_of[t], len: numel(&self.g.tensors[t].dims) }
    }
    fn new_buf(&mut self, kind: BufKind, len: usize) -> usize {
        self.bp.bufs.push((kind, len.max(1)));
        self.bp.bufs.len() - 1
    }
    fn grow(&mut self, idx: usize, len: usize) -> BufRef {
        self.bp.bufs[idx].1 = self.bp.bufs[idx].1.max(len);
        BufRef { idx, len }
    }
    fn push(&mut self, layer: usize, step: Step) {
        self.bp.launches.push(Launch { layer_id: layer as u32, step });
    }
}

/// Builds the [`Blueprint`] of `g` (pure; the GPU's SM count only steers kernel choice).
pub fn blueprint(g: &Graph, w: &Weights, opts: &ExecOptions, sm_count: u32) -> Result<Blueprint> {
    let kernels = select_kernels(g, opts, sm_count)?;
    let f16 = opts.dtype == DType::F16;
    let tf32 = opts.tf32;
    let mem = plan_memory(g, if f16 { 2 } else { 4 });
    let slot_kind = if f16 { BufKind::F16 } else { BufKind::F32 };
    let bufs = mem.slot_bytes.iter().map(|&b| (slot_kind, b / if f16 { 2 } else { 4 })).collect();
    let dummy = BufRef { idx: 0, len: 0 };
    let bp = Blueprint {
        dtype: opts.dtype,
        tf32,
        kernels,
        mem,
        bufs,
        w32: Vec::new(),
        w16: Vec::new(),
        launches: Vec::new(),
        input: dummy,
        output: dummy,
        weight_bytes: 0,
    };
    let mut b = Builder { g, w, bp };
    let in_dims = g.tensors[g.input].dims;
    let in_slot = b.tensor(g.input);
    let pad_input = f16 && pads_input(g, &b.bp.kernels);
    // f16: the caller's f32 input gets its own buffer and is converted once.
    b.bp.input = if f16 {
        let i = b.new_buf(BufKind::F32, numel(&in_dims));
        let x = BufRef { idx: i, len: numel(&in_dims) };
        if pad_input {
            // The kernel writes every lane, the zeros too, so the (grown) slot may be reused.
            let y = b.grow(in_slot.idx, numel(&in_dims) / in_dims[1] * PAD_C);
            b.push(u32::MAX as usize, Step::ToNhwcF16Pad8 { dims: in_dims, x, y });
        } else {
            b.push(u32::MAX as usize, Step::ToNhwcF16 { dims: in_dims, x, y: in_slot });
        }
        x
    } else if tf32 {
        // Not padded: the tf32 kernels' fast path needs `c_in % 4 == 0`, and there is no
        // f32 pad-to-4 conversion, so a 3-channel first conv takes the gather kernel.
        let i = b.new_buf(BufKind::F32, numel(&in_dims));
        let x = BufRef { idx: i, len: numel(&in_dims) };
        b.push(u32::MAX as usize, Step::Transpose { dims: in_dims, to: Layout::Nhwc, x, y: in_slot });
        x
    } else {
        in_slot
    };
    // Island scratch: one f32 buffer per input position, one for the output, one for the
    // f16 → f32 stage (created lazily, grown to the largest use).
    let mut island_in: Vec<usize> = Vec::new();
    let (mut island_out, mut island_tmp) = (None, None);
    let origins = flatten_origins(g);
    let kernels = b.bp.kernels.clone();
    for (i, (node, kernel)) in g.nodes.iter().zip(&kernels).enumerate() {
        let out_dims = g.tensors[node.output].dims;
        let y_slot = b.tensor(node.output);
        match kernel {
            Kernel::Alias => {}
            Kernel::ConvTc => {
                let Op::Conv { conv, epi } = &node.op else {
                    return Err(layer_err(node, "internal: ConvTc on a non-conv"));
                };
                let mut x = b.tensor(node.inputs[0]);
                let (conv, wt) = if pad_input && node.inputs[0] == g.input {
                    // Reads the 8-channel padded input: zero weights for channels c..8.
                    let padded = Conv2d { c_in: PAD_C, ..*conv };
                    x.len = padded.in_len();
                    (padded, pad_weights_c_in(b.weight(node, WeightRole::Kernel)?, conv, PAD_C))
                } else {
                    (*conv, b.weight(node, WeightRole::Kernel)?.to_vec())
                };
                let wi = if tf32 {
                    let wt = tensorcore::conv_weights_ohwi_f32(&conv, &wt).map_err(|e| layer_err(node, e))?;
                    b.push32(wt)
                } else {
                    let wt = tensorcore::conv_weights_ohwi(&conv, &wt, DType::F16).map_err(|e| layer_err(node, e))?;
                    b.push16(wt)
                };
                let bias = b.opt32(node, epi.bias, WeightRole::Bias)?;
                let scale = b.opt32(node, epi.scale_shift, WeightRole::Scale)?;
                let shift = b.opt32(node, epi.scale_shift, WeightRole::Shift)?;
                let residual = epi.residual.then(|| b.tensor(node.inputs[1]));
                let act = epi.act;
                b.push(
                    i,
                    if tf32 {
                        Step::ConvTf32 { conv, act, x, w: wi, bias, scale, shift, residual, y: y_slot }
                    } else {
                        Step::ConvTc { conv, act, x, w: wi, bias, scale, shift, residual, y: y_slot }
                    },
                );
            }
            Kernel::ConvDw => {
                let Op::Conv { conv, epi } = &node.op else {
                    return Err(layer_err(node, "internal: ConvDw on a non-conv"));
                };
                let wt = depthwise::dw_weights_hwc(conv, b.weight(node, WeightRole::Kernel)?, DType::F16)
                    .map_err(|e| layer_err(node, e))?;
                let wi = b.push16(wt);
                let bias = b.opt32(node, epi.bias, WeightRole::Bias)?;
                let scale = b.opt32(node, epi.scale_shift, WeightRole::Scale)?;
                let shift = b.opt32(node, epi.scale_shift, WeightRole::Shift)?;
                let residual = epi.residual.then(|| b.tensor(node.inputs[1]));
                let x = b.tensor(node.inputs[0]);
                b.push(
                    i,
                    Step::ConvDw { conv: *conv, act: epi.act, x, w: wi, bias, scale, shift, residual, y: y_slot },
                );
            }
            Kernel::GemmTc => {
                let Op::Linear { gemm: gm, bias, act } = &node.op else {
                    return Err(layer_err(node, "internal: GemmTc on a non-linear"));
                };
                let mut wt = b.weight(node, WeightRole::Kernel)?.to_vec();
                if let Some(chw) = origins[node.inputs[0]] {
                    wt = permute_linear_nhwc(&wt, gm.n, chw).map_err(|e| layer_err(node, e))?;
                }
                let wi = if tf32 { b.push32(wt) } else { b.push16(crate::reference::f32_to_f16_bits(&wt)) };
                let bi = b.opt32(node, *bias, WeightRole::Bias)?;
                let tc = tensorcore::GemmTc::from_gemm(gm).map_err(|e| layer_err(node, e))?.with_act(*act);
                let a = b.tensor(node.inputs[0]);
                b.push(
                    i,
                    if tf32 {
                        Step::GemmTf32 { gemm: tc, a, w: wi, bias: bi, c: y_slot }
                    } else {
                        Step::GemmTc { gemm: tc, a, w: wi, bias: bi, c: y_slot }
                    },
                );
            }
            // tf32, a SIMT gemm variant: reads the NHWC-flatten f32 data as is.
            Kernel::GemmSimt(spec) if tf32 => {
                let Op::Linear { gemm: gm, bias, act } = &node.op else {
                    return Err(layer_err(node, "internal: GemmSimt on a non-linear"));
                };
                let mut wt = b.weight(node, WeightRole::Kernel)?.to_vec();
                if let Some(chw) = origins[node.inputs[0]] {
                    wt = permute_linear_nhwc(&wt, gm.n, chw).map_err(|e| layer_err(node, e))?;
                }
                let wi = b.push32(wt);
                let bi = b.opt32(node, *bias, WeightRole::Bias)?;
                let a = b.tensor(node.inputs[0]);
                b.push(i, Step::GemmSimt { spec, gemm: *gm, act: *act, a, w: wi, bias: bi, c: y_slot });
            }
            Kernel::Memory if tf32 => {
                let x = b.tensor(node.inputs[0]);
                match &node.op {
                    Op::Pool(p) => b.push(i, Step::PoolNhwcF32 { p: *p, x, y: y_slot }),
                    Op::Concat => {
                        let [n, c_total, h, w] = out_dims;
                        let mut offset = 0;
                        for &t in &node.inputs {
                            let c = g.tensors[t].dims[1];
                            let x = b.tensor(t);
                            b.push(i, Step::ConcatPart { n: n * h * w, c, hw: 1, c_total, offset, x, y: y_slot });
                            offset += c;
                        }
                    }
                    _ => {
                        let xs: Vec<BufRef> = node.inputs.iter().map(|&t| b.tensor(t)).collect();
                        emit_f32(&mut b, i, node, kernel, &xs, y_slot)?;
                    }
                }
            }
            Kernel::Memory if f16 => {
                let x = b.tensor(node.inputs[0]);
                let step = match &node.op {
                    Op::Pool(p) => Step::PoolF16 { p: *p, x, y: y_slot },
                    Op::Act(a) => Step::ActF16 { op: Activation { len: y_slot.len, act: *a }, x, y: y_slot },
                    Op::Add { act } => Step::AddF16 {
                        op: Add { len: y_slot.len, act: *act },
                        a: x,
                        b: b.tensor(node.inputs[1]),
                        y: y_slot,
                    },
                    _ => return Err(layer_err(node, "no f16 NHWC kernel (internal: kernel selection disagrees)")),
                };
                b.push(i, step);
            }
            Kernel::Island(inner) => {
                // Inputs NHWC f16 -> NCHW f32 scratch.
                let mut xs = Vec::with_capacity(node.inputs.len());
                for (k, &t) in node.inputs.iter().enumerate() {
                    let dims = g.tensors[t].dims;
                    let len = numel(&dims);
                    if island_in.len() <= k {
                        let nb = b.new_buf(BufKind::F32, len);
                        island_in.push(nb);
                    }
                    let xk = b.grow(island_in[k], len);
                    let src = b.tensor(t);
                    if tf32 {
                        b.push(i, Step::Transpose { dims, to: Layout::Nchw, x: src, y: xk });
                    } else {
                        let tmp = *island_tmp.get_or_insert_with(|| b.new_buf(BufKind::F32, len));
                        let tmp = b.grow(tmp, len);
                        b.push(i, Step::HalfToF32 { x: src, y: tmp });
                        b.push(i, Step::Transpose { dims, to: Layout::Nchw, x: tmp, y: xk });
                    }
                    xs.push(xk);
                }
                let len = numel(&out_dims);
                let o = *island_out.get_or_insert_with(|| b.new_buf(BufKind::F32, len));
                let y32 = b.grow(o, len);
                emit_f32(&mut b, i, node, inner, &xs, y32)?;
                if tf32 {
                    b.push(i, Step::Transpose { dims: out_dims, to: Layout::Nhwc, x: y32, y: y_slot });
                } else {
                    b.push(i, Step::ToNhwcF16 { dims: out_dims, x: y32, y: y_slot });
                }
            }
            k => {
                let xs: Vec<BufRef> = node.inputs.iter().map(|&t| b.tensor(t)).collect();
                emit_f32(&mut b, i, node, k, &xs, y_slot)?;
            }
        }
    }
    let out_dims = g.tensors[g.output].dims;
    let out_slot = b.tensor(g.output);
    b.bp.output = if f16 {
        let len = numel(&out_dims);
        let tmp = *island_tmp.get_or_insert_with(|| b.new_buf(BufKind::F32, len));
        let tmp = b.grow(tmp, len);
        let o = b.new_buf(BufKind::F32, len);
        let y = BufRef { idx: o, len };
        b.push(u32::MAX as usize, Step::HalfToF32 { x: out_slot, y: tmp });
        b.push(u32::MAX as usize, Step::Transpose { dims: out_dims, to: Layout::Nchw, x: tmp, y });
        y
    } else if tf32 {
        let len = numel(&out_dims);
        let y = BufRef { idx: b.new_buf(BufKind::F32, len), len };
        b.push(u32::MAX as usize, Step::Transpose { dims: out_dims, to: Layout::Nchw, x: out_slot, y });
        y
    } else {
        out_slot
    };
    Ok(b.bp)
}

/// Channels the f16 plan pads a small graph input to: the tensor-core conv's fast path
/// needs `c_in % 8 == 0` (ResNet-50's 3-channel conv1 ran ~3x slower on the gather path).
const PAD_C: usize = 8;

/// Whether the f16 plan converts the graph input straight to [`PAD_C`] channels: it has
/// fewer, and every node reading it is a tensor-core conv reading it as its data input
/// only (such a conv gets zero weights for the extra channels, so its result is the same).
fn pads_input(g: &Graph, kernels: &[Kernel]) -> bool {
    if g.tensors[g.input].dims[1] >= PAD_C || g.output == g.input {
        return false;
    }
    let mut readers = g.nodes.iter().zip(kernels).filter(|(n, _)| n.inputs.contains(&g.input)).peekable();
    readers.peek().is_some()
        && readers
            .all(|(n, k)| matches!(k, Kernel::ConvTc) && n.inputs[0] == g.input && !n.inputs[1..].contains(&g.input))
}

/// OIHW conv weights `[o, conv.c_in, kh, kw]` → `[o, c_in, kh, kw]`, the extra input
/// channels zero (`c_in >= conv.c_in`, `groups == 1`).
fn pad_weights_c_in(w: &[f32], conv: &Conv2d, c_in: usize) -> Vec<f32> {
    let taps = conv.kh * conv.kw;
    let mut out = vec![0f32; conv.c_out * c_in * taps];
    for (o, src) in w.chunks_exact(conv.c_in * taps).enumerate() {
        out[o * c_in * taps..][..src.len()].copy_from_slice(src);
    }
    out
}

/// The f32 NCHW launches of one node reading `xs` and writing `y`.
fn emit_f32(b: &mut Builder, i: usize, node: &Node, k: &Kernel, xs: &[BufRef], y: BufRef) -> Result<()> {
    let x = xs[0];
    let g = b.g;
    let step = match (&node.op, k) {
        (Op::Conv { conv, epi }, Kernel::ConvSimt(spec)) => {
            let w = b.weight(node, WeightRole::Kernel)?.to_vec();
            let w = b.push32(w);
            let bias = b.opt32(node, epi.bias, WeightRole::Bias)?;
            let scale = b.opt32(node, epi.scale_shift, WeightRole::Scale)?;
            let shift = b.opt32(node, epi.scale_shift, WeightRole::Shift)?;
            let residual = if epi.residual { Some(xs[1]) } else { None };
            Step::ConvSimt { spec, conv: *conv, epi: *epi, x, w, bias, scale, shift, residual, y }
        }
        (Op::Linear { gemm: gm, bias, act }, Kernel::GemmSimt(spec)) => {
            let w = b.weight(node, WeightRole::Kernel)?.to_vec();
            let w = b.push32(w);
            let bi = b.opt32(node, *bias, WeightRole::Bias)?;
            Step::GemmSimt { spec, gemm: *gm, act: *act, a: x, w, bias: bi, c: y }
        }
        (Op::Pool(p), Kernel::Memory) => Step::Pool { p: *p, x, y },
        (Op::Act(a), Kernel::Memory) => Step::Act { op: Activation { len: y.len, act: *a }, x, y },
        (Op::Add { act }, Kernel::Memory) => Step::Add { op: Add { len: y.len, act: *act }, a: x, b: xs[1], y },
        (Op::BatchNorm(bn), Kernel::Memory) => {
            let (s, t) = bn_affine(
                b.weight(node, WeightRole::BnGamma)?,
                b.weight(node, WeightRole::BnBeta)?,
                b.weight(node, WeightRole::BnMean)?,
                b.weight(node, WeightRole::BnVar)?,
                bn.eps,
            );
            let (scale, shift) = (b.push32(s), b.push32(t));
            Step::BatchNorm { bn: *bn, scale, shift, x, y }
        }
        (Op::Lrn(l), Kernel::Memory) => Step::Lrn { l: *l, x, y },
        (Op::Softmax(s), Kernel::Memory) => Step::Softmax { s: *s, x, y },
        (Op::Concat, Kernel::Memory) => {
            let [n, c_total, h, w] = g.tensors[node.output].dims;
            let mut offset = 0;
            for (k, &t) in node.inputs.iter().enumerate() {
                let c = g.tensors[t].dims[1];
                b.push(i, Step::ConcatPart { n, c, hw: h * w, c_total, offset, x: xs[k], y });
                offset += c;
            }
            return Ok(());
        }
        (op, k) => return Err(layer_err(node, format!("internal: kernel {k:?} does not run {}", op.op_name()))),
    };
    b.push(i, step);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Device side.

enum Dev {
    F32(CudaSlice<f32>),
    F16(CudaSlice<u16>),
}

fn busy(what: &str) -> Error {
    Error::Invalid(format!("GPU executor: buffer {what} is already in use (memory plan bug)"))
}

/// A graph ready to run on one GPU; see the module docs.
pub struct Plan {
    /// The GPU with the plan's own stream.
    pub gpu: Gpu,
    pub blueprint: Blueprint,
    bufs: Vec<RefCell<Dev>>,
    /// Which entry of `bufs` a [`BufRef`] index means: the identity except while replay
    /// captures a layer on rotating copies ([`Plan::capture_layer_rotating`]).
    remap: Vec<std::cell::Cell<usize>>,
    /// The same for weight indices into `w32` / `w16`.
    wmap32: Vec<std::cell::Cell<usize>>,
    wmap16: Vec<std::cell::Cell<usize>>,
    w32: Vec<CudaSlice<f32>>,
    w16: Vec<CudaSlice<u16>>,
    pub batch: usize,
    /// Elements of the NCHW f32 output (logits).
    pub output_len: usize,
    pub input_len: usize,
    /// Set by the profiler: each launch publishes (layer, iteration) here first, for the
    /// CUPTI launch callback (two stores per launch, no allocation).
    tag: Option<Arc<cnnergy_cupti::TagCell>>,
    iteration: std::cell::Cell<u32>,
    /// f32 partial sums of split-K GEMMs (sized for the largest one; None if none splits).
    splitk_ws: Option<RefCell<CudaSlice<f32>>>,
}

/// Rotating copies of some plan buffers for replay ([`Plan::add_rotation`]).
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The plan buffers rotated.
    pub which: Vec<usize>,
    /// Per copy (0 = the originals), the buffer standing in for each of `which`.
    pub sets: Vec<Vec<usize>>,
    /// The weights rotated (f16 storage, index) and, per copy, their stand-ins.
    pub weights: Vec<(bool, usize)>,
    pub wsets: Vec<Vec<usize>>,
}

impl Rotation {
    pub fn copies(&self) -> usize {
        self.sets.len()
    }
}

/// Copies of a layer's rotated buffers so that one pass over all of them moves at least
/// `factor` × the L2 size: 1 (no rotation) when one copy already does, at most `max`.
pub fn rotation_copies(bytes_per_copy: usize, l2_bytes: usize, factor: usize, max: usize) -> usize {
    if bytes_per_copy == 0 {
        return 1;
    }
    (l2_bytes * factor).div_ceil(bytes_per_copy).clamp(1, max.max(1))
}

/// A captured [`Plan::enqueue_planned`], replayable with [`GraphExec::launch`].
pub struct GraphExec {
    graph: CudaGraph,
}

impl GraphExec {
    /// Replays the captured launches on the plan's stream (asynchronous).
    pub fn launch(&self) -> Result<()> {
        self.graph.launch().map_err(Error::driver("launching a CUDA graph"))
    }
}

impl Plan {
    /// Builds the plan: kernel choice, memory plan, free-memory check, allocation, weight
    /// upload. Turns the context's event tracking off (see the module docs): use the
    /// plan's stream (`plan.gpu.stream`) for anything that touches its buffers.
    pub fn new(gpu: &Gpu, g: &Graph, w: &Weights, opts: &ExecOptions) -> Result<Plan> {
        let bp = blueprint(g, w, opts, gpu.info.sm_count)?;
        let need = bp.activation_bytes() + bp.weight_bytes;
        gpu.ctx.bind_to_thread().map_err(Error::driver("binding the context"))?;
        let (free, total) = gpu.ctx.mem_get_info().map_err(Error::driver("reading free device memory"))?;
        // Keep 256 MiB for the driver, module and pools.
        if need + (256 << 20) > free {
            return Err(Error::Invalid(format!(
                "{} at batch {}: needs {:.1} MiB of device memory ({:.1} MiB activations, {:.1} MiB weights), \
                 {:.1} of {:.1} MiB are free",
                g.name,
                g.batch(),
                need as f64 / 1048576.0,
                bp.activation_bytes() as f64 / 1048576.0,
                bp.weight_bytes as f64 / 1048576.0,
                free as f64 / 1048576.0,
                total as f64 / 1048576.0
            )));
        }
        // SAFETY: every buffer below is used only on `stream` (one stream, in order), and
        // the plan synchronizes that stream before its buffers are freed (Drop).
        unsafe { gpu.ctx.disable_event_tracking() };
        let stream: Arc<CudaStream> = gpu.ctx.new_stream().map_err(Error::driver("creating the plan's stream"))?;
        let pgpu = Gpu {
            info: gpu.info.clone(),
            ctx: gpu.ctx.clone(),
            stream: stream.clone(),
            module: gpu.module.clone(),
            target: gpu.target,
        };
        let oom = |e| Error::Driver { context: "allocating the plan's buffers", msg: crate::error::driver_msg(&e) };
        let mut bufs = Vec::with_capacity(bp.bufs.len());
        for &(kind, len) in &bp.bufs {
            bufs.push(RefCell::new(match kind {
                BufKind::F32 => Dev::F32(stream.alloc_zeros::<f32>(len).map_err(oom)?),
                BufKind::F16 => Dev::F16(stream.alloc_zeros::<u16>(len).map_err(oom)?),
            }));
        }
        let mut w32 = Vec::with_capacity(bp.w32.len());
        for v in &bp.w32 {
            w32.push(stream.clone_htod(v).map_err(Error::driver("uploading weights"))?);
        }
        let mut w16 = Vec::with_capacity(bp.w16.len());
        for v in &bp.w16 {
            w16.push(stream.clone_htod(v).map_err(Error::driver("uploading weights"))?);
        }
        stream.synchronize().map_err(Error::driver("uploading weights"))?;
        let ws_len = bp
            .launches
            .iter()
            .filter_map(|l| match &l.step {
                // Split-K workspace only where gemm_fc takes the tensor-core path (M > 8).
                Step::GemmTc { gemm, .. } => smallm::fc_workspace_len(DType::F16, gemm, gpu.info.sm_count),
                Step::GemmTf32 { gemm, .. } => smallm::fc_workspace_len(DType::F32, gemm, gpu.info.sm_count),
                _ => None,
            })
            .max();
        let splitk_ws = ws_len.map(|n| stream.alloc_zeros::<f32>(n).map(RefCell::new)).transpose().map_err(oom)?;
        let mut bp = bp;
        bp.w32 = Vec::new(); // host copies no longer needed
        bp.w16 = Vec::new();
        let remap = (0..bufs.len()).map(std::cell::Cell::new).collect();
        let wmap32 = (0..w32.len()).map(std::cell::Cell::new).collect();
        let wmap16 = (0..w16.len()).map(std::cell::Cell::new).collect();
        Ok(Plan {
            gpu: pgpu,
            bufs,
            remap,
            wmap32,
            wmap16,
            w32,
            w16,
            batch: g.batch(),
            output_len: bp.output.len,
            input_len: bp.input.len,
            blueprint: bp,
            tag: None,
            iteration: std::cell::Cell::new(0),
            splitk_ws,
        })
    }

    /// Device memory of the activations (all reusable buffers and scratch).
    pub fn peak_activation_bytes(&self) -> usize {
        self.blueprint.activation_bytes() + self.splitk_ws.as_ref().map_or(0, |w| w.borrow().len() * 4)
    }

    pub fn weight_bytes(&self) -> usize {
        self.blueprint.weight_bytes
    }

    fn r32(&self, b: BufRef) -> Result<Ref<'_, CudaSlice<f32>>> {
        let r = self.bufs[self.remap[b.idx].get()].try_borrow().map_err(|_| busy("(read)"))?;
        Ref::filter_map(r, |d| match d {
            Dev::F32(s) => Some(s),
            Dev::F16(_) => None,
        })
        .map_err(|_| Error::Invalid("GPU executor: expected an f32 buffer".into()))
    }
    fn r16(&self, b: BufRef) -> Result<Ref<'_, CudaSlice<u16>>> {
        let r = self.bufs[self.remap[b.idx].get()].try_borrow().map_err(|_| busy("(read)"))?;
        Ref::filter_map(r, |d| match d {
            Dev::F16(s) => Some(s),
            Dev::F32(_) => None,
        })
        .map_err(|_| Error::Invalid("GPU executor: expected an f16 buffer".into()))
    }
    fn w32m(&self, b: BufRef) -> Result<RefMut<'_, CudaSlice<f32>>> {
        let r = self.bufs[self.remap[b.idx].get()].try_borrow_mut().map_err(|_| busy("(write)"))?;
        RefMut::filter_map(r, |d| match d {
            Dev::F32(s) => Some(s),
            Dev::F16(_) => None,
        })
        .map_err(|_| Error::Invalid("GPU executor: expected an f32 buffer".into()))
    }
    fn w16m(&self, b: BufRef) -> Result<RefMut<'_, CudaSlice<u16>>> {
        let r = self.bufs[self.remap[b.idx].get()].try_borrow_mut().map_err(|_| busy("(write)"))?;
        RefMut::filter_map(r, |d| match d {
            Dev::F16(s) => Some(s),
            Dev::F32(_) => None,
        })
        .map_err(|_| Error::Invalid("GPU executor: expected an f16 buffer".into()))
    }

    /// The split-K workspace, borrowed for one launch (None when no GEMM splits).
    fn splitk_workspace(&self) -> Result<Option<RefMut<'_, CudaSlice<f32>>>> {
        self.splitk_ws.as_ref().map(|w| w.try_borrow_mut().map_err(|_| busy("split-K workspace"))).transpose()
    }

    /// The plan's input buffer (NCHW f32, `input_len` elements).
    pub fn input_buffer(&self) -> Result<RefMut<'_, CudaSlice<f32>>> {
        self.w32m(self.blueprint.input)
    }

    /// Copies `input` (NCHW f32, on the device) into the plan's input buffer, then
    /// enqueues the whole graph. The copy runs on the plan's stream with no cross-stream
    /// event tracking: `input` must have been written on `plan.gpu.stream`, or its writer
    /// synchronized, before this call.
    pub fn enqueue(&self, input: &CudaSlice<f32>) -> Result<()> {
        if input.len() < self.input_len {
            return Err(Error::Invalid(format!(
                "input has {} elements, the plan needs {}",
                input.len(),
                self.input_len
            )));
        }
        {
            let mut dst = self.input_buffer()?;
            let mut dst = dst.slice_mut(0..self.input_len);
            self.gpu
                .stream
                .memcpy_dtod(&input.slice(0..self.input_len), &mut dst)
                .map_err(Error::driver("copying the input"))?;
        }
        self.enqueue_planned()
    }

    /// Enqueues the whole graph on the plan's stream, reading the plan's input buffer.
    pub fn enqueue_planned(&self) -> Result<()> {
        let it = self.iteration.get();
        for l in &self.blueprint.launches {
            CURRENT_LAYER.store(l.layer_id, Ordering::Relaxed);
            if let Some(t) = &self.tag {
                t.set(cnnergy_cupti::Tag { layer: l.layer_id, iteration: it });
            }
            self.launch(&l.step)?;
        }
        CURRENT_LAYER.store(u32::MAX, Ordering::Relaxed);
        if let Some(t) = &self.tag {
            t.set(cnnergy_cupti::TagCell::NONE);
        }
        Ok(())
    }

    /// Enqueues only the launches of layer `layer`, `reps` times back to back (replay).
    /// Returns the number of launches per repetition (0: the layer has none).
    pub fn enqueue_layer(&self, layer: u32, reps: usize) -> Result<usize> {
        let mut n = 0;
        for r in 0..reps {
            for l in self.blueprint.launches.iter().filter(|l| l.layer_id == layer) {
                self.launch(&l.step)?;
                if r == 0 {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Captures [`Plan::enqueue_layer`]`(layer, reps)` into a CUDA graph.
    pub fn capture_layer(&self, layer: u32, reps: usize) -> Result<GraphExec> {
        let s = &self.gpu.stream;
        s.synchronize().map_err(Error::driver("synchronizing before capture"))?;
        s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .map_err(Error::driver("beginning stream capture"))?;
        let enq = self.enqueue_layer(layer, reps);
        let graph = s.end_capture(CUgraphInstantiate_flags(0)).map_err(Error::driver("ending stream capture"));
        enq?;
        let graph = graph?.ok_or_else(|| Error::Invalid(format!("layer {layer} has no launches to capture")))?;
        graph.upload().map_err(Error::driver("uploading a CUDA graph"))?;
        Ok(GraphExec { graph })
    }

    /// The plan buffers layer `layer`'s launches touch: (read only, written), ascending.
    pub fn layer_buffers(&self, layer: u32) -> (Vec<usize>, Vec<usize>) {
        let (mut read, mut written) = (Vec::new(), Vec::new());
        for l in self.blueprint.launches.iter().filter(|l| l.layer_id == layer) {
            let (xs, y) = l.step.buffers();
            read.extend(xs.iter().map(|b| b.idx));
            written.push(y.idx);
        }
        written.sort_unstable();
        written.dedup();
        read.retain(|i| !written.contains(i));
        read.sort_unstable();
        read.dedup();
        (read, written)
    }

    /// The main weight tensor of each of layer `layer`'s launches: (f16 storage, index).
    pub fn layer_weights(&self, layer: u32) -> Vec<(bool, usize)> {
        let mut v: Vec<(bool, usize)> = self
            .blueprint
            .launches
            .iter()
            .filter(|l| l.layer_id == layer)
            .filter_map(|l| l.step.main_weight())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Bytes of the weights `which` ([`Plan::layer_weights`]).
    pub fn weights_bytes(&self, which: &[(bool, usize)]) -> usize {
        which.iter().map(|&(h, i)| if h { self.w16[i].len() * 2 } else { self.w32[i].len() * 4 }).sum()
    }

    /// Bytes of plan buffer `idx`.
    fn buf_bytes(&self, idx: usize) -> usize {
        match &*self.bufs[idx].borrow() {
            Dev::F32(s) => s.len() * 4,
            Dev::F16(s) => s.len() * 2,
        }
    }

    /// Allocates `copies - 1` extra copies of the buffers `which` (plan buffer indices)
    /// for [`Plan::capture_layer_rotating`]; copy 0 is the originals. Each copy starts
    /// with the original's contents (real activations: power depends on the data).
    /// Returns, per copy, the plan-buffer index standing in for each of `which`.
    pub fn add_rotation(&mut self, which: &[usize], weights: &[(bool, usize)], copies: usize) -> Result<Rotation> {
        let s = self.gpu.stream.clone();
        let oom = |e| Error::Driver { context: "allocating replay copies", msg: crate::error::driver_msg(&e) };
        let mut sets = vec![which.to_vec()];
        for _ in 1..copies.max(1) {
            let mut set = Vec::with_capacity(which.len());
            for &i in which {
                let copy = match &*self.bufs[i].borrow() {
                    Dev::F32(src) => Dev::F32(s.clone_dtod(src).map_err(oom)?),
                    Dev::F16(src) => Dev::F16(s.clone_dtod(src).map_err(oom)?),
                };
                self.bufs.push(RefCell::new(copy));
                set.push(self.bufs.len() - 1);
            }
            sets.push(set);
        }
        let mut wsets = vec![weights.iter().map(|w| w.1).collect::<Vec<_>>()];
        for _ in 1..copies.max(1) {
            let mut set = Vec::with_capacity(weights.len());
            for &(half, i) in weights {
                if half {
                    let c = s.clone_dtod(&self.w16[i]).map_err(oom)?;
                    self.w16.push(c);
                    set.push(self.w16.len() - 1);
                } else {
                    let c = s.clone_dtod(&self.w32[i]).map_err(oom)?;
                    self.w32.push(c);
                    set.push(self.w32.len() - 1);
                }
            }
            wsets.push(set);
        }
        s.synchronize().map_err(Error::driver("copying replay buffers"))?;
        Ok(Rotation { which: which.to_vec(), sets, weights: weights.to_vec(), wsets })
    }

    /// Bytes one copy of `which` takes.
    pub fn buffers_bytes(&self, which: &[usize]) -> usize {
        which.iter().map(|&i| self.buf_bytes(i)).sum()
    }

    /// Frees the copies of [`Plan::add_rotation`] made after `keep` buffers existed
    /// (drop the graphs captured on them first).
    pub fn truncate_buffers(&mut self, keep: usize) {
        self.bufs.truncate(keep.max(self.remap.len()));
        self.w32.truncate(self.wmap32.len());
        self.w16.truncate(self.wmap16.len());
    }

    /// Number of device buffers now (originals and replay copies).
    pub fn buffer_count(&self) -> usize {
        self.bufs.len()
    }

    /// Like [`Plan::capture_layer`], but repetition `r` runs on copy `r % copies` of the
    /// rotated buffers, so a layer replayed in isolation streams through more memory than
    /// the L2 holds instead of re-reading (and re-writing) cache-resident buffers.
    pub fn capture_layer_rotating(&self, layer: u32, reps: usize, rot: &Rotation) -> Result<GraphExec> {
        let s = &self.gpu.stream;
        s.synchronize().map_err(Error::driver("synchronizing before capture"))?;
        s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .map_err(Error::driver("beginning stream capture"))?;
        let mut enq = Ok(0);
        for r in 0..reps {
            for (k, &orig) in rot.which.iter().enumerate() {
                self.remap[orig].set(rot.sets[r % rot.sets.len()][k]);
            }
            for (k, &(half, orig)) in rot.weights.iter().enumerate() {
                let map = if half { &self.wmap16 } else { &self.wmap32 };
                map[orig].set(rot.wsets[r % rot.wsets.len()][k]);
            }
            enq = self.enqueue_layer(layer, 1);
            if enq.is_err() {
                break;
            }
        }
        for &orig in &rot.which {
            self.remap[orig].set(orig);
        }
        for &(half, orig) in &rot.weights {
            let map = if half { &self.wmap16 } else { &self.wmap32 };
            map[orig].set(orig);
        }
        let graph = s.end_capture(CUgraphInstantiate_flags(0)).map_err(Error::driver("ending stream capture"));
        enq?;
        let graph = graph?.ok_or_else(|| Error::Invalid(format!("layer {layer} has no launches to capture")))?;
        graph.upload().map_err(Error::driver("uploading a CUDA graph"))?;
        Ok(GraphExec { graph })
    }

    /// Makes every launch publish its (layer, iteration) in `cell` (the profiler's
    /// CUPTI tagging); `None` turns it off.
    pub fn set_tag_cell(&mut self, cell: Option<Arc<cnnergy_cupti::TagCell>>) {
        self.tag = cell;
    }

    /// The iteration number published with the following launches.
    pub fn set_iteration(&self, iteration: u32) {
        self.iteration.set(iteration);
    }

    fn launch(&self, s: &Step) -> Result<()> {
        let gpu = &self.gpu;
        let w = |i: usize| self.w32[self.wmap32[i].get()].slice(..);
        let wo = |i: Option<usize>| i.map(|i| self.w32[self.wmap32[i].get()].slice(..));
        match s {
            Step::ConvSimt { spec, conv, epi, x, w: wi, bias, scale, shift, residual, y } => {
                let xs = self.r32(*x)?;
                let rs = match residual {
                    Some(r) => Some(self.r32(*r)?),
                    None => None,
                };
                let ops = conv::ConvOperands {
                    x: xs.slice(0..x.len),
                    w: w(*wi),
                    bias: wo(*bias),
                    scale: wo(*scale),
                    shift: wo(*shift),
                    residual: rs.as_ref().zip(*residual).map(|(r, b)| r.slice(0..b.len)),
                };
                let mut ys = self.w32m(*y)?;
                conv::launch(gpu, spec, conv, epi, &ops, &mut ys.slice_mut(0..y.len))?;
            }
            Step::ConvTc { conv, act, x, w: wi, bias, scale, shift, residual, y } => {
                let xs = self.r16(*x)?;
                let rs = match residual {
                    Some(r) => Some(self.r16(*r)?),
                    None => None,
                };
                let ops = tensorcore::ConvOperands {
                    x: xs.slice(0..x.len),
                    w: self.w16[self.wmap16[*wi].get()].slice(..),
                    bias: wo(*bias),
                    scale: wo(*scale),
                    shift: wo(*shift),
                    residual: rs.as_ref().zip(*residual).map(|(r, b)| r.slice(0..b.len)),
                };
                let mut ys = self.w16m(*y)?;
                tensorcore::conv2d(gpu, DType::F16, conv, *act, &ops, &mut ys.slice_mut(0..y.len))?;
            }
            Step::ConvTf32 { conv, act, x, w: wi, bias, scale, shift, residual, y } => {
                let xs = self.r32(*x)?;
                let rs = match residual {
                    Some(r) => Some(self.r32(*r)?),
                    None => None,
                };
                let ops = tensorcore::ConvOperands {
                    x: xs.slice(0..x.len),
                    w: w(*wi),
                    bias: wo(*bias),
                    scale: wo(*scale),
                    shift: wo(*shift),
                    residual: rs.as_ref().zip(*residual).map(|(r, b)| r.slice(0..b.len)),
                };
                let mut ys = self.w32m(*y)?;
                tensorcore::conv2d(gpu, DType::F32, conv, *act, &ops, &mut ys.slice_mut(0..y.len))?;
            }
            Step::ConvDw { conv, act, x, w: wi, bias, scale, shift, residual, y } => {
                let xs = self.r16(*x)?;
                let rs = match residual {
                    Some(r) => Some(self.r16(*r)?),
                    None => None,
                };
                let ops = tensorcore::ConvOperands {
                    x: xs.slice(0..x.len),
                    w: self.w16[self.wmap16[*wi].get()].slice(..),
                    bias: wo(*bias),
                    scale: wo(*scale),
                    shift: wo(*shift),
                    residual: rs.as_ref().zip(*residual).map(|(r, b)| r.slice(0..b.len)),
                };
                let mut ys = self.w16m(*y)?;
                depthwise::conv2d(gpu, DType::F16, conv, *act, &ops, &mut ys.slice_mut(0..y.len))?;
            }
            Step::GemmSimt { spec, gemm: g, act, a, w: wi, bias, c } => {
                let xs = self.r32(*a)?;
                let ops = gemm::GemmOperands { a: xs.slice(0..a.len), b: w(*wi), bias: wo(*bias) };
                let mut ys = self.w32m(*c)?;
                gemm::launch(gpu, spec, g, *act, &ops, &mut ys.slice_mut(0..c.len))?;
            }
            Step::GemmTc { gemm: g, a, w: wi, bias, c } => {
                let xs = self.r16(*a)?;
                let bias = wo(*bias);
                let mut ys = self.w16m(*c)?;
                // M <= 8: the weight-streaming small-batch kernel; otherwise split-K (two
                // launches) when the output tiles cannot fill the SMs.
                let mut ws = self.splitk_workspace()?;
                let mut wsv = ws.as_mut().map(|w| w.as_view_mut());
                smallm::gemm_fc(
                    gpu,
                    DType::F16,
                    g,
                    &xs.slice(0..a.len),
                    &self.w16[self.wmap16[*wi].get()].slice(..),
                    bias.as_ref(),
                    wsv.as_mut(),
                    &mut ys.slice_mut(0..c.len),
                )?;
            }
            Step::GemmTf32 { gemm: g, a, w: wi, bias, c } => {
                let xs = self.r32(*a)?;
                let bias = wo(*bias);
                let mut ys = self.w32m(*c)?;
                // f32 data: gemm_fc takes the tensor-core GEMM, split-K when the output
                // tiles cannot fill the SMs (the workspace is sized for that).
                let mut ws = self.splitk_workspace()?;
                let mut wsv = ws.as_mut().map(|w| w.as_view_mut());
                smallm::gemm_fc(
                    gpu,
                    DType::F32,
                    g,
                    &xs.slice(0..a.len),
                    &w(*wi),
                    bias.as_ref(),
                    wsv.as_mut(),
                    &mut ys.slice_mut(0..c.len),
                )?;
            }
            Step::Pool { p, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w32m(*y)?);
                memory::pool2d_f32(gpu, p, &xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::PoolNhwcF32 { p, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w32m(*y)?);
                if p.kind != crate::ops::PoolKind::GlobalAvg {
                    return Err(Error::Invalid("GPU executor: NHWC f32 pooling is global average only".into()));
                }
                memory::global_avg_pool_nhwc_f32(gpu, p, &xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::PoolF16 { p, x, y } => {
                let (xs, mut ys) = (self.r16(*x)?, self.w16m(*y)?);
                memory::pool2d_nhwc_half(gpu, DType::F16, p, &xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::Act { op, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w32m(*y)?);
                memory::activation_f32(gpu, op, &xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::ActF16 { op, x, y } => {
                let (xs, mut ys) = (self.r16(*x)?, self.w16m(*y)?);
                memory::activation_half(gpu, DType::F16, op, &xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::Add { op, a, b, y } => {
                let (as_, bs, mut ys) = (self.r32(*a)?, self.r32(*b)?, self.w32m(*y)?);
                memory::add_f32(gpu, op, &as_.slice(0..a.len), &bs.slice(0..b.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::AddF16 { op, a, b, y } => {
                let (as_, bs, mut ys) = (self.r16(*a)?, self.r16(*b)?, self.w16m(*y)?);
                memory::add_half(
                    gpu,
                    DType::F16,
                    op,
                    &as_.slice(0..a.len),
                    &bs.slice(0..b.len),
                    &mut ys.slice_mut(0..y.len),
                )?;
            }
            Step::BatchNorm { bn, scale, shift, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w32m(*y)?);
                // One channel per block where planes are large enough to keep it busy.
                let f = if bn.h * bn.w >= 256 { memory::batch_norm_f32_planes } else { memory::batch_norm_f32 };
                f(gpu, bn, Act::None, &xs.slice(0..x.len), &w(*scale), &w(*shift), &mut ys.slice_mut(0..y.len))?;
            }
            Step::Lrn { l, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w32m(*y)?);
                memory::lrn_f32(gpu, l, &xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::Softmax { s, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w32m(*y)?);
                memory::softmax_f32(gpu, s, &xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::ConcatPart { n, c, hw, c_total, offset, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w32m(*y)?);
                memory::concat_channels_f32(
                    gpu,
                    [*n, *c, *hw],
                    *c_total,
                    *offset,
                    &xs.slice(0..x.len),
                    &mut ys.slice_mut(0..y.len),
                )?;
            }
            Step::ToNhwcF16 { dims, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w16m(*y)?);
                memory::nchw_f32_to_nhwc_half_pix8(
                    gpu,
                    DType::F16,
                    *dims,
                    &xs.slice(0..x.len),
                    &mut ys.slice_mut(0..y.len),
                )?;
            }
            Step::ToNhwcF16Pad8 { dims, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w16m(*y)?);
                memory::nchw_f32_to_nhwc_half_pad8(
                    gpu,
                    DType::F16,
                    *dims,
                    &xs.slice(0..x.len),
                    &mut ys.slice_mut(0..y.len),
                )?;
            }
            Step::HalfToF32 { x, y } => {
                let (xs, mut ys) = (self.r16(*x)?, self.w32m(*y)?);
                memory::half_to_f32(gpu, DType::F16, x.len, &xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::Transpose { dims, to, x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w32m(*y)?);
                memory::transpose_f32(gpu, *dims, *to, &xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))?;
            }
            Step::CopyF32 { x, y } => {
                let (xs, mut ys) = (self.r32(*x)?, self.w32m(*y)?);
                gpu.stream
                    .memcpy_dtod(&xs.slice(0..x.len), &mut ys.slice_mut(0..y.len))
                    .map_err(Error::driver("copying a tensor"))?;
            }
        }
        Ok(())
    }

    /// Uploads `input` (NCHW f32) into the plan's input buffer (on the plan's stream).
    pub fn upload_input(&self, input: &[f32]) -> Result<()> {
        if input.len() != self.input_len {
            return Err(Error::Invalid(format!(
                "input has {} elements, the plan needs {}",
                input.len(),
                self.input_len
            )));
        }
        let mut dst = self.input_buffer()?;
        self.gpu.stream.memcpy_htod(input, &mut *dst).map_err(Error::driver("uploading the input"))
    }

    /// Copies the NCHW f32 output to the host (synchronizes the plan's stream).
    pub fn download_output(&self) -> Result<Vec<f32>> {
        let o = self.blueprint.output;
        let src = self.r32(o)?;
        let v = self.gpu.stream.clone_dtoh(&src.slice(0..o.len)).map_err(Error::driver("downloading the output"))?;
        self.gpu.stream.synchronize().map_err(Error::driver("downloading the output"))?;
        Ok(v)
    }

    /// Upload, run once, download the logits (NCHW f32).
    pub fn run(&self, input: &[f32]) -> Result<Vec<f32>> {
        self.upload_input(input)?;
        self.enqueue_planned()?;
        self.download_output()
    }

    /// Device memory `(free, total)` in bytes.
    pub fn mem_info(&self) -> Result<(usize, usize)> {
        self.gpu.ctx.mem_get_info().map_err(Error::driver("reading free device memory"))
    }

    /// Times whole batches with CUDA events around each [`Plan::enqueue_planned`] (or each
    /// replay of `graph`), after 3 warm-up batches; `iters` batches, by default enough
    /// for at least one second (10 to 100000). Returns each batch's milliseconds, in order.
    /// Reads the input already in the plan's buffer.
    pub fn time_batches(&self, graph: Option<&GraphExec>, iters: Option<usize>) -> Result<Vec<f64>> {
        use cudarc::driver::sys::CUevent_flags;
        let ev = || {
            self.gpu.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(Error::driver("creating an event"))
        };
        let (start, stop) = (ev()?, ev()?);
        let s = &self.gpu.stream;
        let time_one = || -> Result<f64> {
            start.record(s).map_err(Error::driver("recording an event"))?;
            match graph {
                Some(gr) => gr.launch()?,
                None => self.enqueue_planned()?,
            }
            stop.record(s).map_err(Error::driver("recording an event"))?;
            stop.synchronize().map_err(Error::driver("running a batch"))?;
            Ok(start.elapsed_ms(&stop).map_err(Error::driver("reading an event"))? as f64)
        };
        for _ in 0..3 {
            time_one()?;
        }
        let first = time_one()?;
        let n = iters.unwrap_or_else(|| ((1000.0 / first.max(1e-3)).ceil() as usize).clamp(10, 100_000)).max(1);
        (0..n).map(|_| time_one()).collect()
    }

    /// Captures one [`Plan::enqueue_planned`] into a CUDA graph. The graph reads the plan's
    /// input buffer ([`Plan::upload_input`]) and writes its output buffer.
    pub fn capture(&self) -> Result<GraphExec> {
        let s = &self.gpu.stream;
        s.synchronize().map_err(Error::driver("synchronizing before capture"))?;
        s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .map_err(Error::driver("beginning stream capture"))?;
        let enq = self.enqueue_planned();
        let graph = s.end_capture(CUgraphInstantiate_flags(0)).map_err(Error::driver("ending stream capture"));
        enq?;
        let graph = graph?.ok_or_else(|| Error::Invalid("stream capture produced an empty graph".into()))?;
        graph.upload().map_err(Error::driver("uploading a CUDA graph"))?;
        Ok(GraphExec { graph })
    }
}

impl Drop for Plan {
    fn drop(&mut self) {
        // Buffers are freed stream-ordered; make sure nothing still reads them.
        let _ = self.gpu.stream.synchronize();
    }
}

/// Runs the graph on the GPU (plan built from `opts`) and on the CPU reference with the
/// same graph, weights and a seeded input; returns the relative L2 error of the logits.
/// Errors if it exceeds the tolerance: 1e-4 for f32 (SIMT, no TF32), 5e-3 for tf32
/// (10-bit mantissa operands, f32 accumulation), 1e-2 for f16.
pub fn check_against_cpu(gpu: &Gpu, g: &Graph, w: &Weights, opts: &ExecOptions, seed: u64) -> Result<f64> {
    let input = crate::weights::seeded_input(g.tensors[g.input].dims, seed);
    let plan = Plan::new(gpu, g, w, opts)?;
    let got = plan.run(&input)?;
    drop(plan);
    let want = crate::exec_cpu::run(g, w, &input)?;
    let rel = rel_l2(&got, &want)?;
    let tol = check_tolerance(opts);
    if rel.is_nan() || rel > tol {
        return Err(Error::Invalid(format!(
            "{} ({}): GPU logits differ from the CPU reference by relative L2 {rel:.3e} > {tol:.0e}",
            g.name,
            opts.precision()
        )));
    }
    Ok(rel)
}

/// The relative L2 error [`check_against_cpu`] accepts for `opts`' precision.
pub fn check_tolerance(opts: &ExecOptions) -> f64 {
    match (opts.dtype, opts.tf32) {
        (DType::F32, false) => 1e-4,
        (DType::F32, true) => 5e-3,
        _ => 1e-2,
    }
}

/// Relative L2 distance `|a - b| / |b|` (NaN-safe: a non-finite value is an error).
pub fn rel_l2(a: &[f32], b: &[f32]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(Error::Invalid(format!("length {} != reference length {}", a.len(), b.len())));
    }
    let (mut num, mut den) = (0f64, 0f64);
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        if !x.is_finite() {
            return Err(Error::Invalid(format!("element {i} is {x}, reference {y}")));
        }
        num += (x as f64 - y as f64).powi(2);
        den += (y as f64).powi(2);
    }
    Ok((num / den.max(f64::MIN_POSITIVE)).sqrt())
}

// ---------------------------------------------------------------------------------------
// CPU emulation of a blueprint (tests and debugging; no GPU).

enum HostBuf {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

fn oe(e: crate::ops::OpError) -> Error {
    Error::Invalid(e.to_string())
}

/// `v` rounded to tf32 as the tensor-core kernels do (`cvt.rna.tf32.f32`: 10 mantissa
/// bits, round to nearest, ties away from zero).
fn tf32_round(mut v: Vec<f32>) -> Vec<f32> {
    for x in v.iter_mut().filter(|x| x.is_finite()) {
        *x = f32::from_bits((x.to_bits() + 0x1000) & !0x1fff);
    }
    v
}

fn rnd(y: Vec<f64>) -> Vec<f32> {
    y.into_iter().map(|v| v as f32).collect()
}

/// Runs `bp`'s launch list on the CPU with the f64 reference functions, every buffer of
/// the plan emulated (poisoned with NaN first, f16 buffers holding f16 bits, TF32 operands
/// rounded to tf32), so a
/// memory-plan, layout, conversion or weight-order bug shows up as wrong logits without
/// a GPU. Needs the blueprint's host weights (as [`blueprint`] returns it). Returns the
/// NCHW f32 output.
pub fn emulate(bp: &Blueprint, input: &[f32]) -> Result<Vec<f32>> {
    use crate::reference::{self as r, EpilogueArgs};
    let mut bufs: Vec<HostBuf> = bp
        .bufs
        .iter()
        .map(|&(k, n)| match k {
            BufKind::F32 => HostBuf::F32(vec![f32::NAN; n]),
            BufKind::F16 => HostBuf::F16(vec![0x7e00; n]),
        })
        .collect();
    let bad = |what: &str| Error::Invalid(format!("emulate: {what}"));
    let get32 = |bufs: &[HostBuf], b: BufRef| -> Result<Vec<f32>> {
        match &bufs[b.idx] {
            HostBuf::F32(v) => Ok(v[..b.len].to_vec()),
            HostBuf::F16(_) => Err(bad("f32 read of an f16 buffer")),
        }
    };
    let get16 = |bufs: &[HostBuf], b: BufRef| -> Result<Vec<f32>> {
        match &bufs[b.idx] {
            HostBuf::F16(v) => Ok(r::f16_bits_to_f32(&v[..b.len])),
            HostBuf::F32(_) => Err(bad("f16 read of an f32 buffer")),
        }
    };
    fn put(bufs: &mut [HostBuf], b: BufRef, y: &[f32]) -> Result<()> {
        if y.len() != b.len {
            return Err(Error::Invalid(format!("emulate: wrote {} elements to a {}-element view", y.len(), b.len)));
        }
        match &mut bufs[b.idx] {
            HostBuf::F32(v) => v[..b.len].copy_from_slice(y),
            HostBuf::F16(v) => v[..b.len].copy_from_slice(&r::f32_to_f16_bits(y)),
        }
        Ok(())
    }
    put(&mut bufs, bp.input, input)?;
    let w = |i: usize| bp.w32[i].as_slice();
    let wo = |i: Option<usize>| i.map(|i| bp.w32[i].as_slice());
    for l in &bp.launches {
        // On the GPU a step borrows its inputs and its output at once: they must differ.
        let (reads, write) = l.step.buffers();
        if reads.iter().any(|r| r.idx == write.idx) {
            return Err(bad(&format!("layer {}: a step reads the buffer it writes", l.layer_id)));
        }
        for b in reads.iter().chain([&write]) {
            if b.len > bp.bufs[b.idx].1 {
                return Err(bad(&format!(
                    "layer {}: a {}-element view of a {}-element buffer",
                    l.layer_id, b.len, bp.bufs[b.idx].1
                )));
            }
        }
        match &l.step {
            Step::ConvSimt { conv, epi, x, w: wi, bias, scale, shift, residual, y, .. } => {
                let xs = get32(&bufs, *x)?;
                let rs = residual.map(|b| get32(&bufs, b)).transpose()?;
                let args = EpilogueArgs {
                    bias: wo(*bias),
                    scale: wo(*scale),
                    shift: wo(*shift),
                    residual: rs.as_deref(),
                    act: epi.act,
                };
                let out = rnd(r::conv2d(conv, Layout::Nchw, &xs, w(*wi), &args).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::ConvTc { conv, act, x, w: wi, bias, scale, shift, residual, y } => {
                let xs = get16(&bufs, *x)?;
                let rs = residual.map(|b| get16(&bufs, b)).transpose()?;
                let wt = r::ohwi_to_oihw(&r::f16_bits_to_f32(&bp.w16[*wi]), conv.weight_dims()).map_err(oe)?;
                let args = EpilogueArgs {
                    bias: wo(*bias),
                    scale: wo(*scale),
                    shift: wo(*shift),
                    residual: rs.as_deref(),
                    act: *act,
                };
                let out = rnd(r::conv2d(conv, Layout::Nhwc, &xs, &wt, &args).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::ConvTf32 { conv, act, x, w: wi, bias, scale, shift, residual, y } => {
                // The kernel rounds both operands to tf32; the epilogue stays f32.
                let xs = tf32_round(get32(&bufs, *x)?);
                let rs = residual.map(|b| get32(&bufs, b)).transpose()?;
                let wt = tf32_round(r::ohwi_to_oihw(w(*wi), conv.weight_dims()).map_err(oe)?);
                let args = EpilogueArgs {
                    bias: wo(*bias),
                    scale: wo(*scale),
                    shift: wo(*shift),
                    residual: rs.as_deref(),
                    act: *act,
                };
                let out = rnd(r::conv2d(conv, Layout::Nhwc, &xs, &wt, &args).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::ConvDw { conv, act, x, w: wi, bias, scale, shift, residual, y } => {
                let xs = get16(&bufs, *x)?;
                let rs = residual.map(|b| get16(&bufs, b)).transpose()?;
                // Tap-major [kh*kw][c] back to OIHW [c][1][kh][kw].
                let hwc = r::f16_bits_to_f32(&bp.w16[*wi]);
                let (c, taps) = (conv.c_out, conv.kh * conv.kw);
                let wt: Vec<f32> = (0..c * taps).map(|i| hwc[(i % taps) * c + i / taps]).collect();
                let args = EpilogueArgs {
                    bias: wo(*bias),
                    scale: wo(*scale),
                    shift: wo(*shift),
                    residual: rs.as_deref(),
                    act: *act,
                };
                let out = rnd(r::conv2d(conv, Layout::Nhwc, &xs, &wt, &args).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::GemmSimt { gemm: g, act, a, w: wi, bias, c, .. } => {
                let a = get32(&bufs, *a)?;
                let out = r::gemm(g, &a, w(*wi), wo(*bias)).map_err(oe)?;
                put(&mut bufs, *c, &rnd(out.into_iter().map(|v| act.apply(v)).collect()))?;
            }
            Step::GemmTc { gemm: g, a, w: wi, bias, c } => {
                let a = get16(&bufs, *a)?;
                let wt = r::f16_bits_to_f32(&bp.w16[*wi]);
                let gm = Gemm::linear(g.m, g.k, g.n, bias.is_some()).with_scalars(g.alpha, 1.0);
                let out = r::gemm(&gm, &a, &wt, wo(*bias)).map_err(oe)?;
                put(&mut bufs, *c, &rnd(out.into_iter().map(|v| g.act.apply(v)).collect()))?;
            }
            Step::GemmTf32 { gemm: g, a, w: wi, bias, c } => {
                let a = tf32_round(get32(&bufs, *a)?);
                let gm = Gemm::linear(g.m, g.k, g.n, bias.is_some()).with_scalars(g.alpha, 1.0);
                let out = r::gemm(&gm, &a, &tf32_round(w(*wi).to_vec()), wo(*bias)).map_err(oe)?;
                put(&mut bufs, *c, &rnd(out.into_iter().map(|v| g.act.apply(v)).collect()))?;
            }
            Step::Pool { p, x, y } => {
                let out = rnd(r::pool2d(p, Layout::Nchw, &get32(&bufs, *x)?).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::PoolNhwcF32 { p, x, y } => {
                let out = rnd(r::pool2d(p, Layout::Nhwc, &get32(&bufs, *x)?).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::PoolF16 { p, x, y } => {
                let out = rnd(r::pool2d(p, Layout::Nhwc, &get16(&bufs, *x)?).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::Act { op, x, y } | Step::ActF16 { op, x, y } => {
                let xs = if matches!(l.step, Step::Act { .. }) { get32(&bufs, *x)? } else { get16(&bufs, *x)? };
                let out = rnd(r::activation(op.act, &xs[..op.len]).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::Add { op, a, b, y } | Step::AddF16 { op, a, b, y } => {
                let (av, bv) = if matches!(l.step, Step::Add { .. }) {
                    (get32(&bufs, *a)?, get32(&bufs, *b)?)
                } else {
                    (get16(&bufs, *a)?, get16(&bufs, *b)?)
                };
                let out = rnd(r::add(&av[..op.len], &bv[..op.len], op.act).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::BatchNorm { bn, scale, shift, x, y } => {
                let xs = get32(&bufs, *x)?;
                let hw = bn.h * bn.w;
                let out: Vec<f32> = xs
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let c = (i / hw) % bn.c;
                        (v as f64 * w(*scale)[c] as f64 + w(*shift)[c] as f64) as f32
                    })
                    .collect();
                put(&mut bufs, *y, &out)?;
            }
            Step::Lrn { l: p, x, y } => {
                let out = rnd(r::lrn(p, Layout::Nchw, &get32(&bufs, *x)?).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::Softmax { s, x, y } => {
                let out = rnd(r::softmax(s, &get32(&bufs, *x)?).map_err(oe)?);
                put(&mut bufs, *y, &out)?;
            }
            Step::ConcatPart { n, c, hw, c_total, offset, x, y } => {
                let xs = get32(&bufs, *x)?;
                let HostBuf::F32(out) = &mut bufs[y.idx] else { return Err(bad("concat into an f16 buffer")) };
                for ni in 0..*n {
                    let src = &xs[ni * c * hw..(ni + 1) * c * hw];
                    let at = (ni * c_total + offset) * hw;
                    out[at..at + c * hw].copy_from_slice(src);
                }
            }
            Step::ToNhwcF16 { dims, x, y } => {
                let out = r::nchw_to_nhwc(&get32(&bufs, *x)?, *dims).map_err(oe)?;
                put(&mut bufs, *y, &out)?;
            }
            Step::ToNhwcF16Pad8 { dims, x, y } => {
                let nhwc = r::nchw_to_nhwc(&get32(&bufs, *x)?, *dims).map_err(oe)?;
                let c = dims[1];
                let mut out = vec![0f32; nhwc.len() / c * PAD_C];
                for (o, px) in out.chunks_exact_mut(PAD_C).zip(nhwc.chunks_exact(c)) {
                    o[..c].copy_from_slice(px);
                }
                put(&mut bufs, *y, &out)?;
            }
            Step::HalfToF32 { x, y } => {
                let xs = get16(&bufs, *x)?;
                let HostBuf::F32(out) = &mut bufs[y.idx] else { return Err(bad("f16 -> f32 into an f16 buffer")) };
                out[..x.len].copy_from_slice(&xs);
            }
            Step::Transpose { dims, to, x, y } => {
                let from = if *to == Layout::Nchw { Layout::Nhwc } else { Layout::Nchw };
                let out = r::to_layout(&get32(&bufs, *x)?, *dims, from, *to).map_err(oe)?;
                put(&mut bufs, *y, &out)?;
            }
            Step::CopyF32 { x, y } => {
                let xs = get32(&bufs, *x)?;
                put(&mut bufs, *y, &xs)?;
            }
        }
    }
    get32(&bufs, bp.output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_matches_nhwc_flatten() {
        // w[o, (c, h, w)] dotted with NCHW x equals w_perm[o, (h, w, c)] dotted with NHWC x.
        let (c, h, wd, out) = (3, 2, 4, 5);
        let k = c * h * wd;
        let w: Vec<f32> = (0..out * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut x_nhwc = vec![0f32; k];
        for ci in 0..c {
            for p in 0..h * wd {
                x_nhwc[p * c + ci] = x[ci * h * wd + p];
            }
        }
        let p = permute_linear_nhwc(&w, out, [c, h, wd]).unwrap();
        for o in 0..out {
            let a: f64 = (0..k).map(|i| w[o * k + i] as f64 * x[i] as f64).sum();
            let b: f64 = (0..k).map(|i| p[o * k + i] as f64 * x_nhwc[i] as f64).sum();
            assert!((a - b).abs() < 1e-9, "{a} {b}");
        }
        assert!(permute_linear_nhwc(&w, out + 1, [c, h, wd]).is_err());
    }

    #[test]
    fn tf32_rounding_keeps_10_mantissa_bits_ties_away() {
        let ulp = 2f32.powi(-10); // tf32's unit in the last place at 1.0
        let got = tf32_round(vec![1.0 + ulp / 2.0, 1.0 + ulp / 4.0, -(1.0 + ulp / 2.0), 3.0, f32::NAN]);
        assert_eq!(&got[..4], &[1.0 + ulp, 1.0, -(1.0 + ulp), 3.0]);
        assert!(got[4].is_nan());
    }

    #[test]
    fn precision_names_round_trip() {
        for (name, canon, tol) in
            [("f32", "f32", 1e-4), ("fp32", "f32", 1e-4), ("tf32", "tf32", 5e-3), ("fp16", "f16", 1e-2)]
        {
            let o = ExecOptions::from_name(name).unwrap();
            assert_eq!((o.precision(), check_tolerance(&o)), (canon, tol), "{name}");
            assert_eq!(ExecOptions::from_name(canon), Some(o));
        }
        assert_eq!(ExecOptions::tf32().dtype, DType::F32);
        assert!(ExecOptions::from_name("bf16").is_none() && ExecOptions::from_name("TF32").is_none());
    }

    #[test]
    fn variant_overrides_parse() {
        let o = ExecOptions::new(DType::F32).with_variants("conv=implicit_gemm_64, gemm=simt").unwrap();
        assert_eq!(o.variant(LayerType::Conv), Some("implicit_gemm_64"));
        assert_eq!(o.variant(LayerType::Gemm), Some("simt"));
        assert!(ExecOptions::new(DType::F32).with_variants("pool=max").is_err());
        assert!(ExecOptions::new(DType::F32).with_variants("conv").is_err());
    }
}
