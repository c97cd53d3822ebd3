//! fp32 convolutions on NCHW activations and OIHW weights, with the fused epilogue
//! `y = act((acc + bias[c]) * scale[c] + shift[c] + residual)` (see [`ConvParams`]):
//!
//! * `conv2d_direct_f32` — the reference variant, one thread per output;
//! * `conv2d_igemm_f32` / `conv2d_igemm64_f32` — implicit GEMM on the 128x128x8 / 64x64x8
//!   engine of [`crate::gemm`], im2col computed on the fly; any stride/padding/dilation/groups;
//! * `conv2d_pointwise_f32` / `conv2d_pointwise64_f32` — 1x1 stride-1 unpadded, a plain GEMM
//!   over all images on the same engine;
//! * `conv2d_depthwise_f32` — one thread per output, 3x3 unrolled; `conv2d_depthwise3x3s1_f32`
//!   — 3x3 with horizontal stride 1, four outputs per thread.
//!
//! All take `(p: ConvParams, x, w, bias, scale, shift, residual, y)`; absent epilogue
//! operands may be null (the `epilogue` flags say which are read). Padding: only the
//! top/left pads (`pad_h`, `pad_w`) enter the arithmetic; bottom/right padding is in
//! `out_h`/`out_w`. Every index is below 2^31 (the host checks).

use crate::dcore::prelude::*;
use crate::gemm::{
    activate, for_each_quad, mainloop, store_kcols, tile_col, tile_row, Acc, QuadSink, RowsK, TileLoader, T_LARGE,
    T_SMALL,
};
use crate::params::{ConvParams, EPI_BIAS, EPI_RESIDUAL, EPI_SCALE_SHIFT};

/// The fused epilogue's operands.
struct Epi {
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const f32,
    flags: u32,
    act: u32,
    lo: f32,
    hi: f32,
}

/// Per-output-channel scale and shift (1 and 0 when absent).
struct Chan {
    mul: f32,
    add: f32,
}

impl Epi {
    #[inline(always)]
    fn new(p: &ConvParams, bias: *const f32, scale: *const f32, shift: *const f32, residual: *const f32) -> Epi {
        Epi { bias, scale, shift, residual, flags: p.epilogue, act: p.act, lo: p.act_min, hi: p.act_max }
    }

    #[inline(always)]
    fn has_residual(&self) -> bool {
        self.flags & EPI_RESIDUAL != 0
    }

    /// Bias, scale and shift of channel `oc` (identity values for absent terms); applied
    /// in the definition's order as `fma(v + bias, scale, shift)`.
    #[inline(always)]
    unsafe fn chan(&self, oc: u32) -> (f32, Chan) {
        let b = if self.flags & EPI_BIAS != 0 { unsafe { *self.bias.add(oc as usize) } } else { 0.0 };
        let c = if self.flags & EPI_SCALE_SHIFT != 0 {
            unsafe { Chan { mul: *self.scale.add(oc as usize), add: *self.shift.add(oc as usize) } }
        } else {
            Chan { mul: 1.0, add: 0.0 }
        };
        (b, c)
    }

    /// The epilogue for one value; `res` is the residual element (0 when absent).
    #[inline(always)]
    fn apply(&self, acc: f32, b: f32, c: &Chan, res: f32) -> f32 {
        let v = fma(acc + b, c.mul, c.add) + res;
        activate(v, self.act, self.lo, self.hi)
    }

    /// Residual element `i` or 0.
    #[inline(always)]
    unsafe fn res(&self, i: u32) -> f32 {
        if self.has_residual() {
            unsafe { *self.residual.add(i as usize) }
        } else {
            0.0
        }
    }
}

