//! Raw-pointer methods (`p.add(i)`, `p.read()`, ...) — the way kernels address memory.
//!
//! Kernel arguments arrive as raw generic pointers and there are no slices on the
//! device, so element access is `*p.add(i)` under the kernel's documented
//! preconditions (`i < len`). `add`/`offset` are `getelementptr inbounds` (UB if the
//! result leaves the allocation); `wrapping_*` are plain address arithmetic. Offsets are
//! in elements, as in `core`. Nothing here can panic.

use super::intrinsics::{arith_offset, offset, read_via_copy, volatile_load, volatile_store, write_via_move};

/// The null pointer.
#[inline(always)]
pub const fn null<T>() -> *const T {
    0 as *const T
}

/// The null mutable pointer.
#[inline(always)]
pub const fn null_mut<T>() -> *mut T {
    0 as *mut T
}

macro_rules! ptr_common {
    ($ptr:ty) => {
        /// `self + count` elements.
        ///
        /// # Safety
        /// The result must stay inside (or one past) the same allocation.
        #[inline(always)]
        pub const unsafe fn add(self, count: usize) -> Self {
            unsafe { offset(self, count) }
        }
        /// `self - count` elements.
        ///
        /// # Safety
        /// As for [`add`](Self::add).
        #[inline(always)]
        pub const unsafe fn sub(self, count: usize) -> Self {
            unsafe { offset(self, 0isize - count as isize) }
        }
        /// `self + count` elements, `count` signed.
        ///
        /// # Safety
        /// As for [`add`](Self::add).
        #[inline(always)]
        pub const unsafe fn offset(self, count: isize) -> Self {
            unsafe { offset(self, count) }
        }
        /// `self + count` elements without the in-bounds promise (never UB by itself).
        #[inline(always)]
        pub fn wrapping_add(self, count: usize) -> Self {
            unsafe { arith_offset(self as *const T, count as isize) as $ptr }
        }
        /// `self + count` elements, signed, without the in-bounds promise.
        #[inline(always)]
        pub fn wrapping_offset(self, count: isize) -> Self {
            unsafe { arith_offset(self as *const T, count) as $ptr }
        }
        /// Reads the pointee.
        ///
        /// # Safety
        /// `self` must be valid for reads and aligned for `T`.
        #[inline(always)]
        pub unsafe fn read(self) -> T {
            unsafe { read_via_copy(self as *const T) }
        }
        /// Volatile read (never merged or removed; use for polling flags).
        ///
        /// # Safety
        /// As for [`read`](Self::read).
        #[inline(always)]
        pub unsafe fn read_volatile(self) -> T {
            unsafe { volatile_load(self as *const T) }
        }
        /// Whether the pointer is null.
        #[inline(always)]
        pub fn is_null(self) -> bool {
            self as *const u8 as usize == 0
        }
        /// The same address as a pointer to `U`.
        #[inline(always)]
        pub const fn cast<U>(self) -> *const U {
            self as *const U
        }
        /// The address as an integer.
        #[inline(always)]
        pub fn addr(self) -> usize {
            self as usize
        }
        /// Whether the address is a multiple of `align` (a power of two).
        #[inline(always)]
        pub fn is_aligned_to(self, align: usize) -> bool {
            (self as usize) & (align - 1) == 0
        }
    };
}

impl<T> *const T {
    ptr_common!(*const T);
}

impl<T> *mut T {
    ptr_common!(*mut T);

    /// Writes `val` to the pointee (no drop of the old value).
    ///
    /// # Safety
    /// `self` must be valid for writes and aligned for `T`.
    #[inline(always)]
    pub unsafe fn write(self, val: T) {
        unsafe { write_via_move(self, val) }
    }
    /// Volatile write.
    ///
    /// # Safety
    /// As for [`write`](Self::write).
    #[inline(always)]
    pub unsafe fn write_volatile(self, val: T) {
        unsafe { volatile_store(self, val) }
    }
    /// The same address as a mutable pointer to `U`.
    #[inline(always)]
    pub const fn cast_mut<U>(self) -> *mut U {
        self as *mut U
    }
    /// The same address as a `*const T`.
    #[inline(always)]
    pub const fn cast_const(self) -> *const T {
        self as *const T
    }
}
