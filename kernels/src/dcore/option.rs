//! `Option`, which `for` loops need (`Iterator::next` returns one) and which kernels can
//! use for "maybe a value" results. Methods that would panic in `core` (`unwrap`,
//! `expect`) trap here; prefer `unwrap_or`/`match`.

use super::lang::{Clone, Copy, FnOnce};
use super::panic::trap;

/// An optional value.
#[lang = "Option"]
pub enum Option<T> {
    /// No value.
    #[lang = "None"]
    None,
    /// Some value of type `T`.
    #[lang = "Some"]
    Some(T),
}
pub use Option::{None, Some};

impl<T: Copy> Clone for Option<T> {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Copy> Copy for Option<T> {}

impl<T> Option<T> {
    /// Whether this is `Some`.
    #[inline(always)]
    pub fn is_some(&self) -> bool {
        matches_some(self)
    }
    /// Whether this is `None`.
    #[inline(always)]
    pub fn is_none(&self) -> bool {
        !matches_some(self)
    }
    /// The value, or `default`.
    #[inline(always)]
    pub fn unwrap_or(self, default: T) -> T {
        match self {
            Some(v) => v,
            None => default,
        }
    }
    /// The value, or `f()`.
    #[inline(always)]
    pub fn unwrap_or_else<F: FnOnce() -> T>(self, f: F) -> T {
        match self {
            Some(v) => v,
            None => f(),
        }
    }
    /// The value; **traps** the kernel on `None`.
    #[inline(always)]
    pub fn unwrap(self) -> T {
        match self {
            Some(v) => v,
            None => trap(),
        }
    }
    /// The value without a check.
    ///
    /// # Safety
    /// `self` must be `Some`.
    #[inline(always)]
    pub unsafe fn unwrap_unchecked(self) -> T {
        match self {
            Some(v) => v,
            None => unsafe { super::intrinsics::unreachable() },
        }
    }
    /// Applies `f` to the value.
    #[inline(always)]
    pub fn map<U, F: FnOnce(T) -> U>(self, f: F) -> Option<U> {
        match self {
            Some(v) => Some(f(v)),
            None => None,
        }
    }
    /// Chains a computation that may fail.
    #[inline(always)]
    pub fn and_then<U, F: FnOnce(T) -> Option<U>>(self, f: F) -> Option<U> {
        match self {
            Some(v) => f(v),
            None => None,
        }
    }
    /// `self` if `Some`, else `other`.
    #[inline(always)]
    pub fn or(self, other: Option<T>) -> Option<T> {
        match self {
            Some(v) => Some(v),
            None => other,
        }
    }
}

#[inline(always)]
fn matches_some<T>(o: &Option<T>) -> bool {
    match o {
        Some(_) => true,
        None => false,
    }
}