/// Reference direct convolution: any stride, padding, dilation and groups.
///
/// Thread mapping: one output element per thread, in NCHW order, grid-stride loop over all
/// `n * c_out * out_h * out_w` outputs (consecutive threads: consecutive `ox`, so output
/// stores and stride-1 input loads coalesce). Each thread loops over its group's
/// `c_in / groups` channels and the `kh x kw` taps, skipping taps in the padding, with
/// an f32 `fma` accumulator. No shared memory.
///
/// Launch: block (256, 1, 1), any grid (typically ceil(outputs / 256)).
#[no_mangle]
pub unsafe extern "ptx-kernel" fn conv2d_direct_f32(
    p: ConvParams,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const f32,
    y: *mut f32,
) {
    let e = Epi::new(&p, bias, scale, shift, residual);
    let (hh, ww) = (p.h as i32, p.w as i32);
    let hw = p.h * p.w;
    let cig = p.c_in / p.groups;
    let cog = p.c_out / p.groups;
    let total = p.n * p.c_out * p.out_h * p.out_w;
    let mut idx = global_idx_x();
    let stride = grid_stride_x();
    while idx < total {
        let ox = idx % p.out_w;
        let t1 = idx / p.out_w;
        let oy = t1 % p.out_h;
        let t2 = t1 / p.out_h;
        let oc = t2 % p.c_out;
        let img = t2 / p.c_out;
        let g = oc / cog;
        let iy0 = (oy * p.stride_h) as i32 - p.pad_h as i32;
        let ix0 = (ox * p.stride_w) as i32 - p.pad_w as i32;
        let mut acc = 0.0f32;
        for ci in 0..cig {
            let xp = unsafe { x.add(((img * p.c_in + g * cig + ci) * hw) as usize) };
            let wp = unsafe { w.add(((oc * cig + ci) * p.kh * p.kw) as usize) };
            for ky in 0..p.kh {
                let iy = iy0 + (ky * p.dil_h) as i32;
                if iy < 0 || iy >= hh {
                    continue;
                }
                for kx in 0..p.kw {
                    let ix = ix0 + (kx * p.dil_w) as i32;
                    if ix < 0 || ix >= ww {
                        continue;
                    }
                    let xv = unsafe { *xp.add((iy * ww + ix) as usize) };
                    let wv = unsafe { *wp.add((ky * p.kw + kx) as usize) };
                    acc = fma(xv, wv, acc);
                }
            }
        }
        let (b, c) = unsafe { e.chan(oc) };
        let v = e.apply(acc, b, &c, unsafe { e.res(idx) });
        unsafe { *y.add(idx as usize) = v };
        idx += stride;
    }
}

/// Sentinel input row for output columns past the end: `iy = IY_NONE + ky*dh` is always
/// negative, so the bounds check rejects every tap.
const IY_NONE: i32 = -0x4000_0000;

const BK_U: u32 = crate::gemm::BK;

/// The B operand of the implicit GEMM: `B[k][n]` = input tap `k = (ci, ky, kx)` of output
/// pixel `n = (img, oy, ox)`, zero in the padding. Thread `t` fetches tap `k0 + t / 32` of
/// columns `n0 + t % 32 + 32e`, `e < T / 2` (consecutive lanes: consecutive output pixels,
/// so stride-1 loads coalesce). The pixel part of each address is decoded once per
/// thread; the tap part is advanced by `BK` per stage with carries instead of divisions.
struct Im2col<const T: u32> {
    x: *const f32,
    /// Per column: `img * c_in * h * w + iy0 * w + ix0` (may be negative).
    base: [i32; 4],
    iy0: [i32; 4],
    ix0: [i32; 4],
    h: u32,
    w: u32,
    hw: u32,
    kh: u32,
    kw: u32,
    dh: u32,
    dw: u32,
    k: u32,
    kk: u32,
    ci: u32,
    ky: u32,
    kx: u32,
    dci: u32,
    dky: u32,
    dkx: u32,
}

