//! Depthwise 2-D convolution (`groups == c_in == c_out`, channel multiplier 1) on NHWC
//! f16 / bf16 activations, f32 accumulation, with the tensor-core conv's fused epilogue
//! `y = act((acc + bias[c]) * scale[c] + shift[c] + residual)` computed in f32 and
//! rounded once to the output type. MobileNet's depthwise layers run here without
//! leaving the f16 NHWC graph.
//!
//! # Operands
//! Same argument list as the tensor-core convs (`conv2d_igemm_tc_*`): `(p: ConvParams,
//! x, w, bias, scale, shift, residual, y)`. `x` is NHWC `[n, h, w, c]`, `y` and
//! `residual` NHWC `[n, out_h, out_w, c]`, all in the kernel's 16-bit type; `bias`,
//! `scale`, `shift` are `[c]` f32 (null unless `p.epilogue` names them). The weights are
//! **tap-major, channel fastest**: `w[(ky·kw + kx)·c + ch]` in the 16-bit type (the host's
//! `launch::depthwise::dw_weights_hwc` converts from OIHW `[c, 1, kh, kw]`), so the 8
//! channels a thread owns are one 16-byte load per tap.
//!
//! # Thread mapping
//! A *lane item* is a group of channels: 8 consecutive channels (one 16-byte vector)
//! when `c % 8 == 0`, else one channel (scalar path). A *pixel group* is `T` consecutive
//! output pixels of one output row (`T` = 4 on the 3×3 stride-1 path, 2 on the 3×3
//! stride-2 path, 1 on the generic path). Global thread `g` of the 1-D grid (`G` threads
//! in all, `L` lane items per pixel) owns lane item `g % L` for its whole life and pixel
//! groups `g / L, g / L + ⌊G / L⌋, …` (grid-stride); threads `g >= ⌊G / L⌋ · L` idle. A
//! warp's 32 threads are 32 consecutive lane items of one pixel group (or of a few
//! neighbouring groups when `L < 32`): each load and store instruction of the warp moves
//! whole contiguous runs of channels.
//!
//! # The 3×3 paths (`c % 8 == 0`, `kh = kw = 3`, `dil_w = 1`, `stride_w` ∈ {1, 2})
//! The thread holds its 9 taps × 8 channels of weights in registers as f32 (loaded
//! once). Per pixel group and kernel row inside the image it issues all `(T−1)·s + 3`
//! 16-byte input column loads of that row (zero outside the image) before using any,
//! then widens each column once and adds it into every output of the group that reads
//! it: 18 loads for 4 outputs at stride 1 instead of 36. Any vertical stride, dilation
//! and padding. Outputs past `out_w` in the last group are computed but not stored.
//!
//! # The generic path (any `kh`, `kw`, stride, padding, dilation; any `c`)
//! One output pixel per item; per tap inside the image one input load and one weight
//! load (both through the read-only cache) of 8 channels (`c % 8 == 0`) or 1.
//!
//! # Launch (`cnnergy_host::launch::depthwise`)
//! 1-D grid of 1-D blocks (any size); correctness needs only `G >= L` (every lane item
//! has a thread). The host launches 128-thread blocks, one work item per thread up to a
//! cap of 16 blocks per SM, and at least `ceil(L / 128)` blocks. Registers: 128 (sm_90a)
//! / 130 (sm_80) per thread with ptxas 13, so 16 warps per SM are resident, each with a
//! kernel row's 3 weight and up to 6 (stride 1) input 16-byte loads in flight at once.
//!
//! # Preconditions (checked by the host)
//! `groups == c_in == c_out`; `x`, `y`, `residual`, `w`, `bias`, `scale`, `shift` 16-byte
//! aligned, `y` not overlapping `x`, `w` or `residual`; every tensor < 2^31 elements;
//! `out_h`, `out_w` consistent with the geometry (only the top/left padding enters the
//! arithmetic).

