//! Typed launchers, one module per kernel family: each holds the family's
//! [`KernelSpec`](crate::registry::KernelSpec) table, the launch-configuration rule in code,
//! and functions that check shapes and launch on a stream. The self-test, the benchmarks
//! and the executor all launch through here.

pub mod conv;
pub mod depthwise;
pub mod gemm;
pub mod memory;
pub mod smallm;
pub mod tensorcore;

use crate::ops::Act;
use crate::params::{ACT_CLIP, ACT_NONE, ACT_RELU, ACT_SIGMOID, ACT_TANH};

/// How an activation travels in a parameter block: `(ACT_*, act_min, act_max)`.
pub fn act_fields(act: Act) -> (u32, f32, f32) {
    match act {
        Act::None => (ACT_NONE, 0.0, 0.0),
        Act::Relu => (ACT_RELU, 0.0, 0.0),
        Act::Clip { min, max } => (ACT_CLIP, min, max),
        Act::Sigmoid => (ACT_SIGMOID, 0.0, 0.0),
        Act::Tanh => (ACT_TANH, 0.0, 0.0),
    }
}

/// [`act_fields`] after checking the activation (a clip needs `min <= max`).
pub fn act_code(act: Act) -> crate::Result<(u32, f32, f32)> {
    act.validate().map_err(|e| crate::Error::Invalid(e.to_string()))?;
    Ok(act_fields(act))
}
