//! The record types, shared by the writer, the reader and the runtime that produces
//! them. Units are in the field names: `_ns` nanoseconds, `_mw` milliwatts, `_mj`
//! millijoules, `_mhz`, `_c` degrees Celsius, `_bytes`.
//!
//! All timestamps (`t_ns`, `start_ns`) are on one clock, the *trace clock* named in
//! [`Timebase::clock`] (CUPTI's nanosecond timestamp). Producers convert NVML's
//! microsecond timestamps onto it with the [`Timebase`] / [`ClockSync`] mapping
//! before writing.
//!
//! Strings that repeat (kernel names, layer names, op types, sensor names) are
//! interned: records hold a [`StrId`] obtained from
//! [`TraceWriter::intern`](crate::TraceWriter::intern) and resolved with
//! [`Trace::string`](crate::Trace::string).

use std::borrow::Cow;

use serde::Serialize;

use crate::format::tag;

/// Index into the trace's string table (ids are dense, assigned from 0 in order of
/// definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct StrId(pub u32);

/// Layer identifier as chosen by the producer (usually its index in the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct LayerId(pub u32);

impl LayerId {
    /// For kernels that belong to no layer (e.g. input conversion).
    pub const NONE: LayerId = LayerId(u32::MAX);
}

// ---------------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------------

/// Everything known when recording starts. Written once, as the first frame.
/// Strings are `Cow` so the reader can borrow them from the file and the writer can
/// take borrowed or owned text; [`Header::into_owned`] detaches one from its buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Header<'a> {
    /// Version of the tool that wrote the trace, e.g. "cnnergy 0.1.0 (abc1234)".
    pub tool_version: Cow<'a, str>,
    /// argv of the recording process.
    pub command_line: Vec<Cow<'a, str>>,
    /// Wall-clock start time, nanoseconds since the Unix epoch (UTC).
    pub start_unix_ns: u64,
    pub host: Cow<'a, str>,
    pub device: Device<'a>,
    pub workload: Workload<'a>,
    pub timebase: Timebase<'a>,
}

/// The GPU, as found at the start of recording.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Device<'a> {
    /// e.g. "NVIDIA H100 80GB HBM3".
    pub name: Cow<'a, str>,
    /// e.g. "GPU-5f3c…".
    pub uuid: Cow<'a, str>,
    pub cc_major: u32,
    pub cc_minor: u32,
    pub sm_count: u32,
    pub memory_bytes: u64,
    /// NVIDIA driver version, e.g. "580.65.06".
    pub driver_version: Cow<'a, str>,
    /// CUDA driver API version, e.g. "13.0".
    pub cuda_version: Cow<'a, str>,
    /// Enforced power limit.
    pub power_limit_mw: u32,
    /// Current SM clock at start.
    pub sm_clock_mhz: u32,
    /// Current memory clock at start.
    pub mem_clock_mhz: u32,
}

/// What was run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Workload<'a> {
    /// e.g. "resnet50".
    pub model: Cow<'a, str>,
    pub batch_size: u32,
    /// Element type, e.g. "f16".
    pub dtype: Cow<'a, str>,
    /// Kernel variant chosen per op (or per layer).
    pub kernel_variants: Vec<KernelVariant<'a>>,
    /// Planned number of inferences (all phases).
    pub iterations: u32,
    /// Planned phases in order (warm-up, measure, replay trials...).
    pub phases: Vec<Phase<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct KernelVariant<'a> {
    /// Op type or layer name the choice applies to, e.g. "conv2d".
    pub target: Cow<'a, str>,
    /// The variant, e.g. "igemm_tc_128x128x32".
    pub variant: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Phase<'a> {
    /// e.g. "warmup", "measure", "replay".
    pub name: Cow<'a, str>,
    pub iterations: u32,
}

/// How the clocks map onto the trace clock, measured at start. Later measurements
/// (typically at the end) are [`ClockSync`] events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Timebase<'a> {
    /// The trace clock, e.g. "cupti" (cuptiGetTimestamp, ns).
    pub clock: Cow<'a, str>,
    /// Trace-clock reading taken at [`Header::start_unix_ns`]: wall time of any
    /// `t_ns` is `start_unix_ns + (t_ns - t0_ns)`.
    pub t0_ns: u64,
    /// NVML mapping at start: `t_ns = nvml_us * 1000 + nvml_offset_ns`.
    pub nvml_offset_ns: i64,
    /// Largest error of that mapping seen while measuring it.
    pub residual_ns: u64,
}

