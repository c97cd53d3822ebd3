//! Self-test kernels for the device core ([`crate::dcore`]).
//!
//! Each `core_*` kernel exercises one part of the core and produces output the host can
//! predict exactly (or within a stated tolerance) on the CPU. Signatures, launch
//! configurations and expected outputs are tabulated in `kernels/SELFTEST.md`, which is
//! the contract for the host-side self-test; keep the two in sync.

use crate::dcore::atomic::*;
use crate::dcore::mem::*;
use crate::dcore::mma::*;
use crate::dcore::prelude::*;
use crate::dcore::smem::{dyn_smem_addr, ld_shared_f32x4, st_shared_f32, st_shared_f32x4, to_shared};
use crate::dcore::warp::*;

/// Per-block sums: `out_per_block[b] = Σ x[i]` over the `i < n` this block visits in a
/// grid-stride loop, i.e. `(i / blockDim.x) % gridDim.x == b`.
///
/// Exercises: grid-stride `for`/`step_by`, `ld.global.nc`, `shfl.sync.bfly` warp sums,
/// a static `shared_array!` written through its 32-bit address (`st.shared`) and read
/// through its generic pointer, `bar.sync`. Launch: any grid, `blockDim.x` a multiple
/// of 32 (≤ 1024), `blockDim.y = z = 1`, no dynamic smem.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_warp_reduce_f32(n: u32, x: *const f32, out_per_block: *mut f32) {
    let partials = shared_array!(core_wr_partials: [f32; 32]);
    let mut acc = 0.0f32;
    for i in (global_idx_x()..n).step_by(grid_stride_x()) {
        acc += unsafe { ld_global_nc_f32(x.add(i as usize)) };
    }
    let s = sum_f32(acc);
    let lane = lane_id();
    let w = thread_idx_x() / WARP_SIZE;
    if lane == 0 {
        unsafe { st_shared_f32(shared_array_addr!(core_wr_partials) + 4 * w, s) };
    }
    sync_threads();
    if w == 0 {
        let nwarps = block_dim_x() / WARP_SIZE;
        let v = if lane < nwarps { unsafe { *partials.add(lane as usize) } } else { 0.0 };
        let total = sum_f32(v);
        if lane == 0 {
            unsafe { *out_per_block.add(block_idx_x() as usize) = total };
        }
    }
}

/// Global and shared atomics from one block. Launch: **exactly one block**,
/// `blockDim.x` a multiple of 32 (≤ 1024), no dynamic smem. `out_u32` has 5 entries,
/// `out_f32` 3; the kernel initialises them itself. With `v = x[i] & 1023`:
///
/// * `out_u32 = [Σ x (wrapping), max x, max (x as i32) as u32, n (CAS loop), n (shared
///   atomic)]`
/// * `out_f32 = [Σ v (exact for n ≤ 16384), max (v - 511.5), min (v - 511.5)]`
///   (`-inf`/`+inf` if `n == 0`).
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_atomics(n: u32, x: *const u32, out_u32: *mut u32, out_f32: *mut f32) {
    let counter = shared_array!(core_at_counter: [u32; 1]);
    let tid = thread_idx_x();
    unsafe {
        if tid == 0 {
            *out_u32 = 0;
            *out_u32.add(1) = 0;
            *out_u32.add(2) = i32::MIN as u32;
            *out_u32.add(3) = 0;
            *out_f32 = 0.0;
            *out_f32.add(1) = f32::NEG_INFINITY;
            *out_f32.add(2) = f32::INFINITY;
            *counter = 0;
        }
        sync_threads();
        for i in (tid..n).step_by(block_dim_x()) {
            let v = *x.add(i as usize);
            atomic_add_u32(out_u32, v);
            atomic_max_u32(out_u32.add(1), v);
            atomic_max_i32(out_u32.add(2) as *mut i32, v as i32);
            let cas_ctr = out_u32.add(3);
            let mut old = cas_ctr.read_volatile();
            loop {
                let seen = atomic_cas_u32(cas_ctr, old, old + 1);
                if seen == old {
                    break;
                }
                old = seen;
            }
            red_add_u32(counter, 1);
            let f = (v & 1023) as f32;
            atomic_add_f32(out_f32, f);
            atomic_max_f32(out_f32.add(1), f - 511.5);
            atomic_min_f32(out_f32.add(2), f - 511.5);
        }
        sync_threads();
        if tid == 0 {
            *out_u32.add(4) = *counter;
        }
    }
}

