//! Energy attribution: per-kernel, per-layer and per-run energy from a trace's NVML
//! samples, with 95 % confidence intervals. The method is described in
//! `docs/energy-method.md`; in short:
//!
//! * [`Method::Timeline`] (any profile trace): a per-layer power model is fitted to
//!   the power samples (each sample = boxcar average of the true power over a
//!   window, modelled by [`SensorModel`]), the resulting power curve is integrated
//!   over every kernel and every idle gap, and the whole-run energy is checked
//!   against the NVML energy counter.
//! * [`Method::Replay`] (a trace recorded with the conventions of [`replay`]): each
//!   layer's kernels were re-launched back to back for ≥ 1 s per trial; the layer's
//!   steady-state power comes from the energy counter between two update edges.
//!
//! [`analyze`] picks the method; [`figures::build`] turns an [`Attribution`] into the
//! derived figures a report shows.

use serde::Serialize;

use crate::error::TraceError;
use crate::reader::Trace;
use crate::records::LayerId;

pub mod figures;
mod linalg;
mod load;
pub mod replay;
pub mod stats;
#[doc(hidden)]
pub mod synth;
mod timeline;

pub use figures::Report;
pub use replay::{plan_replay, ReplayPlan};

/// A value with a symmetric 95% confidence half-width (same unit as value). ci95 = NaN when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub ci95: f64,
}

impl Estimate {
    pub fn new(value: f64, ci95: f64) -> Estimate {
        Estimate { value, ci95 }
    }

    /// A value whose uncertainty is not known.
    pub fn exact_unknown(value: f64) -> Estimate {
        Estimate { value, ci95: f64::NAN }
    }

    /// Same relative uncertainty, value multiplied by `k` (k may be negative).
    pub fn scale(self, k: f64) -> Estimate {
        Estimate { value: self.value * k, ci95: self.ci95 * k.abs() }
    }

    /// `ci95 / |value|` (NaN when the value is 0 or the CI unknown).
    pub fn relative(self) -> f64 {
        self.ci95 / self.value.abs()
    }

