//! The NVML sampler: background threads that read the GPU's power, energy, clock,
//! temperature and throttle sensors on their own schedule and hand the readings to the
//! consumer as trace records, already on the trace clock.
//!
//! * [`schedule`] — which sensor is due when (pure; tested on a fake clock).
//! * [`runner`] — one sampling thread's loop, generic over a [`Clock`] and a [`Source`]
//!   so tests run it with fakes.
//! * [`nvml`] — the real [`Source`]: NVML through nvml-wrapper.
//!
//! NVML calls cost from ~5 µs (field values) to ~4 ms (the energy counter on an H200),
//! so the energy counter gets its own thread by default: its long call then never delays
//! the fast reads. Timestamps: the sample buffer's own µs (CLOCK_REALTIME); every other
//! read is stamped with the midpoint of realtime before and after the call, the call's
//! duration being the timestamp's uncertainty (kept in [`SensorStats::cost`]).

pub mod nvml;
pub mod runner;
pub mod schedule;

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cnnergy_traces::records::{Event, StrId};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::timebase::Timebase;

pub use nvml::{DeviceId, NvmlSource};
pub use runner::{Clock, LaneStats, ReadError, Reading, Source, StopFlag, SystemClock};
pub use schedule::Schedule;

/// What the sampler reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Sensor {
    /// The driver's power-sample buffer (`nvmlDeviceGetSamples`, NVML_TOTAL_POWER_SAMPLES).
    PowerSamples,
    /// `NVML_FI_DEV_POWER_INSTANT` through field values.
    PowerInstant,
    /// `nvmlDeviceGetPowerUsage`.
    PowerUsage,
    /// `nvmlDeviceGetTotalEnergyConsumption` (mJ since driver load).
    Energy,
    /// Current SM and memory clocks.
    Clocks,
    /// GPU die temperature.
    Temperature,
    /// Clocks-event ("throttle") reasons.
    Throttle,
}

impl Sensor {
    pub const COUNT: usize = 7;
    pub const ALL: [Sensor; Sensor::COUNT] = [
        Sensor::PowerSamples,
        Sensor::PowerInstant,
        Sensor::PowerUsage,
        Sensor::Energy,
        Sensor::Clocks,
        Sensor::Temperature,
        Sensor::Throttle,
    ];

    /// Name in tables and JSON; for power sensors also the trace's sensor name.
    pub fn name(self) -> &'static str {
        match self {
            Sensor::PowerSamples => POWER_SAMPLES,
            Sensor::PowerInstant => POWER_INSTANT,
            Sensor::PowerUsage => POWER_USAGE,
            Sensor::Energy => "nvml.energy",
            Sensor::Clocks => "nvml.clocks",
            Sensor::Temperature => "nvml.temperature",
            Sensor::Throttle => "nvml.throttle",
        }
    }

    pub fn from_name(name: &str) -> Option<Sensor> {
        Sensor::ALL.into_iter().find(|s| s.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Trace sensor names of the three power readings.
pub const POWER_SAMPLES: &str = "nvml.samples";
pub const POWER_INSTANT: &str = "nvml.instant";
pub const POWER_USAGE: &str = "nvml.usage";
/// Temperature sensor name and the source name of `Dropped` records.
pub const TEMP_GPU: &str = "gpu";
pub const SOURCE_NVML: &str = "nvml";

/// Interned names the records refer to (from the consumer's trace writer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SensorIds {
    pub samples: StrId,
    pub instant: StrId,
    pub usage: StrId,
    pub temp_gpu: StrId,
    pub nvml: StrId,
}

impl SensorIds {
    /// Interns every name with `intern` (e.g. `|s| writer.intern(s)`).
    pub fn intern<E>(mut intern: impl FnMut(&str) -> std::result::Result<StrId, E>) -> std::result::Result<Self, E> {
        Ok(SensorIds {
            samples: intern(POWER_SAMPLES)?,
            instant: intern(POWER_INSTANT)?,
            usage: intern(POWER_USAGE)?,
            temp_gpu: intern(TEMP_GPU)?,
            nvml: intern(SOURCE_NVML)?,
        })
    }

    /// The name of a `StrId` this set handed out (for consumers without a writer).
    pub fn name_of(&self, id: StrId) -> Option<&'static str> {
        [
            (self.samples, POWER_SAMPLES),
            (self.instant, POWER_INSTANT),
            (self.usage, POWER_USAGE),
            (self.temp_gpu, TEMP_GPU),
            (self.nvml, SOURCE_NVML),
        ]
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, n)| n)
    }

    /// Ids 0..5 in the order above, for consumers that keep their own string table.
    pub fn sequential() -> Self {
        SensorIds { samples: StrId(0), instant: StrId(1), usage: StrId(2), temp_gpu: StrId(3), nvml: StrId(4) }
    }
}

