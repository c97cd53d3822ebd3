//! Normalisation layers on NCHW f32: the per-channel affine of inference batch-norm
//! (`y = act(x * scale[c] + shift[c])`) and local response normalisation across channels.

use crate::dcore::mem::{f32x4, ld_global_f32x4, ld_global_nc_f32, ld_global_nc_f32x4, st_global_f32x4};
use crate::dcore::prelude::*;
use crate::eltwise::{act, dispatch_act, unroll4};
use crate::params::*;
use crate::pool::FastDiv;

/// Vectors per thread per grid-stride step (as in `eltwise`).
const UNROLL: u32 = 4;

#[inline(always)]
unsafe fn affine1<const A: u32>(v: f32, ch: u32, scale: *const f32, shift: *const f32, lo: f32, hi: f32) -> f32 {
    unsafe {
        let s = ld_global_nc_f32(scale.add(ch as usize));
        let t = ld_global_nc_f32(shift.add(ch as usize));
        act::<A>(v.mul_add(s, t), lo, hi)
    }
}

/// One 16-byte vector starting at element `e` (a multiple of 4).
#[inline(always)]
unsafe fn affine4<const A: u32>(
    v: f32x4,
    e: u32,
    fd_hw: FastDiv,
    fd_c: FastDiv,
    scale: *const f32,
    shift: *const f32,
    lo: f32,
    hi: f32,
) -> f32x4 {
    unsafe {
        if fd_hw.d() & 3 == 0 {
            // The four elements share one plane, hence one channel.
            let ch = fd_c.rem(fd_hw.div(e));
            let s = ld_global_nc_f32(scale.add(ch as usize));
            let t = ld_global_nc_f32(shift.add(ch as usize));
            f32x4 {
                x: act::<A>(v.x.mul_add(s, t), lo, hi),
                y: act::<A>(v.y.mul_add(s, t), lo, hi),
                z: act::<A>(v.z.mul_add(s, t), lo, hi),
                w: act::<A>(v.w.mul_add(s, t), lo, hi),
            }
        } else if fd_hw.d() >= 4 {
            // Planes of >= 4 elements (7x7, 14x14 odd multiples): the four elements span
            // at most two planes, so one division gives both channels and the parameters
            // of the second are loaded only when the vector crosses into it.
            let (pl, r) = fd_hw.divmod(e);
            let ch = fd_c.rem(pl);
            let s0 = ld_global_nc_f32(scale.add(ch as usize));
            let t0 = ld_global_nc_f32(shift.add(ch as usize));
            let (mut s1, mut t1) = (s0, t0);
            if r + 3 >= fd_hw.d() {
                let ch1 = if ch + 1 == fd_c.d() { 0 } else { ch + 1 };
                s1 = ld_global_nc_f32(scale.add(ch1 as usize));
                t1 = ld_global_nc_f32(shift.add(ch1 as usize));
            }
            let hw = fd_hw.d();
            let f = |x: f32, k: u32| {
                let (s, t) = if r + k < hw { (s0, t0) } else { (s1, t1) };
                act::<A>(x.mul_add(s, t), lo, hi)
            };
            f32x4 { x: f(v.x, 0), y: f(v.y, 1), z: f(v.z, 2), w: f(v.w, 3) }
        } else {
            let ch = |k: u32| fd_c.rem(fd_hw.div(e + k));
            f32x4 {
                x: affine1::<A>(v.x, ch(0), scale, shift, lo, hi),
                y: affine1::<A>(v.y, ch(1), scale, shift, lo, hi),
                z: affine1::<A>(v.z, ch(2), scale, shift, lo, hi),
                w: affine1::<A>(v.w, ch(3), scale, shift, lo, hi),
            }
        }
    }
}

