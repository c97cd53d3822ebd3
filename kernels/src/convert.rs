//! Layout (NCHW ↔ NHWC) and precision (f32 ↔ f16/bf16) conversions, and the fused
//! NCHW f32 → NHWC f16/bf16 conversion that feeds the tensor-core kernels.
//!
//! 16-bit data travels as raw bits (`u16`). Narrowing rounds to nearest even
//! (`cvt.rn.f16x2.f32` / `cvt.rn.bf16x2.f32`): overflow gives ±inf for f16, NaN stays NaN,
//! f16 subnormals are produced exactly — bit-identical to the `half` crate's `from_f32`
//! except for NaN payloads. Widening is exact.

use crate::dcore::half::{bf16, f16};
use crate::dcore::mem::{f32x4, ld_global_nc_f32, ld_global_nc_f32x4, st_global_f32x4, st_global_u32x4, u32x4};
use crate::dcore::prelude::*;
use crate::eltwise::{unroll4, Half16, BF16, F16};
use crate::params::*;

/// Transpose tile edge.
const TILE: u32 = 32;
/// Rows of the thread block (`blockDim = (TILE, ROWS)`); each thread moves `TILE/ROWS`
/// elements.
const ROWS: u32 = 8;

/// Transposes each of `batch` row-major `[r, c]` matrices into `[c, r]`, converting every
/// element with `f` on the way out.
///
/// Thread mapping: block `(32, 8)`, grid `(ceil(c/64), ceil(r/32), batch)` (blockIdx.z
/// grid-strides over the batch). A block moves two 32x32 tiles side by side (input
/// columns `c0..c0+64`): each thread loads its eight input elements (rows `ty + 8u`,
/// columns `tx` and `32 + tx`: every warp load is 32 consecutive elements) into registers
/// — all eight loads in flight, addressed by one running pointer to keep registers low —
/// then stores them to shared memory as `tile[row][col]` with a row pitch of 33 elements;
/// after a barrier it writes eight output elements from `tile[col][row]` (again 32
/// consecutive per warp store). The odd pitch puts the 32 elements of a tile column in 32
/// different banks: no bank conflicts.
#[inline(always)]
unsafe fn transpose<I: Copy, O, F: Fn(I) -> O>(
    r: u32,
    c: u32,
    batch: u32,
    x: *const I,
    y: *mut O,
    tile: *mut I,
    zero: I,
    f: F,
) {
    let (tx, ty) = (thread_idx_x(), thread_idx_y());
    // Two 32x32 tiles side by side (columns c0.. and c0+32..): 8 loads in flight per thread.
    let c0 = block_idx_x() * 2 * TILE;
    let r0 = block_idx_y() * TILE;
    let mat = r as usize * c as usize;
    // Output column = input row r0 + tx.
    let ocol = r0 + tx;
    let mut b = block_idx_z();
    while b < batch {
        let src = x.add(b as usize * mat);
        let dst = y.add(b as usize * mat);
        let mut v = [zero; 8];
        let (col0, col1) = (c0 + tx, c0 + TILE + tx);
        let (ok0, ok1) = (col0 < c, col1 < c);
        // One running pointer down the rows (no per-load 64-bit products).
        let step = ROWS as usize * c as usize;
        let mut q = src.wrapping_add((r0 + ty) as usize * c as usize + col0 as usize);
        unroll4!(U => {
            let row = r0 + ty + U as u32 * ROWS;
            if row < r && ok0 {
                v[U] = *q;
            }
            if row < r && ok1 {
                v[U + 4] = *q.wrapping_add(TILE as usize);
            }
            q = q.wrapping_add(step);
        });
        unroll4!(U => {
            let at = ((ty + U as u32 * ROWS) * (TILE + 1) + tx) as usize;
            *tile.add(at) = v[U];
            *tile.add(at + (TILE * (TILE + 1)) as usize) = v[U + 4];
        });
        sync_threads();
        // Output rows = input columns c0 + k (first tile) and c0 + 32 + k (second).
        let dstep = ROWS as usize * r as usize;
        let mut d = dst.wrapping_add((c0 + ty) as usize * r as usize + ocol as usize);
        let second = TILE as usize * r as usize;
        unroll4!(U => {
            let k = ty + U as u32 * ROWS;
            let at = (tx * (TILE + 1) + k) as usize;
            if c0 + k < c && ocol < r {
                *d = f(*tile.add(at));
            }
            if c0 + TILE + k < c && ocol < r {
                *d.wrapping_add(second) = f(*tile.add(at + (TILE * (TILE + 1)) as usize));
            }
            d = d.wrapping_add(dstep);
        });
        // The tile is rewritten for the next image only after everyone has read it.
        sync_threads();
        b += grid_dim_z();
    }
}

