//! Tensor-core implicit-GEMM convolution (NHWC) and GEMM: `mma.sync` with f16/bf16 inputs
//! (m16n8k16) or tf32 from f32 data (m16n8k8), f32 accumulation, fused epilogue.
//!
//! # The GEMM view
//! A convolution is `Y[M, N] = A[M, K] · B[N, K]ᵀ` with `M = n·out_h·out_w` (one row per
//! output pixel, NHWC order), `N = c_out`, `K = kh·kw·c_in` ordered `(r, s, c)` with the
//! channel fastest. Row `m` of A is the receptive field of pixel `m` gathered from the
//! NHWC input (zeros in the padding); row `n` of B is output channel `n`'s OHWI (KRSC)
//! filter, which is exactly contiguous in `K`. `Y` is the NHWC output (`y[m·c_out + n]`).
//! The GEMM kernels use the same machinery on a row-major `A [m, k]` and a `B [n, k]`
//! (a Linear layer's weight).
//!
//! # Tiling
//! * 128 threads = 4 warps, each owning a 64 × 64 sub-tile of the block tile: 4 (m16) ×
//!   8 (n8) mma tiles, 128 f32 accumulators per thread. Two block shapes: `128 × 128`
//!   (warps 2 × 2; every kernel) and `256 × 64` (warps 4 × 1; the `*_n64` conv kernels,
//!   for `c_out <= 64`, where a 128-wide N tile would be half empty).
//! * `K` is consumed in slices of 4 "chunks" of 16 bytes per row: 32 elements for
//!   f16/bf16, 16 for f32/tf32.
//! * Grid: one block per `(tile_m, tile_n)`, linearised with the N tile fastest
//!   (`blockIdx.x = tile_m · tiles_n + tile_n`) so the blocks sharing an A panel run
//!   together and the panel is read from DRAM once. Dynamic shared memory:
//!   [`SMEM_BYTES`] / [`SMEM_BYTES_N64`] (the launcher raises the 48 KiB default).
//!
//! # Shared memory
//! `STAGES = 4` stages, each `A[BM rows][64 B]` then `B[BN rows][64 B]`. A row holds the
//! 4 chunks of one K slice; chunk `j` of row `r` is stored at chunk position
//! `j ^ ((r >> 1) & 3)`. Two 64-byte rows share a 128-byte bank line, so without the XOR
//! the 8 rows an `ldmatrix` phase reads (8 consecutive rows, same logical chunk) would
//! hit each bank pair twice; with it they hit 8 distinct 16-byte bank groups. After the
//! main loop the same memory holds the epilogue's staged accumulator tile.
//!
//! # Loads (global → shared)
//! Thread `t` owns chunk column `j = t & 3` of rows `(t >> 2) + 32 i` in both A and B
//! (`BM / 32` A rows, `BN / 32` B rows): one 16-byte copy each per K slice. Every chunk
//! it loads has the same K index `kk = slice·32 + 8 j` (f16), so one `(r, s, c)`
//! decomposition per thread is advanced incrementally slice after slice, together with
//! the tap's element offset `((r·dil_h)·w + s·dil_w)·c_in + c`, which is the same for
//! all its rows: a chunk's address is its row's window origin plus that offset, and its
//! validity two unsigned compares of the row's window origin against `h` and `w`.
//! Fast path (`c_in % 8 == 0` for 16-bit, `% 4` for f32; GEMM: `k`, `lda`, `ldb`
//! likewise): a chunk is 8 (4) consecutive channels of one tap, so one `cp.async.cg`
//! 16-byte copy, zero-filled (`ignore-src` on sm_90a, src-size 0 on sm_80) for padding
//! taps, rows past `M`/`N` and `kk >= K`. Gather path (`*_gather` kernels, any `c_in`,
//! e.g. 3 for a network's first conv, or any `k`/`ld`): each element is loaded on its
//! own (zero outside) and the chunk written with `st.shared.v4`; slower but exact, and K
//! stays packed (no MMA work on padding channels).
//!
//! # Pipeline
//! 4-stage `cp.async` ring; every thread commits exactly one group per slice (empty past
//! the end), so `cp.async.wait_group 2` + `bar.sync` means "the next slice has landed
//! and is visible, and every warp is done with the stage about to be refilled". The
//! prologue issues slices 0..3 and waits for slice 0. Iteration `kt` (fast kernels):
//! load k-step 1 fragments of slice `kt`; issue slice `kt + 3` into the stage read in
//! iteration `kt − 1`; mma k-step 0; wait + barrier (slice `kt + 1`); load k-step 0
//! fragments of slice `kt + 1`; mma k-step 1. The tensor cores thus have a k-step of
//! work in flight across the barrier and across the next slice's `ldmatrix` latency
//! (fragments double-buffered in registers, as CUTLASS's multistage mainloop). The
//! gather kernels, bound by their element loads, use the plain order (barrier, then
//! both k-steps) to stay within registers.
//!
//! # Fragments
//! Per 16-wide (f16) / 8-wide (tf32) k-step, a warp loads its A fragments with 4
//! `ldmatrix.x4` (lane `l` addresses row `l % 16`, chunk `l / 16` of an m16 tile) and
//! its B fragments with 4 `ldmatrix.x4` (lane `l` addresses n-row `8·(l / 16) + l % 8`,
//! chunk `(l / 8) % 2`: registers 0,1 are `b0,b1` of one n8 tile, 2,3 of the next).
//! B is stored K-contiguous per output channel, which is the mma "col" operand, so no
//! `.trans`. For tf32 the same addressing yields the m16n8k8 tf32 fragments (an 8×8 b16
//! matrix is 8 rows × 4 f32), converted with `cvt.rna.tf32.f32` after the load.
//!
//! # Epilogue
//! The accumulators are staged through shared memory (see [`epilogue`]) so that each
//! warp instruction then writes whole output rows: `v = acc (+ bias[n]) (* scale[n] +
//! shift[n]) (+ residual) → act` in f32, rounded once to the output type, 4 columns per
//! lane in one 8-byte (16-bit types) or 16-byte (f32) store when the row pitch is a
//! multiple of 4, element stores otherwise. Every store is bounds-checked.
//!
//! # Split-K (`gemm_tc_splitk_*`, `gemm_tf32_splitk*`)
//! For GEMMs with too few 128 × 128 tiles to fill the SMs (a fully connected layer at
//! small batch), `gridDim.y` K splits each run the same main loop over a contiguous run
//! of K slices and write raw f32 partial tiles to a `[splits][m][n]` workspace; the
//! `gemm_splitk_reduce_*` kernel sums the slabs in split order and applies the epilogue.
//!
//! # Preconditions (checked by `cnnergy_host::launch::tensorcore`)
//! `groups == 1`; every tensor < 2^31 elements; all pointers 16-byte aligned; fast
//! kernels need the channel/`k`/`ld` alignment above; GEMM: `trans_a == 0`,
//! `trans_b == 1`.

