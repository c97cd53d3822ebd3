//! The crate's error type.

use cudarc::cupti::result::CuptiError;
use cudarc::cupti::sys;

/// Everything that can go wrong in `cnnergy-cupti`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CUPTI call failed; `message` is CUPTI's own error string.
    #[error("CUPTI {call} failed: {message} ({code:?})")]
    Cupti { call: &'static str, code: sys::CUptiResult, message: String },
    /// libcupti cannot be loaded (the host crate's `libs::load(Lib::Cupti)` was not run or
    /// failed). Returned instead of letting cudarc panic.
    #[error("libcupti is not loaded: call cnnergy-host's libs::load(Lib::Cupti) first")]
    LibraryMissing,
    /// The runtime CUPTI reports a version whose record layout this crate does not know.
    #[error("unsupported CUPTI version {0} (this build knows CUPTI 13.x, versions 130000..=139999)")]
    UnsupportedVersion(u32),
    /// CUPTI allows one callback subscriber and one set of activity buffer callbacks per
    /// process; a second `LaunchTagger` / `ActivityCollector` is refused.
    #[error("a {0} is already active in this process")]
    AlreadyActive(&'static str),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("I/O error on {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

impl Error {
    /// Wraps a cudarc CUPTI error, fetching CUPTI's message (never panics).
    pub fn cupti(call: &'static str, e: CuptiError) -> Error {
        let message = match e.error_string() {
            Ok(s) => s.to_string_lossy().into_owned(),
            Err(_) => "unknown CUPTI error".to_string(),
        };
        Error::Cupti { call, code: e.0, message }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
