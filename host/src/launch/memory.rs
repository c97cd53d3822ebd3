//! Launchers for the memory-bound layer kernels: pooling, activations and the
//! elementwise add, the per-channel affine of inference batch-norm, LRN, softmax,
//! channel concatenation, and layout/precision conversion.
//!
//! Every launcher validates the op, checks each buffer's length (at least what the op
//! touches) and 16-byte alignment (the kernels use 16-byte vector accesses; buffers from
//! `cudaMalloc` always qualify, sub-views may not), checks that counts fit the kernels'
//! `u32` index arithmetic (< 2^31), computes the launch configuration, and enqueues on
//! `gpu.stream`. 16-bit tensors are `u16` buffers holding the raw f16/bf16 bits.
//!
//! Grids: the streaming kernels are grid-stride loops launched with enough 256-thread
//! blocks for one step per thread (four 16-byte vectors each); the pooling kernels,
//! which set up division constants per thread, get at most [`WAVE_BLOCKS_PER_SM`] blocks
//! per SM and loop; LRN, softmax, concat and the transposes use 2-D/3-D grids over their
//! natural tiles. No kernel relies on a particular grid size for correctness.

use cudarc::driver::{DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg, SyncOnDrop};

use crate::error::{driver_msg, Error, Result};
use crate::gpu::Gpu;
use crate::ops::{Act, Activation, Add, BatchNorm, DType, Layout, Lrn, Pool2d, PoolKind, Softmax};
use crate::params::*;
use crate::registry::{self, KernelSpec, LayerType};

/// Threads per block of the 1-D streaming kernels.
pub const BLOCK: u32 = 256;
/// Resident 256-thread blocks per SM (a full-occupancy wave on sm_80/sm_90): the target
/// grid of the LRN and softmax launches.
pub const BLOCKS_PER_SM: u32 = 8;
/// Blocks per SM of the grid-stride pooling kernels (see `grid_1d_wave`).
pub const WAVE_BLOCKS_PER_SM: u32 = 16;
/// 16-byte vectors each thread moves per grid-stride step in the streaming kernels.
const UNROLL: u64 = 4;

macro_rules! spec {
    ($sym:literal, $layer:ident, $variant:literal, $dtype:ident, $layout:ident, $rule:literal) => {
        KernelSpec {
            symbol: $sym,
            layer: LayerType::$layer,
            variant: $variant,
            dtype: DType::$dtype,
            layout: Layout::$layout,
            launch_rule: $rule,
        }
    };
}

