//! The PTX modules build.rs compiled from `kernels/`, embedded in the binary.

/// PTX for compute capability 8.0 and later (JIT-compiled by the driver on newer GPUs).
pub const SM80: &str = include_str!(concat!(env!("OUT_DIR"), "/kernels_sm_80.ptx"));
/// PTX for Hopper (sm_90a): may use wgmma, setmaxnreg and other arch-specific instructions.
pub const SM90A: &str = include_str!(concat!(env!("OUT_DIR"), "/kernels_sm_90a.ptx"));

/// Every embedded module with the `ptxas -arch` it is meant for.
pub const MODULES: &[(&str, &str)] = &[("sm_80", SM80), ("sm_90a", SM90A)];

/// The modules in the form the host runtime takes.
pub fn module_set() -> cnnergy_host::registry::PtxSet {
    cnnergy_host::registry::PtxSet { sm80: SM80, sm90a: SM90A }
}
