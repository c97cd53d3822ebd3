//! cnnergy's GPU kernels, compiled by rustc's NVPTX backend.
//!
//! No `core` ships for `nvptx64-nvidia-cuda`, so this crate is `#![no_core]` and brings
//! its own device core ([`dcore`]; kernels `use crate::dcore::prelude::*;`). Kernels are
//! `extern "ptx-kernel"` functions with `#[no_mangle]` names; the host registry
//! (`cnnergy-host`) maps layer types and variants onto these names. [`selftest`] holds
//! the `core_*` kernels that check the device core on a real GPU (see
//! `kernels/SELFTEST.md`).
#![feature(
    no_core,
    lang_items,
    abi_ptx,
    rustc_attrs,
    intrinsics,
    link_llvm_intrinsics,
    decl_macro,
    asm_experimental_arch,
    auto_traits,
    negative_impls,
    fundamental,
    unboxed_closures
)]
#![allow(internal_features, non_camel_case_types, clippy::missing_safety_doc)]
#![no_core]
// Lets `dcore` give primitives and raw pointers inherent methods (`x.sqrt()`,
// `p.add(i)`), as `core` does.
#![rustc_coherence_is_core]

pub mod concat;
pub mod conv;
pub mod convert;
pub mod dcore;
pub mod depthwise;
pub mod eltwise;
pub mod gemm;
pub mod norm;
pub mod params;
pub mod pool;
pub mod selftest;
pub mod smallm;
pub mod softmax;
pub mod tensorcore;
pub mod vector;
