//! Launcher for the NHWC f16/bf16 depthwise conv (`kernels/src/depthwise.rs`): one
//! filter per channel (`groups == c_in == c_out`, channel multiplier 1), any kernel size,
//! stride, padding and dilation, f32 accumulation, and the tensor-core conv's fused
//! epilogue `y = act((acc + bias) * scale + shift + residual)` rounded once to the
//! output type.
//!
//! The interface mirrors [`tensorcore::conv2d`](super::tensorcore::conv2d): the same
//! [`ConvOperands`] (`x`, `residual` and `y` NHWC, `bias`/`scale`/`shift` `[c]` f32), the
//! same `Launched` result, so the executor swaps one for the other on depthwise layers.
//! Only the weight layout differs: tap-major, channel fastest (`[kh][kw][c]`, see
//! [`dw_weights_hwc`]), so a thread's 8 channels are one 16-byte load per tap.
//!
//! Kernel paths (chosen inside the kernel from the parameters; [`path`] mirrors the rule
//! for the grid): `c % 8 == 0` and a 3×3 window with `dil_w = 1` and `stride_w` 1 or 2
//! run the register-tiled path (4 or 2 outputs per thread along W, 16-byte vectors);
//! other windows with `c % 8 == 0` the generic vector path; `c % 8 != 0` the generic
//! scalar path (one channel per thread).
//!
//! Launch rule: 1-D grid of [`BLOCK`]-thread blocks, one work item (a pixel group × a
//! lane item) per thread, capped at [`BLOCKS_PER_SM`] blocks per SM (the kernel loops),
//! and never fewer threads than lane items per pixel (the kernel's one requirement).

use cudarc::driver::{CudaView, CudaViewMut, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg, SyncOnDrop};

use super::tensorcore::{ConvOperands, Launched};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{Act, Conv2d, DType, Epilogue, Layout};
use crate::params::ConvParams;
use crate::registry::{self, KernelSpec, LayerType};

/// Threads per block.
pub const BLOCK: u32 = 128;
/// Most blocks per SM (2048 threads: one full-occupancy wave; the kernel grid-strides).
pub const BLOCKS_PER_SM: u32 = 16;
/// Output pixels per thread of the 3×3 stride-1 / stride-2 paths (`depthwise::DW_T_S1`,
/// `DW_T_S2` on the device).
pub const T_S1: usize = 4;
pub const T_S2: usize = 2;

const RULE: &str = "128 threads/block, one (pixel group, 8-channel vector) per thread: 3x3 s1 groups of 4 output \
                    pixels, 3x3 s2 groups of 2, else 1; c % 8 != 0: one channel per thread; \
                    blocks = clamp(ceil(items / 128), ceil(lanes / 128), 16 * SMs), grid-stride";

/// This family's kernels.
pub const KERNELS: &[KernelSpec] = &[
    KernelSpec {
        symbol: "conv2d_dw_f16_nhwc",
        layer: LayerType::Conv,
        variant: "depthwise_nhwc",
        dtype: DType::F16,
        layout: Layout::Nhwc,
        launch_rule: RULE,
    },
    KernelSpec {
        symbol: "conv2d_dw_bf16_nhwc",
        layer: LayerType::Conv,
        variant: "depthwise_nhwc",
        dtype: DType::BF16,
        layout: Layout::Nhwc,
        launch_rule: RULE,
    },
];

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

const LIMIT: usize = i32::MAX as usize;

/// The kernel's path for `p` (must be a supported depthwise conv).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// 3×3, `stride_w = 1`, `dil_w = 1`, `c % 8 == 0`: 4 outputs per thread.
    S1,
    /// 3×3, `stride_w = 2`, `dil_w = 1`, `c % 8 == 0`: 2 outputs per thread.
    S2,
    /// Any other window, `c % 8 == 0`: one output, 8 channels per thread.
    Vec8,
    /// `c % 8 != 0`: one output, one channel per thread.
    Scalar,
}

impl Path {
    /// Output pixels per thread along W.
    pub const fn pixels(self) -> usize {
        match self {
            Path::S1 => T_S1,
            Path::S2 => T_S2,
            Path::Vec8 | Path::Scalar => 1,
        }
    }
    /// Channels per thread.
    pub const fn channels(self) -> usize {
        match self {
            Path::Scalar => 1,
            _ => 8,
        }
    }
}