impl Header<'_> {
    /// Copies every borrowed string so the header outlives the trace buffer.
    pub fn into_owned(self) -> Header<'static> {
        fn o(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        Header {
            tool_version: o(self.tool_version),
            command_line: self.command_line.into_iter().map(o).collect(),
            start_unix_ns: self.start_unix_ns,
            host: o(self.host),
            device: Device {
                name: o(self.device.name),
                uuid: o(self.device.uuid),
                cc_major: self.device.cc_major,
                cc_minor: self.device.cc_minor,
                sm_count: self.device.sm_count,
                memory_bytes: self.device.memory_bytes,
                driver_version: o(self.device.driver_version),
                cuda_version: o(self.device.cuda_version),
                power_limit_mw: self.device.power_limit_mw,
                sm_clock_mhz: self.device.sm_clock_mhz,
                mem_clock_mhz: self.device.mem_clock_mhz,
            },
            workload: Workload {
                model: o(self.workload.model),
                batch_size: self.workload.batch_size,
                dtype: o(self.workload.dtype),
                kernel_variants: self
                    .workload
                    .kernel_variants
                    .into_iter()
                    .map(|v| KernelVariant { target: o(v.target), variant: o(v.variant) })
                    .collect(),
                iterations: self.workload.iterations,
                phases: self
                    .workload
                    .phases
                    .into_iter()
                    .map(|p| Phase { name: o(p.name), iterations: p.iterations })
                    .collect(),
            },
            timebase: Timebase {
                clock: o(self.timebase.clock),
                t0_ns: self.timebase.t0_ns,
                nvml_offset_ns: self.timebase.nvml_offset_ns,
                residual_ns: self.timebase.residual_ns,
            },
        }
    }
}

// ---------------------------------------------------------------------------------
// Layer table
// ---------------------------------------------------------------------------------

/// A tensor shape, outermost dimension first (e.g. NCHW or NHWC as the op uses it).
pub type Shape = Vec<u64>;

/// One layer of the model. Written once per layer, before events referring to it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Layer {
    pub id: LayerId,
    /// Interned layer name, e.g. "layer2.0.conv1".
    pub name: StrId,
    /// Interned op type, e.g. "conv2d".
    pub op: StrId,
    pub inputs: Vec<Shape>,
    pub outputs: Vec<Shape>,
    pub attrs: Vec<Attr>,
    /// Arithmetic work of one inference of this layer (multiply-add = 2 FLOPs).
    pub flops: u64,
    /// Bytes read plus written by one inference of this layer (ideal, no cache reuse).
    pub bytes_moved: u64,
    /// Interned names of the kernels the layer launches, in launch order.
    pub kernels: Vec<StrId>,
}

/// Layer attribute, e.g. `stride = Ints([2, 2])`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attr {
    pub key: StrId,
    pub value: AttrValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AttrValue {
    Int(i64),
    Float(f64),
    Str(StrId),
    Ints(Vec<i64>),
}

// ---------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------

/// The static part of a kernel launch: identical for every inference, so the format
/// stores it once per frame (a "site") and kernel events refer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct KernelLaunch {
    pub layer: LayerId,
    /// Interned kernel (function) name.
    pub kernel: StrId,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub registers_per_thread: u32,
    pub static_smem_bytes: u32,
    pub dynamic_smem_bytes: u32,
    /// CUDA stream id as CUPTI reports it.
    pub stream: u32,
    /// CUDA graph node id that launched the kernel; 0 = not from a graph (CUPTI's
    /// convention).
    pub graph_node: u64,
}

/// One kernel execution (a CUPTI kernel activity record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct KernelEvent {
    pub launch: KernelLaunch,
    /// Inference number (0-based, counting every phase).
    pub iteration: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    /// CUPTI correlation id linking the activity to its launch API call.
    pub correlation_id: u32,
}

impl KernelEvent {
    /// `start_ns + duration_ns` (wrapping, as the encoding does).
    pub fn end_ns(&self) -> u64 {
        self.start_ns.wrapping_add(self.duration_ns)
    }
}

/// Power reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct PowerSample {
    pub t_ns: u64,
    /// Interned sensor name, e.g. "nvml.power_usage" (1 s average on most boards) or
    /// "nvml.power_instant".
    pub sensor: StrId,
    pub power_mw: u32,
}

/// Cumulative energy counter (NVML total energy since driver load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct EnergySample {
    pub t_ns: u64,
    pub energy_mj: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct ClockSample {
    pub t_ns: u64,
    pub sm_mhz: u32,
    pub mem_mhz: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct TemperatureSample {
    pub t_ns: u64,
    /// Interned sensor name, e.g. "gpu", "memory".
    pub sensor: StrId,
    pub temp_c: i32,
}

/// NVML clock-event ("throttle") reasons bitmask, sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct ThrottleSample {
    pub t_ns: u64,
    /// `nvmlClocksEventReasons` bits; see [`throttle`] for names.
    pub reasons: u64,
}