use crate::dcore::cp_async::{commit_group, wait_group};
use crate::dcore::mem::ld_global_nc_f32;
use crate::dcore::mma::{ldmatrix_x4, mma_m16n8k16_bf16, mma_m16n8k16_f16, mma_m16n8k8_tf32, tf32_from_f32};
use crate::dcore::prelude::*;
use crate::dcore::smem::{dyn_smem_addr, ld_shared_f32x4, st_shared_u32x4};
use crate::params::*;

/// `unroll!(i in N => { .. })`: the body repeated `N` times (2, 4 or 8) with `i` bound to
/// the literal `0usize, 1usize, ..`, so fragment/accumulator arrays are indexed by
/// constants only and stay in registers (LLVM does not fully unroll the nested loops
/// of the mma block by itself).
macro_rules! unroll {
    ($i:ident in 2 => $body:block) => {{
        { let $i: usize = 0; $body }
        { let $i: usize = 1; $body }
    }};
    ($i:ident in 4 => $body:block) => {{
        unroll!($i in 2 => $body);
        { let $i: usize = 2; $body }
        { let $i: usize = 3; $body }
    }};
    ($i:ident in 8 => $body:block) => {{
        unroll!($i in 4 => $body);
        { let $i: usize = 4; $body }
        { let $i: usize = 5; $body }
        { let $i: usize = 6; $body }
        { let $i: usize = 7; $body }
    }};
}

/// Threads per block (4 warps, each 64 × 64).
pub const THREADS: u32 = 128;
/// 16-byte chunks per row in one K slice.
const CHUNKS: u32 = 4;
/// Bytes per shared row (one K slice of one row).
const ROW_BYTES: u32 = CHUNKS * 16;
/// Pipeline depth.
pub const STAGES: u32 = 4;

/// Shared bytes for a `bm × bn` tile: the pipeline stages or the staged epilogue tile
/// (`bm × (bn + 8)` f32), whichever is larger.
const fn smem_bytes(bm: u32, bn: u32) -> u32 {
    let pipeline = STAGES * (bm + bn) * ROW_BYTES;
    let epilogue = bm * (bn + 8) * 4;
    if pipeline > epilogue {
        pipeline
    } else {
        epilogue
    }
}
/// Dynamic shared memory of the 128 × 128 kernels (68 KiB).
pub const SMEM_BYTES: u32 = smem_bytes(128, 128);
/// Dynamic shared memory of the 256 × 64 (`*_n64`) kernels (80 KiB).
pub const SMEM_BYTES_N64: u32 = smem_bytes(256, 64);

/// Element kinds (const-generic parameter).
const F16: u32 = 0;
const BF16: u32 = 1;
const TF32: u32 = 2;

/// Bytes per element of a kind.
#[inline(always)]
const fn elem_bytes(kind: u32) -> u32 {
    if kind == TF32 {
        4
    } else {
        2
    }
}

/// Window rows that can never be valid (`ih` of an A row past `M`, or of every row once
/// `kk >= K`): far outside any image but no overflow when a tap offset is added.
const OUTSIDE: i32 = -(1 << 30);

/// `cp.async.cg.shared.global` of 16 bytes, zero-filled when `!valid`: the `ignore-src`
/// predicate form where the PTX version has it (8.0, the sm_90a module), else the
/// src-size operand (PTX 7.0). When `!valid` nothing is read, so `src` may be any
/// address (as CUTLASS's zero-fill iterators rely on).
#[inline(always)]
unsafe fn cp_async_16(dst: u32, src: *const u8, valid: bool) {
    #[cfg(target_feature = "ptx80")]
    unsafe {
        asm!(
            "{{ .reg .pred p; .reg .u64 g; setp.eq.u32 p, {v}, 0; cvta.to.global.u64 g, {s}; cp.async.cg.shared.global [{d}], [g], 16, p; }}",
            d = in(reg32) dst,
            s = in(reg64) src,
            v = in(reg32) valid as u32,
            options(nostack),
        );
    }
    #[cfg(not(target_feature = "ptx80"))]
    unsafe {
        crate::dcore::cp_async::cp_async_cg_16_zfill(dst, src, if valid { 16 } else { 0 });
    }
}

/// Per-thread global→shared loader: geometry, the A and B rows this thread copies, and
/// the K position of its chunk column. Arrays are sized for the largest tile; only the
/// first `BM / 32` (`BN / 32`) entries are used.
struct Loader {
    a: *const u8,
    b: *const u8,
    // Conv geometry (GEMM: unused except `k`).
    h: u32,
    w: u32,
    c: u32,
    kw: u32,
    dh: u32,
    dw: u32,
    /// K (elements).
    k: u32,
    /// Element offset of each A row's origin: conv, the window's top-left tap
    /// `img·h·w·c + (ih0·w + iw0)·c` (wrapping: may be "negative" in the padding); GEMM,
    /// `m·lda`.
    a_off: [u32; 8],
    /// Conv: top-left input coordinate of each A row's window (`oy·sh − pad`);
    /// [`OUTSIDE`] for rows past `M`.
    a_ih: [i32; 8],
    a_iw: [i32; 8],
    /// Element offset of each B row: `n·ldb` (`ldb = K` for conv weights).
    b_off: [u32; 4],
    /// Bit `i`: A row `i` is inside `M` (GEMM); bit `8 + i`: B row `i` is inside `N`.
    rows_ok: u32,
    /// K index (elements) of this thread's chunk in the slice about to be loaded.
    kk: u32,
    /// Conv: `kk` as (channel, filter column, filter row), plus `s·dw` and `r·dh`, and
    /// the tap's element offset from the window origin, `(r·dh·w + s·dw)·c + cc`.
    cc: u32,
    s: u32,
    sdw: u32,
    rdh: u32,
    tap: u32,
    /// Shared byte offset of this thread's chunk in row `t >> 2` of a stage (swizzled).
    st_off: u32,
}

impl Loader {
    /// Moves to the next K slice (`4 · 16 / elem_bytes` elements further).
    #[inline(always)]
    fn advance<const CONV: bool>(&mut self, es: u32) {
        let step = CHUNKS * 16 / es;
        self.kk += step;
        if CONV {
            self.cc += step;
            // At most once when c_in >= step; several times for small c_in.
            while self.cc >= self.c {
                self.cc -= self.c;
                self.s += 1;
                self.sdw += self.dw;
                if self.s == self.kw {
                    self.s = 0;
                    self.sdw = 0;
                    self.rdh += self.dh;
                }
            }
            self.tap = (self.rdh * self.w + self.sdw) * self.c + self.cc;
        }
    }