use crate::dcore::mem::{ld_global_nc_f32, ld_global_nc_f32x4, ld_global_nc_u32x4, st_global_u32x4, u32x4};
use crate::dcore::prelude::*;
use crate::gemm::activate;
use crate::params::*;
use crate::pool::FastDiv;

/// Element kinds (const-generic parameter).
const F16: u32 = 0;
const BF16: u32 = 1;

/// Output pixels per thread (along W) of the 3×3 stride-1 path.
pub const DW_T_S1: u32 = 4;
/// Output pixels per thread (along W) of the 3×3 stride-2 path.
pub const DW_T_S2: u32 = 2;

/// `$body` repeated with `$i` = 0, 1, 2 (a constant in each copy) so arrays indexed by
/// it stay in registers.
macro_rules! unroll3 {
    ($i:ident => $body:block) => {{
        {
            const $i: usize = 0;
            $body
        }
        {
            const $i: usize = 1;
            $body
        }
        {
            const $i: usize = 2;
            $body
        }
    }};
}

/// As [`unroll3`] for 0..8.
macro_rules! unroll8 {
    ($i:ident => $body:block) => {{
        crate::eltwise::unroll4!($i => $body);
        {
            const $i: usize = 4;
            $body
        }
        {
            const $i: usize = 5;
            $body
        }
        {
            const $i: usize = 6;
            $body
        }
        {
            const $i: usize = 7;
            $body
        }
    }};
}

/// As [`unroll3`] for 0..9 (the input columns of a row: at most `(T−1)·s + 3` = 9).
macro_rules! unroll9 {
    ($i:ident => $body:block) => {{
        unroll8!($i => $body);
        {
            const $i: usize = 8;
            $body
        }
    }};
}

/// A packed pair of 16-bit values as f32 (`lo` = element 0).
#[inline(always)]
fn widen2<const KIND: u32>(w: u32) -> (f32, f32) {
    if KIND == F16 {
        half2(w).to_f32()
    } else {
        bf16x2(w).to_f32()
    }
}

/// 8 packed 16-bit values (one 16-byte vector) as f32.
#[inline(always)]
fn widen8<const KIND: u32>(v: u32x4) -> [f32; 8] {
    let w = [v.x, v.y, v.z, v.w];
    let mut out = [0.0f32; 8];
    crate::eltwise::unroll4!(K => {
        let (lo, hi) = widen2::<KIND>(w[K]);
        out[2 * K] = lo;
        out[2 * K + 1] = hi;
    });
    out
}

/// Two f32 rounded to the 16-bit type and packed (`a` = element 0).
#[inline(always)]
fn narrow2<const KIND: u32>(a: f32, b: f32) -> u32 {
    if KIND == F16 {
        half2::from_f32(a, b).0
    } else {
        bf16x2::from_f32(a, b).0
    }
}

/// One 16-bit element as f32.
#[inline(always)]
fn widen1<const KIND: u32>(b: u16) -> f32 {
    if KIND == F16 {
        f16(b).to_f32()
    } else {
        bf16(b).to_f32()
    }
}

/// One f32 rounded to the 16-bit type.
#[inline(always)]
fn narrow1<const KIND: u32>(v: f32) -> u16 {
    if KIND == F16 {
        f16::from_f32(v).0
    } else {
        bf16::from_f32(v).0
    }
}

/// The fused epilogue's operands (uniform over the launch).
struct Epi {
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const u16,
    flags: u32,
    act: u32,
    lo: f32,
    hi: f32,
}

/// Per-channel epilogue constants of one lane item (8 channels, or 1 in slot 0).
struct Chan {
    bias: [f32; 8],
    scale: [f32; 8],
    shift: [f32; 8],
}

