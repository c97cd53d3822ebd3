//! The cnnergy trace format: one compact, framed, checksummed, versioned binary
//! file per recording, written by the runtime and read by every offline tool.
//!
//! * [`TraceWriter`] — streaming writer (constant memory, no allocation per record,
//!   whole frames only, `Send`, [`flush`](TraceWriter::flush) for Ctrl-C,
//!   [`finish`](TraceWriter::finish) writes the closing summary).
//! * [`Trace`] — zero-copy reader over any `&[u8]` ([`TraceData`] memory-maps a
//!   file); [`Trace::events`] decodes records without allocating.
//! * [`info::inspect`] — the report behind `cnnergy info`.
//! * [`records`] — the record types shared by producer and consumers.
//!
//! The byte-level specification is `docs/trace-format.md`.
//!
//! # Writing (the runtime side)
//!
//! ```
//! use cnnergy_traces::*;
//! # fn main() -> std::io::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("cnt-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let header = Header { host: "gpu-box".into(), ..Header::default() }; // fill device, workload, timebase
//! let file = std::fs::File::create(dir.join("run.cnt"))?;
//! let mut w = TraceWriter::new(file, &header)?; // preamble + header frame written now
//!
//! // Intern repeated strings once; records carry the ids.
//! let (name, op, kern) = (w.intern("conv1")?, w.intern("conv2d")?, w.intern("conv2d_igemm_f16")?);
//! let sensor = w.intern("nvml.power_usage")?;
//! w.layer(&Layer { id: LayerId(0), name, op, kernels: vec![kern], ..Layer::default() })?;
//!
//! // Events, from any thread that owns the writer (it is `Send`).
//! let launch = KernelLaunch { layer: LayerId(0), kernel: kern, grid: [196, 1, 1], block: [256, 1, 1], ..Default::default() };
//! w.marker(&Marker { t_ns: 990, kind: MarkerKind::IterationBegin { iteration: 0 } })?;
//! w.kernel(&KernelEvent { launch, iteration: 0, start_ns: 1_000, duration_ns: 42_000, correlation_id: 7 })?;
//! w.power(&PowerSample { t_ns: 20_000, sensor, power_mw: 310_000 })?;
//! w.flush()?; // e.g. from a Ctrl-C path: the file is now a valid, unfinished trace
//! w.finish()?; // summary frame: the trace is complete
//!
//! // Reading
//! let data = TraceData::open(&dir.join("run.cnt")).unwrap();
//! let trace = Trace::parse(&data).unwrap();
//! assert!(trace.is_complete());
//! assert_eq!(trace.events().count(), 3);
//! # Ok(()) }
//! ```

pub mod energy;
pub mod error;
pub mod format;
pub mod info;
pub mod reader;
pub mod records;
pub mod report;
pub mod writer;

#[doc(hidden)]
pub mod fuzzing;

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

pub use error::{Offset, TraceError};
pub use format::{FrameKind, Version};
pub use reader::{read_preamble, Events, Frame, FrameInfo, Frames, Trace};
pub use records::*;
pub use writer::{TraceWriter, WriterOptions};

/// The bytes of a trace file: memory-mapped, or owned when mapping is impossible
/// (empty files cannot be mapped).
#[derive(Debug)]
pub enum TraceData {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl TraceData {
    /// Maps `path` read-only.
    pub fn open(path: &Path) -> Result<TraceData, TraceError> {
        let io = |source| TraceError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() == 0 {
            return Ok(TraceData::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and traces are append-only: writers never
        // rewrite or shrink a file, so the mapped bytes do not change under us.
        // (A third party truncating the file while it is mapped would fault.)
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Ok(TraceData::Mapped(map))
    }
}

impl Deref for TraceData {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            TraceData::Mapped(m) => m,
            TraceData::Owned(v) => v,
        }
    }
}