/// This family's kernels. Layout-agnostic kernels (activations, add, precision
/// conversion, softmax) are registered under `Nchw`; for `Convert` kernels `dtype` and
/// `layout` describe the *output* and the variant names the conversion.
pub const KERNELS: &[KernelSpec] = &[
    spec!(
        "pool_max_f32_nchw",
        Pool,
        "max",
        F32,
        Nchw,
        "256 threads/block, one output per thread, grid-stride, blocks = min(outputs/256, 16 * SMs)"
    ),
    spec!(
        "pool_avg_f32_nchw",
        Pool,
        "avg",
        F32,
        Nchw,
        "256 threads/block, one output per thread, grid-stride, blocks = min(outputs/256, 16 * SMs)"
    ),
    spec!(
        "pool_max_strip_f32_nchw",
        Pool,
        "max_strip",
        F32,
        Nchw,
        "max, k = 3 (stride_h 1 or 2) or k = 2 (stride_h 2), no dilation: 256 threads/block, one (plane, strip of \
           4 output rows, column) per thread, row maxima reused between overlapping windows, grid-stride, \
           blocks = min(items/256, 16 * SMs); the default for those windows"
    ),
    spec!(
        "pool_max_strip_f16_nhwc",
        Pool,
        "max_strip",
        F16,
        Nhwc,
        "as pool_max_strip_f32_nchw, one (image, strip of 2 output rows, column, 8 channels) per thread, \
           max.NaN.f16x2; c % 8 == 0"
    ),
    spec!(
        "pool_global_avg_f32_nchw",
        Pool,
        "global_avg",
        F32,
        Nchw,
        "h*w <= 64: 128 threads/block own 128 planes (staged in shared memory), blocks = planes/128; \
           larger planes: 256 threads/block, one warp per 8 planes, blocks = planes/64"
    ),
    spec!(
        "pool_max_f16_nhwc",
        Pool,
        "max",
        F16,
        Nhwc,
        "256 threads/block, one (pixel, 8 channels) per thread, grid-stride, blocks <= 16 * SMs; c % 8 == 0"
    ),
    spec!(
        "pool_avg_f16_nhwc",
        Pool,
        "avg",
        F16,
        Nhwc,
        "256 threads/block, one (pixel, 8 channels) per thread, grid-stride, blocks <= 16 * SMs; c % 8 == 0"
    ),
    spec!(
        "pool_global_avg_f16_nhwc",
        Pool,
        "global_avg",
        F16,
        Nhwc,
        "block (32 items, rows = clamp(ceil(h*w/4), 1, 16) pixel rows), grid (ceil(items/32), min(n, 65535)); \
           item = 8 channels (16 B) when c % 8 == 0, else 1 channel; rows meet in shared memory"
    ),
    spec!("pool_global_avg_bf16_nhwc", Pool, "global_avg", BF16, Nhwc, "as pool_global_avg_f16_nhwc"),
    spec!(
        "pool_global_avg_f32_nhwc",
        Pool,
        "global_avg",
        F32,
        Nhwc,
        "as pool_global_avg_f16_nhwc, item = 4 channels (16 B) when c % 4 == 0"
    ),
    spec!(
        "eltwise_act_f32",
        Activation,
        "act",
        F32,
        Nchw,
        "256 threads/block, 4 16-byte vectors per thread, blocks = ceil(vectors / 1024) (grid-stride); any layout"
    ),
    spec!("eltwise_act_f16", Activation, "act", F16, Nchw, "as eltwise_act_f32, 8 halves per vector; any layout"),
    spec!("eltwise_act_bf16", Activation, "act", BF16, Nchw, "as eltwise_act_f32, 8 halves per vector; any layout"),
    spec!("eltwise_add_f32", Add, "add", F32, Nchw, "as eltwise_act_f32; any layout"),
    spec!("eltwise_add_f16", Add, "add", F16, Nchw, "as eltwise_act_f16; any layout"),
    spec!("eltwise_add_bf16", Add, "add", BF16, Nchw, "as eltwise_act_f16; any layout"),
    spec!(
        "channel_affine_f32_nchw",
        Norm,
        "batchnorm",
        F32,
        Nchw,
        "as eltwise_act_f32 (flat over the tensor, channel by mul.hi division)"
    ),
    spec!(
        "channel_affine_f32_nchw_planes",
        Norm,
        "batchnorm_planes",
        F32,
        Nchw,
        "tiles = (plane, chunk of 4*block vectors), block = clamp(pow2(ceil(hw/16)), 32, 256) threads, \
           blocks = min(tiles, 32 * SMs * 256/block / 8) grid-striding; channel uniform per tile, head/body/tail vectors"
    ),
    spec!(
        "lrn_f32_nchw",
        Norm,
        "lrn",
        F32,
        Nchw,
        "32x8 threads/block, 128 positions per block, grid (ceil(hw/128), min(n, 65535), channel groups \
           to reach 8 blocks per SM); rows of a block walk the group's channels"
    ),
    spec!(
        "softmax_f32",
        Softmax,
        "softmax",
        F32,
        Nchw,
        "rows of <= 512 elements: (bx <= 32 lanes per row, 256/bx rows) per block; longer rows: \
           one block of 64..1024 threads per row; <= 4 vectors per thread; grid-stride over rows"
    ),
    spec!(
        "concat_channels_f32_nchw",
        Concat,
        "channels",
        F32,
        Nchw,
        "256 threads/block, 4 items per thread, grid (ceil(run / 1024), min(n, 65535) images)"
    ),
    spec!(
        "convert_nchw_to_nhwc_f32",
        Convert,
        "nchw_to_nhwc",
        F32,
        Nhwc,
        "c > 8: 32x8 threads/block, two 32x32 shared tiles, grid (ceil(hw/64), ceil(c/32), min(n, 65535))"
    ),
    spec!(
        "convert_nchw_to_nhwc_f16",
        Convert,
        "nchw_to_nhwc",
        F16,
        Nhwc,
        "c > 8: 32x8 threads/block, 64x64 shared tile of 16-bit pairs, grid (ceil(hw/64), ceil(c/64), min(n, 65535))"
    ),
    spec!("convert_nchw_to_nhwc_bf16", Convert, "nchw_to_nhwc", BF16, Nhwc, "as convert_nchw_to_nhwc_f16"),
    spec!(
        "convert_nhwc_to_nchw_f32",
        Convert,
        "nhwc_to_nchw",
        F32,
        Nchw,
        "c > 8: 32x8 threads/block, two 32x32 shared tiles, grid (ceil(c/64), ceil(hw/32), min(n, 65535))"
    ),
    spec!(
        "convert_nhwc_to_nchw_f16",
        Convert,
        "nhwc_to_nchw",
        F16,
        Nchw,
        "c > 8: 32x8 threads/block, 64x64 shared tile of 16-bit pairs, grid (ceil(c/64), ceil(hw/64), min(n, 65535))"
    ),
    spec!("convert_nhwc_to_nchw_bf16", Convert, "nhwc_to_nchw", BF16, Nchw, "as convert_nhwc_to_nchw_f16"),
    spec!("convert_nchw_f32_to_nhwc_f16", Convert, "nchw_f32_to_nhwc", F16, Nhwc, "as convert_nchw_to_nhwc_f16"),
    spec!("convert_nchw_f32_to_nhwc_bf16", Convert, "nchw_f32_to_nhwc", BF16, Nhwc, "as convert_nchw_to_nhwc_f16"),
    spec!(
        "convert_nchw_to_nhwc_small_c_f32",
        Convert,
        "nchw_to_nhwc_small_c",
        F32,
        Nhwc,
        "c <= 8: 256 threads/block own 256 pixels staged in shared memory, grid (ceil(hw/256), min(n, 65535))"
    ),
    spec!(
        "convert_nchw_to_nhwc_small_c_f16",
        Convert,
        "nchw_to_nhwc_small_c",
        F16,
        Nhwc,
        "as convert_nchw_to_nhwc_small_c_f32"
    ),
    spec!(
        "convert_nchw_to_nhwc_small_c_bf16",
        Convert,
        "nchw_to_nhwc_small_c",
        BF16,
        Nhwc,
        "as convert_nchw_to_nhwc_small_c_f32"
    ),
    spec!(
        "convert_nhwc_to_nchw_small_c_f32",
        Convert,
        "nhwc_to_nchw_small_c",
        F32,
        Nchw,
        "as convert_nchw_to_nhwc_small_c_f32"
    ),
    spec!(
        "convert_nhwc_to_nchw_small_c_f16",
        Convert,
        "nhwc_to_nchw_small_c",
        F16,
        Nchw,
        "as convert_nchw_to_nhwc_small_c_f32"
    ),
    spec!(
        "convert_nhwc_to_nchw_small_c_bf16",
        Convert,
        "nhwc_to_nchw_small_c",
        BF16,
        Nchw,
        "as convert_nchw_to_nhwc_small_c_f32"
    ),
    spec!(
        "convert_nchw_f32_to_nhwc_small_c_f16",
        Convert,
        "nchw_f32_to_nhwc_small_c",
        F16,
        Nhwc,
        "as convert_nchw_to_nhwc_small_c_f32"
    ),
    spec!(
        "convert_nchw_f32_to_nhwc_small_c_bf16",
        Convert,
        "nchw_f32_to_nhwc_small_c",
        BF16,
        Nhwc,
        "as convert_nchw_to_nhwc_small_c_f32"
    ),
    spec!(
        "convert_nchw_f32_to_nhwc_pix8_f16",
        Convert,
        "nchw_f32_to_nhwc_pix8",
        F16,
        Nhwc,
        "c <= 8 and hw % 8 == 0: 256 threads/block, 8 pixels per thread (2c 16-byte loads, c 16-byte stores), \
           blocks = ceil(n*hw/8 / 256) (grid-stride)"
    ),
    spec!(
        "convert_nchw_f32_to_nhwc_pix8_bf16",
        Convert,
        "nchw_f32_to_nhwc_pix8",
        BF16,
        Nhwc,
        "as convert_nchw_f32_to_nhwc_pix8_f16"
    ),
    spec!(
        "convert_nchw_f32_to_nhwc_pad8_f16",
        Convert,
        "nchw_f32_to_nhwc_pad8",
        F16,
        Nhwc,
        "c <= 8, output [n, h, w, 8] with channels c..8 zero: 256 threads/block, one pixel per thread (c 4-byte \
           loads, one 16-byte store), blocks = ceil(n*hw / 256) (grid-stride)"
    ),
    spec!(
        "convert_nchw_f32_to_nhwc_pad8_bf16",
        Convert,
        "nchw_f32_to_nhwc_pad8",
        BF16,
        Nhwc,
        "as convert_nchw_f32_to_nhwc_pad8_f16"
    ),
    spec!(
        "convert_f32_to_f16",
        Convert,
        "f32_to_f16",
        F16,
        Nchw,
        "256 threads/block, 4 groups of 8 elements per thread, blocks = ceil(len / 8192) (grid-stride); any layout"
    ),
    spec!("convert_f32_to_bf16", Convert, "f32_to_bf16", BF16, Nchw, "as convert_f32_to_f16; any layout"),
    spec!(
        "convert_f16_to_f32",
        Convert,
        "f16_to_f32",
        F32,
        Nchw,
        "256 threads/block, 8 groups of 4 elements per thread, blocks = ceil(len / 8192) (grid-stride); any layout"
    ),
    spec!("convert_bf16_to_f32", Convert, "bf16_to_f32", F32, Nchw, "as convert_f16_to_f32; any layout"),
];

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn op_err(e: crate::ops::OpError) -> Error {
    Error::Invalid(e.to_string())
}

/// Everything the kernels index must stay below 2^31 elements.
fn check_count(what: &str, n: usize) -> Result<u32> {
    if n >= 1 << 31 {
        return Err(invalid(format!("{what}: {n} elements exceed the kernels' limit of 2^31 - 1")));
    }
    Ok(n as u32)
}

fn check_buf(what: &str, len: usize, need: usize, ptr: u64) -> Result<()> {
    if len < need {
        return Err(invalid(format!("{what} holds {len} elements, the op needs {need}")));
    }
    if !ptr.is_multiple_of(16) {
        return Err(invalid(format!("{what} at {ptr:#x} is not 16-byte aligned")));
    }
    Ok(())
}

/// A read operand's device address, checked; keep the guard alive until after the launch.
fn input<'a, T>(gpu: &'a Gpu, what: &str, s: &'a impl DevicePtr<T>, need: usize) -> Result<(u64, SyncOnDrop<'a>)> {
    let (p, g) = s.device_ptr(&gpu.stream);
    check_buf(what, s.len(), need, p)?;
    Ok((p, g))
}

/// A written operand's device address, checked.
fn output<'a, T>(
    gpu: &'a Gpu,
    what: &str,
    s: &'a mut impl DevicePtrMut<T>,
    need: usize,
) -> Result<(u64, SyncOnDrop<'a>)> {
    let len = s.len();
    let (p, g) = s.device_ptr_mut(&gpu.stream);
    check_buf(what, len, need, p)?;
    Ok((p, g))
}