impl<const T: u32> Im2col<T> {
    /// `x` already points at the group's first input channel of image 0.
    #[inline(always)]
    fn new(p: &ConvParams, x: *const f32, n0: u32, k: u32) -> Im2col<T> {
        let t = thread_idx_x();
        let ohw = p.out_h * p.out_w;
        let npix = p.n * ohw;
        let hw = p.h * p.w;
        let mut base = [0i32; 4];
        let mut iy0 = [IY_NONE; 4];
        let mut ix0 = [0i32; 4];
        for e in 0..T / 2 {
            let n = n0 + t % 32 + 32 * e;
            if n < npix {
                let img = n / ohw;
                let pix = n - img * ohw;
                let oy = pix / p.out_w;
                let ox = pix - oy * p.out_w;
                let y0 = (oy * p.stride_h) as i32 - p.pad_h as i32;
                let x0 = (ox * p.stride_w) as i32 - p.pad_w as i32;
                iy0[e as usize] = y0;
                ix0[e as usize] = x0;
                base[e as usize] = (img * p.c_in * hw) as i32 + y0 * p.w as i32 + x0;
            }
        }
        let khw = p.kh * p.kw;
        let kl = t / 32;
        let ci = kl / khw;
        let rem = kl - ci * khw;
        let dci = BK_U / khw;
        let rem8 = BK_U - dci * khw;
        Im2col {
            x,
            base,
            iy0,
            ix0,
            h: p.h,
            w: p.w,
            hw,
            kh: p.kh,
            kw: p.kw,
            dh: p.dil_h,
            dw: p.dil_w,
            k,
            kk: kl,
            ci,
            ky: rem / p.kw,
            kx: rem % p.kw,
            dci,
            dky: rem8 / p.kw,
            dkx: rem8 % p.kw,
        }
    }
}

impl<const T: u32> TileLoader for Im2col<T> {
    #[inline(always)]
    unsafe fn fetch(&mut self, _k0: u32, r: &mut [f32; 4]) {
        // Stages are fetched in order, so the tap state already matches `_k0`.
        let kvalid = self.kk < self.k;
        let kyd = (self.ky * self.dh) as i32;
        let kxd = (self.kx * self.dw) as i32;
        let koff = (self.ci * self.hw) as i32 + kyd * self.w as i32 + kxd;
        for e in 0..(T / 2) as usize {
            let iy = self.iy0[e] + kyd;
            let ix = self.ix0[e] + kxd;
            let ok = kvalid && (iy as u32) < self.h && (ix as u32) < self.w;
            r[e] = if ok { unsafe { *self.x.offset((self.base[e] + koff) as isize) } } else { 0.0 };
        }
        // Advance the tap by BK: each digit gets its share of BK plus at most one carry.
        self.kk += BK_U;
        self.kx += self.dkx;
        self.ky += self.dky;
        self.ci += self.dci;
        if self.kx >= self.kw {
            self.kx -= self.kw;
            self.ky += 1;
        }
        if self.ky >= self.kh {
            self.ky -= self.kh;
            self.ci += 1;
        }
    }
    #[inline(always)]
    unsafe fn store(&self, stage: u32, r: &[f32; 4]) {
        unsafe { store_kcols::<T>(stage, r) };
    }
}

/// The B operand of the pointwise conv: `B[ci][n] = x[img, ci, pix]` for `n = (img, pix)`
/// (columns may span images). Same thread mapping as [`Im2col`].
struct Pointwise<const T: u32> {
    x: *const f32,
    /// Per column: `img * c_in * hw + pix`, or -1 past the end.
    base: [i32; 4],
    hw: u32,
    k: u32,
    kl: u32,
}

impl<const T: u32> Pointwise<T> {
    #[inline(always)]
    fn new(p: &ConvParams, x: *const f32, n0: u32) -> Pointwise<T> {
        let t = thread_idx_x();
        let hw = p.h * p.w;
        let npix = p.n * hw;
        let mut base = [-1i32; 4];
        for e in 0..T / 2 {
            let n = n0 + t % 32 + 32 * e;
            if n < npix {
                let img = n / hw;
                base[e as usize] = (img * p.c_in * hw + (n - img * hw)) as i32;
            }
        }
        Pointwise { x, base, hw, k: p.c_in, kl: t / 32 }
    }
}

impl<const T: u32> TileLoader for Pointwise<T> {
    #[inline(always)]
    unsafe fn fetch(&mut self, k0: u32, r: &mut [f32; 4]) {
        let kk = k0 + self.kl;
        let koff = kk * self.hw;
        for e in 0..(T / 2) as usize {
            let ok = kk < self.k && self.base[e] >= 0;
            r[e] = if ok { unsafe { *self.x.add((self.base[e] as u32 + koff) as usize) } } else { 0.0 };
        }
    }
    #[inline(always)]
    unsafe fn store(&self, stage: u32, r: &[f32; 4]) {
        unsafe { store_kcols::<T>(stage, r) };
    }
}