/// NVML clock-event reason bits and their names.
pub mod throttle {
    pub const GPU_IDLE: u64 = 0x1;
    pub const APPLICATIONS_CLOCKS_SETTING: u64 = 0x2;
    pub const SW_POWER_CAP: u64 = 0x4;
    pub const HW_SLOWDOWN: u64 = 0x8;
    pub const SYNC_BOOST: u64 = 0x10;
    pub const SW_THERMAL_SLOWDOWN: u64 = 0x20;
    pub const HW_THERMAL_SLOWDOWN: u64 = 0x40;
    pub const HW_POWER_BRAKE_SLOWDOWN: u64 = 0x80;
    pub const DISPLAY_CLOCK_SETTING: u64 = 0x100;

    /// (bit, name) for every known bit.
    pub const NAMES: [(u64, &str); 9] = [
        (GPU_IDLE, "gpu_idle"),
        (APPLICATIONS_CLOCKS_SETTING, "applications_clocks_setting"),
        (SW_POWER_CAP, "sw_power_cap"),
        (HW_SLOWDOWN, "hw_slowdown"),
        (SYNC_BOOST, "sync_boost"),
        (SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
        (HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
        (HW_POWER_BRAKE_SLOWDOWN, "hw_power_brake_slowdown"),
        (DISPLAY_CLOCK_SETTING, "display_clock_setting"),
    ];
}

/// A point in the run's structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Marker {
    pub t_ns: u64,
    pub kind: MarkerKind,
}

/// Marker kinds. On the wire every marker is `(code, a, b)`, so kinds added by a
/// later minor version still decode (as [`MarkerKind::Other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MarkerKind {
    /// code 0: a = iteration.
    IterationBegin { iteration: u32 },
    /// code 1: a = iteration.
    IterationEnd { iteration: u32 },
    /// code 2: a = interned phase name, b = index (e.g. replay trial number).
    PhaseBegin { phase: StrId, index: u32 },
    /// code 3: a = interned phase name, b = index.
    PhaseEnd { phase: StrId, index: u32 },
    /// code 4: a = interned free-form label.
    Label { label: StrId },
    /// A code this version does not know (>= 5; the writer refuses 0-4 here).
    Other { code: u8, a: u64, b: u64 },
}

impl MarkerKind {
    pub(crate) fn to_wire(self) -> (u8, u64, u64) {
        match self {
            MarkerKind::IterationBegin { iteration } => (0, iteration as u64, 0),
            MarkerKind::IterationEnd { iteration } => (1, iteration as u64, 0),
            MarkerKind::PhaseBegin { phase, index } => (2, phase.0 as u64, index as u64),
            MarkerKind::PhaseEnd { phase, index } => (3, phase.0 as u64, index as u64),
            MarkerKind::Label { label } => (4, label.0 as u64, 0),
            MarkerKind::Other { code, a, b } => (code, a, b),
        }
    }

    /// None when a known code carries a value out of range for its field.
    pub(crate) fn from_wire(code: u8, a: u64, b: u64) -> Option<MarkerKind> {
        let a32 = u32::try_from(a).ok();
        let b32 = u32::try_from(b).ok();
        Some(match code {
            0 if b == 0 => MarkerKind::IterationBegin { iteration: a32? },
            1 if b == 0 => MarkerKind::IterationEnd { iteration: a32? },
            2 => MarkerKind::PhaseBegin { phase: StrId(a32?), index: b32? },
            3 => MarkerKind::PhaseEnd { phase: StrId(a32?), index: b32? },
            4 if b == 0 => MarkerKind::Label { label: StrId(a32?) },
            0..=4 => return None,
            _ => MarkerKind::Other { code, a, b },
        })
    }
}

/// Records a producer had to drop (e.g. CUPTI buffer overflow, missed NVML polls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Dropped {
    pub t_ns: u64,
    /// Interned source name, e.g. "cupti", "nvml".
    pub source: StrId,
    pub count: u64,
}

/// A fresh measurement of the NVML → trace clock mapping (typically at the end of the
/// run; the start one is in [`Timebase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct ClockSync {
    pub t_ns: u64,
    /// `t_ns = nvml_us * 1000 + nvml_offset_ns` at this point.
    pub nvml_offset_ns: i64,
    pub residual_ns: u64,
}

/// Any event record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Event {
    Kernel(KernelEvent),
    Power(PowerSample),
    Energy(EnergySample),
    Clocks(ClockSample),
    Temperature(TemperatureSample),
    Throttle(ThrottleSample),
    Marker(Marker),
    Dropped(Dropped),
    ClockSync(ClockSync),
}

