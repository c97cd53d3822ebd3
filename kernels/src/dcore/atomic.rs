//! Atomic read-modify-write on global or shared memory (generic addresses).
//!
//! Inline PTX `atom`/`red` without `.sem`/`.scope` qualifiers, which the PTX memory model
//! defines as `.relaxed` at `.gpu` scope: atomic with respect to every thread of the
//! device, but ordering nothing else. Pair with [`super::sync::fence_acq_rel_gpu`] (or
//! use [`load_acquire_u32`]/[`store_release_u32`]) when other data must be published.
//! Every function returns the *old* value, like CUDA's `atomicAdd` etc.; the `red_*`
//! forms return nothing and are cheaper when the old value is not needed.
//!
//! # Safety (all functions)
//! `p` must be valid, aligned to the operand size, and point to global or shared memory
//! that is only accessed atomically while the kernel races on it.

use super::lang::asm;

macro_rules! atom {
    ($(#[$m:meta])* $name:ident, $t:ty, $ins:literal, $cls:ident) => {
        $(#[$m])*
        ///
        /// # Safety
        /// See the module documentation.
        #[inline(always)]
        pub unsafe fn $name(p: *mut $t, v: $t) -> $t {
            let old: $t;
            unsafe {
                asm!(
                    concat!($ins, " {old}, [{p}], {v};"),
                    old = out($cls) old,
                    p = in(reg64) p,
                    v = in($cls) v,
                    options(nostack),
                );
            }
            old
        }
    };
}
macro_rules! red {
    ($(#[$m:meta])* $name:ident, $t:ty, $ins:literal, $cls:ident) => {
        $(#[$m])*
        ///
        /// # Safety
        /// See the module documentation.
        #[inline(always)]
        pub unsafe fn $name(p: *mut $t, v: $t) {
            unsafe {
                asm!(
                    concat!($ins, " [{p}], {v};"),
                    p = in(reg64) p,
                    v = in($cls) v,
                    options(nostack),
                );
            }
        }
    };
}
use super::lang::concat;

atom!(
    /// `atomicAdd(float*)`: `atom.add.f32` (round to nearest; the order of concurrent
    /// adds, hence the rounding, is unspecified).
    atomic_add_f32, f32, "atom.add.f32", reg32
);
atom!(
    /// `atomicAdd(double*)`: `atom.add.f64` (sm_60+).
    atomic_add_f64, f64, "atom.add.f64", reg64
);
atom!(
    /// `atomicAdd(unsigned*)`: `atom.add.u32` (wrapping).
    atomic_add_u32, u32, "atom.add.u32", reg32
);
atom!(
    /// `atomicAdd(unsigned long long*)`: `atom.add.u64` (wrapping).
    atomic_add_u64, u64, "atom.add.u64", reg64
);
atom!(
    /// `atomicMax(unsigned*)`: `atom.max.u32`.
    atomic_max_u32, u32, "atom.max.u32", reg32
);
atom!(
    /// `atomicMax(int*)`: `atom.max.s32`.
    atomic_max_i32, i32, "atom.max.s32", reg32
);
atom!(
    /// `atomicMin(unsigned*)`: `atom.min.u32`.
    atomic_min_u32, u32, "atom.min.u32", reg32
);
atom!(
    /// `atomicMin(int*)`: `atom.min.s32`.
    atomic_min_i32, i32, "atom.min.s32", reg32
);
atom!(
    /// `atomicExch(unsigned*)`: `atom.exch.b32`.
    atomic_exch_u32, u32, "atom.exch.b32", reg32
);
atom!(
    /// `atomicAnd(unsigned*)`: `atom.and.b32`.
    atomic_and_u32, u32, "atom.and.b32", reg32
);
atom!(
    /// `atomicOr(unsigned*)`: `atom.or.b32`.
    atomic_or_u32, u32, "atom.or.b32", reg32
);
atom!(
    /// `atomicXor(unsigned*)`: `atom.xor.b32`.
    atomic_xor_u32, u32, "atom.xor.b32", reg32
);
red!(
    /// `red.add.f32`: atomic add without result.
    red_add_f32, f32, "red.add.f32", reg32
);
red!(
    /// `red.add.u32`: atomic add without result.
    red_add_u32, u32, "red.add.u32", reg32
);

/// `atomicCAS(unsigned*)`: `atom.cas.b32` — stores `new` if `*p == expected`; returns
/// the old value either way.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
pub unsafe fn atomic_cas_u32(p: *mut u32, expected: u32, new: u32) -> u32 {
    let old: u32;
    unsafe {
        asm!(
            "atom.cas.b32 {old}, [{p}], {cmp}, {new};",
            old = out(reg32) old,
            p = in(reg64) p,
            cmp = in(reg32) expected,
            new = in(reg32) new,
            options(nostack),
        );
    }
    old
}

/// `atom.cas.b64`.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
pub unsafe fn atomic_cas_u64(p: *mut u64, expected: u64, new: u64) -> u64 {
    let old: u64;
    unsafe {
        asm!(
            "atom.cas.b64 {old}, [{p}], {cmp}, {new};",
            old = out(reg64) old,
            p = in(reg64) p,
            cmp = in(reg64) expected,
            new = in(reg64) new,
            options(nostack),
        );
    }
    old
}

/// Atomic `f32` maximum without a CAS loop: for `v >= +0` an `atom.max.s32` on the bits
/// (non-negative floats order like their bit patterns as signed ints), for `v < 0` an
/// `atom.min.u32` (negative floats order reversed as unsigned ints). Correct for any
/// mix of signs as long as no NaN is involved; `-0.0` counts as smaller than `+0.0`.
/// Returns the old value.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
pub unsafe fn atomic_max_f32(p: *mut f32, v: f32) -> f32 {
    unsafe {
        if !v.is_sign_negative() {
            f32::from_bits(atomic_max_i32(p as *mut i32, v.to_bits() as i32) as u32)
        } else {
            f32::from_bits(atomic_min_u32(p as *mut u32, v.to_bits()))
        }
    }
}

/// Atomic `f32` minimum, the mirror of [`atomic_max_f32`].
///
/// # Safety
/// See the module documentation.
#[inline(always)]
pub unsafe fn atomic_min_f32(p: *mut f32, v: f32) -> f32 {
    unsafe {
        if !v.is_sign_negative() {
            f32::from_bits(atomic_min_i32(p as *mut i32, v.to_bits() as i32) as u32)
        } else {
            f32::from_bits(atomic_max_u32(p as *mut u32, v.to_bits()))
        }
    }
}

/// `ld.acquire.gpu.u32`: a load that later accesses cannot move above.
///
/// # Safety
/// `p` valid and 4-byte aligned.
#[inline(always)]
pub unsafe fn load_acquire_u32(p: *const u32) -> u32 {
    let v: u32;
    unsafe {
        asm!("ld.acquire.gpu.u32 {v}, [{p}];", v = out(reg32) v, p = in(reg64) p, options(nostack));
    }
    v
}

/// `st.release.gpu.u32`: a store that earlier accesses cannot move below.
///
/// # Safety
/// `p` valid and 4-byte aligned.
#[inline(always)]
pub unsafe fn store_release_u32(p: *mut u32, v: u32) {
    unsafe {
        asm!("st.release.gpu.u32 [{p}], {v};", p = in(reg64) p, v = in(reg32) v, options(nostack));
    }
}