/// Writes one engine tile of a conv: rows are output channels `oc0 + m` (`m < rows`),
/// columns are flattened output pixels `n0 + col` over `n * out_h * out_w`. 16-byte
/// stores (and residual loads) when `out_h * out_w % 4 == 0` and the pointers are 16-byte
/// aligned (then a thread's 4 consecutive columns lie in one image), scalar otherwise.
struct ConvStore<'a, const T: u32> {
    e: &'a Epi,
    y: *mut f32,
    oc0: u32,
    rows: u32,
    ohw: u32,
    npix: u32,
    vec: bool,
    /// First flattened column of each group of four of the thread's columns.
    col: [u32; 2],
    /// Output offset at channel 0 of each of the thread's columns.
    obase: [[u32; 4]; 2],
}

impl<'a, const T: u32> ConvStore<'a, T> {
    #[inline(always)]
    fn new(p: &ConvParams, e: &'a Epi, y: *mut f32, oc0: u32, rows: u32, n0: u32) -> ConvStore<'a, T> {
        let ohw = p.out_h * p.out_w;
        let vec = ohw % 4 == 0 && y.is_aligned_to(16) && (!e.has_residual() || e.residual.is_aligned_to(16));
        let mut col = [0u32; 2];
        let mut obase = [[0u32; 4]; 2];
        for h in 0..T / 4 {
            col[h as usize] = n0 + tile_col::<T>(4 * h);
            for j in 0..4u32 {
                let n = col[h as usize] + j;
                let img = n / ohw;
                obase[h as usize][j as usize] = img * p.c_out * ohw + (n - img * ohw);
            }
        }
        ConvStore { e, y, oc0, rows, ohw, npix: p.n * ohw, vec, col, obase }
    }
}

impl<const T: u32> QuadSink for ConvStore<'_, T> {
    #[inline(always)]
    unsafe fn quad(&mut self, i: u32, h: u32, a: [f32; 4]) {
        let m = tile_row::<T>(i);
        if m >= self.rows {
            return;
        }
        let e = self.e;
        let oc = self.oc0 + m;
        let (b, c) = unsafe { e.chan(oc) };
        let col = self.col[h as usize];
        let obase = self.obase[h as usize];
        if self.vec && col + 3 < self.npix {
            let off = obase[0] + oc * self.ohw;
            let r = if e.has_residual() {
                unsafe { mem::ld_global_f32x4(e.residual.add(off as usize)) }
            } else {
                f32x4::splat(0.0)
            };
            let o = f32x4 {
                x: e.apply(a[0], b, &c, r.x),
                y: e.apply(a[1], b, &c, r.y),
                z: e.apply(a[2], b, &c, r.z),
                w: e.apply(a[3], b, &c, r.w),
            };
            unsafe { mem::st_global_f32x4(self.y.add(off as usize), o) };
        } else {
            for j in 0..4u32 {
                if col + j < self.npix {
                    let off = obase[j as usize] + oc * self.ohw;
                    let v = e.apply(a[j as usize], b, &c, unsafe { e.res(off) });
                    unsafe { *self.y.add(off as usize) = v };
                }
            }
        }
    }
}

/// The implicit-GEMM conv body for block tile `16T x 16T` (see [`conv2d_igemm_f32`]).
#[inline(always)]
unsafe fn igemm<const T: u32>(p: &ConvParams, x: *const f32, w: *const f32, e: &Epi, y: *mut f32) {
    let g = block_idx_z();
    let cig = p.c_in / p.groups;
    let cog = p.c_out / p.groups;
    let k = cig * p.kh * p.kw;
    let m0 = block_idx_y() * 16 * T;
    let n0 = block_idx_x() * 16 * T;
    let oc0 = g * cog + m0;
    let mut acc: Acc = [[0.0; 8]; 8];
    unsafe {
        let mut la = RowsK::<T>::new(w.add((oc0 * k) as usize), k, cog - m0, k);
        let mut lb = Im2col::<T>::new(p, x.add((g * cig * p.h * p.w) as usize), n0, k);
        mainloop::<T, _, _>(&mut la, &mut lb, k, &mut acc);
        for_each_quad::<T, _>(&acc, &mut ConvStore::<T>::new(p, e, y, oc0, cog - m0, n0));
    }
}