/// Half-precision conversions. `out` has `4 n` entries; for each `i < n`:
/// `out[4i..4i+4] = [f16(x), bf16(x), f16(2x), bf16(-x)]` widened back to `f32`, where
/// `f16(·)`/`bf16(·)` round to nearest even (overflow → ±inf for f16, NaN → NaN). The
/// last two go through the packed `half2::from_f32(x, 2x).hi()` and
/// `bf16x2::from_f32(-x, x).lo()` paths, checking the packing order. Launch: any
/// 1-D grid.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_f16_roundtrip(n: u32, x: *const f32, out: *mut f32) {
    for i in (global_idx_x()..n).step_by(grid_stride_x()) {
        let v = unsafe { *x.add(i as usize) };
        let o = unsafe { out.add(4 * i as usize) };
        let h2 = half2::from_f32(v, 2.0 * v);
        let b2 = bf16x2::from_f32(-v, v);
        unsafe {
            *o = f16::from_f32(v).to_f32();
            *o.add(1) = bf16::from_f32(v).to_f32();
            *o.add(2) = h2.hi().to_f32();
            *o.add(3) = b2.to_f32().0;
        }
    }
}

/// `f32` math. `out` has `6 n` entries: `out[6i..6i+6] = [exp, tanh, sqrt, rsqrt,
/// exp_fast, sigmoid](x[i])` (tolerances in `SELFTEST.md`). Launch: any 1-D grid.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_math_f32(n: u32, x: *const f32, out: *mut f32) {
    for i in (global_idx_x()..n).step_by(grid_stride_x()) {
        let v = unsafe { *x.add(i as usize) };
        let o = unsafe { out.add(6 * i as usize) };
        unsafe {
            *o = v.exp();
            *o.add(1) = v.tanh();
            *o.add(2) = v.sqrt();
            *o.add(3) = v.rsqrt();
            *o.add(4) = v.exp_fast();
            *o.add(5) = v.sigmoid();
        }
    }
}

/// More `f32` math. `out` has `4 n` entries: `out[4i..4i+4] = [ln |x|, exp_m1 x,
/// tanh_fast x, ln_fast |x|]`. Launch: any 1-D grid.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_math_ext_f32(n: u32, x: *const f32, out: *mut f32) {
    for i in (global_idx_x()..n).step_by(grid_stride_x()) {
        let v = unsafe { *x.add(i as usize) };
        let o = unsafe { out.add(4 * i as usize) };
        unsafe {
            *o = v.abs().ln();
            *o.add(1) = v.exp_m1();
            *o.add(2) = v.tanh_fast();
            *o.add(3) = v.abs().ln_fast();
        }
    }
}

/// Integer operators and counted loops. `out` has `8 n` entries; with `v = x[i]`,
/// `s = v as i32`, `m = v & 31`, `k = v >> 28`:
/// `out[8i..8i+8] = [v / 7, v % 7, (s >> 3) as u32, v.rotate_left(5), v.leading_zeros(),
/// v.count_ones(), (s / -3) as u32, Σ_{j<m} j² + Σ_{j=1..=k} j]` (the last as
/// `(m-1)m(2m-1)/6 + k(k+1)/2`). Launch: any 1-D grid.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_int_ops(n: u32, x: *const u32, out: *mut u32) {
    for i in (global_idx_x()..n).step_by(grid_stride_x()) {
        let v = unsafe { *x.add(i as usize) };
        let s = v as i32;
        let mut acc = 0u32;
        for j in 0..(v & 31) {
            acc += j * j;
        }
        for j in 1..=(v >> 28) {
            acc += j;
        }
        let o = unsafe { out.add(8 * i as usize) };
        unsafe {
            *o = v / 7;
            *o.add(1) = v % 7;
            *o.add(2) = (s >> 3) as u32;
            *o.add(3) = (v << 5) | (v >> 27);
            *o.add(4) = v.leading_zeros();
            *o.add(5) = v.count_ones();
            *o.add(6) = (s / -3) as u32;
            *o.add(7) = acc;
        }
    }
}