/// Mirrors the kernel's dispatch (`dw_body` in kernels/src/depthwise.rs).
pub fn path(p: &Conv2d) -> Path {
    let k3 = p.kh == 3 && p.kw == 3 && p.dil_w == 1;
    if !p.c_out.is_multiple_of(8) {
        Path::Scalar
    } else if k3 && p.stride_w == 1 {
        Path::S1
    } else if k3 && p.stride_w == 2 {
        Path::S2
    } else {
        Path::Vec8
    }
}

/// `(lanes, items)`: lane items per pixel (8-channel vectors or channels) and work items
/// (lanes × pixel groups).
pub fn work(p: &Conv2d) -> (usize, usize) {
    let path = path(p);
    let lanes = p.c_out / path.channels();
    let (oh, ow) = p.out_hw();
    (lanes, lanes * p.n * oh * ow.div_ceil(path.pixels()))
}

/// Checks that `p` is a depthwise conv this kernel runs.
pub fn check_supported(p: &Conv2d) -> Result<()> {
    p.validate().map_err(|e| invalid(e.to_string()))?;
    if p.groups != p.c_in || p.c_out != p.c_in {
        return Err(invalid(format!(
            "depthwise_nhwc: needs groups == c_in == c_out (one filter per channel, multiplier 1), got groups {} \
             c_in {} c_out {}",
            p.groups, p.c_in, p.c_out
        )));
    }
    for (what, n) in [("the input", p.in_len()), ("the weights", p.weight_len()), ("the output", p.out_len())] {
        if n > LIMIT {
            return Err(invalid(format!("depthwise_nhwc: {what} has {n} elements, the limit is 2^31 - 1")));
        }
    }
    Ok(())
}

/// Validates `p` and `epi` and builds the parameter block (as
/// [`tensorcore::conv_params`](super::tensorcore::conv_params) does for dense convs).
pub fn conv_params(p: &Conv2d, epi: &Epilogue) -> Result<ConvParams> {
    check_supported(p)?;
    // Validates the activation; the block itself is the SIMT convs' (one layout for all).
    super::act_code(epi.act)?;
    Ok(super::conv::conv_params(p, epi))
}

/// The grid for `p` on a GPU with `sm_count` SMs (see the module docs).
pub fn launch_config(p: &Conv2d, sm_count: u32) -> LaunchConfig {
    let (lanes, items) = work(p);
    let b = BLOCK as usize;
    let cap = (sm_count.max(1) * BLOCKS_PER_SM) as usize;
    let blocks = items.div_ceil(b).min(cap).max(lanes.div_ceil(b)).max(1);
    LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

/// The kernel for `dtype`.
pub fn symbol(dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F16 => Ok("conv2d_dw_f16_nhwc"),
        DType::BF16 => Ok("conv2d_dw_bf16_nhwc"),
        DType::F32 => Err(invalid("depthwise_nhwc: f16 and bf16 only (f32 depthwise convs run the NCHW SIMT kernels)")),
    }
}

/// Depthwise weights OIHW `[c, 1, kh, kw]` f32 → tap-major `[kh][kw][c]` in `dtype`
/// (f16/bf16 bits), what the kernels read: `out[(ky·kw + kx)·c + ch] = w[ch][0][ky][kx]`.
pub fn dw_weights_hwc(p: &Conv2d, w_oihw: &[f32], dtype: DType) -> Result<Vec<u16>> {
    check_supported(p)?;
    symbol(dtype)?;
    if w_oihw.len() != p.weight_len() {
        return Err(invalid(format!(
            "depthwise_nhwc: weights have {} values, expected {} ({} x 1 x {} x {})",
            w_oihw.len(),
            p.weight_len(),
            p.c_out,
            p.kh,
            p.kw
        )));
    }
    let (c, taps) = (p.c_out, p.kh * p.kw);
    let mut hwc = vec![0f32; w_oihw.len()];
    for ch in 0..c {
        for t in 0..taps {
            hwc[t * c + ch] = w_oihw[ch * taps + t];
        }
    }
    Ok(match dtype {
        DType::F16 => crate::reference::f32_to_f16_bits(&hwc),
        _ => crate::reference::f32_to_bf16_bits(&hwc),
    })
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(invalid(format!("depthwise_nhwc: {what} has {got} elements, expected {want}")))
    }
}

/// Device address of a buffer, checked 16-byte aligned; the guard must outlive the launch.
fn addr<'a, T>(gpu: &'a Gpu, what: &str, b: &'a CudaView<'_, T>) -> Result<(u64, SyncOnDrop<'a>)> {
    let (p, guard) = b.device_ptr(&gpu.stream);
    if p % 16 != 0 {
        return Err(invalid(format!("depthwise_nhwc: {what} at {p:#x} is not 16-byte aligned")));
    }
    Ok((p, guard))
}

