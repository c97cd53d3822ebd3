//! Barriers and memory fences.
//!
//! Barriers go through LLVM's NVVM intrinsics, which LLVM knows are `convergent` (it
//! will not sink them into a branch or duplicate them across divergent paths — inline
//! asm would not carry that guarantee). All CTA barriers here are the `.aligned` forms:
//! every thread of the block (or of the named count) must reach the *same* barrier
//! instruction, i.e. never call them under thread-dependent control flow.
//!
//! Fences are inline PTX with a memory clobber, so the compiler also keeps ordinary
//! loads/stores on their side.

use super::lang::asm;

unsafe extern "C" {
    #[link_name = "llvm.nvvm.barrier.cta.sync.aligned.all"]
    fn bar_sync_all(id: u32);
    #[link_name = "llvm.nvvm.barrier.cta.sync.aligned.count"]
    fn bar_sync_count(id: u32, count: u32);
    #[link_name = "llvm.nvvm.barrier.cta.arrive.aligned.count"]
    fn bar_arrive_count(id: u32, count: u32);
    #[link_name = "llvm.nvvm.barrier.cta.red.popc.aligned.all"]
    fn bar_red_popc(id: u32, pred: bool) -> u32;
    #[link_name = "llvm.nvvm.barrier.cta.red.and.aligned.all"]
    fn bar_red_and(id: u32, pred: bool) -> bool;
    #[link_name = "llvm.nvvm.barrier.cta.red.or.aligned.all"]
    fn bar_red_or(id: u32, pred: bool) -> bool;
    #[link_name = "llvm.nvvm.bar.warp.sync"]
    fn bar_warp_sync(mask: u32);
    #[link_name = "llvm.nvvm.membar.cta"]
    fn membar_cta();
    #[link_name = "llvm.nvvm.membar.gl"]
    fn membar_gl();
    #[link_name = "llvm.nvvm.membar.sys"]
    fn membar_sys();
}

/// `__syncthreads()`: `bar.sync 0`. Waits for all threads of the block and makes their
/// shared- and global-memory writes visible to each other.
#[inline(always)]
pub fn sync_threads() {
    unsafe { bar_sync_all(0) }
}

/// `__syncthreads_count(p)`: barrier that returns how many threads passed `true`.
#[inline(always)]
pub fn sync_threads_count(pred: bool) -> u32 {
    unsafe { bar_red_popc(0, pred) }
}

/// `__syncthreads_and(p)`: barrier that returns whether all threads passed `true`.
#[inline(always)]
pub fn sync_threads_and(pred: bool) -> bool {
    unsafe { bar_red_and(0, pred) }
}

/// `__syncthreads_or(p)`: barrier that returns whether any thread passed `true`.
#[inline(always)]
pub fn sync_threads_or(pred: bool) -> bool {
    unsafe { bar_red_or(0, pred) }
}

/// Named barrier `bar.sync id, count`: waits until `count` threads (a multiple of 32)
/// have arrived at barrier `id` (0..16; 0 is the one [`sync_threads`] uses).
///
/// # Safety
/// All participating warps must use the same `id` and `count`; mismatches hang or are
/// undefined.
#[inline(always)]
pub unsafe fn barrier_sync(id: u32, count: u32) {
    unsafe { bar_sync_count(id, count) }
}

/// Named barrier arrive without waiting (`bar.arrive id, count`), for producer warps.
///
/// # Safety
/// As for [`barrier_sync`].
#[inline(always)]
pub unsafe fn barrier_arrive(id: u32, count: u32) {
    unsafe { bar_arrive_count(id, count) }
}

/// `__syncwarp(mask)`: `bar.warp.sync mask`. Every lane named in `mask` must call it
/// with the same mask.
#[inline(always)]
pub fn sync_warp(mask: u32) {
    unsafe { bar_warp_sync(mask) }
}

/// `__threadfence_block()`: `membar.cta`.
#[inline(always)]
pub fn threadfence_block() {
    unsafe { membar_cta() }
}

/// `__threadfence()`: `membar.gl` (device scope).
#[inline(always)]
pub fn threadfence() {
    unsafe { membar_gl() }
}

/// `__threadfence_system()`: `membar.sys` (also orders host-visible memory).
#[inline(always)]
pub fn threadfence_system() {
    unsafe { membar_sys() }
}

/// `fence.acq_rel.gpu`: acquire-release fence at device scope (sm_70+), the fence of
/// the PTX memory model that pairs with relaxed atomics (e.g. "last block done"
/// patterns).
#[inline(always)]
pub fn fence_acq_rel_gpu() {
    unsafe { asm!("fence.acq_rel.gpu;", options(nostack)) }
}

/// `fence.acq_rel.cta`: acquire-release fence at block scope.
#[inline(always)]
pub fn fence_acq_rel_cta() {
    unsafe { asm!("fence.acq_rel.cta;", options(nostack)) }
}

/// `fence.sc.gpu`: sequentially consistent fence at device scope.
#[inline(always)]
pub fn fence_sc_gpu() {
    unsafe { asm!("fence.sc.gpu;", options(nostack)) }
}
