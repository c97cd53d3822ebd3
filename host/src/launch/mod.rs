//! Typed launchers, one module per kernel family: each holds the family's
//! [`KernelSpec`](crate::registry::KernelSpec) table, the launch-configuration rule in code,
//! and functions that check shapes and launch on a stream. The self-test, the benchmarks
//! and the executor all launch through here.

pub mod conv;
pub mod gemm;
pub mod memory;
pub mod tensorcore;
