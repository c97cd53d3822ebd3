//! Op parameter vocabulary shared by the CPU references, the GPU kernel registry and
//! the layer graph: shapes, validation, shape inference and cost counts.
//!
//! Shapes are logical NCHW (`[n, c, h, w]`) whatever the memory [`Layout`].
//!
//! # Cost conventions
//! * `flops`: every elementary arithmetic op, comparison or transcendental call (exp,
//!   pow, sqrt, tanh) counts as 1; a multiply-add counts as 2. These are the *useful*
//!   operations of the op's definition, not what any particular kernel executes.
//! * `bytes`: the minimal traffic: every input, weight and parameter element read once,
//!   every output element written once, all at `dtype_bytes` per element (per-channel
//!   parameters such as bias are counted at the same width, for simplicity).

use std::fmt;

/// Why op parameters or buffers are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// Parameters are inconsistent, e.g. "conv: c_in 30 not divisible by groups 4".
    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },
    /// A buffer's length does not match the parameters.
    #[error("{op}: {what} has {got} elements, expected {expected}")]
    Length { op: &'static str, what: &'static str, got: usize, expected: usize },
}

pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> OpError {
    OpError::Invalid { op, msg: msg.into() }
}

/// Checks a buffer length against what the parameters require.
pub(crate) fn check_len(op: &'static str, what: &'static str, got: usize, expected: usize) -> Result<(), OpError> {
    if got == expected {
        Ok(())
    } else {
        Err(OpError::Length { op, what, got, expected })
    }
}

fn nonzero(op: &'static str, fields: &[(&str, usize)]) -> Result<(), OpError> {
    for &(name, v) in fields {
        if v == 0 {
            return Err(invalid(op, format!("{name} must be > 0")));
        }
    }
    Ok(())
}

/// Element type of activations/weights on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
}

impl DType {
    /// Bytes per element.
    pub const fn size_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// Lower-case name as used in kernel names and reports ("f32", "f16", "bf16").
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Memory layout of a 4-D activation tensor. Weights are always OIHW unless a function
/// says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    Nchw,
    Nhwc,
}

impl Layout {
    /// Linear offset of logical element `(n, c, h, w)` in a tensor of logical dims
    /// `dims = [N, C, H, W]`.
    #[inline]
    pub const fn offset(self, dims: [usize; 4], n: usize, c: usize, h: usize, w: usize) -> usize {
        let [_, cc, hh, ww] = dims;
        match self {
            Layout::Nchw => ((n * cc + c) * hh + h) * ww + w,
            Layout::Nhwc => ((n * hh + h) * ww + w) * cc + c,
        }
    }

    /// Channel of the element at linear offset `i` in a tensor of logical dims `dims`.
    #[inline]
    pub const fn channel_of(self, dims: [usize; 4], i: usize) -> usize {
        let [_, c, h, w] = dims;
        match self {
            Layout::Nchw => (i / (h * w)) % c,
            Layout::Nhwc => i % c,
        }
    }
}

/// Element count of logical dims.
pub const fn numel(dims: [usize; 4]) -> usize {
    dims[0] * dims[1] * dims[2] * dims[3]
}

/// Activation function, standalone or fused into an epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Act {
    /// Identity.
    #[default]
    None,
    /// max(x, 0).
    Relu,
    /// ONNX Clip: min(max(x, min), max). ReLU6 is `Clip { min: 0, max: 6 }`.
    Clip { min: f32, max: f32 },
    /// 1 / (1 + exp(-x)).
    Sigmoid,
    /// tanh(x).
    Tanh,
}

impl Act {
    /// ReLU6 = Clip(0, 6), as in MobileNet.
    pub const RELU6: Act = Act::Clip { min: 0.0, max: 6.0 };

    /// Applies the activation in f64. NaN propagates (as in PyTorch), so a NaN input is
    /// never hidden by the reference.
    #[inline]
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Act::None => x,
            Act::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Act::Clip { min, max } => {
                if x < min as f64 {
                    min as f64
                } else if x > max as f64 {
                    max as f64
                } else {
                    x
                }
            }
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Tanh => x.tanh(),
        }
    }

    /// FLOPs per element: ReLU 1 (compare), Clip 2, Sigmoid 4 (neg, exp, add, div),
    /// Tanh 1 (one transcendental).
    pub const fn flops_per_elem(self) -> u64 {
        match self {
            Act::None => 0,
            Act::Relu | Act::Tanh => 1,
            Act::Clip { .. } => 2,
            Act::Sigmoid => 4,
        }
    }

    pub fn validate(self) -> Result<(), OpError> {
        if let Act::Clip { min, max } = self {
            if min.is_nan() || max.is_nan() || min > max {
                return Err(invalid("act", format!("clip needs min <= max, got min {min} max {max}")));
            }
        }
        Ok(())
    }
}