/// Sensor periods and plumbing.
#[derive(Clone, Debug)]
pub struct SamplerConfig {
    /// Period per sensor ([`Sensor`] order); `None` = not read, `Some(ZERO)` = back to
    /// back (as often as the call's cost allows).
    pub periods: [Option<Duration>; Sensor::COUNT],
    /// Read the energy counter on its own thread (its ~4 ms call then never delays the
    /// fast sensors).
    pub energy_thread: bool,
    /// Records buffered between the sampler and the consumer; when full, records are
    /// dropped and counted (a `Dropped` record follows once there is room).
    pub channel_capacity: usize,
    pub ids: SensorIds,
}

impl SamplerConfig {
    /// Default periods: sample buffer 500 ms (it holds ~119 samples ≈ 2.4 s, so nothing
    /// is lost), instant power 5 ms (~5 µs a call), power usage 20 ms, energy 10 ms on its
    /// own thread (it is the edge detector for the ~100 ms counter updates),
    /// clocks/temperature/throttle 50 ms.
    pub fn new(ids: SensorIds) -> SamplerConfig {
        let ms = |v| Some(Duration::from_millis(v));
        let mut periods = [None; Sensor::COUNT];
        periods[Sensor::PowerSamples.index()] = ms(500);
        periods[Sensor::PowerInstant.index()] = ms(5);
        periods[Sensor::PowerUsage.index()] = ms(20);
        periods[Sensor::Energy.index()] = ms(10);
        periods[Sensor::Clocks.index()] = ms(50);
        periods[Sensor::Temperature.index()] = ms(50);
        periods[Sensor::Throttle.index()] = ms(50);
        SamplerConfig { periods, energy_thread: true, channel_capacity: 1 << 16, ids }
    }

    pub fn period(&self, s: Sensor) -> Option<Duration> {
        self.periods[s.index()]
    }

    pub fn with_period(mut self, s: Sensor, p: Option<Duration>) -> Self {
        self.periods[s.index()] = p;
        self
    }

    /// The sensors of each sampling thread with their periods in ns.
    pub fn lanes(&self) -> Vec<Vec<(Sensor, u64)>> {
        let enabled = |s: &Sensor| self.period(*s).map(|p| (*s, p.as_nanos().min(u64::MAX as u128) as u64));
        let (energy, rest): (Vec<_>, Vec<_>) =
            Sensor::ALL.iter().filter_map(enabled).partition(|(s, _)| self.energy_thread && *s == Sensor::Energy);
        [rest, energy].into_iter().filter(|l| !l.is_empty()).collect()
    }
}

/// Call cost (or any duration) distribution, ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CostSummary {
    pub n: usize,
    pub min_ns: u64,
    pub median_ns: u64,
    pub p95_ns: u64,
    pub max_ns: u64,
}

impl CostSummary {
    /// Sorts `v`. Median: mean of the two middle values for even counts; p95: nearest rank.
    pub fn from_ns(v: &mut [u64]) -> Option<CostSummary> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let n = v.len();
        let median_ns =
            if n % 2 == 1 { v[n / 2] } else { v[n / 2 - 1] / 2 + v[n / 2] / 2 + (v[n / 2 - 1] % 2 + v[n / 2] % 2) / 2 };
        let p95_ns = v[(n * 95).div_ceil(100) - 1];
        Some(CostSummary { n, min_ns: v[0], median_ns, p95_ns, max_ns: v[n - 1] })
    }
}

/// One sensor's account of a sampling run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SensorStats {
    pub sensor: Sensor,
    pub name: &'static str,
    /// Calls made (successful or not).
    pub reads: u64,
    pub errors: u64,
    /// Records produced (the sample buffer yields several per read).
    pub records: u64,
    /// Schedule slots that passed without a read.
    pub missed: u64,
    /// Largest delay of a read's start past its due time.
    pub max_late_ns: u64,
    /// Call duration: also each host timestamp's uncertainty (± half of it).
    pub cost: Option<CostSummary>,
    pub first_error: Option<String>,
    /// Set when the sensor was dropped (e.g. not supported on this GPU).
    pub disabled: Option<String>,
}

/// What [`Sampler::stop`] reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SamplerStats {
    pub sensors: Vec<SensorStats>,
    /// Records dropped because the consumer did not keep up.
    pub dropped: u64,
    pub threads: usize,
}

impl SamplerStats {
    pub fn sensor(&self, s: Sensor) -> Option<&SensorStats> {
        self.sensors.iter().find(|x| x.sensor == s)
    }
}

/// A running sampler. Records arrive through [`Sampler::drain`] or [`Sampler::receiver`];
/// [`Sampler::stop`] ends the threads (records already sent can still be drained).
pub struct Sampler {
    rx: Receiver<Event>,
    stop: Arc<StopFlag>,
    threads: Vec<JoinHandle<LaneStats>>,
}

impl Sampler {
    /// Starts sampling NVML device `device` (see [`DeviceId`]). Fails, naming the
    /// library and where it looked, when NVML is missing, or when the device is unknown.
    pub fn start(device: DeviceId, config: SamplerConfig, timebase: Timebase) -> Result<Sampler> {
        // Open once here so a bad device is an error now, not a silent thread exit.
        NvmlSource::open(&device)?;
        Sampler::start_with(config, timebase, SystemClock::new(), move || NvmlSource::open(&device))
    }

