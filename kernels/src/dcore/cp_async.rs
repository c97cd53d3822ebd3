//! Asynchronous global → shared copies (`cp.async`, sm_80+; CUDA's `__pipeline_*` /
//! `cuda::memcpy_async`).
//!
//! A thread issues copies that complete in the background, groups them with
//! [`commit_group`], and waits with [`wait_group`]`::<N>()` (until at most `N` of its
//! most recent groups are pending) or [`wait_all`]. Waiting only covers the calling
//! thread's own copies: follow it with [`super::sync::sync_threads`] before other
//! threads read the data. `.ca` caches in L1 and L2, `.cg` (16 bytes only) bypasses L1 —
//! the usual choice for streaming tiles.
//!
//! # Safety (all copy functions)
//! `dst` is a shared address (see [`super::smem::to_shared`]) aligned to the copy size,
//! `src` a global pointer aligned to the copy size and valid for it; neither may be
//! touched by other means until the copy is waited for.

use super::lang::asm;

/// `cp.async.ca.shared.global [dst], [src], 4`.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
pub unsafe fn cp_async_ca_4<T>(dst: u32, src: *const T) {
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {s}; cp.async.ca.shared.global [{d}], [g], 4; }}",
            d = in(reg32) dst,
            s = in(reg64) src,
            options(nostack),
        );
    }
}

/// `cp.async.ca.shared.global [dst], [src], 8`.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
pub unsafe fn cp_async_ca_8<T>(dst: u32, src: *const T) {
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {s}; cp.async.ca.shared.global [{d}], [g], 8; }}",
            d = in(reg32) dst,
            s = in(reg64) src,
            options(nostack),
        );
    }
}

/// `cp.async.ca.shared.global [dst], [src], 16`.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
pub unsafe fn cp_async_ca_16<T>(dst: u32, src: *const T) {
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {s}; cp.async.ca.shared.global [{d}], [g], 16; }}",
            d = in(reg32) dst,
            s = in(reg64) src,
            options(nostack),
        );
    }
}

/// `cp.async.cg.shared.global [dst], [src], 16` (L2 only).
///
/// # Safety
/// See the module documentation.
#[inline(always)]
pub unsafe fn cp_async_cg_16<T>(dst: u32, src: *const T) {
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {s}; cp.async.cg.shared.global [{d}], [g], 16; }}",
            d = in(reg32) dst,
            s = in(reg64) src,
            options(nostack),
        );
    }
}

/// `cp.async.cg.shared.global [dst], [src], 16, src_bytes`: copies the first
/// `src_bytes` (0..=16) bytes and zero-fills the rest of the 16 — for tile edges.
/// With `src_bytes == 0` nothing is read and `src` only needs to be a valid-looking
/// global address.
///
/// # Safety
/// See the module documentation; `src` must be valid for `src_bytes`. Use `src_bytes`
/// of 16 or 0 only: compute-sanitizer's memcheck treats a partial source size as a full
/// 16-byte read and reports it past the end of an allocation (seen on an H200,
/// 2026-11-27), so ragged tails should be staged with plain loads instead.
#[inline(always)]
pub unsafe fn cp_async_cg_16_zfill<T>(dst: u32, src: *const T, src_bytes: u32) {
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {s}; cp.async.cg.shared.global [{d}], [g], 16, {n}; }}",
            d = in(reg32) dst,
            s = in(reg64) src,
            n = in(reg32) src_bytes,
            options(nostack),
        );
    }
}

/// `cp.async.commit_group`: closes the group of this thread's copies issued so far.
#[inline(always)]
pub fn commit_group() {
    unsafe { asm!("cp.async.commit_group;", options(nostack)) }
}

/// `cp.async.wait_group N`: waits until at most `N` of this thread's committed groups
/// are still in flight (`N = 0`: all).
#[inline(always)]
pub fn wait_group<const N: u32>() {
    unsafe { asm!("cp.async.wait_group {n};", n = const N, options(nostack)) }
}

/// `cp.async.wait_all`: commits and waits for all of this thread's copies.
#[inline(always)]
pub fn wait_all() {
    unsafe { asm!("cp.async.wait_all;", options(nostack)) }
}