/// What a conv's fused epilogue does, in this order (ResNet order):
/// `y = act((acc + bias) * scale + shift + residual)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Epilogue {
    /// Per-output-channel bias added to the accumulator.
    pub bias: bool,
    /// Per-output-channel scale and shift (folded inference batch-norm).
    pub scale_shift: bool,
    pub act: Act,
    /// Elementwise add of a tensor shaped like the output, before the activation.
    pub residual: bool,
}

impl Epilogue {
    pub const NONE: Epilogue = Epilogue { bias: false, scale_shift: false, act: Act::None, residual: false };

    /// FLOPs per output element: bias 1, scale/shift 2 (one multiply-add), residual 1,
    /// plus the activation's [`Act::flops_per_elem`].
    pub const fn flops_per_elem(&self) -> u64 {
        self.bias as u64 + 2 * self.scale_shift as u64 + self.residual as u64 + self.act.flops_per_elem()
    }

    /// Extra elements read: `c_out` per bias/scale/shift vector, plus the residual
    /// tensor (`out_len` elements).
    pub const fn extra_reads(&self, c_out: usize, out_len: usize) -> u64 {
        (self.bias as u64 + 2 * self.scale_shift as u64) * c_out as u64 + self.residual as u64 * out_len as u64
    }
}

/// Output length of a conv/pool window sweep along one axis, floor mode, or `None`
/// when the (dilated) window does not fit the padded input.
const fn window_out_len(
    input: usize,
    k: usize,
    stride: usize,
    pad_begin: usize,
    pad_end: usize,
    dil: usize,
    ceil_mode: bool,
) -> Option<usize> {
    if k == 0 || stride == 0 || dil == 0 {
        return None;
    }
    let eff = dil * (k - 1) + 1;
    let padded = input + pad_begin + pad_end;
    if padded < eff {
        return None;
    }
    let span = padded - eff;
    let mut out = if ceil_mode { span.div_ceil(stride) } else { span / stride } + 1;
    // PyTorch's rule (ONNX matches it since opset 19): the last window must start inside
    // the input or the left padding, never in the right padding alone.
    if ceil_mode && (out - 1) * stride >= input + pad_begin {
        out -= 1;
    }
    Some(out)
}

/// 2-D convolution (ONNX Conv / torch Conv2d), cross-correlation as in both.
/// Weights are OIHW: `[c_out, c_in / groups, kh, kw]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2d {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    /// Padding in elements: top, left, bottom, right (ONNX allows asymmetric pads).
    pub pad_t: usize,
    pub pad_l: usize,
    pub pad_b: usize,
    pub pad_r: usize,
    pub dil_h: usize,
    pub dil_w: usize,
    pub groups: usize,
}

impl Conv2d {
    /// Stride 1, no padding, no dilation, one group.
    pub const fn new(n: usize, c_in: usize, h: usize, w: usize, c_out: usize, kh: usize, kw: usize) -> Self {
        Conv2d {
            n,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride_h: 1,
            stride_w: 1,
            pad_t: 0,
            pad_l: 0,
            pad_b: 0,
            pad_r: 0,
            dil_h: 1,
            dil_w: 1,
            groups: 1,
        }
    }

    /// Depthwise conv: one filter per channel (`groups = c_out = c`).
    pub const fn depthwise(n: usize, c: usize, h: usize, w: usize, kh: usize, kw: usize) -> Self {
        Conv2d::new(n, c, h, w, c, kh, kw).with_groups(c)
    }

    pub const fn with_stride(mut self, stride_h: usize, stride_w: usize) -> Self {
        self.stride_h = stride_h;
        self.stride_w = stride_w;
        self
    }

    /// Symmetric padding: `pad_h` top and bottom, `pad_w` left and right.
    pub const fn with_pad(self, pad_h: usize, pad_w: usize) -> Self {
        self.with_pads(pad_h, pad_w, pad_h, pad_w)
    }

    /// Asymmetric padding (top, left, bottom, right). Note ONNX's `pads` attribute order
    /// is `[top, left, bottom, right]` too.
    pub const fn with_pads(mut self, t: usize, l: usize, b: usize, r: usize) -> Self {
        self.pad_t = t;
        self.pad_l = l;
        self.pad_b = b;
        self.pad_r = r;
        self
    }

    pub const fn with_dilation(mut self, dil_h: usize, dil_w: usize) -> Self {
        self.dil_h = dil_h;
        self.dil_w = dil_w;
        self
    }