impl Event {
    /// The record's timestamp (a kernel's start).
    pub fn t_ns(&self) -> u64 {
        match self {
            Event::Kernel(k) => k.start_ns,
            Event::Power(e) => e.t_ns,
            Event::Energy(e) => e.t_ns,
            Event::Clocks(e) => e.t_ns,
            Event::Temperature(e) => e.t_ns,
            Event::Throttle(e) => e.t_ns,
            Event::Marker(e) => e.t_ns,
            Event::Dropped(e) => e.t_ns,
            Event::ClockSync(e) => e.t_ns,
        }
    }

    /// The latest instant the record covers (a kernel's end).
    pub fn end_ns(&self) -> u64 {
        match self {
            Event::Kernel(k) => k.end_ns(),
            e => e.t_ns(),
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            Event::Kernel(_) => EventKind::Kernel,
            Event::Power(_) => EventKind::Power,
            Event::Energy(_) => EventKind::Energy,
            Event::Clocks(_) => EventKind::Clocks,
            Event::Temperature(_) => EventKind::Temperature,
            Event::Throttle(_) => EventKind::Throttle,
            Event::Marker(_) => EventKind::Marker,
            Event::Dropped(_) => EventKind::Dropped,
            Event::ClockSync(_) => EventKind::ClockSync,
        }
    }
}

/// Event record kinds; the discriminant is the wire tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[repr(u8)]
pub enum EventKind {
    Kernel = tag::KERNEL,
    Power = tag::POWER,
    Energy = tag::ENERGY,
    Clocks = tag::CLOCKS,
    Temperature = tag::TEMPERATURE,
    Throttle = tag::THROTTLE,
    Marker = tag::MARKER,
    Dropped = tag::DROPPED,
    ClockSync = tag::CLOCK_SYNC,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::Kernel,
        EventKind::Power,
        EventKind::Energy,
        EventKind::Clocks,
        EventKind::Temperature,
        EventKind::Throttle,
        EventKind::Marker,
        EventKind::Dropped,
        EventKind::ClockSync,
    ];

    pub fn from_tag(t: u8) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| *k as u8 == t)
    }

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Kernel => "kernel",
            EventKind::Power => "power",
            EventKind::Energy => "energy",
            EventKind::Clocks => "clocks",
            EventKind::Temperature => "temperature",
            EventKind::Throttle => "throttle",
            EventKind::Marker => "marker",
            EventKind::Dropped => "dropped",
            EventKind::ClockSync => "clock_sync",
        }
    }
}

/// Number of records per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    pub kernel: u64,
    pub power: u64,
    pub energy: u64,
    pub clocks: u64,
    pub temperature: u64,
    pub throttle: u64,
    pub marker: u64,
    pub dropped: u64,
    pub clock_sync: u64,
}

impl Counts {
    pub fn get(&self, kind: EventKind) -> u64 {
        *self.slot(kind)
    }

    pub fn add(&mut self, kind: EventKind, n: u64) {
        let s = self.slot_mut(kind);
        *s = s.wrapping_add(n);
    }

    pub fn total(&self) -> u64 {
        EventKind::ALL.iter().fold(0u64, |a, k| a.wrapping_add(self.get(*k)))
    }

    fn slot(&self, kind: EventKind) -> &u64 {
        match kind {
            EventKind::Kernel => &self.kernel,
            EventKind::Power => &self.power,
            EventKind::Energy => &self.energy,
            EventKind::Clocks => &self.clocks,
            EventKind::Temperature => &self.temperature,
            EventKind::Throttle => &self.throttle,
            EventKind::Marker => &self.marker,
            EventKind::Dropped => &self.dropped,
            EventKind::ClockSync => &self.clock_sync,
        }
    }

    fn slot_mut(&mut self, kind: EventKind) -> &mut u64 {
        match kind {
            EventKind::Kernel => &mut self.kernel,
            EventKind::Power => &mut self.power,
            EventKind::Energy => &mut self.energy,
            EventKind::Clocks => &mut self.clocks,
            EventKind::Temperature => &mut self.temperature,
            EventKind::Throttle => &mut self.throttle,
            EventKind::Marker => &mut self.marker,
            EventKind::Dropped => &mut self.dropped,
            EventKind::ClockSync => &mut self.clock_sync,
        }
    }
}

/// Closing frame of a cleanly finished trace. Its absence means the recording was
/// cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    pub counts: Counts,
    /// Earliest timestamp of any event (0 when there are none).
    pub first_t_ns: u64,
    /// Latest end of any event (kernel end included; 0 when there are none).
    pub last_t_ns: u64,
    /// Sum of [`Dropped::count`] over all dropped records.
    pub dropped_total: u64,
    /// Number of events frames written.
    pub event_frames: u64,
}
