//! Launchers for the fp32 SIMT conv kernels (`kernels/src/conv.rs`): NCHW activations,
//! OIHW weights, fused epilogue `y = act((conv + bias) * scale + shift + residual)`.
//!
//! [`launch`] validates the op, the variant's restrictions, the epilogue and every buffer
//! length, builds the [`ConvParams`] block, computes the grid ([`launch_config`], pure
//! and unit-tested) and launches on the GPU's stream. [`pick_default`] is the rule the
//! runtime uses when the user names no variant.

use cudarc::driver::{CudaView, CudaViewMut, LaunchConfig, PushKernelArg};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{Conv2d, DType, Epilogue, Layout};
use crate::params::{ConvParams, EPI_BIAS, EPI_RESIDUAL, EPI_SCALE_SHIFT};
use crate::registry::{self, KernelSpec, LayerType};

/// Threads per block of the tile kernels (`gemm::THREADS` on the device).
pub const TILE_THREADS: u32 = 256;
/// Square block tile (output channels x pixels) of the large and the `_64` tile kernels.
pub const TILE_LARGE: u32 = 128;
pub const TILE_SMALL: u32 = 64;
/// Threads per block of the direct kernel.
pub const DIRECT_THREADS: u32 = 256;
/// Largest grid y / z dimension.
const GRID_YZ_MAX: u32 = 65_535;

/// `conv2d_direct_f32`: the reference variant.
pub const DIRECT: KernelSpec = KernelSpec {
    symbol: "conv2d_direct_f32",
    layer: LayerType::Conv,
    variant: "direct",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "256 threads/block, one output per thread, grid ceil(outputs / 256)",
};

/// `conv2d_igemm_f32`: tiled implicit GEMM, the fp32 workhorse.
pub const IMPLICIT_GEMM: KernelSpec = KernelSpec {
    symbol: "conv2d_igemm_f32",
    layer: LayerType::Conv,
    variant: "implicit_gemm",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "256 threads/block, 128x128x8 tile (8x8 per thread), 16.9 KB static smem, \
                  grid (ceil(n*oh*ow / 128), ceil(c_out/groups / 128), groups)",
};

/// `conv2d_igemm64_f32`: the implicit GEMM with 64x64 tiles, for grids the 128x128 tile
/// leaves short of the GPU.
pub const IMPLICIT_GEMM_64: KernelSpec = KernelSpec {
    symbol: "conv2d_igemm64_f32",
    layer: LayerType::Conv,
    variant: "implicit_gemm_64",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "256 threads/block, 64x64x8 tile (4x4 per thread), 16.9 KB static smem, \
                  grid (ceil(n*oh*ow / 64), ceil(c_out/groups / 64), groups)",
};

/// `conv2d_pointwise_f32`: 1x1 stride-1 unpadded conv as a GEMM.
pub const POINTWISE: KernelSpec = KernelSpec {
    symbol: "conv2d_pointwise_f32",
    layer: LayerType::Conv,
    variant: "pointwise",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "256 threads/block, 128x128x8 tile (8x8 per thread), 16.9 KB static smem, \
                  grid (ceil(n*h*w / 128), ceil(c_out / 128), 1)",
};

/// `conv2d_pointwise64_f32`: the pointwise GEMM with 64x64 tiles.
pub const POINTWISE_64: KernelSpec = KernelSpec {
    symbol: "conv2d_pointwise64_f32",
    layer: LayerType::Conv,
    variant: "pointwise_64",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "256 threads/block, 64x64x8 tile (4x4 per thread), 16.9 KB static smem, \
                  grid (ceil(n*h*w / 64), ceil(c_out / 64), 1)",
};

/// `conv2d_depthwise_f32`: one thread per output, 3x3 unrolled.
pub const DEPTHWISE: KernelSpec = KernelSpec {
    symbol: "conv2d_depthwise_f32",
    layer: LayerType::Conv,
    variant: "depthwise",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "block (bx pixels, 256/bx planes) with bx the multiple of 32 <= 256 wasting the fewest \
                  threads on oh*ow, grid (ceil(oh*ow / bx), min(ceil(n*c_out / by), 65535))",
};