    pub const fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    pub fn validate(&self) -> Result<(), OpError> {
        const OP: &str = "conv";
        nonzero(
            OP,
            &[
                ("n", self.n),
                ("c_in", self.c_in),
                ("h", self.h),
                ("w", self.w),
                ("c_out", self.c_out),
                ("kh", self.kh),
                ("kw", self.kw),
                ("stride_h", self.stride_h),
                ("stride_w", self.stride_w),
                ("dil_h", self.dil_h),
                ("dil_w", self.dil_w),
                ("groups", self.groups),
            ],
        )?;
        if !self.c_in.is_multiple_of(self.groups) {
            return Err(invalid(OP, format!("c_in {} not divisible by groups {}", self.c_in, self.groups)));
        }
        if !self.c_out.is_multiple_of(self.groups) {
            return Err(invalid(OP, format!("c_out {} not divisible by groups {}", self.c_out, self.groups)));
        }
        let oh = window_out_len(self.h, self.kh, self.stride_h, self.pad_t, self.pad_b, self.dil_h, false);
        let ow = window_out_len(self.w, self.kw, self.stride_w, self.pad_l, self.pad_r, self.dil_w, false);
        if oh.is_none() || ow.is_none() {
            return Err(invalid(
                OP,
                format!(
                    "dilated kernel {}x{} (dilation {}x{}) larger than padded input {}x{}",
                    self.kh,
                    self.kw,
                    self.dil_h,
                    self.dil_w,
                    self.h + self.pad_t + self.pad_b,
                    self.w + self.pad_l + self.pad_r
                ),
            ));
        }
        Ok(())
    }

    /// Output (height, width): `(in + pad_begin + pad_end - dil*(k-1) - 1) / stride + 1`.
    /// (0, 0) if the parameters are invalid (see [`Conv2d::validate`]).
    pub const fn out_hw(&self) -> (usize, usize) {
        let oh = window_out_len(self.h, self.kh, self.stride_h, self.pad_t, self.pad_b, self.dil_h, false);
        let ow = window_out_len(self.w, self.kw, self.stride_w, self.pad_l, self.pad_r, self.dil_w, false);
        match (oh, ow) {
            (Some(oh), Some(ow)) => (oh, ow),
            _ => (0, 0),
        }
    }

    /// Channels each filter sees.
    pub const fn c_in_per_group(&self) -> usize {
        self.c_in / self.groups
    }

    pub const fn in_dims(&self) -> [usize; 4] {
        [self.n, self.c_in, self.h, self.w]
    }

    pub const fn out_dims(&self) -> [usize; 4] {
        let (oh, ow) = self.out_hw();
        [self.n, self.c_out, oh, ow]
    }

    /// OIHW weight dims `[c_out, c_in / groups, kh, kw]`.
    pub const fn weight_dims(&self) -> [usize; 4] {
        [self.c_out, self.c_in_per_group(), self.kh, self.kw]
    }

    pub const fn in_len(&self) -> usize {
        numel(self.in_dims())
    }

    pub const fn out_len(&self) -> usize {
        numel(self.out_dims())
    }

    pub const fn weight_len(&self) -> usize {
        numel(self.weight_dims())
    }

    /// True for depthwise (one input channel per group, possibly with a channel
    /// multiplier: c_out a multiple of c_in).
    pub const fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.c_in
    }

    /// True for a 1x1, stride 1, unpadded conv (a GEMM).
    pub const fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.pad_t == 0
            && self.pad_l == 0
            && self.pad_b == 0
            && self.pad_r == 0
    }

    /// Multiply-accumulates: `n * c_out * oh * ow * (c_in / groups) * kh * kw`.
    /// Taps falling into padding are counted (as everyone's FLOP tables do).
    pub const fn macs(&self) -> u64 {
        self.out_len() as u64 * (self.c_in_per_group() * self.kh * self.kw) as u64
    }

    /// `2 * macs()`; no epilogue.
    pub const fn flops(&self) -> u64 {
        2 * self.macs()
    }

    /// `flops()` plus the epilogue's per-output-element cost.
    pub const fn flops_with(&self, epi: &Epilogue) -> u64 {
        self.flops() + epi.flops_per_elem() * self.out_len() as u64
    }

    /// Input + weights read once, output written once.
    pub const fn bytes_moved(&self, dtype_bytes: usize) -> u64 {
        ((self.in_len() + self.weight_len() + self.out_len()) * dtype_bytes) as u64
    }

    /// `bytes_moved` plus the epilogue's bias/scale/shift vectors and residual tensor.
    pub const fn bytes_moved_with(&self, epi: &Epilogue, dtype_bytes: usize) -> u64 {
        self.bytes_moved(dtype_bytes) + epi.extra_reads(self.c_out, self.out_len()) * dtype_bytes as u64
    }
}

/// Pooling flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    Max,
    Avg,
    /// Average over the whole H x W plane (ONNX GlobalAveragePool); output is N x C x 1 x 1.
    GlobalAvg,
}

