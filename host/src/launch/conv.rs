//! Launchers for the conv kernels.

use crate::registry::KernelSpec;

/// This family's kernels.
pub const KERNELS: &[KernelSpec] = &[];
