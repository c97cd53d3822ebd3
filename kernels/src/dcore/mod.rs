//! The device core: the lang items and the handful of library pieces kernels need.

pub mod lang;
pub mod sreg;
