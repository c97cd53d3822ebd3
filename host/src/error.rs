//! The runtime's error type: every failure a user can cause or meet, as one line.

use crate::libs::LibError;
use cudarc::driver::DriverError;

/// A CUDA driver error rendered the way the driver names it.
pub fn driver_msg(e: &DriverError) -> String {
    let name = e.error_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|_| format!("{:?}", e.0));
    let text = e.error_string().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if text.is_empty() {
        name
    } else {
        format!("{name} ({text})")
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Lib(#[from] LibError),
    #[error("no CUDA GPU is visible: {0}")]
    NoGpu(String),
    #[error("GPU {ordinal} does not exist: {count} GPU(s) visible")]
    BadOrdinal { ordinal: usize, count: usize },
    #[error(
        "{name} has compute capability {major}.{minor}; cnnergy's kernels need 8.0 or newer (Ampere, Ada, Hopper, ...)"
    )]
    TooOld { name: String, major: i32, minor: i32 },
    #[error("CUDA driver call failed while {context}: {msg}")]
    Driver { context: &'static str, msg: String },
    #[error("NVML call failed while {context}: {msg}")]
    Nvml { context: &'static str, msg: String },
    #[error("kernel `{0}` is not in the embedded PTX module")]
    MissingKernel(String),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn driver(context: &'static str) -> impl FnOnce(DriverError) -> Error {
        move |e| Error::Driver { context, msg: driver_msg(&e) }
    }
    pub fn nvml(context: &'static str) -> impl FnOnce(nvml_wrapper::error::NvmlError) -> Error {
        move |e| Error::Nvml { context, msg: e.to_string() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
