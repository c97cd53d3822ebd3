//! cnnergy's CUPTI layer: tag kernel launches with layers and collect kernel activity
//! records (see `docs/design.md`, "CUPTI: tagging kernels with layers").
//!
//! * [`layout`] — pure, GPU-free parsing of activity buffers ([`parse_buffer`]), with
//!   field offsets chosen from the runtime CUPTI version ([`RecordLayout`]).
//! * [`tags`] — lock-free [`TagCell`] / [`TagTable`] and the CUDA-graph node map.
//! * [`pool`] — the preallocated activity-buffer pool.
//! * [`LaunchTagger`] (callback API) and [`ActivityCollector`] (activity API).
//!
//! # Precondition: libcupti must be loaded
//!
//! cudarc (dynamic loading) panics when a CUPTI function is called and libcupti cannot
//! be found. Run cnnergy-host's `libs::load(Lib::Cupti)` first (it preloads
//! `libcupti.so.13` by absolute path). Every entry point here that touches CUPTI checks
//! [`library_present`] first and returns [`Error::LibraryMissing`] instead of panicking.

pub mod collector;
pub mod error;
pub mod layout;
pub mod names;
pub mod pool;
pub mod tagger;
pub mod tags;

pub use collector::{dump_header, parse_dump, ActivityCollector, CollectorConfig, Event, Stats};
pub use error::{Error, Result};
pub use layout::{parse_buffer, parse_record, KernelRecord, ParseSummary, Record, RecordLayout, Stop};
pub use names::NameInterner;
pub use pool::BufferPool;
pub use tagger::LaunchTagger;
pub use tags::{GraphNodeLayers, Tag, TagCell, TagTable};

use cudarc::cupti::sys;

/// Whether libcupti can be loaded (`dlopen` succeeds for one of cudarc's candidate
/// names; after cnnergy-host's preload the already-loaded library matches by soname).
pub fn library_present() -> bool {
    // SAFETY: only tries to dlopen/dlclose the candidates; no CUPTI call.
    unsafe { sys::is_culib_present() }
}

pub(crate) fn ensure_library() -> Result<()> {
    if library_present() {
        Ok(())
    } else {
        Err(Error::LibraryMissing)
    }
}

/// `cuptiGetVersion()` of the loaded libcupti (130001 for CUDA 13.0).
pub fn cupti_version() -> Result<u32> {
    ensure_library()?;
    let mut v = 0u32;
    // SAFETY: library present; valid out-pointer.
    unsafe { sys::cuptiGetVersion(&mut v) }.result().map_err(|e| Error::cupti("cuptiGetVersion", e))?;
    Ok(v)
}

/// CUPTI's current timestamp (ns, the timebase of activity records — Unix epoch on the
/// measured machine), for the runtime's CUPTI ↔ host clock calibration.
pub fn timestamp_ns() -> Result<u64> {
    ensure_library()?;
    let mut t = 0u64;
    // SAFETY: library present; valid out-pointer.
    unsafe { cudarc::cupti::result::get_timestamp(&mut t) }.map_err(|e| Error::cupti("cuptiGetTimestamp", e))?;
    Ok(t)
}