    /// Starts with any clock and source (one source per thread, made by `make_source`).
    pub fn start_with<S, C, F>(
        config: SamplerConfig,
        timebase: Timebase,
        clock: C,
        mut make_source: F,
    ) -> Result<Sampler>
    where
        S: Source + Send + 'static,
        C: Clock + Clone,
        F: FnMut() -> Result<S>,
    {
        let lanes = config.lanes();
        if lanes.is_empty() {
            return Err(Error::Invalid("sampler: every sensor is switched off".into()));
        }
        let (tx, rx) = sync_channel(config.channel_capacity.max(1));
        let stop = Arc::new(StopFlag::default());
        let mut threads = Vec::with_capacity(lanes.len());
        // Every source first, so a failure leaves no thread behind.
        let sources = lanes.iter().map(|_| make_source()).collect::<Result<Vec<S>>>()?;
        for (i, (lane, mut src)) in lanes.into_iter().zip(sources).enumerate() {
            let (tx, stop2, clock, ids) = (tx.clone(), stop.clone(), clock.clone(), config.ids);
            let spawned = std::thread::Builder::new().name(format!("cnnergy-nvml-{i}")).spawn(move || {
                let sched = Schedule::new(clock.mono_ns(), &lane);
                let mut sink = |e: Event| tx.try_send(e).is_ok();
                runner::run_lane(sched, &mut src, &clock, &stop2, &timebase, &ids, &mut sink)
            });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    stop.raise();
                    threads.into_iter().for_each(|h| drop(h.join()));
                    return Err(Error::Invalid(format!("sampler: cannot start a thread: {e}")));
                }
            }
        }
        Ok(Sampler { rx, stop, threads })
    }

    pub fn receiver(&self) -> &Receiver<Event> {
        &self.rx
    }

    /// Hands every record received so far to `f`; returns how many.
    pub fn drain(&self, mut f: impl FnMut(Event)) -> usize {
        let mut n = 0;
        while let Ok(e) = self.rx.try_recv() {
            f(e);
            n += 1;
        }
        n
    }

    /// Stops the threads (promptly: a sleeping thread wakes at once; a call in progress
    /// finishes) and returns their account. A second call returns empty stats.
    pub fn stop(&mut self) -> SamplerStats {
        self.stop.raise();
        let mut out = SamplerStats { threads: self.threads.len(), ..Default::default() };
        // A panicked thread's account is lost; the others still count.
        for lane in self.threads.drain(..).filter_map(|h| h.join().ok()) {
            out.dropped += lane.dropped;
            out.sensors.extend(lane.sensors);
        }
        out.sensors.sort_by_key(|s| s.sensor);
        out
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_summary_by_hand() {
        let s = CostSummary::from_ns(&mut [9, 1, 5]).unwrap();
        assert_eq!((s.n, s.min_ns, s.median_ns, s.p95_ns, s.max_ns), (3, 1, 5, 9, 9));
        let s = CostSummary::from_ns(&mut [4, 1, 3, 2]).unwrap();
        assert_eq!(s.median_ns, 2, "(2 + 3) / 2 rounded down");
        let s = CostSummary::from_ns(&mut [u64::MAX, u64::MAX]).unwrap();
        assert_eq!(s.median_ns, u64::MAX, "no overflow");
        // 20 values 1..=20: nearest-rank p95 is the 19th.
        let mut v: Vec<u64> = (1..=20).rev().collect();
        assert_eq!(CostSummary::from_ns(&mut v).unwrap().p95_ns, 19);
        assert_eq!(CostSummary::from_ns(&mut []), None);
    }

    #[test]
    fn energy_gets_its_own_lane() {
        let cfg = SamplerConfig::new(SensorIds::sequential());
        let lanes = cfg.lanes();
        assert_eq!(lanes.len(), 2);
        assert_eq!(lanes[1], vec![(Sensor::Energy, 10_000_000)]);
        assert!(lanes[0].iter().all(|(s, _)| *s != Sensor::Energy));
        assert_eq!(lanes[0].len(), 6);
        let one = SamplerConfig { energy_thread: false, ..cfg.clone() };
        assert_eq!(one.lanes().len(), 1);
        let only_energy = Sensor::ALL
            .iter()
            .fold(cfg, |c, &s| c.with_period(s, None))
            .with_period(Sensor::Energy, Some(Duration::ZERO));
        assert_eq!(only_energy.lanes(), vec![vec![(Sensor::Energy, 0)]]);
    }

    #[test]
    fn names_round_trip() {
        for s in Sensor::ALL {
            assert_eq!(Sensor::from_name(s.name()), Some(s));
        }
        let ids = SensorIds::sequential();
        assert_eq!(ids.name_of(StrId(1)), Some("nvml.instant"));
        assert_eq!(ids.name_of(StrId(9)), None);
    }
}