/// 1-D grid for `threads` threads at 256 per block, capped at [`WAVE_BLOCKS_PER_SM`]
/// blocks per SM: for the grid-stride pooling kernels, whose per-thread set-up (the
/// `FastDiv` multipliers) is worth amortising over several outputs. (Measured on an H200:
/// ResNet's 3x3/2 max pool at 8 × 112² × 64 ran 46% of copy bandwidth with one output per
/// thread, 64% capped at 8 or 16 blocks per SM.)
fn grid_1d_wave(gpu: &Gpu, threads: u64) -> u32 {
    let want = threads.div_ceil(BLOCK as u64).max(1);
    want.min((gpu.info.sm_count.max(1) * WAVE_BLOCKS_PER_SM) as u64) as u32
}

/// 1-D grid for `threads` threads of work at 256 per block, uncapped: the streaming
/// kernels ran 3-7% faster (H200) with one grid-stride step per thread than with the grid
/// capped at a full wave, where the last partial wave leaves SMs idle.
fn grid_1d(threads: u64) -> u32 {
    threads.div_ceil(BLOCK as u64).clamp(1, (1 << 31) - 1) as u32
}

fn cfg_1d(blocks: u32) -> LaunchConfig {
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

/// Enqueues `symbol` with the parameter block and device pointers.
fn launch<P: cudarc::driver::DeviceRepr>(
    gpu: &Gpu,
    symbol: &str,
    cfg: LaunchConfig,
    params: &P,
    ptrs: &[u64],
) -> Result<()> {
    let f = registry::function(&gpu.module, symbol)?;
    let mut b = gpu.stream.launch_builder(&f);
    b.arg(params);
    for p in ptrs {
        b.arg(p);
    }
    // SAFETY: every kernel of this family takes its parameter block by value followed by
    // 64-bit device pointers, in the order the callers pass them; the callers checked the
    // buffers' lengths and alignment against the op and the kernel's documented
    // preconditions.
    unsafe { b.launch(cfg) }
        .map(|_| ())
        .map_err(|e| Error::Driver { context: "launching a kernel", msg: format!("{symbol}: {}", driver_msg(&e)) })
}

/// Enqueues `spin_ns` (one thread spinning `ns` nanoseconds on the global timer): a
/// timing gate. Enqueued before a timed region's start event, it keeps the GPU busy while
/// the host records the event and enqueues the timed launch, so event timings of one
/// launch exclude the host's enqueue latency.
pub fn spin(gpu: &Gpu, ns: u64) -> Result<()> {
    let f = registry::function(&gpu.module, "spin_ns")?;
    let mut b = gpu.stream.launch_builder(&f);
    b.arg(&ns);
    let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1, 1, 1), shared_mem_bytes: 0 };
    // SAFETY: `spin_ns(ns: u64)` takes one u64 and touches no memory.
    unsafe { b.launch(cfg) }
        .map(|_| ())
        .map_err(|e| Error::Driver { context: "launching a kernel", msg: format!("spin_ns: {}", driver_msg(&e)) })
}

fn half_suffix(dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F16 => Ok("f16"),
        DType::BF16 => Ok("bf16"),
        DType::F32 => Err(invalid("a 16-bit kernel was asked for f32 data")),
    }
}

// ---------------------------------------------------------------------------------------
// Pooling

/// The kernel parameter block for `p` (NCHW or NHWC alike).
pub fn pool_params(p: &Pool2d) -> Result<PoolParams> {
    p.validate().map_err(op_err)?;
    check_count("pool input", p.in_len())?;
    check_count("pool output", p.out_len())?;
    let (oh, ow) = p.out_hw();
    Ok(PoolParams {
        n: p.n as u32,
        c: p.c as u32,
        h: p.h as u32,
        w: p.w as u32,
        out_h: oh as u32,
        out_w: ow as u32,
        kh: p.kh as u32,
        kw: p.kw as u32,
        stride_h: p.stride_h as u32,
        stride_w: p.stride_w as u32,
        pad_h: p.pad_t as u32,
        pad_w: p.pad_l as u32,
        pad_b: p.pad_b as u32,
        pad_r: p.pad_r as u32,
        dil_h: p.dil_h as u32,
        dil_w: p.dil_w as u32,
        kind: if p.kind == PoolKind::Max { POOL_MAX } else { POOL_AVG },
        count_include_pad: p.count_include_pad as u32,
    })
}

/// Whether the max-pool strip kernels (`pool_max_strip_*`) take `p`: max pooling with a
/// square 3x3 window at vertical stride 1 or 2, or 2x2 at stride 2, without dilation (any
/// horizontal stride, padding, ceil mode) — ResNet's and GoogLeNet's 3x3 and VGG's 2x2.
pub fn max_strip_applies(p: &Pool2d) -> bool {
    p.kind == PoolKind::Max
        && p.kh == p.kw
        && matches!((p.kh, p.stride_h), (3, 1) | (3, 2) | (2, 2))
        && p.dil_h == 1
        && p.dil_w == 1
}

/// Output rows per thread of `pool_max_strip_f32_nchw` (kernels::pool::STRIP_ROWS_F32).
pub const STRIP_ROWS_F32: usize = 4;
/// Output rows per thread of `pool_max_strip_f16_nhwc` (kernels::pool::STRIP_ROWS_F16).
pub const STRIP_ROWS_F16: usize = 2;

/// Threads of a strip kernel: one per (image or plane, strip of `rows` output rows,
/// output column, channel group).
fn strip_threads(p: &Pool2d, rows: usize, nhwc: bool) -> u64 {
    let (oh, ow) = p.out_hw();
    let items = if nhwc { p.n * (p.c / 8) } else { p.n * p.c };
    (items * oh.div_ceil(rows) * ow) as u64
}

/// Max, average or global-average pooling on NCHW f32 (`y` has `p.out_len()` elements;
/// ceil mode is already in `p.out_hw()`). Max pools that [`max_strip_applies`] to run
/// `pool_max_strip_f32_nchw`, the others the windowed kernels ([`pool2d_f32_windowed`]).
pub fn pool2d_f32(gpu: &Gpu, p: &Pool2d, x: &impl DevicePtr<f32>, y: &mut impl DevicePtrMut<f32>) -> Result<()> {
    if !max_strip_applies(p) {
        return pool2d_f32_windowed(gpu, p, x, y);
    }
    let params = pool_params(p)?;
    let (xp, _gx) = input(gpu, "pool input", x, p.in_len())?;
    let (yp, _gy) = output(gpu, "pool output", y, p.out_len())?;
    let cfg = cfg_1d(grid_1d_wave(gpu, strip_threads(p, STRIP_ROWS_F32, false)));
    launch(gpu, "pool_max_strip_f32_nchw", cfg, &params, &[xp, yp])
}

