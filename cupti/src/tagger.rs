//! CUPTI callback API: tag every kernel launch with the runtime's current layer.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use cudarc::cupti::{result, sys};

use crate::error::{Error, Result};
use crate::tags::{TagCell, TagTable};

/// The driver API calls that launch kernels (and their per-thread-stream variants).
pub const LAUNCH_CBIDS: [sys::CUpti_driver_api_trace_cbid_enum; 8] = {
    use sys::CUpti_driver_api_trace_cbid_enum as C;
    [
        C::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel,
        C::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz,
        C::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx,
        C::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz,
        C::CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel,
        C::CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz,
        C::CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch,
        C::CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz,
    ]
};

struct TaggerState {
    cell: Arc<TagCell>,
    table: Arc<TagTable>,
    launches: AtomicU64,
}

static TAGGER_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Subscribes to the kernel-launch driver API callbacks; at API *enter* it copies the
/// [`TagCell`]'s current tag into the [`TagTable`] under the call's correlation id (the
/// same id the kernel's activity record carries). The callback does two atomic loads,
/// one CAS and two stores: no allocation, lock or string work.
///
/// One per process (CUPTI allows a single subscriber). Requires libcupti to be loaded
/// (cnnergy-host's `libs::load(Lib::Cupti)`); otherwise [`Error::LibraryMissing`].
pub struct LaunchTagger {
    subscriber: sys::CUpti_SubscriberHandle,
    state: &'static TaggerState,
}

// The handle is an opaque CUPTI pointer usable from any thread.
unsafe impl Send for LaunchTagger {}

/// # Safety
/// Called by CUPTI with `userdata` = the `&'static TaggerState` given to
/// `cuptiSubscribe` and, for the driver API domain, `cbdata` = a `CUpti_CallbackData`.
unsafe extern "C" fn on_driver_api(
    userdata: *mut c_void,
    domain: sys::CUpti_CallbackDomain,
    _cbid: sys::CUpti_CallbackId,
    cbdata: *const c_void,
) {
    if domain != sys::CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API || userdata.is_null() || cbdata.is_null() {
        return;
    }
    // SAFETY: see the function's contract.
    let (st, d) = unsafe { (&*(userdata as *const TaggerState), &*(cbdata as *const sys::CUpti_CallbackData)) };
    if d.callbackSite != sys::CUpti_ApiCallbackSite::CUPTI_API_ENTER {
        return;
    }
    st.launches.fetch_add(1, Ordering::Relaxed);
    st.table.insert(d.correlationId, st.cell.get());
}

impl LaunchTagger {
    pub fn new(cell: Arc<TagCell>, table: Arc<TagTable>) -> Result<LaunchTagger> {
        crate::ensure_library()?;
        if TAGGER_ACTIVE.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyActive("LaunchTagger"));
        }
        // Leaked: CUPTI may still be inside the callback on another thread while we
        // unsubscribe, so the state must outlive the subscription (a few bytes, once).
        let state: &'static TaggerState = Box::leak(Box::new(TaggerState { cell, table, launches: AtomicU64::new(0) }));
        let mut subscriber: sys::CUpti_SubscriberHandle = std::ptr::null_mut();
        // SAFETY: valid out-pointer; callback has the CUpti_CallbackFunc signature and
        // userdata lives forever.
        let r = unsafe {
            result::subscribe(&mut subscriber, Some(on_driver_api), state as *const TaggerState as *mut c_void)
        };
        if let Err(e) = r {
            TAGGER_ACTIVE.store(false, Ordering::Release);
            return Err(Error::cupti("cuptiSubscribe", e));
        }
        let tagger = LaunchTagger { subscriber, state };
        for cbid in LAUNCH_CBIDS {
            // SAFETY: subscriber is live.
            unsafe {
                result::enable_callback(
                    1,
                    subscriber,
                    sys::CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API,
                    cbid as u32,
                )
            }
            .map_err(|e| Error::cupti("cuptiEnableCallback", e))?;
        }
        Ok(tagger)
    }

    /// Launch API calls seen so far.
    pub fn launches(&self) -> u64 {
        self.state.launches.load(Ordering::Relaxed)
    }
    pub fn table(&self) -> &Arc<TagTable> {
        &self.state.table
    }
}

impl Drop for LaunchTagger {
    fn drop(&mut self) {
        // SAFETY: subscriber came from cuptiSubscribe and is unsubscribed once.
        let _ = unsafe { result::unsubscribe(self.subscriber) };
        TAGGER_ACTIVE.store(false, Ordering::Release);
    }
}
