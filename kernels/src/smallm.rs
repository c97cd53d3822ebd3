//! Small-batch fully connected layers (`M <= 8`) in f16/bf16: a weight-streaming GEMM
//! that reads the `[n, k]` weight exactly once and runs its dot products on the tensor
//! cores with the batch as the mma's 8-wide N side.
//!
//! `c[m, n] = act(alpha · Σ_k a[m, k] · b[n, k] + bias[n] + beta · c[m, n])` for
//! `m < M <= 8`, the `gemm_tc_*` contract (same [`GemmParams`], same operands) restricted
//! to small `M`. At batch 1..8 a Linear layer is bound by the weight traffic (`n·k·2`
//! bytes, 205 MB for VGG-16's 25088 → 4096); the 128-row tiles of the `gemm_tc_*`
//! kernels would waste 120..127 of every 128 MMA rows on it.
//!
//! # The swapped mma
//! Per `mma.m16n8k16` a warp computes `D[16 × 8] += W[16 rows of b, 16 k] · Xᵀ[16 k, 8
//! batch columns]`: A = 16 weight rows (output features `n0 .. n0 + 16`), B = the
//! (up to) 8 input rows, D[row][col] = the partial sum of output `c[col, n0 + row]`.
//! Batch columns `>= M` are fed zeros and never stored.
//!
//! **K permutation.** A dot product may visit K in any order as long as A and B agree,
//! so instead of the mma's logical K order each lane loads *contiguous* memory: lane
//! `l` (`g = l >> 2`, `q = l & 3`) loads, per 32-element K slice at `ks`, one 16-byte
//! chunk `[ks + 8q, ks + 8q + 8)` of weight rows `n0 + g` and `n0 + g + 8` and of input
//! row `g`. Words 0, 1 of those chunks are that lane's A registers `{a0, a1, a2, a3} =
//! {lo.0, hi.0, lo.1, hi.1}` and B registers `{b0, b1} = {x.0, x.1}` of the first mma,
//! words 2, 3 those of the second. In the mma's fragment layout lane `(g, q)` holds
//! logical k `{2q, 2q+1, 2q+8, 2q+9}` of A rows `g`, `g + 8` and of B column `g`, so
//! logical k `2q + e` ↔ physical `ks + 8q + e` and `2q + 8 + e` ↔ `ks + 8q + 2 + e`
//! (first mma; `+4` for the second) — the same map for A and B, every physical k of the
//! slice used exactly once. Products are exact, accumulation f32 (as `gemm_tc_*`).
//!
//! # Thread mapping
//! Block = `nw` warps (`blockDim.x = 32·nw`, `1 <= nw <= ` [`SMALLM_MAX_WARPS`]), all on
//! the same 16 output features `n0 = 16·blockIdx.x`; grid `ceil(n / 16)` blocks. Warp
//! `w` takes K slices `w, w + nw, w + 2nw, ..` (the block sweeps each weight row
//! front to back, `nw · 64` contiguous bytes per row per step), [`UNROLL`] slices per
//! step, double-buffered in registers: the next step's 3 × 4 16-byte loads per lane are
//! issued before this step's 8 mmas; two independent accumulator sets (one per mma of
//! a slice); leftover slices (fewer than a step, the partial last one) one at a time.
//! The weight is
//! streamed with `ld.global.nc` (`.L1::no_allocate` in the sm_90a module: it is never
//! reused, the input rows are — by every block). The `nw` partial tiles meet in shared
//! memory (`[nw][4][32]` f32); warp 0 adds them in warp order (deterministic for a given
//! `nw`) and applies the epilogue in f32, rounding once to the output type; lane `(g,
//! q)` owns outputs `(m, n) = (2q + (i & 1), n0 + g + 8·(i >> 1))`, `i < 4`, each a
//! bounds-checked 2-byte store.
//!
//! Loads: a chunk is one 16-byte vector when `lda % 8 == 0 && ldb % 8 == 0` (every row
//! then starts 16-byte aligned) and it lies inside K; otherwise (the K tail when `k % 8
//! != 0`, or unaligned pitches everywhere) eight element loads, zero past K. Weight rows
//! `>= n` and input rows `>= M` are zeros without a load.
//!
//! # Preconditions (checked by `cnnergy_host::launch::smallm`)
//! `1 <= m <= 8`, `n, k >= 1`, `lda >= k`, `ldb >= k`, `ldc >= n`; every tensor < 2^31
//! elements; all pointers 16-byte aligned; `c` does not overlap `a`, `b` or `bias`;
//! `bias` non-null when `epilogue & EPI_BIAS`; block shape as above.

