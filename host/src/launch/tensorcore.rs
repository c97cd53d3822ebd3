//! Launchers for the tensor-core kernels (`kernels/src/tensorcore.rs`): implicit-GEMM
//! convolution on NHWC activations with OHWI weights, and GEMM / fully connected with a
//! `[n, k]` weight, both with `mma.sync` (f16/bf16 → f32, or tf32 for f32 data) and a
//! fused epilogue.
//!
//! Data types: f16/bf16 tensors are `u16` device buffers holding the bits; outputs
//! (conv `y`, GEMM `c`) have the input type, the epilogue is computed in f32 and rounded
//! once; bias/scale/shift are always f32. The f32 kernels (`*_tf32*`) round A and B to
//! tf32 (`cvt.rna`) on their way into the tensor cores and keep everything else in f32.
//!
//! Kernel choice: the fast kernels need every 16-byte chunk of K to be one aligned vector
//! (`c_in % 8 == 0` for 16-bit data, `% 4` for f32; GEMM: `k`, `lda`, `ldb` likewise);
//! other shapes (ResNet's first conv, `c_in = 3`) go to the `*_gather` kernels, which
//! load element by element but keep K packed, so no padded copy of the input or the
//! weights is needed. Convs with `c_out <= 64` on the fast path use the 256 × 64 tile
//! (`*_n64`) instead of 128 × 128, which would leave half of every block idle. All are
//! registered (`implicit_gemm_tc`, `implicit_gemm_tc_n64`, `implicit_gemm_tc_gather`;
//! GEMM `tc` / `tc_gather`); [`conv2d`] and [`gemm`] pick the right one for the shape.
//!
//! Launch rule: one block of 128 threads per output tile ([`Tile`]), `ceil(M/bm) ·
//! ceil(N/bn)` blocks on a 1-D grid (N tile fastest), [`Tile::smem_bytes`] of dynamic
//! shared memory (68 KiB for 128 × 128, 80 KiB for 256 × 64; the function's
//! `MAX_DYNAMIC_SHARED_SIZE_BYTES` is raised before each launch).
//!
//! Not supported (rejected with an error): grouped/depthwise convolutions (the SIMT
//! kernels cover them), transposed GEMM operands other than `trans_b`, device pointers
//! not 16-byte aligned, tensors of 2^31 elements or more.

use cudarc::driver::sys::CUfunction_attribute_enum as FnAttr;
use cudarc::driver::{
    CudaView, CudaViewMut, DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PushKernelArg, SyncOnDrop,
};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{Act, Conv2d, DType, Epilogue, Gemm, GemmC, Layout};
use crate::params::{ConvParams, GemmParams, EPI_BIAS};
use crate::reference;
use crate::registry::{self, KernelSpec, LayerType};

/// Threads per block; mirrors `tensorcore::THREADS`.
pub const THREADS: u32 = 128;

/// A block tile shape and its dynamic shared memory (mirrors `tensorcore::smem_bytes`:
/// the larger of the 4-stage pipeline, 4 × (bm + bn) rows × 64 B, and the epilogue's
/// staged bm × (bn + 8) f32 tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub bm: usize,
    pub bn: usize,
}

impl Tile {
    /// 128 × 128, warps 2 × 2: every kernel.
    pub const T128X128: Tile = Tile { bm: 128, bn: 128 };
    /// 256 × 64, warps 4 × 1: the `*_n64` conv kernels (`c_out <= 64`).
    pub const T256X64: Tile = Tile { bm: 256, bn: 64 };

    pub const fn smem_bytes(self) -> u32 {
        let pipeline = 4 * (self.bm + self.bn) * 64;
        let epilogue = self.bm * (self.bn + 8) * 4;
        (if pipeline > epilogue { pipeline } else { epilogue }) as u32
    }
}

const RULE: &str = "128x128 output tile per block of 128 threads (4 warps of 64x64), \
                    ceil(M/128)*ceil(N/128) blocks (1-D, N tile fastest), 68 KiB dynamic smem, 4-stage cp.async";
const RULE_N64: &str = "256x64 output tile per block of 128 threads (4 warps of 64x64), \
                        ceil(M/256)*ceil(N/64) blocks (1-D, N tile fastest), 80 KiB dynamic smem, 4-stage cp.async";

const fn spec(symbol: &'static str, layer: LayerType, variant: &'static str, dtype: DType) -> KernelSpec {
    KernelSpec { symbol, layer, variant, dtype, layout: Layout::Nhwc, launch_rule: RULE }
}

const fn spec_n64(symbol: &'static str, dtype: DType) -> KernelSpec {
    KernelSpec {
        symbol,
        layer: LayerType::Conv,
        variant: "implicit_gemm_tc_n64",
        dtype,
        layout: Layout::Nhwc,
        launch_rule: RULE_N64,
    }
}

/// This family's kernels. GEMMs are registered under `Layout::Nhwc` (the layout of the
/// tensor-core networks; a GEMM's operands are plain matrices).
pub const KERNELS: &[KernelSpec] = &[
    spec("conv2d_igemm_tc_f16_nhwc", LayerType::Conv, "implicit_gemm_tc", DType::F16),
    spec("conv2d_igemm_tc_bf16_nhwc", LayerType::Conv, "implicit_gemm_tc", DType::BF16),
    spec("conv2d_igemm_tf32_nhwc", LayerType::Conv, "implicit_gemm_tc", DType::F32),
    spec_n64("conv2d_igemm_tc_f16_nhwc_n64", DType::F16),
    spec_n64("conv2d_igemm_tc_bf16_nhwc_n64", DType::BF16),
    spec_n64("conv2d_igemm_tf32_nhwc_n64", DType::F32),
    spec("conv2d_igemm_tc_f16_nhwc_gather", LayerType::Conv, "implicit_gemm_tc_gather", DType::F16),
    spec("conv2d_igemm_tc_bf16_nhwc_gather", LayerType::Conv, "implicit_gemm_tc_gather", DType::BF16),
    spec("conv2d_igemm_tf32_nhwc_gather", LayerType::Conv, "implicit_gemm_tc_gather", DType::F32),
    spec("gemm_tc_f16", LayerType::Gemm, "tc", DType::F16),
    spec("gemm_tc_bf16", LayerType::Gemm, "tc", DType::BF16),
    spec("gemm_tf32", LayerType::Gemm, "tc", DType::F32),
    spec("gemm_tc_f16_gather", LayerType::Gemm, "tc_gather", DType::F16),
    spec("gemm_tc_bf16_gather", LayerType::Gemm, "tc_gather", DType::BF16),
    spec("gemm_tf32_gather", LayerType::Gemm, "tc_gather", DType::F32),
    spec_splitk("gemm_tc_splitk_f16", "tc_splitk", DType::F16),
    spec_splitk("gemm_tc_splitk_bf16", "tc_splitk", DType::BF16),
    spec_splitk("gemm_tf32_splitk", "tc_splitk", DType::F32),
    spec_splitk("gemm_tc_splitk_f16_gather", "tc_splitk_gather", DType::F16),
    spec_splitk("gemm_tc_splitk_bf16_gather", "tc_splitk_gather", DType::BF16),
    spec_splitk("gemm_tf32_splitk_gather", "tc_splitk_gather", DType::F32),
    spec_splitk("gemm_splitk_reduce_f16", "tc_splitk_reduce", DType::F16),
    spec_splitk("gemm_splitk_reduce_bf16", "tc_splitk_reduce", DType::BF16),
    spec_splitk("gemm_splitk_reduce_f32", "tc_splitk_reduce", DType::F32),
];

const RULE_SPLITK: &str = "split-K: grid (ceil(M/128)*ceil(N/128), S) blocks of 128 threads (128x128 tile, 68 KiB smem), \
                           S = min(16, 2*SMs/tiles, K slices/4) when tiles < SMs, f32 partials [S][M][N] in a workspace; \
                           then gemm_splitk_reduce_*: 256 threads/block, 4 columns per thread, sums S slabs + epilogue";

