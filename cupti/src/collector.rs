//! CUPTI activity API: kernel (and memcpy/memset/graph) records, parsed off-thread.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use cudarc::cupti::result::activity;
use cudarc::cupti::sys;

use crate::error::{Error, Result};
use crate::layout::{parse_record, Record, RecordLayout};
use crate::names::NameInterner;
use crate::pool::BufferPool;

/// Collector settings.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Number of activity buffers (1..=64), allocated once.
    pub buffers: usize,
    /// Bytes per buffer (multiple of 8).
    pub buffer_size: usize,
    pub memcpy: bool,
    pub memset: bool,
    /// Try to enable `CUPTI_ACTIVITY_KIND_GRAPH_TRACE` (whole-graph records). Failure to
    /// enable it is not an error ([`ActivityCollector::graph_trace_enabled`]).
    pub graph_trace: bool,
    /// Write every completed buffer to `DIR/cupti-<pid>-<seq>.bin` (see [`dump_header`])
    /// — used to capture parser fixtures on the GPU machine.
    pub dump_buffers_to: Option<PathBuf>,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            buffers: 8,
            buffer_size: 8 << 20,
            memcpy: true,
            memset: true,
            graph_trace: false,
            dump_buffers_to: None,
        }
    }
}

/// What the consumer receives, on the collector's background thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A kernel record with its interned name id.
    Kernel { record: crate::layout::KernelRecord, name: u32 },
    /// Any other parsed record.
    Other(Record),
    /// A kernel name seen for the first time.
    NewName { id: u32, name: String },
    /// CUPTI dropped `count` records (no buffer space), reported per completed buffer.
    Dropped { count: u64 },
}

/// Counters readable while collecting.
#[derive(Debug, Default)]
pub struct Stats {
    pub buffers_completed: AtomicU64,
    pub records: AtomicU64,
    pub dropped: AtomicU64,
    /// Records whose stride (from CUPTI's iterator) disagreed with the layout size, or
    /// that were shorter than it: a wrong layout for this CUPTI. Must stay 0.
    pub layout_mismatches: AtomicU64,
    /// Records of kinds we do not parse.
    pub other_kinds: AtomicU64,
}

/// Dump-file header: `b"CNCUPTI1"`, u32 LE CUPTI version, u32 LE reserved (0), then the
/// buffer's valid bytes.
pub fn dump_header(cupti_version: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(b"CNCUPTI1");
    h[8..12].copy_from_slice(&cupti_version.to_le_bytes());
    h
}

/// Splits a dump file into (CUPTI version, buffer bytes).
pub fn parse_dump(file: &[u8]) -> Option<(u32, &[u8])> {
    if file.len() < 16 || &file[..8] != b"CNCUPTI1" {
        return None;
    }
    Some((u32::from_le_bytes(file[8..12].try_into().ok()?), &file[16..]))
}

enum Msg {
    Buffer { index: usize, valid: usize, dropped: u64 },
    Barrier(SyncSender<()>),
    Stop,
}

struct Shared {
    pool: BufferPool,
    tx: SyncSender<Msg>,
    stats: Stats,
}

/// The live collector's state, for CUPTI's buffer callbacks (which carry no user data).
static ACTIVE: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());
static COLLECTOR_EXISTS: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn buffer_requested(buffer: *mut *mut u8, size: *mut usize, max_num_records: *mut usize) {
    let sh = ACTIVE.load(Ordering::Acquire);
    // SAFETY: CUPTI passes valid out-pointers; `sh` is null or a leaked `Shared`.
    unsafe {
        *max_num_records = 0;
        *buffer = std::ptr::null_mut();
        *size = 0;
        if let Some(b) = sh.as_ref().and_then(|s| s.pool.take()) {
            *buffer = b.ptr;
            *size = b.size;
        }
    }
}

unsafe extern "C" fn buffer_completed(
    context: cudarc::driver::sys::CUcontext,
    stream_id: u32,
    buffer: *mut u8,
    _size: usize,
    valid: usize,
) {
    // SAFETY: null or a leaked `Shared`.
    let Some(sh) = (unsafe { ACTIVE.load(Ordering::Acquire).as_ref() }) else { return };
    let mut dropped = 0usize;
    // SAFETY: context/stream as given by CUPTI for this buffer.
    let _ = unsafe { activity::get_num_dropped_records(context, stream_id, &mut dropped) };
    if let Some(index) = sh.pool.index_of(buffer) {
        // Channel capacity exceeds the buffer count, so this never blocks.
        if sh.tx.try_send(Msg::Buffer { index, valid, dropped: dropped as u64 }).is_err() {
            sh.pool.give_back(index);
        }
    }
}

