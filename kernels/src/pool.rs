//! Pooling on NCHW f32: max and average over any window (stride, asymmetric padding,
//! dilation for max), and a specialised global average pool; plus NHWC f16 max/average
//! and a dedicated NHWC (f16/bf16/f32) global average pool ([`global_avg_nhwc`]: 16-byte
//! channel vectors per thread, pixels split over the block's rows, no window arithmetic).
//!
//! Also home of [`FastDiv`], the division-free index arithmetic the memory-bound kernels
//! use to split flat indices into coordinates.

use crate::dcore::half::f16;
use crate::dcore::mem::{ld_global_nc_f32, ld_global_nc_f32x4, ld_global_nc_u32x4, st_global_u32x4, u32x4};
use crate::dcore::prelude::*;
use crate::dcore::warp::sum_f32;
use crate::eltwise::unroll4;
use crate::params::*;

/// Planes a warp of [`pool_global_avg_f32_nchw`] reduces at once (planes larger than
/// [`GLOBAL_SMALL_HW`]).
pub const PLANES_PER_WARP: u32 = 8;
/// Largest plane (`h*w`) the staged global-average path takes.
pub const GLOBAL_SMALL_HW: u32 = 64;
/// Planes (= threads) per block of the staged global-average path.
pub const GLOBAL_SMALL_PLANES: u32 = 128;

/// Division and remainder by a fixed `u32` divisor `d >= 1` with one `mul.hi` and a
/// shift (Granlund–Montgomery, the round-up variant of Hacker's Delight §10-9, as in
/// PyTorch's `IntDivider`): `q = (mulhi(n, m) + n) >> s` with `s = ceil(log2 d)` and
/// `m = floor(2^32 (2^s - d) / d) + 1`. Exact for every `n < 2^31` (the `+ n` cannot
/// wrap), which is every index here (tensors have fewer than 2^31 elements).
///
/// Building one costs a 64-bit division (a short subroutine in SASS), so kernels build
/// them once per thread, outside their loops.
pub struct FastDiv {
    d: u32,
    m: u32,
    s: u32,
}

/// `#[derive(Clone, Copy)]` is not available without `core`'s derive macros.
macro_rules! plain_copy {
    ($t:ty) => {
        impl crate::dcore::lang::Clone for $t {
            #[inline(always)]
            fn clone(&self) -> Self {
                *self
            }
        }
        impl Copy for $t {}
    };
}
#[allow(unused_imports)]
pub(crate) use plain_copy;
plain_copy!(FastDiv);

impl FastDiv {
    /// Precomputes the multiplier for `d` (must be >= 1; `d = 0` gives garbage, never a
    /// trap). `floor(2^32 (2^s - d) / d)` comes from one f64 division (fast on sm_80+'s
    /// FP64 units, unlike the `div.u64` subroutine): the exact quotient is below 2^32 and,
    /// when not an integer, at least `1/d >= 2^-31` from the next one, far more than its
    /// f64 rounding error (≤ 2^-21), so truncating the correctly rounded quotient is exact.
    #[inline(always)]
    pub fn new(d: u32) -> FastDiv {
        // s = ceil(log2 d): 0 for d = 1.
        let s = if d <= 1 { 0 } else { 32 - (d - 1).leading_zeros() };
        let a = ((1u64 << s) - d as u64) as f64;
        let m = if d == 0 { 0 } else { ((a * 4_294_967_296.0) / d as f64) as u32 + 1 };
        FastDiv { d, m, s }
    }
    /// The divisor.
    #[inline(always)]
    pub fn d(self) -> u32 {
        self.d
    }
    /// `n / d` for `n < 2^31`.
    #[inline(always)]
    pub fn div(self, n: u32) -> u32 {
        let t: u32;
        unsafe {
            asm!("mul.hi.u32 {t}, {n}, {m};", t = out(reg32) t, n = in(reg32) n, m = in(reg32) self.m, options(pure, nomem, nostack));
        }
        (t + n) >> self.s
    }
    /// `(n / d, n % d)` for `n < 2^31`.
    #[inline(always)]
    pub fn divmod(self, n: u32) -> (u32, u32) {
        let q = self.div(n);
        (q, n - q * self.d)
    }
    /// `n % d` for `n < 2^31`.
    #[inline(always)]
    pub fn rem(self, n: u32) -> u32 {
        n - self.div(n) * self.d
    }
}

/// Max with NaN propagation, as PyTorch (and the reference): `max.NaN.f32` (sm_80+) —
/// a NaN operand gives NaN, so a NaN tap wins and stays.
#[inline(always)]
fn max_nan(m: f32, v: f32) -> f32 {
    let r: f32;
    unsafe {
        asm!("max.NaN.f32 {r}, {a}, {b};", r = out(reg32) r, a = in(reg32) m, b = in(reg32) v, options(pure, nomem, nostack));
    }
    r
}