impl Epi {
    /// Bias/scale/shift of channels `c0 .. c0 + VEC` (identity values for absent terms).
    #[inline(always)]
    unsafe fn chan<const VEC: u32>(&self, c0: u32) -> Chan {
        let mut ch = Chan { bias: [0.0; 8], scale: [1.0; 8], shift: [0.0; 8] };
        let at = c0 as usize;
        unsafe {
            if VEC == 8 {
                if self.flags & EPI_BIAS != 0 {
                    load_f32x8(&mut ch.bias, self.bias.add(at));
                }
                if self.flags & EPI_SCALE_SHIFT != 0 {
                    load_f32x8(&mut ch.scale, self.scale.add(at));
                    load_f32x8(&mut ch.shift, self.shift.add(at));
                }
            } else {
                if self.flags & EPI_BIAS != 0 {
                    ch.bias[0] = ld_global_nc_f32(self.bias.add(at));
                }
                if self.flags & EPI_SCALE_SHIFT != 0 {
                    ch.scale[0] = ld_global_nc_f32(self.scale.add(at));
                    ch.shift[0] = ld_global_nc_f32(self.shift.add(at));
                }
            }
        }
        ch
    }

    /// `act((acc + bias) * scale + shift + res)` for lane `k`, in the tensor-core
    /// epilogue's operation order.
    #[inline(always)]
    fn apply(&self, ch: &Chan, k: usize, acc: f32, res: f32) -> f32 {
        let mut v = acc + ch.bias[k];
        if self.flags & EPI_SCALE_SHIFT != 0 {
            v = fma(v, ch.scale[k], ch.shift[k]);
        }
        if self.flags & EPI_RESIDUAL != 0 {
            v += res;
        }
        activate(v, self.act, self.lo, self.hi)
    }

    /// Applies the epilogue to the 8 accumulators of the vector at element `off` of the
    /// output and stores them (one 16-byte residual load, one 16-byte store).
    #[inline(always)]
    unsafe fn store8<const KIND: u32>(&self, ch: &Chan, acc: &[f32; 8], off: u32, y: *mut u16) {
        let mut res = [0.0f32; 8];
        if self.flags & EPI_RESIDUAL != 0 {
            // A plain (coherent) load: the residual is another layer's output.
            res = widen8::<KIND>(unsafe { *(self.residual.add(off as usize) as *const u32x4) });
        }
        let mut v = [0.0f32; 8];
        unroll8!(K => {
            v[K] = self.apply(ch, K, acc[K], res[K]);
        });
        let out = u32x4 {
            x: narrow2::<KIND>(v[0], v[1]),
            y: narrow2::<KIND>(v[2], v[3]),
            z: narrow2::<KIND>(v[4], v[5]),
            w: narrow2::<KIND>(v[6], v[7]),
        };
        unsafe { st_global_u32x4(y.add(off as usize) as *mut u32, out) };
    }
}

/// Eight f32 at `p` (16-byte aligned) in two 16-byte loads.
#[inline(always)]
unsafe fn load_f32x8(dst: &mut [f32; 8], p: *const f32) {
    let (a, b) = unsafe { (ld_global_nc_f32x4(p), ld_global_nc_f32x4(p.add(4))) };
    *dst = [a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w];
}

/// This thread's lane item and first pixel group, and the pixel-group step, or `None`
/// when the thread has nothing to do (see the module docs).
#[inline(always)]
fn assign(lanes: u32) -> Option<(u32, u32, u32)> {
    let g = global_idx_x();
    let step = grid_stride_x() / lanes;
    if g >= step * lanes {
        return None;
    }
    let first = g / lanes;
    Some((g - first * lanes, first, step))
}