    /// Fast path: issues this thread's `cp.async` copies of the current slice into the
    /// stage at shared address `stage` (`2·WM` A rows at `stage`, then `2·WN` B rows).
    #[inline(always)]
    unsafe fn load_async<const CONV: bool, const WM: u32, const WN: u32>(&self, stage: u32, es: u32) {
        let (a_rows, b_rows) = (2 * WM, 2 * WN);
        let k_ok = self.kk < self.k;
        // Past K every A row is outside the image (conv), or masked (GEMM).
        let rdh = if k_ok { self.rdh as i32 } else { OUTSIDE };
        unroll!(i in 8 => {
            if (i as u32) < a_rows {
                let (ok, off) = if CONV {
                    let ih = self.a_ih[i] + rdh;
                    let iw = self.a_iw[i] + self.sdw as i32;
                    ((ih as u32) < self.h && (iw as u32) < self.w, self.a_off[i].wrapping_add(self.tap))
                } else {
                    (k_ok && (self.rows_ok >> i) & 1 != 0, self.a_off[i] + self.kk)
                };
                // Not dereferenced when !ok (zero fill), so no clamping of the address.
                let dst = stage + self.st_off + (i as u32) * 32 * ROW_BYTES;
                unsafe { cp_async_16(dst, self.a.wrapping_add(off as usize * es as usize), ok) };
            }
        });
        let b_stage = stage + a_rows * 32 * ROW_BYTES;
        unroll!(i in 4 => {
            if (i as u32) < b_rows {
                let ok = k_ok && (self.rows_ok >> (8 + i)) & 1 != 0;
                let off = self.b_off[i] + self.kk;
                let dst = b_stage + self.st_off + (i as u32) * 32 * ROW_BYTES;
                unsafe { cp_async_16(dst, self.b.wrapping_add(off as usize * es as usize), ok) };
            }
        });
    }

    /// Gather path: loads every element of this thread's chunks on its own (zero where
    /// out of range) and stores the chunks with `st.shared.v4`.
    #[inline(always)]
    #[allow(unused_assignments)] // the last unrolled element's index step is dead
    unsafe fn load_gather<const CONV: bool, const WM: u32, const WN: u32>(&self, stage: u32, es: u32) {
        let (a_rows, b_rows) = (2 * WM, 2 * WN);
        let epc = 16 / es; // elements per chunk
        let mut wa = [[0u32; 4]; 8];
        let mut wb = [[0u32; 4]; 4];
        // Element e of the chunk: K index kk + e, decomposed incrementally.
        let (mut cc, mut s, mut sdw, mut rdh) = (self.cc, self.s, self.sdw, self.rdh);
        unroll!(e in 8 => {
            let e = e as u32;
            if e < epc {
                let kk = self.kk + e;
                let k_ok = kk < self.k;
                let word = (e * es / 4) as usize;
                let shift = (e * es * 8) % 32;
                let tap = (rdh * self.w + sdw) * self.c + cc;
                unroll!(i in 8 => {
                    if (i as u32) < a_rows {
                        let (ok, off) = if CONV {
                            let ih = self.a_ih[i] + rdh as i32;
                            let iw = self.a_iw[i] + sdw as i32;
                            (k_ok && (ih as u32) < self.h && (iw as u32) < self.w, self.a_off[i].wrapping_add(tap))
                        } else {
                            (k_ok && (self.rows_ok >> i) & 1 != 0, self.a_off[i] + kk)
                        };
                        if ok {
                            wa[i][word] |= unsafe { load_bits(self.a, off, es) } << shift;
                        }
                    }
                });
                unroll!(i in 4 => {
                    if (i as u32) < b_rows && k_ok && (self.rows_ok >> (8 + i)) & 1 != 0 {
                        wb[i][word] |= unsafe { load_bits(self.b, self.b_off[i] + kk, es) } << shift;
                    }
                });
                if CONV {
                    cc += 1;
                    if cc == self.c {
                        cc = 0;
                        s += 1;
                        sdw += self.dw;
                        if s == self.kw {
                            s = 0;
                            sdw = 0;
                            rdh += self.dh;
                        }
                    }
                }
            }
        });
        unroll!(i in 8 => {
            if (i as u32) < a_rows {
                let dst = stage + self.st_off + (i as u32) * 32 * ROW_BYTES;
                unsafe { st_shared_u32x4(dst, u32x4 { x: wa[i][0], y: wa[i][1], z: wa[i][2], w: wa[i][3] }) };
            }
        });
        let b_stage = stage + a_rows * 32 * ROW_BYTES;
        unroll!(i in 4 => {
            if (i as u32) < b_rows {
                let dst = b_stage + self.st_off + (i as u32) * 32 * ROW_BYTES;
                unsafe { st_shared_u32x4(dst, u32x4 { x: wb[i][0], y: wb[i][1], z: wb[i][2], w: wb[i][3] }) };
            }
        });
    }
}

/// The raw bits of element `off` of `base` (16- or 32-bit), zero-extended.
#[inline(always)]
unsafe fn load_bits(base: *const u8, off: u32, es: u32) -> u32 {
    unsafe {
        if es == 2 {
            *(base.add(off as usize * 2) as *const u16) as u32
        } else {
            *(base.add(off as usize * 4) as *const u32)
        }
    }
}

/// One k-step's fragments of a warp's 64 × 64 sub-tile: A (4 m16 tiles) and B (8 n8
/// tiles), already in the mma's input format (tf32 converted).
struct Frags {
    a: [[u32; 4]; 4],
    b: [[u32; 2]; 8],
}

/// Loads k-step `ks` (0 or 1) of the slice whose A rows start at `a_stage` and B rows at
/// `b_stage`; `a_off`/`b_off` are this lane's `ldmatrix` byte offsets for both k-steps
/// (warp sub-tile included).
#[inline(always)]
unsafe fn load_frags<const KIND: u32>(
    f: &mut Frags,
    a_stage: u32,
    b_stage: u32,
    a_off: [u32; 2],
    b_off: [u32; 2],
    ks: usize,
) {
    unroll!(mi in 4 => {
        f.a[mi] = unsafe { ldmatrix_x4(a_stage + a_off[ks] + (mi as u32) * 16 * ROW_BYTES) };
    });
    unroll!(nj in 4 => {
        let r = unsafe { ldmatrix_x4(b_stage + b_off[ks] + (nj as u32) * 16 * ROW_BYTES) };
        f.b[2 * nj] = [r[0], r[1]];
        f.b[2 * nj + 1] = [r[2], r[3]];
    });
    if KIND == TF32 {
        unroll!(mi in 4 => {
            unroll!(q in 4 => {
                f.a[mi][q] = tf32_from_f32(f32::from_bits(f.a[mi][q]));
            });
        });
        unroll!(ni in 8 => {
            unroll!(q in 2 => {
                f.b[ni][q] = tf32_from_f32(f32::from_bits(f.b[ni][q]));
            });
        });
    }
}

