// Kernel parameter blocks: the ABI between host and device.
//
// This one file is compiled twice: as `cnnergy_kernels::params` for the GPU and, through
// `include!`, as `cnnergy_host::params` on the host, so the two sides cannot drift. It
// therefore holds plain `#[repr(C)]` structs of primitive fields only (no derives, no
// impls: the device crate has no `core`); each side adds its own trait impls. Kernels take
// a block by value as their first parameter, followed by the tensor pointers. Sizes and
// field offsets are checked on the host (unit test) and against the `.param` sizes in the
// PTX (tests/ptx_check.rs). All counts are u32: every tensor has fewer than 2^31 elements
// (the host checks before launching). Padding fields keep every block a multiple of 8 bytes.

/// Activation applied by an epilogue or the standalone activation kernel.
pub const ACT_NONE: u32 = 0;
/// max(x, 0)
pub const ACT_RELU: u32 = 1;
/// min(max(x, act_min), act_max): ReLU6 and ONNX Clip.
pub const ACT_CLIP: u32 = 2;
/// 1 / (1 + exp(-x))
pub const ACT_SIGMOID: u32 = 3;
/// tanh(x)
pub const ACT_TANH: u32 = 4;

/// Epilogue flag: add `bias[c]`.
pub const EPI_BIAS: u32 = 1;
/// Epilogue flag: `y = y * scale[c] + shift[c]` (folded batch normalisation).
pub const EPI_SCALE_SHIFT: u32 = 2;
/// Epilogue flag: add `residual` (same shape and layout as the output), before the activation.
pub const EPI_RESIDUAL: u32 = 4;

/// 2-D convolution (also depthwise and grouped), with a fused epilogue:
/// `y = act((conv(x, w) + bias) * scale + shift + residual)` with each term optional.
///
/// Logical shapes: x `[n, c_in, h, w]`, w `[c_out, c_in / groups, kh, kw]`,
/// y `[n, c_out, out_h, out_w]`; the physical layout is the kernel's (NCHW or NHWC, with
/// weights OIHW for NCHW kernels and OHWI for NHWC kernels). Only the top/left padding
/// enters the index arithmetic; bottom/right padding is already in `out_h`/`out_w`.
/// Kernel arguments after the block: `x, w, bias, scale, shift, residual, y`
/// (absent operands may be null; `epilogue` says which are read).
#[repr(C)]
pub struct ConvParams {
    pub n: u32,
    pub c_in: u32,
    pub h: u32,
    pub w: u32,
    pub c_out: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kh: u32,
    pub kw: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_h: u32,
    pub pad_w: u32,
    pub dil_h: u32,
    pub dil_w: u32,
    pub groups: u32,
    /// `EPI_*` flags.
    pub epilogue: u32,
    /// `ACT_*`.
    pub act: u32,
    pub act_min: f32,
    pub act_max: f32,
}

/// GEMM / fully connected: `c[m, n] = act(alpha * op(a) · op(b) + beta * c + bias[n])`,
/// row-major with leading dimensions; `op(a)` is `[m, k]` (`a` stored `[k, m]` when
/// `trans_a`), `op(b)` is `[k, n]` (`b` stored `[n, k]` when `trans_b`, as a Linear
/// layer's weight). Kernel arguments after the block: `a, b, bias, c` (`bias` may be null
/// unless `epilogue & EPI_BIAS`).
#[repr(C)]
pub struct GemmParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub lda: u32,
    pub ldb: u32,
    pub ldc: u32,
    pub trans_a: u32,
    pub trans_b: u32,
    pub alpha: f32,
    pub beta: f32,
    pub epilogue: u32,
    pub act: u32,
    pub act_min: f32,
    pub act_max: f32,
}

/// Pooling kind: maximum over the window (padding never wins).
pub const POOL_MAX: u32 = 0;
/// Pooling kind: average over the window.
pub const POOL_AVG: u32 = 1;

/// 2-D max/average pooling; global average pooling is `kh = h, kw = w`.
/// Average divisor: with `count_include_pad`, the window clipped to the padded input
/// (`[-pad_h, h + pad_b)`), as PyTorch and ONNX; without, the count of real input
/// elements in the window. Kernel arguments after the block: `x, y`.
#[repr(C)]
pub struct PoolParams {
    pub n: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kh: u32,
    pub kw: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_h: u32,
    pub pad_w: u32,
    pub pad_b: u32,
    pub pad_r: u32,
    pub dil_h: u32,
    pub dil_w: u32,
    /// `POOL_*`.
    pub kind: u32,
    pub count_include_pad: u32,
}

/// Elementwise over `len` elements: `y = act(a + b)` when `b` is non-null, else `y = act(a)`.
/// Covers ReLU, Clip, sigmoid, tanh and residual adds. Kernel arguments: `a, b, y`.
#[repr(C)]
pub struct EltwiseParams {
    pub len: u32,
    pub act: u32,
    pub act_min: f32,
    pub act_max: f32,
}

/// Per-channel affine on NCHW: `y = x * scale[c] + shift[c]` then `act` (inference batch
/// normalisation, with scale and shift folded on the host). Kernel arguments: `x, scale, shift, y`.
#[repr(C)]
pub struct ChannelAffineParams {
    pub n: u32,
    pub c: u32,
    /// h * w
    pub hw: u32,
    pub act: u32,
    pub act_min: f32,
    pub act_max: f32,
}

/// Local response normalisation across channels (ONNX LRN) on NCHW:
/// `y = x / (bias + alpha / size * sum(x[c']^2))^beta` over
/// `c' in [c - (size - 1) / 2, c + size / 2]`. Kernel arguments: `x, y`.
#[repr(C)]
pub struct LrnParams {
    pub n: u32,
    pub c: u32,
    pub hw: u32,
    pub size: u32,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
    pub _pad: u32,
}

/// Softmax over the last axis of `[rows, cols]`, numerically stable (max subtracted).
/// Kernel arguments: `x, y`.
#[repr(C)]
pub struct SoftmaxParams {
    pub rows: u32,
    pub cols: u32,
}

/// Copies an NCHW tensor `[n, c, hw]` into channels `[c_offset, c_offset + c)` of an
/// NCHW tensor with `c_total` channels (channel concatenation). Kernel arguments: `x, y`.
#[repr(C)]
pub struct ConcatParams {
    pub n: u32,
    pub c: u32,
    pub hw: u32,
    pub c_total: u32,
    pub c_offset: u32,
    pub _pad: u32,
}

/// Layout conversion NCHW <-> NHWC and precision conversion f32 <-> f16/bf16, over a
/// logical `[n, c, hw]` tensor. Kernel arguments: `x, y`.
#[repr(C)]
pub struct ConvertParams {
    pub n: u32,
    pub c: u32,
    pub hw: u32,
    pub _pad: u32,
}