fn addr_opt<'a, T>(gpu: &'a Gpu, what: &str, b: Option<&'a CudaView<'_, T>>) -> Result<(u64, Option<SyncOnDrop<'a>>)> {
    match b {
        Some(b) => addr(gpu, what, b).map(|(p, g)| (p, Some(g))),
        None => Ok((0, None)),
    }
}

/// Launches the depthwise conv `y = epilogue(dwconv(x, w))` on `gpu.stream`
/// (asynchronous). `dtype` is F16 or BF16; `ops.w` is [`dw_weights_hwc`]'s layout.
pub fn conv2d(
    gpu: &Gpu,
    dtype: DType,
    p: &Conv2d,
    act: Act,
    ops: &ConvOperands<u16>,
    y: &mut CudaViewMut<u16>,
) -> Result<Launched> {
    let symbol = symbol(dtype)?;
    if ops.scale.is_some() != ops.shift.is_some() {
        return Err(invalid("depthwise_nhwc: scale and shift must be given together"));
    }
    let epi =
        Epilogue { bias: ops.bias.is_some(), scale_shift: ops.scale.is_some(), act, residual: ops.residual.is_some() };
    let params = conv_params(p, &epi)?;
    check_len("x", ops.x.len(), p.in_len())?;
    check_len("w", ops.w.len(), p.weight_len())?;
    check_len("y", y.len(), p.out_len())?;
    for (what, b) in [("bias", &ops.bias), ("scale", &ops.scale), ("shift", &ops.shift)] {
        if let Some(b) = b {
            check_len(what, b.len(), p.c_out)?;
        }
    }
    if let Some(r) = &ops.residual {
        check_len("residual", r.len(), p.out_len())?;
    }
    let cfg = launch_config(p, gpu.info.sm_count);
    let f = registry::function(&gpu.module, symbol)?;
    let (xp, _gx) = addr(gpu, "x", &ops.x)?;
    let (wp, _gw) = addr(gpu, "w", &ops.w)?;
    let (bp, _gb) = addr_opt(gpu, "bias", ops.bias.as_ref())?;
    let (sp, _gs) = addr_opt(gpu, "scale", ops.scale.as_ref())?;
    let (hp, _gh) = addr_opt(gpu, "shift", ops.shift.as_ref())?;
    let (rp, _gr) = addr_opt(gpu, "residual", ops.residual.as_ref())?;
    let (yp, _gy) = y.device_ptr_mut(&gpu.stream);
    if yp % 16 != 0 {
        return Err(invalid(format!("depthwise_nhwc: y at {yp:#x} is not 16-byte aligned")));
    }
    let mut b = gpu.stream.launch_builder(&f);
    b.arg(&params).arg(&xp).arg(&wp).arg(&bp).arg(&sp).arg(&hp).arg(&rp).arg(&yp);
    // SAFETY: the argument list matches `conv2d_dw_*_nhwc` in kernels/src/depthwise.rs
    // (ConvParams by value, then 7 pointers); lengths, alignment and the kernel's
    // preconditions (depthwise, multiplier 1, < 2^31 elements, threads >= lanes) were
    // checked above; the guards keep the buffers' events alive.
    unsafe { b.launch(cfg) }.map_err(Error::driver("launching a depthwise conv"))?;
    Ok(Launched { symbol, cfg })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{ACT_CLIP, EPI_BIAS, EPI_RESIDUAL, EPI_SCALE_SHIFT};

    fn dw(n: usize, c: usize, h: usize, k: usize, s: usize) -> Conv2d {
        Conv2d::depthwise(n, c, h, h, k, k).with_stride(s, s).with_pad(k / 2, k / 2)
    }

    #[test]
    fn paths_follow_the_kernel_rule() {
        assert_eq!(path(&dw(1, 32, 112, 3, 1)), Path::S1);
        assert_eq!(path(&dw(1, 96, 112, 3, 2)), Path::S2);
        assert_eq!(path(&dw(1, 96, 112, 5, 1)), Path::Vec8);
        assert_eq!(path(&dw(1, 96, 15, 3, 3)), Path::Vec8);
        assert_eq!(path(&dw(1, 96, 15, 3, 1).with_dilation(1, 2)), Path::Vec8);
        // Vertical dilation stays on the 3x3 path.
        assert_eq!(path(&dw(1, 96, 15, 3, 1).with_dilation(2, 1)), Path::S1);
        assert_eq!(path(&dw(1, 13, 15, 3, 1)), Path::Scalar);
        assert_eq!(path(&dw(1, 12, 15, 3, 2)), Path::Scalar);
    }

    #[test]
    fn work_and_grid() {
        // 112x112 s1, c 32: 4 lanes x 112 rows x 28 groups of 4.
        let p = dw(2, 32, 112, 3, 1);
        assert_eq!(work(&p), (4, 2 * 4 * 112 * 28));
        let cfg = launch_config(&p, 132);
        assert_eq!(cfg.block_dim, (128, 1, 1));
        assert_eq!(cfg.grid_dim.0, (2 * 4 * 112 * 28usize).div_ceil(128).min(132 * 16) as u32);
        // 7x7 s2 output of 960 channels: 120 lanes, 4 x 7 groups of 2 (ceil(7/2) = 4 per row).
        let p = dw(1, 960, 14, 3, 2);
        assert_eq!(p.out_hw(), (7, 7));
        assert_eq!(work(&p), (120, 120 * 7 * 4));
        assert_eq!(launch_config(&p, 132).grid_dim.0, (120 * 28usize).div_ceil(128) as u32);
        // The grid never has fewer threads than lanes, whatever the SM count.
        let p = Conv2d::depthwise(1, 40_000, 1, 1, 1, 1);
        let cfg = launch_config(&p, 1);
        assert!(cfg.grid_dim.0 as usize * 128 >= 40_000 / 8);
    }

    #[test]
    fn rejects_what_the_kernel_cannot_run() {
        assert!(check_supported(&Conv2d::new(1, 8, 5, 5, 16, 3, 3).with_groups(8)).is_err()); // multiplier 2
        assert!(check_supported(&Conv2d::new(1, 8, 5, 5, 8, 3, 3).with_groups(4)).is_err()); // grouped
        assert!(check_supported(&Conv2d::new(1, 8, 5, 5, 8, 3, 3)).is_err()); // dense
        assert!(check_supported(&dw(1, 8, 5, 3, 1)).is_ok());
        assert!(symbol(DType::F32).is_err());
        let e = conv_params(&dw(1, 8, 5, 3, 1), &Epilogue { act: Act::Clip { min: 1.0, max: 0.0 }, ..Epilogue::NONE });
        assert!(e.is_err());
    }

    #[test]
    fn params_encode_geometry_and_epilogue() {
        let p = Conv2d::depthwise(2, 24, 9, 11, 3, 5).with_stride(2, 1).with_pads(1, 2, 0, 3).with_dilation(2, 1);
        let epi = Epilogue { bias: true, scale_shift: true, act: Act::RELU6, residual: true };
        let q = conv_params(&p, &epi).unwrap();
        let (oh, ow) = p.out_hw();
        assert_eq!((q.n, q.c_in, q.c_out, q.h, q.w, q.out_h, q.out_w), (2, 24, 24, 9, 11, oh as u32, ow as u32));
        assert_eq!((q.kh, q.kw, q.stride_h, q.stride_w, q.pad_h, q.pad_w, q.dil_h, q.dil_w), (3, 5, 2, 1, 1, 2, 2, 1));
        assert_eq!(q.groups, 24);
        assert_eq!(q.epilogue, EPI_BIAS | EPI_SCALE_SHIFT | EPI_RESIDUAL);
        assert_eq!((q.act, q.act_min, q.act_max), (ACT_CLIP, 0.0, 6.0));
    }

    #[test]
    fn weights_go_tap_major_channel_fastest() {
        // c = 2, 1x2 window: OIHW [[a0, a1], [b0, b1]] -> [a0, b0, a1, b1].
        let p = Conv2d::depthwise(1, 2, 4, 4, 1, 2);
        let w = [1.0f32, 2.0, 3.0, 4.0];
        let bits = dw_weights_hwc(&p, &w, DType::F16).unwrap();
        assert_eq!(crate::reference::f16_bits_to_f32(&bits), vec![1.0, 3.0, 2.0, 4.0]);
        let bits = dw_weights_hwc(&p, &w, DType::BF16).unwrap();
        assert_eq!(crate::reference::bf16_bits_to_f32(&bits), vec![1.0, 3.0, 2.0, 4.0]);
        assert!(dw_weights_hwc(&p, &w[..3], DType::F16).is_err());
        assert!(dw_weights_hwc(&p, &w, DType::F32).is_err());
    }
}