/// The 32 mma of one k-step: `acc += A · B` over the warp's 4 × 8 tiles.
#[inline(always)]
fn mma_step<const KIND: u32>(acc: &mut [[[f32; 4]; 8]; 4], f: &Frags) {
    unroll!(mi in 4 => {
        unroll!(ni in 8 => {
            acc[mi][ni] = if KIND == F16 {
                mma_m16n8k16_f16(f.a[mi], f.b[ni], acc[mi][ni])
            } else if KIND == BF16 {
                mma_m16n8k16_bf16(f.a[mi], f.b[ni], acc[mi][ni])
            } else {
                mma_m16n8k8_tf32(f.a[mi], f.b[ni], acc[mi][ni])
            };
        });
    });
}

/// Epilogue operands and flags, uniform over the block.
struct Epi {
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    /// Conv: residual (same layout as `y`); GEMM with `beta != 0`: `y` itself.
    res: *const u8,
    /// Multiplier of `res` (1 for a conv residual, `beta` for GEMM).
    res_mul: f32,
    /// Multiplier of the accumulator (GEMM `alpha`; 1 for conv).
    alpha: f32,
    flags: u32,
    act: u32,
    act_min: f32,
    act_max: f32,
    y: *mut u8,
    /// Valid rows / columns and the row pitch of `y` (and `res`) in elements.
    m: u32,
    n: u32,
    ld: u32,
}

/// Residual / C input flag (either `EPI_RESIDUAL` or GEMM `beta != 0`).
const HAS_RES: u32 = EPI_RESIDUAL;

#[inline(always)]
fn activate(v: f32, act: u32, lo: f32, hi: f32) -> f32 {
    // Comparisons written so a NaN passes through (as the reference does).
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
    } else if act == ACT_SIGMOID {
        v.sigmoid()
    } else if act == ACT_TANH {
        v.tanh()
    } else {
        v
    }
}

/// Reads element `idx` of a 16/32-bit tensor as f32.
#[inline(always)]
unsafe fn read_elem<const KIND: u32>(p: *const u8, idx: u32) -> f32 {
    unsafe {
        if KIND == TF32 {
            *(p.add(idx as usize * 4) as *const f32)
        } else {
            let b = *(p.add(idx as usize * 2) as *const u16);
            if KIND == F16 {
                f16(b).to_f32()
            } else {
                bf16(b).to_f32()
            }
        }
    }
}

#[inline(always)]
unsafe fn write_elem<const KIND: u32>(p: *mut u8, idx: u32, v: f32) {
    unsafe {
        if KIND == TF32 {
            *(p.add(idx as usize * 4) as *mut f32) = v;
        } else if KIND == F16 {
            *(p.add(idx as usize * 2) as *mut u16) = f16::from_f32(v).0;
        } else {
            *(p.add(idx as usize * 2) as *mut u16) = bf16::from_f32(v).0;
        }
    }
}

/// Eight bytes as two words (an 8-byte-aligned vector access).
#[repr(C, align(8))]
struct U32x2 {
    x: u32,
    y: u32,
}
impl Clone for U32x2 {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}
impl Copy for U32x2 {}

/// `st.shared.v2.f32`.
#[inline(always)]
unsafe fn st_shared_f32x2(addr: u32, x: f32, y: f32) {
    unsafe {
        asm!(
            "st.shared.v2.f32 [{a}], {{{x}, {y}}};",
            a = in(reg32) addr,
            x = in(reg32) x,
            y = in(reg32) y,
            options(nostack),
        );
    }
}

/// Elements `idx .. idx + 4` (`idx % 4 == 0`) as f32, in one 8- or 16-byte access.
#[inline(always)]
unsafe fn read4<const KIND: u32>(p: *const u8, idx: u32) -> [f32; 4] {
    unsafe {
        if KIND == TF32 {
            let v = *(p.add(idx as usize * 4) as *const f32x4);
            [v.x, v.y, v.z, v.w]
        } else {
            let w = *(p.add(idx as usize * 2) as *const U32x2);
            let ((a, b), (c, d)) = if KIND == F16 {
                (half2(w.x).to_f32(), half2(w.y).to_f32())
            } else {
                (bf16x2(w.x).to_f32(), bf16x2(w.y).to_f32())
            };
            [a, b, c, d]
        }
    }
}

/// Stores `v` at elements `idx .. idx + 4` (`idx % 4 == 0`) in one access.
#[inline(always)]
unsafe fn write4<const KIND: u32>(p: *mut u8, idx: u32, v: [f32; 4]) {
    unsafe {
        if KIND == TF32 {
            *(p.add(idx as usize * 4) as *mut f32x4) = f32x4 { x: v[0], y: v[1], z: v[2], w: v[3] };
        } else {
            let w = if KIND == F16 {
                U32x2 { x: half2::from_f32(v[0], v[1]).0, y: half2::from_f32(v[2], v[3]).0 }
            } else {
                U32x2 { x: bf16x2::from_f32(v[0], v[1]).0, y: bf16x2::from_f32(v[2], v[3]).0 }
            };
            *(p.add(idx as usize * 2) as *mut U32x2) = w;
        }
    }
}

