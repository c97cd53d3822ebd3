//! What a kernel file imports with `use crate::dcore::prelude::*;`: the traits and
//! types `core`'s prelude would give (`Copy`, `Option`, `Some`, ...), the builtin macros,
//! the index/sync functions, and the other modules by name (`warp::sum_f32`,
//! `math::fma`, `smem::dyn_smem`, ...).

pub use super::cmp::{max, min, Eq, PartialEq, PartialOrd};
pub use super::iter::{IntoIterator, Iterator};
pub use super::lang::{asm, cfg, concat, stringify, Clone, Copy, Drop, Fn, FnMut, FnOnce, PhantomData, Sized};
pub use super::option::{None, Option, Some};
pub use super::panic::trap;
pub use super::ptr::{null, null_mut};
#[allow(unused_imports)]
pub(crate) use super::smem::{shared_array, shared_array_addr};
pub use super::sreg::*;
pub use super::sync::{sync_threads, sync_warp};

pub use super::half::{bf16, bf16x2, f16, half2};
pub use super::math::fma;
pub use super::mem::{f32x2, f32x4, u32x4};
pub use super::{atomic, cp_async, half, math, mem, mma, smem, sync, warp};

#[cfg(target_feature = "sm_90a")]
pub use super::hopper;
