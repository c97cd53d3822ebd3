//! Activity-record parsing, independent of the CUPTI library (testable without a GPU).
//!
//! CUPTI writes records into client buffers back to back, each one a C struct laid out
//! with `#pragma pack(8)` and starting with a 4-byte `CUpti_ActivityKind`. A record has no
//! size field: its size follows from its kind *and the CUPTI version*, because CUPTI
//! appends fields and bumps the struct version (`CUpti_ActivityKernel9` → `10` → …).
//! [`RecordLayout`] holds the byte offsets of the fields we read and the record sizes,
//! chosen from the runtime CUPTI version ([`RecordLayout::for_version`]); the parser
//! reads fields at those offsets and never dereferences pointers found in a record (the
//! kernel name stays an address, resolved later by the collector's background thread).

use std::mem::{offset_of, size_of};

use cudarc::cupti::sys;

use crate::error::{Error, Result};

/// `CUPTI_ACTIVITY_KIND_MEMCPY`.
pub const KIND_MEMCPY: u32 = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY as u32;
/// `CUPTI_ACTIVITY_KIND_MEMSET`.
pub const KIND_MEMSET: u32 = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET as u32;
/// `CUPTI_ACTIVITY_KIND_KERNEL` (serialised kernels; same struct as concurrent).
pub const KIND_KERNEL: u32 = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_KERNEL as u32;
/// `CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL`.
pub const KIND_CONCURRENT_KERNEL: u32 = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL as u32;
/// `CUPTI_ACTIVITY_KIND_GRAPH_TRACE`.
pub const KIND_GRAPH_TRACE: u32 = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_GRAPH_TRACE as u32;

/// One kernel execution, as CUPTI reports it (times are CUPTI timestamps, Unix-epoch ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KernelRecord {
    pub start_ns: u64,
    pub end_ns: u64,
    pub correlation_id: u32,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub registers: u32,
    pub static_smem: u32,
    pub dynamic_smem: u32,
    pub device_id: u32,
    pub context_id: u32,
    pub stream_id: u32,
    /// CUDA graph node that launched the kernel; 0 = not launched from a graph.
    pub graph_node_id: u64,
    pub graph_id: u32,
    /// Address of CUPTI's NUL-terminated kernel name (owned by CUPTI, shared by every
    /// record of the same kernel). Never dereferenced by the parser.
    pub name_addr: usize,
}

/// Direction/kind of a copy is kept raw (`CUpti_ActivityMemcpyKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MemcpyRecord {
    pub start_ns: u64,
    pub end_ns: u64,
    pub bytes: u64,
    pub copy_kind: u8,
    pub correlation_id: u32,
    pub stream_id: u32,
    pub graph_node_id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MemsetRecord {
    pub start_ns: u64,
    pub end_ns: u64,
    pub bytes: u64,
    pub value: u32,
    pub correlation_id: u32,
    pub stream_id: u32,
    pub graph_node_id: u64,
}

/// One whole-graph execution (`CUPTI_ACTIVITY_KIND_GRAPH_TRACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GraphTraceRecord {
    pub start_ns: u64,
    pub end_ns: u64,
    pub correlation_id: u32,
    pub graph_id: u32,
    pub stream_id: u32,
}

/// A parsed activity record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Record {
    Kernel(KernelRecord),
    Memcpy(MemcpyRecord),
    Memset(MemsetRecord),
    GraphTrace(GraphTraceRecord),
    /// A record of a kind we know the size of but do not parse (see
    /// [`RecordLayout::with_skip`]); delivered so consumers can count it.
    Skipped {
        kind: u32,
    },
}

/// Field offsets of a kernel record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelLayout {
    pub size: usize,
    pub registers: usize,
    pub start: usize,
    pub end: usize,
    pub device_id: usize,
    pub context_id: usize,
    pub stream_id: usize,
    pub grid: usize,
    pub block: usize,
    pub static_smem: usize,
    pub dynamic_smem: usize,
    pub correlation_id: usize,
    pub name: usize,
    pub graph_node_id: usize,
    pub graph_id: usize,
}

/// Field offsets shared by memcpy and memset records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyLayout {
    pub size: usize,
    pub bytes: usize,
    pub start: usize,
    pub end: usize,
    pub stream_id: usize,
    pub correlation_id: usize,
    pub graph_node_id: usize,
    /// memcpy: `copyKind` (u8); memset: `value` (u32).
    pub extra: usize,
}

/// Field offsets of a graph-trace record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphTraceLayout {
    pub size: usize,
    pub correlation_id: usize,
    pub start: usize,
    pub end: usize,
    pub graph_id: usize,
    pub stream_id: usize,
}

/// Where the fields are, for one CUPTI version. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLayout {
    /// `cuptiGetVersion()` this layout was chosen for.
    pub cupti_version: u32,
    /// `true` when every size below is taken from the exact structs of that version
    /// (CUPTI 13.0/13.1); `false` when sizes are extrapolated (the collector then trusts
    /// CUPTI's own record iterator and only uses the offsets).
    pub exact_sizes: bool,
    pub kernel: KernelLayout,
    pub memcpy: CopyLayout,
    pub memset: CopyLayout,
    pub graph_trace: GraphTraceLayout,
    /// Kinds skipped by size without parsing: `(kind, size)`.
    pub skip: Vec<(u32, usize)>,
}