/// Writes the block's `64·WM × 64·WN` accumulator tile through the epilogue. `smem`:
/// the dynamic shared segment (free once the main loop is done).
///
/// Stage 1: every warp stores its fragments into a `BM × (BN + 8)` f32 tile (the 8
/// words of padding put the 8-byte fragment writes of a half-warp — rows `g`, columns
/// `2t` — on 32 distinct banks). Stage 2: thread `tid` owns output columns
/// `n0 + 4·(tid % (BN/4)) .. +4` (bias/scale/shift read once per thread) and rows
/// `tid / (BN/4) + k·128/(BN/4)`: each warp instruction moves one or two whole tile rows
/// (256 contiguous bytes of a 16-bit output, 512 for f32), one 8-byte (16-byte) store
/// per lane when the row pitch is a multiple of 4, element stores otherwise.
#[inline(always)]
unsafe fn epilogue<const KIND: u32, const WM: u32, const WN: u32>(
    e: &Epi,
    acc: &[[[f32; 4]; 8]; 4],
    m0: u32,
    n0: u32,
    smem: u32,
) {
    let (bm, bn) = (64 * WM, 64 * WN);
    let pitch = bn + 8;
    let tid = thread_idx_x();
    let (lane, warp) = (tid & 31, tid >> 5);
    let (wm, wn) = (warp % WM, warp / WM);
    let (g, t) = (lane >> 2, lane & 3);
    // Everyone is done reading the pipeline stages before they are overwritten.
    sync_threads();
    unroll!(mi in 4 => {
        unroll!(ni in 8 => {
            unroll!(half in 2 => {
                let row = wm * 64 + (mi as u32) * 16 + g + 8 * (half as u32);
                let col = wn * 64 + (ni as u32) * 8 + 2 * t;
                unsafe {
                    st_shared_f32x2(smem + (row * pitch + col) * 4, acc[mi][ni][2 * half], acc[mi][ni][2 * half + 1])
                };
            });
        });
    });
    sync_threads();

    let quads = bn / 4;
    let quad = tid % quads;
    let col = n0 + 4 * quad;
    let mut bias = [0.0f32; 4];
    let mut scale = [1.0f32; 4];
    let mut shift = [0.0f32; 4];
    unroll!(q in 4 => {
        let c = col + q as u32;
        if c < e.n {
            if e.flags & EPI_BIAS != 0 {
                bias[q] = unsafe { ld_global_nc_f32(e.bias.add(c as usize)) };
            }
            if e.flags & EPI_SCALE_SHIFT != 0 {
                scale[q] = unsafe { ld_global_nc_f32(e.scale.add(c as usize)) };
                shift[q] = unsafe { ld_global_nc_f32(e.shift.add(c as usize)) };
            }
        }
    });
    let vector = e.ld & 3 == 0 && col + 3 < e.n;
    let mut r = tid / quads;
    while r < bm {
        let row = m0 + r;
        if row < e.m && col < e.n {
            let s = unsafe { ld_shared_f32x4(smem + (r * pitch + 4 * quad) * 4) };
            let mut v = [s.x, s.y, s.z, s.w];
            let idx = row * e.ld + col;
            let mut res = [0.0f32; 4];
            if e.flags & HAS_RES != 0 {
                if vector {
                    res = unsafe { read4::<KIND>(e.res, idx) };
                } else {
                    unroll!(q in 4 => {
                        if col + (q as u32) < e.n {
                            res[q] = unsafe { read_elem::<KIND>(e.res, idx + q as u32) };
                        }
                    });
                }
            }
            unroll!(q in 4 => {
                let mut x = fma(v[q], e.alpha, bias[q]);
                if e.flags & EPI_SCALE_SHIFT != 0 {
                    x = fma(x, scale[q], shift[q]);
                }
                if e.flags & HAS_RES != 0 {
                    x = fma(res[q], e.res_mul, x);
                }
                v[q] = activate(x, e.act, e.act_min, e.act_max);
            });
            if vector {
                unsafe { write4::<KIND>(e.y, idx, v) };
            } else {
                unroll!(q in 4 => {
                    if col + (q as u32) < e.n {
                        unsafe { write_elem::<KIND>(e.y, idx + q as u32, v[q]) };
                    }
                });
            }
        }
        r += THREADS / quads;
    }
}

/// The shared main loop + epilogue for a `64·WM × 64·WN` tile at `(m0, n0)`. `ld` holds
/// the per-thread A/B row setup done by the caller. `SPLITK = false`: the loop covers the
/// whole K (`k_begin` must be 0). `SPLITK = true` (split-K partial): it covers K from
/// `k_begin` (a multiple of the slice width, where `ld.kk` starts) up to `ld.k`, the end
/// of the split's range (nothing when `k_begin >= ld.k`: the tile is then zero), and the
/// epilogue writes f32 whatever the input kind.
#[inline(always)]
unsafe fn mainloop<
    const KIND: u32,
    const CONV: bool,
    const GATHER: bool,
    const WM: u32,
    const WN: u32,
    const SPLITK: bool,
>(
    mut ld: Loader,
    e: &Epi,
    m0: u32,
    n0: u32,
    k_begin: u32,
) {
    let es = elem_bytes(KIND);
    let step = CHUNKS * 16 / es;
    // (The non-split kernels keep their original trip count computation.)
    let num_k = if !SPLITK {
        ld.k.div_ceil(step)
    } else if ld.k > k_begin {
        (ld.k - k_begin).div_ceil(step)
    } else {
        0
    };
    let smem = dyn_smem_addr();
    let a_bytes = 64 * WM * ROW_BYTES;
    let stage_bytes = 64 * (WM + WN) * ROW_BYTES;

    let tid = thread_idx_x();
    let lane = tid & 31;
    let warp = tid >> 5;
    let (wm, wn) = (warp % WM, warp / WM);
    let sw = (lane >> 1) & 3;
    let a_row = (wm * 64 + (lane & 15)) * ROW_BYTES;
    let b_row = (wn * 64 + ((lane >> 4) << 3) + (lane & 7)) * ROW_BYTES;
    let (a_hi, b_hi) = (lane >> 4, (lane >> 3) & 1);
    let a_off = [a_row + ((a_hi ^ sw) << 4), a_row + (((2 + a_hi) ^ sw) << 4)];
    let b_off = [b_row + ((b_hi ^ sw) << 4), b_row + (((2 + b_hi) ^ sw) << 4)];

    let mut acc = [[[0.0f32; 4]; 8]; 4];
    let mut f0 = Frags { a: [[0; 4]; 4], b: [[0; 2]; 8] };
    let mut f1 = Frags { a: [[0; 4]; 4], b: [[0; 2]; 8] };

    // Prologue: slices 0 .. STAGES-1, one commit group each (possibly empty).
    for s in 0..STAGES - 1 {
        if s < num_k {
            let stage = smem + s * stage_bytes;
            unsafe {
                if GATHER {
                    ld.load_gather::<CONV, WM, WN>(stage, es);
                } else {
                    ld.load_async::<CONV, WM, WN>(stage, es);
                }
            }
            ld.advance::<CONV>(es);
        }
        commit_group();
    }
    if GATHER {
        // The gather kernels are bound by their element loads; the plain loop (one
        // barrier, then both k-steps) keeps their register use low.
        let mut read_stage = 0u32;
        let mut write_stage = STAGES - 1;
        let mut kt = 0u32;
        while kt < num_k {
            wait_group::<{ STAGES - 2 }>();
            sync_threads();
            if kt + STAGES - 1 < num_k {
                unsafe { ld.load_gather::<CONV, WM, WN>(smem + write_stage * stage_bytes, es) };
                ld.advance::<CONV>(es);
            }
            commit_group();
            let stage = smem + read_stage * stage_bytes;
            unsafe { load_frags::<KIND>(&mut f0, stage, stage + a_bytes, a_off, b_off, 0) };
            mma_step::<KIND>(&mut acc, &f0);
            unsafe { load_frags::<KIND>(&mut f1, stage, stage + a_bytes, a_off, b_off, 1) };
            mma_step::<KIND>(&mut acc, &f1);
            read_stage = if read_stage == STAGES - 1 { 0 } else { read_stage + 1 };
            write_stage = if write_stage == STAGES - 1 { 0 } else { write_stage + 1 };
            kt += 1;
        }
    } else {
        // Slice 0 has landed; its first k-step's fragments go to f0.
        wait_group::<{ STAGES - 2 }>();
        sync_threads();
        unsafe { load_frags::<KIND>(&mut f0, smem, smem + a_bytes, a_off, b_off, 0) };

        // Iteration kt computes slice kt (stage kt % STAGES). Its k-step 0 runs while the
        // barrier for slice kt + 1 is pending, and slice kt + 1's k-step 0 fragments are
        // loaded before slice kt's k-step 1 runs, so neither the barrier nor the
        // `ldmatrix` latency stalls the tensor cores.
        let mut read_stage = 0u32;
        let mut write_stage = STAGES - 1;
        let mut kt = 0u32;
        while kt < num_k {
            let stage = smem + read_stage * stage_bytes;
            unsafe { load_frags::<KIND>(&mut f1, stage, stage + a_bytes, a_off, b_off, 1) };
            // Refill the stage every warp finished reading before the last barrier.
            if kt + STAGES - 1 < num_k {
                let stage = smem + write_stage * stage_bytes;
                unsafe { ld.load_async::<CONV, WM, WN>(stage, es) };
                ld.advance::<CONV>(es);
            }
            commit_group();
            mma_step::<KIND>(&mut acc, &f0);
            // Slice kt + 1 has landed (this thread's copies), then everyone's are visible,
            // and everyone is done reading slice kt's stage (refilled next iteration).
            wait_group::<{ STAGES - 2 }>();
            sync_threads();
            read_stage = if read_stage == STAGES - 1 { 0 } else { read_stage + 1 };
            write_stage = if write_stage == STAGES - 1 { 0 } else { write_stage + 1 };
            // Past the last slice this reads a stale stage: harmless, never used.
            let stage = smem + read_stage * stage_bytes;
            unsafe { load_frags::<KIND>(&mut f0, stage, stage + a_bytes, a_off, b_off, 0) };
            mma_step::<KIND>(&mut acc, &f1);
            kt += 1;
        }
    }
    // Only empty groups can still be pending here; drain them anyway before exit.
    wait_group::<0>();

    unsafe {
        if SPLITK {
            epilogue::<TF32, WM, WN>(e, &acc, m0, n0, smem)
        } else {
            epilogue::<KIND, WM, WN>(e, &acc, m0, n0, smem)
        }
    };
}

