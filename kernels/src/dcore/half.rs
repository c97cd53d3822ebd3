//! Half-precision storage types and conversions: `f16`, `bf16` and the packed pairs
//! `half2`/`bf16x2` (the operand format of `mma.sync` and of `f16x2` arithmetic).
//!
//! The types are bit containers (`#[repr(transparent)]` over `u16`/`u32`); arithmetic
//! happens in `f32` or through the packed `fma`s below. Conversions are single PTX
//! instructions: `cvt.rn.f16.f32` / `cvt.f32.f16` for `f16`, `cvt.rn.bf16.f32`
//! (sm_80+) for `bf16` (`bf16 → f32` is exact and just a 16-bit shift), and
//! `cvt.rn.{f16x2,bf16x2}.f32` for pairs. Rounding is to nearest even; overflow gives
//! ±inf for `f16`; `f16` subnormals are produced and consumed exactly; NaN stays NaN
//! (payload not preserved: `bf16` NaN becomes the canonical `0x7fff`).
//!
//! Packing convention (as in CUDA's `__half2` and the PTX ISA): element 0 — the
//! lower-addressed one in memory, `lo` — lives in bits 0..16, element 1 in bits 16..32.

use super::lang::{asm, Clone, Copy};

/// IEEE binary16 bits.
#[repr(transparent)]
pub struct f16(pub u16);

/// bfloat16 bits (the upper half of an `f32`).
#[repr(transparent)]
pub struct bf16(pub u16);

/// Two `f16`: element 0 in the low 16 bits.
#[repr(transparent)]
pub struct half2(pub u32);

/// Two `bf16`: element 0 in the low 16 bits.
#[repr(transparent)]
pub struct bf16x2(pub u32);

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
plain!(f16 bf16 half2 bf16x2);

impl f16 {
    pub const ZERO: f16 = f16(0);
    pub const ONE: f16 = f16(0x3c00);
    /// Largest finite value, 65504.
    pub const MAX: f16 = f16(0x7bff);

    /// Round to nearest even (`cvt.rn.f16.f32`).
    #[inline(always)]
    pub fn from_f32(x: f32) -> f16 {
        let h: u16;
        unsafe {
            asm!("cvt.rn.f16.f32 {h}, {x};", h = out(reg16) h, x = in(reg32) x, options(pure, nomem, nostack));
        }
        f16(h)
    }
    /// Exact widening (`cvt.f32.f16`).
    #[inline(always)]
    pub fn to_f32(self) -> f32 {
        let x: f32;
        unsafe {
            asm!("cvt.f32.f16 {x}, {h};", x = out(reg32) x, h = in(reg16) self.0, options(pure, nomem, nostack));
        }
        x
    }
    /// The raw bits.
    #[inline(always)]
    pub const fn to_bits(self) -> u16 {
        self.0
    }
    /// From raw bits.
    #[inline(always)]
    pub const fn from_bits(b: u16) -> f16 {
        f16(b)
    }
}

impl bf16 {
    pub const ZERO: bf16 = bf16(0);
    pub const ONE: bf16 = bf16(0x3f80);

    /// Round to nearest even (`cvt.rn.bf16.f32`, sm_80+).
    #[inline(always)]
    pub fn from_f32(x: f32) -> bf16 {
        let h: u16;
        unsafe {
            asm!("cvt.rn.bf16.f32 {h}, {x};", h = out(reg16) h, x = in(reg32) x, options(pure, nomem, nostack));
        }
        bf16(h)
    }
    /// Exact widening: the bits become the upper half of an `f32`.
    #[inline(always)]
    pub fn to_f32(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }
    /// The raw bits.
    #[inline(always)]
    pub const fn to_bits(self) -> u16 {
        self.0
    }
    /// From raw bits.
    #[inline(always)]
    pub const fn from_bits(b: u16) -> bf16 {
        bf16(b)
    }
}

impl half2 {
    /// `(lo, hi)` rounded to nearest even in one `cvt.rn.f16x2.f32` (sm_80+).
    #[inline(always)]
    pub fn from_f32(lo: f32, hi: f32) -> half2 {
        let p: u32;
        // The first source operand goes to the upper half.
        unsafe {
            asm!("cvt.rn.f16x2.f32 {p}, {hi}, {lo};", p = out(reg32) p, hi = in(reg32) hi, lo = in(reg32) lo, options(pure, nomem, nostack));
        }
        half2(p)
    }
    /// Packs two `f16` (`lo` = element 0).
    #[inline(always)]
    pub fn new(lo: f16, hi: f16) -> half2 {
        half2((lo.0 as u32) | ((hi.0 as u32) << 16))
    }
    /// Element 0.
    #[inline(always)]
    pub fn lo(self) -> f16 {
        f16(self.0 as u16)
    }
    /// Element 1.
    #[inline(always)]
    pub fn hi(self) -> f16 {
        f16((self.0 >> 16) as u16)
    }
    /// Both elements widened to `f32`, `(lo, hi)`.
    #[inline(always)]
    pub fn to_f32(self) -> (f32, f32) {
        (self.lo().to_f32(), self.hi().to_f32())
    }
    /// Element-wise `a * b + c` with one rounding per element (`fma.rn.f16x2`).
    #[inline(always)]
    pub fn fma(a: half2, b: half2, c: half2) -> half2 {
        let d: u32;
        unsafe {
            asm!("fma.rn.f16x2 {d}, {a}, {b}, {c};", d = out(reg32) d, a = in(reg32) a.0, b = in(reg32) b.0, c = in(reg32) c.0, options(pure, nomem, nostack));
        }
        half2(d)
    }
}

impl bf16x2 {
    /// `(lo, hi)` rounded to nearest even in one `cvt.rn.bf16x2.f32` (sm_80+).
    #[inline(always)]
    pub fn from_f32(lo: f32, hi: f32) -> bf16x2 {
        let p: u32;
        // The first source operand goes to the upper half.
        unsafe {
            asm!("cvt.rn.bf16x2.f32 {p}, {hi}, {lo};", p = out(reg32) p, hi = in(reg32) hi, lo = in(reg32) lo, options(pure, nomem, nostack));
        }
        bf16x2(p)
    }
    /// Packs two `bf16` (`lo` = element 0).
    #[inline(always)]
    pub fn new(lo: bf16, hi: bf16) -> bf16x2 {
        bf16x2((lo.0 as u32) | ((hi.0 as u32) << 16))
    }
    /// Element 0.
    #[inline(always)]
    pub fn lo(self) -> bf16 {
        bf16(self.0 as u16)
    }
    /// Element 1.
    #[inline(always)]
    pub fn hi(self) -> bf16 {
        bf16((self.0 >> 16) as u16)
    }
    /// Both elements widened to `f32`, `(lo, hi)` (exact, two bit operations).
    #[inline(always)]
    pub fn to_f32(self) -> (f32, f32) {
        (f32::from_bits(self.0 << 16), f32::from_bits(self.0 & 0xffff_0000))
    }
    /// Element-wise `a * b + c` with one rounding per element (`fma.rn.bf16x2`, sm_80+).
    #[inline(always)]
    pub fn fma(a: bf16x2, b: bf16x2, c: bf16x2) -> bf16x2 {
        let d: u32;
        unsafe {
            asm!("fma.rn.bf16x2 {d}, {a}, {b}, {c};", d = out(reg32) d, a = in(reg32) a.0, b = in(reg32) b.0, c = in(reg32) c.0, options(pure, nomem, nostack));
        }
        bf16x2(d)
    }
}
