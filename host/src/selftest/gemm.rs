//! Self-test cases for the gemm kernels.

use super::CaseFn;

pub(super) fn cases(_v: &mut Vec<(String, CaseFn)>) {}
