//! Softmax over the last axis of a row-major `[rows, cols]` f32 matrix.

use crate::dcore::mem::{f32x4, ld_global_f32x4, st_global_f32x4};
use crate::dcore::prelude::*;
use crate::dcore::warp::{shfl_xor_f32, FULL_MASK};
use crate::eltwise::{exp_sfu, unroll4};
use crate::params::*;

/// 16-byte vectors a thread keeps in registers on the cached path.
pub const CACHED_VECTORS: u32 = 4;

/// Running (max, sum of `exp(x - max)`) of an online softmax.
struct MaxSum {
    m: f32,
    s: f32,
}

impl MaxSum {
    const EMPTY: MaxSum = MaxSum { m: f32::NEG_INFINITY, s: 0.0 };

    /// Folds in `v` (one `exp` per element).
    #[inline(always)]
    fn push(&mut self, v: f32) {
        if v > self.m {
            // exp(-inf) = 0 takes care of the first element.
            self.s = self.s * exp_sfu(self.m - v) + 1.0;
            self.m = v;
        } else {
            self.s += exp_sfu(v - self.m);
        }
    }

    /// Combines two partial results. Equal maxima (including two empty ones, where
    /// `-inf - -inf` would be NaN) scale by exactly 1.
    #[inline(always)]
    fn merge(&mut self, m: f32, s: f32) {
        let mm = self.m.max(m);
        let a = if self.m == mm { self.s } else { self.s * exp_sfu(self.m - mm) };
        let b = if m == mm { s } else { s * exp_sfu(m - mm) };
        self.m = mm;
        self.s = a + b;
    }

    /// Butterfly all-reduce over the `width` lanes (a power of two <= 32) of each
    /// aligned lane group.
    #[inline(always)]
    fn reduce_lanes(&mut self, width: u32) {
        let mut d = 1;
        while d < width {
            let m = shfl_xor_f32(FULL_MASK, self.m, d);
            let s = shfl_xor_f32(FULL_MASK, self.s, d);
            self.merge(m, s);
            d <<= 1;
        }
    }
}

/// Pass 1 of one row for the `nt` threads with index `t` among them: online max and sum
/// over this thread's elements (16-byte loads when `cols % 4 == 0`).
#[inline(always)]
unsafe fn row_stats(row: *const f32, cols: u32, t: u32, nt: u32) -> MaxSum {
    let mut acc = MaxSum::EMPTY;
    unsafe {
        if cols & 3 == 0 {
            let n4 = cols >> 2;
            let mut j = t;
            while j < n4 {
                // Four vectors in flight; the missing ones are -inf (no contribution).
                let mut v = [f32x4::splat(f32::NEG_INFINITY); 4];
                unroll4!(U => {
                    let i = j + U as u32 * nt;
                    if i < n4 {
                        v[U] = ld_global_f32x4(row.add((i * 4) as usize));
                    }
                });
                // Fold the 16 values in with one rescale: their max first.
                let m = max4(v[0]).max(max4(v[1])).max(max4(v[2]).max(max4(v[3])));
                if m > acc.m {
                    acc.s *= exp_sfu(acc.m - m);
                    acc.m = m;
                }
                let mut s = 0.0f32;
                unroll4!(U => {
                    s += (exp_sfu(v[U].x - acc.m) + exp_sfu(v[U].y - acc.m)) + (exp_sfu(v[U].z - acc.m) + exp_sfu(v[U].w - acc.m));
                });
                acc.s += s;
                j += 4 * nt;
            }
        } else {
            let mut j = t;
            while j < cols {
                acc.push(*row.add(j as usize));
                j += nt;
            }
        }
    }
    acc
}