use crate::dcore::mem::ld_global_nc_f32;
use crate::dcore::mma::{mma_m16n8k16_bf16, mma_m16n8k16_f16};
use crate::dcore::prelude::*;
use crate::gemm::activate;
use crate::params::*;

/// Largest batch (`m`) the kernels take: the mma's N side.
pub const SMALLM_MAX_M: u32 = 8;
/// Output features per block (the mma's M side).
pub const SMALLM_ROWS: u32 = 16;
/// Most warps per block (sizes the shared reduction buffer).
pub const SMALLM_MAX_WARPS: u32 = 16;
/// K slices per warp step.
const UNROLL: u32 = 4;
/// K elements per slice (two m16n8k16 mmas).
const SLICE: u32 = 32;

const F16: u32 = 0;
const BF16: u32 = 1;

/// `$body` with `$u` = 0, 1, 2, 3 (a constant in each copy) so the per-slice arrays stay
/// in registers.
macro_rules! unroll4 {
    ($u:ident => $body:block) => {{
        {
            const $u: usize = 0;
            $body
        }
        {
            const $u: usize = 1;
            $body
        }
        {
            const $u: usize = 2;
            $body
        }
        {
            const $u: usize = 3;
            $body
        }
    }};
}

const ZERO: u32x4 = u32x4 { x: 0, y: 0, z: 0, w: 0 };

/// 16 bytes at `p` if `ok`, else zeros (nothing read): one predicated
/// `ld.global.nc.v4.u32`, so the main loop stays branch-free. `weight`: the data is
/// streamed once, so it bypasses L1 (`.L1::no_allocate`) where the PTX version has the
/// hint (8.0, the sm_90a module); the input rows, read by every block, do not.
///
/// # Safety
/// When `ok`: `p` is 16-byte aligned, valid for 16 bytes of global memory that this
/// launch does not write.
#[inline(always)]
unsafe fn ld16_if(p: *const u16, ok: bool, weight: bool) -> u32x4 {
    let (x, y, z, w): (u32, u32, u32, u32);
    macro_rules! ld {
        ($op:literal) => {
            unsafe {
                asm!(
                    concat!(
                        "{{ .reg .pred q; .reg .u64 g; setp.ne.u32 q, {ok}, 0; ",
                        "mov.u32 {x}, 0; mov.u32 {y}, 0; mov.u32 {z}, 0; mov.u32 {w}, 0; ",
                        "cvta.to.global.u64 g, {p}; @q ",
                        $op,
                        " {{{x}, {y}, {z}, {w}}}, [g]; }}"
                    ),
                    p = in(reg64) p,
                    ok = in(reg32) ok as u32,
                    x = out(reg32) x,
                    y = out(reg32) y,
                    z = out(reg32) z,
                    w = out(reg32) w,
                    options(pure, readonly, nostack),
                )
            }
        };
    }
    if weight {
        #[cfg(target_feature = "ptx80")]
        ld!("ld.global.nc.L1::no_allocate.v4.u32");
        #[cfg(not(target_feature = "ptx80"))]
        ld!("ld.global.nc.v4.u32");
    } else {
        ld!("ld.global.nc.v4.u32");
    }
    u32x4 { x, y, z, w }
}