/// The pointwise conv body for block tile `16T x 16T` (see [`conv2d_pointwise_f32`]).
#[inline(always)]
unsafe fn pointwise<const T: u32>(p: &ConvParams, x: *const f32, w: *const f32, e: &Epi, y: *mut f32) {
    let m0 = block_idx_y() * 16 * T;
    let n0 = block_idx_x() * 16 * T;
    let mut acc: Acc = [[0.0; 8]; 8];
    unsafe {
        let mut la = RowsK::<T>::new(w.add((m0 * p.c_in) as usize), p.c_in, p.c_out - m0, p.c_in);
        let mut lb = Pointwise::<T>::new(p, x, n0);
        mainloop::<T, _, _>(&mut la, &mut lb, p.c_in, &mut acc);
        for_each_quad::<T, _>(&acc, &mut ConvStore::<T>::new(p, e, y, m0, p.c_out - m0, n0));
    }
}

/// Implicit-GEMM convolution: any stride, padding, dilation and groups.
///
/// GEMM view per group `g` (`blockIdx.z`): `M = c_out / groups` (output channels),
/// `N = n * out_h * out_w` (output pixels, flattened over the batch),
/// `K = (c_in / groups) * kh * kw`; `A` = the group's weights (OIHW rows are already
/// `[M][K]`), `B` = im2col of the input, addressed on the fly (zero for padding, never
/// materialised). Tiling: the [`crate::gemm::mainloop`] engine, 128 (M) x 128 (N) x 8 (K)
/// per block, double-buffered in 16.9 KB of static shared memory, 256 threads (16 x 16)
/// each owning an 8 x 8 register micro-tile computed with explicit `fma`. Edges: every
/// load and store is bounds-checked, so any size works.
///
/// Launch: block (256, 1, 1), grid (ceil(N / 128), ceil(M / 128), groups), no dynamic
/// shared memory.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn conv2d_igemm_f32(
    p: ConvParams,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const f32,
    y: *mut f32,
) {
    let e = Epi::new(&p, bias, scale, shift, residual);
    unsafe { igemm::<T_LARGE>(&p, x, w, &e, y) };
}

/// [`conv2d_igemm_f32`] with a 64 x 64 block tile (4 x 4 micro-tile per thread, same 256
/// threads and engine), for layers whose 128 x 128 grid would not fill the GPU: 4x the
/// blocks at a lower FMA-to-shared-load ratio.
///
/// Launch: block (256, 1, 1), grid (ceil(N / 64), ceil(M / 64), groups).
#[no_mangle]
pub unsafe extern "ptx-kernel" fn conv2d_igemm64_f32(
    p: ConvParams,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const f32,
    y: *mut f32,
) {
    let e = Epi::new(&p, bias, scale, shift, residual);
    unsafe { igemm::<T_SMALL>(&p, x, w, &e, y) };
}

/// Pointwise (1x1, stride 1, unpadded, ungrouped) convolution as a GEMM:
/// `y[img] = W[c_out][c_in] · x[img][c_in][h * w]`, all images side by side in N.
///
/// Same engine, tiling and launch as [`conv2d_igemm_f32`] (grid z = 1) with a cheaper B
/// loader: no tap decode and no padding checks. Preconditions: `kh = kw = 1`, strides 1,
/// pads 0, `groups = 1`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn conv2d_pointwise_f32(
    p: ConvParams,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const f32,
    y: *mut f32,
) {
    let e = Epi::new(&p, bias, scale, shift, residual);
    unsafe { pointwise::<T_LARGE>(&p, x, w, &e, y) };
}