/// Pass 2: `y = exp(x - m) * inv` over this thread's elements.
#[inline(always)]
unsafe fn row_write(row: *const f32, out: *mut f32, cols: u32, t: u32, nt: u32, m: f32, inv: f32) {
    unsafe {
        if cols & 3 == 0 {
            let n4 = cols >> 2;
            let mut j = t;
            while j < n4 {
                let mut v = [f32x4::splat(0.0); 4];
                unroll4!(U => {
                    let i = j + U as u32 * nt;
                    if i < n4 {
                        v[U] = ld_global_f32x4(row.add((i * 4) as usize));
                    }
                });
                unroll4!(U => {
                    let i = j + U as u32 * nt;
                    if i < n4 {
                        let r = f32x4 {
                            x: exp_sfu(v[U].x - m) * inv,
                            y: exp_sfu(v[U].y - m) * inv,
                            z: exp_sfu(v[U].z - m) * inv,
                            w: exp_sfu(v[U].w - m) * inv,
                        };
                        st_global_f32x4(out.add((i * 4) as usize), r);
                    }
                });
                j += 4 * nt;
            }
        } else {
            let mut j = t;
            while j < cols {
                *out.add(j as usize) = exp_sfu(*row.add(j as usize) - m) * inv;
                j += nt;
            }
        }
    }
}

/// Butterfly all-reduce of `v` with `op` over aligned groups of `width` lanes.
#[inline(always)]
fn lanes_reduce<F: Fn(f32, f32) -> f32>(v: f32, width: u32, op: F) -> f32 {
    let mut v = v;
    let mut d = 1;
    while d < width {
        v = op(v, shfl_xor_f32(FULL_MASK, v, d));
        d <<= 1;
    }
    v
}

/// Block-wide all-reduce (whole block = one row; `nwarps` warps) through `part`
/// (32 floats of shared memory). Contains two barriers: call from uniform control flow.
#[inline(always)]
unsafe fn block_reduce<F: Fn(f32, f32) -> f32 + Copy>(v: f32, part: *mut f32, nwarps: u32, op: F) -> f32 {
    let v = lanes_reduce(v, 32, op);
    let tx = thread_idx_x();
    unsafe {
        if tx & 31 == 0 {
            *part.add((tx >> 5) as usize) = v;
        }
        sync_threads();
        let mut r = *part;
        let mut w = 1;
        while w < nwarps {
            r = op(r, *part.add(w as usize));
            w += 1;
        }
        // Everyone has read `part` before it is reused.
        sync_threads();
        r
    }
}

#[inline(always)]
fn max4(v: f32x4) -> f32 {
    v.x.max(v.y).max(v.z.max(v.w))
}

/// The cached row: the thread's up to [`CACHED_VECTORS`] vectors (`j = t + u*nt`) are read
/// once into registers; max, `exp(x - max)` (kept in registers) and its sum, then the
/// scaled values are stored. `REDUCE` combines across the row's threads.
#[inline(always)]
unsafe fn row_cached<R: Fn(f32, bool) -> f32>(row: *const f32, out: *mut f32, n4: u32, t: u32, nt: u32, reduce: R) {
    let mut v = [f32x4::splat(f32::NEG_INFINITY); CACHED_VECTORS as usize];
    unsafe {
        unroll4!(U => {
            let j = t + U as u32 * nt;
            if j < n4 {
                v[U] = ld_global_f32x4(row.add((j * 4) as usize));
            }
        });
    }
    let mut m = max4(v[0]).max(max4(v[1])).max(max4(v[2]).max(max4(v[3])));
    m = reduce(m, true);
    let mut s = 0.0f32;
    unroll4!(U => {
        v[U].x = exp_sfu(v[U].x - m);
        v[U].y = exp_sfu(v[U].y - m);
        v[U].z = exp_sfu(v[U].z - m);
        v[U].w = exp_sfu(v[U].w - m);
        s += (v[U].x + v[U].y) + (v[U].z + v[U].w);
    });
    s = reduce(s, false);
    let inv = 1.0 / s;
    unsafe {
        unroll4!(U => {
            let j = t + U as u32 * nt;
            if j < n4 {
                let r = f32x4 { x: v[U].x * inv, y: v[U].y * inv, z: v[U].z * inv, w: v[U].w * inv };
                st_global_f32x4(out.add((j * 4) as usize), r);
            }
        });
    }
}