/// Elements `kk .. kk + 8` of the row at `row` as 8 packed halves (element `kk` in the
/// low half of word 0), zeros past `k` and when `!ok` (then nothing is read). `vec`: the
/// row is 16-byte aligned (so is `kk`, a multiple of 8); a chunk inside K is then one
/// vector load (`weight`: see [`ld16_if`]).
#[inline(always)]
unsafe fn chunk(row: *const u16, kk: u32, k: u32, ok: bool, vec: bool, weight: bool) -> u32x4 {
    if !ok {
        return ZERO;
    }
    unsafe {
        if vec && kk + 8 <= k {
            ld16_if(row.add(kk as usize), true, weight)
        } else {
            let mut h = [0u32; 8];
            unroll4!(E => {
                let e = E as u32;
                if kk + 2 * e < k {
                    h[2 * E] = *row.add((kk + 2 * e) as usize) as u32;
                }
                if kk + 2 * e + 1 < k {
                    h[2 * E + 1] = *row.add((kk + 2 * e + 1) as usize) as u32;
                }
            });
            u32x4 { x: h[0] | h[1] << 16, y: h[2] | h[3] << 16, z: h[4] | h[5] << 16, w: h[6] | h[7] << 16 }
        }
    }
}

#[inline(always)]
fn mma<const KIND: u32>(a: [u32; 4], b: [u32; 2], c: [f32; 4]) -> [f32; 4] {
    if KIND == F16 {
        mma_m16n8k16_f16(a, b, c)
    } else {
        mma_m16n8k16_bf16(a, b, c)
    }
}

/// One slice's two mmas from lane chunks `lo` (weight row `g`), `hi` (row `g + 8`), `x`
/// (input row `g`); see the module docs for the K permutation.
#[inline(always)]
fn slice_mma<const KIND: u32>(lo: u32x4, hi: u32x4, x: u32x4, acc: &mut [[f32; 4]; 2]) {
    acc[0] = mma::<KIND>([lo.x, hi.x, lo.y, hi.y], [x.x, x.y], acc[0]);
    acc[1] = mma::<KIND>([lo.z, hi.z, lo.w, hi.w], [x.z, x.w], acc[1]);
}