#[inline(always)]
unsafe fn affine<const A: u32>(
    p: &ChannelAffineParams,
    x: *const f32,
    scale: *const f32,
    shift: *const f32,
    y: *mut f32,
) {
    let (lo, hi) = (p.act_min, p.act_max);
    let len = p.n * p.c * p.hw;
    let (fd_hw, fd_c) = (FastDiv::new(p.hw), FastDiv::new(p.c));
    let n4 = len >> 2;
    let bd = block_dim_x();
    let step = grid_dim_x() * bd * UNROLL;
    let mut base = block_idx_x() * bd * UNROLL + thread_idx_x();
    while base < n4 {
        let mut v = [f32x4::splat(0.0); UNROLL as usize];
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n4 {
                v[U] = ld_global_f32x4(x.add((i * 4) as usize));
            }
        });
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n4 {
                let e = i * 4;
                st_global_f32x4(y.add(e as usize), affine4::<A>(v[U], e, fd_hw, fd_c, scale, shift, lo, hi));
            }
        });
        base += step;
    }
    let e = n4 * 4 + global_idx_x();
    if e < len {
        *y.add(e as usize) = affine1::<A>(*x.add(e as usize), fd_c.rem(fd_hw.div(e)), scale, shift, lo, hi);
    }
}

/// Per-channel affine on NCHW f32 (inference batch-norm with folded parameters, see
/// `reference::fold_batch_norm`): `y[n,c,s] = act(fma(x[n,c,s], scale[c], shift[c]))`.
///
/// Thread mapping: a flat grid-stride over 16-byte vectors of the whole tensor (so small
/// planes such as 7x7 waste no threads), four vectors per thread per step. The channel of
/// an element is `(i / hw) % c`, computed with [`FastDiv`]: two `mul.hi` and one
/// `scale`/`shift` pair per vector when `hw % 4 == 0`; otherwise, for `hw >= 4`, the same
/// plus a second pair when the vector crosses into the next plane; per element for
/// `hw < 4`. `scale`/`shift` come through the read-only cache. The last `len % 4` elements by the grid's first threads. Any 1-D grid.
///
/// # Safety
/// `x` and `y` hold `n*c*hw` f32, 16-byte aligned, `y` equal to `x` (in place) or not
/// overlapping it; `scale`, `shift` hold `c` f32; `n*c*hw < 2^31`, `c, hw >= 1`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn channel_affine_f32_nchw(
    p: ChannelAffineParams,
    x: *const f32,
    scale: *const f32,
    shift: *const f32,
    y: *mut f32,
) {
    unsafe { dispatch_act!(p.act, affine, &p, x, scale, shift, y) }
}

/// `d^-beta` for `d > 0`, through the SFU. For `beta = 0.75` (AlexNet, GoogLeNet v1, the
/// ONNX default) `t = rsqrt(d)`, `d^-3/4 = t * t * rsqrt(t)` (two `rsqrt.approx`, each
/// ≤ 2^-22.9 relative: ≤ ~5 ulp in all). Otherwise `ex2(-beta * lg2(d))`: `lg2.approx`
/// has absolute error ≤ 2^-22 (relative elsewhere), so the result's relative error is
/// about `(beta |log2 d| + 2) * 2^-22` — ≤ 1e-6 for `d < 2^16`, far inside the 1e-5
/// relative-L2 tolerance.
#[inline(always)]
fn pow_neg(d: f32, beta: f32) -> f32 {
    if beta == 0.75 {
        let t = crate::dcore::math::rsqrt_approx(d);
        t * t * crate::dcore::math::rsqrt_approx(t)
    } else {
        crate::dcore::math::ex2_approx(-beta * crate::dcore::math::lg2_approx(d))
    }
}