const fn spec_splitk(symbol: &'static str, variant: &'static str, dtype: DType) -> KernelSpec {
    KernelSpec { symbol, layer: LayerType::Gemm, variant, dtype, layout: Layout::Nhwc, launch_rule: RULE_SPLITK }
}

/// Host element type of a tensor-core buffer: `u16` (f16/bf16 bits) or `f32`.
pub trait TcElem: DeviceRepr + Copy + 'static {
    /// Whether `dtype` is stored as this type.
    fn holds(dtype: DType) -> bool;
}
impl TcElem for u16 {
    fn holds(dtype: DType) -> bool {
        matches!(dtype, DType::F16 | DType::BF16)
    }
}
impl TcElem for f32 {
    fn holds(dtype: DType) -> bool {
        dtype == DType::F32
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn check_elem<T: TcElem>(dtype: DType) -> Result<()> {
    if T::holds(dtype) {
        Ok(())
    } else {
        Err(invalid(format!(
            "tensor-core kernels: {dtype} data must be in {} buffers",
            if dtype == DType::F32 { "f32" } else { "u16 (bit pattern)" }
        )))
    }
}

/// Elements per 16-byte chunk: the alignment unit of the fast kernels.
pub const fn chunk_elems(dtype: DType) -> usize {
    16 / dtype.size_bytes()
}

pub use super::act_code;

const LIMIT: usize = i32::MAX as usize;

fn check_size(what: &str, n: usize) -> Result<()> {
    if n > LIMIT {
        Err(invalid(format!("tensor-core kernels: {what} has {n} elements, the limit is 2^31 - 1")))
    } else {
        Ok(())
    }
}

/// The conv kernel for `dtype`, `c_in` and `c_out`, and its tile: the fast kernels when
/// `c_in` is a whole number of 16-byte chunks (the 256 × 64 tile when `c_out <= 64`),
/// else the gather ones.
pub fn conv_kernel(dtype: DType, c_in: usize, c_out: usize) -> (&'static str, Tile) {
    let fast = c_in.is_multiple_of(chunk_elems(dtype));
    let narrow = c_out <= 64;
    let sym = match (dtype, fast, narrow) {
        (DType::F16, true, false) => "conv2d_igemm_tc_f16_nhwc",
        (DType::BF16, true, false) => "conv2d_igemm_tc_bf16_nhwc",
        (DType::F32, true, false) => "conv2d_igemm_tf32_nhwc",
        (DType::F16, true, true) => "conv2d_igemm_tc_f16_nhwc_n64",
        (DType::BF16, true, true) => "conv2d_igemm_tc_bf16_nhwc_n64",
        (DType::F32, true, true) => "conv2d_igemm_tf32_nhwc_n64",
        (DType::F16, false, _) => "conv2d_igemm_tc_f16_nhwc_gather",
        (DType::BF16, false, _) => "conv2d_igemm_tc_bf16_nhwc_gather",
        (DType::F32, false, _) => "conv2d_igemm_tf32_nhwc_gather",
    };
    (sym, if fast && narrow { Tile::T256X64 } else { Tile::T128X128 })
}

/// Validates `p` for the tensor-core kernels and builds the parameter block.
pub fn conv_params(p: &Conv2d, epi: &Epilogue) -> Result<ConvParams> {
    p.validate().map_err(|e| invalid(e.to_string()))?;
    if p.groups != 1 {
        return Err(invalid(format!(
            "implicit_gemm_tc: groups = {} (grouped/depthwise conv) is not supported by the tensor-core kernels; \
             use a SIMT conv variant",
            p.groups
        )));
    }
    check_size("the input", p.in_len())?;
    check_size("the weights", p.weight_len())?;
    check_size("the output", p.out_len())?;
    // Validates the activation; the block itself is the SIMT convs' (one layout for all).
    super::act_code(epi.act)?;
    Ok(super::conv::conv_params(p, epi))
}

/// Grid for an `m × n` output in `tile`s: `ceil(m/bm) · ceil(n/bn)` blocks of [`THREADS`].
pub fn launch_config(m: usize, n: usize, tile: Tile) -> Result<LaunchConfig> {
    let blocks = m.div_ceil(tile.bm) * n.div_ceil(tile.bn);
    if blocks == 0 || blocks > LIMIT {
        return Err(invalid(format!("tensor-core kernels: {m} x {n} output needs {blocks} blocks")));
    }
    Ok(LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: tile.smem_bytes(),
    })
}

/// What was launched.
#[derive(Clone, Copy, Debug)]
pub struct Launched {
    pub symbol: &'static str,
    pub cfg: LaunchConfig,
}

/// Device operands of a tensor-core conv (`T`: `u16` for f16/bf16, `f32` for tf32).
/// Layouts: `x` NHWC, `w` OHWI (see [`conv_weights_ohwi`]), `residual` NHWC like the
/// output; `bias`, `scale`, `shift` `[c_out]` f32. The epilogue is
/// `y = act((acc + bias) * scale + shift + residual)` with the absent terms skipped.
pub struct ConvOperands<'a, T> {
    pub x: CudaView<'a, T>,
    pub w: CudaView<'a, T>,
    pub bias: Option<CudaView<'a, f32>>,
    pub scale: Option<CudaView<'a, f32>>,
    pub shift: Option<CudaView<'a, f32>>,
    pub residual: Option<CudaView<'a, T>>,
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(invalid(format!("tensor-core kernels: {what} has {got} elements, expected {want}")))
    }
}

/// Device address of a buffer, checked 16-byte aligned; the guard must outlive the launch.
fn addr<'a, T>(gpu: &'a Gpu, what: &str, b: &'a CudaView<'_, T>) -> Result<(u64, SyncOnDrop<'a>)> {
    let (p, guard) = b.device_ptr(&gpu.stream);
    if p % 16 != 0 {
        return Err(invalid(format!("tensor-core kernels: {what} at {p:#x} is not 16-byte aligned")));
    }
    Ok((p, guard))
}

fn addr_opt<'a, T>(gpu: &'a Gpu, what: &str, b: Option<&'a CudaView<'_, T>>) -> Result<(u64, Option<SyncOnDrop<'a>>)> {
    match b {
        Some(b) => addr(gpu, what, b).map(|(p, g)| (p, Some(g))),
        None => Ok((0, None)),
    }
}

fn load(gpu: &Gpu, symbol: &str, smem: u32) -> Result<cudarc::driver::CudaFunction> {
    let f = registry::function(&gpu.module, symbol)?;
    f.set_attribute(FnAttr::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)
        .map_err(Error::driver("raising a tensor-core kernel's shared-memory limit"))?;
    Ok(f)
}

/// Launches the tensor-core implicit-GEMM conv `y = epilogue(conv(x, w))` on `gpu.stream`
/// (asynchronous). `dtype` is F16/BF16 with `T = u16` or F32 (tf32 math) with `T = f32`.
pub fn conv2d<T: TcElem>(
    gpu: &Gpu,
    dtype: DType,
    p: &Conv2d,
    act: Act,
    ops: &ConvOperands<T>,
    y: &mut CudaViewMut<T>,
) -> Result<Launched> {
    check_elem::<T>(dtype)?;
    if ops.scale.is_some() != ops.shift.is_some() {
        return Err(invalid("implicit_gemm_tc: scale and shift must be given together"));
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
    let (oh, ow) = p.out_hw();
    let (symbol, tile) = conv_kernel(dtype, p.c_in, p.c_out);
    let cfg = launch_config(p.n * oh * ow, p.c_out, tile)?;
    let f = load(gpu, symbol, cfg.shared_mem_bytes)?;

    let (xp, _gx) = addr(gpu, "x", &ops.x)?;
    let (wp, _gw) = addr(gpu, "w", &ops.w)?;
    let (bp, _gb) = addr_opt(gpu, "bias", ops.bias.as_ref())?;
    let (sp, _gs) = addr_opt(gpu, "scale", ops.scale.as_ref())?;
    let (hp, _gh) = addr_opt(gpu, "shift", ops.shift.as_ref())?;
    let (rp, _gr) = addr_opt(gpu, "residual", ops.residual.as_ref())?;
    let (yp, _gy) = y.device_ptr_mut(&gpu.stream);
    if yp % 16 != 0 {
        return Err(invalid(format!("tensor-core kernels: y at {yp:#x} is not 16-byte aligned")));
    }
    let mut b = gpu.stream.launch_builder(&f);
    b.arg(&params).arg(&xp).arg(&wp).arg(&bp).arg(&sp).arg(&hp).arg(&rp).arg(&yp);
    // SAFETY: the argument list matches `conv_kernels!` in kernels/src/tensorcore.rs
    // (ConvParams by value, then 7 pointers); lengths, alignment and the kernel's
    // preconditions were checked above; the guards keep the buffers' events alive.
    unsafe { b.launch(cfg) }.map_err(Error::driver("launching a tensor-core conv"))?;
    Ok(Launched { symbol, cfg })
}

/// A GEMM for the tensor-core kernels: `c = act(alpha · a · bᵀ + beta · c + bias)` with
/// `a [m, k]` (row pitch `lda`), `b [n, k]` (`ldb`; a Linear layer's `[out, in]` weight),
/// `c [m, n]` (`ldc`) in the input type, `bias [n]` f32 (optional).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmTc {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub alpha: f32,
    /// 0 means `c` is write-only (its old contents are not read).
    pub beta: f32,
    pub act: Act,
}