/// The kernel body; see the module documentation.
#[inline(always)]
unsafe fn smallm_body<const KIND: u32>(p: &GemmParams, a: *const u16, b: *const u16, bias: *const f32, c: *mut u16) {
    let lane = lane_id();
    let (g, q) = (lane >> 2, lane & 3);
    let warp = thread_idx_x() >> 5;
    let nw = block_dim_x() >> 5;
    let n0 = block_idx_x() * SMALLM_ROWS;
    let (m, n, k) = (p.m, p.n, p.k);
    let vec = p.lda & 7 == 0 && p.ldb & 7 == 0;
    let (row_lo, row_hi) = (n0 + g, n0 + g + 8);
    let (ok_lo, ok_hi, ok_x) = (row_lo < n, row_hi < n, g < m);
    // Row bases are formed only for rows that exist (`chunk` reads nothing otherwise).
    let base = |ptr: *const u16, row: u32, ld: u32, ok: bool| {
        if ok {
            unsafe { ptr.add(row as usize * ld as usize) }
        } else {
            ptr
        }
    };
    let w_lo = base(b, row_lo, p.ldb, ok_lo);
    let w_hi = base(b, row_hi, p.ldb, ok_hi);
    let xr = base(a, g, p.lda, ok_x);
    let slices = k.div_ceil(SLICE);
    // Slices whose every chunk is one aligned vector inside K: the unrolled main loop.
    let full = if vec { k / SLICE } else { 0 };
    let lane_off = 8 * q;
    let mut acc = [[0.0f32; 4]; 2];
    let mut s = warp;
    // One step = UNROLL slices `s, s + nw, ..`, all inside `full`. Register double
    // buffer: the next step's 12 loads are issued before this step's mmas, so they are
    // in flight across the loop's back edge (without it ptxas sinks each slice's loads
    // down to their mma, leaving 3 in flight per lane). Loop conditions are warp-uniform:
    // every lane reaches every mma.
    let step_ok = |s: u32| s + (UNROLL - 1) * nw < full;
    let load_step = |s: u32, on: bool| {
        let mut c = [[ZERO; 3]; 4];
        unroll4!(U => {
            let kk = ((s + U as u32 * nw) * SLICE + lane_off) as usize;
            unsafe {
                c[U][0] = ld16_if(w_lo.add(kk), on && ok_lo, true);
                c[U][1] = ld16_if(w_hi.add(kk), on && ok_hi, true);
                c[U][2] = ld16_if(xr.add(kk), on && ok_x, false);
            }
        });
        c
    };
    if step_ok(s) {
        let mut cur = load_step(s, true);
        loop {
            let next = s + UNROLL * nw;
            let more = step_ok(next);
            // Addresses past `full` are formed but not read when `!more`.
            let nxt = load_step(if more { next } else { s }, more);
            unroll4!(U => {
                slice_mma::<KIND>(cur[U][0], cur[U][1], cur[U][2], &mut acc);
            });
            s = next;
            if !more {
                break;
            }
            cur = nxt;
        }
    }
    // The rest: fewer than UNROLL full slices per warp, the partial last slice, or every
    // slice when the rows are not 16-byte aligned.
    while s < slices {
        let kk = s * SLICE + lane_off;
        let (lo, hi, x) = unsafe {
            (
                chunk(w_lo, kk, k, ok_lo, vec, true),
                chunk(w_hi, kk, k, ok_hi, vec, true),
                chunk(xr, kk, k, ok_x, vec, false),
            )
        };
        slice_mma::<KIND>(lo, hi, x, &mut acc);
        s += nw;
    }

    // Cross-warp reduction: [warp][i][lane], conflict-free.
    let red = shared_array!(smallm_red: [f32; (SMALLM_MAX_WARPS * 4 * 32) as usize]);
    unroll4!(I => {
        unsafe { *red.add(((warp * 4 + I as u32) * 32 + lane) as usize) = acc[0][I] + acc[1][I] };
    });
    sync_threads();
    if warp != 0 {
        return;
    }
    let mut v = [0.0f32; 4];
    let mut w = 0;
    while w < nw {
        unroll4!(I => {
            v[I] += unsafe { *red.add(((w * 4 + I as u32) * 32 + lane) as usize) };
        });
        w += 1;
    }
    let has_bias = p.epilogue & EPI_BIAS != 0;
    let has_c = p.beta != 0.0;
    unroll4!(I => {
        let i = I as u32;
        let row = n0 + g + 8 * (i >> 1);
        let col = 2 * q + (i & 1);
        if row < n && col < m {
            let idx = col as usize * p.ldc as usize + row as usize;
            let bv = if has_bias { unsafe { ld_global_nc_f32(bias.add(row as usize)) } } else { 0.0 };
            let mut y = fma(v[I], p.alpha, bv);
            unsafe {
                if has_c {
                    let old = *c.add(idx);
                    let old = if KIND == F16 { f16(old).to_f32() } else { bf16(old).to_f32() };
                    y = fma(old, p.beta, y);
                }
                let y = activate(y, p.act, p.act_min, p.act_max);
                *c.add(idx) = if KIND == F16 { f16::from_f32(y).0 } else { bf16::from_f32(y).0 };
            }
        }
    });
}

/// Small-batch GEMM / fully connected layer, f16: `c = act(alpha · a · bᵀ + beta · c +
/// bias)` with `a [m, k]`, `b [n, k]` (a Linear weight), `c [m, n]`, `m <= 8`. Grid
/// `ceil(n / 16)`, block `32·nw` threads (`1 <= nw <= 16`), no dynamic shared memory;
/// see the module documentation for the mapping and preconditions.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn gemm_smallm_f16(
    p: GemmParams,
    a: *const u16,
    b: *const u16,
    bias: *const f32,
    c: *mut u16,
) {
    unsafe { smallm_body::<F16>(&p, a, b, bias, c) }
}

/// As [`gemm_smallm_f16`] for bf16 data.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn gemm_smallm_bf16(
    p: GemmParams,
    a: *const u16,
    b: *const u16,
    bias: *const f32,
    c: *mut u16,
) {
    unsafe { smallm_body::<BF16>(&p, a, b, bias, c) }
}