/// This block's tile origin `(m0, n0)` for `bm × bn` tiles over `n_total` columns.
#[inline(always)]
fn tile_origin(n_total: u32, bm: u32, bn: u32) -> (u32, u32) {
    let tiles_n = n_total.div_ceil(bn);
    let bid = block_idx_x();
    let tm = bid / tiles_n;
    let tn = bid - tm * tiles_n;
    (tm * bm, tn * bn)
}

/// This thread's first row, chunk column, and swizzled chunk offset within a stage.
#[inline(always)]
fn loader_slot() -> (u32, u32, u32) {
    let tid = thread_idx_x();
    let j = tid & 3;
    let r = tid >> 2;
    (r, j, r * ROW_BYTES + ((j ^ ((r >> 1) & 3)) << 4))
}

#[inline(always)]
unsafe fn conv_body<const KIND: u32, const GATHER: bool, const WM: u32, const WN: u32>(
    p: &ConvParams,
    x: *const u8,
    w: *const u8,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const u8,
    y: *mut u8,
) {
    let es = elem_bytes(KIND);
    let m_total = p.n * p.out_h * p.out_w;
    let n_total = p.c_out;
    let k_total = p.kh * p.kw * p.c_in;
    let (m0, n0) = tile_origin(n_total, 64 * WM, 64 * WN);
    let (r, j, st_off) = loader_slot();
    let ohw = p.out_h * p.out_w;

    let mut ld = Loader {
        a: x,
        b: w,
        h: p.h,
        w: p.w,
        c: p.c_in,
        kw: p.kw,
        dh: p.dil_h,
        dw: p.dil_w,
        k: k_total,
        a_off: [0; 8],
        a_ih: [OUTSIDE; 8],
        a_iw: [0; 8],
        b_off: [0; 4],
        rows_ok: 0,
        kk: j * (16 / es),
        cc: 0,
        s: 0,
        sdw: 0,
        rdh: 0,
        tap: 0,
        st_off,
    };
    unroll!(i in 8 => {
        if (i as u32) < 2 * WM {
            let m = m0 + r + 32 * (i as u32);
            if m < m_total {
                let img = m / ohw;
                let rem = m - img * ohw;
                let oy = rem / p.out_w;
                let ox = rem - oy * p.out_w;
                let ih = (oy * p.stride_h) as i32 - p.pad_h as i32;
                let iw = (ox * p.stride_w) as i32 - p.pad_w as i32;
                ld.a_ih[i] = ih;
                ld.a_iw[i] = iw;
                // Wrapping: the origin may lie in the padding; valid taps land inside.
                ld.a_off[i] = (img * p.h * p.w * p.c_in)
                    .wrapping_add((ih.wrapping_mul(p.w as i32).wrapping_add(iw) as u32).wrapping_mul(p.c_in));
                ld.rows_ok |= 1 << i;
            }
        }
    });
    unroll!(i in 4 => {
        if (i as u32) < 2 * WN {
            let n = n0 + r + 32 * (i as u32);
            if n < n_total {
                ld.b_off[i] = n * k_total;
                ld.rows_ok |= 1 << (8 + i);
            }
        }
    });
    // Decompose the starting K index (chunk column j of slice 0).
    let tap = ld.kk / p.c_in;
    ld.cc = ld.kk - tap * p.c_in;
    let rr = tap / p.kw;
    ld.s = tap - rr * p.kw;
    ld.sdw = ld.s * p.dil_w;
    ld.rdh = rr * p.dil_h;
    ld.tap = (ld.rdh * p.w + ld.sdw) * p.c_in + ld.cc;

    let e = Epi {
        bias,
        scale,
        shift,
        res: residual,
        res_mul: 1.0,
        alpha: 1.0,
        flags: p.epilogue & (EPI_BIAS | EPI_SCALE_SHIFT | EPI_RESIDUAL),
        act: p.act,
        act_min: p.act_min,
        act_max: p.act_max,
        y,
        m: m_total,
        n: n_total,
        ld: n_total,
    };
    unsafe { mainloop::<KIND, true, GATHER, WM, WN, false>(ld, &e, m0, n0, 0) };
}

