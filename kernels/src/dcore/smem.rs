//! Shared memory: static arrays ([`shared_array!`]), the dynamic segment
//! ([`dyn_smem`]), and `ld.shared`/`st.shared` on 32-bit shared addresses.
//!
//! rustc's NVPTX backend has no address-space attribute for statics, so a `.shared`
//! variable is declared in PTX directly: [`shared_array!`] emits module-scope
//! `.shared .align A .b8 NAME[BYTES];` through `global_asm!` and turns the symbol
//! into a generic pointer with `cvta.shared.u64`. Declaring at module scope (what nvcc
//! does for `__shared__`) rather than inside the function body means inlining or loop
//! unrolling can never duplicate the declaration. `ptxas` allocates a `.shared` array
//! only for the kernels that reference it, so unused arrays cost nothing.
//!
//! Generic pointers work with ordinary `*p` (and `ptxas` usually recovers the state
//! space); where a kernel wants the cheaper 32-bit shared addressing explicitly
//! (`ldmatrix`, `cp.async`, `ld.shared.v4` in a hot loop) use [`to_shared`] /
//! [`shared_array_addr!`] and the `ld_shared_*`/`st_shared_*` functions. A 32-bit shared
//! address is an offset into the block's shared window (CUDA's
//! `__cvta_generic_to_shared`).

use super::lang::{asm, global_asm};
use super::mem::{f32x4, u32x4};

/// Declares a module-scope `.shared` array and evaluates to a `*mut T` to its first
/// element (generic address).
///
/// ```ignore
/// let tile: *mut f32 = shared_array!(gemm_tile_a: [f32; 32 * 33]);
/// let buf = shared_array!(stage_buf: [u32; 1024], align = 128);
/// ```
///
/// * `NAME` becomes the PTX symbol: it must be unique across the whole kernel crate
///   (a clash is a `ptxas` "duplicate definition" error, caught by `tests/ptx_check.rs`).
///   Every expansion with the same name in the same kernel refers to the same memory.
/// * `T` and `N` are evaluated in a module nested in the enclosing one (which sees its
///   imports through `use super::*`), so they must be nameable there — not from a `use`
///   inside the function.
/// * Alignment defaults to 16 bytes (enough for `.v4` accesses and `ldmatrix`).
/// * Contents are uninitialised at kernel start and live for the block.
#[allow(unused_macros)]
macro_rules! shared_array {
    ($name:ident : [$t:ty; $n:expr]) => {
        $crate::dcore::smem::shared_array!($name: [$t; $n], align = 16)
    };
    ($name:ident : [$t:ty; $n:expr], align = $align:literal) => {{
        #[allow(non_snake_case, dead_code, unused_imports)]
        mod $name {
            use super::*;
            $crate::dcore::lang::global_asm!(
                $crate::dcore::lang::concat!(
                    ".shared .align ",
                    $align,
                    " .b8 ",
                    $crate::dcore::lang::stringify!($name),
                    "[{bytes}];"
                ),
                bytes = const ($n) * $crate::dcore::mem::size_of::<$t>(),
            );
        }
        let p: *mut $t;
        #[allow(unused_unsafe)]
        unsafe {
            $crate::dcore::lang::asm!(
                $crate::dcore::lang::concat!(
                    "cvta.shared.u64 {p}, ",
                    $crate::dcore::lang::stringify!($name),
                    ";"
                ),
                p = out(reg64) p,
                options(pure, nomem, nostack),
            );
        }
        p
    }};
}
#[allow(unused_imports)]
pub(crate) use shared_array;

/// The 32-bit shared address of an array declared by [`shared_array!`] (by `NAME`),
/// without going through a generic pointer: `mov.u32 r, NAME;`.
#[allow(unused_macros)]
macro_rules! shared_array_addr {
    ($name:ident) => {{
        let a: u32;
        #[allow(unused_unsafe)]
        unsafe {
            $crate::dcore::lang::asm!(
                $crate::dcore::lang::concat!(
                    "mov.u32 {a}, ",
                    $crate::dcore::lang::stringify!($name),
                    ";"
                ),
                a = out(reg32) a,
                options(pure, nomem, nostack),
            );
        }
        a
    }};
}
#[allow(unused_imports)]
pub(crate) use shared_array_addr;

// The dynamic shared segment (size set at launch: `sharedMemBytes`). One declaration for
// the whole module; every kernel that uses it sees the same base.
global_asm!(".extern .shared .align 16 .b8 cnnergy_dyn_smem[];");

/// Start of the dynamic shared memory segment as a generic pointer (CUDA's
/// `extern __shared__ T buf[];`), 16-byte aligned. Its size is the launch's dynamic
/// shared-memory byte count; the kernel must not access beyond it.
#[inline(always)]
pub fn dyn_smem<T>() -> *mut T {
    let p: *mut T;
    unsafe {
        asm!("cvta.shared.u64 {p}, cnnergy_dyn_smem;", p = out(reg64) p, options(pure, nomem, nostack));
    }
    p
}

/// Start of the dynamic shared memory segment as a 32-bit shared address.
#[inline(always)]
pub fn dyn_smem_addr() -> u32 {
    let a: u32;
    unsafe {
        asm!("mov.u32 {a}, cnnergy_dyn_smem;", a = out(reg32) a, options(pure, nomem, nostack));
    }
    a
}