/// [`pool2d_f32`] on the one-output-per-thread kernels (`pool_{max,avg,global_avg}_f32_nchw`)
/// whatever the window: the fallback, kept selectable for comparison.
pub fn pool2d_f32_windowed(
    gpu: &Gpu,
    p: &Pool2d,
    x: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<f32>,
) -> Result<()> {
    let params = pool_params(p)?;
    let (xp, _gx) = input(gpu, "pool input", x, p.in_len())?;
    let (yp, _gy) = output(gpu, "pool output", y, p.out_len())?;
    let planes = p.n * p.c;
    let cfg = match p.kind {
        // Planes of <= 64 elements: 128 threads own 128 planes (kernels::pool::GLOBAL_SMALL_*).
        PoolKind::GlobalAvg if p.h * p.w <= 64 => LaunchConfig {
            grid_dim: (planes.div_ceil(128).min((1 << 31) - 1) as u32, 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        },
        // Otherwise one warp per 8 planes (kernels::pool::PLANES_PER_WARP).
        PoolKind::GlobalAvg => cfg_1d(grid_1d((planes.div_ceil(8) * 32) as u64)),
        _ => cfg_1d(grid_1d_wave(gpu, p.out_len() as u64)),
    };
    let symbol = match p.kind {
        PoolKind::GlobalAvg => "pool_global_avg_f32_nchw",
        PoolKind::Max => "pool_max_f32_nchw",
        PoolKind::Avg => "pool_avg_f32_nchw",
    };
    launch(gpu, symbol, cfg, &params, &[xp, yp])
}

/// Max or average pooling on NHWC f16 (`c % 8 == 0`; global average as an average with
/// the window = the plane). Max pools that [`max_strip_applies`] to run
/// `pool_max_strip_f16_nhwc`, the others [`pool2d_f16_nhwc_windowed`].
pub fn pool2d_f16_nhwc(gpu: &Gpu, p: &Pool2d, x: &impl DevicePtr<u16>, y: &mut impl DevicePtrMut<u16>) -> Result<()> {
    if !max_strip_applies(p) {
        return pool2d_f16_nhwc_windowed(gpu, p, x, y);
    }
    if !p.c.is_multiple_of(8) {
        return Err(invalid(format!("NHWC f16 pooling needs c % 8 == 0, got c = {}", p.c)));
    }
    let params = pool_params(p)?;
    let (xp, _gx) = input(gpu, "pool input", x, p.in_len())?;
    let (yp, _gy) = output(gpu, "pool output", y, p.out_len())?;
    let cfg = cfg_1d(grid_1d_wave(gpu, strip_threads(p, STRIP_ROWS_F16, true)));
    launch(gpu, "pool_max_strip_f16_nhwc", cfg, &params, &[xp, yp])
}

/// [`pool2d_f16_nhwc`] on the one-output-per-thread kernels (`pool_{max,avg}_f16_nhwc`)
/// whatever the window: the fallback, kept selectable for comparison.
pub fn pool2d_f16_nhwc_windowed(
    gpu: &Gpu,
    p: &Pool2d,
    x: &impl DevicePtr<u16>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    if !p.c.is_multiple_of(8) {
        return Err(invalid(format!("NHWC f16 pooling needs c % 8 == 0, got c = {}", p.c)));
    }
    let q = if p.kind == PoolKind::GlobalAvg { Pool2d::avg(p.n, p.c, p.h, p.w, p.h, p.w, false) } else { *p };
    let params = pool_params(&q)?;
    let (xp, _gx) = input(gpu, "pool input", x, p.in_len())?;
    let (yp, _gy) = output(gpu, "pool output", y, p.out_len())?;
    let symbol = if q.kind == PoolKind::Max { "pool_max_f16_nhwc" } else { "pool_avg_f16_nhwc" };
    launch(gpu, symbol, cfg_1d(grid_1d_wave(gpu, (q.out_len() / 8) as u64)), &params, &[xp, yp])
}

/// Pixel rows of the NHWC global average pool's block for `hw` pixels: about four
/// pixels per thread, 1..=16 rows (kernels::pool::GAP_NHWC_MAX_ROWS).
pub fn global_avg_nhwc_rows(hw: usize) -> u32 {
    hw.div_ceil(4).clamp(1, 16) as u32
}

/// Launch configuration of the NHWC global average pool: block `(32, rows)`, grid
/// `(ceil(items / 32), min(n, 65535))`, an item being a 16-byte vector of channels when
/// `c` is a multiple of `16 / elem_bytes`, else one channel.
pub fn global_avg_nhwc_config(p: &Pool2d, elem_bytes: usize) -> LaunchConfig {
    let ve = 16 / elem_bytes;
    let items = if p.c.is_multiple_of(ve) { p.c / ve } else { p.c };
    LaunchConfig {
        grid_dim: (items.div_ceil(32) as u32, p.n.min(65535) as u32, 1),
        block_dim: (32, global_avg_nhwc_rows(p.h * p.w), 1),
        shared_mem_bytes: 0,
    }
}

fn check_global_avg(p: &Pool2d) -> Result<PoolParams> {
    if p.kind != PoolKind::GlobalAvg {
        return Err(invalid("the NHWC global average pool kernel was asked for a windowed pool"));
    }
    let params = pool_params(p)?;
    if p.c.div_ceil(32) > (1 << 31) - 1 {
        return Err(invalid("global average pool: too many channels"));
    }
    Ok(params)
}

/// Global average pooling on NHWC f16 or bf16 (`dtype`), any `c`: `y` is `[n, 1, 1, c]`.
pub fn global_avg_pool_nhwc_half(
    gpu: &Gpu,
    dtype: DType,
    p: &Pool2d,
    x: &impl DevicePtr<u16>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    let symbol = if half_suffix(dtype)? == "f16" { "pool_global_avg_f16_nhwc" } else { "pool_global_avg_bf16_nhwc" };
    let params = check_global_avg(p)?;
    let (xp, _gx) = input(gpu, "pool input", x, p.in_len())?;
    let (yp, _gy) = output(gpu, "pool output", y, p.out_len())?;
    launch(gpu, symbol, global_avg_nhwc_config(p, 2), &params, &[xp, yp])
}

/// Global average pooling on NHWC f32, any `c`.
pub fn global_avg_pool_nhwc_f32(
    gpu: &Gpu,
    p: &Pool2d,
    x: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<f32>,
) -> Result<()> {
    let params = check_global_avg(p)?;
    let (xp, _gx) = input(gpu, "pool input", x, p.in_len())?;
    let (yp, _gy) = output(gpu, "pool output", y, p.out_len())?;
    launch(gpu, "pool_global_avg_f32_nhwc", global_avg_nhwc_config(p, 4), &params, &[xp, yp])
}

/// NHWC f16/bf16 pooling with the dedicated global-average kernel: global average by
/// [`global_avg_pool_nhwc_half`] (any `c`), max/average windows by
/// [`pool2d_f16_nhwc`] (f16, `c % 8 == 0`). The executor's entry point for NHWC pools.
pub fn pool2d_nhwc_half(
    gpu: &Gpu,
    dtype: DType,
    p: &Pool2d,
    x: &impl DevicePtr<u16>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    if p.kind == PoolKind::GlobalAvg {
        return global_avg_pool_nhwc_half(gpu, dtype, p, x, y);
    }
    if dtype != DType::F16 {
        return Err(invalid(format!("NHWC windowed pooling has f16 kernels only, got {dtype}")));
    }
    pool2d_f16_nhwc(gpu, p, x, y)
}

// ---------------------------------------------------------------------------------------
// Activations and add

fn eltwise_params(len: usize, act: Act) -> Result<EltwiseParams> {
    let (act, act_min, act_max) = super::act_code(act)?;
    Ok(EltwiseParams { len: check_count("elementwise", len)?, act, act_min, act_max })
}

/// Blocks for a streaming kernel over `len` elements of `elem_bytes` each.
fn stream_blocks(len: usize, elem_bytes: usize) -> u32 {
    let vectors = (len * elem_bytes).div_ceil(16) as u64;
    grid_1d(vectors.div_ceil(UNROLL))
}

/// `y = act(x)`, f32 (ReLU, Clip/ReLU6, sigmoid, tanh; `Act::None` copies).
pub fn activation_f32(
    gpu: &Gpu,
    op: &Activation,
    x: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<f32>,
) -> Result<()> {
    let params = eltwise_params(op.len, op.act)?;
    let (xp, _gx) = input(gpu, "activation input", x, op.len)?;
    let (yp, _gy) = output(gpu, "activation output", y, op.len)?;
    launch(gpu, "eltwise_act_f32", cfg_1d(stream_blocks(op.len, 4)), &params, &[xp, 0, yp])
}

/// `x = act(x)` in place, f32.
pub fn activation_f32_in_place(gpu: &Gpu, op: &Activation, x: &mut impl DevicePtrMut<f32>) -> Result<()> {
    let params = eltwise_params(op.len, op.act)?;
    let (xp, _gx) = output(gpu, "activation tensor", x, op.len)?;
    launch(gpu, "eltwise_act_f32", cfg_1d(stream_blocks(op.len, 4)), &params, &[xp, 0, xp])
}

/// `y = act(a + b)`, f32 (ResNet's residual join).
pub fn add_f32(
    gpu: &Gpu,
    op: &Add,
    a: &impl DevicePtr<f32>,
    b: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<f32>,
) -> Result<()> {
    let params = eltwise_params(op.len, op.act)?;
    let (ap, _ga) = input(gpu, "add input a", a, op.len)?;
    let (bp, _gb) = input(gpu, "add input b", b, op.len)?;
    let (yp, _gy) = output(gpu, "add output", y, op.len)?;
    launch(gpu, "eltwise_add_f32", cfg_1d(stream_blocks(op.len, 4)), &params, &[ap, bp, yp])
}

/// `a = act(a + b)` in place, f32.
pub fn add_f32_in_place(gpu: &Gpu, op: &Add, a: &mut impl DevicePtrMut<f32>, b: &impl DevicePtr<f32>) -> Result<()> {
    let params = eltwise_params(op.len, op.act)?;
    let (bp, _gb) = input(gpu, "add input b", b, op.len)?;
    let (ap, _ga) = output(gpu, "add input/output a", a, op.len)?;
    launch(gpu, "eltwise_add_f32", cfg_1d(stream_blocks(op.len, 4)), &params, &[ap, bp, ap])
}

/// `y = act(x)` on f16 or bf16 data (computed in f32, rounded once).
pub fn activation_half(
    gpu: &Gpu,
    dtype: DType,
    op: &Activation,
    x: &impl DevicePtr<u16>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    let symbol = if half_suffix(dtype)? == "f16" { "eltwise_act_f16" } else { "eltwise_act_bf16" };
    let params = eltwise_params(op.len, op.act)?;
    let (xp, _gx) = input(gpu, "activation input", x, op.len)?;
    let (yp, _gy) = output(gpu, "activation output", y, op.len)?;
    launch(gpu, symbol, cfg_1d(stream_blocks(op.len, 2)), &params, &[xp, 0, yp])
}

/// `y = act(a + b)` on f16 or bf16 data (sum and activation in f32, rounded once).
pub fn add_half(
    gpu: &Gpu,
    dtype: DType,
    op: &Add,
    a: &impl DevicePtr<u16>,
    b: &impl DevicePtr<u16>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    let symbol = if half_suffix(dtype)? == "f16" { "eltwise_add_f16" } else { "eltwise_add_bf16" };
    let params = eltwise_params(op.len, op.act)?;
    let (ap, _ga) = input(gpu, "add input a", a, op.len)?;
    let (bp, _gb) = input(gpu, "add input b", b, op.len)?;
    let (yp, _gy) = output(gpu, "add output", y, op.len)?;
    launch(gpu, symbol, cfg_1d(stream_blocks(op.len, 2)), &params, &[ap, bp, yp])
}

// ---------------------------------------------------------------------------------------
// Batch-norm (channel affine) and LRN

fn affine_params(p: &BatchNorm, act: Act) -> Result<ChannelAffineParams> {
    p.validate().map_err(op_err)?;
    let (act, act_min, act_max) = super::act_code(act)?;
    check_count("batchnorm", p.len())?;
    Ok(ChannelAffineParams { n: p.n as u32, c: p.c as u32, hw: (p.h * p.w) as u32, act, act_min, act_max })
}

/// Inference batch-norm on NCHW f32 with folded parameters
/// (`reference::fold_batch_norm`): `y = act(x * scale[c] + shift[c])`. `p.eps` is not
/// used (it is in the folded scale).
pub fn batch_norm_f32(
    gpu: &Gpu,
    p: &BatchNorm,
    act: Act,
    x: &impl DevicePtr<f32>,
    scale: &impl DevicePtr<f32>,
    shift: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<f32>,
) -> Result<()> {
    let params = affine_params(p, act)?;
    let (xp, _gx) = input(gpu, "batchnorm input", x, p.len())?;
    let (sp, _gs) = input(gpu, "batchnorm scale", scale, p.c)?;
    let (tp, _gt) = input(gpu, "batchnorm shift", shift, p.c)?;
    let (yp, _gy) = output(gpu, "batchnorm output", y, p.len())?;
    launch(gpu, "channel_affine_f32_nchw", cfg_1d(stream_blocks(p.len(), 4)), &params, &[xp, sp, tp, yp])
}

/// [`batch_norm_f32`] in place.
pub fn batch_norm_f32_in_place(
    gpu: &Gpu,
    p: &BatchNorm,
    act: Act,
    x: &mut impl DevicePtrMut<f32>,
    scale: &impl DevicePtr<f32>,
    shift: &impl DevicePtr<f32>,
) -> Result<()> {
    let params = affine_params(p, act)?;
    let (sp, _gs) = input(gpu, "batchnorm scale", scale, p.c)?;
    let (tp, _gt) = input(gpu, "batchnorm shift", shift, p.c)?;
    let (xp, _gx) = output(gpu, "batchnorm tensor", x, p.len())?;
    launch(gpu, "channel_affine_f32_nchw", cfg_1d(stream_blocks(p.len(), 4)), &params, &[xp, sp, tp, xp])
}

/// Threads per block of `channel_affine_f32_nchw_planes` for planes of `hw` elements:
/// the power of two near `hw / 16` (four vectors per thread), 32..=256.
pub fn planes_block(hw: usize) -> u32 {
    hw.div_ceil(16).next_power_of_two().clamp(32, 256) as u32
}

/// Launch configuration of `channel_affine_f32_nchw_planes`: `n·c·chunks` tiles (a
/// chunk = 4 vectors per thread of one plane), one block per tile up to a cap of about
/// 4 resident-block waves (`4 · SMs · 2048 / block` threads' worth), grid-stride beyond.
pub fn planes_config(p: &BatchNorm, sm_count: u32) -> LaunchConfig {
    let hw = p.h * p.w;
    let bd = planes_block(hw);
    let chunks = (hw / 4).div_ceil(bd as usize * 4).max(1);
    let tiles = p.n * p.c * chunks;
    let cap = 4 * sm_count.max(1) as usize * (2048 / bd as usize);
    LaunchConfig { grid_dim: (tiles.clamp(1, cap) as u32, 1, 1), block_dim: (bd, 1, 1), shared_mem_bytes: 0 }
}

/// [`batch_norm_f32`] on `channel_affine_f32_nchw_planes`: the channel is uniform per
/// block (no per-element division) and every plane streams as 16-byte vectors whatever
/// `h·w`.
pub fn batch_norm_f32_planes(
    gpu: &Gpu,
    p: &BatchNorm,
    act: Act,
    x: &impl DevicePtr<f32>,
    scale: &impl DevicePtr<f32>,
    shift: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<f32>,
) -> Result<()> {
    let params = affine_params(p, act)?;
    let (xp, _gx) = input(gpu, "batchnorm input", x, p.len())?;
    let (sp, _gs) = input(gpu, "batchnorm scale", scale, p.c)?;
    let (tp, _gt) = input(gpu, "batchnorm shift", shift, p.c)?;
    let (yp, _gy) = output(gpu, "batchnorm output", y, p.len())?;
    let cfg = planes_config(p, gpu.info.sm_count);
    launch(gpu, "channel_affine_f32_nchw_planes", cfg, &params, &[xp, sp, tp, yp])
}

/// [`batch_norm_f32_planes`] in place.
pub fn batch_norm_f32_planes_in_place(
    gpu: &Gpu,
    p: &BatchNorm,
    act: Act,
    x: &mut impl DevicePtrMut<f32>,
    scale: &impl DevicePtr<f32>,
    shift: &impl DevicePtr<f32>,
) -> Result<()> {
    let params = affine_params(p, act)?;
    let (sp, _gs) = input(gpu, "batchnorm scale", scale, p.c)?;
    let (tp, _gt) = input(gpu, "batchnorm shift", shift, p.c)?;
    let (xp, _gx) = output(gpu, "batchnorm tensor", x, p.len())?;
    let cfg = planes_config(p, gpu.info.sm_count);
    launch(gpu, "channel_affine_f32_nchw_planes", cfg, &params, &[xp, sp, tp, xp])
}

/// Local response normalisation (ONNX LRN) on NCHW f32.
pub fn lrn_f32(gpu: &Gpu, p: &Lrn, x: &impl DevicePtr<f32>, y: &mut impl DevicePtrMut<f32>) -> Result<()> {
    p.validate().map_err(op_err)?;
    let len = p.len();
    let hw = p.h * p.w;
    let params = LrnParams {
        n: p.n as u32,
        c: p.c as u32,
        hw: hw as u32,
        size: p.size as u32,
        alpha: p.alpha,
        beta: p.beta,
        bias: p.bias,
        _pad: 0,
    };
    check_count("lrn", len)?;
    let (xp, _gx) = input(gpu, "lrn input", x, len)?;
    let (yp, _gy) = output(gpu, "lrn output", y, len)?;
    // 128 spatial positions per block.
    let gx = hw.div_ceil(128);
    let gy = p.n.min(65535);
    // Split the channels into groups (each still >= 8 channels, one per thread row) until
    // the grid reaches a full wave.
    let target = (gpu.info.sm_count.max(1) * BLOCKS_PER_SM) as usize;
    let gz = target.div_ceil(gx * gy).clamp(1, p.c.div_ceil(8));
    let cfg = LaunchConfig { grid_dim: (gx as u32, gy as u32, gz as u32), block_dim: (32, 8, 1), shared_mem_bytes: 0 };
    launch(gpu, "lrn_f32_nchw", cfg, &params, &[xp, yp])
}

// ---------------------------------------------------------------------------------------
// Softmax

/// The block shape [`softmax_f32`] uses for rows of `cols` elements: `(bx, by)`.
///
/// With `cols % 4 == 0` the kernel keeps up to 4 16-byte vectors per thread in registers
/// (one read of the data): `bx` = the power of two giving each thread at most 4 vectors —
/// a lane group of `bx <= 32` per row (256/bx rows per block) for rows of up to 512
/// elements, a block of 64..1024 threads per row up to 16384 elements. Longer rows and
/// rows with `cols % 4 != 0` stream (two reads): 1024 threads per long row, or a lane
/// group / block sized for about 4 (scalar rows of <= 128) or 2 elements per thread.
pub fn softmax_block(cols: usize) -> (u32, u32) {
    let shape = |bx: usize| -> (u32, u32) {
        let bx = bx as u32;
        if bx <= 32 {
            (bx, 256 / bx)
        } else {
            (bx, 1)
        }
    };
    if cols.is_multiple_of(4) {
        let n4 = cols / 4;
        if n4 <= 4 * 1024 {
            return shape(n4.div_ceil(4).next_power_of_two());
        }
        return shape(1024);
    }
    if cols <= 128 {
        shape(cols.div_ceil(4).next_power_of_two().clamp(1, 32))
    } else {
        shape(cols.div_ceil(2).next_power_of_two().clamp(64, 1024))
    }
}

/// Softmax over the last axis (`p.inner == 1`), f32. `y` may not alias `x` here (use
/// [`softmax_f32_in_place`]).
pub fn softmax_f32(gpu: &Gpu, p: &Softmax, x: &impl DevicePtr<f32>, y: &mut impl DevicePtrMut<f32>) -> Result<()> {
    let (params, cfg) = softmax_setup(gpu, p)?;
    let (xp, _gx) = input(gpu, "softmax input", x, p.total_len())?;
    let (yp, _gy) = output(gpu, "softmax output", y, p.total_len())?;
    launch(gpu, "softmax_f32", cfg, &params, &[xp, yp])
}

/// Softmax over the last axis in place.
pub fn softmax_f32_in_place(gpu: &Gpu, p: &Softmax, x: &mut impl DevicePtrMut<f32>) -> Result<()> {
    let (params, cfg) = softmax_setup(gpu, p)?;
    let (xp, _gx) = output(gpu, "softmax tensor", x, p.total_len())?;
    launch(gpu, "softmax_f32", cfg, &params, &[xp, xp])
}

fn softmax_setup(gpu: &Gpu, p: &Softmax) -> Result<(SoftmaxParams, LaunchConfig)> {
    p.validate().map_err(op_err)?;
    if p.inner != 1 {
        return Err(invalid(format!("softmax kernel normalises the last axis only (inner = {})", p.inner)));
    }
    check_count("softmax", p.total_len())?;
    let rows = check_count("softmax rows", p.outer)?;
    let (bx, by) = softmax_block(p.len);
    let cap = gpu.info.sm_count.max(1) * BLOCKS_PER_SM * (256 / (bx * by).min(256)).max(1);
    let blocks = rows.div_ceil(by).clamp(1, cap);
    let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (bx, by, 1), shared_mem_bytes: 0 };
    Ok((SoftmaxParams { rows, cols: p.len as u32 }, cfg))
}

