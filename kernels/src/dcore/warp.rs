//! Warp-level primitives: shuffles, votes, `redux`, and reductions built on them.
//!
//! All are the `.sync` forms (required since Volta's independent thread scheduling):
//! `mask` names the lanes that participate, every lane in `mask` must execute the same
//! call, and a lane may only read from a lane in `mask`. [`FULL_MASK`] is the usual
//! argument when the whole warp is converged. Through the NVVM intrinsics (convergent
//! to LLVM), e.g. `shfl.sync.bfly.b32 d, a, lane_mask, 0x1f, mask`.
//!
//! Shuffle `c` operand (PTX): `((32 - width) << 8) | clamp`, where `clamp` is 31 for
//! `down`/`bfly`/`idx` and 0 for `up`; the plain functions use `width = 32`, the `_w`
//! variants take a power-of-two sub-warp `width` (CUDA's `width` argument).

use super::lang::{Copy, Fn};
use super::sreg::lane_id;

/// All 32 lanes.
pub const FULL_MASK: u32 = 0xffff_ffff;

unsafe extern "C" {
    #[link_name = "llvm.nvvm.shfl.sync.down.i32"]
    fn shfl_down_i32(mask: u32, v: u32, delta: u32, c: u32) -> u32;
    #[link_name = "llvm.nvvm.shfl.sync.up.i32"]
    fn shfl_up_i32(mask: u32, v: u32, delta: u32, c: u32) -> u32;
    #[link_name = "llvm.nvvm.shfl.sync.bfly.i32"]
    fn shfl_bfly_i32(mask: u32, v: u32, lane_mask: u32, c: u32) -> u32;
    #[link_name = "llvm.nvvm.shfl.sync.idx.i32"]
    fn shfl_idx_i32(mask: u32, v: u32, lane: u32, c: u32) -> u32;
    #[link_name = "llvm.nvvm.shfl.sync.down.f32"]
    fn shfl_down_f32_(mask: u32, v: f32, delta: u32, c: u32) -> f32;
    #[link_name = "llvm.nvvm.shfl.sync.up.f32"]
    fn shfl_up_f32_(mask: u32, v: f32, delta: u32, c: u32) -> f32;
    #[link_name = "llvm.nvvm.shfl.sync.bfly.f32"]
    fn shfl_bfly_f32(mask: u32, v: f32, lane_mask: u32, c: u32) -> f32;
    #[link_name = "llvm.nvvm.shfl.sync.idx.f32"]
    fn shfl_idx_f32_(mask: u32, v: f32, lane: u32, c: u32) -> f32;
    #[link_name = "llvm.nvvm.vote.all.sync"]
    fn vote_all(mask: u32, p: bool) -> bool;
    #[link_name = "llvm.nvvm.vote.any.sync"]
    fn vote_any(mask: u32, p: bool) -> bool;
    #[link_name = "llvm.nvvm.vote.ballot.sync"]
    fn vote_ballot(mask: u32, p: bool) -> u32;
    #[link_name = "llvm.nvvm.activemask"]
    fn activemask_() -> u32;
    #[link_name = "llvm.nvvm.redux.sync.add"]
    fn redux_add(v: u32, mask: u32) -> u32;
    #[link_name = "llvm.nvvm.redux.sync.umax"]
    fn redux_umax(v: u32, mask: u32) -> u32;
    #[link_name = "llvm.nvvm.redux.sync.umin"]
    fn redux_umin(v: u32, mask: u32) -> u32;
    #[link_name = "llvm.nvvm.redux.sync.max"]
    fn redux_max(v: i32, mask: u32) -> i32;
    #[link_name = "llvm.nvvm.redux.sync.min"]
    fn redux_min(v: i32, mask: u32) -> i32;
}

#[inline(always)]
const fn seg(width: u32) -> u32 {
    (32 - width) << 8
}