/// Sum of squares over the channel window of one output, `lo..=hi` of `[0, C)` as
/// `(start pointer at channel lo, count)`. `SIZE > 0` is the window size known at compile
/// time (fully unrolled, all loads in flight together; `first` is then the pointer of the
/// nominal first channel `c - before`, possibly outside the tensor, and taps outside
/// `[0, C)` are skipped); `SIZE = 0` loops over `count` taps from `first`.
#[inline(always)]
unsafe fn window_sum<const SIZE: u32, T: Copy, L: Fn(*const f32) -> T, Q: Fn(T, T) -> T>(
    first_c: i32,
    c: u32,
    count: u32,
    first: *const f32,
    hw: usize,
    zero: T,
    load: L,
    sq_add: Q,
) -> T {
    let mut sum = zero;
    unsafe {
        if SIZE > 0 {
            let mut j = 0;
            while j < SIZE {
                let cc = first_c + j as i32;
                if cc >= 0 && (cc as u32) < c {
                    sum = sq_add(load(first.wrapping_offset(j as isize * hw as isize)), sum);
                }
                j += 1;
            }
        } else {
            let mut src = first;
            let mut j = 0;
            while j < count {
                sum = sq_add(load(src), sum);
                src = src.add(hw);
                j += 1;
            }
        }
    }
    sum
}

#[inline(always)]
unsafe fn lrn<const SIZE: u32>(p: &LrnParams, x: *const f32, y: *mut f32) {
    let (c, hw) = (p.c, p.hw);
    let before = (p.size - 1) >> 1;
    let after = p.size >> 1;
    let k = p.alpha / p.size as f32;
    let (bias, beta) = (p.bias, p.beta);
    let (tx, ty, by) = (thread_idx_x(), thread_idx_y(), block_dim_y());
    // Channel group of this block (blockIdx.z): a contiguous run of channels.
    let per_group = c.div_ceil(grid_dim_z());
    let c_lo = block_idx_z() * per_group;
    let c_hi = (c_lo + per_group).min(c);
    let vec = hw & 3 == 0;
    // A block owns 128 spatial positions: thread `tx` the 16-byte vector `4*tx..4*tx+4`
    // (vector path) or the positions `tx + 32k`, k < 4 (scalar path: four independent
    // coalesced loads per tap).
    let s = if vec { (block_idx_x() * 32 + tx) * 4 } else { block_idx_x() * 128 + tx };
    if s >= hw {
        return;
    }
    let ok = [true, s + 32 < hw, s + 64 < hw, s + 96 < hw];
    // Four scalars at stride 32 as one f32x4 (missing ones 0).
    let load4 = |q: *const f32| {
        let mut v = [0.0f32; 4];
        unroll4!(U => {
            if ok[U] {
                v[U] = ld_global_nc_f32(q.wrapping_add(32 * U));
            }
        });
        f32x4 { x: v[0], y: v[1], z: v[2], w: v[3] }
    };
    let mut img = block_idx_y();
    while img < p.n {
        let plane0 = x.add(img as usize * c as usize * hw as usize + s as usize);
        let out0 = y.add(img as usize * c as usize * hw as usize + s as usize);
        let mut ch = c_lo + ty;
        while ch < c_hi {
            let lo = if ch > before { ch - before } else { 0 };
            let hi = if ch + after < c { ch + after } else { c - 1 };
            let first_c = ch as i32 - before as i32;
            let first = if SIZE > 0 {
                plane0.wrapping_offset(first_c as isize * hw as isize)
            } else {
                plane0.add(lo as usize * hw as usize)
            };
            let at = ch as usize * hw as usize;
            if vec {
                let sum = window_sum::<SIZE, f32x4, _, _>(
                    first_c,
                    c,
                    hi - lo + 1,
                    first,
                    hw as usize,
                    f32x4::splat(0.0),
                    |q| ld_global_nc_f32x4(q),
                    |v, a| f32x4 {
                        x: v.x.mul_add(v.x, a.x),
                        y: v.y.mul_add(v.y, a.y),
                        z: v.z.mul_add(v.z, a.z),
                        w: v.w.mul_add(v.w, a.w),
                    },
                );
                let v = ld_global_nc_f32x4(plane0.add(at));
                let out = f32x4 {
                    x: v.x * pow_neg(k.mul_add(sum.x, bias), beta),
                    y: v.y * pow_neg(k.mul_add(sum.y, bias), beta),
                    z: v.z * pow_neg(k.mul_add(sum.z, bias), beta),
                    w: v.w * pow_neg(k.mul_add(sum.w, bias), beta),
                };
                st_global_f32x4(out0.add(at), out);
            } else {
                let sum = window_sum::<SIZE, f32x4, _, _>(
                    first_c,
                    c,
                    hi - lo + 1,
                    first,
                    hw as usize,
                    f32x4::splat(0.0),
                    |q| load4(q),
                    |v, a| f32x4 {
                        x: v.x.mul_add(v.x, a.x),
                        y: v.y.mul_add(v.y, a.y),
                        z: v.z.mul_add(v.z, a.z),
                        w: v.w.mul_add(v.w, a.w),
                    },
                );
                let v = load4(plane0.add(at));
                let r = [
                    v.x * pow_neg(k.mul_add(sum.x, bias), beta),
                    v.y * pow_neg(k.mul_add(sum.y, bias), beta),
                    v.z * pow_neg(k.mul_add(sum.z, bias), beta),
                    v.w * pow_neg(k.mul_add(sum.w, bias), beta),
                ];
                unroll4!(U => {
                    if ok[U] {
                        *out0.add(at + 32 * U) = r[U];
                    }
                });
            }
            ch += by;
        }
        img += grid_dim_y();
    }
}

