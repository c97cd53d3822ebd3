//! cnnergy's GPU kernels, compiled by rustc's NVPTX backend.
//!
//! No `core` ships for `nvptx64-nvidia-cuda`, so this crate is `#![no_core]` and brings
//! its own small device core ([`dcore`]). Kernels are `extern "ptx-kernel"` functions
//! with `#[no_mangle]` names; the host registry (`cnnergy-host`) maps layer types and
//! variants onto these names.
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
    fundamental
)]
#![allow(internal_features, non_camel_case_types, clippy::missing_safety_doc)]
#![no_core]

pub mod dcore;
pub mod vector;
