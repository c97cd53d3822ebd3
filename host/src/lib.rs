//! cnnergy's host runtime.
pub mod registry;