macro_rules! kernel_layout {
    ($t:ty) => {
        KernelLayout {
            size: size_of::<$t>(),
            registers: offset_of!($t, registersPerThread),
            start: offset_of!($t, start),
            end: offset_of!($t, end),
            device_id: offset_of!($t, deviceId),
            context_id: offset_of!($t, contextId),
            stream_id: offset_of!($t, streamId),
            grid: offset_of!($t, gridX),
            block: offset_of!($t, blockX),
            static_smem: offset_of!($t, staticSharedMemory),
            dynamic_smem: offset_of!($t, dynamicSharedMemory),
            correlation_id: offset_of!($t, correlationId),
            name: offset_of!($t, name),
            graph_node_id: offset_of!($t, graphNodeId),
            graph_id: offset_of!($t, graphId),
        }
    };
}

impl RecordLayout {
    /// The layout CUPTI 13.0 and 13.1 emit: `CUpti_ActivityKernel10`,
    /// `CUpti_ActivityMemcpy6`, `CUpti_ActivityMemset4`, `CUpti_ActivityGraphTrace2`
    /// (offsets and sizes taken from cudarc's `cuda-13000` bindings).
    pub fn cupti_13_0() -> RecordLayout {
        type M = sys::CUpti_ActivityMemcpy6;
        type S = sys::CUpti_ActivityMemset4;
        type G = sys::CUpti_ActivityGraphTrace2;
        RecordLayout {
            cupti_version: sys::CUPTI_API_VERSION,
            exact_sizes: true,
            kernel: kernel_layout!(sys::CUpti_ActivityKernel10),
            memcpy: CopyLayout {
                size: size_of::<M>(),
                bytes: offset_of!(M, bytes),
                start: offset_of!(M, start),
                end: offset_of!(M, end),
                stream_id: offset_of!(M, streamId),
                correlation_id: offset_of!(M, correlationId),
                graph_node_id: offset_of!(M, graphNodeId),
                extra: offset_of!(M, copyKind),
            },
            memset: CopyLayout {
                size: size_of::<S>(),
                bytes: offset_of!(S, bytes),
                start: offset_of!(S, start),
                end: offset_of!(S, end),
                stream_id: offset_of!(S, streamId),
                correlation_id: offset_of!(S, correlationId),
                graph_node_id: offset_of!(S, graphNodeId),
                extra: offset_of!(S, value),
            },
            graph_trace: GraphTraceLayout {
                size: size_of::<G>(),
                correlation_id: offset_of!(G, correlationId),
                start: offset_of!(G, start),
                end: offset_of!(G, end),
                graph_id: offset_of!(G, graphId),
                stream_id: offset_of!(G, streamId),
            },
            skip: Vec::new(),
        }
    }

    /// Chooses the layout for the runtime CUPTI version (`cuptiGetVersion`).
    ///
    /// * 130000..=130199 (CUPTI 13.0, 13.1): [`cupti_13_0`](Self::cupti_13_0), exact.
    /// * 130200..=139999: CUPTI 13.2+ emits `CUpti_ActivityKernel11/12/13`, which append
    ///   fields to `Kernel10` without moving any (checked against cudarc's 13.4
    ///   bindings), so the `Kernel10` offsets stay valid; the kernel size is 224 (13.2),
    ///   232 (13.3) or 248 (13.4+), the memcpy/memset sizes are not known here, so
    ///   `exact_sizes` is `false`.
    /// * anything else: [`Error::UnsupportedVersion`].
    pub fn for_version(version: u32) -> Result<RecordLayout> {
        let mut l = RecordLayout::cupti_13_0();
        l.cupti_version = version;
        match version {
            130000..=130199 => {}
            130200..=139999 => {
                l.exact_sizes = false;
                l.kernel.size = match version {
                    130200..=130299 => 224,
                    130300..=130399 => 232,
                    _ => 248,
                };
            }
            v => return Err(Error::UnsupportedVersion(v)),
        }
        Ok(l)
    }

    /// Also skip records of `kind`, which are `size` bytes long, instead of stopping.
    pub fn with_skip(mut self, kind: u32, size: usize) -> RecordLayout {
        self.skip.push((kind, size));
        self
    }

    /// The size of a record of `kind`, if known.
    pub fn size_of_kind(&self, kind: u32) -> Option<usize> {
        match kind {
            KIND_KERNEL | KIND_CONCURRENT_KERNEL => Some(self.kernel.size),
            KIND_MEMCPY => Some(self.memcpy.size),
            KIND_MEMSET => Some(self.memset.size),
            KIND_GRAPH_TRACE => Some(self.graph_trace.size),
            k => self.skip.iter().find(|(sk, _)| *sk == k).map(|&(_, s)| s),
        }
    }
}