impl GemmTc {
    /// Densely packed, `alpha = 1`, `beta = 0`, no activation.
    pub const fn new(m: usize, n: usize, k: usize) -> Self {
        GemmTc { m, n, k, lda: k, ldb: k, ldc: n, alpha: 1.0, beta: 0.0, act: Act::None }
    }

    pub const fn with_ld(mut self, lda: usize, ldb: usize, ldc: usize) -> Self {
        self.lda = lda;
        self.ldb = ldb;
        self.ldc = ldc;
        self
    }

    pub const fn with_scalars(mut self, alpha: f32, beta: f32) -> Self {
        self.alpha = alpha;
        self.beta = beta;
        self
    }

    pub const fn with_act(mut self, act: Act) -> Self {
        self.act = act;
        self
    }

    /// The tensor-core form of an ONNX Gemm: needs `trans_a = 0`, `trans_b = 1` and C
    /// absent or a per-column bias (`[n]`, then pass it as `bias`, pre-multiplied by
    /// `beta` if `beta != 1`). Linear layers (`Gemm::linear`) are exactly this.
    pub fn from_gemm(g: &Gemm) -> Result<GemmTc> {
        g.validate().map_err(|e| invalid(e.to_string()))?;
        if g.trans_a || !g.trans_b {
            return Err(invalid(format!(
                "gemm tc: needs trans_a = 0 and trans_b = 1 (B stored [n, k]), got trans_a = {} trans_b = {}",
                g.trans_a as u8, g.trans_b as u8
            )));
        }
        if !matches!(g.c, GemmC::None | GemmC::PerColumn) {
            return Err(invalid(format!("gemm tc: C must be absent or per-column (a bias), got {:?}", g.c)));
        }
        Ok(GemmTc::new(g.m, g.n, g.k).with_scalars(g.alpha, 0.0))
    }

    /// Elements `a`, `b`, `c` must hold at least.
    pub fn lens(&self) -> (usize, usize, usize) {
        ((self.m - 1) * self.lda + self.k, (self.n - 1) * self.ldb + self.k, (self.m - 1) * self.ldc + self.n)
    }
}

/// Validates `g` and builds the parameter block.
pub fn gemm_params(g: &GemmTc, bias: bool) -> Result<GemmParams> {
    if g.m == 0 || g.n == 0 || g.k == 0 {
        return Err(invalid(format!("gemm tc: m, n, k must be > 0, got {} x {} x {}", g.m, g.n, g.k)));
    }
    if g.lda < g.k || g.ldb < g.k || g.ldc < g.n {
        return Err(invalid(format!(
            "gemm tc: leading dimensions lda {} ldb {} ldc {} too small for k {} n {}",
            g.lda, g.ldb, g.ldc, g.k, g.n
        )));
    }
    if !(g.alpha.is_finite() && g.beta.is_finite()) {
        return Err(invalid("gemm tc: alpha and beta must be finite"));
    }
    let (la, lb, lc) = g.lens();
    check_size("A", la)?;
    check_size("B", lb)?;
    check_size("C", lc)?;
    let (act, act_min, act_max) = act_code(g.act)?;
    Ok(GemmParams {
        m: g.m as u32,
        n: g.n as u32,
        k: g.k as u32,
        lda: g.lda as u32,
        ldb: g.ldb as u32,
        ldc: g.ldc as u32,
        trans_a: 0,
        trans_b: 1,
        alpha: g.alpha,
        beta: g.beta,
        epilogue: if bias { EPI_BIAS } else { 0 },
        act,
        act_min,
        act_max,
    })
}

/// The GEMM kernel for `dtype` and `g`: fast when `k`, `lda`, `ldb` are whole chunks.
pub fn gemm_symbol(dtype: DType, g: &GemmTc) -> &'static str {
    let e = chunk_elems(dtype);
    let fast = g.k.is_multiple_of(e) && g.lda.is_multiple_of(e) && g.ldb.is_multiple_of(e);
    match (dtype, fast) {
        (DType::F16, true) => "gemm_tc_f16",
        (DType::BF16, true) => "gemm_tc_bf16",
        (DType::F32, true) => "gemm_tf32",
        (DType::F16, false) => "gemm_tc_f16_gather",
        (DType::BF16, false) => "gemm_tc_bf16_gather",
        (DType::F32, false) => "gemm_tf32_gather",
    }
}

/// Launches the tensor-core GEMM on `gpu.stream` (asynchronous); see [`GemmTc`].
pub fn gemm<T: TcElem>(
    gpu: &Gpu,
    dtype: DType,
    g: &GemmTc,
    a: &CudaView<T>,
    b: &CudaView<T>,
    bias: Option<&CudaView<f32>>,
    c: &mut CudaViewMut<T>,
) -> Result<Launched> {
    check_elem::<T>(dtype)?;
    let params = gemm_params(g, bias.is_some())?;
    let (la, lb, lc) = g.lens();
    let at_least = |what: &str, got: usize, want: usize| {
        if got < want {
            Err(invalid(format!("gemm tc: {what} has {got} elements, needs at least {want}")))
        } else {
            Ok(())
        }
    };
    at_least("A", a.len(), la)?;
    at_least("B", b.len(), lb)?;
    at_least("C", c.len(), lc)?;
    if let Some(bias) = bias {
        check_len("bias", bias.len(), g.n)?;
    }
    let cfg = launch_config(g.m, g.n, Tile::T128X128)?;
    let symbol = gemm_symbol(dtype, g);
    let f = load(gpu, symbol, cfg.shared_mem_bytes)?;
    let (ap, _ga) = addr(gpu, "A", a)?;
    let (bp, _gb) = addr(gpu, "B", b)?;
    let (biasp, _gbias) = addr_opt(gpu, "bias", bias)?;
    let (cp, _gc) = c.device_ptr_mut(&gpu.stream);
    if cp % 16 != 0 {
        return Err(invalid(format!("tensor-core kernels: C at {cp:#x} is not 16-byte aligned")));
    }
    let mut lb = gpu.stream.launch_builder(&f);
    lb.arg(&params).arg(&ap).arg(&bp).arg(&biasp).arg(&cp);
    // SAFETY: matches `gemm_kernels!` (GemmParams by value, then a, b, bias, c); sizes,
    // pitches and alignment checked above.
    unsafe { lb.launch(cfg) }.map_err(Error::driver("launching a tensor-core gemm"))?;
    Ok(Launched { symbol, cfg })
}

// ---------------------------------------------------------------------------------------
// Split-K GEMM

/// Largest split count of the split-K GEMM.
pub const MAX_SPLITS: usize = 16;
/// Fewest K slices (32 elements for f16/bf16, 16 for tf32) per split the rule accepts:
/// shorter splits spend more on the pipeline prologue and the partial-sum traffic than
/// they gain.
const MIN_SLICES_PER_SPLIT: usize = 4;