/// Warp votes, shuffles and `redux`. Launch: **one block of exactly 32 threads**.
/// `x` has 32 entries, `out` 320; with `v = x[l]` for lane `l`, `out[10l..10l+10] =`
/// 0. `ballot(v & 1 != 0)`, 1. `all(v != 0)`, 2. `any(v == 7)`,
/// 3. `x[l - 1]` (`x[0]` for `l = 0`; shfl.up 1), 4. `x[l + 3]` (`x[l]` for `l ≥ 29`;
/// shfl.down 3), 5. `x[31 - l]` (shfl.idx), 6. `x[l ^ 5]` (shfl.bfly),
/// 7. `Σ x` wrapping (redux.add), 8. `max_j ((x[j] & 0xffff) as f32 - 30000.0)` as `f32`
/// bits (warp max), 9. `x[l & !7]` (shfl.idx with width 8). Booleans are 0/1.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_warp_vote(x: *const u32, out: *mut u32) {
    let l = lane_id();
    let v = unsafe { *x.add(l as usize) };
    let fmax = max_f32((v & 0xffff) as f32 - 30000.0);
    let r = [
        ballot_sync(FULL_MASK, v & 1 != 0),
        all_sync(FULL_MASK, v != 0) as u32,
        any_sync(FULL_MASK, v == 7) as u32,
        shfl_up_u32(FULL_MASK, v, 1),
        shfl_down_u32(FULL_MASK, v, 3),
        shfl_idx_u32(FULL_MASK, v, 31 - l),
        shfl_xor_u32(FULL_MASK, v, 5),
        reduce_add_u32(FULL_MASK, v),
        fmax.to_bits(),
        shfl_idx_u32_w(FULL_MASK, v, 0, 8),
    ];
    for k in 0..10 {
        unsafe { *out.add((10 * l + k) as usize) = r[k as usize] };
    }
}

/// `out[i] = 2 x[i] + 1` (one `fma`, exact like the host's `2.0 * x + 1.0` in f32) for
/// `i < n`, staged through dynamic shared memory with `cp.async.cg` (whole 16-byte chunks;
/// zero-fill for chunks past `n`; a ragged tail by plain stores), read back *reversed across threads* with `ld.shared.v4`, written with
/// `st.global.v4`. Launch: any 1-D grid, `blockDim.x` ≥ 1, dynamic smem =
/// `16 * blockDim.x` bytes; `x` and `out` 16-byte aligned (as `cuMemAlloc` gives).
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_smem_copy_f32(n: u32, x: *const f32, out: *mut f32) {
    let bd = block_dim_x();
    let tid = thread_idx_x();
    let chunk = 4 * bd;
    let base_addr = dyn_smem_addr();
    let mut base = block_idx_x() * chunk;
    while base < n {
        // Stage: thread t copies x[base + 4t .. +4] into slot t.
        let j = base + 4 * tid;
        let valid = if j < n { (n - j).min(4) } else { 0 };
        let slot = base_addr + 16 * tid;
        if valid == 4 {
            unsafe { cp_async::cp_async_cg_16_zfill(slot, x.add(j as usize), 16) };
        } else if valid == 0 {
            // Source size 0: nothing is read, the slot is zero-filled.
            unsafe { cp_async::cp_async_cg_16_zfill(slot, x, 0) };
        } else {
            // A partial source size (4..12 bytes) is reported by compute-sanitizer as a
            // 16-byte read past the allocation, so a ragged tail is staged by plain loads.
            let at = |k: u32| if k < valid { unsafe { *x.add((j + k) as usize) } } else { 0.0 };
            unsafe { st_shared_f32x4(slot, f32x4 { x: at(0), y: at(1), z: at(2), w: at(3) }) };
        }
        cp_async::commit_group();
        cp_async::wait_group::<0>();
        sync_threads();
        // Consume the slot of thread bd-1-t.
        let t2 = bd - 1 - tid;
        let v = unsafe { ld_shared_f32x4(base_addr + 16 * t2) };
        let j2 = base + 4 * t2;
        let r = f32x4 { x: fma(2.0, v.x, 1.0), y: fma(2.0, v.y, 1.0), z: fma(2.0, v.z, 1.0), w: fma(2.0, v.w, 1.0) };
        if j2 + 4 <= n {
            unsafe { st_global_f32x4(out.add(j2 as usize), r) };
        } else {
            let lanes = [r.x, r.y, r.z, r.w];
            for k in 0..4 {
                if j2 + k < n {
                    unsafe { *out.add((j2 + k) as usize) = lanes[k as usize] };
                }
            }
        }
        sync_threads();
        base += chunk * grid_dim_x();
    }
}

