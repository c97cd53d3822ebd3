//! One sampling thread: sleep until the next sensor is due, read it, stamp it, send it.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use cnnergy_traces::records::{
    ClockSample, Dropped, EnergySample, Event, PowerSample, TemperatureSample, ThrottleSample,
};

use super::schedule::Schedule;
use super::{CostSummary, Sensor, SensorIds, SensorStats};
use crate::timebase::{realtime_now_ns, Timebase};

/// The sampler's clocks: a monotonic one for the schedule, realtime for timestamps.
pub trait Clock: Send + 'static {
    fn mono_ns(&self) -> u64;
    fn realtime_ns(&self) -> u64;
    /// Sleeps until the monotonic clock reaches `mono_ns`; returns false (at once) when
    /// `stop` is raised before or meanwhile.
    fn wait_until(&self, mono_ns: u64, stop: &StopFlag) -> bool;
}

/// A stop request that wakes a sleeping thread at once.
#[derive(Default)]
pub struct StopFlag {
    raised: Mutex<bool>,
    cv: Condvar,
}

impl StopFlag {
    pub fn raise(&self) {
        *self.raised.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    pub fn is_raised(&self) -> bool {
        *self.raised.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `d`; true when raised.
    pub fn wait_for(&self, d: Duration) -> bool {
        let g = self.raised.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self.cv.wait_timeout_while(g, d, |r| !*r).unwrap_or_else(|e| e.into_inner());
        *g
    }
}

/// `Instant` for the schedule, CLOCK_REALTIME for timestamps.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    base: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock { base: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn mono_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
    fn realtime_ns(&self) -> u64 {
        realtime_now_ns()
    }
    fn wait_until(&self, mono_ns: u64, stop: &StopFlag) -> bool {
        loop {
            let now = self.mono_ns();
            if now >= mono_ns {
                return !stop.is_raised();
            }
            if stop.wait_for(Duration::from_nanos(mono_ns - now)) {
                return false;
            }
        }
    }
}

/// One reading, before it gets a timestamp and a sensor id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// mW; `t_us` is set for sample-buffer entries (their own CLOCK_REALTIME µs).
    Power {
        mw: u32,
        t_us: Option<u64>,
    },
    Energy {
        mj: u64,
    },
    Clocks {
        sm_mhz: u32,
        mem_mhz: u32,
    },
    Temperature {
        c: i32,
    },
    Throttle {
        reasons: u64,
    },
}

/// Why a read gave nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The device cannot answer this at all: stop asking.
    Unsupported(String),
    /// This call failed; try again at the next slot.
    Failed(String),
}

/// Where readings come from (NVML, or a fake in tests).
pub trait Source {
    /// Reads `sensor`, passing each reading to `out`. For the sample buffer, `since_us`
    /// is the newest timestamp already seen (entries at or before it may still come and
    /// are dropped by the caller).
    fn read(&mut self, sensor: Sensor, since_us: u64, out: &mut dyn FnMut(Reading)) -> Result<(), ReadError>;
}

/// One thread's account, merged by [`super::Sampler::stop`].
#[derive(Clone, Debug, Default)]
pub struct LaneStats {
    pub sensors: Vec<SensorStats>,
    pub dropped: u64,
}

struct Acc {
    sensor: Sensor,
    reads: u64,
    errors: u64,
    records: u64,
    max_late_ns: u64,
    costs: Vec<u64>,
    first_error: Option<String>,
    disabled: Option<String>,
}

/// Sends records, and once the consumer has room again, a `Dropped` record for what
/// did not fit.
struct Out<'a> {
    sink: &'a mut dyn FnMut(Event) -> bool,
    pending: u64,
    dropped: u64,
    source: cnnergy_traces::records::StrId,
}

impl Out<'_> {
    fn send(&mut self, e: Event) {
        if self.pending > 0 {
            let d = Dropped { t_ns: e.t_ns(), source: self.source, count: self.pending };
            if (self.sink)(Event::Dropped(d)) {
                self.pending = 0;
            } else {
                self.pending += 1;
                self.dropped += 1;
                return;
            }
        }
        if !(self.sink)(e) {
            self.pending += 1;
            self.dropped += 1;
        }
    }
}

