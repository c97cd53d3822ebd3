//! Channel concatenation on NCHW: one input's slice of the output.

use crate::dcore::mem::{ld_global_nc_f32, ld_global_nc_f32x4, st_global_f32x4};
use crate::dcore::prelude::*;
use crate::eltwise::unroll4;
use crate::params::*;

/// Copies `x` (`[n, c, hw]`, NCHW f32) into channels `[c_offset, c_offset + c)` of `y`
/// (`[n, c_total, hw]`). Per image the source is one contiguous run of `c*hw` elements and
/// so is its destination, at `(n*c_total + c_offset)*hw`.
///
/// Thread mapping: 2-D grid, `blockIdx.y` strides over images, `blockIdx.x`/`threadIdx.x`
/// grid-stride over the run, four items per thread per step with all (predicated) loads
/// before the stores — 16-byte vectors when `c*hw`, `c_total*hw` and `c_offset*hw` are
/// multiples of 4 (so every run starts 16-byte aligned: always when `hw % 4 == 0`),
/// 4-byte elements otherwise. No division anywhere.
///
/// # Safety
/// `x` holds `n*c*hw` f32, `y` holds `n*c_total*hw` f32, both 16-byte aligned and not
/// overlapping; `c_offset + c <= c_total`; counts < 2^31.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn concat_channels_f32_nchw(p: ConcatParams, x: *const f32, y: *mut f32) {
    let run = p.c * p.hw;
    let out_stride = p.c_total as usize * p.hw as usize;
    let dst_off = p.c_offset as usize * p.hw as usize;
    let vec = (run | (p.c_total * p.hw) | (p.c_offset * p.hw)) & 3 == 0;
    let bd = block_dim_x();
    let mut img = block_idx_y();
    while img < p.n {
        let src = x.add(img as usize * run as usize);
        let dst = y.add(img as usize * out_stride + dst_off);
        if vec {
            let n4 = run >> 2;
            let step = grid_dim_x() * bd * 4;
            let mut base = block_idx_x() * bd * 4 + thread_idx_x();
            while base < n4 {
                let mut v = [crate::dcore::mem::f32x4::splat(0.0); 4];
                unroll4!(U => {
                    let i = base + U as u32 * bd;
                    if i < n4 {
                        v[U] = ld_global_nc_f32x4(src.add((i * 4) as usize));
                    }
                });
                unroll4!(U => {
                    let i = base + U as u32 * bd;
                    if i < n4 {
                        st_global_f32x4(dst.add((i * 4) as usize), v[U]);
                    }
                });
                base += step;
            }
        } else {
            let step = grid_dim_x() * bd * 4;
            let mut base = block_idx_x() * bd * 4 + thread_idx_x();
            while base < run {
                let mut v = [0.0f32; 4];
                unroll4!(U => {
                    let i = base + U as u32 * bd;
                    if i < run {
                        v[U] = ld_global_nc_f32(src.add(i as usize));
                    }
                });
                unroll4!(U => {
                    let i = base + U as u32 * bd;
                    if i < run {
                        *dst.add(i as usize) = v[U];
                    }
                });
                base += step;
            }
        }
        img += grid_dim_y();
    }
}