/// Two adjacent elements of a row, loaded together (4 or 8 bytes), packed to 16-bit bits.
pub(crate) trait PairSource: Copy {
    /// Loads `p[0], p[1]`.
    ///
    /// # Safety
    /// `p` aligned to twice the element size, both elements valid.
    unsafe fn load_pair(p: *const Self) -> (Self, Self);
}
impl PairSource for u16 {
    #[inline(always)]
    unsafe fn load_pair(p: *const u16) -> (u16, u16) {
        let w = unsafe { *(p as *const u32) };
        (w as u16, (w >> 16) as u16)
    }
}
impl PairSource for f32 {
    #[inline(always)]
    unsafe fn load_pair(p: *const f32) -> (f32, f32) {
        let v = unsafe { *(p as *const crate::dcore::mem::f32x2) };
        (v.x, v.y)
    }
}

/// Pitch of the 64x64 16-bit tile in 32-bit words (66 halves).
const PITCH_W: u32 = 33;

/// Transposes each of `batch` row-major `[r, c]` matrices into `[c, r]` with a 16-bit
/// output, `pack(a, b)` turning two adjacent input elements into one output word (bits of
/// `a` low) — a bit copy for 16-bit input, a rounding conversion for f32 input.
///
/// Thread mapping: block `(32, 8)`, grid `(ceil(c/64), ceil(r/64), batch)`; a block moves
/// a 64x64 tile. Load phase: lane `tx` reads input columns `2tx, 2tx+1` (one 4- or 8-byte
/// load, so a warp reads 64 consecutive elements) of rows `ty + 8k`, k < 8 — eight loads
/// in flight — and stores the packed pair as one word at `tile[row][2tx]` (pitch 33
/// words: conflict-free). Write phase: lane `tx` writes input rows `2tx, 2tx+1` of input
/// column `j = ty + 8k` as one 32-bit word (`tile[2tx][j]`, `tile[2tx+1][j]`: 2-way bank
/// conflicts), so a warp writes 64 consecutive 16-bit outputs (128 bytes). Odd `c`
/// (resp. `r`) fall back to element loads (resp. 16-bit stores), keeping alignment.
#[inline(always)]
unsafe fn transpose_pairs<I: PairSource, F: Fn(I, I) -> u32>(
    r: u32,
    c: u32,
    batch: u32,
    x: *const I,
    y: *mut u16,
    tile: *mut u32,
    zero: I,
    pack: F,
) {
    let (tx, ty) = (thread_idx_x(), thread_idx_y());
    let c0 = block_idx_x() * 64;
    let r0 = block_idx_y() * 64;
    let mat = r as usize * c as usize;
    let col = c0 + 2 * tx;
    let (c_even, r_even) = (c & 1 == 0, r & 1 == 0);
    let ocol = r0 + 2 * tx;
    let tile16 = tile as *mut u16;
    let mut b = block_idx_z();
    while b < batch {
        // This lane's column pair in row 0 of the tile, and its output pair in row 0.
        let src = x.add(b as usize * mat + col as usize);
        let dst = y.add(b as usize * mat + ocol as usize);
        let (cs, rs) = (c as usize, r as usize);
        let mut w = [0u32; 8];
        let row0 = r0 + ty;
        // One running pointer (rows row0, row0 + 8, ...): no per-load 64-bit products.
        let step = ROWS as usize * cs;
        let mut q = src.wrapping_add(row0 as usize * cs);
        if c_even {
            // Both columns exist iff the first does.
            let colok = col < c;
            unroll4!(U => {
                let row = row0 + U as u32 * ROWS;
                if row < r && colok {
                    let (a, bb) = I::load_pair(q);
                    w[U] = pack(a, bb);
                }
                if row + 32 < r && colok {
                    let (a, bb) = I::load_pair(q.wrapping_add(4 * step));
                    w[U + 4] = pack(a, bb);
                }
                q = q.wrapping_add(step);
            });
        } else {
            let (ok0, ok1) = (col < c, col + 1 < c);
            let one = |p: *const I| pack(if ok0 { *p } else { zero }, if ok1 { *p.add(1) } else { zero });
            unroll4!(U => {
                let row = row0 + U as u32 * ROWS;
                if row < r {
                    w[U] = one(q);
                }
                if row + 32 < r {
                    w[U + 4] = one(q.wrapping_add(4 * step));
                }
                q = q.wrapping_add(step);
            });
        }
        unroll4!(U => {
            let row = ty + U as u32 * ROWS;
            *tile.add((row * PITCH_W + tx) as usize) = w[U];
            *tile.add(((row + 32) * PITCH_W + tx) as usize) = w[U + 4];
        });
        sync_threads();
        // Input rows 2tx, 2tx+1 of tile column j, as (lo, hi).
        let pair = |j: u32| {
            (*tile16.add((2 * tx * 2 * PITCH_W + j) as usize), *tile16.add(((2 * tx + 1) * 2 * PITCH_W + j) as usize))
        };
        if r_even {
            let mut j = ty;
            let mut d = dst.wrapping_add((c0 + j) as usize * rs);
            let dstep = ROWS as usize * rs;
            while j < 64 {
                if c0 + j < c && ocol < r {
                    let (lo, hi) = pair(j);
                    *(d as *mut u32) = lo as u32 | (hi as u32) << 16;
                }
                j += ROWS;
                d = d.wrapping_add(dstep);
            }
        } else {
            let mut j = ty;
            while j < 64 {
                if c0 + j < c && ocol < r {
                    let (lo, hi) = pair(j);
                    let q = dst.add((c0 + j) as usize * rs);
                    *q = lo;
                    if ocol + 1 < r {
                        *q.add(1) = hi;
                    }
                }
                j += ROWS;
            }
        }
        sync_threads();
        b += grid_dim_z();
    }
}

