//! fp32 SIMT GEMM: the shared tile engine (128x128x8 and 64x64x8 block tiles, also used by
//! the implicit-GEMM and pointwise convolutions in [`crate::conv`]), `gemm_f32` and the
//! small-batch `gemv_f32`.
//!
//! The engine computes a `16T x 16T` block of `C = A · B` where both operands are streamed
//! through shared memory `BK` deep. Where the operand elements come from (row-major,
//! transposed, im2col of an NCHW tensor, ...) is a [`TileLoader`]; the engine only sees
//! registers and shared memory, so every kernel built on it shares the same inner loop.

use crate::dcore::prelude::*;
use crate::dcore::smem::{ld_shared_f32x4, st_shared_f32};
use crate::params::{GemmParams, ACT_CLIP, ACT_RELU, ACT_SIGMOID, ACT_TANH, EPI_BIAS};

/// Depth of one shared-memory stage.
pub const BK: u32 = 8;
/// Threads per block of every engine kernel: a 16 x 16 grid, each thread a `T x T`
/// register micro-tile, so the block tile is `16T x 16T`.
pub const THREADS: u32 = 256;
/// Micro-tile of the large configuration (128 x 128 block tile).
pub const T_LARGE: u32 = 8;
/// Micro-tile of the small configuration (64 x 64 block tile), for grids the large tile
/// would leave short of one or two waves.
pub const T_SMALL: u32 = 4;
/// Floats per k-row of a shared tile of width `16T`: 4 floats of padding, so that the
/// transposing stores of [`RowsK`] hit 32 distinct banks (row r's bank offset is 4r)
/// while every row start stays 16-byte aligned for the `ld.shared.v4` reads.
const fn stride(t: u32) -> u32 {
    16 * t + 4
}
/// Bytes of one operand stage (`BK` rows of `stride` floats).
const fn stage_bytes(t: u32) -> u32 {
    BK * stride(t) * 4
}
/// Engine shared memory, sized for the large tile: A and B, two stages each (16.9 KB).
const SMEM_FLOATS: usize = (4 * BK * stride(T_LARGE)) as usize;

/// The accumulator micro-tile of one thread: `acc[i][j]` is row [`tile_row`]`(i)`,
/// column [`tile_col`]`(j)` of the block tile (`i, j < T`; the rest is unused).
pub type Acc = [[f32; 8]; 8];

/// Row (within the block tile) of accumulator row `i` of this thread: groups of four
/// consecutive rows (one 16-byte shared load each), the two groups of `T = 8` 64 apart.
#[inline(always)]
pub fn tile_row<const T: u32>(i: u32) -> u32 {
    (i / 4) * (8 * T) + (thread_idx_x() / 16) * 4 + i % 4
}

/// Column (within the block tile) of accumulator column `j` of this thread (same scheme
/// as [`tile_row`]).
#[inline(always)]
pub fn tile_col<const T: u32>(j: u32) -> u32 {
    (j / 4) * (8 * T) + (thread_idx_x() % 16) * 4 + j % 4
}

/// Receives a thread's accumulators four columns at a time (see [`for_each_quad`]).
pub trait QuadSink {
    /// `v[j]` is accumulator `(i, 4h + j)`: row `tile_row(i)`, column `tile_col(4h + j)`.
    unsafe fn quad(&mut self, i: u32, h: u32, v: [f32; 4]);
}

/// Hands the quads of `acc` (16 for `T = 8`, 4 for `T = 4`) to `sink` with constant
/// indices. Unrolled by hand: LLVM will not fully unroll an epilogue loop this large, and
/// one dynamic index into `acc` would move the whole accumulator array to local memory.
#[inline(always)]
pub unsafe fn for_each_quad<const T: u32, S: QuadSink>(acc: &Acc, sink: &mut S) {
    macro_rules! q {
        ($($i:literal $h:literal),*) => {$(
            unsafe { sink.quad($i, $h, [acc[$i][4 * $h], acc[$i][4 * $h + 1], acc[$i][4 * $h + 2], acc[$i][4 * $h + 3]]) };
        )*};
    }
    q!(0 0, 1 0, 2 0, 3 0);
    if T == 8 {
        q!(4 0, 5 0, 6 0, 7 0, 0 1, 1 1, 2 1, 3 1, 4 1, 5 1, 6 1, 7 1);
    }
}