/// Local response normalisation across channels, NCHW f32, ONNX semantics exactly:
/// `y = x / (bias + alpha/size * Σ x[c']²)^beta` with `c'` over
/// `[max(0, c - (size-1)/2), min(C-1, c + ceil((size-1)/2))]` — i.e. `(size-1)/2` channels
/// before (floor) and `size/2` after (ceil of `(size-1)/2`), as `reference::lrn`.
///
/// Thread mapping: block `(32, by)`, grid `(ceil(hw / 128), images, channel groups)`: a
/// block owns 128 spatial positions of one image (thread `tx` one 16-byte vector of 4
/// positions when `hw % 4 == 0`, else positions `tx + 32k`, k < 4) and a contiguous group of
/// channels (`blockIdx.z`); its `by` thread rows walk the group's channels (`c = c_lo + ty,
/// + by, ...`), each summing its window down the channel axis. The window's other
/// channels are the ones this block's other rows read, so after the first touch they come
/// from L1, and DRAM sees each input about once. Window size 3 and 5 are compiled with
/// the window unrolled (all taps in flight); other sizes loop. Power as [`pow_neg`]. No
/// integer division in the loops.
///
/// # Safety
/// `x`, `y` hold `n*c*hw` f32, 16-byte aligned, not overlapping; `size >= 1`;
/// `n*c*hw < 2^31`; the grid as above (any `gridDim.y`, `gridDim.z <= c`).
#[no_mangle]
pub unsafe extern "ptx-kernel" fn lrn_f32_nchw(p: LrnParams, x: *const f32, y: *mut f32) {
    unsafe {
        if p.size == 5 {
            lrn::<5>(&p, x, y)
        } else if p.size == 3 {
            lrn::<3>(&p, x, y)
        } else {
            lrn::<0>(&p, x, y)
        }
    }
}