/// Largest channel count of the small-channel transposes.
pub const SMALL_C: u32 = 8;
/// Pixels per block of the small-channel transposes (= threads per block).
const SMALL_PIX: u32 = 256;

/// NCHW ↔ NHWC for images with `c <= SMALL_C` channels (the network input: 3 channels),
/// where a 32-channel tile would be mostly empty. A block of 256 threads owns 256 pixels
/// of one image: the `256*c` elements of its NHWC side are one contiguous run, staged in
/// shared memory in NHWC order (`tile[pix*c + ch]`). NCHW → NHWC: each thread reads its
/// pixel's channels (coalesced across the warp, four channels in flight), then the block
/// writes the run linearly (coalesced). NHWC → NCHW: the reverse. Shared-memory accesses
/// at stride `c` are conflict-free for odd `c` (up to 4-way for even).
///
/// Grid `(ceil(hw/256), min(n, 65535))`, block 256; blockIdx.y grid-strides over images.
#[inline(always)]
unsafe fn transpose_small_c<const TO_NHWC: bool, I: Copy, O, F: Fn(I) -> O>(
    p: &ConvertParams,
    x: *const I,
    y: *mut O,
    tile: *mut I,
    zero: I,
    f: F,
) {
    let (c, hw) = (p.c, p.hw);
    let t = thread_idx_x();
    let s0 = block_idx_x() * SMALL_PIX;
    let npix = (hw - s0).min(SMALL_PIX);
    let run = npix * c;
    let mut img = block_idx_y();
    while img < p.n {
        let base = img as usize * c as usize * hw as usize;
        // NCHW element (ch, s0 + t) and the run's start on the NHWC side.
        let nchw = |ch: u32| base + ch as usize * hw as usize + (s0 + t) as usize;
        let nhwc_run = base + s0 as usize * c as usize;
        if TO_NHWC {
            let mut ch = 0;
            while ch < c {
                let mut v = [zero; 4];
                unroll4!(U => {
                    if t < npix && ch + (U as u32) < c {
                        v[U] = *x.add(nchw(ch + U as u32));
                    }
                });
                unroll4!(U => {
                    if t < npix && ch + (U as u32) < c {
                        *tile.add((t * c + ch + U as u32) as usize) = v[U];
                    }
                });
                ch += 4;
            }
            sync_threads();
            let mut e = t;
            while e < run {
                *y.add(nhwc_run + e as usize) = f(*tile.add(e as usize));
                e += SMALL_PIX;
            }
        } else {
            let mut e = t;
            while e < run {
                let mut v = [zero; 4];
                unroll4!(U => {
                    let i = e + U as u32 * SMALL_PIX;
                    if i < run {
                        v[U] = *x.add(nhwc_run + i as usize);
                    }
                });
                unroll4!(U => {
                    let i = e + U as u32 * SMALL_PIX;
                    if i < run {
                        *tile.add(i as usize) = v[U];
                    }
                });
                e += 4 * SMALL_PIX;
            }
            sync_threads();
            if t < npix {
                let mut ch = 0;
                while ch < c {
                    *y.add(nchw(ch)) = f(*tile.add((t * c + ch) as usize));
                    ch += 1;
                }
            }
        }
        sync_threads();
        img += grid_dim_y();
    }
}