/// `conv2d_depthwise3x3s1_f32`: depthwise 3x3 with horizontal stride 1, four outputs per
/// thread.
pub const DEPTHWISE_3X3S1: KernelSpec = KernelSpec {
    symbol: "conv2d_depthwise3x3s1_f32",
    layer: LayerType::Conv,
    variant: "depthwise_3x3s1",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "as depthwise over items of 4 adjacent outputs: items = oh * ceil(ow / 4) per plane",
};

/// This family's kernels.
pub const KERNELS: &[KernelSpec] =
    &[DIRECT, IMPLICIT_GEMM, IMPLICIT_GEMM_64, POINTWISE, POINTWISE_64, DEPTHWISE, DEPTHWISE_3X3S1];

/// The variant the runtime uses when none is named, for a GPU with [`DEFAULT_SM_COUNT`]
/// SMs (H100 SXM / H200); see [`pick_for`].
pub fn pick_default(conv: &Conv2d) -> &'static KernelSpec {
    pick_for(conv, DEFAULT_SM_COUNT)
}

/// SM count [`pick_default`] assumes.
pub const DEFAULT_SM_COUNT: u32 = 132;
/// Blocks of the 128-tile kernels resident per SM (~150-160 registers x 256 threads).
const RESIDENT_LARGE: usize = 1;
/// Blocks of the 64-tile kernels resident per SM (64-80 registers x 256 threads).
const RESIDENT_SMALL: usize = 3;

/// The default variant on a GPU with `sm_count` SMs: `depthwise_3x3s1` for a depthwise
/// 3x3 conv with horizontal stride 1 and no horizontal dilation, `depthwise` for the other
/// depthwise convs;
/// otherwise `pointwise` for a 1x1 stride-1 unpadded ungrouped conv and `implicit_gemm`
/// for the rest, each in its 64x64-tile form (`_64`) when that needs fewer waves of
/// resident blocks than the 128x128 tile: a 64-tile wave does about as much work per
/// unit time as a 128-tile wave (3 resident blocks of a quarter of the work at ~75% of
/// the large tile's FMA efficiency, measured on an H200), so the wave count decides, and
/// on equal counts the 64 tile wins when the 128 grid cannot fill every SM. Small
/// batches, late layers and 64-channel layers go to the 64 tile; large grids stay on 128.
pub fn pick_for(conv: &Conv2d, sm_count: u32) -> &'static KernelSpec {
    if conv.is_depthwise() {
        return if is_3x3s1(conv) { &DEPTHWISE_3X3S1 } else { &DEPTHWISE };
    }
    let (oh, ow) = conv.out_hw();
    let (m, npix) = (conv.c_out / conv.groups.max(1), conv.n * oh * ow);
    let blocks = |tile: usize| m.div_ceil(tile) * npix.div_ceil(tile) * conv.groups;
    let waves = |blocks: usize, resident: usize| blocks.div_ceil(resident * sm_count.max(1) as usize);
    let (large, small) = (waves(blocks(128), RESIDENT_LARGE), waves(blocks(64), RESIDENT_SMALL));
    // Equal wave counts: the small tile still wins when the large grid leaves SMs idle.
    let small = small < large || (small == large && blocks(128) < sm_count as usize);
    match (conv.is_pointwise() && conv.groups == 1, small) {
        (true, false) => &POINTWISE,
        (true, true) => &POINTWISE_64,
        (false, false) => &IMPLICIT_GEMM,
        (false, true) => &IMPLICIT_GEMM_64,
    }
}

fn invalid(msg: String) -> Error {
    Error::Invalid(msg)
}

fn shape(c: &Conv2d) -> String {
    format!(
        "{}x{} stride {}x{} pads (t {}, l {}, b {}, r {}) groups {}",
        c.kh, c.kw, c.stride_h, c.stride_w, c.pad_t, c.pad_l, c.pad_b, c.pad_r, c.groups
    )
}

