//! Iterators and ranges: what `for i in a..b { .. }` desugars to.
//!
//! rustc lowers `for` to `IntoIterator::into_iter` + a loop over `Iterator::next`
//! (`into_iter`/`next` lang items) matching `Some`/`None`. With `#[inline(always)]`
//! everywhere, `for i in a..b` compiles to the same counted loop as a hand-written
//! `while i < b { ..; i += 1 }` (one `setp` + one `add` per iteration, no `Option`
//! left in the PTX). Integer ranges are implemented per type (no `Step` trait).
//! `..=` ranges work too ([`RangeInclusive`]); they carry one extra flag so that
//! `0..=u32::MAX` terminates. As in `core`, one generic impl over [`Step`] serves all
//! integer types, so `for k in 0..4 { arr_u32[k as usize] = k }`-style literals infer
//! their type from use. There are no iterator adapters; ranges have an inherent
//! `step_by` for grid-stride loops (`for i in (tid..n).step_by(stride)`).

use super::cmp::PartialOrd;
use super::lang::Copy;
use super::option::{None, Option, Some};

/// Anything `for` can loop over.
pub trait IntoIterator {
    type Item;
    type IntoIter: Iterator<Item = Self::Item>;
    #[lang = "into_iter"]
    fn into_iter(self) -> Self::IntoIter;
}

/// A sequence of values produced one at a time.
#[lang = "iterator"]
pub trait Iterator {
    type Item;
    #[lang = "next"]
    fn next(&mut self) -> Option<Self::Item>;
}

impl<I: Iterator> IntoIterator for I {
    type Item = I::Item;
    type IntoIter = I;
    #[inline(always)]
    fn into_iter(self) -> I {
        self
    }
}

/// Integer types a range can iterate over.
pub trait Step: Copy + PartialOrd {
    /// `self + 1` (never called on the type's maximum by the range iterators).
    fn forward_one(self) -> Self;
    /// `self + n`, saturating at the type's maximum.
    fn forward_sat(self, n: Self) -> Self;
    /// `end - start` as `usize` for `start <= end`.
    fn distance(start: Self, end: Self) -> usize;
}

macro_rules! step_impls {
    ($($t:ty)*) => {$(
        impl Step for $t {
            #[inline(always)]
            fn forward_one(self) -> $t {
                self + 1
            }
            #[inline(always)]
            fn forward_sat(self, n: $t) -> $t {
                self.saturating_add(n)
            }
            #[inline(always)]
            fn distance(start: $t, end: $t) -> usize {
                end.wrapping_sub(start) as usize
            }
        }
    )*};
}
step_impls!(u8 u16 u32 u64 usize i8 i16 i32 i64 isize);

/// `start..end`: `start <= x < end`.
#[lang = "Range"]
pub struct Range<Idx> {
    pub start: Idx,
    pub end: Idx,
}

/// `start..`: `start <= x` (iterating past the type's maximum is an overflow: it wraps).
#[lang = "RangeFrom"]
pub struct RangeFrom<Idx> {
    pub start: Idx,
}

/// `start..=end`: `start <= x <= end`.
#[lang = "RangeInclusive"]
pub struct RangeInclusive<Idx> {
    start: Idx,
    end: Idx,
    exhausted: bool,
}

impl<Idx> RangeInclusive<Idx> {
    /// What `a..=b` calls.
    #[lang = "range_inclusive_new"]
    #[inline(always)]
    pub const fn new(start: Idx, end: Idx) -> Self {
        RangeInclusive { start, end, exhausted: false }
    }
}

/// `(start..end).step_by(step)`: `start, start + step, ...` while `< end`.
pub struct RangeStep<Idx> {
    start: Idx,
    end: Idx,
    step: Idx,
}

impl<A: Step> Iterator for Range<A> {
    type Item = A;
    #[inline(always)]
    fn next(&mut self) -> Option<A> {
        if self.start < self.end {
            let n = self.start;
            self.start = n.forward_one();
            Some(n)
        } else {
            None
        }
    }
}

impl<A: Step> Range<A> {
    /// Number of values in the range.
    #[inline(always)]
    pub fn len(&self) -> usize {
        if self.start < self.end {
            A::distance(self.start, self.end)
        } else {
            0
        }
    }
    /// Whether the range holds no values.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        !(self.start < self.end)
    }
    /// Whether `x` lies in the range.
    #[inline(always)]
    pub fn contains(&self, x: A) -> bool {
        self.start <= x && x < self.end
    }
    /// `start, start + step, ...` while `< end` — the grid-stride loop
    /// `for i in (tid..n).step_by(stride)`. Unlike `core`, `step` has the range's own
    /// type (no `usize` casts in kernels). Stepping saturates, so it never wraps past
    /// `end` (costs one `min` per iteration). A zero `step` repeats `start` forever.
    #[inline(always)]
    pub fn step_by(self, step: A) -> RangeStep<A> {
        RangeStep { start: self.start, end: self.end, step }
    }
}

impl<A: Step> Iterator for RangeStep<A> {
    type Item = A;
    #[inline(always)]
    fn next(&mut self) -> Option<A> {
        if self.start < self.end {
            let n = self.start;
            self.start = n.forward_sat(self.step);
            Some(n)
        } else {
            None
        }
    }
}

impl<A: Step> Iterator for RangeFrom<A> {
    type Item = A;
    #[inline(always)]
    fn next(&mut self) -> Option<A> {
        let n = self.start;
        self.start = n.forward_one();
        Some(n)
    }
}

impl<A: Step> Iterator for RangeInclusive<A> {
    type Item = A;
    #[inline(always)]
    fn next(&mut self) -> Option<A> {
        if self.exhausted || self.start > self.end {
            return None;
        }
        let n = self.start;
        if n < self.end {
            self.start = n.forward_one();
        } else {
            self.exhausted = true;
        }
        Some(n)
    }
}

impl<A: Step> RangeInclusive<A> {
    /// Whether `x` lies in the range.
    #[inline(always)]
    pub fn contains(&self, x: A) -> bool {
        self.start <= x && x <= self.end
    }
}
