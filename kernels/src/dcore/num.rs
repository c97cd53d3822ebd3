//! Inherent methods and constants of the integer types (`u32::MAX`, `x.min(y)`,
//! `x.leading_zeros()`, ...), as far as kernels need them. None of them can panic
//! except [`div_ceil`](u32::div_ceil) by zero, which traps like `/` does.

use super::intrinsics as i;

macro_rules! int_common {
    ($($t:ty, $bits:literal, $min:expr, $max:expr;)*) => {$(
        impl $t {
            /// Smallest value.
            pub const MIN: $t = $min;
            /// Largest value.
            pub const MAX: $t = $max;
            /// Width in bits.
            pub const BITS: u32 = $bits;

            /// The smaller of `self` and `other`.
            #[inline(always)]
            pub fn min(self, other: $t) -> $t {
                if self < other { self } else { other }
            }
            /// The larger of `self` and `other`.
            #[inline(always)]
            pub fn max(self, other: $t) -> $t {
                if self > other { self } else { other }
            }
            /// `self` limited to `lo..=hi` (expects `lo <= hi`).
            #[inline(always)]
            pub fn clamp(self, lo: $t, hi: $t) -> $t {
                self.max(lo).min(hi)
            }
            /// Two's-complement wrapping `+`.
            #[inline(always)]
            pub fn wrapping_add(self, rhs: $t) -> $t {
                i::wrapping_add(self, rhs)
            }
            /// Two's-complement wrapping `-`.
            #[inline(always)]
            pub fn wrapping_sub(self, rhs: $t) -> $t {
                i::wrapping_sub(self, rhs)
            }
            /// Two's-complement wrapping `*`.
            #[inline(always)]
            pub fn wrapping_mul(self, rhs: $t) -> $t {
                i::wrapping_mul(self, rhs)
            }
            /// `+` saturating at the type's bounds.
            #[inline(always)]
            pub fn saturating_add(self, rhs: $t) -> $t {
                i::saturating_add(self, rhs)
            }
            /// `-` saturating at the type's bounds.
            #[inline(always)]
            pub fn saturating_sub(self, rhs: $t) -> $t {
                i::saturating_sub(self, rhs)
            }
            /// Number of one bits (`popc`).
            #[inline(always)]
            pub fn count_ones(self) -> u32 {
                i::ctpop(self)
            }
            /// Number of leading zero bits (`clz`); `BITS` for zero.
            #[inline(always)]
            pub fn leading_zeros(self) -> u32 {
                i::ctlz(self)
            }
            /// Number of trailing zero bits; `BITS` for zero.
            #[inline(always)]
            pub fn trailing_zeros(self) -> u32 {
                i::cttz(self)
            }
            /// Bytes in reverse order.
            #[inline(always)]
            pub fn swap_bytes(self) -> $t {
                i::bswap(self)
            }
            /// Bits in reverse order (`brev`).
            #[inline(always)]
            pub fn reverse_bits(self) -> $t {
                i::bitreverse(self)
            }
            /// `self / rhs` without the zero check.
            ///
            /// # Safety
            /// `rhs != 0`, and not `MIN / -1` for signed types.
            #[inline(always)]
            pub unsafe fn unchecked_div(self, rhs: $t) -> $t {
                unsafe { i::unchecked_div(self, rhs) }
            }
            /// `self % rhs` without the zero check.
            ///
            /// # Safety
            /// `rhs != 0`, and not `MIN % -1` for signed types.
            #[inline(always)]
            pub unsafe fn unchecked_rem(self, rhs: $t) -> $t {
                unsafe { i::unchecked_rem(self, rhs) }
            }
        }
    )*};
}
int_common! {
    u8, 8, 0, 0xff;
    u16, 16, 0, 0xffff;
    u32, 32, 0, 0xffff_ffff;
    u64, 64, 0, 0xffff_ffff_ffff_ffff;
    usize, 64, 0, 0xffff_ffff_ffff_ffff;
    i8, 8, -0x80, 0x7f;
    i16, 16, -0x8000, 0x7fff;
    i32, 32, -0x8000_0000, 0x7fff_ffff;
    i64, 64, -0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff;
    isize, 64, -0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff;
}

macro_rules! int_unsigned {
    ($($t:ty)*) => {$(
        impl $t {
            /// `ceil(self / rhs)`; traps if `rhs == 0`.
            #[inline(always)]
            pub fn div_ceil(self, rhs: $t) -> $t {
                let q = self / rhs;
                if q * rhs < self { q + 1 } else { q }
            }
            /// Whether exactly one bit is set.
            #[inline(always)]
            pub fn is_power_of_two(self) -> bool {
                self.count_ones() == 1
            }
        }
    )*};
}
int_unsigned!(u8 u16 u32 u64 usize);

macro_rules! int_signed {
    ($($t:ty)*) => {$(
        impl $t {
            /// `|self|`, wrapping (`MIN.wrapping_abs() == MIN`).
            #[inline(always)]
            pub fn wrapping_abs(self) -> $t {
                if self < 0 { i::wrapping_sub(0, self) } else { self }
            }
            /// `-1`, `0` or `1`.
            #[inline(always)]
            pub fn signum(self) -> $t {
                if self < 0 { -1 } else if self > 0 { 1 } else { 0 }
            }
        }
    )*};
}
int_signed!(i8 i16 i32 i64 isize);