/// 2-D pooling (ONNX MaxPool / AveragePool / GlobalAveragePool, torch max_pool2d /
/// avg_pool2d / adaptive_avg_pool2d(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2d {
    pub kind: PoolKind,
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_t: usize,
    pub pad_l: usize,
    pub pad_b: usize,
    pub pad_r: usize,
    /// Max pooling only; must be 1 for average pooling.
    pub dil_h: usize,
    pub dil_w: usize,
    /// Output size rounds up (see [`Pool2d::out_hw`]).
    pub ceil_mode: bool,
    /// Average pooling only: divide by the window size including padding (true) or by the
    /// number of real input elements in the window (false).
    pub count_include_pad: bool,
}

impl Pool2d {
    const fn base(kind: PoolKind, n: usize, c: usize, h: usize, w: usize, kh: usize, kw: usize) -> Self {
        Pool2d {
            kind,
            n,
            c,
            h,
            w,
            kh,
            kw,
            stride_h: 1,
            stride_w: 1,
            pad_t: 0,
            pad_l: 0,
            pad_b: 0,
            pad_r: 0,
            dil_h: 1,
            dil_w: 1,
            ceil_mode: false,
            count_include_pad: false,
        }
    }

    /// Max pool, stride 1 (ONNX's default; PyTorch defaults stride to the kernel size),
    /// no padding.
    pub const fn max(n: usize, c: usize, h: usize, w: usize, kh: usize, kw: usize) -> Self {
        Pool2d::base(PoolKind::Max, n, c, h, w, kh, kw)
    }

    /// Average pool, stride 1, no padding.
    pub const fn avg(n: usize, c: usize, h: usize, w: usize, kh: usize, kw: usize, count_include_pad: bool) -> Self {
        let mut p = Pool2d::base(PoolKind::Avg, n, c, h, w, kh, kw);
        p.count_include_pad = count_include_pad;
        p
    }

    /// Global average pool: window = whole plane.
    pub const fn global_avg(n: usize, c: usize, h: usize, w: usize) -> Self {
        Pool2d::base(PoolKind::GlobalAvg, n, c, h, w, h, w)
    }

    pub const fn with_stride(mut self, stride_h: usize, stride_w: usize) -> Self {
        self.stride_h = stride_h;
        self.stride_w = stride_w;
        self
    }

    pub const fn with_pad(self, pad_h: usize, pad_w: usize) -> Self {
        self.with_pads(pad_h, pad_w, pad_h, pad_w)
    }

    pub const fn with_pads(mut self, t: usize, l: usize, b: usize, r: usize) -> Self {
        self.pad_t = t;
        self.pad_l = l;
        self.pad_b = b;
        self.pad_r = r;
        self
    }

    pub const fn with_dilation(mut self, dil_h: usize, dil_w: usize) -> Self {
        self.dil_h = dil_h;
        self.dil_w = dil_w;
        self
    }