/// Generic pointer → 32-bit shared address (`cvta.to.shared.u64` + `cvt.u32.u64`;
/// CUDA's `__cvta_generic_to_shared`).
///
/// # Safety
/// `p` must point into this block's shared memory (otherwise the result is garbage).
#[inline(always)]
pub unsafe fn to_shared<T>(p: *const T) -> u32 {
    let a: u32;
    unsafe {
        asm!(
            "{{ .reg .u64 s; cvta.to.shared.u64 s, {p}; cvt.u32.u64 {a}, s; }}",
            p = in(reg64) p,
            a = out(reg32) a,
            options(pure, nomem, nostack),
        );
    }
    a
}

/// 32-bit shared address → generic pointer (`cvta.shared.u64`).
#[inline(always)]
pub fn from_shared<T>(addr: u32) -> *mut T {
    let p: *mut T;
    unsafe {
        asm!(
            "{{ .reg .u64 s; cvt.u64.u32 s, {a}; cvta.shared.u64 {p}, s; }}",
            a = in(reg32) addr,
            p = out(reg64) p,
            options(pure, nomem, nostack),
        );
    }
    p
}

macro_rules! ld_st {
    ($(#[$m:meta])* $ld:ident, $st:ident, $t:ty, $ty:literal) => {
        $(#[$m])*
        ///
        /// # Safety
        /// `addr` is a shared address aligned to the operand size, inside the block's
        /// shared memory.
        #[inline(always)]
        pub unsafe fn $ld(addr: u32) -> $t {
            let v: $t;
            unsafe {
                asm!(
                    concat!("ld.shared.", $ty, " {v}, [{a}];"),
                    v = out(reg32) v,
                    a = in(reg32) addr,
                    options(readonly, nostack),
                );
            }
            v
        }
        $(#[$m])*
        ///
        /// # Safety
        /// As for the load.
        #[inline(always)]
        pub unsafe fn $st(addr: u32, v: $t) {
            unsafe {
                asm!(
                    concat!("st.shared.", $ty, " [{a}], {v};"),
                    a = in(reg32) addr,
                    v = in(reg32) v,
                    options(nostack),
                );
            }
        }
    };
}
use super::lang::concat;
ld_st!(
    /// `ld.shared.f32` / `st.shared.f32` at a 32-bit shared address.
    ld_shared_f32, st_shared_f32, f32, "f32"
);
ld_st!(
    /// `ld.shared.u32` / `st.shared.u32` at a 32-bit shared address.
    ld_shared_u32, st_shared_u32, u32, "u32"
);

/// `ld.shared.v4.f32`: 16 bytes at a 16-byte-aligned shared address.
///
/// # Safety
/// `addr` 16-byte aligned, inside the block's shared memory.
#[inline(always)]
pub unsafe fn ld_shared_f32x4(addr: u32) -> f32x4 {
    let (x, y, z, w): (f32, f32, f32, f32);
    unsafe {
        asm!(
            "ld.shared.v4.f32 {{{x}, {y}, {z}, {w}}}, [{a}];",
            x = out(reg32) x,
            y = out(reg32) y,
            z = out(reg32) z,
            w = out(reg32) w,
            a = in(reg32) addr,
            options(readonly, nostack),
        );
    }
    f32x4 { x, y, z, w }
}

/// `st.shared.v4.f32`.
///
/// # Safety
/// As for [`ld_shared_f32x4`].
#[inline(always)]
pub unsafe fn st_shared_f32x4(addr: u32, v: f32x4) {
    unsafe {
        asm!(
            "st.shared.v4.f32 [{a}], {{{x}, {y}, {z}, {w}}};",
            a = in(reg32) addr,
            x = in(reg32) v.x,
            y = in(reg32) v.y,
            z = in(reg32) v.z,
            w = in(reg32) v.w,
            options(nostack),
        );
    }
}

/// `ld.shared.v4.u32`.
///
/// # Safety
/// As for [`ld_shared_f32x4`].
#[inline(always)]
pub unsafe fn ld_shared_u32x4(addr: u32) -> u32x4 {
    let (x, y, z, w): (u32, u32, u32, u32);
    unsafe {
        asm!(
            "ld.shared.v4.u32 {{{x}, {y}, {z}, {w}}}, [{a}];",
            x = out(reg32) x,
            y = out(reg32) y,
            z = out(reg32) z,
            w = out(reg32) w,
            a = in(reg32) addr,
            options(readonly, nostack),
        );
    }
    u32x4 { x, y, z, w }
}

/// `st.shared.v4.u32`.
///
/// # Safety
/// As for [`ld_shared_f32x4`].
#[inline(always)]
pub unsafe fn st_shared_u32x4(addr: u32, v: u32x4) {
    unsafe {
        asm!(
            "st.shared.v4.u32 [{a}], {{{x}, {y}, {z}, {w}}};",
            a = in(reg32) addr,
            x = in(reg32) v.x,
            y = in(reg32) v.y,
            z = in(reg32) v.z,
            w = in(reg32) v.w,
            options(nostack),
        );
    }
}