/// Checks that `spec` is one of this family's kernels and can run `conv`: the op is valid,
/// the variant supports the shape, every tensor has fewer than 2^31 elements and the grid
/// fits the hardware limits.
pub fn check_supported(spec: &KernelSpec, conv: &Conv2d) -> Result<()> {
    conv.validate().map_err(|e| invalid(e.to_string()))?;
    if !KERNELS.iter().any(|k| k.symbol == spec.symbol) {
        return Err(invalid(format!("kernel {} is not an fp32 SIMT conv kernel", spec.symbol)));
    }
    let limit = i32::MAX as usize;
    for (what, len) in [("input", conv.in_len()), ("weights", conv.weight_len()), ("output", conv.out_len())] {
        if len > limit {
            return Err(invalid(format!("conv {what} has {len} elements; the fp32 conv kernels need < 2^31")));
        }
    }
    match spec.variant {
        "pointwise" | "pointwise_64" if !(conv.is_pointwise() && conv.groups == 1) => Err(invalid(format!(
            "conv variant {} needs a 1x1 stride-1 unpadded ungrouped kernel, got {}",
            spec.variant,
            shape(conv)
        ))),
        "depthwise" | "depthwise_3x3s1" if !conv.is_depthwise() => Err(invalid(format!(
            "conv variant {} needs groups == c_in (c_out a multiple of c_in), got c_in {} c_out {} groups {}",
            spec.variant, conv.c_in, conv.c_out, conv.groups
        ))),
        "depthwise_3x3s1" if !is_3x3s1(conv) => Err(invalid(format!(
            "conv variant depthwise_3x3s1 needs a 3x3 kernel with horizontal stride 1 and dilation 1, got {} \
             dilation {}x{}",
            shape(conv),
            conv.dil_h,
            conv.dil_w
        ))),
        "implicit_gemm" | "implicit_gemm_64" if conv.groups > GRID_YZ_MAX as usize => Err(invalid(format!(
            "conv variant {} runs one grid z slice per group: {} groups > {GRID_YZ_MAX}",
            spec.variant, conv.groups
        ))),
        _ => Ok(()),
    }
}

/// The kernel parameter block for `conv` with epilogue `epi`.
pub fn conv_params(conv: &Conv2d, epi: &Epilogue) -> ConvParams {
    let (oh, ow) = conv.out_hw();
    let (act, act_min, act_max) = super::act_fields(epi.act);
    let flags = if epi.bias { EPI_BIAS } else { 0 }
        | if epi.scale_shift { EPI_SCALE_SHIFT } else { 0 }
        | if epi.residual { EPI_RESIDUAL } else { 0 };
    ConvParams {
        n: conv.n as u32,
        c_in: conv.c_in as u32,
        h: conv.h as u32,
        w: conv.w as u32,
        c_out: conv.c_out as u32,
        out_h: oh as u32,
        out_w: ow as u32,
        kh: conv.kh as u32,
        kw: conv.kw as u32,
        stride_h: conv.stride_h as u32,
        stride_w: conv.stride_w as u32,
        // Bottom/right padding is already in out_h/out_w.
        pad_h: conv.pad_t as u32,
        pad_w: conv.pad_l as u32,
        dil_h: conv.dil_h as u32,
        dil_w: conv.dil_w as u32,
        groups: conv.groups as u32,
        epilogue: flags,
        act,
        act_min,
        act_max,
    }
}

/// Work items per depthwise block row: the multiple of 32 up to 256 that wastes the fewest
/// threads on a plane of `items` work items (ties go to the larger block).
pub fn depthwise_block_x(items: usize) -> u32 {
    (1..=8u32)
        .map(|i| 32 * i)
        .min_by_key(|&bx| (items.div_ceil(bx as usize) * bx as usize, u32::MAX - bx))
        .unwrap_or(256)
}