    pub const fn with_ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }

    pub fn validate(&self) -> Result<(), OpError> {
        const OP: &str = "pool";
        nonzero(
            OP,
            &[
                ("n", self.n),
                ("c", self.c),
                ("h", self.h),
                ("w", self.w),
                ("kh", self.kh),
                ("kw", self.kw),
                ("stride_h", self.stride_h),
                ("stride_w", self.stride_w),
                ("dil_h", self.dil_h),
                ("dil_w", self.dil_w),
            ],
        )?;
        if self.kind == PoolKind::GlobalAvg {
            let p = Pool2d::global_avg(self.n, self.c, self.h, self.w);
            if *self != p {
                return Err(invalid(
                    OP,
                    "global average pool must have window = input plane, stride 1, no padding \
                     (use Pool2d::global_avg)",
                ));
            }
            return Ok(());
        }
        if self.kind == PoolKind::Avg && (self.dil_h != 1 || self.dil_w != 1) {
            return Err(invalid(OP, "dilation is only supported for max pooling"));
        }
        // Keeps every window overlapping the input (PyTorch is stricter: pad <= k/2).
        let (eh, ew) = (self.dil_h * (self.kh - 1) + 1, self.dil_w * (self.kw - 1) + 1);
        if self.pad_t >= eh || self.pad_b >= eh || self.pad_l >= ew || self.pad_r >= ew {
            return Err(invalid(
                OP,
                format!(
                    "pads (t {}, l {}, b {}, r {}) must be smaller than the window {}x{}",
                    self.pad_t, self.pad_l, self.pad_b, self.pad_r, eh, ew
                ),
            ));
        }
        let (oh, ow) = self.out_hw();
        if oh == 0 || ow == 0 {
            return Err(invalid(
                OP,
                format!(
                    "window {}x{} larger than padded input {}x{}",
                    eh,
                    ew,
                    self.h + self.pad_t + self.pad_b,
                    self.w + self.pad_l + self.pad_r
                ),
            ));
        }
        Ok(())
    }

    /// Output (height, width), PyTorch's `pooling_output_shape`:
    /// `out = (in + pad_begin + pad_end - dil*(k-1) - 1 [+ stride-1 if ceil]) / stride + 1`,
    /// then with ceil mode `if (out-1)*stride >= in + pad_begin { out -= 1 }`.
    /// (0, 0) if the window does not fit.
    pub const fn out_hw(&self) -> (usize, usize) {
        let oh = window_out_len(self.h, self.kh, self.stride_h, self.pad_t, self.pad_b, self.dil_h, self.ceil_mode);
        let ow = window_out_len(self.w, self.kw, self.stride_w, self.pad_l, self.pad_r, self.dil_w, self.ceil_mode);
        match (oh, ow) {
            (Some(oh), Some(ow)) => (oh, ow),
            _ => (0, 0),
        }
    }

    pub const fn in_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    pub const fn out_dims(&self) -> [usize; 4] {
        let (oh, ow) = self.out_hw();
        [self.n, self.c, oh, ow]
    }

    pub const fn in_len(&self) -> usize {
        numel(self.in_dims())
    }

    pub const fn out_len(&self) -> usize {
        numel(self.out_dims())
    }

    /// Per output element: `kh*kw` (comparisons for max, additions for average, padding
    /// taps included), plus 1 division for average kinds.
    pub const fn flops(&self) -> u64 {
        let per = (self.kh * self.kw) as u64
            + match self.kind {
                PoolKind::Max => 0,
                PoolKind::Avg | PoolKind::GlobalAvg => 1,
            };
        per * self.out_len() as u64
    }

    pub const fn bytes_moved(&self, dtype_bytes: usize) -> u64 {
        ((self.in_len() + self.out_len()) * dtype_bytes) as u64
    }
}

/// Local response normalisation across channels (ONNX LRN, torch LocalResponseNorm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lrn {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Number of channels summed over.
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

impl Lrn {
    /// ONNX defaults: alpha 1e-4, beta 0.75, bias 1.
    pub const fn new(n: usize, c: usize, h: usize, w: usize, size: usize) -> Self {
        Lrn { n, c, h, w, size, alpha: 1e-4, beta: 0.75, bias: 1.0 }
    }

    pub const fn with_params(mut self, alpha: f32, beta: f32, bias: f32) -> Self {
        self.alpha = alpha;
        self.beta = beta;
        self.bias = bias;
        self
    }

    pub fn validate(&self) -> Result<(), OpError> {
        const OP: &str = "lrn";
        nonzero(OP, &[("n", self.n), ("c", self.c), ("h", self.h), ("w", self.w), ("size", self.size)])?;
        if !(self.alpha.is_finite() && self.beta.is_finite() && self.bias.is_finite()) {
            return Err(invalid(OP, "alpha, beta and bias must be finite"));
        }
        Ok(())
    }

    pub const fn dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    pub const fn len(&self) -> usize {
        numel(self.dims())
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Per element, naive window: `size` squares + `size - 1` adds, then
    /// scale, add bias, pow, divide: `2*size + 3`.
    pub const fn flops(&self) -> u64 {
        (2 * self.size as u64 + 3) * self.len() as u64
    }

    pub const fn bytes_moved(&self, dtype_bytes: usize) -> u64 {
        (2 * self.len() * dtype_bytes) as u64
    }
}

/// Inference batch normalisation (ONNX BatchNormalization, training_mode=0):
/// `y = (x - mean) / sqrt(var + eps) * gamma + beta`, per channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNorm {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub eps: f32,
}

impl BatchNorm {
    /// eps = 1e-5 (ONNX and PyTorch default).
    pub const fn new(n: usize, c: usize, h: usize, w: usize) -> Self {
        BatchNorm { n, c, h, w, eps: 1e-5 }
    }

    pub const fn with_eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    pub fn validate(&self) -> Result<(), OpError> {
        const OP: &str = "batchnorm";
        nonzero(OP, &[("n", self.n), ("c", self.c), ("h", self.h), ("w", self.w)])?;
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(invalid(OP, format!("eps {} must be finite and >= 0", self.eps)));
        }
        Ok(())
    }

    pub const fn dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    pub const fn len(&self) -> usize {
        numel(self.dims())
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// 2 per element: inference BN is one multiply-add once the parameters are folded
    /// into a per-channel scale and shift.
    pub const fn flops(&self) -> u64 {
        2 * self.len() as u64
    }

    /// Input + output + the four per-channel parameter vectors.
    pub const fn bytes_moved(&self, dtype_bytes: usize) -> u64 {
        ((2 * self.len() + 4 * self.c) * dtype_bytes) as u64
    }
}