/// Max (`KIND = POOL_MAX`) or average (`KIND = POOL_AVG`) pooling over one output element
/// per thread, grid-stride over `n * c * out_h * out_w` outputs in memory order. `K > 0`
/// is a square `K x K` window known at compile time: the tap loops unroll and all taps'
/// loads are issued before the first is consumed; `K = 0` loops over the runtime window.
/// Taps outside the input are skipped by predicate.
#[inline(always)]
unsafe fn window_pool<const KIND: u32, const K: u32>(p: &PoolParams, x: *const f32, y: *mut f32) {
    let total = p.n * p.c * p.out_h * p.out_w;
    let (fd_ow, fd_oh) = (FastDiv::new(p.out_w), FastDiv::new(p.out_h));
    let (h, w) = (p.h as i32, p.w as i32);
    let (kh, kw) = if K > 0 { (K as i32, K as i32) } else { (p.kh as i32, p.kw as i32) };
    let (dh, dw) = (p.dil_h as i32, p.dil_w as i32);
    let plane = p.h * p.w;
    // The whole ceil-mode window clipped to the padded input, for count_include_pad.
    let (h_pad_end, w_pad_end) = (h + p.pad_b as i32, w + p.pad_r as i32);
    let stride = grid_stride_x();
    let mut i = global_idx_x();
    while i < total {
        let (rest, ox) = fd_ow.divmod(i);
        let (pl, oy) = fd_oh.divmod(rest);
        let y0 = (oy * p.stride_h) as i32 - p.pad_h as i32;
        let x0 = (ox * p.stride_w) as i32 - p.pad_w as i32;
        let src = x.add((pl * plane) as usize);
        let mut m = f32::NEG_INFINITY;
        let mut sum = 0.0f32;
        // Windows wholly inside the input (most of them) skip the per-tap bounds checks,
        // so all their loads issue back to back.
        let inside = y0 >= 0 && y0 + (kh - 1) * dh < h && x0 >= 0 && x0 + (kw - 1) * dw < w;
        let mut ky = 0;
        while ky < kh {
            let iy = y0 + ky * dh;
            let row_ok = iy >= 0 && iy < h;
            let row = src.wrapping_offset((iy * w) as isize);
            let mut kx = 0;
            while kx < kw {
                let ix = x0 + kx * dw;
                if inside || (row_ok && ix >= 0 && ix < w) {
                    let v = ld_global_nc_f32(row.wrapping_offset(ix as isize));
                    if KIND == POOL_MAX {
                        m = max_nan(m, v);
                    } else {
                        sum += v;
                    }
                }
                kx += 1;
            }
            ky += 1;
        }
        let out = if KIND == POOL_MAX {
            m
        } else {
            // Average pooling has no dilation (ops::Pool2d rejects it): the taps inside the
            // input are the rectangle [max(y0,0), min(y0+kh,h)) x [max(x0,0), min(x0+kw,w)).
            let count = if p.count_include_pad != 0 {
                ((y0 + kh).min(h_pad_end) - y0) * ((x0 + kw).min(w_pad_end) - x0)
            } else {
                ((y0 + kh).min(h) - y0.max(0)) * ((x0 + kw).min(w) - x0.max(0))
            };
            // rcp.approx (≤ 1 ulp) and a multiply: ≤ 1.5 ulp, against ~20 instructions
            // for an IEEE division.
            sum * crate::eltwise::rcp(count as f32)
        };
        *y.add(i as usize) = out;
        i += stride;
    }
}

/// Runs `$f::<KIND, K>` with `K` = 2 or 3 for those square windows, else 0 (runtime).
macro_rules! dispatch_k {
    ($p:expr, $f:ident, $kind:expr, $($arg:expr),*) => {{
        let p = $p;
        if p.kh == 3 && p.kw == 3 {
            $f::<{ $kind }, 3>($($arg),*)
        } else if p.kh == 2 && p.kw == 2 {
            $f::<{ $kind }, 2>($($arg),*)
        } else {
            $f::<{ $kind }, 0>($($arg),*)
        }
    }};
}

/// Max pooling, NCHW f32: `y[n,c,oy,ox] = max` over the dilated window's taps that fall
/// inside the input (padding never wins; a NaN tap propagates; a window with no tap inside
/// gives -inf). Window start: `(oy*stride_h - pad_h, ox*stride_w - pad_w)`.
///
/// Thread mapping: one output element per thread per step of a grid-stride loop over
/// `n*c*out_h*out_w` in memory order (coalesced stores; neighbouring threads read
/// overlapping windows through the read-only cache). Any 1-D grid works.
///
/// # Safety
/// `x` holds `n*c*h*w` f32, `y` holds `n*c*out_h*out_w` f32 and does not overlap `x`;
/// `out_h`, `out_w` >= 1 and consistent with the window (the host computes them, ceil
/// mode included); all counts < 2^31.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_max_f32_nchw(p: PoolParams, x: *const f32, y: *mut f32) {
    unsafe { dispatch_k!(&p, window_pool, POOL_MAX, &p, x, y) }
}