/// 3x3 window, horizontal stride 1, no horizontal dilation: `depthwise_3x3s1`'s domain.
fn is_3x3s1(conv: &Conv2d) -> bool {
    conv.kh == 3 && conv.kw == 3 && conv.stride_w == 1 && conv.dil_w == 1
}

/// Work items per output plane of a depthwise kernel: groups of 4 adjacent outputs of a
/// row for `depthwise_3x3s1`, single outputs for `depthwise`.
pub fn depthwise_items_per_plane(spec: &KernelSpec, conv: &Conv2d) -> usize {
    let (oh, ow) = conv.out_hw();
    if spec.variant == "depthwise_3x3s1" {
        oh * ow.div_ceil(4)
    } else {
        oh * ow
    }
}

/// Block tile edge of a tile kernel.
fn tile_of(spec: &KernelSpec) -> u32 {
    if spec.variant.ends_with("_64") {
        TILE_SMALL
    } else {
        TILE_LARGE
    }
}

/// Block and grid for running `conv` on `spec` (after [`check_supported`]).
pub fn launch_config(spec: &KernelSpec, conv: &Conv2d) -> Result<LaunchConfig> {
    check_supported(spec, conv)?;
    let (oh, ow) = conv.out_hw();
    let npix = conv.n * oh * ow;
    let tiles = |len: usize, tile: u32| len.div_ceil(tile as usize) as u32;
    let cfg = match spec.variant {
        "direct" => LaunchConfig {
            grid_dim: (tiles(conv.out_len(), DIRECT_THREADS), 1, 1),
            block_dim: (DIRECT_THREADS, 1, 1),
            shared_mem_bytes: 0,
        },
        "implicit_gemm" | "pointwise" | "implicit_gemm_64" | "pointwise_64" => {
            let tile = tile_of(spec);
            let m_tiles = tiles(conv.c_out / conv.groups, tile);
            if m_tiles > GRID_YZ_MAX {
                return Err(invalid(format!(
                    "conv: {} output channels per group need more than 65535 tiles",
                    conv.c_out
                )));
            }
            LaunchConfig {
                grid_dim: (tiles(npix, tile), m_tiles, conv.groups as u32),
                block_dim: (TILE_THREADS, 1, 1),
                shared_mem_bytes: 0,
            }
        }
        "depthwise" | "depthwise_3x3s1" => {
            let items = depthwise_items_per_plane(spec, conv);
            let bx = depthwise_block_x(items);
            let by = (256 / bx).max(1);
            LaunchConfig {
                grid_dim: (tiles(items, bx), tiles(conv.n * conv.c_out, by).min(GRID_YZ_MAX), 1),
                block_dim: (bx, by, 1),
                shared_mem_bytes: 0,
            }
        }
        v => return Err(invalid(format!("conv variant {v} has no launch rule"))),
    };
    Ok(cfg)
}

/// Device operands of a conv. Epilogue operands are present exactly when the
/// [`Epilogue`] asks for them (`scale` and `shift` together).
pub struct ConvOperands<'a> {
    /// `[n, c_in, h, w]`.
    pub x: CudaView<'a, f32>,
    /// `[c_out, c_in / groups, kh, kw]`.
    pub w: CudaView<'a, f32>,
    /// `[c_out]` each.
    pub bias: Option<CudaView<'a, f32>>,
    pub scale: Option<CudaView<'a, f32>>,
    pub shift: Option<CudaView<'a, f32>>,
    /// Shaped like the output.
    pub residual: Option<CudaView<'a, f32>>,
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(invalid(format!("conv: {what} has {got} elements, expected {want}")))
    }
}