/// Shape of the C operand of [`Gemm`] (ONNX unidirectional broadcast to M x N).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GemmC {
    /// No C: `Y = alpha * A' * B'`.
    None,
    /// One value for all of Y.
    Scalar,
    /// Shape `[N]` / `[1, N]`: one value per output column (a Linear layer's bias).
    PerColumn,
    /// Shape `[M, 1]`: one value per output row.
    PerRow,
    /// Shape `[M, N]`.
    Full,
}

/// General matrix multiply (ONNX Gemm): `Y = alpha * A' * B' + beta * C`, with
/// `A'` = A (M x K) or Aᵀ (A stored K x M when `trans_a`), `B'` = B (K x N) or Bᵀ
/// (B stored N x K when `trans_b`), all row-major. Y is M x N.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f32,
    pub beta: f32,
    pub c: GemmC,
}

impl Gemm {
    /// `Y = A * B`: no transposes, alpha 1, beta 1, no C.
    pub const fn new(m: usize, n: usize, k: usize) -> Self {
        Gemm { m, n, k, trans_a: false, trans_b: false, alpha: 1.0, beta: 1.0, c: GemmC::None }
    }

    /// Fully connected layer as torchvision's Linear exports to ONNX (Gemm, transB=1):
    /// `y = x * Wᵀ + b` with x `[batch, in_features]`, W `[out_features, in_features]`,
    /// b `[out_features]` (when `bias`).
    pub const fn linear(batch: usize, in_features: usize, out_features: usize, bias: bool) -> Self {
        let mut g = Gemm::new(batch, out_features, in_features).with_trans(false, true);
        g.c = if bias { GemmC::PerColumn } else { GemmC::None };
        g
    }

    pub const fn with_trans(mut self, trans_a: bool, trans_b: bool) -> Self {
        self.trans_a = trans_a;
        self.trans_b = trans_b;
        self
    }

    pub const fn with_scalars(mut self, alpha: f32, beta: f32) -> Self {
        self.alpha = alpha;
        self.beta = beta;
        self
    }

    pub const fn with_c(mut self, c: GemmC) -> Self {
        self.c = c;
        self
    }

    pub fn validate(&self) -> Result<(), OpError> {
        const OP: &str = "gemm";
        nonzero(OP, &[("m", self.m), ("n", self.n), ("k", self.k)])?;
        if !(self.alpha.is_finite() && self.beta.is_finite()) {
            return Err(invalid(OP, "alpha and beta must be finite"));
        }
        Ok(())
    }

    pub const fn a_len(&self) -> usize {
        self.m * self.k
    }

    pub const fn b_len(&self) -> usize {
        self.k * self.n
    }

    /// Elements of C for its broadcast shape (0 without C).
    pub const fn c_len(&self) -> usize {
        match self.c {
            GemmC::None => 0,
            GemmC::Scalar => 1,
            GemmC::PerColumn => self.n,
            GemmC::PerRow => self.m,
            GemmC::Full => self.m * self.n,
        }
    }

    pub const fn out_len(&self) -> usize {
        self.m * self.n
    }

    /// `2*m*n*k`, plus per output element 1 if alpha != 1, and with C 1 add plus
    /// 1 multiply if beta != 1.
    pub fn flops(&self) -> u64 {
        let mn = self.out_len() as u64;
        let mut f = 2 * mn * self.k as u64;
        if self.alpha != 1.0 {
            f += mn;
        }
        if self.c != GemmC::None {
            f += mn * (1 + (self.beta != 1.0) as u64);
        }
        f
    }

    pub const fn bytes_moved(&self, dtype_bytes: usize) -> u64 {
        ((self.a_len() + self.b_len() + self.c_len() + self.out_len()) * dtype_bytes) as u64
    }
}

/// Softmax over one axis (ONNX Softmax, opset >= 13): the tensor is viewed as
/// `[outer, len, inner]` and normalised along `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Softmax {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

impl Softmax {
    /// Softmax over the last axis of an `[rows, cols]` matrix (a classifier's `[N, C]`).
    pub const fn rows(rows: usize, cols: usize) -> Self {
        Softmax { outer: rows, len: cols, inner: 1 }
    }

    /// Softmax over `axis` of a row-major tensor of shape `shape`.
    pub fn over_axis(shape: &[usize], axis: usize) -> Result<Self, OpError> {
        if axis >= shape.len() {
            return Err(invalid("softmax", format!("axis {axis} out of range for rank {}", shape.len())));
        }
        let s = Softmax {
            outer: shape[..axis].iter().product(),
            len: shape[axis],
            inner: shape[axis + 1..].iter().product(),
        };
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), OpError> {
        nonzero("softmax", &[("outer", self.outer), ("len", self.len), ("inner", self.inner)])
    }