/// Numerically stable softmax over each row of `[rows, cols]` f32:
/// `y[r, j] = exp(x[r, j] - max_r) / Σ_k exp(x[r, k] - max_r)`, with the accurate SFU
/// exponential `eltwise::exp_sfu` (≤ 3 ulp: `ex2.approx` on a reduced argument; the plain
/// `ex2.approx(x log2 e)` would lose |x| ulp) and one correctly rounded reciprocal per
/// row: ≤ ~5 ulp per element.
///
/// Two paths, chosen per launch from `cols` and the block shape:
/// * **cached** (`cols % 4 == 0` and `cols / 4 <= 4 * bx`): each thread reads its ≤ 4
///   16-byte vectors of the row once into registers; max-reduce, `exp` in registers
///   plus sum-reduce, store. One read and one write of the data, one `exp` per element.
/// * **streaming** (longer rows, or `cols % 4 != 0`): an *online* max-and-sum pass
///   (Milakov & Gimelshein 2018: the running sum is rescaled when the max grows), then
///   `exp(x - max) * (1/sum)` re-reading the row (from L1/L2); 16-byte accesses when
///   `cols % 4 == 0`.
///
/// Thread mapping (chosen by the launch): block `(bx, by)`.
/// * `bx <= 32` (a power of two): each group of `bx` lanes owns a row (`by` rows per block,
///   grid-stride over rows); reductions by shuffles only — for short rows.
/// * `bx > 32` (a multiple of 32, at most 1024) and `by = 1`: the whole block owns a row
///   (grid-stride over rows); warps combine through shared memory.
///
/// # Safety
/// `x`, `y` hold `rows*cols` f32, 16-byte aligned, `y` equal to `x` (in place) or not
/// overlapping; `cols >= 1`; `rows*cols < 2^31`; the block shape is one of the two above.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn softmax_f32(p: SoftmaxParams, x: *const f32, y: *mut f32) {
    let (rows, cols) = (p.rows, p.cols);
    let bx = block_dim_x();
    let tx = thread_idx_x();
    let n4 = cols >> 2;
    let cached = cols & 3 == 0 && n4 <= CACHED_VECTORS * bx;
    if bx <= 32 {
        let by = block_dim_y();
        let row_stride = grid_dim_x() * by;
        let mut r = block_idx_x() * by + thread_idx_y();
        // The row groups of one warp loop together (the loop bound is the warp's first
        // row) so the shuffles always see the whole warp; rows past the end idle.
        let warp_rows = 32 >> bx.trailing_zeros();
        let mut g = r - (thread_idx_y() & (warp_rows - 1));
        while g < rows {
            let active = r < rows;
            let off = if active { r as usize * cols as usize } else { 0 };
            if cached {
                let n = if active { n4 } else { 0 };
                row_cached(x.add(off), y.add(off), n, tx, bx, |v, is_max| {
                    if is_max {
                        lanes_reduce(v, bx, |a, b| a.max(b))
                    } else {
                        lanes_reduce(v, bx, |a, b| a + b)
                    }
                });
            } else {
                let mut acc = if active { row_stats(x.add(off), cols, tx, bx) } else { MaxSum::EMPTY };
                acc.reduce_lanes(bx);
                if active {
                    row_write(x.add(off), y.add(off), cols, tx, bx, acc.m, 1.0 / acc.s);
                }
            }
            r += row_stride;
            g += row_stride;
        }
    } else {
        let part = shared_array!(softmax_partials: [f32; 64]);
        let nwarps = bx >> 5;
        let mut r = block_idx_x();
        while r < rows {
            let off = r as usize * cols as usize;
            if cached {
                row_cached(x.add(off), y.add(off), n4, tx, bx, |v, is_max| {
                    if is_max {
                        block_reduce(v, part, nwarps, |a, b| a.max(b))
                    } else {
                        block_reduce(v, part, nwarps, |a, b| a + b)
                    }
                });
            } else {
                // Each thread's own (max, sum); the block reductions combine them (the
                // sums after rescaling each to the row max).
                let acc = row_stats(x.add(off), cols, tx, bx);
                let m = block_reduce(acc.m, part, nwarps, |a, b| a.max(b));
                let sw = if acc.m == m { acc.s } else { acc.s * exp_sfu(acc.m - m) };
                let s = block_reduce(sw, part, nwarps, |a, b| a + b);
                row_write(x.add(off), y.add(off), cols, tx, bx, m, 1.0 / s);
            }
            r += grid_dim_x();
        }
    }
}
