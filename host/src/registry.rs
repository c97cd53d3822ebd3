//! Kernel modules and the registry that maps names to functions.

/// The PTX modules embedded in the binary, one per target.
#[derive(Clone, Copy, Debug)]
pub struct PtxSet {
    pub sm80: &'static str,
    pub sm90a: &'static str,
}
