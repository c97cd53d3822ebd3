//! Marker traits, `Clone`/`Copy`, closures and the compiler's built-in macros.
//!
//! These are the lang items every Rust program leans on whether it names them or not:
//! the `Sized` hierarchy, `Copy` (moves of plain data), the auto traits rustc queries
//! when it lowers `&T`/`&mut T` arguments (`Freeze`, `Unpin`), the `Fn*` traits that
//! make closures callable, and `Drop`/`drop_in_place` for generic code. Their shapes
//! must match what the pinned compiler (1.95) expects; rustc's own test-suite
//! `minicore.rs` and the 1.95 `core` sources were the reference.

/// Types whose pointers may or may not carry a size (the root of the `Sized` hierarchy).
#[lang = "pointee_sized"]
pub trait PointeeSized {}

/// Types whose size can be computed from a pointer's metadata.
#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}

/// Types with a size known at compile time.
#[lang = "sized"]
pub trait Sized: MetaSized {}

/// Const-destructible types (needed because some intrinsics are `const fn`).
#[lang = "destruct"]
pub trait Destruct: PointeeSized {}

/// Types that can be used as method receivers through a reference.
#[lang = "legacy_receiver"]
pub trait LegacyReceiver: PointeeSized {}
impl<T: PointeeSized> LegacyReceiver for &T {}
impl<T: PointeeSized> LegacyReceiver for &mut T {}

/// Types without interior mutability; rustc asks this to mark `&T` arguments read-only.
#[lang = "freeze"]
pub unsafe auto trait Freeze {}

/// Types that may be moved after being pinned; rustc asks this for `&mut T` `noalias`.
#[lang = "unpin"]
pub auto trait Unpin {}

/// The unsafe counterpart of [`Unpin`] that 1.95 also queries for `&mut T`.
#[lang = "unsafe_unpin"]
pub unsafe auto trait UnsafeUnpin {}

/// Types that may be shared between threads (only needed for `static`s, which kernels
/// should avoid: put constants in `const`s and per-block data in shared memory).
#[lang = "sync"]
pub unsafe trait Sync {}

/// Explicit duplication.
#[lang = "clone"]
pub trait Clone: Sized {
    fn clone(&self) -> Self;
}

/// Types duplicated by a plain bit copy (every value kernels pass around).
#[lang = "copy"]
pub trait Copy: Clone {}

/// Implements `Copy`, `Clone` and `Sync` for plain-data types.
macro_rules! plain_data {
    ($($t:ty)*) => {$(
        impl Clone for $t {
            #[inline(always)]
            fn clone(&self) -> $t {
                *self
            }
        }
        impl Copy for $t {}
        unsafe impl Sync for $t {}
    )*};
}
plain_data!(bool char u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize f32 f64);

impl<T: PointeeSized> Clone for *const T {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: PointeeSized> Copy for *const T {}
impl<T: PointeeSized> Clone for *mut T {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: PointeeSized> Copy for *mut T {}
impl<T: PointeeSized> Clone for &T {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: PointeeSized> Copy for &T {}
impl<T: Copy, const N: usize> Clone for [T; N] {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Copy, const N: usize> Copy for [T; N] {}

/// A zero-sized marker that "owns" a `T` for variance and drop-check purposes.
#[lang = "phantom_data"]
pub struct PhantomData<T: PointeeSized>;
impl<T: PointeeSized> Clone for PhantomData<T> {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: PointeeSized> Copy for PhantomData<T> {}

/// Tuples (the argument lists of closures).
#[lang = "tuple_trait"]
pub trait Tuple {}

/// Closures callable once (by value).
#[lang = "fn_once"]
#[rustc_paren_sugar]
#[fundamental]
pub trait FnOnce<Args: Tuple> {
    #[lang = "fn_once_output"]
    type Output;
    extern "rust-call" fn call_once(self, args: Args) -> Self::Output;
}

/// Closures callable through `&mut self`.
#[lang = "fn_mut"]
#[rustc_paren_sugar]
#[fundamental]
pub trait FnMut<Args: Tuple>: FnOnce<Args> {
    extern "rust-call" fn call_mut(&mut self, args: Args) -> Self::Output;
}

/// Closures callable through `&self` (what the warp-reduction helpers take).
#[lang = "fn"]
#[rustc_paren_sugar]
#[fundamental]
pub trait Fn<Args: Tuple>: FnMut<Args> {
    extern "rust-call" fn call(&self, args: Args) -> Self::Output;
}

/// Destructors. Device types should be plain data; this exists for generic code.
#[lang = "drop"]
pub trait Drop {
    fn drop(&mut self);
}

/// Runs the destructor of `*to_drop`; rustc replaces the body with the type's drop glue.
///
/// # Safety
/// `to_drop` must be valid for reads and writes and point to an initialised value.
#[lang = "drop_in_place"]
#[allow(unconditional_recursion)]
pub unsafe fn drop_in_place<T: PointeeSized>(to_drop: *mut T) {
    unsafe { drop_in_place(to_drop) }
}

/// Inline assembly (see the PTX ISA for the instructions; `reg32`/`reg64`/`reg16` are
/// the NVPTX register classes).
#[rustc_builtin_macro]
pub macro asm("assembly template", $(operands,)* $(options($(option),*))?) {
    /* compiler built-in */
}

/// Module-scope assembly; [`crate::dcore::smem`] uses it to declare `.shared` arrays.
#[rustc_builtin_macro]
pub macro global_asm("assembly template", $(operands,)* $(options($(option),*))?) {
    /* compiler built-in */
}

/// Concatenates literals into one `&'static str` literal (used to build asm templates).
#[rustc_builtin_macro]
pub macro concat($($t:tt)*) {
    /* compiler built-in */
}

/// Turns tokens into a string literal.
#[rustc_builtin_macro]
pub macro stringify($($t:tt)*) {
    /* compiler built-in */
}

/// Evaluates a configuration predicate to a `bool`, e.g. `cfg!(target_feature = "sm_90a")`.
#[rustc_builtin_macro]
pub macro cfg($($t:tt)*) {
    /* compiler built-in */
}