/// Average pooling, NCHW f32 (no dilation): the sum of the window's taps inside the
/// input divided by
/// * `count_include_pad = 0`: the number of those taps;
/// * `count_include_pad != 0`: the window clipped to the padded input,
///   `(min(y0+kh, h+pad_b) - y0) * (min(x0+kw, w+pad_r) - x0)` with `y0 = oy*stride_h -
///   pad_h`: padding counts, the part of a ceil-mode window hanging past the bottom/right
///   padding does not (PyTorch's divisor).
///
/// Thread mapping and safety as [`pool_max_f32_nchw`]; additionally `dil_h = dil_w = 1`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_avg_f32_nchw(p: PoolParams, x: *const f32, y: *mut f32) {
    unsafe { dispatch_k!(&p, window_pool, POOL_AVG, &p, x, y) }
}

/// Global average pooling, NCHW f32: `y[n,c] = mean(x[n,c,:,:])` (window = the whole
/// `h x w` plane; the other geometry fields are ignored).
///
/// Thread mapping:
/// * `h*w <= 64` (the 7x7 and 8x8 pools that end ResNet, MobileNet, Inception): blocks of
///   exactly [`GLOBAL_SMALL_PLANES`] = 128 threads, each block owning 128 consecutive
///   planes (grid-stride), staged through shared memory as described in the code: one
///   coalesced 16-byte read of the data, one coalesced store of 128 means.
/// * larger planes: one warp per group of [`PLANES_PER_WARP`] consecutive planes
///   (grid-stride over groups); the lanes read each plane coalesced — 16-byte loads when
///   `h*w % 4 == 0`, 4-byte loads otherwise — with the loads of all the group's planes
///   issued together, accumulate in f32 and reduce with five `shfl.xor` steps per plane;
///   lane 0 stores `sum / (h*w)`. Blocks of any multiple of 32 threads.
///
/// # Safety
/// `x` holds `n*c*h*w` f32 and is 16-byte aligned; `y` holds `n*c` f32; `h*w >= 1`; all
/// counts < 2^31.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_global_avg_f32_nchw(p: PoolParams, x: *const f32, y: *mut f32) {
    let planes = p.n * p.c;
    let hw = p.h * p.w;
    let hw_f = hw as f32;
    if hw <= GLOBAL_SMALL_HW {
        // Small planes (7x7, 8x8): a block of GLOBAL_SMALL_PLANES threads owns that many
        // consecutive planes — one contiguous, 16-byte aligned run of `planes * hw`
        // elements. It is read with coalesced 16-byte loads (four in flight per thread)
        // into shared memory (element `e` at `e + e/32`, so the stores and the per-plane
        // reads below are (nearly) conflict-free), then thread `t` sums plane `t`.
        let tile = shared_array!(global_avg_tile: [f32; 128 * 64 + 128 * 64 / 32]);
        let t = thread_idx_x();
        let pad = |e: u32| (e + (e >> 5)) as usize;
        let mut first = block_idx_x() * GLOBAL_SMALL_PLANES;
        while first < planes {
            let np = (planes - first).min(GLOBAL_SMALL_PLANES);
            let count = np * hw;
            let src = x.add(first as usize * hw as usize);
            let n4 = count >> 2;
            let mut i = t;
            while i < n4 {
                let mut v = [f32x4::splat(0.0); 4];
                unroll4!(U => {
                    let j = i + U as u32 * GLOBAL_SMALL_PLANES;
                    if j < n4 {
                        v[U] = ld_global_nc_f32x4(src.add((j * 4) as usize));
                    }
                });
                unroll4!(U => {
                    let j = i + U as u32 * GLOBAL_SMALL_PLANES;
                    if j < n4 {
                        let e = j * 4;
                        *tile.add(pad(e)) = v[U].x;
                        *tile.add(pad(e + 1)) = v[U].y;
                        *tile.add(pad(e + 2)) = v[U].z;
                        *tile.add(pad(e + 3)) = v[U].w;
                    }
                });
                i += 4 * GLOBAL_SMALL_PLANES;
            }
            let e = n4 * 4 + t;
            if e < count {
                *tile.add(pad(e)) = ld_global_nc_f32(src.add(e as usize));
            }
            sync_threads();
            if t < np {
                let mut s0 = 0.0f32;
                let mut s1 = 0.0f32;
                let base = t * hw;
                let mut k = 0;
                while k + 1 < hw {
                    s0 += *tile.add(pad(base + k));
                    s1 += *tile.add(pad(base + k + 1));
                    k += 2;
                }
                if k < hw {
                    s0 += *tile.add(pad(base + k));
                }
                *y.add((first + t) as usize) = (s0 + s1) / hw_f;
            }
            // The tile is refilled for the next run only after everyone has summed.
            sync_threads();
            first += grid_dim_x() * GLOBAL_SMALL_PLANES;
        }
        return;
    }
    let lane = thread_idx_x() & 31;
    let warps_per_block = block_dim_x() >> 5;
    let warp_stride = grid_dim_x() * warps_per_block * PLANES_PER_WARP;
    let mut first = (block_idx_x() * warps_per_block + (thread_idx_x() >> 5)) * PLANES_PER_WARP;
    let vec = hw & 3 == 0;
    // Work items per plane: 16-byte vectors or elements.
    let items = if vec { hw >> 2 } else { hw };
    while first < planes {
        // PLANES_PER_WARP planes at once: every lane issues its loads for all of them
        // before adding, so a warp keeps 8 (16-byte or 4-byte) loads in flight even for
        // 7x7 planes.
        let mut s = [0.0f32; PLANES_PER_WARP as usize];
        let mut j = lane;
        while j < items {
            let mut v = [0.0f32; PLANES_PER_WARP as usize];
            let load = |pl: u32| {
                let src = x.add(pl as usize * hw as usize);
                if vec {
                    let a = ld_global_nc_f32x4(src.add((j * 4) as usize));
                    (a.x + a.y) + (a.z + a.w)
                } else {
                    ld_global_nc_f32(src.add(j as usize))
                }
            };
            unroll4!(U => {
                if first + (U as u32) < planes {
                    v[U] = load(first + U as u32);
                }
                if first + (U as u32) + 4 < planes {
                    v[U + 4] = load(first + U as u32 + 4);
                }
            });
            unroll4!(U => {
                s[U] += v[U];
                s[U + 4] += v[U + 4];
            });
            j += 32;
        }
        unroll4!(U => {
            let (t0, t1) = (sum_f32(s[U]), sum_f32(s[U + 4]));
            let pl = first + U as u32;
            if lane == 0 && pl < planes {
                *y.add(pl as usize) = t0 / hw_f;
            }
            if lane == 0 && pl + 4 < planes {
                *y.add(pl as usize + 4) = t1 / hw_f;
            }
        });
        first += warp_stride;
    }
}

