//! Operator traits (`+ - * / % & | ^ << >> ! -` and their `op=` forms) and indexing.
//!
//! rustc type-checks every operator through these lang-item traits, even on primitives,
//! then emits the built-in instruction; the impls below are what make `a + b` legal for
//! each numeric type. Semantics are Rust's as compiled by `build.rs` (`-O`, no
//! `overflow-checks`): integer arithmetic wraps, shifts mask the amount to the type's
//! width, integer `/` and `%` check for zero (and `MIN / -1`) and trap (see
//! [`super::panic`]). Float `%` is LLVM's NVPTX expansion `x - trunc(x / y) * y` with an
//! IEEE `div.rn`, not a bit-exact `fmodf` for huge quotients.

use super::lang::PointeeSized;

macro_rules! op_trait {
    ($lang:literal $Tr:ident $m:ident) => {
        #[lang = $lang]
        pub trait $Tr<Rhs = Self> {
            type Output;
            fn $m(self, rhs: Rhs) -> Self::Output;
        }
    };
}
macro_rules! assign_trait {
    ($lang:literal $Tr:ident $m:ident) => {
        #[lang = $lang]
        pub trait $Tr<Rhs = Self> {
            fn $m(&mut self, rhs: Rhs);
        }
    };
}
op_trait!("add" Add add);
op_trait!("sub" Sub sub);
op_trait!("mul" Mul mul);
op_trait!("div" Div div);
op_trait!("rem" Rem rem);
op_trait!("bitand" BitAnd bitand);
op_trait!("bitor" BitOr bitor);
op_trait!("bitxor" BitXor bitxor);
op_trait!("shl" Shl shl);
op_trait!("shr" Shr shr);
assign_trait!("add_assign" AddAssign add_assign);
assign_trait!("sub_assign" SubAssign sub_assign);
assign_trait!("mul_assign" MulAssign mul_assign);
assign_trait!("div_assign" DivAssign div_assign);
assign_trait!("rem_assign" RemAssign rem_assign);
assign_trait!("bitand_assign" BitAndAssign bitand_assign);
assign_trait!("bitor_assign" BitOrAssign bitor_assign);
assign_trait!("bitxor_assign" BitXorAssign bitxor_assign);
assign_trait!("shl_assign" ShlAssign shl_assign);
assign_trait!("shr_assign" ShrAssign shr_assign);

/// Unary `-`.
#[lang = "neg"]
pub trait Neg {
    type Output;
    fn neg(self) -> Self::Output;
}

/// Unary `!` (logical for `bool`, bitwise for integers).
#[lang = "not"]
pub trait Not {
    type Output;
    fn not(self) -> Self::Output;
}

/// `a OP b` and `a OP= b` for each listed type, with the built-in meaning.
macro_rules! binop {
    ($Tr:ident $m:ident $op:tt, $TrA:ident $ma:ident $opa:tt; $($t:ty)*) => {$(
        impl $Tr for $t {
            type Output = $t;
            #[inline(always)]
            fn $m(self, rhs: $t) -> $t {
                self $op rhs
            }
        }
        impl $TrA for $t {
            #[inline(always)]
            fn $ma(&mut self, rhs: $t) {
                *self $opa rhs
            }
        }
    )*};
}
macro_rules! arith {
    ($($t:ty)*) => {
        binop!(Add add +, AddAssign add_assign +=; $($t)*);
        binop!(Sub sub -, SubAssign sub_assign -=; $($t)*);
        binop!(Mul mul *, MulAssign mul_assign *=; $($t)*);
        binop!(Div div /, DivAssign div_assign /=; $($t)*);
        binop!(Rem rem %, RemAssign rem_assign %=; $($t)*);
    };
}
macro_rules! bits {
    ($($t:ty)*) => {
        binop!(BitAnd bitand &, BitAndAssign bitand_assign &=; $($t)*);
        binop!(BitOr bitor |, BitOrAssign bitor_assign |=; $($t)*);
        binop!(BitXor bitxor ^, BitXorAssign bitxor_assign ^=; $($t)*);
        $(impl Not for $t {
            type Output = $t;
            #[inline(always)]
            fn not(self) -> $t {
                !self
            }
        })*
    };
}
macro_rules! neg {
    ($($t:ty)*) => {$(
        impl Neg for $t {
            type Output = $t;
            #[inline(always)]
            fn neg(self) -> $t {
                -self
            }
        }
    )*};
}
arith!(u8 u16 u32 u64 usize i8 i16 i32 i64 isize f32 f64);
bits!(bool u8 u16 u32 u64 usize i8 i16 i32 i64 isize);
neg!(i8 i16 i32 i64 isize f32 f64);

/// Shifts of every integer type by every integer type, as in `core` (so an unsuffixed
/// literal amount falls back to `i32` like it does on the host).
macro_rules! shift_by {
    ($t:ty; $($r:ty)*) => {$(
        impl Shl<$r> for $t {
            type Output = $t;
            #[inline(always)]
            fn shl(self, rhs: $r) -> $t {
                self << rhs
            }
        }
        impl Shr<$r> for $t {
            type Output = $t;
            #[inline(always)]
            fn shr(self, rhs: $r) -> $t {
                self >> rhs
            }
        }
        impl ShlAssign<$r> for $t {
            #[inline(always)]
            fn shl_assign(&mut self, rhs: $r) {
                *self <<= rhs
            }
        }
        impl ShrAssign<$r> for $t {
            #[inline(always)]
            fn shr_assign(&mut self, rhs: $r) {
                *self >>= rhs
            }
        }
    )*};
}
macro_rules! shifts {
    ($($t:ty)*) => {$(
        shift_by!($t; u8 u16 u32 u64 usize i8 i16 i32 i64 isize);
    )*};
}
shifts!(u8 u16 u32 u64 usize i8 i16 i32 i64 isize);

/// `container[index]` for reads.
#[lang = "index"]
pub trait Index<Idx: PointeeSized>: PointeeSized {
    type Output: PointeeSized;
    fn index(&self, index: Idx) -> &Self::Output;
}

/// `container[index]` for writes.
#[lang = "index_mut"]
pub trait IndexMut<Idx: PointeeSized>: Index<Idx> + PointeeSized {
    fn index_mut(&mut self, index: Idx) -> &mut Self::Output;
}

// Arrays indexed by `usize` use rustc's built-in indexing (bounds-checked; a constant
// index into a local array is checked at compile time and costs nothing). These impls
// only have to exist for the type checker to accept `arr[i]`.
impl<T, const N: usize> Index<usize> for [T; N] {
    type Output = T;
    #[inline(always)]
    fn index(&self, index: usize) -> &T {
        &self[index]
    }
}
impl<T, const N: usize> IndexMut<usize> for [T; N] {
    #[inline(always)]
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self[index]
    }
}

/// `*x` through a smart pointer (none yet; here so wrappers can add one).
#[lang = "deref"]
pub trait Deref: PointeeSized {
    #[lang = "deref_target"]
    type Target: PointeeSized;
    fn deref(&self) -> &Self::Target;
}

/// `*x = v` through a smart pointer.
#[lang = "deref_mut"]
pub trait DerefMut: Deref + PointeeSized {
    fn deref_mut(&mut self) -> &mut Self::Target;
}

impl<T: PointeeSized> Deref for &T {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        *self
    }
}
impl<T: PointeeSized> Deref for &mut T {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        self
    }
}
impl<T: PointeeSized> DerefMut for &mut T {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        self
    }
}
