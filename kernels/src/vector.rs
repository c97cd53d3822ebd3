//! Vector kernels (the foundation's self-test kernel).

use crate::dcore::sreg::*;

#[rustc_intrinsic]
unsafe fn offset<P, D>(p: P, d: D) -> P;

/// `out[i] = a * x[i] + y[i]` for `i < n`.
///
/// Thread mapping: one element per thread per step of a grid-stride loop, so any grid
/// covers any `n`. Preconditions: `x`, `y`, `out` hold `n` f32 each; `out` may alias `y`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn axpy_f32(n: u32, a: f32, x: *const f32, y: *const f32, out: *mut f32) {
    let stride = grid_dim_x() * block_dim_x();
    let mut i = block_idx_x() * block_dim_x() + thread_idx_x();
    while i < n {
        let k = i as usize;
        *offset(out, k) = a * *offset(x, k) + *offset(y, k);
        i = i + stride;
    }
}
