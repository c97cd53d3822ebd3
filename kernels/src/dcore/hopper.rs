//! Hopper-only (sm_90 / sm_90a) helpers; compiled into the `sm_90a` module only.
//!
//! `mod.rs` includes this module under `#[cfg(target_feature = "sm_90a")]`: on NVPTX
//! rustc exposes `-C target-cpu` as target features (`rustc --print cfg
//! -C target-cpu=sm_90a` lists `sm_90a`, `sm_90`, ..., `ptx80`), so the `sm_80` module
//! never contains these instructions. Kernels that use them must be gated the same way
//! (and the host must only launch them from the sm_90a module). `wgmma.mma_async` itself
//! is not wrapped yet; the fence/commit/wait around it are.

use super::lang::asm;

/// This block's rank within its cluster (`%cluster_ctarank`).
#[inline(always)]
pub fn cluster_ctarank() -> u32 {
    let r: u32;
    unsafe { asm!("mov.u32 {r}, %cluster_ctarank;", r = out(reg32) r, options(pure, nomem, nostack)) };
    r
}

/// Number of blocks in this block's cluster (`%cluster_nctarank`).
#[inline(always)]
pub fn cluster_nctarank() -> u32 {
    let r: u32;
    unsafe { asm!("mov.u32 {r}, %cluster_nctarank;", r = out(reg32) r, options(pure, nomem, nostack)) };
    r
}

/// `elect.sync`: `true` in exactly one lane of `mask` (all lanes of `mask` must call).
#[inline(always)]
pub fn elect_one_sync(mask: u32) -> bool {
    let r: u32;
    unsafe {
        asm!(
            "{{ .reg .pred p; .reg .b32 l; elect.sync l|p, {m}; selp.u32 {r}, 1, 0, p; }}",
            m = in(reg32) mask,
            r = out(reg32) r,
            options(nomem, nostack),
        )
    };
    r != 0
}

/// `fence.proxy.async.shared::cta`: orders generic-proxy shared-memory writes before
/// async-proxy reads (TMA stores, wgmma operands).
#[inline(always)]
pub fn fence_proxy_async_shared_cta() {
    unsafe { asm!("fence.proxy.async.shared::cta;", options(nostack)) }
}

/// `barrier.cluster.arrive` + `barrier.cluster.wait`: all threads of all blocks of the
/// cluster.
#[inline(always)]
pub fn cluster_sync() {
    unsafe { asm!("barrier.cluster.arrive.aligned; barrier.cluster.wait.aligned;", options(nostack)) }
}

/// `setmaxnreg.inc.sync.aligned.u32 N` (sm_90a): raise this warpgroup's register limit.
/// `N` is a multiple of 8 in 24..=256.
#[inline(always)]
pub fn setmaxnreg_inc<const N: u32>() {
    unsafe { asm!("setmaxnreg.inc.sync.aligned.u32 {n};", n = const N, options(nostack)) }
}

/// `setmaxnreg.dec.sync.aligned.u32 N` (sm_90a): lower this warpgroup's register limit.
#[inline(always)]
pub fn setmaxnreg_dec<const N: u32>() {
    unsafe { asm!("setmaxnreg.dec.sync.aligned.u32 {n};", n = const N, options(nostack)) }
}

/// `wgmma.fence.sync.aligned`: before the first `wgmma.mma_async` touching registers.
#[inline(always)]
pub fn wgmma_fence() {
    unsafe { asm!("wgmma.fence.sync.aligned;", options(nostack)) }
}

/// `wgmma.commit_group.sync.aligned`.
#[inline(always)]
pub fn wgmma_commit_group() {
    unsafe { asm!("wgmma.commit_group.sync.aligned;", options(nostack)) }
}

/// `wgmma.wait_group.sync.aligned N`: wait until at most `N` wgmma groups are pending.
#[inline(always)]
pub fn wgmma_wait_group<const N: u32>() {
    unsafe { asm!("wgmma.wait_group.sync.aligned {n};", n = const N, options(nostack)) }
}

/// `stmatrix.sync.aligned.m8n8.x4.shared.b16` (sm_90): the inverse of
/// [`super::mma::ldmatrix_x4`] — same lane→row-address and register layout.
///
/// # Safety
/// `addr` as for `ldmatrix_x4`; all 32 lanes must call.
#[inline(always)]
pub unsafe fn stmatrix_x4(addr: u32, r: [u32; 4]) {
    unsafe {
        asm!(
            "stmatrix.sync.aligned.m8n8.x4.shared.b16 [{a}], {{{r0}, {r1}, {r2}, {r3}}};",
            a = in(reg32) addr,
            r0 = in(reg32) r[0],
            r1 = in(reg32) r[1],
            r2 = in(reg32) r[2],
            r3 = in(reg32) r[3],
            options(nostack),
        );
    }
}
