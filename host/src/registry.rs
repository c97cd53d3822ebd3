//! Kernel modules and the registry that maps names to functions.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule};
use cudarc::nvrtc::Ptx;

use crate::error::{Error, Result};
use crate::ops::{DType, Layout};

/// Layer types, as the efficiency reports group them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerType {
    Conv,
    Gemm,
    Pool,
    Activation,
    Norm,
    Softmax,
    Add,
    Concat,
    Convert,
    /// Foundation self-test kernels, not a CNN layer.
    Vector,
}

impl LayerType {
    pub fn name(self) -> &'static str {
        match self {
            LayerType::Conv => "conv",
            LayerType::Gemm => "gemm",
            LayerType::Pool => "pool",
            LayerType::Activation => "activation",
            LayerType::Norm => "norm",
            LayerType::Softmax => "softmax",
            LayerType::Add => "add",
            LayerType::Concat => "concat",
            LayerType::Convert => "convert",
            LayerType::Vector => "vector",
        }
    }
}

/// One kernel variant: data, not a naming convention. The runtime and users pick
/// variants per layer by (`layer`, `variant`, `dtype`, `layout`).
#[derive(Clone, Copy, Debug)]
pub struct KernelSpec {
    /// The exported PTX entry name.
    pub symbol: &'static str,
    pub layer: LayerType,
    /// Variant name as users write it (`--variant conv=implicit_gemm_tc`).
    pub variant: &'static str,
    pub dtype: DType,
    pub layout: Layout,
    /// The launch-configuration rule in words (the code computing it sits beside the launcher).
    pub launch_rule: &'static str,
}

/// Every registered kernel, family by family.
pub fn all() -> Vec<&'static KernelSpec> {
    use crate::launch;
    let families: &[&[KernelSpec]] = &[
        VECTOR,
        launch::memory::KERNELS,
        launch::conv::KERNELS,
        launch::gemm::KERNELS,
        launch::tensorcore::KERNELS,
        launch::depthwise::KERNELS,
        launch::smallm::KERNELS,
    ];
    families.iter().flat_map(|f| f.iter()).collect()
}

/// Looks a variant up.
pub fn find(layer: LayerType, variant: &str, dtype: DType, layout: Layout) -> Option<&'static KernelSpec> {
    all().into_iter().find(|k| k.layer == layer && k.variant == variant && k.dtype == dtype && k.layout == layout)
}

/// The foundation's vector kernels.
pub const VECTOR: &[KernelSpec] = &[KernelSpec {
    symbol: "axpy_f32",
    layer: LayerType::Vector,
    variant: "axpy",
    dtype: DType::F32,
    layout: Layout::Nchw,
    launch_rule: "256 threads/block, grid-stride loop over any grid",
}];

/// The PTX modules embedded in the binary, one per target.
#[derive(Clone, Copy, Debug)]
pub struct PtxSet {
    pub sm80: &'static str,
    pub sm90a: &'static str,
}

/// Which embedded module a GPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// PTX for sm_80, JIT-compiled by the driver for any GPU of compute capability >= 8.0.
    Sm80,
    /// Hopper (compute capability 9.0 exactly): `sm_90a` features are not forward compatible.
    Sm90a,
}

impl Target {
    /// The module for compute capability `major.minor`, or `None` below 8.0.
    pub fn for_cc(major: i32, minor: i32) -> Option<Target> {
        match (major, minor) {
            (9, 0) => Some(Target::Sm90a),
            (m, _) if m >= 8 => Some(Target::Sm80),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Sm80 => "sm_80",
            Target::Sm90a => "sm_90a",
        }
    }
}

/// Loads the module for `target` into `ctx` (the driver JIT-compiles the PTX once and
/// caches the result in its compute cache).
pub fn load_module(ctx: &Arc<CudaContext>, target: Target, ptx: PtxSet) -> Result<Arc<CudaModule>> {
    let src = match target {
        Target::Sm80 => ptx.sm80,
        Target::Sm90a => ptx.sm90a,
    };
    ctx.load_module(Ptx::from_src(src)).map_err(|e| Error::Driver {
        context: if target == Target::Sm80 {
            "loading the sm_80 kernel module"
        } else {
            "loading the sm_90a kernel module"
        },
        msg: crate::error::driver_msg(&e),
    })
}

/// Registers, shared memory and local memory of a loaded kernel, from the driver.
pub fn driver_resources(module: &Arc<CudaModule>, name: &str) -> Result<crate::ptxas::KernelResources> {
    use cudarc::driver::sys::CUfunction_attribute_enum as A;
    let f = function(module, name)?;
    let get = |a| f.get_attribute(a).map(|v| v as u32).map_err(Error::driver("reading kernel attributes"));
    Ok(crate::ptxas::KernelResources {
        name: name.to_string(),
        registers: get(A::CU_FUNC_ATTRIBUTE_NUM_REGS)?,
        smem_bytes: get(A::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES)?,
        // The driver reports local memory per thread (stack + spills) as one figure.
        stack_bytes: get(A::CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES)?,
        spill_store_bytes: 0,
        spill_load_bytes: 0,
    })
}

/// Looks a kernel up by its exported name.
pub fn function(module: &Arc<CudaModule>, name: &str) -> Result<CudaFunction> {
    module.load_function(name).map_err(|_| Error::MissingKernel(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_unique_and_lookups_find_them() {
        let all = all();
        let mut syms: Vec<&str> = all.iter().map(|k| k.symbol).collect();
        syms.sort();
        syms.dedup();
        assert_eq!(syms.len(), all.len(), "duplicate kernel symbol");
        for k in &all {
            let f = find(k.layer, k.variant, k.dtype, k.layout).expect("registered kernel not found");
            assert_eq!(f.symbol, k.symbol, "two kernels share (layer, variant, dtype, layout)");
        }
    }

    #[test]
    fn hopper_gets_sm90a_and_everything_from_ampere_gets_sm80() {
        assert_eq!(Target::for_cc(9, 0), Some(Target::Sm90a));
        assert_eq!(Target::for_cc(8, 0), Some(Target::Sm80));
        assert_eq!(Target::for_cc(8, 9), Some(Target::Sm80));
        assert_eq!(Target::for_cc(10, 0), Some(Target::Sm80));
        assert_eq!(Target::for_cc(12, 0), Some(Target::Sm80));
        assert_eq!(Target::for_cc(7, 5), None);
    }
}