/// [`conv2d_pointwise_f32`] with a 64 x 64 block tile (see [`conv2d_igemm64_f32`]).
///
/// Launch: block (256, 1, 1), grid (ceil(N / 64), ceil(c_out / 64), 1).
#[no_mangle]
pub unsafe extern "ptx-kernel" fn conv2d_pointwise64_f32(
    p: ConvParams,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const f32,
    y: *mut f32,
) {
    let e = Epi::new(&p, bias, scale, shift, residual);
    unsafe { pointwise::<T_SMALL>(&p, x, w, &e, y) };
}

/// Sum over a `KH x KW` window with compile-time trip counts (fully unrolled).
#[inline(always)]
unsafe fn dw_window<const KH: u32, const KW: u32>(
    p: &ConvParams,
    xp: *const f32,
    wp: *const f32,
    iy0: i32,
    ix0: i32,
) -> f32 {
    let mut acc = 0.0f32;
    for ky in 0..KH {
        let iy = iy0 + (ky * p.dil_h) as i32;
        if (iy as u32) < p.h {
            for kx in 0..KW {
                let ix = ix0 + (kx * p.dil_w) as i32;
                if (ix as u32) < p.w {
                    let xv = unsafe { *xp.add((iy as u32 * p.w + ix as u32) as usize) };
                    acc = fma(xv, unsafe { *wp.add((ky * KW + kx) as usize) }, acc);
                }
            }
        }
    }
    acc
}

/// Four adjacent outputs `ox0 .. ox0 + 4` of a 3x3 window with horizontal stride 1: each
/// input row segment (6 columns) is loaded once and shared by the four outputs (18 loads
/// instead of 36). Columns outside the input read 0; outputs past the row end are
/// computed from zeros and not stored.
#[inline(always)]
unsafe fn dw_quad(p: &ConvParams, xp: *const f32, wp: *const f32, iy0: i32, ix0: i32) -> [f32; 4] {
    let mut acc = [0.0f32; 4];
    for ky in 0..3u32 {
        let iy = iy0 + (ky * p.dil_h) as i32;
        if (iy as u32) < p.h {
            let row = unsafe { xp.add((iy as u32 * p.w) as usize) };
            let mut v = [0.0f32; 6];
            for c in 0..6 {
                let ix = ix0 + c as i32;
                if (ix as u32) < p.w {
                    v[c] = unsafe { *row.add(ix as u32 as usize) };
                }
            }
            for kx in 0..3usize {
                let wv = unsafe { *wp.add(ky as usize * 3 + kx) };
                for o in 0..4usize {
                    acc[o] = fma(v[o + kx], wv, acc[o]);
                }
            }
        }
    }
    acc
}

/// Plane bookkeeping shared by the depthwise kernels: input plane, weights and channel.
struct DwPlane {
    xp: *const f32,
    wp: *const f32,
    oc: u32,
}

#[inline(always)]
unsafe fn dw_plane(p: &ConvParams, x: *const f32, w: *const f32, plane: u32) -> DwPlane {
    let img = plane / p.c_out;
    let oc = plane - img * p.c_out;
    let ic = oc / (p.c_out / p.c_in);
    unsafe {
        DwPlane { xp: x.add(((img * p.c_in + ic) * p.h * p.w) as usize), wp: w.add((oc * p.kh * p.kw) as usize), oc }
    }
}