/// Max or average pooling on NHWC f16, eight channels (16 bytes) per thread, f32
/// arithmetic, one rounding to f16 at the end.
#[inline(always)]
unsafe fn window_pool_nhwc_f16<const KIND: u32, const K: u32>(p: &PoolParams, x: *const u16, y: *mut u16) {
    let c8 = p.c >> 3;
    let total = p.n * p.out_h * p.out_w * c8;
    let (fd_c8, fd_ow, fd_oh) = (FastDiv::new(c8), FastDiv::new(p.out_w), FastDiv::new(p.out_h));
    let (h, w) = (p.h as i32, p.w as i32);
    let (kh, kw) = if K > 0 { (K as i32, K as i32) } else { (p.kh as i32, p.kw as i32) };
    let (dh, dw) = (p.dil_h as i32, p.dil_w as i32);
    let (h_pad_end, w_pad_end) = (h + p.pad_b as i32, w + p.pad_r as i32);
    let stride = grid_stride_x();
    let mut i = global_idx_x();
    while i < total {
        let (pix, cv) = fd_c8.divmod(i);
        let (rest, ox) = fd_ow.divmod(pix);
        let (n, oy) = fd_oh.divmod(rest);
        let y0 = (oy * p.stride_h) as i32 - p.pad_h as i32;
        let x0 = (ox * p.stride_w) as i32 - p.pad_w as i32;
        // Element offset of (n, 0, 0, 8*cv).
        let base = x.add((n * p.h * p.w * p.c + cv * 8) as usize);
        let init = if KIND == POOL_MAX { f32::NEG_INFINITY } else { 0.0 };
        let mut acc = [init; 8];
        let mut ky = 0;
        while ky < kh {
            let iy = y0 + ky * dh;
            let mut kx = 0;
            while kx < kw {
                let ix = x0 + kx * dw;
                if iy >= 0 && iy < h && ix >= 0 && ix < w {
                    let v = ld_global_nc_u32x4(base.add(((iy * w + ix) as u32 * p.c) as usize) as *const u32);
                    let words = [v.x, v.y, v.z, v.w];
                    unroll4!(K2 => {
                        let lo = f16::from_bits(words[K2] as u16).to_f32();
                        let hi = f16::from_bits((words[K2] >> 16) as u16).to_f32();
                        if KIND == POOL_MAX {
                            acc[2 * K2] = max_nan(acc[2 * K2], lo);
                            acc[2 * K2 + 1] = max_nan(acc[2 * K2 + 1], hi);
                        } else {
                            acc[2 * K2] += lo;
                            acc[2 * K2 + 1] += hi;
                        }
                    });
                }
                kx += 1;
            }
            ky += 1;
        }
        if KIND == POOL_AVG {
            let count = if p.count_include_pad != 0 {
                ((y0 + kh).min(h_pad_end) - y0) * ((x0 + kw).min(w_pad_end) - x0)
            } else {
                ((y0 + kh).min(h) - y0.max(0)) * ((x0 + kw).min(w) - x0.max(0))
            };
            let inv = count as f32;
            let mut k = 0;
            while k < 8 {
                acc[k] /= inv;
                k += 1;
            }
        }
        let mut out = [0u32; 4];
        let mut k = 0;
        while k < 4 {
            out[k] = crate::dcore::half::half2::from_f32(acc[2 * k], acc[2 * k + 1]).0;
            k += 1;
        }
        st_global_u32x4(y.add((i * 8) as usize) as *mut u32, u32x4 { x: out[0], y: out[1], z: out[2], w: out[3] });
        i += stride;
    }
}