/// Converts `len` floats from `src` to f16 (or bf16) bits into shared memory, one warp.
#[inline(always)]
unsafe fn stage_half(src: *const f32, dst: *mut u16, len: u32, bf: bool) {
    for e in (lane_id()..len).step_by(WARP_SIZE) {
        let v = unsafe { *src.add(e as usize) };
        let h = if bf { bf16::from_f32(v).0 } else { f16::from_f32(v).0 };
        unsafe { *dst.add(e as usize) = h };
    }
}

/// One warp computes `C = A·B` (16×8) with `mma.m16n8k16` f16 → f32: `A` 16×16 and `B`
/// 16×8 (`B[k][n]`), both row-major `f32` in global memory, converted to f16 in shared
/// memory, fragments loaded with `ldmatrix.x4` (A) and `ldmatrix.x2.trans` (B).
/// `c_out[16·8]` row-major: `C[m][n] = Σ_k f16(A[m][k])·f16(B[k][n])` — exact when the
/// inputs are small integers (e.g. in [-8, 8]). Launch: one block of exactly 32 threads.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_mma_f16_m16n8k16(a: *const f32, b: *const f32, c_out: *mut f32) {
    let a_s = shared_array!(core_mma16_a: [u16; 256]);
    let b_s = shared_array!(core_mma16_b: [u16; 128]);
    let lane = lane_id();
    unsafe {
        stage_half(a, a_s, 256, false);
        stage_half(b, b_s, 128, false);
    }
    sync_threads();
    let (fa, fb) = unsafe {
        let a_addr = to_shared(a_s) + 2 * ((lane % 16) * 16 + (lane / 16) * 8);
        let b_addr = to_shared(b_s) + 2 * ((lane % 16) * 8);
        (ldmatrix_x4(a_addr), ldmatrix_x2_trans(b_addr))
    };
    let d = mma_m16n8k16_f16(fa, fb, [0.0; 4]);
    for i in 0..4 {
        let (row, col) = c_m16n8_coord(lane, i);
        unsafe { *c_out.add((row * 8 + col) as usize) = d[i as usize] };
    }
}

/// One warp computes `C = A·B` (16×16) with two `mma.m16n8k16` bf16 → f32: `A` and
/// `B[k][n]` 16×16 row-major `f32`, converted to bf16 in shared memory, A through
/// `ldmatrix.x4`, both B n-tiles through one `ldmatrix.x4.trans`. `c_out[16·16]`
/// row-major: `C[m][n] = Σ_k bf16(A[m][k])·bf16(B[k][n])` (exact for small integers).
/// Launch: one block of exactly 32 threads.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_mma_bf16_m16n8k16(a: *const f32, b: *const f32, c_out: *mut f32) {
    let a_s = shared_array!(core_mmab_a: [u16; 256]);
    let b_s = shared_array!(core_mmab_b: [u16; 256]);
    let lane = lane_id();
    unsafe {
        stage_half(a, a_s, 256, true);
        stage_half(b, b_s, 256, true);
    }
    sync_threads();
    let (fa, fb) = unsafe {
        let a_addr = to_shared(a_s) + 2 * ((lane % 16) * 16 + (lane / 16) * 8);
        let b_addr = to_shared(b_s) + 2 * ((lane % 16) * 16 + (lane / 16) * 8);
        (ldmatrix_x4(a_addr), ldmatrix_x4_trans(b_addr))
    };
    let d0 = mma_m16n8k16_bf16(fa, [fb[0], fb[1]], [0.0; 4]);
    let d1 = mma_m16n8k16_bf16(fa, [fb[2], fb[3]], [0.0; 4]);
    for i in 0..4 {
        let (row, col) = c_m16n8_coord(lane, i);
        unsafe {
            *c_out.add((row * 16 + col) as usize) = d0[i as usize];
            *c_out.add((row * 16 + 8 + col) as usize) = d1[i as usize];
        }
    }
}