/// Depthwise convolution (`groups == c_in`, `c_out = c_in * multiplier`): any kernel size,
/// stride, padding and dilation; 3x3 unrolled.
///
/// Thread mapping: a 2-D block (`blockDim.x` output pixels x `blockDim.y` channel planes,
/// chosen by the host to fit the plane); thread `(tx, ty)` computes output pixel
/// `blockIdx.x * blockDim.x + tx` of planes `blockIdx.y * blockDim.y + ty`, stepping by
/// `gridDim.y * blockDim.y` over the `n * c_out` planes. Consecutive threads take
/// consecutive output pixels, so loads (stride 1) and stores coalesce; the few weights of
/// a plane are warp-uniform broadcast loads. Memory-bound; no shared memory, no barriers.
///
/// Launch: block (bx, by) with bx a multiple of 32 and bx * by <= 1024, grid
/// (ceil(out_h * out_w / bx), <= 65535, 1).
#[no_mangle]
pub unsafe extern "ptx-kernel" fn conv2d_depthwise_f32(
    p: ConvParams,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const f32,
    y: *mut f32,
) {
    let e = Epi::new(&p, bias, scale, shift, residual);
    let ohw = p.out_h * p.out_w;
    let pix = block_idx_x() * block_dim_x() + thread_idx_x();
    if pix >= ohw {
        return;
    }
    let oy = pix / p.out_w;
    let ox = pix - oy * p.out_w;
    let iy0 = (oy * p.stride_h) as i32 - p.pad_h as i32;
    let ix0 = (ox * p.stride_w) as i32 - p.pad_w as i32;
    let planes = p.n * p.c_out;
    let step = grid_dim_y() * block_dim_y();
    let mut plane = block_idx_y() * block_dim_y() + thread_idx_y();
    while plane < planes {
        let d = unsafe { dw_plane(&p, x, w, plane) };
        let (xp, wp) = (d.xp, d.wp);
        let acc = if p.kh == 3 && p.kw == 3 {
            unsafe { dw_window::<3, 3>(&p, xp, wp, iy0, ix0) }
        } else {
            let mut acc = 0.0f32;
            for ky in 0..p.kh {
                let iy = iy0 + (ky * p.dil_h) as i32;
                if (iy as u32) >= p.h {
                    continue;
                }
                for kx in 0..p.kw {
                    let ix = ix0 + (kx * p.dil_w) as i32;
                    if (ix as u32) < p.w {
                        let xv = unsafe { *xp.add((iy as u32 * p.w + ix as u32) as usize) };
                        acc = fma(xv, unsafe { *wp.add((ky * p.kw + kx) as usize) }, acc);
                    }
                }
            }
            acc
        };
        let off = plane * ohw + pix;
        let (b, c) = unsafe { e.chan(d.oc) };
        let v = e.apply(acc, b, &c, unsafe { e.res(off) });
        unsafe { *y.add(off as usize) = v };
        plane += step;
    }
}

/// Depthwise 3x3 convolution with horizontal stride 1 and no horizontal dilation
/// (MobileNet's stride-1 layers; any vertical stride/dilation, padding, multiplier),
/// four adjacent outputs of a row per thread ([`dw_quad`]: 18 input loads instead of 36
/// and one index computation per 4 outputs). Kept apart from [`conv2d_depthwise_f32`] so
/// that kernel keeps its lower register count (occupancy: both are latency-bound).
///
/// Thread mapping: as [`conv2d_depthwise_f32`] with work items of 4 outputs:
/// `out_h * ceil(out_w / 4)` items per plane. Launch: block (bx, by), grid
/// (ceil(items / bx), <= 65535, 1). Preconditions: `kh = kw = 3`, `stride_w = 1`,
/// `dil_w = 1`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn conv2d_depthwise3x3s1_f32(
    p: ConvParams,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    scale: *const f32,
    shift: *const f32,
    residual: *const f32,
    y: *mut f32,
) {
    let e = Epi::new(&p, bias, scale, shift, residual);
    let ohw = p.out_h * p.out_w;
    let per_row = p.out_w.div_ceil(4);
    let item = block_idx_x() * block_dim_x() + thread_idx_x();
    if item >= p.out_h * per_row {
        return;
    }
    let oy = item / per_row;
    let ox = 4 * (item - oy * per_row);
    let iy0 = (oy * p.stride_h) as i32 - p.pad_h as i32;
    let ix0 = ox as i32 - p.pad_w as i32;
    let planes = p.n * p.c_out;
    let step = grid_dim_y() * block_dim_y();
    let mut plane = block_idx_y() * block_dim_y() + thread_idx_y();
    while plane < planes {
        let d = unsafe { dw_plane(&p, x, w, plane) };
        let acc = unsafe { dw_quad(&p, d.xp, d.wp, iy0, ix0) };
        let off = plane * ohw + oy * p.out_w + ox;
        let (b, c) = unsafe { e.chan(d.oc) };
        for o in 0..4u32 {
            if ox + o < p.out_w {
                let v = e.apply(acc[o as usize], b, &c, unsafe { e.res(off + o) });
                unsafe { *y.add((off + o) as usize) = v };
            }
        }
        plane += step;
    }
}