/// Max pooling, NHWC f16 (same window semantics as [`pool_max_f32_nchw`]), computed in
/// f32 and rounded once to f16 (max is exact).
///
/// Thread mapping: one thread per (output pixel, group of 8 channels): a 16-byte load per
/// tap, a 16-byte store; grid-stride over `n*out_h*out_w*c/8` in memory order.
///
/// # Safety
/// `c % 8 == 0`; `x` holds `n*h*w*c` f16 and `y` holds `n*out_h*out_w*c` f16, both
/// 16-byte aligned and not overlapping; counts < 2^31.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_max_f16_nhwc(p: PoolParams, x: *const u16, y: *mut u16) {
    unsafe { dispatch_k!(&p, window_pool_nhwc_f16, POOL_MAX, &p, x, y) }
}

/// Average pooling, NHWC f16 (divisor as [`pool_avg_f32_nchw`]), summed in f32, one
/// rounding to f16. Mapping and safety as [`pool_max_f16_nhwc`]; `dil_h = dil_w = 1`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_avg_f16_nhwc(p: PoolParams, x: *const u16, y: *mut u16) {
    unsafe { dispatch_k!(&p, window_pool_nhwc_f16, POOL_AVG, &p, x, y) }
}

/// Output rows per thread of [`pool_max_strip_f32_nchw`] (a strip of a plane's column).
pub const STRIP_ROWS_F32: u32 = 4;
/// Output rows per thread of [`pool_max_strip_f16_nhwc`] (fewer: each tap is 16 bytes).
pub const STRIP_ROWS_F16: u32 = 2;

/// What one tap of the max-pool strip kernels is: one f32 (NCHW) or eight f16 channels
/// (NHWC, one 16-byte vector). Offsets are in elements from a byte base pointer.
trait MaxTap: Copy {
    fn neg_inf() -> Self;
    unsafe fn load(base: *const u8, off: u32) -> Self;
    fn max(self, o: Self) -> Self;
    unsafe fn store(self, base: *mut u8, off: u32);
}

impl MaxTap for f32 {
    #[inline(always)]
    fn neg_inf() -> f32 {
        f32::NEG_INFINITY
    }
    #[inline(always)]
    unsafe fn load(base: *const u8, off: u32) -> f32 {
        unsafe { ld_global_nc_f32((base as *const f32).add(off as usize)) }
    }
    #[inline(always)]
    fn max(self, o: f32) -> f32 {
        max_nan(self, o)
    }
    #[inline(always)]
    unsafe fn store(self, base: *mut u8, off: u32) {
        unsafe { *(base as *mut f32).add(off as usize) = self }
    }
}

/// `max.NaN.f16x2` (sm_80+): max of packed f16 pairs, no widening (max is exact; a NaN
/// operand gives the canonical NaN, as the f32 path gives a NaN).
#[inline(always)]
fn max_nan_f16x2(a: u32, b: u32) -> u32 {
    let r: u32;
    unsafe {
        asm!("max.NaN.f16x2 {r}, {a}, {b};", r = out(reg32) r, a = in(reg32) a, b = in(reg32) b, options(pure, nomem, nostack));
    }
    r
}

impl MaxTap for u32x4 {
    #[inline(always)]
    fn neg_inf() -> u32x4 {
        // f16 -inf (0xfc00) in both halves of every word.
        let m = 0xfc00_fc00;
        u32x4 { x: m, y: m, z: m, w: m }
    }
    #[inline(always)]
    unsafe fn load(base: *const u8, off: u32) -> u32x4 {
        unsafe { ld_global_nc_u32x4((base as *const u16).add(off as usize) as *const u32) }
    }
    #[inline(always)]
    fn max(self, o: u32x4) -> u32x4 {
        u32x4 {
            x: max_nan_f16x2(self.x, o.x),
            y: max_nan_f16x2(self.y, o.y),
            z: max_nan_f16x2(self.z, o.z),
            w: max_nan_f16x2(self.w, o.w),
        }
    }
    #[inline(always)]
    unsafe fn store(self, base: *mut u8, off: u32) {
        unsafe { st_global_u32x4((base as *mut u16).add(off as usize) as *mut u32, self) }
    }
}