/// K elements per slice of the tensor-core main loop (4 chunks of 16 bytes).
pub const fn slice_elems(dtype: DType) -> usize {
    4 * chunk_elems(dtype)
}

/// The split count the launch rule picks for `g` on a GPU with `sm_count` SMs: 1 (no
/// split) when the 128 × 128 tiles alone fill the SMs, else enough splits for about two
/// resident blocks per SM (what the 68 KiB / 240-register blocks allow), at most
/// [`MAX_SPLITS`], with at least 4 K slices per split. VGG-16's 25088 → 4096 FC at batch
/// 64 on 132 SMs: 32 tiles → 8 splits (256 blocks) of 98 slices.
pub fn splitk_splits(dtype: DType, g: &GemmTc, sm_count: u32) -> usize {
    let tiles = g.m.div_ceil(128) * g.n.div_ceil(128);
    let sms = sm_count.max(1) as usize;
    if tiles == 0 || tiles >= sms {
        return 1;
    }
    let slices = g.k.div_ceil(slice_elems(dtype));
    (2 * sms / tiles).min(MAX_SPLITS).min(slices / MIN_SLICES_PER_SPLIT).max(1)
}

/// How `splits` requested splits divide K: `(slices_per_split, effective splits)`; the
/// effective count drops empty trailing splits (e.g. 9 slices in 4 splits → 3 of 3).
pub fn splitk_layout(dtype: DType, k: usize, splits: usize) -> (usize, usize) {
    let slices = k.div_ceil(slice_elems(dtype)).max(1);
    let per = slices.div_ceil(splits.clamp(1, slices));
    (per, slices.div_ceil(per))
}

/// f32 elements of the split-K workspace for `g` cut into `splits` (requested) splits.
pub fn splitk_workspace_len(dtype: DType, g: &GemmTc, splits: usize) -> usize {
    splitk_layout(dtype, g.k, splits).1 * g.m * g.n
}

/// The split-K first-pass kernel for `dtype` and `g` (fast or gather as [`gemm_symbol`]).
pub fn splitk_symbol(dtype: DType, g: &GemmTc) -> &'static str {
    match gemm_symbol(dtype, g) {
        "gemm_tc_f16" => "gemm_tc_splitk_f16",
        "gemm_tc_bf16" => "gemm_tc_splitk_bf16",
        "gemm_tf32" => "gemm_tf32_splitk",
        "gemm_tc_f16_gather" => "gemm_tc_splitk_f16_gather",
        "gemm_tc_bf16_gather" => "gemm_tc_splitk_bf16_gather",
        _ => "gemm_tf32_splitk_gather",
    }
}

fn reduce_symbol(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "gemm_splitk_reduce_f16",
        DType::BF16 => "gemm_splitk_reduce_bf16",
        DType::F32 => "gemm_splitk_reduce_f32",
    }
}