/// Why [`parse_buffer`] stopped before the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A record of a kind whose size is unknown: nothing after it can be located.
    UnknownKind { offset: usize, kind: u32 },
    /// The buffer ends inside a record (or inside its kind field).
    Truncated { offset: usize, need: usize, have: usize },
}

/// What [`parse_buffer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseSummary {
    /// Records delivered (including [`Record::Skipped`]).
    pub records: usize,
    /// Bytes consumed by whole records (and alignment padding).
    pub parsed_bytes: usize,
    /// `None` when the whole buffer was parsed.
    pub stop: Option<Stop>,
}

fn rd<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(rd(b, off))
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(rd(b, off))
}
fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes(rd(b, off))
}
fn usize_at(b: &[u8], off: usize) -> usize {
    usize::from_ne_bytes(rd(b, off))
}

/// Parses one record, `rec` starting at its kind field and at least as long as the
/// layout's size for that kind. Returns `None` for a kind whose size is unknown, or
/// when `rec` is too short.
pub fn parse_record(rec: &[u8], layout: &RecordLayout) -> Option<Record> {
    if rec.len() < 4 {
        return None;
    }
    let kind = u32_at(rec, 0);
    let size = layout.size_of_kind(kind)?;
    if rec.len() < size {
        return None;
    }
    Some(match kind {
        KIND_KERNEL | KIND_CONCURRENT_KERNEL => {
            let k = &layout.kernel;
            let tri = |off: usize| [u32_at(rec, off), u32_at(rec, off + 4), u32_at(rec, off + 8)];
            Record::Kernel(KernelRecord {
                start_ns: u64_at(rec, k.start),
                end_ns: u64_at(rec, k.end),
                correlation_id: u32_at(rec, k.correlation_id),
                grid: tri(k.grid),
                block: tri(k.block),
                registers: u16_at(rec, k.registers) as u32,
                static_smem: u32_at(rec, k.static_smem),
                dynamic_smem: u32_at(rec, k.dynamic_smem),
                device_id: u32_at(rec, k.device_id),
                context_id: u32_at(rec, k.context_id),
                stream_id: u32_at(rec, k.stream_id),
                graph_node_id: u64_at(rec, k.graph_node_id),
                graph_id: u32_at(rec, k.graph_id),
                name_addr: usize_at(rec, k.name),
            })
        }
        KIND_MEMCPY => {
            let m = &layout.memcpy;
            Record::Memcpy(MemcpyRecord {
                start_ns: u64_at(rec, m.start),
                end_ns: u64_at(rec, m.end),
                bytes: u64_at(rec, m.bytes),
                copy_kind: rec[m.extra],
                correlation_id: u32_at(rec, m.correlation_id),
                stream_id: u32_at(rec, m.stream_id),
                graph_node_id: u64_at(rec, m.graph_node_id),
            })
        }
        KIND_MEMSET => {
            let m = &layout.memset;
            Record::Memset(MemsetRecord {
                start_ns: u64_at(rec, m.start),
                end_ns: u64_at(rec, m.end),
                bytes: u64_at(rec, m.bytes),
                value: u32_at(rec, m.extra),
                correlation_id: u32_at(rec, m.correlation_id),
                stream_id: u32_at(rec, m.stream_id),
                graph_node_id: u64_at(rec, m.graph_node_id),
            })
        }
        KIND_GRAPH_TRACE => {
            let g = &layout.graph_trace;
            Record::GraphTrace(GraphTraceRecord {
                start_ns: u64_at(rec, g.start),
                end_ns: u64_at(rec, g.end),
                correlation_id: u32_at(rec, g.correlation_id),
                graph_id: u32_at(rec, g.graph_id),
                stream_id: u32_at(rec, g.stream_id),
            })
        }
        kind => Record::Skipped { kind },
    })
}

/// Walks a CUPTI activity buffer (`bytes` = the valid part) using the layout's record
/// sizes, calling `out` for every record. Records start 8-byte aligned relative to the
/// buffer start. Stops cleanly (never panics) at a kind of unknown size or a truncated
/// record, reporting where in [`ParseSummary::stop`]. An empty buffer parses to nothing.
pub fn parse_buffer(bytes: &[u8], layout: &RecordLayout, out: &mut impl FnMut(Record)) -> ParseSummary {
    let mut s = ParseSummary::default();
    let mut off = 0usize;
    while off < bytes.len() {
        let rest = &bytes[off..];
        if rest.len() < 4 {
            s.stop = Some(Stop::Truncated { offset: off, need: 4, have: rest.len() });
            break;
        }
        let kind = u32_at(rest, 0);
        let Some(size) = layout.size_of_kind(kind) else {
            s.stop = Some(Stop::UnknownKind { offset: off, kind });
            break;
        };
        if rest.len() < size {
            s.stop = Some(Stop::Truncated { offset: off, need: size, have: rest.len() });
            break;
        }
        if let Some(r) = parse_record(&rest[..size], layout) {
            out(r);
            s.records += 1;
        }
        off = (off + size).next_multiple_of(8).min(bytes.len());
        s.parsed_bytes = off;
    }
    s
}