// ---------------------------------------------------------------------------------------
// Concat

/// Writes `x` (`[n, c, h*w]`, NCHW f32) into channels `c_offset .. c_offset + c` of `y`
/// (`[n, c_total, h*w]`): one input of a channel concatenation.
pub fn concat_channels_f32(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    c_total: usize,
    c_offset: usize,
    x: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<f32>,
) -> Result<()> {
    if n == 0 || c == 0 || hw == 0 {
        return Err(invalid("concat: n, c and h*w must be > 0"));
    }
    if c_offset + c > c_total {
        return Err(invalid(format!("concat: channels {c_offset}..{} exceed the output's {c_total}", c_offset + c)));
    }
    check_count("concat output", n * c_total * hw)?;
    let (xp, _gx) = input(gpu, "concat input", x, n * c * hw)?;
    let (yp, _gy) = output(gpu, "concat output", y, n * c_total * hw)?;
    let run = c * hw;
    let vec = (run | (c_total * hw) | (c_offset * hw)).is_multiple_of(4);
    let per_image_threads = if vec { run.div_ceil(4) } else { run } as u64;
    let gy = n.min(65535) as u32;
    // Every thread does one step of 4 items (no wave cap: the parts of a concat are
    // small, and a capped grid would leave threads with partial steps).
    let gx = per_image_threads.div_ceil(4 * BLOCK as u64).max(1) as u32;
    let params = ConcatParams {
        n: n as u32,
        c: c as u32,
        hw: hw as u32,
        c_total: c_total as u32,
        c_offset: c_offset as u32,
        _pad: 0,
    };
    let cfg = LaunchConfig { grid_dim: (gx, gy, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
    launch(gpu, "concat_channels_f32_nchw", cfg, &params, &[xp, yp])
}

// ---------------------------------------------------------------------------------------
// Conversions

fn convert_params(dims: [usize; 4]) -> Result<ConvertParams> {
    let [n, c, h, w] = dims;
    if n == 0 || c == 0 || h == 0 || w == 0 {
        return Err(invalid(format!("convert: every dimension must be > 0, got {dims:?}")));
    }
    check_count("convert", n * c * h * w)?;
    Ok(ConvertParams { n: n as u32, c: c as u32, hw: (h * w) as u32, _pad: 0 })
}

/// Launch configuration of the 16-bit-output transposes: 64x64 tiles.
fn transpose16_cfg(r: usize, c: usize, batch: usize) -> Result<LaunchConfig> {
    let (gx, gy) = (c.div_ceil(64), r.div_ceil(64));
    if gy > 65535 {
        return Err(invalid(format!("transpose: {r} rows need {gy} tile rows, more than the grid's 65535")));
    }
    Ok(LaunchConfig {
        grid_dim: (gx as u32, gy as u32, batch.min(65535) as u32),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    })
}

/// Channel counts up to which the transposes stage whole pixels instead of 32x32 tiles
/// (kernels::convert::SMALL_C).
pub const SMALL_C: usize = 8;

/// Launch configuration of the small-channel transposes: 256 pixels per block.
fn small_c_cfg(hw: usize, n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (hw.div_ceil(256) as u32, n.min(65535) as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Launch configuration of the tiled transposes for `[r, c]` matrices (`batch` of them).
fn transpose_cfg(r: usize, c: usize, batch: usize) -> Result<LaunchConfig> {
    // f32: 32 rows x 64 columns per block (two 32x32 tiles).
    let (gx, gy) = (c.div_ceil(64), r.div_ceil(32));
    if gy > 65535 {
        return Err(invalid(format!("transpose: {r} rows need {gy} tile rows, more than the grid's 65535")));
    }
    Ok(LaunchConfig {
        grid_dim: (gx as u32, gy as u32, batch.min(65535) as u32),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    })
}

/// NCHW → NHWC (`to = Nhwc`) or NHWC → NCHW (`to = Nchw`) for f32, logical dims `dims`.
pub fn transpose_f32(
    gpu: &Gpu,
    dims: [usize; 4],
    to: Layout,
    x: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<f32>,
) -> Result<()> {
    let params = convert_params(dims)?;
    let (n, c, hw) = (dims[0], dims[1], dims[2] * dims[3]);
    let (xp, _gx) = input(gpu, "transpose input", x, n * c * hw)?;
    let (yp, _gy) = output(gpu, "transpose output", y, n * c * hw)?;
    let (symbol, cfg) = match (to, c <= SMALL_C) {
        (Layout::Nhwc, true) => ("convert_nchw_to_nhwc_small_c_f32", small_c_cfg(hw, n)),
        (Layout::Nchw, true) => ("convert_nhwc_to_nchw_small_c_f32", small_c_cfg(hw, n)),
        (Layout::Nhwc, false) => ("convert_nchw_to_nhwc_f32", transpose_cfg(c, hw, n)?),
        (Layout::Nchw, false) => ("convert_nhwc_to_nchw_f32", transpose_cfg(hw, c, n)?),
    };
    launch(gpu, symbol, cfg, &params, &[xp, yp])
}

/// Layout transpose of 16-bit data (`dtype` F16 or BF16; a bit copy).
pub fn transpose_half(
    gpu: &Gpu,
    dtype: DType,
    dims: [usize; 4],
    to: Layout,
    x: &impl DevicePtr<u16>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    let suffix = half_suffix(dtype)?;
    let params = convert_params(dims)?;
    let (n, c, hw) = (dims[0], dims[1], dims[2] * dims[3]);
    let (xp, _gx) = input(gpu, "transpose input", x, n * c * hw)?;
    let (yp, _gy) = output(gpu, "transpose output", y, n * c * hw)?;
    let small = c <= SMALL_C;
    let (symbol, cfg) = match (to, suffix, small) {
        (Layout::Nhwc, "f16", true) => ("convert_nchw_to_nhwc_small_c_f16", small_c_cfg(hw, n)),
        (Layout::Nhwc, _, true) => ("convert_nchw_to_nhwc_small_c_bf16", small_c_cfg(hw, n)),
        (Layout::Nchw, "f16", true) => ("convert_nhwc_to_nchw_small_c_f16", small_c_cfg(hw, n)),
        (Layout::Nchw, _, true) => ("convert_nhwc_to_nchw_small_c_bf16", small_c_cfg(hw, n)),
        (Layout::Nhwc, "f16", false) => ("convert_nchw_to_nhwc_f16", transpose16_cfg(c, hw, n)?),
        (Layout::Nhwc, _, false) => ("convert_nchw_to_nhwc_bf16", transpose16_cfg(c, hw, n)?),
        (Layout::Nchw, "f16", false) => ("convert_nhwc_to_nchw_f16", transpose16_cfg(hw, c, n)?),
        (Layout::Nchw, _, false) => ("convert_nhwc_to_nchw_bf16", transpose16_cfg(hw, c, n)?),
    };
    launch(gpu, symbol, cfg, &params, &[xp, yp])
}

/// Fused NCHW f32 → NHWC f16/bf16 (round to nearest even): the tensor-core path's input
/// conversion.
pub fn nchw_f32_to_nhwc_half(
    gpu: &Gpu,
    dtype: DType,
    dims: [usize; 4],
    x: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    let f16 = half_suffix(dtype)? == "f16";
    let params = convert_params(dims)?;
    let (n, c, hw) = (dims[0], dims[1], dims[2] * dims[3]);
    let (xp, _gx) = input(gpu, "convert input", x, n * c * hw)?;
    let (yp, _gy) = output(gpu, "convert output", y, n * c * hw)?;
    let (symbol, cfg) = match (f16, c <= SMALL_C) {
        (true, true) => ("convert_nchw_f32_to_nhwc_small_c_f16", small_c_cfg(hw, n)),
        (false, true) => ("convert_nchw_f32_to_nhwc_small_c_bf16", small_c_cfg(hw, n)),
        (true, false) => ("convert_nchw_f32_to_nhwc_f16", transpose16_cfg(c, hw, n)?),
        (false, false) => ("convert_nchw_f32_to_nhwc_bf16", transpose16_cfg(c, hw, n)?),
    };
    launch(gpu, symbol, cfg, &params, &[xp, yp])
}

/// Whether `convert_nchw_f32_to_nhwc_pix8_*` takes `[n, c, h, w]`: `c <= 8` and
/// `h·w % 8 == 0` (whole 16-byte groups of 8 pixels).
pub fn pix8_applies(dims: [usize; 4]) -> bool {
    dims[1] >= 1 && dims[1] <= SMALL_C && (dims[2] * dims[3]).is_multiple_of(8)
}

/// [`nchw_f32_to_nhwc_half`] through the eight-pixels-per-thread kernel where
/// [`pix8_applies`] (the network input: 3 channels, 224 × 224), else through
/// [`nchw_f32_to_nhwc_half`]. Bit-identical results either way.
pub fn nchw_f32_to_nhwc_half_pix8(
    gpu: &Gpu,
    dtype: DType,
    dims: [usize; 4],
    x: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    if !pix8_applies(dims) {
        return nchw_f32_to_nhwc_half(gpu, dtype, dims, x, y);
    }
    let f16 = half_suffix(dtype)? == "f16";
    let params = convert_params(dims)?;
    let len = dims.iter().product::<usize>();
    let (xp, _gx) = input(gpu, "convert input", x, len)?;
    let (yp, _gy) = output(gpu, "convert output", y, len)?;
    let symbol = if f16 { "convert_nchw_f32_to_nhwc_pix8_f16" } else { "convert_nchw_f32_to_nhwc_pix8_bf16" };
    let items = (dims[0] * dims[2] * dims[3] / 8) as u64;
    launch(gpu, symbol, cfg_1d(grid_1d(items)), &params, &[xp, yp])
}

/// NCHW f32 `[n, c, h, w]` (`1 <= c <= 8`) → NHWC f16/bf16 `[n, h, w, 8]` with channels
/// `c..8` set to +0 (round to nearest even), one pixel per thread: the network input
/// padded so a conv reading it takes the tensor cores' `c_in % 8 == 0` path. `y` must
/// hold `n·h·w·8` halves; every one of them is written.
pub fn nchw_f32_to_nhwc_half_pad8(
    gpu: &Gpu,
    dtype: DType,
    dims: [usize; 4],
    x: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    if dims[1] > SMALL_C {
        return Err(invalid(format!("convert pad8: c = {} > {SMALL_C} channels", dims[1])));
    }
    let f16 = half_suffix(dtype)? == "f16";
    let params = convert_params(dims)?;
    let pixels = dims[0] * dims[2] * dims[3];
    let out_len = check_count("convert pad8 output", pixels * SMALL_C)?;
    let (xp, _gx) = input(gpu, "convert input", x, dims.iter().product())?;
    let (yp, _gy) = output(gpu, "convert output", y, out_len as usize)?;
    let symbol = if f16 { "convert_nchw_f32_to_nhwc_pad8_f16" } else { "convert_nchw_f32_to_nhwc_pad8_bf16" };
    launch(gpu, symbol, cfg_1d(grid_1d(pixels as u64)), &params, &[xp, yp])
}

/// f32 → f16/bf16 over `len` elements, any layout (round to nearest even).
pub fn f32_to_half(
    gpu: &Gpu,
    dtype: DType,
    len: usize,
    x: &impl DevicePtr<f32>,
    y: &mut impl DevicePtrMut<u16>,
) -> Result<()> {
    let symbol = if half_suffix(dtype)? == "f16" { "convert_f32_to_f16" } else { "convert_f32_to_bf16" };
    let params = ConvertParams { n: 1, c: 1, hw: check_count("convert", len)?, _pad: 0 };
    let (xp, _gx) = input(gpu, "convert input", x, len)?;
    let (yp, _gy) = output(gpu, "convert output", y, len)?;
    launch(gpu, symbol, cfg_1d(grid_1d((len.div_ceil(8) as u64).div_ceil(UNROLL))), &params, &[xp, yp])
}

/// f16/bf16 → f32 over `len` elements, any layout (exact).
pub fn half_to_f32(
    gpu: &Gpu,
    dtype: DType,
    len: usize,
    x: &impl DevicePtr<u16>,
    y: &mut impl DevicePtrMut<f32>,
) -> Result<()> {
    let symbol = if half_suffix(dtype)? == "f16" { "convert_f16_to_f32" } else { "convert_bf16_to_f32" };
    let params = ConvertParams { n: 1, c: 1, hw: check_count("convert", len)?, _pad: 0 };
    let (xp, _gx) = input(gpu, "convert input", x, len)?;
    let (yp, _gy) = output(gpu, "convert output", y, len)?;
    // Groups of 4 elements, 8 groups per thread per step.
    launch(gpu, symbol, cfg_1d(grid_1d((len.div_ceil(4) as u64).div_ceil(8))), &params, &[xp, yp])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_block_shapes() {
        // 1000 classes: 250 vectors, at most 4 per thread -> 63 -> a block of 64 per row.
        assert_eq!(softmax_block(1000), (64, 1));
        // 10 classes: 10 scalars (10 % 4 != 0) -> 4 lanes per row, 64 rows per block.
        assert_eq!(softmax_block(10), (4, 64));
        assert_eq!(softmax_block(1), (1, 256));
        // 16 = 4 vectors -> one lane per row.
        assert_eq!(softmax_block(16), (1, 256));
        // 512 = 128 vectors -> 32 lanes with 4 each.
        assert_eq!(softmax_block(512), (32, 8));
        assert_eq!(softmax_block(1001), (512, 1));
        assert_eq!(softmax_block(16384), (1024, 1));
        assert_eq!(softmax_block(100_000), (1024, 1));
    }

    #[test]
    fn new_kernel_launch_rules() {
        // ResNet-50's final pool at batch 64, f16: 2048 / 8 = 256 vector items -> 8 x 64
        // blocks of 32 x 13 (49 pixels, ~4 per row).
        let p = Pool2d::global_avg(64, 2048, 7, 7);
        let cfg = global_avg_nhwc_config(&p, 2);
        assert_eq!((cfg.grid_dim, cfg.block_dim), ((8, 64, 1), (32, 13, 1)));
        // f32 items are 4 channels: 512 -> 16 blocks across.
        assert_eq!(global_avg_nhwc_config(&p, 4).grid_dim, (16, 64, 1));
        // Odd c: one channel per item; 1x1 planes: one row.
        let odd = Pool2d::global_avg(70_000, 67, 1, 1);
        assert_eq!(
            (global_avg_nhwc_config(&odd, 2).grid_dim, global_avg_nhwc_config(&odd, 2).block_dim),
            ((3, 65535, 1), (32, 1, 1))
        );
        assert_eq!(global_avg_nhwc_rows(56 * 56), 16);
        // Planes: 56x56 -> 196 -> 256 threads, one chunk per plane (784 vectors <= 1024).
        assert_eq!(planes_block(56 * 56), 256);
        assert_eq!(planes_block(49), 32);
        assert_eq!(planes_block(28 * 28), 64);
        let bn = BatchNorm::new(64, 64, 56, 56);
        let cfg = planes_config(&bn, 132);
        assert_eq!((cfg.grid_dim.0, cfg.block_dim.0), (4096, 256));
        // 112x112: 3136 vectors -> 4 chunks of 1024 per plane.
        assert_eq!(planes_config(&BatchNorm::new(1, 3, 112, 112), 132).grid_dim.0, 12);
        // Many small planes: capped at 4 waves of 32-thread blocks.
        assert_eq!(planes_config(&BatchNorm::new(64, 2048, 7, 7), 132).grid_dim.0, 4 * 132 * 64);
        assert!(pix8_applies([64, 3, 224, 224]));
        assert!(!pix8_applies([1, 3, 7, 5]));
        assert!(!pix8_applies([1, 9, 8, 8]));
        assert!(pix8_applies([2, 8, 2, 4]));
    }

    #[test]
    fn max_strip_launch_rule() {
        let resnet = Pool2d::max(64, 64, 112, 112, 3, 3).with_stride(2, 2).with_pad(1, 1);
        let vgg = Pool2d::max(64, 256, 56, 56, 2, 2).with_stride(2, 2);
        let googlenet = Pool2d::max(8, 192, 28, 28, 3, 3).with_pad(1, 1);
        for p in [resnet, vgg, googlenet, resnet.with_ceil_mode(true), vgg.with_stride(2, 1)] {
            assert!(max_strip_applies(&p), "{p:?}");
        }
        for p in [
            Pool2d::avg(64, 64, 112, 112, 3, 3, true).with_stride(2, 2),
            resnet.with_dilation(2, 2),
            Pool2d::max(1, 3, 9, 9, 3, 3).with_stride(3, 3),
            Pool2d::max(1, 3, 9, 9, 2, 2),
            Pool2d::max(1, 3, 9, 9, 3, 2).with_stride(2, 2),
            Pool2d::max(1, 3, 9, 9, 7, 7).with_stride(2, 2),
            Pool2d::global_avg(1, 3, 9, 9),
        ] {
            assert!(!max_strip_applies(&p), "{p:?}");
        }
        // ResNet-50 stem at batch 64: 56x56 outputs, 64*64 planes, 14 strips of 4 rows,
        // 56 columns; NHWC: 8 channel groups, 28 strips of 2 rows.
        assert_eq!(strip_threads(&resnet, STRIP_ROWS_F32, false), 64 * 64 * 14 * 56);
        assert_eq!(strip_threads(&resnet, STRIP_ROWS_F16, true), 64 * 8 * 28 * 56);
        // 10x10, 3x3 s2: (10 - 3) / 2 = 3.5, so 4x4 outputs, 5x5 in ceil mode; 5 rows = 2
        // strips of 4.
        let ceil = Pool2d::max(1, 1, 10, 10, 3, 3).with_stride(2, 2).with_ceil_mode(true);
        assert_eq!(ceil.out_hw(), (5, 5));
        assert_eq!(strip_threads(&ceil, STRIP_ROWS_F32, false), 2 * 5);
    }

    #[test]
    fn every_kernel_is_in_the_table_once() {
        let mut syms: Vec<&str> = KERNELS.iter().map(|k| k.symbol).collect();
        syms.sort();
        syms.dedup();
        assert_eq!(syms.len(), KERNELS.len());
    }
}