    pub const fn total_len(&self) -> usize {
        self.outer * self.len * self.inner
    }

    /// 5 per element: max compare, subtract, exp, sum add, divide.
    pub const fn flops(&self) -> u64 {
        5 * self.total_len() as u64
    }

    pub const fn bytes_moved(&self, dtype_bytes: usize) -> u64 {
        (2 * self.total_len() * dtype_bytes) as u64
    }
}

/// Standalone elementwise activation over `len` elements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activation {
    pub len: usize,
    pub act: Act,
}

impl Activation {
    pub const fn flops(&self) -> u64 {
        self.act.flops_per_elem() * self.len as u64
    }

    pub const fn bytes_moved(&self, dtype_bytes: usize) -> u64 {
        (2 * self.len * dtype_bytes) as u64
    }
}

/// Elementwise `act(a + b)` over `len` elements (ResNet's unfused residual add + ReLU).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Add {
    pub len: usize,
    pub act: Act,
}

impl Add {
    pub const fn flops(&self) -> u64 {
        (1 + self.act.flops_per_elem()) * self.len as u64
    }

    pub const fn bytes_moved(&self, dtype_bytes: usize) -> u64 {
        (3 * self.len * dtype_bytes) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet50_first_conv_shape_and_flops() {
        let p = Conv2d::new(1, 3, 224, 224, 64, 7, 7).with_stride(2, 2).with_pad(3, 3);
        p.validate().unwrap();
        // (224 + 6 - 7) / 2 + 1 = 223/2 + 1 = 111 + 1 = 112.
        assert_eq!(p.out_hw(), (112, 112));
        assert_eq!(p.out_dims(), [1, 64, 112, 112]);
        // 64 * 112 * 112 outputs * (3 * 7 * 7 = 147) taps = 802_816 * 147.
        assert_eq!(p.macs(), 118_013_952);
        assert_eq!(p.flops(), 236_027_904);
        // Epilogue bias + ReLU: +2 per output element (802_816 of them).
        let epi = Epilogue { bias: true, act: Act::Relu, ..Epilogue::NONE };
        assert_eq!(p.flops_with(&epi), 236_027_904 + 2 * 802_816);
        // input 150_528 + weights 9_408 + output 802_816 = 962_752 elements.
        assert_eq!(p.bytes_moved(4), 962_752 * 4);
        assert_eq!(p.bytes_moved_with(&epi, 2), (962_752 + 64) * 2);
    }

    #[test]
    fn conv_validation_messages() {
        let e = Conv2d::new(1, 30, 8, 8, 8, 3, 3).with_groups(4).validate().unwrap_err();
        assert_eq!(e.to_string(), "conv: c_in 30 not divisible by groups 4");
        let e = Conv2d::new(1, 8, 8, 8, 6, 3, 3).with_groups(4).validate().unwrap_err();
        assert_eq!(e.to_string(), "conv: c_out 6 not divisible by groups 4");
        let e = Conv2d::new(1, 8, 8, 8, 6, 3, 3).with_stride(0, 1).validate().unwrap_err();
        assert_eq!(e.to_string(), "conv: stride_h must be > 0");
        // 3x3 dilated by 3 spans 7 > 5.
        let p = Conv2d::new(1, 1, 5, 5, 1, 3, 3).with_dilation(3, 3);
        assert!(p.validate().is_err());
        assert_eq!(p.out_hw(), (0, 0));
        // Padding makes it fit: 5 + 2 = 7 -> one output.
        let p = p.with_pad(1, 1);
        p.validate().unwrap();
        assert_eq!(p.out_hw(), (1, 1));
    }

    #[test]
    fn conv_out_hw_asymmetric_and_grouped() {
        // h: (10 + 0 + 1 - 3)/2 + 1 = 5; w: (7 + 2 + 0 - 3)/1 + 1 = 7.
        let p = Conv2d::new(2, 4, 10, 7, 6, 3, 3).with_stride(2, 1).with_pads(0, 2, 1, 0).with_groups(2);
        p.validate().unwrap();
        assert_eq!(p.out_hw(), (5, 7));
        assert_eq!(p.weight_dims(), [6, 2, 3, 3]);
        // 2*6*5*7 outputs * 2*3*3 taps.
        assert_eq!(p.macs(), 420 * 18);
        assert!(Conv2d::depthwise(1, 32, 8, 8, 3, 3).is_depthwise());
        assert!(Conv2d::new(1, 32, 8, 8, 16, 1, 1).is_pointwise());
    }

    #[test]
    fn pool_ceil_mode_matches_pytorch_formula() {
        let os = |input, k, s, pad, ceil| {
            Pool2d::max(1, 1, input, input, k, k).with_stride(s, s).with_pad(pad, pad).with_ceil_mode(ceil).out_hw().0
        };
        // in=6,k=3,s=2,p=0: floor((6-3)/2)+1 = 2; ceil(3/2)+1 = 3 and (3-1)*2=4 < 6 keeps 3.
        assert_eq!(os(6, 3, 2, 0, false), 2);
        assert_eq!(os(6, 3, 2, 0, true), 3);
        // in=5,k=2,s=2,p=1: ceil((5+2-2)/2)+1 = 4, but (4-1)*2 = 6 >= 5+1 -> 3 (the 4th
        // window would start in the right padding). Floor: 5/2+1 = 3.
        assert_eq!(os(5, 2, 2, 1, true), 3);
        assert_eq!(os(5, 2, 2, 1, false), 3);
        // ResNet stem max pool: in=112,k=3,s=2,p=1: floor 111/2+1 = 56; ceil would give
        // ceil(111/2)+1 = 57, kept since (57-1)*2 = 112 < 112+1.
        assert_eq!(os(112, 3, 2, 1, false), 56);
        assert_eq!(os(112, 3, 2, 1, true), 57);
        // GoogLeNet-style ceil pool: in=112,k=3,s=2,p=0: floor 55, ceil 56.
        assert_eq!(os(112, 3, 2, 0, false), 55);
        assert_eq!(os(112, 3, 2, 0, true), 56);
        // in=4,k=3,s=2,p=1: ceil((4+2-3)/2)+1 = 3; (3-1)*2 = 4 < 4+1 keeps 3.
        assert_eq!(os(4, 3, 2, 1, true), 3);
        assert_eq!(os(4, 3, 2, 1, false), 2);
    }

    #[test]
    fn pool_validation() {
        let e = Pool2d::avg(1, 1, 4, 4, 2, 2, true).with_dilation(2, 2).validate().unwrap_err();
        assert_eq!(e.to_string(), "pool: dilation is only supported for max pooling");
        assert!(Pool2d::max(1, 1, 4, 4, 2, 2).with_pad(2, 0).validate().is_err());
        let g = Pool2d::global_avg(2, 3, 7, 7);
        g.validate().unwrap();
        assert_eq!(g.out_dims(), [2, 3, 1, 1]);
        assert!(g.with_stride(2, 2).validate().is_err());
        // 2*3 outputs * (49 adds + 1 divide).
        assert_eq!(g.flops(), 6 * 50);
    }

    #[test]
    fn other_costs() {
        let g = Gemm::linear(1, 2048, 1000, true);
        g.validate().unwrap();
        assert_eq!((g.m, g.n, g.k, g.trans_b), (1, 1000, 2048, true));
        assert_eq!(g.flops(), 2 * 1000 * 2048 + 1000);
        assert_eq!(g.bytes_moved(4), (2048 + 2048 * 1000 + 1000 + 1000) * 4);
        let s = Softmax::over_axis(&[2, 3, 4], 1).unwrap();
        assert_eq!(s, Softmax { outer: 2, len: 3, inner: 4 });
        assert!(Softmax::over_axis(&[2, 3], 2).is_err());
        assert_eq!(Lrn::new(1, 64, 2, 2, 5).flops(), 13 * 256);
        assert_eq!(BatchNorm::new(1, 2, 3, 3).bytes_moved(2), (36 + 8) * 2);
        assert!(Act::Clip { min: 1.0, max: 0.0 }.validate().is_err());
        assert_eq!(Act::RELU6.apply(7.0), 6.0);
        assert!(Act::Relu.apply(f64::NAN).is_nan());
        assert_eq!(DType::BF16.size_bytes(), 2);
        assert_eq!(DType::F32.to_string(), "f32");
    }

    #[test]
    fn layout_offsets() {
        let d = [2, 3, 4, 5];
        // NCHW: ((1*3+2)*4+3)*5+4 = 119 = last; NHWC: ((1*4+3)*5+4)*3+2 = 119.
        assert_eq!(Layout::Nchw.offset(d, 1, 2, 3, 4), 119);
        assert_eq!(Layout::Nhwc.offset(d, 1, 2, 3, 4), 119);
        // (n0,c1,h0,w0): NCHW 20, NHWC 1.
        assert_eq!(Layout::Nchw.offset(d, 0, 1, 0, 0), 20);
        assert_eq!(Layout::Nhwc.offset(d, 0, 1, 0, 0), 1);
        assert_eq!(Layout::Nchw.channel_of(d, 20), 1);
        assert_eq!(Layout::Nhwc.channel_of(d, 1), 1);
    }
}
