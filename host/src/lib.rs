//! cnnergy's host runtime: library discovery, GPU discovery, the kernel registry,
//! and (later) tensors, the layer graph, the executor and the NVML sampler.
//!
//! Everything that touches the CUDA driver goes through [`libs`] first, so a missing
//! driver or toolkit library is an error naming the library, never a panic.
pub mod bench;
pub mod calibrate;
pub mod error;
pub mod exec_cpu;
pub mod exec_gpu;
pub mod gpu;
pub mod graph;
pub mod launch;
pub mod libs;
pub mod models;
pub mod onnx;
pub mod ops;
pub mod params;
pub mod profile;
pub mod ptxas;
pub mod reference;
pub mod registry;
pub mod rewrite;
pub mod sampler;
pub mod selftest;
pub mod shapes;
pub mod timebase;
pub mod weights;

pub use error::{Error, Result};