    /// Whether `x` lies in `value ± ci95`.
    pub fn contains(self, x: f64) -> bool {
        (x - self.value).abs() <= self.ci95
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    Timeline,
    Replay,
}

/// Per layer, averaged over its executions (one execution = one inference of the batch).
#[derive(Debug, Clone, Serialize)]
pub struct LayerEnergy {
    pub layer: LayerId,
    /// How many times the layer ran in the analysed window.
    pub executions: u64,
    /// GPU time per execution: sum of its kernels' durations.
    pub time_ns: Estimate,
    /// Energy per execution (mJ), total = static + dynamic.
    pub energy_mj: Estimate,
    /// Idle power x time part.
    pub static_mj: f64,
    pub dynamic_mj: f64,
    /// energy / time.
    pub avg_power_w: f64,
    pub method: Method,
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelEnergy {
    /// Index of the kernel among the trace's kernel events (0 = first kernel event).
    pub event_index: u64,
    pub layer: LayerId,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub energy_mj: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunEnergy {
    /// Analysed window (measure phase).
    pub window_ns: u64,
    /// Iterations in the window.
    pub inferences: u64,
    /// Sum over kernels.
    pub kernel_energy_j: f64,
    /// Gaps between kernels (never spread onto kernels).
    pub idle_energy_j: f64,
    /// Kernel + idle.
    pub total_energy_j: Estimate,
    /// NVML total-energy counter over the same window (average counter power between
    /// the first and last counter update inside the window, times the window).
    pub counter_energy_j: Option<f64>,
    /// (total - counter) / counter, both taken over the span between those two
    /// counter updates.
    pub counter_mismatch: Option<f64>,
    pub idle_power_w: f64,
    pub avg_power_w: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    pub method: Method,
    /// Sorted by layer id.
    pub layers: Vec<LayerEnergy>,
    /// Timeline method only (empty for replay), in trace order.
    pub kernels: Vec<KernelEnergy>,
    pub run: RunEnergy,
    /// E.g. "window shorter than 5 s: counter updated only 12 times".
    pub warnings: Vec<String>,
    /// The power sensor the timeline used (e.g. "nvml.samples"); empty for replay.
    pub sensor: String,
    /// Sensor delay the timeline fit found best within `delay_ns ± delay_uncertainty_ns`
    /// (0 for replay).
    pub sensor_delay_ns: i64,
}

/// How a power sensor relates to the true power: each reading is the mean of the
/// true power over `[t - delay - window, t - delay]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SensorModel {
    pub window: Window,
    /// Positive: the reading describes power from before its timestamp.
    pub delay_ns: i64,
    /// How far off `delay_ns` may be; the attribution is redone at
    /// `delay ± uncertainty` and the spread enters the CI.
    pub delay_uncertainty_ns: u64,
    /// The reading's quantisation step (mW).
    pub resolution_mw: f64,
    /// True for a value the recorder polls (the timestamp is the poll's, the value
    /// changes only at the sensor's update): only the first poll of each new value
    /// is used, timed halfway between it and the previous poll.
    pub polled: bool,
}

/// The averaging window of a [`SensorModel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Window {
    /// The reading averages the time since the previous reading (a contiguous
    /// sensor), capped at `max_ns` (a longer gap means readings were lost).
    SincePrevious { max_ns: u64 },
    /// A fixed-length window.
    Fixed { ns: u64 },
}

/// Analysis parameters. `Default` holds the values documented in
/// `docs/energy-method.md` (sensor windows and delays measured on an H200 with `cnnergy calibrate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Options {
    /// Force the method; None (`auto`): replay when the trace has replay windows, else
    /// timeline. Timeline on a replay trace attributes its measure phase.
    pub method: Option<Method>,
    /// Force a power sensor by name; default: the best present of "nvml.samples",
    /// "nvml.instant", "nvml.usage".
    pub sensor: Option<String>,
    /// Model of "nvml.samples" (driver power-sample buffer).
    pub samples: SensorModel,
    /// Model of "nvml.instant" (NVML_FI_DEV_POWER_INSTANT).
    pub instant: SensorModel,
    /// Model of "nvml.usage" (nvmlDeviceGetPowerUsage).
    pub usage: SensorModel,
    /// Delay of the energy counter's value behind its update.
    pub counter_delay_ns: i64,
    /// Phase to analyse (timeline); default "measure" when the trace has it, else
    /// the whole trace.
    pub phase: Option<String>,
    /// Prior standard deviation of a layer's power around the run's mean power (W).
    /// Layers the samples cannot resolve keep about this uncertainty.
    pub prior_sd_w: f64,
    /// Lower bound of the per-sample noise (W) used by the power-model fit.
    pub noise_floor_w: f64,
    /// Scale the fitted power curve inside every sample window so that it integrates
    /// exactly to that sample (the curve then honours the sensor, the model only
    /// shapes power within a window).
    pub honour_samples: bool,
    /// Time blocks for the block-to-block spread term of the CI.
    pub blocks: usize,
    /// Replay: skip this long after a busy window starts (power rise time).
    pub replay_skip_ns: u64,
    /// Replay: busy-window length the planner aims at.
    pub replay_window_ns: u64,
    /// Replay: trials the planner asks for.
    pub replay_trials: u32,
}

impl Default for Options {
    fn default() -> Options {
        const MS: u64 = 1_000_000;
        Options {
            method: None,
            sensor: None,
            // Measured with `cnnergy calibrate` on an H200 (docs/energy-method.md, section 1):
            // off-edge step responses; readings ~20 ms apart (idle p90 41 ms), 5 ms delay.
            samples: SensorModel {
                window: Window::SincePrevious { max_ns: 45 * MS },
                delay_ns: 5 * MS as i64,
                delay_uncertainty_ns: 5 * MS,
                resolution_mw: 1000.0,
                polled: false,
            },
            // ~100 ms window, updated every ~100 ms; delay within the update quantisation.
            instant: SensorModel {
                window: Window::Fixed { ns: 100 * MS },
                delay_ns: 0,
                delay_uncertainty_ns: 20 * MS,
                resolution_mw: 1000.0,
                polled: true,
            },
            usage: SensorModel {
                window: Window::Fixed { ns: 1000 * MS },
                delay_ns: 0,
                delay_uncertainty_ns: 50 * MS,
                resolution_mw: 1000.0,
                polled: true,
            },
            counter_delay_ns: 0,
            phase: None,
            prior_sd_w: 200.0,
            noise_floor_w: 1.0,
            honour_samples: true,
            blocks: 8,
            replay_skip_ns: 200 * MS,
            replay_window_ns: 1000 * MS,
            replay_trials: 5,
        }
    }
}