/// Enables CUPTI activity collection into a pool of preallocated buffers; completed
/// buffers go (index + valid size, no copy) to a background thread that parses them and
/// calls the consumer. One per process. Requires libcupti to be loaded (cnnergy-host's
/// `libs::load(Lib::Cupti)`), otherwise [`Error::LibraryMissing`].
///
/// The pool and callback state are leaked (kept for the process lifetime) because
/// CUPTI's buffer callbacks cannot be unregistered and may run concurrently with drop.
pub struct ActivityCollector {
    shared: &'static Shared,
    thread: Option<JoinHandle<()>>,
    kinds: Vec<sys::CUpti_ActivityKind>,
    graph_trace: bool,
    layout: RecordLayout,
}

impl ActivityCollector {
    pub fn new(config: CollectorConfig, consumer: impl FnMut(Event) + Send + 'static) -> Result<ActivityCollector> {
        crate::ensure_library()?;
        let layout = RecordLayout::for_version(crate::cupti_version()?)?;
        let pool = BufferPool::new(config.buffers, config.buffer_size)?;
        if let Some(d) = &config.dump_buffers_to {
            std::fs::create_dir_all(d).map_err(|source| Error::Io { path: d.clone(), source })?;
        }
        if COLLECTOR_EXISTS.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyActive("ActivityCollector"));
        }
        let (tx, rx) = sync_channel(config.buffers + 4);
        let shared: &'static Shared = Box::leak(Box::new(Shared { pool, tx, stats: Stats::default() }));
        let (l2, dump) = (layout.clone(), config.dump_buffers_to.clone());
        let thread = std::thread::Builder::new()
            .name("cnnergy-cupti".into())
            .spawn(move || worker(shared, rx, l2, dump, consumer))
            .map_err(|source| Error::Io { path: "<thread>".into(), source })?;
        ACTIVE.store(shared as *const Shared as *mut Shared, Ordering::Release);
        let mut c = ActivityCollector { shared, thread: Some(thread), kinds: Vec::new(), graph_trace: false, layout };
        activity::register_callbacks(Some(buffer_requested), Some(buffer_completed))
            .map_err(|e| Error::cupti("cuptiActivityRegisterCallbacks", e))?;
        use sys::CUpti_ActivityKind as K;
        let mut want = vec![K::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL];
        if config.memcpy {
            want.push(K::CUPTI_ACTIVITY_KIND_MEMCPY);
        }
        if config.memset {
            want.push(K::CUPTI_ACTIVITY_KIND_MEMSET);
        }
        for k in want {
            activity::enable(k).map_err(|e| Error::cupti("cuptiActivityEnable", e))?;
            c.kinds.push(k);
        }
        if config.graph_trace && activity::enable(K::CUPTI_ACTIVITY_KIND_GRAPH_TRACE).is_ok() {
            c.kinds.push(K::CUPTI_ACTIVITY_KIND_GRAPH_TRACE);
            c.graph_trace = true;
        }
        Ok(c)
    }

    pub fn graph_trace_enabled(&self) -> bool {
        self.graph_trace
    }
    pub fn layout(&self) -> &RecordLayout {
        &self.layout
    }
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }
    /// Buffer requests CUPTI got a null buffer for (pool exhausted).
    pub fn pool_exhausted(&self) -> u64 {
        self.shared.pool.exhausted()
    }

    /// Stops kernel records (`cuptiActivityDisable(CONCURRENT_KERNEL)`) until [`resume`];
    /// used while replaying layers, where kernel timing is not needed and millions of
    /// records would only add overhead.
    ///
    /// [`resume`]: ActivityCollector::resume
    pub fn pause_kernels(&self) -> Result<()> {
        activity::disable(sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)
            .map_err(|e| Error::cupti("cuptiActivityDisable", e))
    }

    /// Turns kernel records back on after [`ActivityCollector::pause_kernels`].
    pub fn resume_kernels(&self) -> Result<()> {
        activity::enable(sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)
            .map_err(|e| Error::cupti("cuptiActivityEnable", e))
    }

    /// Forces CUPTI to complete every buffer (`cuptiActivityFlushAll(FORCED)`) and waits
    /// until the background thread has delivered them. Call at the end of a run and from
    /// the Ctrl-C path.
    pub fn flush(&self) -> Result<()> {
        activity::flush_all(sys::CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_FLUSH_FORCED as u32)
            .map_err(|e| Error::cupti("cuptiActivityFlushAll", e))?;
        let (tx, rx) = sync_channel(1);
        if self.shared.tx.send(Msg::Barrier(tx)).is_ok() {
            let _ = rx.recv();
        }
        Ok(())
    }
}