/// Max pooling with a `K x K` window (K = 2 or 3), vertical stride `S` (1 or 2), no
/// dilation, any horizontal stride and padding, floor or ceil mode, for NCHW f32
/// (`T = f32`, `NHWC = false`) or NHWC f16 (`T = u32x4`, eight channels per item).
///
/// A thread owns a strip of `R` vertically adjacent outputs of one output column (one
/// channel group in NHWC). It walks the strip's input rows top to bottom, reducing each
/// row's `K` taps to a row maximum once, and folds every row maximum into each output
/// whose window covers it: windows overlapping by `K - S` rows (3x3 s2: one row; 3x3 s1:
/// two) reuse the row maxima in registers instead of loading the rows again — 3x3 s2 over
/// four rows loads 9 rows instead of 12 — and the index arithmetic (three `FastDiv`) and
/// the column bounds checks are done once per strip, not per output. Taps outside the
/// input never win (padding), a window with no tap inside gives -inf, NaN propagates.
#[inline(always)]
unsafe fn max_strip<T: MaxTap, const NHWC: bool, const K: u32, const S: u32, const R: u32>(
    p: &PoolParams,
    x: *const u8,
    y: *mut u8,
) {
    let (oh, ow) = (p.out_h, p.out_w);
    let strips = oh.div_ceil(R);
    // NHWC: an item is 8 channels of a pixel, pixels `c` elements apart; NCHW: an item is
    // one element and every plane is an "image" of one channel.
    let (imgs, groups, px) = if NHWC { (p.n, p.c >> 3, p.c) } else { (p.n * p.c, 1, 1) };
    let total = imgs * strips * ow * groups;
    let (fd_g, fd_ow, fd_st) = (FastDiv::new(groups), FastDiv::new(ow), FastDiv::new(strips));
    let (h, w) = (p.h as i32, p.w as i32);
    let (in_row, out_row) = (p.w * px, ow * px);
    let (in_img, out_img) = (p.h * in_row, oh * out_row);
    let stride = grid_stride_x();
    let mut i = global_idx_x();
    while i < total {
        let (q, g) = fd_g.divmod(i);
        let (q, ox) = fd_ow.divmod(q);
        let (img, st) = fd_st.divmod(q);
        let oy0 = st * R;
        let y0 = (oy0 * S) as i32 - p.pad_h as i32;
        let x0 = (ox * p.stride_w) as i32 - p.pad_w as i32;
        // Columns of the K taps, and whether each is inside the input (fixed for the strip).
        let ok = |kx: i32| K as i32 > kx && x0 + kx >= 0 && x0 + kx < w;
        let (c0, c1, c2) = (ok(0), ok(1), ok(2));
        let in_base = img * in_img + g * 8 + (x0.max(0) as u32) * px;
        let out_base = img * out_img + oy0 * out_row + ox * px + g * 8;
        // Element offsets of taps 1 and 2 from the first in-bounds column (x0 < 0 only
        // with padding, when tap 0 is out).
        let (d1, d2) = if x0 >= 0 {
            (px, 2 * px)
        } else if x0 == -1 {
            (0, px)
        } else {
            (0, 0)
        };
        // The maximum of input row `iy` over the window's columns (-inf outside the input).
        let row_max = |iy: i32| {
            let mut m = T::neg_inf();
            if iy >= 0 && iy < h {
                let r = in_base + iy as u32 * in_row;
                if c0 {
                    m = m.max(T::load(x, r));
                }
                if c1 {
                    m = m.max(T::load(x, r + d1));
                }
                if c2 {
                    m = m.max(T::load(x, r + d2));
                }
            }
            m
        };
        let live = |j: u32| oy0 + j < oh;
        if K == 3 && S == 2 {
            // Output j covers rows 2j, 2j+1, 2j+2 of the strip: row 2j is row 2(j-1)+2.
            let mut prev = row_max(y0);
            let mut j = 0;
            while j < R {
                if live(j) {
                    let a = row_max(y0 + 2 * j as i32 + 1);
                    let b = row_max(y0 + 2 * j as i32 + 2);
                    prev.max(a).max(b).store(y, out_base + j * out_row);
                    prev = b;
                }
                j += 1;
            }
        } else if K == 3 {
            // S = 1: output j covers rows j, j+1, j+2.
            let mut m0 = row_max(y0);
            let mut m1 = row_max(y0 + 1);
            let mut j = 0;
            while j < R {
                if live(j) {
                    let m2 = row_max(y0 + j as i32 + 2);
                    m0.max(m1).max(m2).store(y, out_base + j * out_row);
                    m0 = m1;
                    m1 = m2;
                }
                j += 1;
            }
        } else {
            // K = 2, S = 2: disjoint rows 2j, 2j+1.
            let mut j = 0;
            while j < R {
                if live(j) {
                    let a = row_max(y0 + 2 * j as i32);
                    let b = row_max(y0 + 2 * j as i32 + 1);
                    a.max(b).store(y, out_base + j * out_row);
                }
                j += 1;
            }
        }
        i += stride;
    }
}

/// Runs `max_strip::<T, NHWC, K, S, R>` for the supported (K, S) of `p`; nothing for
/// others (the host launches these kernels only for [`max_strip`]'s windows).
macro_rules! dispatch_strip {
    ($p:expr, $t:ty, $nhwc:expr, $r:expr, $x:expr, $y:expr) => {{
        let p = $p;
        if p.kh == 3 && p.stride_h == 2 {
            max_strip::<$t, $nhwc, 3, 2, $r>(p, $x, $y)
        } else if p.kh == 3 && p.stride_h == 1 {
            max_strip::<$t, $nhwc, 3, 1, $r>(p, $x, $y)
        } else if p.kh == 2 && p.stride_h == 2 {
            max_strip::<$t, $nhwc, 2, 2, $r>(p, $x, $y)
        }
    }};
}