/// NCHW → NHWC, f32: per image the `[c, hw]` matrix becomes `[hw, c]`.
///
/// Thread mapping: [`transpose`] with `r = c`, `c = hw`: block `(32, 8)`, grid
/// `(ceil(hw/64), ceil(c/32), n)` (`ceil(c/32) <= 65535`). For `c <= 8` the launcher uses
/// [`convert_nchw_to_nhwc_small_c_f32`] instead (a 32-row tile would be mostly empty).
///
/// # Safety
/// `x`, `y` hold `n*c*hw` f32 and do not overlap; counts < 2^31.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_nchw_to_nhwc_f32(p: ConvertParams, x: *const f32, y: *mut f32) {
    let tile = shared_array!(transpose_tile_f32: [f32; 2 * 32 * 33]);
    unsafe { transpose(p.c, p.hw, p.n, x, y, tile, 0.0, |v| v) }
}

/// NHWC → NCHW, f32: per image `[hw, c]` becomes `[c, hw]`. Grid `(ceil(c/64),
/// ceil(hw/32), n)` (`ceil(hw/32) <= 65535`). Otherwise as [`convert_nchw_to_nhwc_f32`].
///
/// # Safety
/// As [`convert_nchw_to_nhwc_f32`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_nhwc_to_nchw_f32(p: ConvertParams, x: *const f32, y: *mut f32) {
    let tile = shared_array!(transpose_tile_f32b: [f32; 2 * 32 * 33]);
    unsafe { transpose(p.hw, p.c, p.n, x, y, tile, 0.0, |v| v) }
}

