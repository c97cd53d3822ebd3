//! The NVML sampler without a GPU: its loop on a fake clock with a fake source, and the
//! threads with the real clock (stop latency, channel back-pressure).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cnnergy_host::sampler::runner::run_lane;
use cnnergy_host::sampler::{
    Clock, ReadError, Reading, Sampler, SamplerConfig, Schedule, Sensor, SensorIds, Source, StopFlag, SystemClock,
};
use cnnergy_host::timebase::{SyncFit, Timebase, TraceClock};
use cnnergy_traces::records::{Event, StrId};

const MS: u64 = 1_000_000;
/// Realtime at fake mono 0.
const EPOCH: u64 = 1_700_000_000_000_000_000;

#[derive(Clone)]
struct FakeClock {
    t: Arc<AtomicU64>,
    end: u64,
}

impl FakeClock {
    fn new(end: u64) -> Self {
        FakeClock { t: Arc::new(AtomicU64::new(0)), end }
    }
    fn advance(&self, d: u64) {
        self.t.fetch_add(d, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn mono_ns(&self) -> u64 {
        self.t.load(Ordering::SeqCst)
    }
    fn realtime_ns(&self) -> u64 {
        EPOCH + self.mono_ns()
    }
    fn wait_until(&self, mono_ns: u64, stop: &StopFlag) -> bool {
        if stop.is_raised() || mono_ns.max(self.mono_ns()) >= self.end {
            return false;
        }
        self.t.fetch_max(mono_ns, Ordering::SeqCst);
        true
    }
}

/// Every call costs `cost` ns of fake time; power is 100 W + the call count in mW; the
/// sample buffer holds the last 120 samples of a 20 ms grid (as NVML's does), whatever
/// `since_us` says, so de-duplication is the caller's job.
struct FakeSource {
    clock: FakeClock,
    cost: fn(Sensor) -> u64,
    calls: u32,
    unsupported: Option<Sensor>,
    failing: Option<Sensor>,
    /// Extra fake time on the n-th call (a stall).
    stall: Option<(u32, u64)>,
}

impl FakeSource {
    fn new(clock: &FakeClock, cost: fn(Sensor) -> u64) -> Self {
        FakeSource { clock: clock.clone(), cost, calls: 0, unsupported: None, failing: None, stall: None }
    }
}

impl Source for FakeSource {
    fn read(&mut self, sensor: Sensor, _since_us: u64, out: &mut dyn FnMut(Reading)) -> Result<(), ReadError> {
        self.calls += 1;
        let now = self.clock.mono_ns();
        self.clock.advance((self.cost)(sensor));
        if let Some((n, d)) = self.stall {
            if n == self.calls {
                self.clock.advance(d);
            }
        }
        if self.unsupported == Some(sensor) {
            return Err(ReadError::Unsupported("not on this board".into()));
        }
        if self.failing == Some(sensor) {
            return Err(ReadError::Failed("GPU is busy".into()));
        }
        match sensor {
            Sensor::PowerSamples => {
                let newest = now / (20 * MS);
                for k in newest.saturating_sub(119)..=newest {
                    out(Reading::Power { mw: k as u32, t_us: Some((EPOCH + k * 20 * MS) / 1000) });
                }
            }
            Sensor::Energy => out(Reading::Energy { mj: self.calls as u64 }),
            Sensor::Clocks => out(Reading::Clocks { sm_mhz: 1980, mem_mhz: 2619 }),
            Sensor::Temperature => out(Reading::Temperature { c: 41 }),
            Sensor::Throttle => out(Reading::Throttle { reasons: 0x4 }),
            _ => out(Reading::Power { mw: 100_000 + self.calls, t_us: None }),
        }
        Ok(())
    }
}

fn timebase(offset_ns: i64) -> Timebase {
    Timebase::from_fit(
        TraceClock::Cupti,
        SyncFit {
            offset_ns,
            residual_ns: 50,
            realtime_ns: EPOCH,
            trace_ns: (EPOCH as i64 + offset_ns) as u64,
            used: 8,
            inconsistent: false,
        },
    )
}

fn ids() -> SensorIds {
    SensorIds::sequential()
}

fn run(
    periods: &[(Sensor, u64)],
    src: &mut FakeSource,
    clock: &FakeClock,
    offset: i64,
) -> (Vec<Event>, cnnergy_host::sampler::LaneStats) {
    let mut events = Vec::new();
    let stop = StopFlag::default();
    let stats = run_lane(Schedule::new(0, periods), src, clock, &stop, &timebase(offset), &ids(), &mut |e| {
        events.push(e);
        true
    });
    (events, stats)
}

#[test]
fn host_timestamps_are_call_midpoints_on_the_trace_clock() {
    let clock = FakeClock::new(100 * MS);
    let mut src = FakeSource::new(&clock, |_| 10_000);
    let (ev, stats) = run(&[(Sensor::PowerInstant, 5 * MS)], &mut src, &clock, -1_234);
    assert_eq!(ev.len(), 20);
    for (i, e) in ev.iter().enumerate() {
        let Event::Power(p) = e else { panic!("{e:?}") };
        // Read i starts at 5 ms · i, lasts 10 µs: midpoint 5 µs later, then the offset.
        let expected = EPOCH + i as u64 * 5 * MS + 5_000 - 1_234;
        assert_eq!(p.t_ns, expected, "read {i}");
        assert_eq!(p.sensor, ids().instant);
        assert_eq!(p.power_mw, 100_001 + i as u32);
    }
    let s = &stats.sensors[0];
    assert_eq!((s.reads, s.records, s.errors, s.missed), (20, 20, 0, 0));
    let c = s.cost.unwrap();
    assert_eq!((c.min_ns, c.median_ns, c.max_ns), (10_000, 10_000, 10_000));
}

#[test]
fn sample_buffer_entries_are_kept_once_with_their_own_timestamps() {
    let clock = FakeClock::new(5_000 * MS);
    let mut src = FakeSource::new(&clock, |_| 300_000);
    let (ev, stats) = run(&[(Sensor::PowerSamples, 500 * MS)], &mut src, &clock, 777);
    // Reads at 0, 500, ..., 4500 ms; the last one sees samples up to 4500 ms: k = 0..=225.
    assert_eq!(ev.len(), 226);
    for (k, e) in ev.iter().enumerate() {
        let Event::Power(p) = e else { panic!("{e:?}") };
        assert_eq!(p.power_mw, k as u32);
        assert_eq!(p.t_ns, EPOCH + k as u64 * 20 * MS + 777);
        assert_eq!(p.sensor, ids().samples);
    }
    assert_eq!(stats.sensors[0].reads, 10);
    assert_eq!(stats.sensors[0].records, 226);
}

#[test]
fn every_record_kind_is_produced() {
    let clock = FakeClock::new(60 * MS);
    let mut src = FakeSource::new(&clock, |_| 1_000);
    let periods: Vec<(Sensor, u64)> = Sensor::ALL.iter().map(|&s| (s, 50 * MS)).collect();
    let (ev, stats) = run(&periods, &mut src, &clock, 0);
    let has = |f: fn(&Event) -> bool| ev.iter().any(f);
    assert!(has(|e| matches!(e, Event::Energy(x) if x.energy_mj > 0)));
    assert!(has(|e| matches!(e, Event::Clocks(x) if x.sm_mhz == 1980 && x.mem_mhz == 2619)));
    assert!(has(|e| matches!(e, Event::Temperature(x) if x.temp_c == 41 && x.sensor == StrId(3))));
    assert!(has(|e| matches!(e, Event::Throttle(x) if x.reasons == 0x4)));
    assert!(has(|e| matches!(e, Event::Power(x) if x.sensor == ids().usage)));
    assert_eq!(stats.sensors.len(), 7);
    assert!(stats.sensors.iter().all(|s| s.reads == 2), "{:?}", stats.sensors);
}

#[test]
fn unsupported_sensors_are_dropped_and_failures_counted() {
    let clock = FakeClock::new(100 * MS);
    let mut src = FakeSource::new(&clock, |_| 1_000);
    src.unsupported = Some(Sensor::PowerInstant);
    src.failing = Some(Sensor::Clocks);
    let (ev, stats) = run(
        &[(Sensor::PowerInstant, 5 * MS), (Sensor::Clocks, 10 * MS), (Sensor::PowerUsage, 10 * MS)],
        &mut src,
        &clock,
        0,
    );
    let inst = stats.sensors.iter().find(|s| s.sensor == Sensor::PowerInstant).unwrap();
    assert_eq!((inst.reads, inst.errors), (1, 1));
    assert_eq!(inst.disabled.as_deref(), Some("not on this board"));
    let clk = stats.sensors.iter().find(|s| s.sensor == Sensor::Clocks).unwrap();
    assert_eq!((clk.reads, clk.errors, clk.records), (10, 10, 0));
    assert_eq!(clk.first_error.as_deref(), Some("GPU is busy"));
    // The others carry on.
    assert_eq!(ev.len(), 10);
    assert!(ev.iter().all(|e| matches!(e, Event::Power(p) if p.sensor == ids().usage)));
}

#[test]
fn a_stall_counts_missed_slots_without_a_burst() {
    let clock = FakeClock::new(100 * MS);
    let mut src = FakeSource::new(&clock, |_| 1_000);
    // The 3rd call (at 10 ms) takes 23 ms longer: slots 15, 20, 25, 30 pass unread.
    src.stall = Some((3, 23 * MS));
    let (ev, stats) = run(&[(Sensor::PowerInstant, 5 * MS)], &mut src, &clock, 0);
    let s = &stats.sensors[0];
    assert_eq!(s.missed, 4);
    assert_eq!(ev.len(), 20 - 4);
    let t: Vec<u64> = ev.iter().map(|e| e.t_ns() - EPOCH).collect();
    // After the stall (ends at 33.001 ms) the next read is on the grid at 35 ms.
    assert_eq!(t[3], 35 * MS + 500);
}

#[test]
fn a_full_channel_drops_and_says_so() {
    let clock = FakeClock::new(50 * MS);
    let mut src = FakeSource::new(&clock, |_| 1_000);
    let mut got = Vec::new();
    let mut n = 0;
    // Refuse records 3..6 (4 records), accept the rest.
    let mut sink = |e: Event| {
        n += 1;
        if (3..7).contains(&n) {
            return false;
        }
        got.push(e);
        true
    };
    let stop = StopFlag::default();
    let sched = Schedule::new(0, &[(Sensor::PowerInstant, 5 * MS)]);
    let stats = run_lane(sched, &mut src, &clock, &stop, &timebase(0), &ids(), &mut sink);
    assert_eq!(stats.dropped, 4);
    // Reads at 0, 5 (delivered), 10..25 (dropped), 30: first a Dropped record, then it.
    let Event::Dropped(d) = got[2] else { panic!("{:?}", got[2]) };
    assert_eq!((d.count, d.source), (4, ids().nvml));
    assert_eq!(d.t_ns, got[3].t_ns());
    assert_eq!(got[3].t_ns() - EPOCH, 30 * MS + 500);
    assert_eq!(got.len(), 2 + 1 + 4);
}

/// A source that answers at once (for the real-clock tests).
struct Instant0;
impl Source for Instant0 {
    fn read(&mut self, _s: Sensor, _since: u64, out: &mut dyn FnMut(Reading)) -> Result<(), ReadError> {
        out(Reading::Power { mw: 1, t_us: None });
        Ok(())
    }
}

#[test]
fn stop_is_prompt_even_with_long_periods() {
    let cfg =
        Sensor::ALL.iter().fold(SamplerConfig::new(ids()), |c, &s| c.with_period(s, Some(Duration::from_secs(3600))));
    let mut s = Sampler::start_with(cfg, Timebase::realtime(), SystemClock::new(), || Ok(Instant0)).unwrap();
    // Every sensor is due at start: one read each, then an hour's sleep.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while n < 7 && Instant::now() < deadline {
        n += s.drain(|_| {});
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(n, 7);
    let t = Instant::now();
    let stats = s.stop();
    assert!(t.elapsed() < Duration::from_millis(200), "stop took {:?}", t.elapsed());
    assert_eq!(stats.threads, 2);
    assert!(stats.sensors.iter().all(|x| x.reads == 1 && x.missed == 0), "{stats:?}");
    // Stopping again is harmless.
    assert_eq!(s.stop().sensors.len(), 0);
}

#[test]
fn real_clock_periods_are_roughly_kept() {
    let cfg = Sensor::ALL.iter().fold(SamplerConfig::new(ids()), |c, &s| c.with_period(s, None));
    let cfg = cfg.with_period(Sensor::PowerInstant, Some(Duration::from_millis(2)));
    let t0 = Instant::now();
    let mut s = Sampler::start_with(cfg, Timebase::realtime(), SystemClock::new(), || Ok(Instant0)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stats = s.stop();
    let slots = t0.elapsed().as_nanos() as u64 / 2_000_000 + 1;
    let mut t = Vec::new();
    s.drain(|e| t.push(e.t_ns()));
    let st = stats.sensor(Sensor::PowerInstant).unwrap();
    // One read per 2 ms slot: a loaded CI machine may miss some (counted), never add any.
    assert!(st.reads <= slots && st.reads >= 50, "{} reads in {slots} slots", st.reads);
    assert!(st.reads + st.missed <= slots, "{st:?}");
    assert_eq!(t.len() as u64, st.reads);
}

#[test]
fn missing_nvml_is_an_error_naming_the_library() {
    // The override makes the lookup fail the same way with or without a GPU.
    std::env::set_var("CNNERGY_LIBNVML", "/nonexistent/libnvidia-ml.so.1");
    let cfg = SamplerConfig::new(ids());
    let e = Sampler::start(cnnergy_host::sampler::DeviceId::Index(0), cfg, Timebase::realtime()).err().unwrap();
    let msg = e.to_string();
    assert!(msg.contains("libnvidia-ml") && msg.contains("CNNERGY_LIBNVML"), "{msg}");
    assert!(!msg.contains('\n'));
}