/// `__shfl_down_sync(mask, v, delta)`: value of lane `lane + delta`; lanes whose
/// source is out of range keep their own `v`.
#[inline(always)]
pub fn shfl_down_u32(mask: u32, v: u32, delta: u32) -> u32 {
    unsafe { shfl_down_i32(mask, v, delta, 0x1f) }
}
/// `__shfl_up_sync(mask, v, delta)`: value of lane `lane - delta` (own `v` for
/// `lane < delta`).
#[inline(always)]
pub fn shfl_up_u32(mask: u32, v: u32, delta: u32) -> u32 {
    unsafe { shfl_up_i32(mask, v, delta, 0) }
}
/// `__shfl_xor_sync(mask, v, lane_mask)`: value of lane `lane ^ lane_mask`.
#[inline(always)]
pub fn shfl_xor_u32(mask: u32, v: u32, lane_mask: u32) -> u32 {
    unsafe { shfl_bfly_i32(mask, v, lane_mask, 0x1f) }
}
/// `__shfl_sync(mask, v, src)`: value of lane `src % 32`.
#[inline(always)]
pub fn shfl_idx_u32(mask: u32, v: u32, src: u32) -> u32 {
    unsafe { shfl_idx_i32(mask, v, src, 0x1f) }
}
/// [`shfl_down_u32`] for `f32`.
#[inline(always)]
pub fn shfl_down_f32(mask: u32, v: f32, delta: u32) -> f32 {
    unsafe { shfl_down_f32_(mask, v, delta, 0x1f) }
}
/// [`shfl_up_u32`] for `f32`.
#[inline(always)]
pub fn shfl_up_f32(mask: u32, v: f32, delta: u32) -> f32 {
    unsafe { shfl_up_f32_(mask, v, delta, 0) }
}
/// [`shfl_xor_u32`] for `f32`.
#[inline(always)]
pub fn shfl_xor_f32(mask: u32, v: f32, lane_mask: u32) -> f32 {
    unsafe { shfl_bfly_f32(mask, v, lane_mask, 0x1f) }
}
/// [`shfl_idx_u32`] for `f32`.
#[inline(always)]
pub fn shfl_idx_f32(mask: u32, v: f32, src: u32) -> f32 {
    unsafe { shfl_idx_f32_(mask, v, src, 0x1f) }
}
/// [`shfl_down_u32`] within independent segments of `width` lanes (a power of two
/// ≤ 32).
#[inline(always)]
pub fn shfl_down_u32_w(mask: u32, v: u32, delta: u32, width: u32) -> u32 {
    unsafe { shfl_down_i32(mask, v, delta, seg(width) | 0x1f) }
}
/// [`shfl_up_u32`] within segments of `width` lanes.
#[inline(always)]
pub fn shfl_up_u32_w(mask: u32, v: u32, delta: u32, width: u32) -> u32 {
    unsafe { shfl_up_i32(mask, v, delta, seg(width)) }
}
/// [`shfl_xor_u32`] within segments of `width` lanes.
#[inline(always)]
pub fn shfl_xor_u32_w(mask: u32, v: u32, lane_mask: u32, width: u32) -> u32 {
    unsafe { shfl_bfly_i32(mask, v, lane_mask, seg(width) | 0x1f) }
}
/// [`shfl_idx_u32`] within segments of `width` lanes (`src` relative to the segment).
#[inline(always)]
pub fn shfl_idx_u32_w(mask: u32, v: u32, src: u32, width: u32) -> u32 {
    unsafe { shfl_idx_i32(mask, v, src, seg(width) | 0x1f) }
}
/// [`shfl_xor_f32`] within segments of `width` lanes.
#[inline(always)]
pub fn shfl_xor_f32_w(mask: u32, v: f32, lane_mask: u32, width: u32) -> f32 {
    unsafe { shfl_bfly_f32(mask, v, lane_mask, seg(width) | 0x1f) }
}
/// [`shfl_idx_f32`] within segments of `width` lanes.
#[inline(always)]
pub fn shfl_idx_f32_w(mask: u32, v: f32, src: u32, width: u32) -> f32 {
    unsafe { shfl_idx_f32_(mask, v, src, seg(width) | 0x1f) }
}

