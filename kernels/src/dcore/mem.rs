//! Sizes, bit casts, and explicit global-memory access (read-only cache, 128-bit
//! vector loads/stores, L2 prefetch).
//!
//! Ordinary `*p` on a kernel argument already becomes `ld.global`/`st.global` (LLVM
//! infers the state space of kernel parameters). What it cannot infer is that data is
//! read-only for the whole launch (`ld.global.nc`, the non-coherent texture path —
//! CUDA's `__ldg`) or that four consecutive floats may be moved as one 16-byte access
//! (`.v4`, CUDA's `float4`). Those are here, as inline PTX with the generic→global
//! conversion (`cvta.to.global.u64`) done inside, which `ptxas` folds away.

use super::lang::{asm, Clone, Copy};

pub use super::intrinsics::{align_of, size_of, transmute};

/// Swaps two values.
///
/// # Safety
/// Both pointers must be valid for reads and writes and not overlap partially.
#[inline(always)]
pub unsafe fn swap<T: Copy>(a: *mut T, b: *mut T) {
    unsafe {
        let t = *a;
        *a = *b;
        *b = t;
    }
}

/// Four `f32`, 16-byte aligned (CUDA's `float4`); `x` is the lowest address.
#[repr(C, align(16))]
pub struct f32x4 {
    pub x: f32,
    pub y: f32,
    pub z: f32,
    pub w: f32,
}

/// Two `f32`, 8-byte aligned (CUDA's `float2`).
#[repr(C, align(8))]
pub struct f32x2 {
    pub x: f32,
    pub y: f32,
}

/// Four `u32`, 16-byte aligned (CUDA's `uint4`; also 8 packed halves).
#[repr(C, align(16))]
pub struct u32x4 {
    pub x: u32,
    pub y: u32,
    pub z: u32,
    pub w: u32,
}

macro_rules! plain {
    ($($t:ty)*) => {$(
        impl Clone for $t {
            #[inline(always)]
            fn clone(&self) -> Self {
                *self
            }
        }
        impl Copy for $t {}
    )*};
}
plain!(f32x4 f32x2 u32x4);

impl f32x4 {
    /// All four lanes set to `v`.
    #[inline(always)]
    pub const fn splat(v: f32) -> f32x4 {
        f32x4 { x: v, y: v, z: v, w: v }
    }
}

/// `ld.global.nc.f32`: read through the read-only (texture) cache.
///
/// # Safety
/// `p` points to global memory that no thread of *this launch* writes, is valid and
/// 4-byte aligned.
#[inline(always)]
pub unsafe fn ld_global_nc_f32(p: *const f32) -> f32 {
    let v: f32;
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; ld.global.nc.f32 {v}, [g]; }}",
            p = in(reg64) p,
            v = out(reg32) v,
            options(pure, readonly, nostack),
        );
    }
    v
}

/// `ld.global.nc.u32`: read through the read-only cache.
///
/// # Safety
/// As for [`ld_global_nc_f32`].
#[inline(always)]
pub unsafe fn ld_global_nc_u32(p: *const u32) -> u32 {
    let v: u32;
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; ld.global.nc.u32 {v}, [g]; }}",
            p = in(reg64) p,
            v = out(reg32) v,
            options(pure, readonly, nostack),
        );
    }
    v
}

/// `ld.global.nc.v4.f32`: 16 bytes through the read-only cache in one instruction.
///
/// # Safety
/// `p` is 16-byte aligned, valid for 16 bytes of global memory not written by this
/// launch.
#[inline(always)]
pub unsafe fn ld_global_nc_f32x4(p: *const f32) -> f32x4 {
    let (x, y, z, w): (f32, f32, f32, f32);
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; ld.global.nc.v4.f32 {{{x}, {y}, {z}, {w}}}, [g]; }}",
            p = in(reg64) p,
            x = out(reg32) x,
            y = out(reg32) y,
            z = out(reg32) z,
            w = out(reg32) w,
            options(pure, readonly, nostack),
        );
    }
    f32x4 { x, y, z, w }
}

/// `ld.global.nc.v4.u32`: 16 bytes (e.g. 8 halves) through the read-only cache.
///
/// # Safety
/// As for [`ld_global_nc_f32x4`].
#[inline(always)]
pub unsafe fn ld_global_nc_u32x4(p: *const u32) -> u32x4 {
    let (x, y, z, w): (u32, u32, u32, u32);
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; ld.global.nc.v4.u32 {{{x}, {y}, {z}, {w}}}, [g]; }}",
            p = in(reg64) p,
            x = out(reg32) x,
            y = out(reg32) y,
            z = out(reg32) z,
            w = out(reg32) w,
            options(pure, readonly, nostack),
        );
    }
    u32x4 { x, y, z, w }
}

/// `ld.global.v4.f32`: coherent 16-byte load (data this launch may also write).
///
/// # Safety
/// `p` is 16-byte aligned and valid for 16 bytes of global memory.
#[inline(always)]
pub unsafe fn ld_global_f32x4(p: *const f32) -> f32x4 {
    let (x, y, z, w): (f32, f32, f32, f32);
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; ld.global.v4.f32 {{{x}, {y}, {z}, {w}}}, [g]; }}",
            p = in(reg64) p,
            x = out(reg32) x,
            y = out(reg32) y,
            z = out(reg32) z,
            w = out(reg32) w,
            options(readonly, nostack),
        );
    }
    f32x4 { x, y, z, w }
}

/// `st.global.v4.f32`: one 16-byte store.
///
/// # Safety
/// `p` is 16-byte aligned and valid for writing 16 bytes of global memory.
#[inline(always)]
pub unsafe fn st_global_f32x4(p: *mut f32, v: f32x4) {
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; st.global.v4.f32 [g], {{{x}, {y}, {z}, {w}}}; }}",
            p = in(reg64) p,
            x = in(reg32) v.x,
            y = in(reg32) v.y,
            z = in(reg32) v.z,
            w = in(reg32) v.w,
            options(nostack),
        );
    }
}

/// `st.global.v4.u32`: one 16-byte store.
///
/// # Safety
/// As for [`st_global_f32x4`].
#[inline(always)]
pub unsafe fn st_global_u32x4(p: *mut u32, v: u32x4) {
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; st.global.v4.u32 [g], {{{x}, {y}, {z}, {w}}}; }}",
            p = in(reg64) p,
            x = in(reg32) v.x,
            y = in(reg32) v.y,
            z = in(reg32) v.z,
            w = in(reg32) v.w,
            options(nostack),
        );
    }
}

/// `prefetch.global.L2`: hint that the line holding `p` will be needed soon.
#[inline(always)]
pub fn prefetch_l2<T>(p: *const T) {
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; prefetch.global.L2 [g]; }}",
            p = in(reg64) p,
            options(nostack, preserves_flags),
        );
    }
}