/// Produces one operand of the engine, one `BK`-deep stage at a time: each of the 256
/// threads fetches `T / 2` elements from global memory into registers (`fetch`, issued
/// before the current stage's math so the loads overlap it), then writes them to the
/// shared stage (`store`), laid out `[BK][16T + 4]` with the M (or N) index contiguous.
/// Out-of-range elements (tile edges, padding) must be fetched as 0.
pub trait TileLoader {
    /// Fetches the stage starting at reduction index `k0` (called with 0, BK, 2·BK, ...)
    /// into `r[..T / 2]`.
    unsafe fn fetch(&mut self, k0: u32, r: &mut [f32; 4]);
    /// Writes the fetched values into the stage at shared address `stage`.
    unsafe fn store(&self, stage: u32, r: &[f32; 4]);
}

/// An operand stored `[rows][k]` with k contiguous (`p[row * ld + k]`): conv weights (OIHW
/// is `[c_out][c_in/g * kh * kw]`), A of a non-transposed GEMM, B of a transposed one.
/// Thread `t` fetches k = `t % 8` of rows `t / 8 + 32e`: a warp reads 4 rows x 32 bytes.
pub struct RowsK<const T: u32> {
    p: *const f32,
    ld: u32,
    rows: u32,
    k: u32,
    kl: u32,
    r0: u32,
}

impl<const T: u32> RowsK<T> {
    /// `p` points at row 0 of the block; `rows` of them are valid (may exceed the tile).
    #[inline(always)]
    pub fn new(p: *const f32, ld: u32, rows: u32, k: u32) -> RowsK<T> {
        let t = thread_idx_x();
        RowsK { p, ld, rows, k, kl: t % 8, r0: t / 8 }
    }
}

impl<const T: u32> TileLoader for RowsK<T> {
    #[inline(always)]
    unsafe fn fetch(&mut self, k0: u32, r: &mut [f32; 4]) {
        let kk = k0 + self.kl;
        for e in 0..T / 2 {
            let row = self.r0 + 32 * e;
            r[e as usize] = if row < self.rows && kk < self.k {
                unsafe { *self.p.add((row * self.ld + kk) as usize) }
            } else {
                0.0
            };
        }
    }
    #[inline(always)]
    unsafe fn store(&self, stage: u32, r: &[f32; 4]) {
        for e in 0..T / 2 {
            unsafe { st_shared_f32(stage + (self.kl * stride(T) + self.r0 + 32 * e) * 4, r[e as usize]) };
        }
    }
}

/// An operand stored `[k][cols]` with the column contiguous (`p[k * ld + col]`): B of a
/// non-transposed GEMM, A of a transposed one. Thread `t` fetches k = `t / 32` of columns
/// `lane + 32e`: each warp load is 128 contiguous bytes.
pub struct KCols<const T: u32> {
    p: *const f32,
    ld: u32,
    cols: u32,
    k: u32,
    kl: u32,
    c0: u32,
}

impl<const T: u32> KCols<T> {
    /// `p` points at column 0 of the block; `cols` of them are valid (may exceed the tile).
    #[inline(always)]
    pub fn new(p: *const f32, ld: u32, cols: u32, k: u32) -> KCols<T> {
        let t = thread_idx_x();
        KCols { p, ld, cols, k, kl: t / 32, c0: t % 32 }
    }
}

impl<const T: u32> TileLoader for KCols<T> {
    #[inline(always)]
    unsafe fn fetch(&mut self, k0: u32, r: &mut [f32; 4]) {
        let kk = k0 + self.kl;
        for e in 0..T / 2 {
            let col = self.c0 + 32 * e;
            r[e as usize] = if col < self.cols && kk < self.k {
                unsafe { *self.p.add((kk * self.ld + col) as usize) }
            } else {
                0.0
            };
        }
    }
    #[inline(always)]
    unsafe fn store(&self, stage: u32, r: &[f32; 4]) {
        unsafe { store_kcols::<T>(stage, r) };
    }
}