/// Max pooling, NCHW f32, for square 3x3 windows with vertical stride 1 or 2 and 2x2
/// windows with vertical stride 2 (any horizontal stride, padding, ceil mode; no
/// dilation): the same results as [`pool_max_f32_nchw`].
///
/// Thread mapping: one thread per (plane, strip of [`STRIP_ROWS_F32`] output rows, output
/// column), column fastest, so a warp's taps and stores are along a row (coalesced);
/// grid-stride over `n*c*ceil(out_h/4)*out_w` items; see [`max_strip`] for the row reuse.
///
/// # Safety
/// As [`pool_max_f32_nchw`]; additionally `kh = kw` with (kh, stride_h) one of (3, 1),
/// (3, 2), (2, 2) (other windows write nothing), and `dil_h = dil_w = 1`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_max_strip_f32_nchw(p: PoolParams, x: *const f32, y: *mut f32) {
    unsafe { dispatch_strip!(&p, f32, false, STRIP_ROWS_F32, x as *const u8, y as *mut u8) }
}

/// Max pooling, NHWC f16, windows as [`pool_max_strip_f32_nchw`]: one thread per (image,
/// strip of [`STRIP_ROWS_F16`] output rows, output column, group of 8 channels), channel
/// group fastest; a 16-byte load per tap and `max.NaN.f16x2` on the packed halves (no
/// conversion to f32; max is exact). Results equal [`pool_max_f16_nhwc`]'s.
///
/// # Safety
/// As [`pool_max_f16_nhwc`] (`c % 8 == 0`, 16-byte aligned) plus the window conditions of
/// [`pool_max_strip_f32_nchw`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_max_strip_f16_nhwc(p: PoolParams, x: *const u16, y: *mut u16) {
    unsafe { dispatch_strip!(&p, u32x4, true, STRIP_ROWS_F16, x as *const u8, y as *mut u8) }
}

/// Element kinds of [`global_avg_nhwc`].
const GAP_F16: u32 = 0;
const GAP_BF16: u32 = 1;
const GAP_F32: u32 = 2;

/// Most pixel rows (`blockDim.y`) of the NHWC global average pool (sizes its shared
/// reduction buffer).
pub const GAP_NHWC_MAX_ROWS: u32 = 16;

/// Widens a packed pair of 16-bit values (`lo` = element 0).
#[inline(always)]
fn widen_pair<const KIND: u32>(w: u32) -> (f32, f32) {
    if KIND == GAP_F16 {
        (f16::from_bits(w as u16).to_f32(), f16::from_bits((w >> 16) as u16).to_f32())
    } else {
        (f32::from_bits(w << 16), f32::from_bits(w & 0xffff_0000))
    }
}

/// Adds one 16-byte vector (8 halves, or 4 f32 into `acc[0..4]`) to `acc`.
#[inline(always)]
fn add_vec<const KIND: u32>(acc: &mut [f32; 8], v: u32x4) {
    let w = [v.x, v.y, v.z, v.w];
    if KIND == GAP_F32 {
        unroll4!(K => {
            acc[K] += f32::from_bits(w[K]);
        });
    } else {
        unroll4!(K => {
            let (lo, hi) = widen_pair::<KIND>(w[K]);
            acc[2 * K] += lo;
            acc[2 * K + 1] += hi;
        });
    }
}

/// One element at `p` as f32.
#[inline(always)]
unsafe fn load_one<const KIND: u32>(p: *const u8) -> f32 {
    unsafe {
        if KIND == GAP_F32 {
            ld_global_nc_f32(p as *const f32)
        } else {
            widen_pair::<KIND>(*(p as *const u16) as u32).0
        }
    }
}

