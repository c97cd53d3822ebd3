//! Launcher for the small-batch GEMM (`kernels/src/smallm.rs`): fully connected layers
//! at `M <= 8` in f16/bf16, streaming the `[n, k]` weight once with the batch on the
//! tensor cores' 8-wide side. Same contract as [`tensorcore::gemm`] ([`GemmTc`]: `c =
//! act(alpha · a · bᵀ + beta · c + bias)`, `a [m, k]`, `b [n, k]`, `c [m, n]` with
//! leading dimensions, 16-bit data in `u16` buffers, f32 bias).
//!
//! Launch rule ([`config`]): grid `ceil(n / 16)` blocks (16 output features each), block
//! `32·w` threads with `w` = [`warps`] warps splitting K between them: enough for about
//! 16 resident warps per SM, at most 16, and no more than one per 4 K slices (32
//! elements each). VGG-16's 25088 → 4096 on 132 SMs: 256 blocks of 9 warps; the
//! 4096 → 1000 classifier: 63 blocks of 16 warps. No dynamic shared memory, no
//! workspace.
//!
//! [`gemm_fc`] is the entry point for a Linear layer: this kernel when [`applies`]
//! (`m <= 8`, f16/bf16), [`tensorcore::gemm_auto`] otherwise, with `gemm_auto`'s
//! signature; [`fc_workspace_len`] sizes the split-K workspace it may need.

use cudarc::driver::{CudaView, CudaViewMut, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg};

use super::tensorcore::{self, GemmTc, Launched, TcElem};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{DType, Layout};
use crate::registry::{self, KernelSpec, LayerType};

/// Largest batch (`m`) the kernels take; mirrors `smallm::SMALLM_MAX_M`.
pub const MAX_M: usize = 8;
/// Output features per block; mirrors `smallm::SMALLM_ROWS`.
pub const ROWS: usize = 16;
/// Most warps per block; mirrors `smallm::SMALLM_MAX_WARPS`.
pub const MAX_WARPS: usize = 16;
/// K elements per slice (one warp's unit of K work).
const SLICE: usize = 32;
/// Slices a warp consumes per step of its main loop.
const UNROLL: usize = 4;

const RULE: &str = "M <= 8: grid ceil(N/16) blocks of 16 output features, block 32*W threads with W warps splitting K \
                    (W = ceil(16*SMs / blocks) clamped to 1..=16 and to K/128), mma m16n8k16 with the batch as N, \
                    weight read once with 16-byte loads, cross-warp sum in 8 KiB static smem";

const fn spec(symbol: &'static str, dtype: DType) -> KernelSpec {
    KernelSpec { symbol, layer: LayerType::Gemm, variant: "smallm", dtype, layout: Layout::Nhwc, launch_rule: RULE }
}

/// This family's kernels (registered beside the tensor-core GEMMs, `Layout::Nhwc`).
pub const KERNELS: &[KernelSpec] = &[spec("gemm_smallm_f16", DType::F16), spec("gemm_smallm_bf16", DType::BF16)];

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// Whether [`gemm_fc`] runs this kernel for `dtype` and `g`: 16-bit data, `1 <= m <= 8`.
pub fn applies(dtype: DType, g: &GemmTc) -> bool {
    matches!(dtype, DType::F16 | DType::BF16) && (1..=MAX_M).contains(&g.m)
}

/// Warps per block for `g` on `sm_count` SMs (see the module docs).
pub fn warps(g: &GemmTc, sm_count: u32) -> usize {
    let blocks = g.n.div_ceil(ROWS).max(1);
    let per_warp_floor = g.k.div_ceil(SLICE * UNROLL).max(1);
    (16 * sm_count.max(1) as usize).div_ceil(blocks).clamp(1, MAX_WARPS).min(per_warp_floor)
}

/// The launch configuration with `warps` warps per block (1..=[`MAX_WARPS`]).
pub fn config_with(g: &GemmTc, warps: usize) -> Result<LaunchConfig> {
    if !(1..=MAX_WARPS).contains(&warps) {
        return Err(invalid(format!("gemm smallm: warps per block must be 1..={MAX_WARPS}, got {warps}")));
    }
    let blocks = g.n.div_ceil(ROWS);
    if blocks == 0 || blocks > i32::MAX as usize {
        return Err(invalid(format!("gemm smallm: n = {} needs {blocks} blocks", g.n)));
    }
    Ok(LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (32 * warps as u32, 1, 1), shared_mem_bytes: 0 })
}