/// One warp computes `D = A·B + C` with `mma.m16n8k8` tf32: `A` 16×8, `B[k][n]` 8×8,
/// `C` and `d_out` 16×8, all row-major `f32`; A and B rounded with `cvt.rna.tf32.f32`,
/// fragments gathered straight from global memory by the documented layouts.
/// `D[m][n] = Σ_k tf32(A[m][k])·tf32(B[k][n]) + C[m][n]` (exact for small integers).
/// Launch: one block of exactly 32 threads.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_mma_tf32_m16n8k8(a: *const f32, b: *const f32, c: *const f32, d_out: *mut f32) {
    let lane = lane_id();
    let mut fa = [0u32; 4];
    let mut fb = [0u32; 2];
    let mut fc = [0.0f32; 4];
    for i in 0..4 {
        let (row, col) = a_m16n8k8_tf32_coord(lane, i);
        fa[i as usize] = tf32_from_f32(unsafe { *a.add((row * 8 + col) as usize) });
        let (row, col) = c_m16n8_coord(lane, i);
        fc[i as usize] = unsafe { *c.add((row * 8 + col) as usize) };
    }
    for i in 0..2 {
        let (k, col) = b_m16n8k8_tf32_coord(lane, i);
        fb[i as usize] = tf32_from_f32(unsafe { *b.add((k * 8 + col) as usize) });
    }
    let d = mma_m16n8k8_tf32(fa, fb, fc);
    for i in 0..4 {
        let (row, col) = c_m16n8_coord(lane, i);
        unsafe { *d_out.add((row * 8 + col) as usize) = d[i as usize] };
    }
}

/// Hopper helpers (sm_90a module only). Launch: one block of 64 threads, no cluster.
/// `out[192]`: `out[t] = elect_one_sync(FULL_MASK)` (exactly one 1 per warp),
/// `out[64 + t] = %cluster_ctarank` (0), `out[128 + t] = %cluster_nctarank` (1).
#[cfg(target_feature = "sm_90a")]
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_sm90_elect(out: *mut u32) {
    let t = thread_idx_x() as usize;
    let e = hopper::elect_one_sync(FULL_MASK) as u32;
    unsafe {
        *out.add(t) = e;
        *out.add(64 + t) = hopper::cluster_ctarank();
        *out.add(128 + t) = hopper::cluster_nctarank();
    }
}

