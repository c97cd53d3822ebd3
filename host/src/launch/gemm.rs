//! Launchers for the fp32 SIMT GEMM kernels (`kernels/src/gemm.rs`): `gemm_f32` (128x128
//! tiles) and `gemv_f32` (one warp per output column, for fully connected layers at small
//! batch).
//!
//! The op is [`Gemm`] (ONNX Gemm, row-major, tight leading dimensions) plus a fused
//! activation. Its C operand maps onto the kernel as follows:
//! * [`GemmC::None`]: `Y = act(alpha * A'B')`; `beta` is ignored.
//! * [`GemmC::PerColumn`] (a Linear layer's bias): the bias buffer, added unscaled, so
//!   `beta` must be 1.
//! * [`GemmC::Full`]: `c` holds C on entry and Y on return (`Y = act(alpha * A'B' + beta * C)`).
//! * [`GemmC::Scalar`], [`GemmC::PerRow`]: not supported (expand them to Full).

use cudarc::driver::{CudaView, CudaViewMut, LaunchConfig, PushKernelArg};

use super::act_fields;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{Act, DType, Gemm, GemmC, Layout};
use crate::params::{GemmParams, EPI_BIAS};
use crate::registry::{self, KernelSpec, LayerType};

/// Block tile of `gemm_f32` (rows x columns of C).
pub const TILE_M: u32 = 128;
pub const TILE_N: u32 = 128;
/// Threads per block of both kernels.
pub const THREADS: u32 = 256;
/// `gemv_f32`: output columns per block (one per warp).
pub const GEMV_COLS_PER_BLOCK: u32 = THREADS / 32;
/// The default rule sends batches up to this size to `gemv_f32` (it streams the weight
/// matrix once per 8 rows of A).
pub const GEMV_MAX_M: usize = 8;

/// `gemm_f32`: tiled SIMT GEMM.
pub const GEMM: KernelSpec = KernelSpec {
    symbol: "gemm_f32",
    layer: LayerType::Gemm,
    variant: "simt",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "256 threads/block, 128x128x8 tile (8x8 per thread), 16.9 KB static smem, \
                  grid (ceil(n / 128), ceil(m / 128))",
};

/// `gemv_f32`: one warp per output column.
pub const GEMV: KernelSpec = KernelSpec {
    symbol: "gemv_f32",
    layer: LayerType::Gemm,
    variant: "gemv",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "256 threads/block = 8 warps, one output column per warp, grid ceil(n / 8)",
};

/// This family's kernels.
pub const KERNELS: &[KernelSpec] = &[GEMM, GEMV];

/// The variant the runtime uses when none is named: `gemv` for a fully connected layer
/// (`B` transposed, `A` not) with at most [`GEMV_MAX_M`] rows, `simt` otherwise.
pub fn pick_default(g: &Gemm) -> &'static KernelSpec {
    if g.m <= GEMV_MAX_M && g.trans_b && !g.trans_a {
        &GEMV
    } else {
        &GEMM
    }
}

fn invalid(msg: String) -> Error {
    Error::Invalid(msg)
}

/// Checks that `spec` is one of this family's kernels and can run `g`.
pub fn check_supported(spec: &KernelSpec, g: &Gemm) -> Result<()> {
    g.validate().map_err(|e| invalid(e.to_string()))?;
    if !KERNELS.iter().any(|k| k.symbol == spec.symbol) {
        return Err(invalid(format!("kernel {} is not an fp32 SIMT gemm kernel", spec.symbol)));
    }
    let limit = i32::MAX as usize;
    for (what, len) in [("A", g.a_len()), ("B", g.b_len()), ("C", g.out_len())] {
        if len > limit {
            return Err(invalid(format!("gemm {what} has {len} elements; the fp32 gemm kernels need < 2^31")));
        }
    }
    match g.c {
        GemmC::None | GemmC::Full => {}
        GemmC::PerColumn if g.beta == 1.0 => {}
        GemmC::PerColumn => {
            return Err(invalid(format!(
                "gemm: a per-column C (bias) is added unscaled; beta must be 1, got {} (scale the bias instead)",
                g.beta
            )))
        }
        GemmC::Scalar | GemmC::PerRow => {
            return Err(invalid(format!("gemm: C broadcast {:?} is not supported (expand it to a full M x N C)", g.c)))
        }
    }
    if spec.variant == "gemv" && (g.trans_a || !g.trans_b) {
        return Err(invalid(format!(
            "gemm variant gemv needs A not transposed and B transposed (a Linear weight [n, k]), got trans_a {} \
             trans_b {}",
            g.trans_a, g.trans_b
        )));
    }
    if spec.variant == "simt" && g.m.div_ceil(TILE_M as usize) > 65_535 {
        return Err(invalid(format!("gemm: m = {} needs more than 65535 row tiles", g.m)));
    }
    Ok(())
}

/// The kernel parameter block (tight leading dimensions).
pub fn gemm_params(g: &Gemm, act: Act) -> GemmParams {
    let (act, act_min, act_max) = act_fields(act);
    GemmParams {
        m: g.m as u32,
        n: g.n as u32,
        k: g.k as u32,
        lda: if g.trans_a { g.m } else { g.k } as u32,
        ldb: if g.trans_b { g.k } else { g.n } as u32,
        ldc: g.n as u32,
        trans_a: g.trans_a as u32,
        trans_b: g.trans_b as u32,
        alpha: g.alpha,
        beta: if g.c == GemmC::Full { g.beta } else { 0.0 },
        epilogue: if g.c == GemmC::PerColumn { EPI_BIAS } else { 0 },
        act,
        act_min,
        act_max,
    }
}

