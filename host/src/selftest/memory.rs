//! Self-test cases for the memory kernels.

use super::CaseFn;

pub(super) fn cases(_v: &mut Vec<(String, CaseFn)>) {}