/// Checks the operands against the op and the epilogue.
pub fn check_operands(conv: &Conv2d, epi: &Epilogue, ops: &ConvOperands, y_len: usize) -> Result<()> {
    epi.act.validate().map_err(|e| invalid(e.to_string()))?;
    check_len("input", ops.x.len(), conv.in_len())?;
    check_len("weights", ops.w.len(), conv.weight_len())?;
    check_len("output", y_len, conv.out_len())?;
    let pairs = [
        ("bias", epi.bias, &ops.bias, conv.c_out),
        ("scale", epi.scale_shift, &ops.scale, conv.c_out),
        ("shift", epi.scale_shift, &ops.shift, conv.c_out),
        ("residual", epi.residual, &ops.residual, conv.out_len()),
    ];
    for (what, wanted, buf, len) in pairs {
        match (wanted, buf) {
            (true, Some(b)) => check_len(what, b.len(), len)?,
            (false, None) => {}
            (true, None) => return Err(invalid(format!("conv: the epilogue uses {what} but no buffer was given"))),
            (false, Some(_)) => {
                return Err(invalid(format!("conv: a {what} buffer was given but the epilogue does not use it")))
            }
        }
    }
    Ok(())
}

/// Runs `conv` with `spec` (one of [`KERNELS`]) on the GPU's stream: `y = epilogue(conv(x, w))`.
/// Returns the launch configuration used. Errors (no launch) on an invalid op, a shape the
/// variant does not support, or mismatched buffers.
pub fn launch(
    gpu: &Gpu,
    spec: &KernelSpec,
    conv: &Conv2d,
    epi: &Epilogue,
    ops: &ConvOperands,
    y: &mut CudaViewMut<f32>,
) -> Result<LaunchConfig> {
    let cfg = launch_config(spec, conv)?;
    check_operands(conv, epi, ops, y.len())?;
    let params = conv_params(conv, epi);
    let f = registry::function(&gpu.module, spec.symbol)?;
    let null = 0u64;
    let mut b = gpu.stream.launch_builder(&f);
    b.arg(&params).arg(&ops.x).arg(&ops.w);
    for o in [&ops.bias, &ops.scale, &ops.shift, &ops.residual] {
        match o {
            Some(v) => b.arg(v),
            None => b.arg(&null),
        };
    }
    b.arg(y);
    // SAFETY: the argument list matches the kernels' signature (ConvParams by value, then
    // x, w, bias, scale, shift, residual, y); every buffer's length was checked against the
    // shape, absent operands are null and not read (their flags are clear).
    unsafe { b.launch(cfg) }.map_err(Error::driver("launching a conv kernel"))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Act;
    use crate::params::ACT_CLIP;

    #[test]
    fn default_variant_rule() {
        // Large grids (batch 32, 128 output channels, 56x56: 784 blocks of 128x128).
        assert_eq!(pick_default(&Conv2d::new(32, 256, 56, 56, 128, 1, 1)).variant, "pointwise");
        assert_eq!(pick_default(&Conv2d::new(32, 128, 56, 56, 256, 3, 3).with_pad(1, 1)).variant, "implicit_gemm");
        // 64 output channels waste half a 128 tile: 6 waves of 128 vs 4 of 64.
        assert_eq!(pick_default(&Conv2d::new(32, 256, 56, 56, 64, 1, 1)).variant, "pointwise_64");
        // Two waves either way (196 blocks of 128, 784 of 64), every SM busy: stay large.
        assert_eq!(pick_default(&Conv2d::new(8, 256, 28, 28, 512, 1, 1)).variant, "pointwise");
        // Late layers at batch 32: 52 blocks of 128 leave 80 SMs idle; 200 blocks of 64
        // also fit one wave.
        let late = Conv2d::new(32, 512, 7, 7, 512, 3, 3).with_pad(1, 1);
        assert_eq!(pick_default(&late).variant, "implicit_gemm_64");
        // 104 blocks of 128 (one wave) vs 400 of 64 (two): stay large.
        assert_eq!(pick_default(&Conv2d::new(8, 256, 14, 14, 1024, 3, 3).with_pad(1, 1)).variant, "implicit_gemm");
        // Batch 1 ResNet-50 layers all go small.
        for (label, c, _) in crate::shapes::resnet50_convs(1) {
            assert!(pick_default(&c).variant.ends_with("_64"), "{label}");
        }
        assert_eq!(pick_for(&late, 132).variant, pick_default(&late).variant);
        // Strided or grouped 1x1 convs are not pointwise GEMMs.
        let ds = Conv2d::new(32, 256, 56, 56, 512, 1, 1).with_stride(2, 2);
        assert_eq!(pick_default(&ds).variant, "implicit_gemm");
        assert!(pick_default(&Conv2d::new(1, 64, 8, 8, 64, 1, 1).with_groups(4)).variant.starts_with("implicit_gemm"));
        assert_eq!(pick_default(&Conv2d::depthwise(1, 144, 56, 56, 3, 3).with_pad(1, 1)).variant, "depthwise_3x3s1");
        for k in KERNELS {
            let f = registry::find(k.layer, k.variant, k.dtype, k.layout).unwrap();
            assert_eq!(f.symbol, k.symbol);
        }
    }

    #[test]
    fn variant_restrictions_have_clear_errors() {
        let c3 = Conv2d::new(1, 8, 9, 9, 8, 3, 3).with_pad(1, 1);
        let e = check_supported(&POINTWISE, &c3).unwrap_err().to_string();
        assert!(e.starts_with("conv variant pointwise needs a 1x1 stride-1 unpadded ungrouped kernel, got 3x3"), "{e}");
        let e = check_supported(&DEPTHWISE, &c3).unwrap_err().to_string();
        assert!(e.contains("depthwise needs groups == c_in"), "{e}");
        for k in [&DIRECT, &IMPLICIT_GEMM] {
            check_supported(k, &c3).unwrap();
            check_supported(k, &Conv2d::depthwise(1, 8, 9, 9, 3, 3)).unwrap();
        }
        // Channel multiplier 2 is still depthwise.
        check_supported(&DEPTHWISE, &Conv2d::new(1, 8, 9, 9, 16, 3, 3).with_groups(8)).unwrap();
        // Invalid ops are rejected before anything else.
        let e = check_supported(&DIRECT, &Conv2d::new(1, 6, 9, 9, 8, 3, 3).with_groups(4)).unwrap_err();
        assert!(e.to_string().contains("not divisible"), "{e}");
        let huge = Conv2d::new(64, 64, 1024, 1024, 64, 3, 3);
        assert!(check_supported(&IMPLICIT_GEMM, &huge).unwrap_err().to_string().contains("< 2^31"));
        let mut other = DIRECT;
        other.symbol = "gemm_f32";
        assert!(check_supported(&other, &c3).is_err());
    }

    #[test]
    fn grids_cover_the_outputs() {
        // ResNet-50 layer1 3x3 at batch 2: N = 2*56*56 = 6272 -> 49 tiles, M = 64 -> 1.
        let c = Conv2d::new(2, 64, 56, 56, 64, 3, 3).with_pad(1, 1);
        let g = launch_config(&IMPLICIT_GEMM, &c).unwrap();
        assert_eq!((g.grid_dim, g.block_dim), ((49, 1, 1), (256, 1, 1)));
        // Grouped: grid z = groups, M per group = 70/2 = 35 -> 1 tile; N = 13*11 = 143 -> 2.
        let c = Conv2d::new(1, 4, 13, 11, 70, 3, 3).with_pad(1, 1).with_groups(2);
        assert_eq!(launch_config(&IMPLICIT_GEMM, &c).unwrap().grid_dim, (2, 1, 2));
        // 300 output channels -> 3 M tiles.
        let c = Conv2d::new(1, 16, 7, 7, 300, 1, 1);
        assert_eq!(launch_config(&POINTWISE, &c).unwrap().grid_dim, (1, 3, 1));
        // Direct: one thread per output.
        let c = Conv2d::new(1, 3, 7, 5, 5, 3, 3);
        let g = launch_config(&DIRECT, &c).unwrap();
        assert!(g.grid_dim.0 * g.block_dim.0 >= c.out_len() as u32);
        assert_eq!(g.grid_dim.0, 1);
    }

    #[test]
    fn depthwise_blocks_fit_the_plane() {
        // 7x7 = 49 pixels: 64-wide blocks, 4 planes each.
        assert_eq!(depthwise_block_x(49), 64);
        // 14x14 = 196: 224 wastes 28 threads (256 wastes 60).
        assert_eq!(depthwise_block_x(196), 224);
        // 28x28 = 784: 160 x 5 = 800 beats 224 x 4 = 896 and 256 x 4 = 1024.
        assert_eq!(depthwise_block_x(784), 160);
        // Exact multiples of 256 keep 256.
        assert_eq!(depthwise_block_x(3136), 224);
        assert_eq!(depthwise_block_x(1024), 256);
        for ohw in 1..2000 {
            let bx = depthwise_block_x(ohw);
            assert!(bx.is_multiple_of(32) && (32..=256).contains(&bx));
        }
        // 7x7 = 49 pixels: 64-wide blocks, 4 planes each.
        let c = Conv2d::depthwise(4, 960, 7, 7, 3, 3).with_pad(1, 1);
        let g = launch_config(&DEPTHWISE, &c).unwrap();
        assert_eq!((g.block_dim, g.grid_dim), ((64, 4, 1), (1, 960, 1)));
        // 3x3 stride 1, 4 outputs per item: 7 rows x 2 = 14 items -> 32 x 8 blocks.
        assert_eq!(depthwise_items_per_plane(&DEPTHWISE_3X3S1, &c), 14);
        let g = launch_config(&DEPTHWISE_3X3S1, &c).unwrap();
        assert_eq!((g.block_dim, g.grid_dim), ((32, 8, 1), (1, 480, 1)));
        // Vertical stride is fine for 3x3s1, horizontal stride or dilation is not.
        assert_eq!(depthwise_items_per_plane(&DEPTHWISE_3X3S1, &c.with_stride(2, 1)), 4 * 2);
        check_supported(&DEPTHWISE_3X3S1, &c.with_stride(2, 1).with_dilation(2, 1).with_pad(2, 1)).unwrap();
        let e = check_supported(&DEPTHWISE_3X3S1, &c.with_stride(2, 2)).unwrap_err().to_string();
        assert!(e.contains("depthwise_3x3s1 needs a 3x3 kernel with horizontal stride 1"), "{e}");
        assert!(check_supported(&DEPTHWISE_3X3S1, &Conv2d::depthwise(1, 8, 7, 7, 5, 5)).is_err());
        assert_eq!(depthwise_items_per_plane(&DEPTHWISE, &c.with_stride(2, 1)), 4 * 7);
        assert_eq!(pick_default(&c).variant, "depthwise_3x3s1");
        assert_eq!(pick_default(&c.with_stride(2, 2)).variant, "depthwise");
        // Many planes: grid y is capped, the kernel loops.
        let c = Conv2d::depthwise(256, 960, 7, 7, 3, 3).with_pad(1, 1);
        assert_eq!(launch_config(&DEPTHWISE, &c).unwrap().grid_dim.1, 61_440);
        let c = Conv2d::depthwise(512, 960, 7, 7, 3, 3).with_pad(1, 1);
        assert_eq!(launch_config(&DEPTHWISE, &c).unwrap().grid_dim.1, 65_535);
    }

    #[test]
    fn params_block_carries_the_shape() {
        let c = Conv2d::new(2, 4, 10, 7, 6, 3, 3).with_stride(2, 1).with_pads(0, 2, 1, 0).with_groups(2);
        let epi = Epilogue { bias: true, scale_shift: false, act: Act::RELU6, residual: true };
        let p = conv_params(&c, &epi);
        assert_eq!((p.out_h, p.out_w, p.pad_h, p.pad_w, p.groups), (5, 7, 0, 2, 2));
        assert_eq!(p.epilogue, EPI_BIAS | EPI_RESIDUAL);
        assert_eq!((p.act, p.act_min, p.act_max), (ACT_CLIP, 0.0, 6.0));
    }
}