/// The `[k][col]` shared store shared by column-mapped loaders (thread `t`: row `t / 32`,
/// columns `t % 32 + 32e`; consecutive lanes hit consecutive banks).
#[inline(always)]
pub unsafe fn store_kcols<const T: u32>(stage: u32, r: &[f32; 4]) {
    let t = thread_idx_x();
    let base = stage + ((t / 32) * stride(T) + t % 32) * 4;
    for e in 0..T / 2 {
        unsafe { st_shared_f32(base + 32 * 4 * e, r[e as usize]) };
    }
}

/// One k-step of math: `T / 2` + `T / 2` 16-byte shared loads and `T * T` FMAs.
#[inline(always)]
unsafe fn k_step<const T: u32>(a_addr: u32, b_addr: u32, acc: &mut Acc) {
    let mut a = [0.0f32; 8];
    let mut b = [0.0f32; 8];
    for h in 0..T / 4 {
        let (x, y) = unsafe { (ld_shared_f32x4(a_addr + h * 32 * T), ld_shared_f32x4(b_addr + h * 32 * T)) };
        let h = 4 * h as usize;
        (a[h], a[h + 1], a[h + 2], a[h + 3]) = (x.x, x.y, x.z, x.w);
        (b[h], b[h + 1], b[h + 2], b[h + 3]) = (y.x, y.y, y.z, y.w);
    }
    for i in 0..T as usize {
        for j in 0..T as usize {
            acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
    }
}

/// One stage of math: the `BK = 8` k-steps, unrolled by hand (LLVM keeps a 512-FMA body
/// rolled) so that `ptxas` can issue step `k + 1`'s shared loads under step `k`'s FMAs.
#[inline(always)]
unsafe fn stage_math<const T: u32>(a_stage: u32, b_stage: u32, acc: &mut Acc) {
    let t = thread_idx_x();
    let a_addr = a_stage + (t / 16) * 16;
    let b_addr = b_stage + (t % 16) * 16;
    macro_rules! steps {
        ($($kk:literal)*) => {$(
            unsafe { k_step::<T>(a_addr + $kk * stride(T) * 4, b_addr + $kk * stride(T) * 4, acc) };
        )*};
    }
    steps!(0 1 2 3 4 5 6 7);
}

/// The engine main loop: `acc = A_tile · B_tile` over the reduction length `k`, for the
/// `16T x 16T` block tile.
///
/// Double-buffered shared memory with one barrier per stage: stage `s + 1` is fetched to
/// registers before the math on stage `s` and stored to the other buffer after it. The
/// buffer written in iteration `s` was last read in iteration `s - 1`, whose trailing
/// barrier separates the two. Every thread of the block must call this (barriers); the
/// loop trip count depends only on `k`.
#[inline(always)]
pub unsafe fn mainloop<const T: u32, A: TileLoader, B: TileLoader>(la: &mut A, lb: &mut B, k: u32, acc: &mut Acc) {
    let _ = shared_array!(cnnergy_sgemm_tiles: [f32; SMEM_FLOATS]);
    let smem = shared_array_addr!(cnnergy_sgemm_tiles);
    // Layout: A stage 0, A stage 1, B stage 0, B stage 1.
    let stage = stage_bytes(T);
    let b_smem = smem + 2 * stage;
    for i in 0..8 {
        for j in 0..8 {
            acc[i][j] = 0.0;
        }
    }
    let stages = k.div_ceil(BK);
    let mut ra = [0.0f32; 4];
    let mut rb = [0.0f32; 4];
    unsafe {
        la.fetch(0, &mut ra);
        lb.fetch(0, &mut rb);
        la.store(smem, &ra);
        lb.store(b_smem, &rb);
    }
    sync_threads();
    let mut s = 0u32;
    while s < stages {
        let cur = (s & 1) * stage;
        let next = stage - cur;
        let more = s + 1 < stages;
        if more {
            unsafe {
                la.fetch((s + 1) * BK, &mut ra);
                lb.fetch((s + 1) * BK, &mut rb);
            }
        }
        unsafe { stage_math::<T>(smem + cur, b_smem + cur, acc) };
        if more {
            unsafe {
                la.store(smem + next, &ra);
                lb.store(b_smem + next, &rb);
            }
        }
        sync_threads();
        s += 1;
    }
}

/// `ACT_*` applied to one value. ReLU and Clip compare-and-select, so NaN propagates
/// (as the CPU reference and PyTorch do); sigmoid and tanh are the core's accurate forms,
/// kept out of line so that a 64-element epilogue does not inline 64 copies of them.
#[inline(always)]
pub fn activate(v: f32, act: u32, lo: f32, hi: f32) -> f32 {
    if act == ACT_RELU {
        if v < 0.0 {
            0.0
        } else {
            v
        }
    } else if act == ACT_CLIP {
        if v < lo {
            lo
        } else if v > hi {
            hi
        } else {
            v
        }
    } else if act == ACT_SIGMOID || act == ACT_TANH {
        transcendental(v, act)
    } else {
        v
    }
}

#[inline(never)]
fn transcendental(v: f32, act: u32) -> f32 {
    if act == ACT_SIGMOID {
        v.sigmoid()
    } else {
        v.tanh()
    }
}

/// `c[m, n] = act(alpha * op(a) · op(b) + beta * c + bias[n])`, row-major (see
/// [`GemmParams`]).
///
/// Thread mapping: 256 threads per block, block `(bx, by)` computes the 128 x 128 tile at
/// rows `by * 128`, columns `bx * 128`; thread `t` owns the 8 x 8 micro-tile of rows
/// `tile_row(0..8)` and columns `tile_col(0..8)`. Tiling: the [`mainloop`] engine, 128 x
/// 128 x 8 double-buffered in 16.9 KB of static shared memory; each transpose case
/// (`trans_a`, `trans_b`) is its own instantiation with coalesced loaders ([`RowsK`] or
/// [`KCols`]). Epilogue: 16-byte stores when `ldc % 4 == 0` and `c` is 16-byte aligned,
/// else scalar; `c` is read only when `beta != 0`.
///
/// Launch: block (256, 1, 1), grid (ceil(n / 128), ceil(m / 128), 1), no dynamic shared
/// memory. Preconditions: `lda`/`ldb`/`ldc` at least the row lengths, every index below
/// 2^31, `bias` holds `n` floats when `EPI_BIAS`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn gemm_f32(p: GemmParams, a: *const f32, b: *const f32, bias: *const f32, c: *mut f32) {
    const T: u32 = T_LARGE;
    let m0 = block_idx_y() * 16 * T;
    let n0 = block_idx_x() * 16 * T;
    let mut acc: Acc = [[0.0; 8]; 8];
    let (rows, cols) = (p.m - m0, p.n - n0);
    unsafe {
        if p.trans_a == 0 {
            let mut la = RowsK::<T>::new(a.add((m0 * p.lda) as usize), p.lda, rows, p.k);
            if p.trans_b == 0 {
                let mut lb = KCols::<T>::new(b.add(n0 as usize), p.ldb, cols, p.k);
                mainloop::<T, _, _>(&mut la, &mut lb, p.k, &mut acc);
            } else {
                let mut lb = RowsK::<T>::new(b.add((n0 * p.ldb) as usize), p.ldb, cols, p.k);
                mainloop::<T, _, _>(&mut la, &mut lb, p.k, &mut acc);
            }
        } else {
            let mut la = KCols::<T>::new(a.add(m0 as usize), p.lda, rows, p.k);
            if p.trans_b == 0 {
                let mut lb = KCols::<T>::new(b.add(n0 as usize), p.ldb, cols, p.k);
                mainloop::<T, _, _>(&mut la, &mut lb, p.k, &mut acc);
            } else {
                let mut lb = RowsK::<T>::new(b.add((n0 * p.ldb) as usize), p.ldb, cols, p.k);
                mainloop::<T, _, _>(&mut la, &mut lb, p.k, &mut acc);
            }
        }
    }

    // Epilogue.
    let mut sink = GemmStore {
        p: &p,
        c,
        m0,
        n0,
        bias: [[0.0; 4]; 2],
        read_c: p.beta != 0.0,
        vec: p.ldc % 4 == 0 && c.is_aligned_to(16),
    };
    if p.epilogue & EPI_BIAS != 0 {
        for h in 0..2u32 {
            for j in 0..4u32 {
                let col = n0 + tile_col::<T>(4 * h + j);
                if col < p.n {
                    sink.bias[h as usize][j as usize] = unsafe { *bias.add(col as usize) };
                }
            }
        }
    }
    unsafe { for_each_quad::<T, _>(&acc, &mut sink) };
}