/// `__all_sync`: whether `p` holds on every lane in `mask`.
#[inline(always)]
pub fn all_sync(mask: u32, p: bool) -> bool {
    unsafe { vote_all(mask, p) }
}
/// `__any_sync`: whether `p` holds on some lane in `mask`.
#[inline(always)]
pub fn any_sync(mask: u32, p: bool) -> bool {
    unsafe { vote_any(mask, p) }
}
/// `__ballot_sync`: bit `i` set iff lane `i` is in `mask` and passed `true`.
#[inline(always)]
pub fn ballot_sync(mask: u32, p: bool) -> u32 {
    unsafe { vote_ballot(mask, p) }
}
/// `__activemask()`: the lanes currently executing (not a synchronisation point).
#[inline(always)]
pub fn activemask() -> u32 {
    unsafe { activemask_() }
}
/// Bit mask of the lanes below this one (`%lanemask_lt`).
#[inline(always)]
pub fn lanemask_lt() -> u32 {
    (1u32 << lane_id()) - 1
}

/// `__reduce_add_sync` (sm_80+ `redux.sync.add.u32`): wrapping sum over `mask`, in
/// every participating lane.
#[inline(always)]
pub fn reduce_add_u32(mask: u32, v: u32) -> u32 {
    unsafe { redux_add(v, mask) }
}
/// `__reduce_max_sync` for `u32` (`redux.sync.max.u32`).
#[inline(always)]
pub fn reduce_max_u32(mask: u32, v: u32) -> u32 {
    unsafe { redux_umax(v, mask) }
}
/// `__reduce_min_sync` for `u32` (`redux.sync.min.u32`).
#[inline(always)]
pub fn reduce_min_u32(mask: u32, v: u32) -> u32 {
    unsafe { redux_umin(v, mask) }
}
/// `__reduce_max_sync` for `i32` (`redux.sync.max.s32`).
#[inline(always)]
pub fn reduce_max_i32(mask: u32, v: i32) -> i32 {
    unsafe { redux_max(v, mask) }
}
/// `__reduce_min_sync` for `i32` (`redux.sync.min.s32`).
#[inline(always)]
pub fn reduce_min_i32(mask: u32, v: i32) -> i32 {
    unsafe { redux_min(v, mask) }
}

/// Butterfly all-reduce of `v` over the full, converged warp with the associative,
/// commutative `op` (5 `shfl.sync.bfly` steps). Every lane gets the result; the
/// combination order is the same in every lane, so the result is bitwise identical
/// across lanes even for floats.
#[inline(always)]
pub fn allreduce_f32<F: Fn(f32, f32) -> f32>(v: f32, op: F) -> f32 {
    let mut v = v;
    let mut m = 16;
    while m > 0 {
        v = op(v, shfl_xor_f32(FULL_MASK, v, m));
        m >>= 1;
    }
    v
}

/// Sum over the full warp, in every lane (tree order: lanes paired by xor 16, 8, 4,
/// 2, 1).
#[inline(always)]
pub fn sum_f32(v: f32) -> f32 {
    allreduce_f32(v, |a, b| a + b)
}

/// Maximum over the full warp (IEEE maxNum: NaNs are ignored unless all are NaN).
#[inline(always)]
pub fn max_f32(v: f32) -> f32 {
    allreduce_f32(v, |a, b| a.max(b))
}

/// Minimum over the full warp (IEEE minNum).
#[inline(always)]
pub fn min_f32(v: f32) -> f32 {
    allreduce_f32(v, |a, b| a.min(b))
}

/// Broadcasts lane `src`'s value of any 4-byte `Copy` type.
///
/// # Safety
/// `T` must be exactly 4 bytes.
#[inline(always)]
pub unsafe fn broadcast<T: Copy>(v: T, src: u32) -> T {
    unsafe {
        let bits: u32 = super::intrinsics::transmute_unchecked(v);
        super::intrinsics::transmute_unchecked(shfl_idx_u32(FULL_MASK, bits, src))
    }
}
