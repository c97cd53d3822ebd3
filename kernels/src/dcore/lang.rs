//! Lang items rustc 1.95 expects. They must match the pinned compiler.

#[lang = "pointee_sized"]
pub trait PointeeSized {}
#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}
#[lang = "sized"]
pub trait Sized: MetaSized {}
#[lang = "copy"]
pub trait Copy {}
#[lang = "legacy_receiver"]
pub trait LegacyReceiver {}
impl<T: ?Sized> LegacyReceiver for &T {}
impl<T: ?Sized> LegacyReceiver for &mut T {}

macro_rules! impl_copy { ($($t:ty)*) => { $(impl Copy for $t {})* } }
impl_copy!(bool u8 u16 u32 u64 usize i8 i16 i32 i64 isize f32 f64);
impl<T: ?Sized> Copy for *const T {}
impl<T: ?Sized> Copy for *mut T {}

macro_rules! binop {
    ($lang:literal $tr:ident $m:ident $op:tt; $($t:ty)*) => {
        #[lang = $lang]
        pub trait $tr<R = Self> { type Output; fn $m(self, r: R) -> Self::Output; }
        $(impl $tr for $t { type Output = $t; #[inline(always)] fn $m(self, r: $t) -> $t { self $op r } })*
    };
}
binop!("add" Add add +; u32 u64 usize i32 i64 f32 f64);
binop!("sub" Sub sub -; u32 u64 usize i32 i64 f32 f64);
binop!("mul" Mul mul *; u32 u64 usize i32 i64 f32 f64);

#[lang = "eq"]
pub trait PartialEq<R: ?Sized = Self> {
    fn eq(&self, o: &R) -> bool;
}
#[lang = "partial_ord"]
pub trait PartialOrd<R: ?Sized = Self>: PartialEq<R> {
    fn lt(&self, o: &R) -> bool;
}
macro_rules! cmp { ($($t:ty)*) => { $(
    impl PartialEq for $t { #[inline(always)] fn eq(&self, o: &$t) -> bool { *self == *o } }
    impl PartialOrd for $t { #[inline(always)] fn lt(&self, o: &$t) -> bool { *self < *o } }
)* } }
cmp!(u32 u64 usize i32 i64 f32 f64);