/// Block and grid for `g` on `spec` (after [`check_supported`]).
pub fn launch_config(spec: &KernelSpec, g: &Gemm) -> Result<LaunchConfig> {
    check_supported(spec, g)?;
    let grid_dim = match spec.variant {
        "gemv" => (g.n.div_ceil(GEMV_COLS_PER_BLOCK as usize) as u32, 1, 1),
        _ => (g.n.div_ceil(TILE_N as usize) as u32, g.m.div_ceil(TILE_M as usize) as u32, 1),
    };
    Ok(LaunchConfig { grid_dim, block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 })
}

/// Device operands of a GEMM.
pub struct GemmOperands<'a> {
    /// `[m, k]`, or `[k, m]` when `trans_a`.
    pub a: CudaView<'a, f32>,
    /// `[k, n]`, or `[n, k]` when `trans_b`.
    pub b: CudaView<'a, f32>,
    /// `[n]`, present exactly when `g.c == GemmC::PerColumn`.
    pub bias: Option<CudaView<'a, f32>>,
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(invalid(format!("gemm: {what} has {got} elements, expected {want}")))
    }
}

/// Runs `g` with the fused activation `act` on `spec` (one of [`KERNELS`]) on the GPU's
/// stream. `c` (`[m, n]`) receives Y; with [`GemmC::Full`] it must hold C on entry.
/// Returns the launch configuration used.
pub fn launch(
    gpu: &Gpu,
    spec: &KernelSpec,
    g: &Gemm,
    act: Act,
    ops: &GemmOperands,
    c: &mut CudaViewMut<f32>,
) -> Result<LaunchConfig> {
    let cfg = launch_config(spec, g)?;
    act.validate().map_err(|e| invalid(e.to_string()))?;
    check_len("A", ops.a.len(), g.a_len())?;
    check_len("B", ops.b.len(), g.b_len())?;
    check_len("C", c.len(), g.out_len())?;
    match (&ops.bias, g.c == GemmC::PerColumn) {
        (Some(b), true) => check_len("bias", b.len(), g.n)?,
        (None, false) => {}
        (None, true) => return Err(invalid("gemm: a per-column C (bias) needs a bias buffer".into())),
        (Some(_), false) => return Err(invalid("gemm: a bias buffer was given but C is not per-column".into())),
    }
    let params = gemm_params(g, act);
    let f = registry::function(&gpu.module, spec.symbol)?;
    let null = 0u64;
    let mut b = gpu.stream.launch_builder(&f);
    b.arg(&params).arg(&ops.a).arg(&ops.b);
    match &ops.bias {
        Some(v) => b.arg(v),
        None => b.arg(&null),
    };
    b.arg(c);
    // SAFETY: the argument list matches `gemm_f32`/`gemv_f32` (GemmParams by value, then a,
    // b, bias, c); lengths were checked against the tight leading dimensions; the bias is
    // null exactly when EPI_BIAS is clear, and c is read only when beta != 0 (Full C).
    unsafe { b.launch(cfg) }.map_err(Error::driver("launching a gemm kernel"))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_variant_rule() {
        assert_eq!(pick_default(&Gemm::linear(1, 25088, 4096, true)).variant, "gemv");
        assert_eq!(pick_default(&Gemm::linear(8, 2048, 1000, true)).variant, "gemv");
        assert_eq!(pick_default(&Gemm::linear(9, 2048, 1000, true)).variant, "simt");
        assert_eq!(pick_default(&Gemm::new(1, 1000, 2048)).variant, "simt");
        for k in KERNELS {
            assert_eq!(registry::find(k.layer, k.variant, k.dtype, k.layout).unwrap().symbol, k.symbol);
        }
    }

    #[test]
    fn c_operand_mapping() {
        let p = gemm_params(&Gemm::linear(4, 45, 61, true), Act::Relu);
        assert_eq!((p.m, p.n, p.k, p.lda, p.ldb, p.ldc, p.trans_b), (4, 61, 45, 45, 45, 61, 1));
        assert_eq!((p.epilogue, p.beta), (EPI_BIAS, 0.0));
        let g = Gemm::new(37, 61, 45).with_trans(true, false).with_scalars(0.5, -2.0).with_c(GemmC::Full);
        let p = gemm_params(&g, Act::None);
        assert_eq!((p.lda, p.ldb, p.beta, p.alpha, p.epilogue), (37, 61, -2.0, 0.5, 0));
        // beta is ignored without C.
        assert_eq!(gemm_params(&Gemm::new(2, 3, 4).with_scalars(1.0, 3.0), Act::None).beta, 0.0);
        let e = check_supported(&GEMM, &Gemm::linear(1, 8, 8, true).with_scalars(1.0, 2.0)).unwrap_err();
        assert!(e.to_string().contains("beta must be 1"), "{e}");
        assert!(check_supported(&GEMM, &Gemm::new(2, 3, 4).with_c(GemmC::Scalar)).is_err());
        let e = check_supported(&GEMV, &Gemm::new(1, 3, 4)).unwrap_err().to_string();
        assert!(e.contains("gemv needs A not transposed and B transposed"), "{e}");
        assert!(check_supported(&GEMM, &Gemm::new(0, 3, 4)).is_err());
    }

    #[test]
    fn grids() {
        let g = Gemm::new(200, 300, 129);
        assert_eq!(launch_config(&GEMM, &g).unwrap().grid_dim, (3, 2, 1));
        let fc = Gemm::linear(1, 25088, 4096, true);
        assert_eq!(launch_config(&GEMV, &fc).unwrap().grid_dim, (512, 1, 1));
        assert_eq!(launch_config(&GEMV, &Gemm::linear(3, 45, 1001, true)).unwrap().grid_dim, (126, 1, 1));
    }
}
