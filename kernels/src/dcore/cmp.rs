//! Comparison traits (`== != < <= > >=`) for primitives and thin raw pointers.
//!
//! As with the operators, rustc needs the lang-item traits to type-check comparisons and
//! then emits the built-in `setp`. Float comparisons are IEEE (`NaN != NaN`, every
//! ordered comparison with NaN is false). There is no `Ord`/`Ordering`: kernels compare
//! with the operators or use [`min`]/[`max`] and the inherent `min`/`max` methods.

use super::lang::PointeeSized;

/// `==` and `!=`.
#[lang = "eq"]
pub trait PartialEq<Rhs: PointeeSized = Self>: PointeeSized {
    fn eq(&self, other: &Rhs) -> bool;
    #[inline(always)]
    fn ne(&self, other: &Rhs) -> bool {
        !self.eq(other)
    }
}

/// Marker for reflexive equality (integers, `bool`, pointers; not floats).
pub trait Eq: PartialEq {}

/// `<`, `<=`, `>`, `>=`.
#[lang = "partial_ord"]
pub trait PartialOrd<Rhs: PointeeSized = Self>: PartialEq<Rhs> + PointeeSized {
    fn lt(&self, other: &Rhs) -> bool;
    fn le(&self, other: &Rhs) -> bool;
    fn gt(&self, other: &Rhs) -> bool;
    fn ge(&self, other: &Rhs) -> bool;
}

macro_rules! cmp_impls {
    ($($t:ty)*) => {$(
        impl PartialEq for $t {
            #[inline(always)]
            fn eq(&self, other: &$t) -> bool {
                *self == *other
            }
            #[inline(always)]
            fn ne(&self, other: &$t) -> bool {
                *self != *other
            }
        }
        impl PartialOrd for $t {
            #[inline(always)]
            fn lt(&self, other: &$t) -> bool {
                *self < *other
            }
            #[inline(always)]
            fn le(&self, other: &$t) -> bool {
                *self <= *other
            }
            #[inline(always)]
            fn gt(&self, other: &$t) -> bool {
                *self > *other
            }
            #[inline(always)]
            fn ge(&self, other: &$t) -> bool {
                *self >= *other
            }
        }
    )*};
}
cmp_impls!(bool char u8 u16 u32 u64 usize i8 i16 i32 i64 isize f32 f64);

macro_rules! eq_marker {
    ($($t:ty)*) => {$( impl Eq for $t {} )*};
}
eq_marker!(bool char u8 u16 u32 u64 usize i8 i16 i32 i64 isize);

impl<T> PartialEq for *const T {
    #[inline(always)]
    fn eq(&self, other: &*const T) -> bool {
        *self == *other
    }
}
impl<T> Eq for *const T {}
impl<T> PartialEq for *mut T {
    #[inline(always)]
    fn eq(&self, other: &*mut T) -> bool {
        *self == *other
    }
}
impl<T> Eq for *mut T {}

/// The smaller of two values (`b` when they compare equal or unordered).
#[inline(always)]
pub fn min<T: PartialOrd>(a: T, b: T) -> T {
    if a < b {
        a
    } else {
        b
    }
}

/// The larger of two values (`b` when they compare equal or unordered).
#[inline(always)]
pub fn max<T: PartialOrd>(a: T, b: T) -> T {
    if a > b {
        a
    } else {
        b
    }
}