/// The loader of a GEMM tile at `(m0, n0)` over the K range `[k_begin, k_end)`
/// (`k_begin` a multiple of the slice width): rows `m·lda` of A and `n·ldb` of B, this
/// thread's chunk column at `k_begin + j·(16 / es)`, everything at or past `k_end` zero.
#[inline(always)]
fn gemm_loader<const KIND: u32>(
    p: &GemmParams,
    a: *const u8,
    b: *const u8,
    m0: u32,
    n0: u32,
    k_begin: u32,
    k_end: u32,
) -> Loader {
    let es = elem_bytes(KIND);
    let (r, j, st_off) = loader_slot();
    let mut ld = Loader {
        a,
        b,
        h: 1,
        w: 1,
        c: 1,
        kw: 1,
        dh: 0,
        dw: 0,
        k: k_end,
        a_off: [0; 8],
        a_ih: [0; 8],
        a_iw: [0; 8],
        b_off: [0; 4],
        rows_ok: 0,
        kk: k_begin + j * (16 / es),
        cc: 0,
        s: 0,
        sdw: 0,
        rdh: 0,
        tap: 0,
        st_off,
    };
    unroll!(i in 4 => {
        let m = m0 + r + 32 * (i as u32);
        if m < p.m {
            ld.a_off[i] = m * p.lda;
            ld.rows_ok |= 1 << i;
        }
        let n = n0 + r + 32 * (i as u32);
        if n < p.n {
            ld.b_off[i] = n * p.ldb;
            ld.rows_ok |= 1 << (8 + i);
        }
    });
    ld
}

#[inline(always)]
unsafe fn gemm_body<const KIND: u32, const GATHER: bool>(
    p: &GemmParams,
    a: *const u8,
    b: *const u8,
    bias: *const f32,
    c: *mut u8,
) {
    let (m0, n0) = tile_origin(p.n, 128, 128);
    let ld = gemm_loader::<KIND>(p, a, b, m0, n0, 0, p.k);
    let e = Epi {
        bias,
        scale: bias,
        shift: bias,
        res: c as *const u8,
        res_mul: p.beta,
        alpha: p.alpha,
        flags: (p.epilogue & EPI_BIAS) | if p.beta != 0.0 { HAS_RES } else { 0 },
        act: p.act,
        act_min: p.act_min,
        act_max: p.act_max,
        y: c,
        m: p.m,
        n: p.n,
        ld: p.ldc,
    };
    unsafe { mainloop::<KIND, false, GATHER, 2, 2, false>(ld, &e, m0, n0, 0) };
}

/// Split-K partial GEMM: block `(blockIdx.x, blockIdx.y)` = (128 × 128 output tile, K
/// split `s`). Split `s` covers the K slices `[s·sps, (s+1)·sps)` (`sps` =
/// `slices_per_split`, slices of 32 elements for f16/bf16, 16 for tf32), i.e. K
/// `[s·sps·w, min((s+1)·sps·w, k))`, and writes its raw f32 sums `Σ_k a[m,k]·b[n,k]` to
/// `ws[s·m·n + m·n_cols + n]` (densely packed `[splits][m][n]`; no alpha, bias, beta or
/// activation — [`splitk_reduce`] applies them). A split past the end of K writes zeros.
/// Main loop, loads and shared memory exactly as the `gemm_tc_*` kernels.
#[inline(always)]
unsafe fn gemm_splitk_body<const KIND: u32, const GATHER: bool>(
    p: &GemmParams,
    a: *const u8,
    b: *const u8,
    ws: *mut f32,
    slices_per_split: u32,
) {
    let step = CHUNKS * 16 / elem_bytes(KIND);
    let (m0, n0) = tile_origin(p.n, 128, 128);
    let split = block_idx_y();
    // In elements; a split past K gets an empty range (k_end <= k_begin).
    let k_begin = split * slices_per_split * step;
    let k_end = (k_begin + slices_per_split * step).min(p.k);
    let ld = gemm_loader::<KIND>(p, a, b, m0, n0, k_begin, k_end);
    let slab = split as usize * p.m as usize * p.n as usize;
    let e = Epi {
        bias: null(),
        scale: null(),
        shift: null(),
        res: null(),
        res_mul: 0.0,
        alpha: 1.0,
        flags: 0,
        act: ACT_NONE,
        act_min: 0.0,
        act_max: 0.0,
        y: unsafe { ws.add(slab) } as *mut u8,
        m: p.m,
        n: p.n,
        ld: p.n,
    };
    unsafe { mainloop::<KIND, false, GATHER, 2, 2, true>(ld, &e, m0, n0, k_begin) };
}

/// Second pass of split-K: `c[m, n] = act(alpha · Σ_s ws[s][m][n] + bias[n] + beta ·
/// c[m, n])` (bias if `epilogue & EPI_BIAS`, the `c` term only when `beta != 0`), the
/// same epilogue as the `gemm_tc_*` kernels, computed in f32 and rounded once to `c`'s
/// type. The splits are summed in order `s = 0, 1, ..`, four slab loads in flight.
///
/// Thread mapping: grid-stride over the `m·n` outputs in row-major order, four columns
/// per item (16-byte slab loads, one 8/16-byte store) when `n % 4 == 0` and `ldc % 4 ==
/// 0`, one element per item otherwise. Any 1-D grid.
#[inline(always)]
unsafe fn splitk_reduce<const KIND: u32>(p: &GemmParams, ws: *const f32, splits: u32, bias: *const f32, c: *mut u8) {
    let (m, n) = (p.m, p.n);
    let mn = (m * n) as usize;
    let vec = n & 3 == 0 && p.ldc & 3 == 0;
    let per_row = if vec { n >> 2 } else { n };
    let items = m * per_row;
    let fd = crate::pool::FastDiv::new(per_row);
    let has_bias = p.epilogue & EPI_BIAS != 0;
    let has_c = p.beta != 0.0;
    let stride = grid_stride_x();
    let mut i = global_idx_x();
    while i < items {
        let (row, cq) = fd.divmod(i);
        let col = if vec { cq * 4 } else { cq };
        let at = (row * n + col) as usize;
        let mut v = [0.0f32; 4];
        let mut s = 0;
        while s < splits {
            let mut part = [[0.0f32; 4]; 4];
            unroll!(u in 4 => {
                if s + (u as u32) < splits {
                    let q = unsafe { ws.add((s as usize + u) * mn + at) };
                    if vec {
                        let t = unsafe { crate::dcore::mem::ld_global_nc_f32x4(q) };
                        part[u] = [t.x, t.y, t.z, t.w];
                    } else {
                        part[u][0] = unsafe { ld_global_nc_f32(q) };
                    }
                }
            });
            unroll!(u in 4 => {
                if s + (u as u32) < splits {
                    unroll!(q in 4 => {
                        v[q] += part[u][q];
                    });
                }
            });
            s += 4;
        }
        let idx = row * p.ldc + col;
        let lanes = if vec { 4 } else { 1 };
        let mut old = [0.0f32; 4];
        if has_c {
            if vec {
                old = unsafe { read4::<KIND>(c as *const u8, idx) };
            } else {
                old[0] = unsafe { read_elem::<KIND>(c as *const u8, idx) };
            }
        }
        unroll!(q in 4 => {
            if (q as u32) < lanes {
                let b = if has_bias { unsafe { ld_global_nc_f32(bias.add((col + q as u32) as usize)) } } else { 0.0 };
                let mut x = fma(v[q], p.alpha, b);
                if has_c {
                    x = fma(old[q], p.beta, x);
                }
                v[q] = activate(x, p.act, p.act_min, p.act_max);
            }
        });
        if vec {
            unsafe { write4::<KIND>(c, idx, v) };
        } else {
            unsafe { write_elem::<KIND>(c, idx, v[0]) };
        }
        i += stride;
    }
}