/// The 3×3 path: `S` = horizontal stride (1 or 2), `T` output pixels per thread.
#[inline(always)]
unsafe fn dw3x3<const KIND: u32, const S: u32, const T: u32>(
    p: &ConvParams,
    x: *const u16,
    w: *const u16,
    e: &Epi,
    y: *mut u16,
) {
    let c = p.c_out;
    let lanes = c >> 3;
    let Some((cv, mut pg, step)) = assign(lanes) else { return };
    let c0 = cv * 8;
    let groups_w = p.out_w.div_ceil(T);
    let total = p.n * p.out_h * groups_w;
    let (fd_gw, fd_oh) = (FastDiv::new(groups_w), FastDiv::new(p.out_h));
    // Input columns one group reads in a row.
    let ncol = ((T - 1) * S + 3) as usize;
    // This lane item's weights: tap `t` at `wl + t·c`.
    let wl = unsafe { w.add(c0 as usize) };
    let row_pitch = (p.w * c) as usize;
    while pg < total {
        let (rest, gx) = fd_gw.divmod(pg);
        let (n, oy) = fd_oh.divmod(rest);
        let ox0 = gx * T;
        let iy0 = (oy * p.stride_h) as i32 - p.pad_h as i32;
        let ix0 = (ox0 * S) as i32 - p.pad_w as i32;
        // Element offset of (n, 0, 0, c0).
        let img = unsafe { x.add((n * p.h) as usize * row_pitch + c0 as usize) };
        let mut acc = [[0.0f32; 8]; 4];
        unroll3!(R => {
            let iy = iy0 + (R as u32 * p.dil_h) as i32;
            if (iy as u32) < p.h {
                let row = unsafe { img.add(iy as usize * row_pitch) };
                // The row's 3 weight vectors are re-read per row (L1 hits) rather than
                // kept in 72 registers: occupancy matters more to this memory-bound loop.
                let mut wr = [u32x4 { x: 0, y: 0, z: 0, w: 0 }; 3];
                unroll3!(KX => {
                    wr[KX] = unsafe { ld_global_nc_u32x4(wl.add((R * 3 + KX) * c as usize) as *const u32) };
                });
                let mut col = [u32x4 { x: 0, y: 0, z: 0, w: 0 }; 9];
                unroll9!(J => {
                    if J < ncol {
                        let ix = ix0 + J as i32;
                        if (ix as u32) < p.w {
                            col[J] = unsafe { ld_global_nc_u32x4(row.add(ix as usize * c as usize) as *const u32) };
                        }
                    }
                });
                unroll9!(J => {
                    if J < ncol {
                        let v = widen8::<KIND>(col[J]);
                        unroll3!(KX => {
                            // Output `o` reads column `o·S + KX`.
                            if J >= KX && (J - KX) % (S as usize) == 0 && (J - KX) / (S as usize) < T as usize {
                                let o = (J - KX) / (S as usize);
                                let wv = widen8::<KIND>(wr[KX]);
                                unroll8!(K => {
                                    acc[o][K] = fma(v[K], wv[K], acc[o][K]);
                                });
                            }
                        });
                    }
                });
            }
        });
        let base = ((n * p.out_h + oy) * p.out_w + ox0) * c + c0;
        let ch = unsafe { e.chan::<8>(c0) };
        crate::eltwise::unroll4!(O => {
            if (O as u32) < T && ox0 + (O as u32) < p.out_w {
                unsafe { e.store8::<KIND>(&ch, &acc[O], base + O as u32 * c, y) };
            }
        });
        pg += step;
    }
}