/// Launch configuration of the reduce pass: 256 threads, one item (4 columns when `n`
/// and `ldc` are multiples of 4, else 1) per thread, at most 16 blocks per SM
/// (grid-stride beyond).
pub fn splitk_reduce_config(g: &GemmTc, sm_count: u32) -> LaunchConfig {
    let per_item = if g.n.is_multiple_of(4) && g.ldc.is_multiple_of(4) { 4 } else { 1 };
    let items = g.m * g.n / per_item;
    let blocks = items.div_ceil(256).clamp(1, 16 * sm_count.max(1) as usize);
    LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// Launches the split-K tensor-core GEMM (two kernels) on `gpu.stream`: the partial
/// products of `splits` K ranges (requested count, 1..=[`MAX_SPLITS`]; fewer when K has
/// fewer slices) into `workspace` (at least [`splitk_workspace_len`] f32, 16-byte
/// aligned, contents ignored), then the reduce pass that sums them and applies the
/// epilogue into `c`. Same contract as [`gemm`] otherwise. Returns the first kernel.
#[allow(clippy::too_many_arguments)]
pub fn gemm_splitk<T: TcElem>(
    gpu: &Gpu,
    dtype: DType,
    g: &GemmTc,
    splits: usize,
    a: &CudaView<T>,
    b: &CudaView<T>,
    bias: Option<&CudaView<f32>>,
    workspace: &mut CudaViewMut<f32>,
    c: &mut CudaViewMut<T>,
) -> Result<Launched> {
    check_elem::<T>(dtype)?;
    if !(1..=MAX_SPLITS).contains(&splits) {
        return Err(invalid(format!("gemm tc_splitk: splits must be 1..={MAX_SPLITS}, got {splits}")));
    }
    let params = gemm_params(g, bias.is_some())?;
    let (la, lb, lc) = g.lens();
    let at_least = |what: &str, got: usize, want: usize| {
        if got < want {
            Err(invalid(format!("gemm tc_splitk: {what} has {got} elements, needs at least {want}")))
        } else {
            Ok(())
        }
    };
    at_least("A", a.len(), la)?;
    at_least("B", b.len(), lb)?;
    at_least("C", c.len(), lc)?;
    if let Some(bias) = bias {
        check_len("bias", bias.len(), g.n)?;
    }
    let (per, eff) = splitk_layout(dtype, g.k, splits);
    let ws_len = eff * g.m * g.n;
    check_size("the split-K workspace", ws_len)?;
    at_least("the workspace", workspace.len(), ws_len)?;
    let mut cfg = launch_config(g.m, g.n, Tile::T128X128)?;
    cfg.grid_dim.1 = eff as u32;
    let symbol = splitk_symbol(dtype, g);
    let f = load(gpu, symbol, cfg.shared_mem_bytes)?;
    let (ap, _ga) = addr(gpu, "A", a)?;
    let (bp, _gb) = addr(gpu, "B", b)?;
    let (biasp, _gbias) = addr_opt(gpu, "bias", bias)?;
    let (wp, _gw) = workspace.device_ptr_mut(&gpu.stream);
    if wp % 16 != 0 {
        return Err(invalid(format!("gemm tc_splitk: workspace at {wp:#x} is not 16-byte aligned")));
    }
    let (cp, _gc) = c.device_ptr_mut(&gpu.stream);
    if cp % 16 != 0 {
        return Err(invalid(format!("tensor-core kernels: C at {cp:#x} is not 16-byte aligned")));
    }
    let per_u32 = per as u32;
    let mut lb1 = gpu.stream.launch_builder(&f);
    lb1.arg(&params).arg(&ap).arg(&bp).arg(&wp).arg(&per_u32);
    // SAFETY: matches `splitk_kernels!` (GemmParams, a, b, ws, slices_per_split); the
    // workspace holds eff·m·n f32 (the grid's y extent is eff), sizes and alignment checked.
    unsafe { lb1.launch(cfg) }.map_err(Error::driver("launching a split-K gemm"))?;
    let rcfg = splitk_reduce_config(g, gpu.info.sm_count);
    let rf = registry::function(&gpu.module, reduce_symbol(dtype))?;
    let eff_u32 = eff as u32;
    let mut lb2 = gpu.stream.launch_builder(&rf);
    lb2.arg(&params).arg(&wp).arg(&eff_u32).arg(&biasp).arg(&cp);
    // SAFETY: matches `splitk_reduce_kernels!` (GemmParams, ws, splits, bias, c); same
    // buffers as above, same stream, so the first pass has finished writing `ws`.
    unsafe { lb2.launch(rcfg) }.map_err(Error::driver("launching the split-K reduce"))?;
    Ok(Launched { symbol, cfg })
}

/// [`gemm_splitk`] with the split count of [`splitk_splits`] when that is at least 2 and
/// `workspace` is given and large enough; [`gemm`] otherwise. The executor's entry point
/// for fully connected layers.
#[allow(clippy::too_many_arguments)]
pub fn gemm_auto<T: TcElem>(
    gpu: &Gpu,
    dtype: DType,
    g: &GemmTc,
    a: &CudaView<T>,
    b: &CudaView<T>,
    bias: Option<&CudaView<f32>>,
    workspace: Option<&mut CudaViewMut<f32>>,
    c: &mut CudaViewMut<T>,
) -> Result<Launched> {
    let splits = splitk_splits(dtype, g, gpu.info.sm_count);
    match workspace {
        Some(ws) if splits >= 2 && ws.len() >= splitk_workspace_len(dtype, g, splits) => {
            gemm_splitk(gpu, dtype, g, splits, a, b, bias, ws, c)
        }
        _ => gemm(gpu, dtype, g, a, b, bias, c),
    }
}

/// Conv weights OIHW f32 → OHWI (KRSC) in `dtype` (f16/bf16 bits), what the 16-bit
/// kernels read.
pub fn conv_weights_ohwi(p: &Conv2d, w_oihw: &[f32], dtype: DType) -> Result<Vec<u16>> {
    let w = reference::oihw_to_ohwi(w_oihw, p.weight_dims()).map_err(|e| invalid(e.to_string()))?;
    match dtype {
        DType::F16 => Ok(reference::f32_to_f16_bits(&w)),
        DType::BF16 => Ok(reference::f32_to_bf16_bits(&w)),
        DType::F32 => Err(invalid("conv_weights_ohwi: use conv_weights_ohwi_f32 for f32 (tf32) kernels")),
    }
}

/// Conv weights OIHW f32 → OHWI f32, what the tf32 kernels read (they round to tf32
/// themselves).
pub fn conv_weights_ohwi_f32(p: &Conv2d, w_oihw: &[f32]) -> Result<Vec<f32>> {
    reference::oihw_to_ohwi(w_oihw, p.weight_dims()).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{ACT_CLIP, ACT_RELU, EPI_RESIDUAL};

    #[test]
    fn symbols_by_alignment() {
        let sym = |dt, ci, co| conv_kernel(dt, ci, co).0;
        assert_eq!(sym(DType::F16, 64, 128), "conv2d_igemm_tc_f16_nhwc");
        assert_eq!(conv_kernel(DType::F16, 64, 64), ("conv2d_igemm_tc_f16_nhwc_n64", Tile::T256X64));
        assert_eq!(conv_kernel(DType::F16, 3, 64), ("conv2d_igemm_tc_f16_nhwc_gather", Tile::T128X128));
        assert_eq!(sym(DType::BF16, 12, 20), "conv2d_igemm_tc_bf16_nhwc_gather");
        assert_eq!(sym(DType::F32, 12, 65), "conv2d_igemm_tf32_nhwc");
        assert_eq!(sym(DType::F32, 12, 5), "conv2d_igemm_tf32_nhwc_n64");
        assert_eq!(sym(DType::F32, 6, 5), "conv2d_igemm_tf32_nhwc_gather");
        assert_eq!(gemm_symbol(DType::F16, &GemmTc::new(8, 8, 48)), "gemm_tc_f16");
        assert_eq!(gemm_symbol(DType::F16, &GemmTc::new(8, 8, 45)), "gemm_tc_f16_gather");
        assert_eq!(gemm_symbol(DType::F16, &GemmTc::new(8, 8, 48).with_ld(52, 48, 8)), "gemm_tc_f16_gather");
        assert_eq!(gemm_symbol(DType::F32, &GemmTc::new(8, 8, 44)), "gemm_tf32");
        // Every symbol chosen is registered.
        for s in [sym(DType::BF16, 3, 8), sym(DType::BF16, 8, 8), gemm_symbol(DType::F32, &GemmTc::new(1, 1, 1))] {
            assert!(KERNELS.iter().any(|k| k.symbol == s), "{s}");
        }
    }

    #[test]
    fn conv_params_validate_and_encode() {
        let c = Conv2d::new(2, 24, 13, 11, 70, 3, 3).with_stride(2, 1).with_pads(1, 2, 0, 1).with_dilation(1, 2);
        let epi = Epilogue { bias: true, scale_shift: false, act: Act::RELU6, residual: true };
        let p = conv_params(&c, &epi).unwrap();
        let (oh, ow) = c.out_hw();
        assert_eq!((p.out_h as usize, p.out_w as usize), (oh, ow));
        assert_eq!((p.pad_h, p.pad_w, p.stride_h, p.dil_w), (1, 2, 2, 2));
        assert_eq!(p.epilogue, EPI_BIAS | EPI_RESIDUAL);
        assert_eq!((p.act, p.act_min, p.act_max), (ACT_CLIP, 0.0, 6.0));
        let e = conv_params(&Conv2d::depthwise(1, 32, 8, 8, 3, 3), &Epilogue::NONE).unwrap_err().to_string();
        assert!(e.contains("groups") && e.contains("SIMT"), "{e}");
        assert!(conv_params(&Conv2d::new(1, 8, 2, 2, 8, 3, 3), &Epilogue::NONE).is_err());
        let bad_act = Epilogue { act: Act::Clip { min: 1.0, max: 0.0 }, ..Epilogue::NONE };
        assert!(conv_params(&Conv2d::new(1, 8, 4, 4, 8, 3, 3), &bad_act).is_err());
        let huge = Conv2d::new(1 << 12, 64, 1 << 10, 1 << 10, 8, 1, 1);
        assert!(conv_params(&huge, &Epilogue::NONE).unwrap_err().to_string().contains("2^31"));
    }

    #[test]
    fn splitk_rule_and_layout() {
        // VGG-16 classifier.0 at batch 64 on an H100/H200 (132 SMs): 32 tiles, 784 slices.
        let fc = GemmTc::new(64, 4096, 25088);
        assert_eq!(splitk_splits(DType::F16, &fc, 132), 8);
        // Batch 1 has the same tile count.
        assert_eq!(splitk_splits(DType::F16, &GemmTc::new(1, 4096, 25088), 132), 8);
        // ResNet-50 fc 2048 -> 1000: 8 tiles; 64 slices allow 16 splits of 4.
        assert_eq!(splitk_splits(DType::F16, &GemmTc::new(64, 1000, 2048), 132), 16);
        // tf32 slices are 16 wide: 2048 / 16 = 128 slices, still capped at 16.
        assert_eq!(splitk_splits(DType::F32, &GemmTc::new(64, 1000, 2048), 132), 16);
        // Short K: 100 elements = 4 slices -> 1 split of 4 slices.
        assert_eq!(splitk_splits(DType::F16, &GemmTc::new(64, 1000, 100), 132), 1);
        // Enough tiles already: no split.
        assert_eq!(splitk_splits(DType::F16, &GemmTc::new(2048, 2048, 4096), 132), 1);
        // 9 slices in 4 requested splits: 3 per split, 3 splits (no empty one).
        assert_eq!(splitk_layout(DType::F16, 9 * 32, 4), (3, 3));
        assert_eq!(splitk_layout(DType::F16, 9 * 32 - 5, 4), (3, 3));
        assert_eq!(splitk_layout(DType::F16, 1000, 16), (2, 16));
        assert_eq!(splitk_layout(DType::F16, 1000, 1), (32, 1));
        // More splits than slices: one slice each.
        assert_eq!(splitk_layout(DType::F32, 40, 16), (1, 3));
        assert_eq!(splitk_workspace_len(DType::F16, &fc, 8), 8 * 64 * 4096);
        assert_eq!(splitk_symbol(DType::F16, &fc), "gemm_tc_splitk_f16");
        assert_eq!(splitk_symbol(DType::F16, &GemmTc::new(8, 8, 45)), "gemm_tc_splitk_f16_gather");
        assert_eq!(splitk_symbol(DType::F32, &GemmTc::new(8, 8, 30)), "gemm_tf32_splitk_gather");
        for dt in [DType::F16, DType::BF16, DType::F32] {
            for g in [fc, GemmTc::new(8, 8, 45)] {
                assert!(KERNELS.iter().any(|k| k.symbol == splitk_symbol(dt, &g)));
            }
            assert!(KERNELS.iter().any(|k| k.symbol == reduce_symbol(dt)));
        }
        let r = splitk_reduce_config(&GemmTc::new(64, 4096, 25088), 132);
        assert_eq!(r.grid_dim.0, 256);
        assert_eq!(splitk_reduce_config(&GemmTc::new(3, 5, 7), 132).grid_dim.0, 1);
    }

    #[test]
    fn launch_config_math() {
        // ResNet-50 3x3 64->64 at 56x56, batch 64: M = 200704 = 1568 tiles, N = 1 tile.
        // ResNet-50 3x3 64->64 at 56x56, batch 64: M = 200704 = 784 tiles of 256, N = 1 tile.
        let cfg = launch_config(64 * 56 * 56, 64, Tile::T256X64).unwrap();
        assert_eq!(cfg.grid_dim, (784, 1, 1));
        assert_eq!(cfg.block_dim, (128, 1, 1));
        assert_eq!(cfg.shared_mem_bytes, 81920);
        let cfg = launch_config(129, 257, Tile::T128X128).unwrap();
        assert_eq!((cfg.grid_dim.0, cfg.shared_mem_bytes), (2 * 3, 69632));
        assert_eq!(launch_config(1, 1, Tile::T128X128).unwrap().grid_dim.0, 1);
        assert!(launch_config(0, 5, Tile::T128X128).is_err());
    }

    #[test]
    fn gemm_params_validate() {
        let g = GemmTc::new(37, 61, 48).with_scalars(2.0, 0.5).with_act(Act::Relu).with_ld(48, 56, 61);
        let p = gemm_params(&g, true).unwrap();
        assert_eq!((p.m, p.n, p.k, p.lda, p.ldb, p.ldc, p.trans_a, p.trans_b), (37, 61, 48, 48, 56, 61, 0, 1));
        assert_eq!((p.epilogue, p.act, p.alpha, p.beta), (EPI_BIAS, ACT_RELU, 2.0, 0.5));
        assert_eq!(g.lens(), (36 * 48 + 48, 60 * 56 + 48, 36 * 61 + 61));
        assert!(gemm_params(&GemmTc::new(4, 4, 8).with_ld(7, 8, 4), false).is_err());
        assert!(gemm_params(&GemmTc::new(0, 4, 8), false).is_err());
        assert!(gemm_params(&GemmTc::new(4, 4, 8).with_scalars(f32::NAN, 0.0), false).is_err());
        let lin = GemmTc::from_gemm(&Gemm::linear(8, 2048, 1000, true)).unwrap();
        assert_eq!((lin.m, lin.n, lin.k, lin.lda, lin.ldb, lin.ldc), (8, 1000, 2048, 2048, 2048, 1000));
        let e = GemmTc::from_gemm(&Gemm::new(4, 4, 4)).unwrap_err().to_string();
        assert!(e.contains("trans_b"), "{e}");
        assert!(GemmTc::from_gemm(&Gemm::linear(4, 4, 4, true).with_c(GemmC::Full)).is_err());
    }

    #[test]
    fn weights_repack_to_ohwi() {
        let c = Conv2d::new(1, 3, 5, 5, 2, 2, 2);
        let w: Vec<f32> = (0..c.weight_len()).map(|i| i as f32).collect();
        let f = conv_weights_ohwi_f32(&c, &w).unwrap();
        // OHWI[o][r][s][i] = OIHW[o][i][r][s]
        for o in 0..2 {
            for r in 0..2 {
                for s in 0..2 {
                    for i in 0..3 {
                        assert_eq!(f[((o * 2 + r) * 2 + s) * 3 + i], w[((o * 3 + i) * 2 + r) * 2 + s]);
                    }
                }
            }
        }
        let h = conv_weights_ohwi(&c, &w, DType::F16).unwrap();
        assert_eq!(reference::f16_bits_to_f32(&h), f);
        let b = conv_weights_ohwi(&c, &w, DType::BF16).unwrap();
        assert_eq!(reference::bf16_bits_to_f32(&b), f);
        assert!(conv_weights_ohwi(&c, &w, DType::F32).is_err());
        assert!(conv_weights_ohwi(&c, &w[1..], DType::F16).is_err());
    }

    /// An index-level model of the device kernel: the loader's addressing and swizzle,
    /// the `ldmatrix` lane → row-address rule, the PTX ISA fragment layouts of
    /// m16n8k16 / m16n8k8.tf32, and the epilogue's row/column mapping, run on real
    /// values. It must reproduce the plain convolution / GEMM exactly (f64, exact
    /// integer-valued data) and write every output element exactly once.
    #[allow(clippy::needless_range_loop)] // index-for-index mirror of the device code
    mod model {
        use super::*;

        const ROW: usize = 64;
        const STAGES: usize = 4;

        /// What the A rows are: a conv's receptive fields or a GEMM's rows.
        #[derive(Clone, Copy)]
        enum Prob<'a> {
            Conv { p: &'a ConvParams },
            Gemm { p: &'a GemmParams },
        }

        struct Th {
            a_base: [usize; 8],
            a_ih: [i64; 8],
            a_iw: [i64; 8],
            b_base: [usize; 4],
            a_ok: [bool; 8],
            b_ok: [bool; 4],
            kk: usize,
            cc: usize,
            s: usize,
            sdw: usize,
            rdh: usize,
            st_off: usize,
        }

        /// Runs the model; returns `y` (`m × ld` elements, NaN where never written) and
        /// the write count per element.
        fn run(prob: Prob, tile: Tile, es: usize, gather: bool, a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<u32>) {
            run_k(prob, tile, es, gather, a, b, None)
        }

        /// [`run`] over the K range `[k_begin, k_end)` only (`k_begin` a multiple of the
        /// slice width), as one split of the split-K kernels computes it.
        fn run_k(
            prob: Prob,
            tile: Tile,
            es: usize,
            gather: bool,
            a: &[f64],
            b: &[f64],
            krange: Option<(usize, usize)>,
        ) -> (Vec<f64>, Vec<u32>) {
            let (bm, bn) = (tile.bm, tile.bn);
            let (a_rows, b_rows, warps_m) = (bm / 32, bn / 32, bm / 64);
            let a_stage = bm * ROW;
            let stage_bytes = (bm + bn) * ROW;
            assert!(STAGES * stage_bytes <= tile.smem_bytes() as usize);
            assert!(bm * (bn + 8) * 4 <= tile.smem_bytes() as usize);
            let epc = 16 / es;
            let step = 4 * epc;
            let (m_total, n_total, k_total, ld) = match prob {
                Prob::Conv { p } => (
                    (p.n * p.out_h * p.out_w) as usize,
                    p.c_out as usize,
                    (p.kh * p.kw * p.c_in) as usize,
                    p.c_out as usize,
                ),
                Prob::Gemm { p } => (p.m as usize, p.n as usize, p.k as usize, p.ldc as usize),
            };
            let mut y = vec![f64::NAN; m_total * ld];
            let mut writes = vec![0u32; m_total * ld];
            let tiles_n = n_total.div_ceil(bn);
            let blocks = m_total.div_ceil(bm) * tiles_n;
            let (k_begin, k_end) = krange.unwrap_or((0, k_total));
            let num_k = if k_end > k_begin { (k_end - k_begin).div_ceil(step) } else { 0 };
            for bid in 0..blocks {
                let (m0, n0) = ((bid / tiles_n) * bm, (bid % tiles_n) * bn);
                // Loader state per thread, as in conv_body / gemm_body.
                let mut th: Vec<Th> = (0..128)
                    .map(|t| {
                        let (r, j) = (t >> 2, t & 3);
                        let mut s = Th {
                            a_base: [0; 8],
                            a_ih: [0; 8],
                            a_iw: [0; 8],
                            b_base: [0; 4],
                            a_ok: [false; 8],
                            b_ok: [false; 4],
                            kk: k_begin + j * epc,
                            cc: 0,
                            s: 0,
                            sdw: 0,
                            rdh: 0,
                            st_off: r * ROW + ((j ^ ((r >> 1) & 3)) << 4),
                        };
                        for i in 0..a_rows {
                            let m = m0 + r + 32 * i;
                            if m < m_total {
                                s.a_ok[i] = true;
                                match prob {
                                    Prob::Conv { p } => {
                                        let ohw = (p.out_h * p.out_w) as usize;
                                        let (img, rem) = (m / ohw, m % ohw);
                                        let (oy, ox) = (rem / p.out_w as usize, rem % p.out_w as usize);
                                        s.a_base[i] = img * (p.h * p.w * p.c_in) as usize;
                                        s.a_ih[i] = (oy * p.stride_h as usize) as i64 - p.pad_h as i64;
                                        s.a_iw[i] = (ox * p.stride_w as usize) as i64 - p.pad_w as i64;
                                    }
                                    Prob::Gemm { p } => s.a_base[i] = m * p.lda as usize,
                                }
                            }
                        }
                        for i in 0..b_rows {
                            let n = n0 + r + 32 * i;
                            if n < n_total {
                                s.b_ok[i] = true;
                                s.b_base[i] = match prob {
                                    Prob::Conv { .. } => n * k_total,
                                    Prob::Gemm { p } => n * p.ldb as usize,
                                };
                            }
                        }
                        if let Prob::Conv { p } = prob {
                            let tap = s.kk / p.c_in as usize;
                            s.cc = s.kk % p.c_in as usize;
                            s.s = tap % p.kw as usize;
                            s.sdw = s.s * p.dil_w as usize;
                            s.rdh = (tap / p.kw as usize) * p.dil_h as usize;
                        }
                        s
                    })
                    .collect();
                // Shared memory as elements.
                let mut smem = vec![f64::NAN; tile.smem_bytes() as usize / es];
                let mut acc = vec![[[[[0f64; 32]; 4]; 8]; 4]; 4]; // [warp][mi][ni][i][lane]
                let load = |th: &Th, smem: &mut Vec<f64>, stage: usize| {
                    // A element at K index kk + e for row i (None = zero fill).
                    for e in 0..epc {
                        let kk = th.kk + e;
                        // (channel, s·dw, r·dh) of element e, advanced as load_gather does
                        // (the fast path uses e = 0 for the whole chunk).
                        let (mut cc, mut sdw, mut rdh, mut s) = (th.cc, th.sdw, th.rdh, th.s);
                        let ee = if gather { e } else { 0 };
                        if let Prob::Conv { p } = prob {
                            for _ in 0..ee {
                                cc += 1;
                                if cc == p.c_in as usize {
                                    cc = 0;
                                    s += 1;
                                    sdw += p.dil_w as usize;
                                    if s == p.kw as usize {
                                        s = 0;
                                        sdw = 0;
                                        rdh += p.dil_h as usize;
                                    }
                                }
                            }
                        }
                        let k_ok = if gather { kk < k_end } else { th.kk < k_end };
                        for i in 0..a_rows {
                            let av = match prob {
                                Prob::Conv { p } => {
                                    let ih = th.a_ih[i] + rdh as i64;
                                    let iw = th.a_iw[i] + sdw as i64;
                                    let ok = k_ok
                                        && th.a_ok[i]
                                        && (0..p.h as i64).contains(&ih)
                                        && (0..p.w as i64).contains(&iw);
                                    if ok {
                                        let pix = ih as usize * p.w as usize + iw as usize;
                                        let off = th.a_base[i] + pix * p.c_in as usize + cc;
                                        a[off + if gather { 0 } else { e }]
                                    } else {
                                        0.0
                                    }
                                }
                                Prob::Gemm { .. } => {
                                    if k_ok && th.a_ok[i] {
                                        a[th.a_base[i] + th.kk + e]
                                    } else {
                                        0.0
                                    }
                                }
                            };
                            let dst = stage + th.st_off + i * 32 * ROW;
                            smem[dst / es + e] = av;
                        }
                        for i in 0..b_rows {
                            let bv = if k_ok && th.b_ok[i] { b[th.b_base[i] + th.kk + e] } else { 0.0 };
                            let dst = stage + a_stage + th.st_off + i * 32 * ROW;
                            smem[dst / es + e] = bv;
                        }
                    }
                };
                let advance = |th: &mut Th| {
                    th.kk += step;
                    if let Prob::Conv { p } = prob {
                        th.cc += step;
                        while th.cc >= p.c_in as usize {
                            th.cc -= p.c_in as usize;
                            th.s += 1;
                            th.sdw += p.dil_w as usize;
                            if th.s == p.kw as usize {
                                th.s = 0;
                                th.sdw = 0;
                                th.rdh += p.dil_h as usize;
                            }
                        }
                    }
                };
                // The pipeline order does not change which slice lands where: slice kt in
                // stage kt % 4, loaded in order; model it sequentially.
                for kt in 0..num_k {
                    let stage = (kt % STAGES) * stage_bytes;
                    for t in th.iter_mut() {
                        load(t, &mut smem, stage);
                        advance(t);
                    }
                    for (warp, acc) in acc.iter_mut().enumerate() {
                        let (wm, wn) = (warp % warps_m, warp / warps_m);
                        mma_slice(&smem, stage, stage + a_stage, es, wm, wn, acc);
                    }
                }
                // Epilogue, as `epilogue` computes it: fragments into the staged
                // bm × (bn + 8) tile, then rows of 4-column quads out.
                let pitch = bn + 8;
                let mut staged = vec![f64::NAN; bm * pitch];
                for (warp, acc) in acc.iter().enumerate() {
                    let (wm, wn) = (warp % warps_m, warp / warps_m);
                    for lane in 0..32 {
                        let (g, t) = (lane >> 2, lane & 3);
                        for (mi, tile) in acc.iter().enumerate() {
                            for (ni, frag) in tile.iter().enumerate() {
                                for half in 0..2 {
                                    let row = wm * 64 + mi * 16 + g + 8 * half;
                                    let col = wn * 64 + ni * 8 + 2 * t;
                                    for q in 0..2 {
                                        // Fragment element i = 2·half + q sits at (g + 8·half,
                                        // 2t + q) of the 16×8 tile (the ISA's C layout).
                                        staged[row * pitch + col + q] = frag[2 * half + q][lane];
                                    }
                                }
                            }
                        }
                    }
                }
                let quads = bn / 4;
                for tid in 0..128 {
                    let quad = tid % quads;
                    let col = n0 + 4 * quad;
                    let mut r = tid / quads;
                    while r < bm {
                        let row = m0 + r;
                        for q in 0..4 {
                            if row < m_total && col + q < n_total {
                                let v = staged[r * pitch + 4 * quad + q];
                                assert!(!v.is_nan(), "staged element ({r}, {}) never written", 4 * quad + q);
                                y[row * ld + col + q] = v;
                                writes[row * ld + col + q] += 1;
                            }
                        }
                        r += 128 / quads;
                    }
                }
            }
            (y, writes)
        }

        /// One warp's work on one K slice: fragments through the `ldmatrix` rule and the
        /// ISA layouts, product computed on the reconstructed matrices, result scattered
        /// back into the C-fragment layout. `acc[mi][ni][i][lane]`.
        fn mma_slice(
            smem: &[f64],
            stage: usize,
            b_stage: usize,
            es: usize,
            wm: usize,
            wn: usize,
            acc: &mut [[[[f64; 32]; 4]; 8]; 4],
        ) {
            let kstep = 32 / es; // 16 (f16) or 8 (tf32) per mma
            for ks in 0..2 {
                // Per-lane row addresses, as in `mainloop`.
                let a_addr = |l: usize, mi: usize| {
                    let sw = (l >> 1) & 3;
                    stage + (wm * 64 + (l & 15)) * ROW + (((2 * ks + (l >> 4)) ^ sw) << 4) + mi * 16 * ROW
                };
                let b_addr = |l: usize, nj: usize| {
                    let sw = (l >> 1) & 3;
                    b_stage
                        + (wn * 64 + ((l >> 4) << 3) + (l & 7)) * ROW
                        + (((2 * ks + ((l >> 3) & 1)) ^ sw) << 4)
                        + nj * 16 * ROW
                };
                // ldmatrix: register q of lane L = row (L >> 2) of matrix q (address from
                // lane 8q + (L >> 2)), 32-bit column (L & 3) = elements of that word.
                let ldm = |addr: &dyn Fn(usize) -> usize, lane: usize, q: usize| -> Vec<f64> {
                    let row_addr = addr(8 * q + (lane >> 2));
                    let word = row_addr + 4 * (lane & 3);
                    (0..4 / es).map(|h| smem[word / es + h]).collect()
                };
                for mi in 0..4 {
                    // Reconstruct A (16 × kstep) from all lanes' fragments.
                    let mut am = vec![vec![None::<f64>; kstep]; 16];
                    for lane in 0..32 {
                        let (g, t) = (lane >> 2, lane & 3);
                        for q in 0..4 {
                            let v = ldm(&|l| a_addr(l, mi), lane, q);
                            for (h, &x) in v.iter().enumerate() {
                                let (r, c) = if es == 2 {
                                    (g + 8 * (q & 1), 2 * t + h + 8 * (q >> 1))
                                } else {
                                    (g + 8 * (q & 1), t + 4 * (q >> 1))
                                };
                                assert!(am[r][c].is_none(), "A element ({r},{c}) supplied twice");
                                am[r][c] = Some(x);
                            }
                        }
                    }
                    for nj in 0..4 {
                        for sub in 0..2 {
                            let ni = 2 * nj + sub;
                            let mut bm = vec![vec![None::<f64>; 8]; kstep];
                            for lane in 0..32 {
                                let (g, t) = (lane >> 2, lane & 3);
                                for qq in 0..2 {
                                    let v = ldm(&|l| b_addr(l, nj), lane, 2 * sub + qq);
                                    for (h, &x) in v.iter().enumerate() {
                                        let k = if es == 2 { 2 * t + h + 8 * qq } else { t + 4 * qq };
                                        assert!(bm[k][g].is_none(), "B element ({k},{g}) supplied twice");
                                        bm[k][g] = Some(x);
                                    }
                                }
                            }
                            // D += A·B, read back through the C layout.
                            for lane in 0..32 {
                                let (g, t) = (lane >> 2, lane & 3);
                                for i in 0..4 {
                                    let (r, c) = (g + 8 * (i >> 1), 2 * t + (i & 1));
                                    let dot: f64 = (0..kstep).map(|k| am[r][k].unwrap() * bm[k][c].unwrap()).sum();
                                    acc[mi][ni][i][lane] += dot;
                                }
                            }
                        }
                    }
                }
            }
        }

        fn ints(len: usize, seed: u64) -> Vec<f64> {
            reference::random_uniform(len, seed).iter().map(|v| (v * 4.0).round() as f64).collect()
        }

        fn check_conv(c: Conv2d, es: usize) {
            let p = conv_params(&c, &Epilogue::NONE).unwrap();
            let x = ints(c.in_len(), 1); // NHWC
            let w = ints(c.weight_len(), 2); // OHWI
            let dtype = if es == 2 { DType::F16 } else { DType::F32 };
            let (sym, tile) = conv_kernel(dtype, c.c_in, c.c_out);
            let gather = sym.ends_with("_gather");
            assert_eq!(gather, !(c.c_in * es).is_multiple_of(16));
            let (y, writes) = run(Prob::Conv { p: &p }, tile, es, gather, &x, &w);
            assert!(writes.iter().all(|&n| n == 1), "{c:?}: an output written {:?} times", writes.iter().max());
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let w_oihw = reference::ohwi_to_oihw(&wf, c.weight_dims()).unwrap();
            let want = reference::conv2d(&c, Layout::Nhwc, &xf, &w_oihw, &reference::EpilogueArgs::none()).unwrap();
            assert_eq!(y, want, "{c:?} es={es} {sym}");
        }

        #[test]
        fn conv_model_matches_reference() {
            let shapes = [
                Conv2d::new(1, 8, 7, 5, 5, 3, 3).with_pad(1, 1),
                Conv2d::new(1, 24, 13, 11, 70, 3, 3).with_pad(1, 1),
                Conv2d::new(1, 3, 11, 9, 9, 7, 7).with_stride(2, 2).with_pad(3, 3),
                Conv2d::new(2, 16, 9, 9, 130, 1, 1).with_stride(2, 2),
                Conv2d::new(1, 16, 12, 12, 24, 3, 3).with_pad(2, 2).with_dilation(2, 2),
                Conv2d::new(1, 40, 11, 9, 33, 5, 3).with_stride(2, 1).with_pads(0, 1, 2, 3),
                Conv2d::new(1, 12, 13, 13, 20, 3, 3).with_pad(1, 1),
                // 256 × 64 tiles: several M tiles, c_out 64 and 37, stride 2.
                Conv2d::new(2, 16, 15, 17, 64, 3, 3).with_pad(1, 1),
                Conv2d::new(1, 8, 23, 21, 37, 3, 3).with_stride(2, 2).with_pad(1, 1),
            ];
            for c in shapes {
                check_conv(c, 2);
                check_conv(c, 4);
            }
        }

        /// Split-K: the splits' K ranges (from `splitk_layout`, as `gemm_splitk_body`
        /// derives them) partition K, so the per-split partial tiles sum to the full
        /// product, on the fast and gather paths, with partial tiles and empty splits.
        #[test]
        fn splitk_model_partials_sum_to_the_product() {
            for (g, es, splits) in [
                (GemmTc::new(37, 61, 1000), 2, 5),
                (GemmTc::new(37, 61, 1001), 2, 4),
                (GemmTc::new(20, 9, 1002), 4, 16),
                (GemmTc::new(5, 8, 40), 2, 16),
                (GemmTc::new(130, 12, 9 * 32), 2, 4),
            ] {
                let p = gemm_params(&g, false).unwrap();
                let (la, lb, _) = g.lens();
                let (a, b) = (ints(la, 5), ints(lb, 6));
                let e = 16 / es;
                let gather = !g.k.is_multiple_of(e);
                let dtype = if es == 2 { DType::F16 } else { DType::F32 };
                let step = slice_elems(dtype);
                let (per, eff) = splitk_layout(dtype, g.k, splits);
                assert!(eff >= 1 && (eff - 1) * per * step < g.k && eff * per * step >= g.k, "{g:?}");
                let mut sum = vec![0f64; g.m * g.ldc];
                for s in 0..eff {
                    let k_begin = s * per * step;
                    let k_end = (k_begin + per * step).min(g.k);
                    let (y, writes) =
                        run_k(Prob::Gemm { p: &p }, Tile::T128X128, es, gather, &a, &b, Some((k_begin, k_end)));
                    assert!(writes.iter().all(|&w| w == 1), "{g:?} split {s}: every output written once");
                    for (acc, v) in sum.iter_mut().zip(&y) {
                        *acc += v;
                    }
                }
                for i in 0..g.m {
                    for j in 0..g.n {
                        let want: f64 = (0..g.k).map(|kk| a[i * g.lda + kk] * b[j * g.ldb + kk]).sum();
                        assert_eq!(sum[i * g.ldc + j], want, "{g:?} splits {splits} ({i},{j})");
                    }
                }
            }
        }

        #[test]
        fn gemm_model_matches_reference() {
            for (g, es) in [
                (GemmTc::new(37, 61, 48), 2),
                (GemmTc::new(37, 61, 45), 2),
                (GemmTc::new(130, 140, 72).with_ld(80, 88, 141), 2),
                (GemmTc::new(37, 61, 44), 4),
                (GemmTc::new(20, 9, 30).with_ld(33, 31, 9), 4),
            ] {
                let p = gemm_params(&g, false).unwrap();
                let (la, lb, _) = g.lens();
                let a = ints(la, 3);
                let b = ints(lb, 4);
                let e = 16 / es;
                let gather = !(g.k.is_multiple_of(e) && g.lda.is_multiple_of(e) && g.ldb.is_multiple_of(e));
                let (y, writes) = run(Prob::Gemm { p: &p }, Tile::T128X128, es, gather, &a, &b);
                for i in 0..g.m {
                    for j in 0..g.ldc {
                        let idx = i * g.ldc + j;
                        if j >= g.n {
                            assert_eq!(writes[idx], 0);
                            continue;
                        }
                        assert_eq!(writes[idx], 1);
                        let want: f64 = (0..g.k).map(|kk| a[i * g.lda + kk] * b[j * g.ldb + kk]).sum();
                        assert_eq!(y[idx], want, "{g:?} ({i},{j})");
                    }
                }
            }
        }
    }
}
