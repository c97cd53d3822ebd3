//! CPU reference implementations of every CNN layer type: the oracle the GPU kernels
//! are checked against.
//!
//! Conventions, everywhere:
//! * inputs are `&[f32]` (what the GPU gets; round fp16/bf16 data through
//!   [`round_through`] first), outputs are `Vec<f64>` (what comparisons use), all
//!   arithmetic and accumulation in f64;
//! * 4-D activations are in the given [`Layout`](crate::ops::Layout) with logical NCHW
//!   dims; weights are OIHW;
//! * buffer lengths are checked against the op parameters and parameters are validated:
//!   errors come back as [`OpError`](crate::ops::OpError), nothing panics on bad input.
//!
//! Each function is written as the textbook loop nest of the definition it cites,
//! single-threaded, so it is easy to audit.

mod act;
mod batchnorm;
mod check;
mod concat;
mod conv;
mod gemm;
mod layout;
mod lrn;
mod pool;
mod precision;
mod softmax;

pub use act::{activation, add};
pub use batchnorm::{batch_norm, fold_batch_norm};
pub use check::{random_uniform, random_uniform_in, rel_l2};
pub use concat::{concat_channels, write_at_channel_offset};
pub use conv::{conv2d, EpilogueArgs};
pub use gemm::gemm;
pub use layout::{nchw_to_nhwc, nhwc_to_nchw, ohwi_to_oihw, oihw_to_ohwi, to_layout};
pub use lrn::lrn;
pub use pool::pool2d;
pub use precision::{
    bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits, from_bytes, round_through, to_bytes,
};
pub use softmax::softmax;
