//! The real [`Source`]: NVML, loaded at run time through nvml-wrapper.

use std::sync::OnceLock;

use nvml_wrapper::enum_wrappers::device::{Clock as NvClock, Sampling, TemperatureSensor};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id::NVML_FI_DEV_POWER_INSTANT;
use nvml_wrapper::{Device, Nvml};

use super::runner::{ReadError, Reading, Source};
use super::Sensor;
use crate::error::{Error, Result};
use crate::libs::{self, Lib};

/// NVML initialised once per process (the sampler threads share it; NVML is thread-safe).
/// A missing library is an error naming it and where it was looked for.
pub fn shared() -> Result<&'static Nvml> {
    let lib = libs::load(Lib::Nvml)?;
    static NVML: OnceLock<std::result::Result<Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| Nvml::builder().lib_path(lib.path.as_os_str()).init().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Nvml { context: "initialising NVML", msg: e.clone() })
}

/// Which GPU to sample. NVML numbers GPUs in its own (PCI) order, which may differ from
/// CUDA's: pass the UUID of a CUDA device (`DeviceInfo::uuid`) to be sure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceId {
    /// NVML index.
    Index(u32),
    /// "GPU-xxxxxxxx-…", as `nvidia-smi -L` and [`crate::gpu::DeviceInfo`] print it.
    Uuid(String),
}

/// One NVML device handle.
pub struct NvmlSource {
    dev: Device<'static>,
}

impl NvmlSource {
    pub fn open(id: &DeviceId) -> Result<NvmlSource> {
        let nvml = shared()?;
        let dev = match id {
            DeviceId::Index(i) => nvml.device_by_index(*i),
            DeviceId::Uuid(u) => nvml.device_by_uuid(u.as_str()),
        }
        .map_err(|e| Error::Invalid(format!("NVML does not know GPU {id:?}: {e}")))?;
        Ok(NvmlSource { dev })
    }

    pub fn device(&self) -> &Device<'static> {
        &self.dev
    }
}

fn classify(e: NvmlError) -> ReadError {
    match e {
        NvmlError::NotSupported | NvmlError::FunctionNotFound | NvmlError::NoPermission => {
            ReadError::Unsupported(e.to_string())
        }
        e => ReadError::Failed(e.to_string()),
    }
}

fn to_u32(v: &SampleValue) -> u32 {
    match *v {
        SampleValue::U32(x) => x,
        SampleValue::U64(x) => x.min(u32::MAX as u64) as u32,
        SampleValue::I64(x) => x.clamp(0, u32::MAX as i64) as u32,
        SampleValue::F64(x) => x.clamp(0.0, u32::MAX as f64) as u32,
    }
}

impl Source for NvmlSource {
    fn read(&mut self, sensor: Sensor, since_us: u64, out: &mut dyn FnMut(Reading)) -> Result<(), ReadError> {
        let d = &self.dev;
        match sensor {
            // The wrapper asks for the count, then the samples: a sample that lands in
            // between makes the second call fail with InsufficientSize, so retry once.
            Sensor::PowerSamples => match d.samples(Sampling::Power, since_us).or_else(|e| match e {
                NvmlError::InsufficientSize(_) => d.samples(Sampling::Power, since_us),
                e => Err(e),
            }) {
                Ok(v) => v.iter().for_each(|s| out(Reading::Power { mw: to_u32(&s.value), t_us: Some(s.timestamp) })),
                // No sample newer than `since_us`.
                Err(NvmlError::NotFound) => {}
                Err(e) => return Err(classify(e)),
            },
            Sensor::PowerInstant => {
                let v = d.field_values_for(&[FieldId(NVML_FI_DEV_POWER_INSTANT)]).map_err(classify)?;
                let s = v.into_iter().next().ok_or_else(|| ReadError::Failed("no field value returned".into()))?;
                let s = s.map_err(classify)?;
                out(Reading::Power { mw: to_u32(&s.value.map_err(classify)?), t_us: None });
            }
            Sensor::PowerUsage => out(Reading::Power { mw: d.power_usage().map_err(classify)?, t_us: None }),
            Sensor::Energy => out(Reading::Energy { mj: d.total_energy_consumption().map_err(classify)? }),
            Sensor::Clocks => {
                let sm_mhz = d.clock_info(NvClock::SM).map_err(classify)?;
                let mem_mhz = d.clock_info(NvClock::Memory).map_err(classify)?;
                out(Reading::Clocks { sm_mhz, mem_mhz });
            }
            Sensor::Temperature => {
                let c = d.temperature(TemperatureSensor::Gpu).map_err(classify)?;
                out(Reading::Temperature { c: c.min(i32::MAX as u32) as i32 });
            }
            // nvml-wrapper keeps only the reason bits it knows (all of those named in
            // `cnnergy_traces::throttle` and more).
            Sensor::Throttle => {
                out(Reading::Throttle { reasons: d.current_throttle_reasons().map_err(classify)?.bits() })
            }
        }
        Ok(())
    }
}
