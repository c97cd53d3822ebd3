//! Vector kernels (the foundation's self-test kernel).

use crate::dcore::prelude::*;

/// `out[i] = a * x[i] + y[i]` for `i < n`.
///
/// Computed as one `fma.rn.f32` ([`fma`]): a single rounding, so it is at least as
/// accurate as the separately rounded `a * x + y` (the host's f64 reference at 1e-6
/// relative accepts either).
///
/// Thread mapping: one element per thread per step of a grid-stride loop, so any grid
/// covers any `n`. Preconditions: `x`, `y`, `out` hold `n` f32 each; `out` may alias
/// `y` (each element is read before it is written, by the same thread).
#[no_mangle]
pub unsafe extern "ptx-kernel" fn axpy_f32(n: u32, a: f32, x: *const f32, y: *const f32, out: *mut f32) {
    for i in (global_idx_x()..n).step_by(grid_stride_x()) {
        let k = i as usize;
        unsafe { *out.add(k) = fma(a, *x.add(k), *y.add(k)) };
    }
}

/// Spins one thread until `ns` nanoseconds of `%globaltimer` have passed.
///
/// A timing gate: enqueued (one thread) just before a timed region's start event, it keeps
/// the stream busy while the host records the event and enqueues the timed launch, so the
/// interval between the events holds the launch alone, not the host's enqueue latency
/// (which otherwise adds several µs to every single-launch measurement). Reads no memory.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn spin_ns(ns: u64) {
    let t0 = globaltimer();
    while globaltimer().wrapping_sub(t0) < ns {}
}