#[inline(always)]
unsafe fn affine_planes<const A: u32>(
    p: &ChannelAffineParams,
    x: *const f32,
    scale: *const f32,
    shift: *const f32,
    y: *mut f32,
) {
    let (lo, hi) = (p.act_min, p.act_max);
    let hw = p.hw;
    let bd = block_dim_x();
    // Chunks per plane: enough that a chunk is at most UNROLL vectors per thread.
    let chunks = (hw >> 2).div_ceil(bd * UNROLL).max(1);
    let tiles = p.n * p.c * chunks;
    let (fd_chunks, fd_c) = (FastDiv::new(chunks), FastDiv::new(p.c));
    let t = thread_idx_x();
    let vstep = bd * chunks;
    let mut tile = block_idx_x();
    while tile < tiles {
        let (pl, chunk) = fd_chunks.divmod(tile);
        let ch = fd_c.rem(pl) as usize;
        // Uniform over the block: one broadcast load each.
        let (s, b) = (ld_global_nc_f32(scale.add(ch)), ld_global_nc_f32(shift.add(ch)));
        let start = pl * hw;
        // The plane as a head of < 4 elements up to the first 16-byte boundary, `nv`
        // aligned vectors, and a tail of < 4 elements.
        let head = ((4 - (start & 3)) & 3).min(hw);
        let body = start + head;
        let nv = (hw - head) >> 2;
        let tail_start = body + nv * 4;
        let tail = start + hw - tail_start;
        let mut v = chunk * bd + t;
        while v < nv {
            let mut r = [f32x4::splat(0.0); UNROLL as usize];
            unroll4!(U => {
                let i = v + U as u32 * vstep;
                if i < nv {
                    r[U] = ld_global_f32x4(x.add((body + i * 4) as usize));
                }
            });
            unroll4!(U => {
                let i = v + U as u32 * vstep;
                if i < nv {
                    let a = r[U];
                    let o = f32x4 {
                        x: act::<A>(a.x.mul_add(s, b), lo, hi),
                        y: act::<A>(a.y.mul_add(s, b), lo, hi),
                        z: act::<A>(a.z.mul_add(s, b), lo, hi),
                        w: act::<A>(a.w.mul_add(s, b), lo, hi),
                    };
                    st_global_f32x4(y.add((body + i * 4) as usize), o);
                }
            });
            v += UNROLL * vstep;
        }
        if chunk == 0 {
            // Threads 0..3 take the head, 4..7 the tail.
            let e = if t < head {
                start + t
            } else if t >= 4 && t - 4 < tail {
                tail_start + t - 4
            } else {
                u32::MAX
            };
            if e != u32::MAX {
                *y.add(e as usize) = act::<A>((*x.add(e as usize)).mul_add(s, b), lo, hi);
            }
        }
        tile += grid_dim_x();
    }
}

/// Per-channel affine on NCHW f32 with the channel uniform per block (same result as
/// [`channel_affine_f32_nchw`]: `y = act(fma(x, scale[c], shift[c]))`, no per-element
/// index arithmetic).
///
/// Thread mapping: the work is `n·c·chunks` tiles, tile `t` = chunk `t % chunks` of plane
/// `t / chunks` (`chunks = max(1, ceil((hw/4) / (4·blockDim.x)))`); blocks grid-stride
/// over tiles (one `mul.hi` division per tile, none per element). The block loads its
/// plane's `scale`/`shift` once. A plane `[pl·hw, (pl+1)·hw)` is split into a head of
/// < 4 elements up to the first 16-byte boundary, aligned 16-byte vectors, and a tail of
/// < 4 elements, so any `hw` streams with vector accesses. Chunk `k`'s thread `t` moves
/// vectors `k·bd + t + j·bd·chunks` (four in flight per step, coalesced per warp); the
/// head and tail elements go to threads 0..3 and 4..7 of chunk 0. Loads are coherent
/// (`y` may equal `x`).
///
/// # Safety
/// As [`channel_affine_f32_nchw`]; additionally `blockDim.x >= 8` (y = z = 1), any 1-D
/// grid.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn channel_affine_f32_nchw_planes(
    p: ChannelAffineParams,
    x: *const f32,
    scale: *const f32,
    shift: *const f32,
    y: *mut f32,
) {
    unsafe { dispatch_act!(p.act, affine_planes, &p, x, scale, shift, y) }
}