/// Global average pooling on NHWC data: `y[n, c] = mean over the h·w pixels of x[n, :, :, c]`
/// (`y` is the `[n, 1, 1, c]` NHWC output), summed in f32, divided by `h·w` once and
/// rounded once to the output type.
///
/// Thread mapping: block `(32, rows)` with `1 <= rows <= 16` ([`GAP_NHWC_MAX_ROWS`]),
/// grid `(ceil(items / 32), any)`, where an *item* is a 16-byte vector of channels (8
/// halves or 4 f32) when `c` is a multiple of the vector width, else a single channel.
/// Thread `(tx, ty)` of block `(bx, by)` owns item `32·bx + tx` of image `by` (then `by +
/// gridDim.y`, ...: grid-stride over images) and sums pixels `ty, ty + rows, ...` — four
/// independent 16-byte (or 4-/2-byte) loads in flight per step; a warp's load is 32
/// consecutive items of one pixel (512 contiguous bytes on the vector path). The `rows`
/// partial sums meet in shared memory (`[rows][8][32]` f32, conflict-free) and row 0
/// adds them in order and stores the item (one 16-byte store on the vector path).
///
/// # Safety
/// `x` holds `n·h·w·c` elements and `y` `n·c`, both 16-byte aligned, not overlapping;
/// `h·w >= 1`; `n·h·w·c < 2^31`; the block shape above.
#[inline(always)]
unsafe fn global_avg_nhwc<const KIND: u32>(p: &PoolParams, x: *const u8, y: *mut u8) {
    let es: u32 = if KIND == GAP_F32 { 4 } else { 2 };
    let ve = 16 / es;
    let (c, hw) = (p.c, p.h * p.w);
    let vec = c % ve == 0;
    let items = if vec { c / ve } else { c };
    let (tx, ty, rows) = (thread_idx_x(), thread_idx_y(), block_dim_y());
    let item = block_idx_x() * 32 + tx;
    let active = item < items;
    // Element offset of this item's first channel within a pixel.
    let ch0 = if vec { item * ve } else { item };
    let red = shared_array!(gap_nhwc_red: [f32; 16 * 8 * 32]);
    let pix_bytes = c as usize * es as usize;
    let step = rows as usize * pix_bytes;
    let hw_f = hw as f32;
    let mut img = block_idx_y();
    while img < p.n {
        let mut acc = [0.0f32; 8];
        if active {
            let plane = img as usize * hw as usize * c as usize + ch0 as usize;
            let mut q = x.add(plane * es as usize + ty as usize * pix_bytes);
            let mut pix = ty;
            if vec {
                while pix + 3 * rows < hw {
                    let mut v = [u32x4 { x: 0, y: 0, z: 0, w: 0 }; 4];
                    unroll4!(U => {
                        v[U] = ld_global_nc_u32x4(q.add(U * step) as *const u32);
                    });
                    unroll4!(U => {
                        add_vec::<KIND>(&mut acc, v[U]);
                    });
                    q = q.add(4 * step);
                    pix += 4 * rows;
                }
                while pix < hw {
                    add_vec::<KIND>(&mut acc, ld_global_nc_u32x4(q as *const u32));
                    q = q.add(step);
                    pix += rows;
                }
            } else {
                // Four independent sums (acc[0..4]), combined below.
                while pix + 3 * rows < hw {
                    let mut v = [0.0f32; 4];
                    unroll4!(U => {
                        v[U] = load_one::<KIND>(q.add(U * step));
                    });
                    unroll4!(U => {
                        acc[U] += v[U];
                    });
                    q = q.add(4 * step);
                    pix += 4 * rows;
                }
                while pix < hw {
                    acc[0] += load_one::<KIND>(q);
                    q = q.add(step);
                    pix += rows;
                }
                acc[0] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            }
        }
        unroll4!(K => {
            *red.add(((ty * 8 + K as u32) * 32 + tx) as usize) = acc[K];
            *red.add(((ty * 8 + K as u32 + 4) * 32 + tx) as usize) = acc[K + 4];
        });
        sync_threads();
        if ty == 0 && active {
            let mut s = [0.0f32; 8];
            let mut r = 0;
            while r < rows {
                unroll4!(K => {
                    s[K] += *red.add(((r * 8 + K as u32) * 32 + tx) as usize);
                    s[K + 4] += *red.add(((r * 8 + K as u32 + 4) * 32 + tx) as usize);
                });
                r += 1;
            }
            unroll4!(K => {
                s[K] /= hw_f;
                s[K + 4] /= hw_f;
            });
            let out = img as usize * c as usize + ch0 as usize;
            if !vec {
                if KIND == GAP_F32 {
                    *(y as *mut f32).add(out) = s[0];
                } else if KIND == GAP_F16 {
                    *(y as *mut u16).add(out) = f16::from_f32(s[0]).to_bits();
                } else {
                    *(y as *mut u16).add(out) = crate::dcore::half::bf16::from_f32(s[0]).to_bits();
                }
            } else if KIND == GAP_F32 {
                crate::dcore::mem::st_global_f32x4(
                    (y as *mut f32).add(out),
                    f32x4 { x: s[0], y: s[1], z: s[2], w: s[3] },
                );
            } else {
                let pack = |a: f32, b: f32| {
                    if KIND == GAP_F16 {
                        crate::dcore::half::half2::from_f32(a, b).0
                    } else {
                        crate::dcore::half::bf16x2::from_f32(a, b).0
                    }
                };
                let v = u32x4 { x: pack(s[0], s[1]), y: pack(s[2], s[3]), z: pack(s[4], s[5]), w: pack(s[6], s[7]) };
                st_global_u32x4((y as *mut u16).add(out) as *mut u32, v);
            }
        }
        // The buffer is refilled for the next image only after row 0 has read it.
        sync_threads();
        img += grid_dim_y();
    }
}

/// Global average pooling, NHWC f16 (any `c`; 16-byte vectors when `c % 8 == 0`); see
/// [`global_avg_nhwc`] for the mapping and preconditions.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_global_avg_f16_nhwc(p: PoolParams, x: *const u16, y: *mut u16) {
    unsafe { global_avg_nhwc::<GAP_F16>(&p, x as *const u8, y as *mut u8) }
}

/// Global average pooling, NHWC bf16; see [`pool_global_avg_f16_nhwc`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_global_avg_bf16_nhwc(p: PoolParams, x: *const u16, y: *mut u16) {
    unsafe { global_avg_nhwc::<GAP_BF16>(&p, x as *const u8, y as *mut u8) }
}

/// Global average pooling, NHWC f32 (16-byte vectors when `c % 4 == 0`); see
/// [`global_avg_nhwc`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn pool_global_avg_f32_nhwc(p: PoolParams, x: *const f32, y: *mut f32) {
    unsafe { global_avg_nhwc::<GAP_F32>(&p, x as *const u8, y as *mut u8) }
}