impl Options {
    /// The model for a sensor name (unknown names get the "nvml.samples" model).
    pub fn model(&self, sensor: &str) -> SensorModel {
        match sensor {
            sensors::INSTANT => self.instant,
            sensors::USAGE => self.usage,
            _ => self.samples,
        }
    }
}

/// Sensor names the recorder writes.
pub mod sensors {
    pub const SAMPLES: &str = "nvml.samples";
    pub const INSTANT: &str = "nvml.instant";
    pub const USAGE: &str = "nvml.usage";
    /// In order of preference for the timeline method.
    pub const PREFERENCE: [&str; 3] = [SAMPLES, INSTANT, USAGE];
}

#[derive(Debug, thiserror::Error)]
pub enum EnergyError {
    #[error("the trace has no power or energy samples: energy cannot be attributed (time only)")]
    NoPowerData,
    #[error("the trace has no kernel events in the analysed window{0}")]
    NoKernels(String),
    #[error("power sensor {0:?} not found in the trace (present: {1})")]
    NoSuchSensor(String, String),
    #[error("too few power samples in the analysed window ({0}); need at least {1}")]
    TooFewSamples(usize, usize),
    #[error("replay trace: {0}")]
    Replay(String),
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// Chooses the method from the trace contents (a replay trace -> Replay, else Timeline).
pub fn analyze(trace: &Trace<'_>, opts: &Options) -> Result<Attribution, EnergyError> {
    let data = load::Loaded::read(trace)?;
    let is_replay = replay::is_replay(trace, &data);
    match opts.method {
        Some(Method::Replay) if !is_replay => {
            Err(EnergyError::Replay(format!("no {:?} windows in the trace: not a replay trace", replay::LAYER_PHASE)))
        }
        Some(Method::Replay) => replay::analyze(trace, &data, opts),
        Some(Method::Timeline) => timeline::analyze(trace, &data, opts),
        None if is_replay => replay::analyze(trace, &data, opts),
        None => timeline::analyze(trace, &data, opts),
    }
}

/// `--method` values: "timeline", "replay" or "auto" (None).
pub fn parse_method(s: &str) -> Result<Option<Method>, String> {
    match s {
        "timeline" => Ok(Some(Method::Timeline)),
        "replay" => Ok(Some(Method::Replay)),
        "auto" => Ok(None),
        _ => Err(format!("unknown method `{s}`: expected timeline, replay or auto")),
    }
}

/// The layer-type classes reports group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerType {
    Conv,
    Fc,
    Pool,
    Activation,
    Norm,
    Other,
}

impl LayerType {
    pub const ALL: [LayerType; 6] =
        [LayerType::Conv, LayerType::Fc, LayerType::Pool, LayerType::Activation, LayerType::Norm, LayerType::Other];

    /// From an ONNX op type name (case-insensitive; a few aliases accepted).
    pub fn from_op(op: &str) -> LayerType {
        let o = op.to_ascii_lowercase();
        match o.as_str() {
            "conv" | "convtranspose" | "conv2d" | "qlinearconv" | "convinteger" => LayerType::Conv,
            "gemm" | "matmul" | "linear" | "fc" | "qlinearmatmul" | "matmulinteger" => LayerType::Fc,
            "maxpool" | "averagepool" | "globalaveragepool" | "globalmaxpool" | "lppool" | "globallppool"
            | "maxpool2d" | "avgpool2d" | "adaptiveavgpool2d" => LayerType::Pool,
            "relu" | "clip" | "sigmoid" | "tanh" | "leakyrelu" | "prelu" | "elu" | "selu" | "hardsigmoid"
            | "hardswish" | "softplus" | "gelu" | "mish" | "relu6" => LayerType::Activation,
            "batchnormalization"
            | "lrn"
            | "layernormalization"
            | "instancenormalization"
            | "groupnormalization"
            | "batchnorm2d" => LayerType::Norm,
            _ => LayerType::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LayerType::Conv => "conv",
            LayerType::Fc => "fc",
            LayerType::Pool => "pool",
            LayerType::Activation => "activation",
            LayerType::Norm => "norm",
            LayerType::Other => "other",
        }
    }
}