/// **Not for launching.** Instantiates every inline-asm and intrinsic wrapper of the
/// core once, so that `tests/ptx_check.rs` has `ptxas` validate all of them on both
/// targets (wrappers no kernel uses would otherwise never reach the PTX). Launching it
/// would hang on the named barrier.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn core_asm_coverage(p: *mut u32, f: *mut f32, d: *mut f64) {
    use crate::dcore::{cp_async::*, smem::*, sync::*};
    unsafe {
        // mem
        let g4 = ld_global_nc_f32x4(f);
        let u4 = ld_global_nc_u32x4(p);
        let c4 = ld_global_f32x4(f.add(4));
        st_global_f32x4(f.add(8), f32x4 { x: g4.x + c4.x, y: g4.y, z: g4.z, w: c4.w });
        st_global_u32x4(p.add(8), u4);
        prefetch_l2(f.add(64));
        let mut a = ld_global_nc_f32(f.add(12)) + ld_global_nc_u32(p.add(12)) as f32;
        // math (f32)
        a = a.exp() + a.exp_m1() + a.ln() + a.tanh() + a.sigmoid() + a.sqrt() + a.rsqrt();
        a = a.recip() + a.recip_fast() + a.exp_fast() + a.exp2_fast() + a.ln_fast() + a.log2_fast();
        a = a.tanh_fast() + a.sigmoid_fast() + a.sin_fast() + a.cos_fast() + a.floor() + a.ceil();
        a = a.trunc() + a.round_ties_even() + a.min(1.0) + a.max(2.0) + a.copysign(-1.0) + a.abs();
        a = a.mul_add(a, 1.0) + a.clamp(0.0, 1.0) + a.is_nan() as u32 as f32;
        // math (f64)
        let mut x = *d;
        x = x.sqrt() + x.mul_add(x, 1.0) + x.floor() + x.ceil() + x.trunc() + x.round_ties_even();
        x = x.min(1.0) + x.max(2.0) + x.abs() + x.copysign(-1.0);
        *d = x;
        atomic_add_f64(d.add(1), x);
        // half
        let h2 = half2::fma(half2::from_f32(a, 1.0), half2::new(f16::from_f32(a), f16::ONE), half2(0));
        let b2 = bf16x2::fma(bf16x2::from_f32(a, 1.0), bf16x2::new(bf16::from_f32(a), bf16::ONE), bf16x2(0));
        a += h2.to_f32().0 + b2.to_f32().1;
        // warp
        let v = *p;
        let mut w = shfl_down_u32_w(FULL_MASK, v, 1, 16) + shfl_up_u32_w(FULL_MASK, v, 1, 16);
        w += shfl_xor_u32_w(FULL_MASK, v, 1, 16) + activemask() + lanemask_lt();
        w += reduce_max_u32(FULL_MASK, v) + reduce_min_u32(FULL_MASK, v);
        w += (reduce_max_i32(FULL_MASK, v as i32) + reduce_min_i32(FULL_MASK, v as i32)) as u32;
        a += shfl_down_f32(FULL_MASK, a, 1) + shfl_up_f32(FULL_MASK, a, 1) + shfl_idx_f32(FULL_MASK, a, 0);
        a += shfl_xor_f32_w(FULL_MASK, a, 1, 8) + shfl_idx_f32_w(FULL_MASK, a, 1, 8) + min_f32(a);
        a += broadcast(a, 3);
        // sync
        w += sync_threads_count(v > 3) + sync_threads_and(v > 4) as u32 + sync_threads_or(v > 5) as u32;
        barrier_arrive(1, 64);
        barrier_sync(1, 64);
        threadfence_block();
        threadfence();
        threadfence_system();
        fence_acq_rel_cta();
        fence_sc_gpu();
        // sreg
        w += thread_rank() + warp_id() + sm_id() + grid_dim_y() + grid_dim_z() + block_idx_y();
        w += block_idx_z() + (clock64() + globaltimer()) as u32;
        // atomics
        w += atomic_add_u32(p.add(16), 1) + atomic_min_u32(p.add(17), 1) + atomic_exch_u32(p.add(18), 1);
        w += atomic_and_u32(p.add(19), 1) + atomic_or_u32(p.add(20), 1) + atomic_xor_u32(p.add(21), 1);
        w += atomic_min_i32(p.add(22) as *mut i32, 1) as u32 + atomic_add_u64(p.add(24) as *mut u64, 1) as u32;
        w += atomic_cas_u64(p.add(26) as *mut u64, 1, 2) as u32 + load_acquire_u32(p.add(28));
        store_release_u32(p.add(29), w);
        red_add_f32(f.add(30), a);
        // smem + cp.async
        let s: *mut u32 = dyn_smem();
        let sa = to_shared(s);
        st_shared_u32(sa, w);
        st_shared_u32x4(sa + 16, u4);
        st_shared_f32x4(sa + 32, g4);
        cp_async_ca_4(sa + 64, p);
        cp_async_ca_8(sa + 72, p);
        cp_async_ca_16(sa + 80, p);
        cp_async_cg_16(sa + 96, p);
        wait_all();
        sync_threads();
        let r4 = ld_shared_u32x4(sa + 16);
        w += ld_shared_u32(sa) + r4.y + *from_shared::<u32>(sa + 4);
        // ldmatrix variants
        let m1 = ldmatrix_x1(sa + 128);
        let m2 = ldmatrix_x2(sa + 128);
        let m4 = ldmatrix_x4(sa + 128);
        w += m1 + m2[1] + m4[3];
        #[cfg(target_feature = "sm_90a")]
        {
            hopper::setmaxnreg_dec::<64>();
            hopper::fence_proxy_async_shared_cta();
            hopper::wgmma_fence();
            hopper::wgmma_commit_group();
            hopper::wgmma_wait_group::<0>();
            hopper::stmatrix_x4(sa + 256, m4);
            hopper::cluster_sync();
        }
        *p.add(31) = w;
        *f.add(31) = a;
    }
}