impl Drop for ActivityCollector {
    fn drop(&mut self) {
        for &k in &self.kinds {
            let _ = activity::disable(k);
        }
        let _ = self.flush();
        ACTIVE.store(std::ptr::null_mut(), Ordering::Release);
        let _ = self.shared.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        COLLECTOR_EXISTS.store(false, Ordering::Release);
    }
}

fn worker(
    shared: &'static Shared,
    rx: Receiver<Msg>,
    layout: RecordLayout,
    dump: Option<PathBuf>,
    mut consumer: impl FnMut(Event),
) {
    let mut names = NameInterner::new();
    let mut seq = 0u64;
    let st = &shared.stats;
    while let Ok(msg) = rx.recv() {
        let (index, valid, dropped) = match msg {
            Msg::Buffer { index, valid, dropped } => (index, valid, dropped),
            Msg::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
            Msg::Stop => break,
        };
        // SAFETY: CUPTI completed this buffer; it stays out of the pool until give_back.
        let bytes = unsafe { shared.pool.bytes(index, valid) };
        if let Some(dir) = &dump {
            let path = dir.join(format!("cupti-{}-{seq:05}.bin", std::process::id()));
            let r = std::fs::File::create(&path).and_then(|mut f| {
                f.write_all(&dump_header(layout.cupti_version))?;
                f.write_all(bytes)
            });
            if let Err(e) = r {
                eprintln!("cnnergy-cupti: cannot dump buffer to {}: {e}", path.display());
            }
        }
        seq += 1;
        if dropped > 0 {
            st.dropped.fetch_add(dropped, Ordering::Relaxed);
            consumer(Event::Dropped { count: dropped });
        }
        for_each_cupti_record(bytes, |rec, stride_known| {
            let expect = layout.size_of_kind(u32::from_ne_bytes(rec[..4].try_into().unwrap_or_default()));
            if let (Some(size), true) = (expect, stride_known) {
                if (layout.exact_sizes && rec.len().next_multiple_of(8) != size.next_multiple_of(8)) || rec.len() < size
                {
                    st.layout_mismatches.fetch_add(1, Ordering::Relaxed);
                }
            }
            match parse_record(rec, &layout) {
                Some(Record::Kernel(k)) => {
                    // SAFETY: CUPTI's kernel name is valid while the module is loaded,
                    // which outlives the buffer being parsed now.
                    let (id, new) = unsafe { names.intern_c(k.name_addr) };
                    if new {
                        let name = names.name(id).unwrap_or_default().to_owned();
                        consumer(Event::NewName { id, name });
                    }
                    consumer(Event::Kernel { record: k, name: id });
                    st.records.fetch_add(1, Ordering::Relaxed);
                }
                Some(r @ (Record::Memcpy(_) | Record::Memset(_) | Record::GraphTrace(_))) => {
                    consumer(Event::Other(r));
                    st.records.fetch_add(1, Ordering::Relaxed);
                }
                Some(Record::Skipped { .. }) => {
                    st.other_kinds.fetch_add(1, Ordering::Relaxed);
                }
                None if expect.is_some() => {
                    st.layout_mismatches.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    st.other_kinds.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        st.buffers_completed.fetch_add(1, Ordering::Relaxed);
        shared.pool.give_back(index);
    }
}

/// Walks `bytes` with CUPTI's own iterator (`cuptiActivityGetNextRecord`), which knows
/// every record size of the running CUPTI, and calls `f(record_bytes, stride_known)`
/// with each record's bytes up to the next record (the last one: to the end, with
/// `stride_known = false`).
fn for_each_cupti_record(bytes: &[u8], mut f: impl FnMut(&[u8], bool)) {
    let base = bytes.as_ptr() as *mut u8;
    let mut rec: *mut sys::CUpti_Activity = std::ptr::null_mut();
    let mut prev: Option<usize> = None;
    loop {
        // SAFETY: base/len describe a completed CUPTI buffer; rec is CUPTI's cursor.
        let r = unsafe { activity::get_next_record(base, bytes.len(), &mut rec) };
        if r.is_err() || rec.is_null() {
            break; // CUPTI_ERROR_MAX_LIMIT_REACHED = end of buffer (or invalid kind)
        }
        let off = rec as usize - base as usize;
        if off >= bytes.len() {
            break;
        }
        if let Some(p) = prev {
            f(&bytes[p..off], true);
        }
        prev = Some(off);
    }
    if let Some(p) = prev {
        if bytes.len() - p >= 4 {
            f(&bytes[p..], false);
        }
    }
}
