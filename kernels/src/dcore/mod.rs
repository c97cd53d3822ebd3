//! The device core: what `core` would provide, plus the CUDA device API, for a
//! `#![no_core]` crate compiled by rustc's NVPTX backend.
//!
//! No `core` ships for `nvptx64-nvidia-cuda` and building one needs nightly
//! `-Zbuild-std`, so this crate defines the lang items rustc 1.95 requires itself and
//! only what kernels use. Kernels start with `use crate::dcore::prelude::*;`.
//!
//! | module | what | why |
//! |---|---|---|
//! | [`lang`] | `Sized`, `Copy`/`Clone`, auto traits, `Fn*`, `asm!`/`global_asm!`/`concat!` | the compiler's required lang items and builtin macros |
//! | [`intrinsics`] | rustc intrinsics (`transmute`, `sqrtf32`, `ctlz`, ...) | building blocks for the rest |
//! | [`panic`] | panic lang items = `trap` | index/div-by-zero checks need them; no formatting on device |
//! | [`ops`], [`cmp`] | operator and comparison traits for all numeric primitives | `a + b`, `a += b`, `a < b` type-check through them |
//! | [`num`] | `u32::MAX`, `min`, `max`, `leading_zeros`, `wrapping_*` ... | inherent integer API |
//! | [`iter`], [`option`] | `Range`, `Iterator`, `Option` | `for i in a..b` loops |
//! | [`ptr`] | `p.add(i)`, `read`, `write`, `cast` | raw-pointer addressing (no slices on device) |
//! | [`mem`] | `size_of`, `transmute`, `ld.global.nc`, `.v4` loads/stores | explicit global-memory access |
//! | [`math`] | `sqrt`, `fma`, accurate `exp`/`ln`/`tanh`/`sigmoid`, `*_fast` MUFU forms | no libm on NVPTX |
//! | [`half`] | `f16`, `bf16`, `half2`, `bf16x2` + conversions | tensor-core operands |
//! | [`sreg`] | `thread_idx_x()`, `block_dim_x()`, `lane_id()`, `WARP_SIZE` | special registers |
//! | [`sync`] | `sync_threads`, `sync_warp`, fences | barriers and memory ordering |
//! | [`warp`] | shuffles, votes, `redux`, warp reductions | warp-level cooperation |
//! | [`atomic`] | `atomic_add_f32`, `atomic_max_u32`, CAS, ... | global/shared atomics |
//! | [`smem`] | `shared_array!`, `dyn_smem`, `ld_shared_*` | shared memory (no addrspace statics in rustc) |
//! | [`cp_async`] | `cp.async` + commit/wait | async global→shared copies (sm_80) |
//! | [`mma`] | `mma.sync` f16/bf16/tf32, `ldmatrix`, fragment layouts | tensor cores (sm_80) |
//! | `hopper` | cluster, `elect.sync`, `setmaxnreg`, wgmma fences, `stmatrix` | sm_90a module only |

pub mod atomic;
pub mod cmp;
pub mod cp_async;
pub mod half;
#[cfg(target_feature = "sm_90a")]
pub mod hopper;
pub mod intrinsics;
pub mod iter;
pub mod lang;
pub mod math;
pub mod mem;
pub mod mma;
pub mod num;
pub mod ops;
pub mod option;
pub mod panic;
pub mod prelude;
pub mod ptr;
pub mod smem;
pub mod sreg;
pub mod sync;
pub mod warp;