/// The launch rule's configuration for `g` on `sm_count` SMs.
pub fn config(g: &GemmTc, sm_count: u32) -> Result<LaunchConfig> {
    config_with(g, warps(g, sm_count))
}

fn symbol(dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F16 => Ok("gemm_smallm_f16"),
        DType::BF16 => Ok("gemm_smallm_bf16"),
        DType::F32 => Err(invalid("gemm smallm: f16/bf16 only (f32 data goes to the tensor-core GEMM)")),
    }
}

/// Launches the small-batch GEMM on `gpu.stream` (asynchronous) with the launch rule's
/// warp count; see [`GemmTc`] for the operands. Needs `1 <= m <= 8` and f16/bf16.
pub fn gemm_smallm<T: TcElem>(
    gpu: &Gpu,
    dtype: DType,
    g: &GemmTc,
    a: &CudaView<T>,
    b: &CudaView<T>,
    bias: Option<&CudaView<f32>>,
    c: &mut CudaViewMut<T>,
) -> Result<Launched> {
    gemm_smallm_with(gpu, dtype, g, warps(g, gpu.info.sm_count), a, b, bias, c)
}

/// [`gemm_smallm`] with an explicit warp count per block (1..=[`MAX_WARPS`]); the
/// self-test uses it to cover every cross-warp reduction width.
#[allow(clippy::too_many_arguments)]
pub fn gemm_smallm_with<T: TcElem>(
    gpu: &Gpu,
    dtype: DType,
    g: &GemmTc,
    warps: usize,
    a: &CudaView<T>,
    b: &CudaView<T>,
    bias: Option<&CudaView<f32>>,
    c: &mut CudaViewMut<T>,
) -> Result<Launched> {
    let symbol = symbol(dtype)?;
    if !T::holds(dtype) {
        return Err(invalid(format!("gemm smallm: {dtype} data must be in u16 buffers (bit patterns)")));
    }
    if !(1..=MAX_M).contains(&g.m) {
        return Err(invalid(format!("gemm smallm: m must be 1..={MAX_M}, got {}", g.m)));
    }
    // Sizes, pitches, scalars, the activation, the 2^31 limits.
    let params = tensorcore::gemm_params(g, bias.is_some())?;
    let (la, lb, lc) = g.lens();
    for (what, got, want) in [("A", a.len(), la), ("B", b.len(), lb), ("C", c.len(), lc)] {
        if got < want {
            return Err(invalid(format!("gemm smallm: {what} has {got} elements, needs at least {want}")));
        }
    }
    if let Some(bias) = bias {
        if bias.len() != g.n {
            return Err(invalid(format!("gemm smallm: bias has {} elements, expected {}", bias.len(), g.n)));
        }
    }
    let cfg = config_with(g, warps)?;
    let f = registry::function(&gpu.module, symbol)?;
    let (ap, _ga) = a.device_ptr(&gpu.stream);
    let (bp, _gb) = b.device_ptr(&gpu.stream);
    let (biasp, _gbias) = match bias {
        Some(v) => {
            let (p, guard) = v.device_ptr(&gpu.stream);
            (p, Some(guard))
        }
        None => (0, None),
    };
    let (cp, _gc) = c.device_ptr_mut(&gpu.stream);
    for (what, p) in [("A", ap), ("B", bp), ("bias", biasp), ("C", cp)] {
        if p % 16 != 0 {
            return Err(invalid(format!("gemm smallm: {what} at {p:#x} is not 16-byte aligned")));
        }
    }
    // A and B are read through the non-coherent cache: C must not alias them.
    let es = std::mem::size_of::<T>() as u64;
    let c_range = cp..cp + lc as u64 * es;
    for (what, p, len) in [("A", ap, la), ("B", bp, lb)] {
        if p < c_range.end && c_range.start < p + len as u64 * es {
            return Err(invalid(format!("gemm smallm: C overlaps {what}")));
        }
    }
    let mut lb = gpu.stream.launch_builder(&f);
    lb.arg(&params).arg(&ap).arg(&bp).arg(&biasp).arg(&cp);
    // SAFETY: matches `gemm_smallm_*` in kernels/src/smallm.rs (GemmParams by value,
    // then a, b, bias, c); m, sizes, pitches, alignment and the block shape checked above;
    // the guards keep the buffers' events alive until the launch is enqueued.
    unsafe { lb.launch(cfg) }.map_err(Error::driver("launching the small-batch gemm"))?;
    Ok(Launched { symbol, cfg })
}