/// `gemm_f32`'s epilogue: `act(alpha * acc + beta * c + bias)`, 16-byte stores where the
/// four columns are in range and aligned.
struct GemmStore<'a> {
    p: &'a GemmParams,
    c: *mut f32,
    m0: u32,
    n0: u32,
    /// Bias of this thread's columns (0 without `EPI_BIAS`).
    bias: [[f32; 4]; 2],
    read_c: bool,
    vec: bool,
}

impl QuadSink for GemmStore<'_> {
    #[inline(always)]
    unsafe fn quad(&mut self, i: u32, h: u32, acc: [f32; 4]) {
        let p = self.p;
        let row = self.m0 + tile_row::<T_LARGE>(i);
        let col = self.n0 + tile_col::<T_LARGE>(4 * h);
        if row >= p.m {
            return;
        }
        let cp = unsafe { self.c.add((row * p.ldc + col) as usize) };
        let bias = self.bias[h as usize];
        let mut v = [0.0f32; 4];
        for j in 0..4 {
            v[j] = fma(p.alpha, acc[j], bias[j]);
        }
        if self.vec && col + 3 < p.n {
            if self.read_c {
                let old = unsafe { mem::ld_global_f32x4(cp) };
                v[0] = fma(p.beta, old.x, v[0]);
                v[1] = fma(p.beta, old.y, v[1]);
                v[2] = fma(p.beta, old.z, v[2]);
                v[3] = fma(p.beta, old.w, v[3]);
            }
            let o = f32x4 {
                x: activate(v[0], p.act, p.act_min, p.act_max),
                y: activate(v[1], p.act, p.act_min, p.act_max),
                z: activate(v[2], p.act, p.act_min, p.act_max),
                w: activate(v[3], p.act, p.act_min, p.act_max),
            };
            unsafe { mem::st_global_f32x4(cp, o) };
        } else {
            for j in 0..4u32 {
                if col + j < p.n {
                    let q = unsafe { cp.add(j as usize) };
                    let mut x = v[j as usize];
                    if self.read_c {
                        x = fma(p.beta, unsafe { *q }, x);
                    }
                    unsafe { *q = activate(x, p.act, p.act_min, p.act_max) };
                }
            }
        }
    }
}

