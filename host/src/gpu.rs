//! Opening a GPU and describing it.

use std::sync::Arc;

use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::{CudaContext, CudaModule, CudaStream};
use nvml_wrapper::enum_wrappers::device::{Clock, Sampling};
use nvml_wrapper::Nvml;

use crate::error::{Error, Result};
use crate::libs::{self, Lib};
use crate::registry::{PtxSet, Target};

/// What `cnnergy devices` prints and a trace header records about one GPU.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    /// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", the form NVML and nvidia-smi print.
    pub uuid: String,
    pub cc_major: i32,
    pub cc_minor: i32,
    pub sm_count: u32,
    pub memory_bytes: u64,
    /// L2 cache size (replay sizes its rotating buffers from it).
    pub l2_bytes: u64,
    /// The kernel driver's version string, e.g. "580.159.04" (from NVML).
    pub driver_version: Option<String>,
    /// The CUDA version the driver supports, e.g. (13, 0).
    pub cuda_driver_version: (i32, i32),
    pub power_limit_mw: Option<u32>,
    pub sm_clock_mhz: Option<u32>,
    pub mem_clock_mhz: Option<u32>,
    /// Total-energy counter at discovery, or why it did not answer.
    pub energy_counter_mj: Result<u64, String>,
    /// Number of samples in the driver's power-sample buffer, or why it did not answer.
    pub power_samples: Result<usize, String>,
}

impl DeviceInfo {
    pub fn cc(&self) -> String {
        format!("{}.{}", self.cc_major, self.cc_minor)
    }
}

fn format_uuid(b: &[std::ffi::c_char; 16]) -> String {
    let h: Vec<String> = b.iter().map(|&c| format!("{:02x}", c as u8)).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// Number of visible CUDA GPUs. Loads libcuda first, so a missing driver is an error
/// naming the library, not a panic inside cudarc.
pub fn device_count() -> Result<usize> {
    libs::load(Lib::Cuda)?;
    match CudaContext::device_count() {
        Ok(0) => Err(Error::NoGpu("the driver reports 0 devices".into())),
        Ok(n) => Ok(n as usize),
        Err(e) => Err(Error::NoGpu(crate::error::driver_msg(&e))),
    }
}

/// NVML, loaded from the file [`libs`] found. `None` with the reason when unavailable.
pub fn nvml() -> Result<Nvml, String> {
    let lib = libs::load(Lib::Nvml).map_err(|e| e.to_string())?;
    Nvml::builder().lib_path(lib.path.as_os_str()).init().map_err(|e| format!("NVML init: {e}"))
}

fn driver_attr(dev: cudarc::driver::sys::CUdevice, a: Attr) -> Result<i32> {
    // SAFETY: `dev` came from cuDeviceGet and the attribute enum is valid.
    unsafe { cudarc::driver::result::device::get_attribute(dev, a) }
        .map_err(Error::driver("reading a device attribute"))
}

/// Describes every visible GPU without creating a context (cheap, no memory taken).
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    let n = device_count()?;
    let nvml = nvml();
    let mut version = 0i32;
    // SAFETY: plain out-parameter call; the driver is loaded and initialised above.
    unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(Error::driver("reading the driver version"))?;
    let mut out = Vec::with_capacity(n);
    for ordinal in 0..n {
        let dev = cudarc::driver::result::device::get(ordinal as i32).map_err(Error::driver("opening a device"))?;
        let name = cudarc::driver::result::device::get_name(dev).map_err(Error::driver("reading the name"))?;
        let uuid = format_uuid(
            &cudarc::driver::result::device::get_uuid(dev).map_err(Error::driver("reading the UUID"))?.bytes,
        );
        // SAFETY: `dev` is a valid device handle.
        let memory_bytes = unsafe { cudarc::driver::result::device::total_mem(dev) }
            .map_err(Error::driver("reading memory size"))? as u64;
        let mut info = DeviceInfo {
            ordinal,
            name,
            uuid,
            cc_major: driver_attr(dev, Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            cc_minor: driver_attr(dev, Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
            sm_count: driver_attr(dev, Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32,
            memory_bytes,
            l2_bytes: driver_attr(dev, Attr::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)?.max(0) as u64,
            cuda_driver_version: (version / 1000, (version % 1000) / 10),
            energy_counter_mj: Err("NVML unavailable".into()),
            power_samples: Err("NVML unavailable".into()),
            driver_version: None,
            power_limit_mw: None,
            sm_clock_mhz: None,
            mem_clock_mhz: None,
        };
        match &nvml {
            Ok(nvml) => fill_from_nvml(nvml, &mut info),
            Err(e) => {
                info.energy_counter_mj = Err(e.clone());
                info.power_samples = Err(e.clone());
            }
        }
        out.push(info);
    }
    Ok(out)
}

/// NVML enumerates GPUs in its own order; match ours by UUID.
fn fill_from_nvml(nvml: &Nvml, info: &mut DeviceInfo) {
    info.driver_version = nvml.sys_driver_version().ok();
    let dev = match nvml.device_by_uuid(info.uuid.as_str()) {
        Ok(d) => d,
        Err(e) => {
            info.energy_counter_mj = Err(format!("NVML does not know {}: {e}", info.uuid));
            info.power_samples = Err(info.energy_counter_mj.clone().unwrap_err());
            return;
        }
    };
    info.power_limit_mw = dev.enforced_power_limit().ok();
    info.sm_clock_mhz = dev.clock_info(Clock::SM).ok();
    info.mem_clock_mhz = dev.clock_info(Clock::Memory).ok();
    info.energy_counter_mj = dev.total_energy_consumption().map_err(|e| e.to_string());
    info.power_samples = dev.samples(Sampling::Power, None).map(|s| s.len()).map_err(|e| e.to_string());
}

/// An open GPU: context, one stream, and the kernel module for its architecture.
pub struct Gpu {
    pub info: DeviceInfo,
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub module: Arc<CudaModule>,
    pub target: Target,
}

impl Gpu {
    /// Opens GPU `ordinal` and loads the embedded module that matches it.
    pub fn open(ordinal: usize, ptx: PtxSet) -> Result<Gpu> {
        let devices = list_devices()?;
        let info = devices.get(ordinal).cloned().ok_or(Error::BadOrdinal { ordinal, count: devices.len() })?;
        let target = Target::for_cc(info.cc_major, info.cc_minor).ok_or_else(|| Error::TooOld {
            name: info.name.clone(),
            major: info.cc_major,
            minor: info.cc_minor,
        })?;
        let ctx = CudaContext::new(ordinal).map_err(Error::driver("creating a context"))?;
        let module = crate::registry::load_module(&ctx, target, ptx)?;
        let stream = ctx.default_stream();
        Ok(Gpu { info, ctx, stream, module, target })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_is_formatted_like_nvidia_smi() {
        let b: [std::ffi::c_char; 16] = core::array::from_fn(|i| (i * 17) as u8 as std::ffi::c_char);
        assert_eq!(super::format_uuid(&b), "GPU-00112233-4455-6677-8899-aabbccddeeff");
    }
}