macro_rules! conv_kernels {
    ($($name:ident, $t:ty, $kind:expr, $gather:expr, $wm:expr, $wn:expr;)*) => {$(
        /// Tensor-core implicit-GEMM convolution, NHWC activations, OHWI weights; see
        /// the module documentation for tiling, launch configuration and preconditions.
        #[no_mangle]
        pub unsafe extern "ptx-kernel" fn $name(
            p: ConvParams,
            x: *const $t,
            w: *const $t,
            bias: *const f32,
            scale: *const f32,
            shift: *const f32,
            residual: *const $t,
            y: *mut $t,
        ) {
            unsafe {
                conv_body::<{ $kind }, { $gather }, { $wm }, { $wn }>(
                    &p,
                    x as *const u8,
                    w as *const u8,
                    bias,
                    scale,
                    shift,
                    residual as *const u8,
                    y as *mut u8,
                )
            }
        }
    )*};
}

conv_kernels! {
    conv2d_igemm_tc_f16_nhwc, u16, F16, false, 2, 2;
    conv2d_igemm_tc_bf16_nhwc, u16, BF16, false, 2, 2;
    conv2d_igemm_tf32_nhwc, f32, TF32, false, 2, 2;
    conv2d_igemm_tc_f16_nhwc_n64, u16, F16, false, 4, 1;
    conv2d_igemm_tc_bf16_nhwc_n64, u16, BF16, false, 4, 1;
    conv2d_igemm_tf32_nhwc_n64, f32, TF32, false, 4, 1;
    conv2d_igemm_tc_f16_nhwc_gather, u16, F16, true, 2, 2;
    conv2d_igemm_tc_bf16_nhwc_gather, u16, BF16, true, 2, 2;
    conv2d_igemm_tf32_nhwc_gather, f32, TF32, true, 2, 2;
}

macro_rules! gemm_kernels {
    ($($name:ident, $t:ty, $kind:expr, $gather:expr;)*) => {$(
        /// Tensor-core GEMM `c = act(alpha · a · bᵀ + beta · c + bias)`, `a [m, k]`,
        /// `b [n, k]`, `c [m, n]` row-major with leading dimensions, `c` in the input
        /// type; see the module documentation.
        #[no_mangle]
        pub unsafe extern "ptx-kernel" fn $name(p: GemmParams, a: *const $t, b: *const $t, bias: *const f32, c: *mut $t) {
            unsafe { gemm_body::<{ $kind }, { $gather }>(&p, a as *const u8, b as *const u8, bias, c as *mut u8) }
        }
    )*};
}

gemm_kernels! {
    gemm_tc_f16, u16, F16, false;
    gemm_tc_bf16, u16, BF16, false;
    gemm_tf32, f32, TF32, false;
    gemm_tc_f16_gather, u16, F16, true;
    gemm_tc_bf16_gather, u16, BF16, true;
    gemm_tf32_gather, f32, TF32, true;
}

macro_rules! splitk_kernels {
    ($($name:ident, $t:ty, $kind:expr, $gather:expr;)*) => {$(
        /// Split-K tensor-core GEMM, first pass: f32 partial sums of `a · bᵀ` per K split
        /// into `ws` (`[gridDim.y][m][n]`); see `gemm_splitk_body` for the mapping and
        /// the module documentation for tiling and preconditions. Grid
        /// `(ceil(m/128)·ceil(n/128), splits)`, 128 threads, [`SMEM_BYTES`] dynamic shared
        /// memory. `ws` holds `splits·m·n` f32, 16-byte aligned; `slices_per_split >= 1`;
        /// `splits·m·n < 2^31`.
        #[no_mangle]
        pub unsafe extern "ptx-kernel" fn $name(p: GemmParams, a: *const $t, b: *const $t, ws: *mut f32, slices_per_split: u32) {
            unsafe { gemm_splitk_body::<{ $kind }, { $gather }>(&p, a as *const u8, b as *const u8, ws, slices_per_split) }
        }
    )*};
}

splitk_kernels! {
    gemm_tc_splitk_f16, u16, F16, false;
    gemm_tc_splitk_bf16, u16, BF16, false;
    gemm_tf32_splitk, f32, TF32, false;
    gemm_tc_splitk_f16_gather, u16, F16, true;
    gemm_tc_splitk_bf16_gather, u16, BF16, true;
    gemm_tf32_splitk_gather, f32, TF32, true;
}

macro_rules! splitk_reduce_kernels {
    ($($name:ident, $t:ty, $kind:expr;)*) => {$(
        /// Split-K second pass: sums the `splits` f32 slabs of `ws` and applies the GEMM
        /// epilogue into `c` (see `splitk_reduce`). Any 1-D grid. `ws` holds
        /// `splits·m·n` f32 written by the matching `*_splitk*` kernel, `c` is `[m, ldc]`
        /// in the input type (read too when `beta != 0`), `bias` `[n]` f32 (may be null
        /// without `EPI_BIAS`); all 16-byte aligned; `splits >= 1`.
        #[no_mangle]
        pub unsafe extern "ptx-kernel" fn $name(p: GemmParams, ws: *const f32, splits: u32, bias: *const f32, c: *mut $t) {
            unsafe { splitk_reduce::<{ $kind }>(&p, ws, splits, bias, c as *mut u8) }
        }
    )*};
}

splitk_reduce_kernels! {
    gemm_splitk_reduce_f16, u16, F16;
    gemm_splitk_reduce_bf16, u16, BF16;
    gemm_splitk_reduce_f32, f32, TF32;
}