/// A fully connected layer with [`tensorcore::gemm_auto`]'s signature: the small-batch
/// kernel when [`applies`] (the workspace is then unused), `gemm_auto` (tensor-core
/// GEMM, split-K when a big enough workspace is given) otherwise.
#[allow(clippy::too_many_arguments)]
pub fn gemm_fc<T: TcElem>(
    gpu: &Gpu,
    dtype: DType,
    g: &GemmTc,
    a: &CudaView<T>,
    b: &CudaView<T>,
    bias: Option<&CudaView<f32>>,
    workspace: Option<&mut CudaViewMut<f32>>,
    c: &mut CudaViewMut<T>,
) -> Result<Launched> {
    if applies(dtype, g) {
        gemm_smallm(gpu, dtype, g, a, b, bias, c)
    } else {
        tensorcore::gemm_auto(gpu, dtype, g, a, b, bias, workspace, c)
    }
}

/// f32 elements of split-K workspace [`gemm_fc`] wants for `g` on `sm_count` SMs:
/// `None` when it needs none (small batch, or the tiles fill the SMs).
pub fn fc_workspace_len(dtype: DType, g: &GemmTc, sm_count: u32) -> Option<usize> {
    if applies(dtype, g) {
        return None;
    }
    let s = tensorcore::splitk_splits(dtype, g, sm_count);
    (s >= 2).then(|| tensorcore::splitk_workspace_len(dtype, g, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Act;

    #[test]
    fn applies_to_small_batches_of_16_bit_data_only() {
        for m in 1..=8 {
            assert!(applies(DType::F16, &GemmTc::new(m, 1000, 4096)), "{m}");
            assert!(applies(DType::BF16, &GemmTc::new(m, 7, 5)), "{m}");
        }
        assert!(!applies(DType::F16, &GemmTc::new(9, 1000, 4096)));
        assert!(!applies(DType::F16, &GemmTc::new(64, 1000, 4096)));
        assert!(!applies(DType::F32, &GemmTc::new(1, 1000, 4096)));
    }

    #[test]
    fn launch_rule_on_the_classifiers() {
        // VGG-16 fc6 on 132 SMs: 4096 / 16 = 256 blocks; 16 * 132 = 2112 warps wanted
        // -> ceil(2112 / 256) = 9 per block.
        let fc6 = GemmTc::new(1, 4096, 25088).with_act(Act::Relu);
        assert_eq!(warps(&fc6, 132), 9);
        let cfg = config(&fc6, 132).unwrap();
        assert_eq!((cfg.grid_dim, cfg.block_dim, cfg.shared_mem_bytes), ((256, 1, 1), (288, 1, 1), 0));
        // fc8: ceil(1000 / 16) = 63 blocks; 2112 / 63 -> 34, clamped to 16.
        let fc8 = GemmTc::new(8, 1000, 4096);
        assert_eq!(warps(&fc8, 132), 16);
        assert_eq!(config(&fc8, 132).unwrap().grid_dim, (63, 1, 1));
        // Short K: 100 elements = 4 slices, one warp step -> 1 warp.
        assert_eq!(warps(&GemmTc::new(3, 5, 100), 132), 1);
        // 129 elements = 5 slices -> 2 warps.
        assert_eq!(warps(&GemmTc::new(3, 5, 129), 132), 2);
        // Many rows: at least one warp.
        assert_eq!(warps(&GemmTc::new(1, 1 << 20, 4096), 132), 1);
    }

    #[test]
    fn config_rejects_bad_warp_counts() {
        let g = GemmTc::new(1, 17, 64);
        assert!(config_with(&g, 0).is_err());
        assert!(config_with(&g, 17).is_err());
        let c = config_with(&g, 16).unwrap();
        assert_eq!((c.grid_dim.0, c.block_dim.0), (2, 512));
    }

    #[test]
    fn workspace_only_for_the_tensor_core_path() {
        assert_eq!(fc_workspace_len(DType::F16, &GemmTc::new(8, 4096, 25088), 132), None);
        let big = GemmTc::new(64, 4096, 25088);
        let s = tensorcore::splitk_splits(DType::F16, &big, 132);
        assert!(s >= 2);
        assert_eq!(
            fc_workspace_len(DType::F16, &big, 132),
            Some(tensorcore::splitk_workspace_len(DType::F16, &big, s))
        );
    }

    #[test]
    fn registered_once_per_dtype() {
        for dt in [DType::F16, DType::BF16] {
            let k = registry::find(LayerType::Gemm, "smallm", dt, Layout::Nhwc).expect("registered");
            assert_eq!(k.symbol, symbol(dt).unwrap());
        }
        assert!(symbol(DType::F32).is_err());
    }
}
