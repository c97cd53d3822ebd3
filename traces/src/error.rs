//! The one error type of the crate. Every variant that describes file contents
//! carries the byte offset where the problem starts, so a damaged trace can be
//! reported (and cut) precisely.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::format::Version;

/// A byte position in a trace file (from the start of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Offset(pub u64);

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:x})", self.0, self.0)
    }
}

/// What went wrong reading (or opening) a trace.
///
/// Damage in the file comes in three flavours: [`Truncated`](Self::Truncated)
/// (the file ends inside something: more bytes would help),
/// [`Checksum`](Self::Checksum) (bytes changed after writing) and
/// [`Malformed`](Self::Malformed) (checksum fine, contents violate the format:
/// a writer bug or a checksum collision).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("not a cnnergy trace: file is empty")]
    Empty,

    #[error("not a cnnergy trace: bad magic at offset {offset}")]
    BadMagic { offset: Offset },

    #[error(
        "unsupported trace format version {found} at offset {offset}: this reader supports \
         version {}.x (written as {supported})",
        supported.major
    )]
    UnsupportedVersion { offset: Offset, found: Version, supported: Version },

    #[error("truncated at byte offset {offset}: {what} needs {needed} more bytes")]
    Truncated {
        offset: Offset,
        /// Bytes missing to complete `what`.
        needed: u64,
        what: &'static str,
    },

    #[error(
        "corrupt {what} at byte offset {offset}: CRC-32C mismatch \
         (stored 0x{stored:08x}, computed 0x{computed:08x})"
    )]
    Checksum { offset: Offset, what: &'static str, stored: u32, computed: u32 },

    #[error("malformed trace at byte offset {offset}: {what}")]
    Malformed { offset: Offset, what: &'static str },
}

impl TraceError {
    /// Where in the file the problem starts (None for I/O errors).
    pub fn offset(&self) -> Option<Offset> {
        match self {
            TraceError::Io { .. } => None,
            TraceError::Empty => Some(Offset(0)),
            TraceError::BadMagic { offset }
            | TraceError::UnsupportedVersion { offset, .. }
            | TraceError::Truncated { offset, .. }
            | TraceError::Checksum { offset, .. }
            | TraceError::Malformed { offset, .. } => Some(*offset),
        }
    }

    /// True when the file simply ends too early (a killed writer, a partial copy).
    pub fn is_truncated(&self) -> bool {
        matches!(self, TraceError::Truncated { .. } | TraceError::Empty)
    }

    /// Short category name: "io", "empty", "bad-magic", "unsupported-version",
    /// "truncated", "checksum", "malformed".
    pub fn kind(&self) -> &'static str {
        match self {
            TraceError::Io { .. } => "io",
            TraceError::Empty => "empty",
            TraceError::BadMagic { .. } => "bad-magic",
            TraceError::UnsupportedVersion { .. } => "unsupported-version",
            TraceError::Truncated { .. } => "truncated",
            TraceError::Checksum { .. } => "checksum",
            TraceError::Malformed { .. } => "malformed",
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn malformed(offset: u64, what: &'static str) -> Self {
        TraceError::Malformed { offset: Offset(offset), what }
    }
}

pub type Result<T, E = TraceError> = std::result::Result<T, E>;