/// Rows of `a` (batch entries) one warp handles per pass over a weight row.
const GEMV_ROWS: u32 = 8;

/// Matrix-vector product for fully connected layers at small batch:
/// `c[i, n] = act(alpha * Σ_k a[i, k] · b[n, k] + beta * c[i, n] + bias[n])`, i.e. `gemm_f32`
/// with `trans_a == 0`, `trans_b == 1` (Linear's `[out, in]` weight) and any `m`.
///
/// Thread mapping: one warp per output column `n` (8 warps per 256-thread block): the warp
/// streams weight row `n` once per group of 8 batch rows, lane `l` taking elements
/// `4l, 4l+1, ...` with 16-byte read-only loads (`ld.global.nc.v4`, two in flight per
/// lane) when `k`, `lda` and `ldb` are multiples of 4 and `a`/`b` are 16-byte aligned,
/// scalar loads otherwise; partial sums are reduced with shuffles. No shared memory, no
/// block barriers (a whole warp leaves early when its `n` is out of range).
///
/// Launch: block (256, 1, 1), grid (ceil(n / 8), 1, 1). Preconditions: `trans_a == 0`,
/// `trans_b == 1`, indices below 2^31.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn gemv_f32(p: GemmParams, a: *const f32, b: *const f32, bias: *const f32, c: *mut f32) {
    let n = block_idx_x() * (THREADS / 32) + thread_idx_x() / 32;
    if n >= p.n {
        return;
    }
    let lane = lane_id();
    let w = unsafe { b.add((n * p.ldb) as usize) };
    let vec = p.k % 4 == 0 && p.lda % 4 == 0 && p.ldb % 4 == 0 && a.is_aligned_to(16) && b.is_aligned_to(16);
    let bias_n = if p.epilogue & EPI_BIAS != 0 { unsafe { *bias.add(n as usize) } } else { 0.0 };
    let mut i0 = 0u32;
    while i0 < p.m {
        let rows = min(GEMV_ROWS, p.m - i0);
        let x0 = unsafe { a.add((i0 * p.lda) as usize) };
        let mut acc = [0.0f32; GEMV_ROWS as usize];
        if vec {
            let q_end = p.k / 4;
            let mut q = lane;
            // Two 16-byte weight loads in flight per lane.
            while q + 32 < q_end {
                let (w0, w1) = unsafe {
                    (
                        mem::ld_global_nc_f32x4(w.add(4 * q as usize)),
                        mem::ld_global_nc_f32x4(w.add(4 * (q + 32) as usize)),
                    )
                };
                for r in 0..GEMV_ROWS {
                    if r < rows {
                        let xr = unsafe { x0.add((r * p.lda) as usize) };
                        let (u0, u1) = unsafe {
                            (
                                mem::ld_global_nc_f32x4(xr.add(4 * q as usize)),
                                mem::ld_global_nc_f32x4(xr.add(4 * (q + 32) as usize)),
                            )
                        };
                        let mut s = acc[r as usize];
                        s = fma(w0.x, u0.x, s);
                        s = fma(w0.y, u0.y, s);
                        s = fma(w0.z, u0.z, s);
                        s = fma(w0.w, u0.w, s);
                        s = fma(w1.x, u1.x, s);
                        s = fma(w1.y, u1.y, s);
                        s = fma(w1.z, u1.z, s);
                        s = fma(w1.w, u1.w, s);
                        acc[r as usize] = s;
                    }
                }
                q += 64;
            }
            if q < q_end {
                let w0 = unsafe { mem::ld_global_nc_f32x4(w.add(4 * q as usize)) };
                for r in 0..GEMV_ROWS {
                    if r < rows {
                        let u0 = unsafe { mem::ld_global_nc_f32x4(x0.add((r * p.lda + 4 * q) as usize)) };
                        let mut s = acc[r as usize];
                        s = fma(w0.x, u0.x, s);
                        s = fma(w0.y, u0.y, s);
                        s = fma(w0.z, u0.z, s);
                        s = fma(w0.w, u0.w, s);
                        acc[r as usize] = s;
                    }
                }
            }
        } else {
            let mut kk = lane;
            while kk < p.k {
                let wv = unsafe { *w.add(kk as usize) };
                for r in 0..GEMV_ROWS {
                    if r < rows {
                        acc[r as usize] = fma(wv, unsafe { *x0.add((r * p.lda + kk) as usize) }, acc[r as usize]);
                    }
                }
                kk += 32;
            }
        }
        for r in 0..GEMV_ROWS {
            // Every lane takes part in the shuffles; `rows` is warp-uniform.
            if r < rows {
                let s = warp::sum_f32(acc[r as usize]);
                if lane == 0 {
                    let cp = unsafe { c.add(((i0 + r) * p.ldc + n) as usize) };
                    let mut v = fma(p.alpha, s, bias_n);
                    if p.beta != 0.0 {
                        v = fma(p.beta, unsafe { *cp }, v);
                    }
                    unsafe { *cp = activate(v, p.act, p.act_min, p.act_max) };
                }
            }
        }
        i0 += GEMV_ROWS;
    }
}