/// The generic path: one output pixel per item, `VEC` (8 or 1) channels per lane item,
/// runtime window.
#[inline(always)]
unsafe fn dw_generic<const KIND: u32, const VEC: u32>(
    p: &ConvParams,
    x: *const u16,
    w: *const u16,
    e: &Epi,
    y: *mut u16,
) {
    let c = p.c_out;
    let lanes = if VEC == 8 { c >> 3 } else { c };
    let Some((item, mut pix, step)) = assign(lanes) else { return };
    let c0 = item * VEC;
    let total = p.n * p.out_h * p.out_w;
    let (fd_ow, fd_oh) = (FastDiv::new(p.out_w), FastDiv::new(p.out_h));
    let ch = unsafe { e.chan::<VEC>(c0) };
    let (kh, kw) = (p.kh, p.kw);
    while pix < total {
        let (rest, ox) = fd_ow.divmod(pix);
        let (n, oy) = fd_oh.divmod(rest);
        let iy0 = (oy * p.stride_h) as i32 - p.pad_h as i32;
        let ix0 = (ox * p.stride_w) as i32 - p.pad_w as i32;
        let img = unsafe { x.add((n * p.h * p.w * c + c0) as usize) };
        let mut acc = [0.0f32; 8];
        let mut ky = 0;
        while ky < kh {
            let iy = iy0 + (ky * p.dil_h) as i32;
            if (iy as u32) < p.h {
                let mut kx = 0;
                while kx < kw {
                    let ix = ix0 + (kx * p.dil_w) as i32;
                    if (ix as u32) < p.w {
                        let src = unsafe { img.add(((iy as u32 * p.w + ix as u32) * c) as usize) };
                        let wp = unsafe { w.add(((ky * kw + kx) * c + c0) as usize) };
                        if VEC == 8 {
                            let (xv, wv) = unsafe {
                                (
                                    widen8::<KIND>(ld_global_nc_u32x4(src as *const u32)),
                                    widen8::<KIND>(ld_global_nc_u32x4(wp as *const u32)),
                                )
                            };
                            unroll8!(K => {
                                acc[K] = fma(xv[K], wv[K], acc[K]);
                            });
                        } else {
                            let (xv, wv) = unsafe { (widen1::<KIND>(*src), widen1::<KIND>(*wp)) };
                            acc[0] = fma(xv, wv, acc[0]);
                        }
                    }
                    kx += 1;
                }
            }
            ky += 1;
        }
        let off = pix * c + c0;
        if VEC == 8 {
            unsafe { e.store8::<KIND>(&ch, &acc, off, y) };
        } else {
            let res = if e.flags & EPI_RESIDUAL != 0 {
                widen1::<KIND>(unsafe { *e.residual.add(off as usize) })
            } else {
                0.0
            };
            let v = e.apply(&ch, 0, acc[0], res);
            unsafe { *y.add(off as usize) = narrow1::<KIND>(v) };
        }
        pix += step;
    }
}

/// Picks the path for `p` (a uniform branch; see the module docs).
#[inline(always)]
unsafe fn dw_body<const KIND: u32>(
    p: &ConvParams,
    x: *const u16,
    w: *const u16,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const u16,
    y: *mut u16,
) {
    let e = Epi {
        bias,
        scale,
        shift,
        residual,
        flags: p.epilogue & (EPI_BIAS | EPI_SCALE_SHIFT | EPI_RESIDUAL),
        act: p.act,
        lo: p.act_min,
        hi: p.act_max,
    };
    unsafe {
        if p.c_out & 7 != 0 {
            dw_generic::<KIND, 1>(p, x, w, &e, y)
        } else if p.kh == 3 && p.kw == 3 && p.dil_w == 1 && p.stride_w == 1 {
            dw3x3::<KIND, 1, DW_T_S1>(p, x, w, &e, y)
        } else if p.kh == 3 && p.kw == 3 && p.dil_w == 1 && p.stride_w == 2 {
            dw3x3::<KIND, 2, DW_T_S2>(p, x, w, &e, y)
        } else {
            dw_generic::<KIND, 8>(p, x, w, &e, y)
        }
    }
}

/// Depthwise convolution, NHWC f16, f32 accumulation and epilogue; see the module docs
/// for the operands, thread mapping and preconditions.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn conv2d_dw_f16_nhwc(
    p: ConvParams,
    x: *const u16,
    w: *const u16,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const u16,
    y: *mut u16,
) {
    unsafe { dw_body::<F16>(&p, x, w, bias, scale, shift, residual, y) }
}

/// Depthwise convolution, NHWC bf16; see [`conv2d_dw_f16_nhwc`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn conv2d_dw_bf16_nhwc(
    p: ConvParams,
    x: *const u16,
    w: *const u16,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const u16,
    y: *mut u16,
) {
    unsafe { dw_body::<BF16>(&p, x, w, bias, scale, shift, residual, y) }
}
