//! What a panic is on the device: a `trap`.
//!
//! rustc inserts calls to these lang items where Rust semantics demand a check:
//! array index out of bounds (`panic_bounds_check`), integer `/` or `%` by zero
//! (`panic_const_div_by_zero`, `panic_const_rem_by_zero`), `MIN / -1`, and — only
//! with `-C overflow-checks` or `-C debug-assertions`, which `build.rs` does not pass —
//! arithmetic overflow, misaligned or null dereference. There is no formatting on the
//! device and nowhere to print to, so every one of them is a `#[cold]`, never-inlined
//! function whose body is `trap; exit;`. A trap kills the whole launch: the host sees
//! `CUDA_ERROR_ILLEGAL_INSTRUCTION`/`CUDA_ERROR_LAUNCH_FAILED` at the next synchronising
//! call and the CUDA context is unusable afterwards, so kernels should be written so
//! these paths are unreachable: index with raw pointers under documented preconditions,
//! divide by values the kernel has checked, use [`super::intrinsics::unchecked_div`] in
//! hot loops where the divisor is known non-zero.
//!
//! The `track_caller` attribute is required by the ABI rustc uses for these calls (it
//! passes a [`Location`]); the location is simply ignored.

use super::intrinsics::abort;
use super::lang::stringify;

/// Source location rustc passes to `#[track_caller]` panics (layout fixed by rustc:
/// file name, line, column).
#[lang = "panic_location"]
pub struct Location<'a> {
    filename: *const str,
    line: u32,
    col: u32,
    _filename: super::lang::PhantomData<&'a str>,
}

impl Location<'_> {
    /// The 1-based line of the failed check.
    pub fn line(&self) -> u32 {
        self.line
    }
    /// The 1-based column of the failed check.
    pub fn column(&self) -> u32 {
        self.col
    }
    /// The file name as a raw string pointer.
    pub fn file_ptr(&self) -> *const str {
        self.filename
    }
}

/// Aborts the kernel (`trap; exit;`). Use for "cannot happen" paths.
#[cold]
#[inline(never)]
pub fn trap() -> ! {
    abort()
}

/// Defines `#[track_caller]` panic lang items without arguments.
macro_rules! panic_const {
    ($($name:ident)*) => {$(
        #[lang = stringify!($name)]
        #[cold]
        #[inline(never)]
        #[track_caller]
        fn $name() -> ! {
            abort()
        }
    )*};
}
panic_const!(
    panic_const_add_overflow panic_const_sub_overflow panic_const_mul_overflow
    panic_const_div_overflow panic_const_rem_overflow panic_const_neg_overflow
    panic_const_shr_overflow panic_const_shl_overflow panic_const_div_by_zero
    panic_const_rem_by_zero panic_const_coroutine_resumed panic_const_async_fn_resumed
    panic_const_async_gen_fn_resumed panic_const_gen_fn_none
    panic_const_coroutine_resumed_panic panic_const_async_fn_resumed_panic
    panic_const_async_gen_fn_resumed_panic panic_const_gen_fn_none_panic
    panic_const_coroutine_resumed_drop panic_const_async_fn_resumed_drop
    panic_const_async_gen_fn_resumed_drop panic_const_gen_fn_none_drop
);

#[lang = "panic"]
#[cold]
#[inline(never)]
#[track_caller]
fn panic(_msg: &'static str) -> ! {
    abort()
}

#[lang = "panic_nounwind"]
#[cold]
#[inline(never)]
#[rustc_nounwind]
fn panic_nounwind(_msg: &'static str) -> ! {
    abort()
}

#[lang = "panic_bounds_check"]
#[cold]
#[inline(never)]
#[track_caller]
fn panic_bounds_check(_index: usize, _len: usize) -> ! {
    abort()
}

#[lang = "panic_misaligned_pointer_dereference"]
#[cold]
#[inline(never)]
#[track_caller]
#[rustc_nounwind]
fn panic_misaligned_pointer_dereference(_required: usize, _found: usize) -> ! {
    abort()
}

#[lang = "panic_null_pointer_dereference"]
#[cold]
#[inline(never)]
#[track_caller]
#[rustc_nounwind]
fn panic_null_pointer_dereference() -> ! {
    abort()
}

#[lang = "panic_invalid_enum_construction"]
#[cold]
#[inline(never)]
#[track_caller]
#[rustc_nounwind]
fn panic_invalid_enum_construction(_source: u128) -> ! {
    abort()
}

#[lang = "panic_cannot_unwind"]
#[cold]
#[inline(never)]
#[rustc_nounwind]
fn panic_cannot_unwind() -> ! {
    abort()
}

#[lang = "panic_in_cleanup"]
#[cold]
#[inline(never)]
#[rustc_nounwind]
fn panic_in_cleanup() -> ! {
    abort()
}