macro_rules! transpose16 {
    ($(#[$m:meta])* $name:ident, $tile:ident, nchw_to_nhwc) => {
        $(#[$m])*
        #[no_mangle]
        pub unsafe extern "ptx-kernel" fn $name(p: ConvertParams, x: *const u16, y: *mut u16) {
            let tile = shared_array!($tile: [u32; 64 * 33]);
            unsafe { transpose_pairs(p.c, p.hw, p.n, x, y, tile, 0u16, |a, b| a as u32 | (b as u32) << 16) }
        }
    };
    ($(#[$m:meta])* $name:ident, $tile:ident, nhwc_to_nchw) => {
        $(#[$m])*
        #[no_mangle]
        pub unsafe extern "ptx-kernel" fn $name(p: ConvertParams, x: *const u16, y: *mut u16) {
            let tile = shared_array!($tile: [u32; 64 * 33]);
            unsafe { transpose_pairs(p.hw, p.c, p.n, x, y, tile, 0u16, |a, b| a as u32 | (b as u32) << 16) }
        }
    };
}
transpose16!(
    /// NCHW → NHWC for f16 (a bit copy; the same code as the bf16 entry): [`transpose_pairs`]
    /// with `r = c`, `c = hw`, grid `(ceil(hw/64), ceil(c/64), n)`; `c <= 8` goes to the
    /// small-channel kernel.
    ///
    /// # Safety
    /// `x`, `y` hold `n*c*hw` 16-bit elements and do not overlap; counts < 2^31.
    convert_nchw_to_nhwc_f16, transpose_tile_h16a, nchw_to_nhwc
);
transpose16!(
    /// NCHW → NHWC for bf16; see [`convert_nchw_to_nhwc_f16`].
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_f16`].
    convert_nchw_to_nhwc_bf16, transpose_tile_h16b, nchw_to_nhwc
);
transpose16!(
    /// NHWC → NCHW for f16: [`transpose_pairs`] with `r = hw`, `c = c`, grid
    /// `(ceil(c/64), ceil(hw/64), n)`.
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_f16`].
    convert_nhwc_to_nchw_f16, transpose_tile_h16c, nhwc_to_nchw
);
transpose16!(
    /// NHWC → NCHW for bf16; see [`convert_nhwc_to_nchw_f16`].
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_f16`].
    convert_nhwc_to_nchw_bf16, transpose_tile_h16d, nhwc_to_nchw
);

/// Fused NCHW f32 → NHWC f16: transpose and round to nearest even in one pass (reads 4
/// bytes, writes 2 per element), the input conversion of the tensor-core path. Mapping as
/// [`convert_nchw_to_nhwc_f16`] (the f32 pair is rounded with one `cvt.rn.f16x2.f32` at
/// load time).
///
/// # Safety
/// `x` holds `n*c*hw` f32, `y` holds `n*c*hw` f16; counts < 2^31.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_nchw_f32_to_nhwc_f16(p: ConvertParams, x: *const f32, y: *mut u16) {
    let tile = shared_array!(transpose_tile_f32c: [u32; 64 * 33]);
    unsafe { transpose_pairs(p.c, p.hw, p.n, x, y, tile, 0.0, F16::pack) }
}

/// Fused NCHW f32 → NHWC bf16; see [`convert_nchw_f32_to_nhwc_f16`].
///
/// # Safety
/// As [`convert_nchw_f32_to_nhwc_f16`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_nchw_f32_to_nhwc_bf16(p: ConvertParams, x: *const f32, y: *mut u16) {
    let tile = shared_array!(transpose_tile_f32d: [u32; 64 * 33]);
    unsafe { transpose_pairs(p.c, p.hw, p.n, x, y, tile, 0.0, BF16::pack) }
}

macro_rules! small_c {
    ($(#[$m:meta])* $name:ident, $to_nhwc:literal, $i:ty, $o:ty, $tile:ident, $zero:expr, $f:expr) => {
        $(#[$m])*
        #[no_mangle]
        pub unsafe extern "ptx-kernel" fn $name(p: ConvertParams, x: *const $i, y: *mut $o) {
            let tile = shared_array!($tile: [$i; 8 * 256]);
            unsafe { transpose_small_c::<$to_nhwc, $i, $o, _>(&p, x, y, tile, $zero, $f) }
        }
    };
}
small_c!(
    /// NCHW → NHWC, f32, for `c <= 8` (see [`transpose_small_c`]).
    ///
    /// # Safety
    /// `1 <= c <= 8`; `x`, `y` hold `n*c*hw` elements, not overlapping; counts < 2^31.
    convert_nchw_to_nhwc_small_c_f32, true, f32, f32, small_c_tile_a, 0.0, |v| v
);
small_c!(
    /// NHWC → NCHW, f32, for `c <= 8`.
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_small_c_f32`].
    convert_nhwc_to_nchw_small_c_f32, false, f32, f32, small_c_tile_b, 0.0, |v| v
);
small_c!(
    /// NCHW → NHWC, 16-bit (f16 or bf16 bits), for `c <= 8`.
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_small_c_f32`].
    convert_nchw_to_nhwc_small_c_f16, true, u16, u16, small_c_tile_c, 0u16, |v| v
);
small_c!(
    /// NCHW → NHWC, bf16 bits (the same code as the f16 entry), for `c <= 8`.
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_small_c_f32`].
    convert_nchw_to_nhwc_small_c_bf16, true, u16, u16, small_c_tile_d, 0u16, |v| v
);
small_c!(
    /// NHWC → NCHW, f16 bits, for `c <= 8`.
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_small_c_f32`].
    convert_nhwc_to_nchw_small_c_f16, false, u16, u16, small_c_tile_e, 0u16, |v| v
);
small_c!(
    /// NHWC → NCHW, bf16 bits, for `c <= 8`.
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_small_c_f32`].
    convert_nhwc_to_nchw_small_c_bf16, false, u16, u16, small_c_tile_f, 0u16, |v| v
);
small_c!(
    /// Fused NCHW f32 → NHWC f16 for `c <= 8` (the 3-channel network input).
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_small_c_f32`].
    convert_nchw_f32_to_nhwc_small_c_f16, true, f32, u16, small_c_tile_g, 0.0, |v| f16::from_f32(v).to_bits()
);
small_c!(
    /// Fused NCHW f32 → NHWC bf16 for `c <= 8`.
    ///
    /// # Safety
    /// As [`convert_nchw_to_nhwc_small_c_f32`].
    convert_nchw_f32_to_nhwc_small_c_bf16, true, f32, u16, small_c_tile_h, 0.0, |v| bf16::from_f32(v).to_bits()
);

/// f32 → 16-bit over `len` elements: 8 per 16-byte store (two 16-byte loads), four such
/// groups per thread per grid-stride step, scalar tail of `len % 8`.
#[inline(always)]
unsafe fn narrow<H: Half16>(len: u32, x: *const f32, y: *mut u16) {
    let n8 = len >> 3;
    let bd = block_dim_x();
    let step = grid_dim_x() * bd * 4;
    let mut base = block_idx_x() * bd * 4 + thread_idx_x();
    let pack8 = |a: f32x4, b: f32x4| u32x4 {
        x: H::pack(a.x, a.y),
        y: H::pack(a.z, a.w),
        z: H::pack(b.x, b.y),
        w: H::pack(b.z, b.w),
    };
    while base < n8 {
        let mut lo = [f32x4::splat(0.0); 4];
        let mut hi = [f32x4::splat(0.0); 4];
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n8 {
                lo[U] = ld_global_nc_f32x4(x.add((i * 8) as usize));
                hi[U] = ld_global_nc_f32x4(x.add((i * 8 + 4) as usize));
            }
        });
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n8 {
                st_global_u32x4(y.add((i * 8) as usize) as *mut u32, pack8(lo[U], hi[U]));
            }
        });
        base += step;
    }
    let e = n8 * 8 + global_idx_x();
    if e < len {
        *y.add(e as usize) = H::pack(*x.add(e as usize), 0.0) as u16;
    }
}

/// `ld.global.nc.v2.u32`: 8 bytes (4 halves) through the read-only path.
///
/// # Safety
/// `p` 8-byte aligned, valid, not written by this launch.
#[inline(always)]
unsafe fn ld_nc_u32x2(p: *const u32) -> (u32, u32) {
    let (a, b): (u32, u32);
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; ld.global.nc.v2.u32 {{{a}, {b}}}, [g]; }}",
            p = in(reg64) p,
            a = out(reg32) a,
            b = out(reg32) b,
            options(pure, readonly, nostack),
        );
    }
    (a, b)
}

/// 16-bit → f32 over `len` elements: 4 per thread-vector (an 8-byte load, a 16-byte
/// store, so both are contiguous across the warp), 8 vectors per thread per step, tail of
/// `len % 4`.
#[inline(always)]
unsafe fn widen<H: Half16>(len: u32, x: *const u16, y: *mut f32) {
    let n4 = len >> 2;
    let bd = block_dim_x();
    let step = grid_dim_x() * bd * 8;
    let mut base = block_idx_x() * bd * 8 + thread_idx_x();
    let cvt = |(a, b): (u32, u32)| f32x4 {
        x: H::widen(a & 0xffff),
        y: H::widen(a >> 16),
        z: H::widen(b & 0xffff),
        w: H::widen(b >> 16),
    };
    while base < n4 {
        let mut v = [(0u32, 0u32); 8];
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n4 {
                v[U] = ld_nc_u32x2(x.add((i * 4) as usize) as *const u32);
            }
            let i = i + 4 * bd;
            if i < n4 {
                v[U + 4] = ld_nc_u32x2(x.add((i * 4) as usize) as *const u32);
            }
        });
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n4 {
                st_global_f32x4(y.add((i * 4) as usize), cvt(v[U]));
            }
            let i = i + 4 * bd;
            if i < n4 {
                st_global_f32x4(y.add((i * 4) as usize), cvt(v[U + 4]));
            }
        });
        base += step;
    }
    let e = n4 * 4 + global_idx_x();
    if e < len {
        *y.add(e as usize) = H::widen(*x.add(e as usize) as u32);
    }
}

/// f32 → f16 (round to nearest even) over `n*c*hw` elements, any layout.
///
/// Thread mapping: grid-stride over groups of 8 elements (two 16-byte loads, one 16-byte
/// store), four groups per thread per step; the last `len % 8` elements by the grid's
/// first threads. Any 1-D grid.
///
/// # Safety
/// `x` holds `len = n*c*hw` f32, `y` holds `len` f16, both 16-byte aligned, not
/// overlapping; `len < 2^31`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_f32_to_f16(p: ConvertParams, x: *const f32, y: *mut u16) {
    unsafe { narrow::<F16>(p.n * p.c * p.hw, x, y) }
}

/// f32 → bf16 (round to nearest even); see [`convert_f32_to_f16`].
///
/// # Safety
/// As [`convert_f32_to_f16`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_f32_to_bf16(p: ConvertParams, x: *const f32, y: *mut u16) {
    unsafe { narrow::<BF16>(p.n * p.c * p.hw, x, y) }
}

/// f16 → f32 (exact) over `n*c*hw` elements: an 8-byte load and a 16-byte store per 4
/// elements, 8 such per thread per step; tail `len % 4`.
///
/// # Safety
/// `x` holds `len` f16, `y` holds `len` f32, both 16-byte aligned, not overlapping.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_f16_to_f32(p: ConvertParams, x: *const u16, y: *mut f32) {
    unsafe { widen::<F16>(p.n * p.c * p.hw, x, y) }
}

/// bf16 → f32 (exact); see [`convert_f16_to_f32`].
///
/// # Safety
/// As [`convert_f16_to_f32`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_bf16_to_f32(p: ConvertParams, x: *const u16, y: *mut f32) {
    unsafe { widen::<BF16>(p.n * p.c * p.hw, x, y) }
}

/// Fused NCHW f32 → NHWC 16-bit for `C` channels (a compile-time constant, 1..=8),
/// eight pixels per item: item `g` is pixels `8g'..8g'+8` of image `g / (hw/8)`; its
/// input is `C` runs of 8 consecutive f32 (two 16-byte loads per channel, all `2·C` in
/// flight, each coalesced across the warp), its output the `8·C` contiguous halves of
/// those pixels, written as `C` 16-byte stores. Grid-stride over items; any 1-D grid.
#[inline(always)]
unsafe fn nchw_to_nhwc_pix8<H: Half16, const C: u32>(p: &ConvertParams, x: *const f32, y: *mut u16) {
    let hw = p.hw;
    let groups_per_img = hw >> 3;
    let items = p.n * groups_per_img;
    let fd = crate::pool::FastDiv::new(groups_per_img);
    let stride = grid_stride_x();
    let mut g = global_idx_x();
    while g < items {
        let (img, gi) = fd.divmod(g);
        let src = x.add((img * C * hw + gi * 8) as usize);
        let mut v = [[0.0f32; 8]; 8];
        let mut ch = 0;
        while ch < C {
            let q = src.add((ch * hw) as usize);
            let (a, b) = (ld_global_nc_f32x4(q), ld_global_nc_f32x4(q.add(4)));
            v[ch as usize] = [a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w];
            ch += 1;
        }
        // Output element e = pixel·C + channel; word k packs elements 2k, 2k+1.
        let elem = |e: u32| v[(e % C) as usize][(e / C) as usize];
        let dst = y.add((g * 8 * C) as usize) as *mut u32;
        let mut k = 0;
        while k < C {
            let w = |j: u32| H::pack(elem(8 * k + 2 * j), elem(8 * k + 2 * j + 1));
            st_global_u32x4(dst.add(4 * k as usize), u32x4 { x: w(0), y: w(1), z: w(2), w: w(3) });
            k += 1;
        }
        g += stride;
    }
}

/// Calls `$f::<$h, C>(args)` for the runtime channel count `$c` in 1..=8 (else nothing).
macro_rules! match_c {
    ($c:expr, $f:ident, $h:ty, $($arg:expr),*) => {{
        let c = $c;
        if c == 3 {
            $f::<$h, 3>($($arg),*)
        } else if c == 1 {
            $f::<$h, 1>($($arg),*)
        } else if c == 2 {
            $f::<$h, 2>($($arg),*)
        } else if c == 4 {
            $f::<$h, 4>($($arg),*)
        } else if c == 5 {
            $f::<$h, 5>($($arg),*)
        } else if c == 6 {
            $f::<$h, 6>($($arg),*)
        } else if c == 7 {
            $f::<$h, 7>($($arg),*)
        } else if c == 8 {
            $f::<$h, 8>($($arg),*)
        }
    }};
}

/// Runs [`nchw_to_nhwc_pix8`] for the runtime `c` (1..=8; other values write nothing).
#[inline(always)]
unsafe fn pix8_dispatch<H: Half16>(p: &ConvertParams, x: *const f32, y: *mut u16) {
    unsafe { match_c!(p.c, nchw_to_nhwc_pix8, H, p, x, y) }
}

/// Fused NCHW f32 → NHWC f16 for the network input (`c <= 8`, `hw % 8 == 0`): every
/// thread turns 8 pixels into their `8·c` halves with 16-byte loads and stores only (no
/// shared memory); see [`nchw_to_nhwc_pix8`]. Rounding as [`convert_nchw_f32_to_nhwc_f16`].
///
/// # Safety
/// `1 <= c <= 8`, `hw % 8 == 0`; `x` holds `n·c·hw` f32, `y` `n·c·hw` f16, both 16-byte
/// aligned, not overlapping; counts < 2^31.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_nchw_f32_to_nhwc_pix8_f16(p: ConvertParams, x: *const f32, y: *mut u16) {
    unsafe { pix8_dispatch::<F16>(&p, x, y) }
}

/// Fused NCHW f32 → NHWC bf16, eight pixels per thread; see
/// [`convert_nchw_f32_to_nhwc_pix8_f16`].
///
/// # Safety
/// As [`convert_nchw_f32_to_nhwc_pix8_f16`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_nchw_f32_to_nhwc_pix8_bf16(p: ConvertParams, x: *const f32, y: *mut u16) {
    unsafe { pix8_dispatch::<BF16>(&p, x, y) }
}

/// Fused NCHW f32 → NHWC 16-bit with the channels padded to 8: pixel `q` of image `i`
/// becomes the 8 halves `[x_0, …, x_{c-1}, 0, …, 0]` (channels `c..8` exactly +0), so a
/// 3-channel network input can feed the tensor-core conv's fast path (`c_in % 8 == 0`)
/// with zero-padded weights.
///
/// Thread mapping: one thread per pixel, grid-stride over the `n·hw` pixels (any 1-D
/// grid). Thread `g` (image `g / hw`, pixel `g % hw`) reads its `c` channel values at
/// stride `hw` (for each channel a warp reads 32 consecutive f32: coalesced) and writes
/// one 16-byte vector at `y + 8g` (a warp writes 512 contiguous bytes). No tiling, no
/// shared memory; any `hw` (no multiple-of-8 requirement).
#[inline(always)]
unsafe fn nchw_to_nhwc_pad8<H: Half16>(p: &ConvertParams, x: *const f32, y: *mut u16) {
    let (c, hw) = (p.c, p.hw);
    let pixels = p.n * hw;
    let fd = crate::pool::FastDiv::new(hw);
    let stride = grid_stride_x();
    let mut g = global_idx_x();
    while g < pixels {
        let (img, q) = fd.divmod(g);
        let src = x.add(img as usize * (c * hw) as usize + q as usize);
        let mut v = [0.0f32; 8];
        // All c loads in flight before the store; lanes c..8 stay 0.0 (packs to +0).
        unroll4!(U => {
            if (U as u32) < c {
                v[U] = ld_global_nc_f32(src.add(U * hw as usize));
            }
            if (U as u32 + 4) < c {
                v[U + 4] = ld_global_nc_f32(src.add((U + 4) * hw as usize));
            }
        });
        let w =
            u32x4 { x: H::pack(v[0], v[1]), y: H::pack(v[2], v[3]), z: H::pack(v[4], v[5]), w: H::pack(v[6], v[7]) };
        st_global_u32x4(y.add(g as usize * 8) as *mut u32, w);
        g += stride;
    }
}

/// Fused NCHW f32 `[n, c, h, w]` → NHWC f16 `[n, h, w, 8]`, channels `c..8` zero; one
/// thread per pixel (see [`nchw_to_nhwc_pad8`]). Rounding as
/// [`convert_nchw_f32_to_nhwc_f16`].
///
/// # Safety
/// `1 <= c <= 8` (a larger `c` reads only channels `0..8`); `x` holds `n·c·hw` f32 (4-byte
/// aligned), `y` holds `n·hw·8` f16 (16-byte aligned), not overlapping; `n·c·hw` and
/// `n·hw·8` < 2^31.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_nchw_f32_to_nhwc_pad8_f16(p: ConvertParams, x: *const f32, y: *mut u16) {
    unsafe { nchw_to_nhwc_pad8::<F16>(&p, x, y) }
}

/// Fused NCHW f32 → NHWC bf16 padded to 8 channels; see
/// [`convert_nchw_f32_to_nhwc_pad8_f16`].
///
/// # Safety
/// As [`convert_nchw_f32_to_nhwc_pad8_f16`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn convert_nchw_f32_to_nhwc_pad8_bf16(p: ConvertParams, x: *const f32, y: *mut u16) {
    unsafe { nchw_to_nhwc_pad8::<BF16>(&p, x, y) }
}