/// Runs `sched` until `stop` is raised or no sensor is left. `sink` returns false when
/// the record could not be delivered (channel full).
pub fn run_lane<S: Source, C: Clock>(
    mut sched: Schedule,
    src: &mut S,
    clock: &C,
    stop: &StopFlag,
    tb: &Timebase,
    ids: &SensorIds,
    sink: &mut dyn FnMut(Event) -> bool,
) -> LaneStats {
    let mut acc: Vec<Acc> = sched
        .sensors()
        .map(|sensor| Acc {
            sensor,
            reads: 0,
            errors: 0,
            records: 0,
            max_late_ns: 0,
            costs: Vec::with_capacity(4096),
            first_error: None,
            disabled: None,
        })
        .collect();
    let mut out = Out { sink, pending: 0, dropped: 0, source: ids.nvml };
    // Readings of one call; the sample buffer returns up to ~120 at once.
    let mut buf: Vec<Reading> = Vec::with_capacity(256);
    let mut last_sample_us = 0u64;
    while let Some((sensor, due)) = sched.next() {
        if !clock.wait_until(due, stop) {
            break;
        }
        let late = clock.mono_ns().saturating_sub(due);
        buf.clear();
        let before = clock.realtime_ns();
        let res = src.read(sensor, last_sample_us, &mut |r| buf.push(r));
        let after = clock.realtime_ns();
        sched.done(sensor, clock.mono_ns());
        let a = acc.iter_mut().find(|a| a.sensor == sensor).expect("every scheduled sensor has an account");
        a.reads += 1;
        a.max_late_ns = a.max_late_ns.max(late);
        a.costs.push(after.saturating_sub(before));
        match res {
            Ok(()) => {}
            Err(ReadError::Failed(msg)) => {
                a.errors += 1;
                a.first_error.get_or_insert(msg);
            }
            Err(ReadError::Unsupported(msg)) => {
                a.errors += 1;
                a.disabled = Some(msg);
                sched.remove(sensor);
            }
        }
        let t_host = tb.realtime_to_trace(before + (after.saturating_sub(before)) / 2);
        for &r in &buf {
            if let Some(e) = to_event(sensor, r, t_host, tb, ids, &mut last_sample_us) {
                a.records += 1;
                out.send(e);
            }
        }
    }
    LaneStats {
        sensors: acc
            .into_iter()
            .map(|mut a| SensorStats {
                sensor: a.sensor,
                name: a.sensor.name(),
                reads: a.reads,
                errors: a.errors,
                records: a.records,
                missed: sched.missed(a.sensor),
                max_late_ns: a.max_late_ns,
                cost: CostSummary::from_ns(&mut a.costs),
                first_error: a.first_error,
                disabled: a.disabled,
            })
            .collect(),
        dropped: out.dropped,
    }
}

/// A reading as a trace record. Sample-buffer entries keep their own timestamp and are
/// dropped unless newer than `last_sample_us` (which they advance).
pub fn to_event(
    sensor: Sensor,
    r: Reading,
    t_host_ns: u64,
    tb: &Timebase,
    ids: &SensorIds,
    last_sample_us: &mut u64,
) -> Option<Event> {
    Some(match r {
        Reading::Power { mw, t_us } => {
            let id = match sensor {
                Sensor::PowerSamples => ids.samples,
                Sensor::PowerInstant => ids.instant,
                _ => ids.usage,
            };
            let t_ns = match t_us {
                Some(us) => {
                    if us <= *last_sample_us {
                        return None;
                    }
                    *last_sample_us = us;
                    tb.nvml_us_to_trace(us)
                }
                None => t_host_ns,
            };
            Event::Power(PowerSample { t_ns, sensor: id, power_mw: mw })
        }
        Reading::Energy { mj } => Event::Energy(EnergySample { t_ns: t_host_ns, energy_mj: mj }),
        Reading::Clocks { sm_mhz, mem_mhz } => Event::Clocks(ClockSample { t_ns: t_host_ns, sm_mhz, mem_mhz }),
        Reading::Temperature { c } => {
            Event::Temperature(TemperatureSample { t_ns: t_host_ns, sensor: ids.temp_gpu, temp_c: c })
        }
        Reading::Throttle { reasons } => Event::Throttle(ThrottleSample { t_ns: t_host_ns, reasons }),
    })
}
