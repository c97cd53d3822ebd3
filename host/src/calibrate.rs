//! Sensor characterisation (`cnnergy calibrate`): what each NVML call costs, how often
//! each power/energy sensor updates, and how each one answers a load step (delay, 10–90 %
//! rise time, averaging window).
//!
//! The estimators are pure functions of a time series and a known step time, tested on
//! synthetic series ([`step_response`], [`update_period`], [`energy_to_power`]); [`run`]
//! does the measurement on a GPU.
//!
//! Step model: a sensor that reports the mean power over the last `W` (a boxcar), `D`
//! after the fact, turns a step at `t0` into a linear ramp from `t0 + D` to `t0 + D + W`:
//! the 10 % and 90 % crossings are `D + 0.1 W` and `D + 0.9 W` after `t0`, so
//! `W = (t90 − t10) / 0.8` and `D = t10 − t0 − 0.1 W`. Crossing times are measured as the
//! time the (sample-and-hold) signal spends on the near side of the level after `t0`,
//! which noise moves far less than a first-crossing search.

use std::time::{Duration, Instant};

use cnnergy_traces::records::Event;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::sampler::{
    CostSummary, DeviceId, NvmlSource, Sampler, SamplerConfig, SamplerStats, Sensor, SensorIds, Source,
};
use crate::timebase::{realtime_now_ns, Timebase};

/// A time series: (t ns, value).
pub type Series = Vec<(i64, f64)>;

// ---------------------------------------------------------------------------------
// Pure estimators
// ---------------------------------------------------------------------------------

/// Times at which the value differs from the previous sample's.
pub fn change_times(series: &[(i64, f64)]) -> Vec<i64> {
    series.windows(2).filter(|w| w[1].1 != w[0].1).map(|w| w[1].0).collect()
}

/// How often a sensor's value changes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PeriodEstimate {
    /// Intervals measured (between consecutive changes inside one window).
    pub intervals: usize,
    pub median_ns: i64,
    pub p10_ns: i64,
    pub p90_ns: i64,
}

fn quantile_sorted(v: &[i64], q: f64) -> i64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Update period of a sensor read much faster than it updates: intervals between
/// consecutive value changes that both fall inside one of `windows` (`[start, end)`).
/// A value that happens to repeat hides one update, so the median is the estimate.
pub fn update_period(series: &[(i64, f64)], windows: &[(i64, i64)]) -> Option<PeriodEstimate> {
    let changes = change_times(series);
    let mut iv: Vec<i64> = changes
        .windows(2)
        .filter(|w| windows.iter().any(|&(a, b)| w[0] >= a && w[1] < b))
        .map(|w| w[1] - w[0])
        .collect();
    if iv.is_empty() {
        return None;
    }
    iv.sort_unstable();
    Some(PeriodEstimate {
        intervals: iv.len(),
        median_ns: quantile_sorted(&iv, 0.5),
        p10_ns: quantile_sorted(&iv, 0.1),
        p90_ns: quantile_sorted(&iv, 0.9),
    })
}

/// Power (W) from a cumulative energy counter (mJ) read at `t` ns: one point per counter
/// update, the mean power since the previous update. An update happened somewhere
/// between the read before it and the read that saw it; the midpoint is its time.
pub fn energy_to_power(series: &[(i64, u64)]) -> Series {
    let mut out = Vec::new();
    let mut last_change: Option<(i64, u64)> = None;
    for w in series.windows(2) {
        let ((t_prev, e_prev), (t, e)) = (w[0], w[1]);
        if e == e_prev {
            continue;
        }
        let tc = t_prev + (t - t_prev) / 2;
        if let Some((t0, e0)) = last_change {
            if tc > t0 && e >= e0 {
                // mJ / ns = 1e6 W
                out.push((tc, (e - e0) as f64 * 1e6 / (tc - t0) as f64));
            }
        }
        last_change = Some((tc, e));
    }
    out
}

/// One sensor's answer to one step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StepEstimate {
    pub rising: bool,
    /// Median value before the step and over the last quarter of the window after it.
    pub before: f64,
    pub after: f64,
    /// Crossings of 10 %, 50 %, 90 % of the change, ns after the step.
    pub t10_ns: i64,
    pub t50_ns: i64,
    pub t90_ns: i64,
    /// `t90 − t10`.
    pub rise_ns: i64,
    /// Boxcar width that explains the rise: `rise / 0.8`.
    pub window_ns: i64,
    /// Ramp start after the step: `t10 − 0.1 · window`.
    pub delay_ns: i64,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) })
}

/// Estimates a sensor's response to a step at `t0` (ns, same clock as `series`, which
/// must be sorted by time): the level is the median over `[t0 − before_ns, t0)`, the
/// final level the median over the last quarter of `[t0, t0 + after_ns]`. `None` when a
/// window is empty or the change is not clearly above the noise (5 robust σ of the
/// level before) or goes the wrong way.
pub fn step_response(
    series: &[(i64, f64)],
    t0: i64,
    rising: bool,
    before_ns: i64,
    after_ns: i64,
) -> Option<StepEstimate> {
    let end = t0 + after_ns;
    let mut pre: Vec<f64> = series.iter().filter(|p| p.0 >= t0 - before_ns && p.0 < t0).map(|p| p.1).collect();
    let mut post: Vec<f64> = series.iter().filter(|p| p.0 >= end - after_ns / 4 && p.0 <= end).map(|p| p.1).collect();
    let b = median(&mut pre)?;
    let a = median(&mut post)?;
    let amp = a - b;
    if (amp > 0.0) != rising || amp == 0.0 {
        return None;
    }
    let mut dev: Vec<f64> = pre.iter().map(|v| (v - b).abs()).collect();
    let sigma = 1.4826 * median(&mut dev)?;
    if amp.abs() <= 5.0 * sigma {
        return None;
    }
    // Sample-and-hold from t0: the value at t0 is the last sample at or before it.
    let first = series.partition_point(|p| p.0 <= t0);
    let start_val = if first > 0 { series[first - 1].1 } else { series.get(first)?.1 };
    let mut below = [0i64; 3];
    let levels = [0.1, 0.5, 0.9];
    let mut t = t0;
    let mut y = (start_val - b) / amp;
    for p in series[first..].iter().take_while(|p| p.0 <= end).chain(std::iter::once(&(end, f64::NAN))) {
        let seg = p.0.min(end) - t;
        for (k, l) in levels.iter().enumerate() {
            if y < *l {
                below[k] += seg;
            }
        }
        t = p.0.min(end);
        y = (p.1 - b) / amp;
    }
    let [t10_ns, t50_ns, t90_ns] = below;
    let rise_ns = t90_ns - t10_ns;
    let window_ns = (rise_ns as f64 / 0.8).round() as i64;
    Some(StepEstimate {
        rising,
        before: b,
        after: a,
        t10_ns,
        t50_ns,
        t90_ns,
        rise_ns,
        window_ns,
        delay_ns: t10_ns - (window_ns as f64 * 0.1).round() as i64,
    })
}

/// Medians over several edges of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ResponseSummary {
    pub rising: bool,
    pub edges: usize,
    pub delay_ns: i64,
    pub t50_ns: i64,
    pub rise_ns: i64,
    pub window_ns: i64,
}

pub fn summarise_edges(est: &[StepEstimate], rising: bool) -> Option<ResponseSummary> {
    let sel: Vec<&StepEstimate> = est.iter().filter(|e| e.rising == rising).collect();
    if sel.is_empty() {
        return None;
    }
    let med = |f: &dyn Fn(&StepEstimate) -> i64| {
        let mut v: Vec<f64> = sel.iter().map(|e| f(e) as f64).collect();
        median(&mut v).map_or(0, |m| m.round() as i64)
    };
    Some(ResponseSummary {
        rising,
        edges: sel.len(),
        delay_ns: med(&|e| e.delay_ns),
        t50_ns: med(&|e| e.t50_ns),
        rise_ns: med(&|e| e.rise_ns),
        window_ns: med(&|e| e.window_ns),
    })
}

// ---------------------------------------------------------------------------------
// Measurement (GPU)
// ---------------------------------------------------------------------------------

/// What `cnnergy calibrate` does.
#[derive(Clone, Debug)]
pub struct CalibrateOptions {
    /// Length of the step experiment (idle lead-in plus on/off cycles), seconds.
    pub seconds: f64,
    /// Load on and off per cycle, seconds.
    pub on_s: f64,
    pub off_s: f64,
    /// Calls per sensor for the cost table (the energy counter gets at most 100).
    pub cost_calls: usize,
    pub seed: u64,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions { seconds: 40.0, on_s: 3.0, off_s: 3.0, cost_calls: 500, seed: 1 }
    }
}

/// Cost of one sensor's NVML call, measured back to back at idle.
#[derive(Clone, Debug, Serialize)]
pub struct SensorCost {
    pub sensor: &'static str,
    pub cost: Option<CostSummary>,
    pub error: Option<String>,
}

/// Update period of one sensor, idle and under load.
#[derive(Clone, Debug, Serialize)]
pub struct SensorPeriod {
    pub sensor: &'static str,
    /// Read period during the experiment (the estimate cannot go below it).
    pub read_period_ns: Option<u64>,
    pub idle: Option<PeriodEstimate>,
    pub busy: Option<PeriodEstimate>,
}

/// One sensor's step responses.
#[derive(Clone, Debug, Serialize)]
pub struct SensorResponse {
    pub sensor: &'static str,
    pub rising: Option<ResponseSummary>,
    pub falling: Option<ResponseSummary>,
    pub edges: Vec<StepEstimate>,
}

/// The load switched on and off: realtime ns of the first launch and of the return of
/// the final synchronisation.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LoadEdge {
    pub on_ns: i64,
    pub off_ns: i64,
    pub kernels: u64,
}

/// A raw series, compact: ms after the experiment start (µs resolution) and values.
#[derive(Clone, Debug, Serialize)]
pub struct RawSeries {
    pub sensor: String,
    pub unit: &'static str,
    pub t_ms: Vec<f64>,
    pub v: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    pub device: String,
    pub uuid: String,
    pub driver: Option<String>,
    /// Realtime ns that the series' `t_ms` count from.
    pub start_unix_ns: u64,
    pub load_kernel: String,
    pub load_kernel_ms: f64,
    pub costs: Vec<SensorCost>,
    pub periods: Vec<SensorPeriod>,
    pub responses: Vec<SensorResponse>,
    pub edges: Vec<LoadEdge>,
    pub sampler: SamplerStats,
    pub series: Vec<RawSeries>,
}

/// Times `calls` back-to-back reads of every sensor.
pub fn call_costs(device: &DeviceId, calls: usize) -> Result<Vec<SensorCost>> {
    let mut src = NvmlSource::open(device)?;
    let mut out = Vec::new();
    for s in Sensor::ALL {
        let n = if s == Sensor::Energy { calls.min(100) } else { calls };
        let mut v = Vec::with_capacity(n);
        let mut error = None;
        for _ in 0..n {
            let t = Instant::now();
            // since = 0: the sample buffer returns everything it holds (the worst case).
            let r = src.read(s, 0, &mut |_| {});
            v.push(t.elapsed().as_nanos() as u64);
            if let Err(e) = r {
                error = Some(format!("{e:?}"));
                break;
            }
        }
        let cost = if error.is_none() { CostSummary::from_ns(&mut v) } else { None };
        out.push(SensorCost { sensor: s.name(), cost, error });
    }
    Ok(out)
}

/// The load: a large f16 tensor-core GEMM, launched back to back.
struct Load<'g> {
    gpu: &'g Gpu,
    g: crate::launch::tensorcore::GemmTc,
    a: cudarc::driver::CudaSlice<u16>,
    b: cudarc::driver::CudaSlice<u16>,
    c: cudarc::driver::CudaSlice<u16>,
    symbol: &'static str,
}

impl<'g> Load<'g> {
    fn new(gpu: &'g Gpu, seed: u64) -> Result<Self> {
        let n = 8192;
        let rnd = crate::bench::RandomSource::new(gpu, seed)?;
        let a = rnd.u16(gpu, n * n)?;
        let b = rnd.u16(gpu, n * n)?;
        let c = gpu.stream.alloc_zeros::<u16>(n * n).map_err(Error::driver("allocating the load's output"))?;
        let g = crate::launch::tensorcore::GemmTc::new(n, n, n);
        Ok(Load { gpu, g, a, b, c, symbol: "" })
    }

    fn launch(&mut self) -> Result<()> {
        let l = crate::launch::tensorcore::gemm(
            self.gpu,
            crate::ops::DType::F16,
            &self.g,
            &self.a.as_view(),
            &self.b.as_view(),
            None,
            &mut self.c.as_view_mut(),
        )?;
        self.symbol = l.symbol;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.gpu.stream.synchronize().map_err(Error::driver("running the load"))
    }
}

/// Collects sampler records into per-sensor series (realtime ns).
#[derive(Default)]
struct Collected {
    power: [Series; 3],
    energy: Vec<(i64, u64)>,
    sm_mhz: Series,
    temp_c: Series,
    throttle: Series,
}

impl Collected {
    fn add(&mut self, ids: &SensorIds, e: Event) {
        match e {
            Event::Power(p) => {
                let k = if p.sensor == ids.samples {
                    0
                } else if p.sensor == ids.instant {
                    1
                } else {
                    2
                };
                self.power[k].push((p.t_ns as i64, p.power_mw as f64 / 1000.0));
            }
            Event::Energy(x) => self.energy.push((x.t_ns as i64, x.energy_mj)),
            Event::Clocks(x) => self.sm_mhz.push((x.t_ns as i64, x.sm_mhz as f64)),
            Event::Temperature(x) => self.temp_c.push((x.t_ns as i64, x.temp_c as f64)),
            Event::Throttle(x) => self.throttle.push((x.t_ns as i64, x.reasons as f64)),
            _ => {}
        }
    }
}

const POWER_SENSORS: [Sensor; 3] = [Sensor::PowerSamples, Sensor::PowerInstant, Sensor::PowerUsage];

/// Runs the whole characterisation on `gpu`. `progress` gets one line per stage.
pub fn run(gpu: &Gpu, opts: &CalibrateOptions, progress: &mut dyn FnMut(&str)) -> Result<Calibration> {
    let dev = DeviceId::Uuid(gpu.info.uuid.clone());
    progress("measuring NVML call costs (idle)");
    let costs = call_costs(&dev, opts.cost_calls)?;

    progress("preparing the load (8192^3 f16 GEMM)");
    let mut load = Load::new(gpu, opts.seed)?;
    load.launch()?;
    load.sync()?;
    let t = Instant::now();
    for _ in 0..5 {
        load.launch()?;
    }
    load.sync()?;
    let kernel_ms = t.elapsed().as_secs_f64() * 1e3 / 5.0;
    // Queue at most ~20 ms of work so switching off is prompt.
    let per_chunk = ((10.0 / kernel_ms).ceil() as usize).max(1);

    // The energy counter as often as its cost allows (back to back when a read takes
    // ~4 ms as on the H200), but no faster than every 1 ms where it is cheap.
    let energy_cost = costs.iter().find(|c| c.sensor == Sensor::Energy.name()).and_then(|c| c.cost);
    let energy_period = match energy_cost {
        Some(c) if c.median_ns < 1_000_000 => Duration::from_millis(1),
        _ => Duration::ZERO,
    };
    let ids = SensorIds::sequential();
    let ms = |v: u64| Some(Duration::from_millis(v));
    let cfg = SamplerConfig::new(ids)
        .with_period(Sensor::PowerSamples, ms(250))
        .with_period(Sensor::PowerInstant, ms(1))
        .with_period(Sensor::PowerUsage, ms(1))
        .with_period(Sensor::Energy, Some(energy_period))
        .with_period(Sensor::Clocks, ms(10))
        .with_period(Sensor::Temperature, ms(100))
        .with_period(Sensor::Throttle, ms(10));
    let read_period = |s: Sensor| cfg.period(s).map(|d| d.as_nanos() as u64);
    let mut sampler = Sampler::start(dev, cfg.clone(), Timebase::realtime())?;
    let mut col = Collected::default();
    let start_ns = realtime_now_ns();
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);

    // Idle until `until` (realtime ns), draining the sampler.
    let idle_until = |sampler: &Sampler, col: &mut Collected, until: u64| {
        while realtime_now_ns() < until {
            sampler.drain(|e| col.add(&ids, e));
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let lead_in = 2.0;
    progress(&format!("idle {lead_in:.0} s"));
    idle_until(&sampler, &mut col, start_ns + (lead_in * 1e9) as u64);
    let cycle = opts.on_s + opts.off_s + 0.15;
    let cycles = (((opts.seconds - lead_in) / cycle).floor() as usize).max(1);
    let mut edges = Vec::new();
    let experiment = (|| -> Result<()> {
        for i in 0..cycles {
            // Random phase against the sensors' update grids.
            let pause = rng.random_range(0.0..0.3);
            idle_until(&sampler, &mut col, realtime_now_ns() + (pause * 1e9) as u64);
            progress(&format!("step {}/{cycles}: load on {:.0} s, off {:.0} s", i + 1, opts.on_s, opts.off_s));
            let on_ns = realtime_now_ns();
            let until = on_ns + (opts.on_s * 1e9) as u64;
            let ev = |g: &Gpu| g.ctx.new_event(None).map_err(Error::driver("creating an event"));
            let mut prev = ev(gpu)?;
            let mut kernels = 0u64;
            while realtime_now_ns() < until {
                for _ in 0..per_chunk {
                    load.launch()?;
                }
                kernels += per_chunk as u64;
                let e = ev(gpu)?;
                e.record(&gpu.stream).map_err(Error::driver("recording an event"))?;
                // Keep one chunk queued behind the running one.
                prev.synchronize().map_err(Error::driver("running the load"))?;
                prev = e;
                sampler.drain(|e| col.add(&ids, e));
            }
            load.sync()?;
            let off_ns = realtime_now_ns();
            edges.push(LoadEdge { on_ns: on_ns as i64, off_ns: off_ns as i64, kernels });
            idle_until(&sampler, &mut col, off_ns + (opts.off_s * 1e9) as u64);
        }
        Ok(())
    })();
    let stats = sampler.stop();
    sampler.drain(|e| col.add(&ids, e));
    experiment?;
    progress("analysing");

    // Windows away from the switches (1 s margin) for the update periods.
    let margin = 1_000_000_000i64;
    let mut idle_w = vec![(start_ns as i64 + margin / 2, edges[0].on_ns)];
    let mut busy_w = Vec::new();
    for (i, e) in edges.iter().enumerate() {
        busy_w.push((e.on_ns + margin, e.off_ns));
        let next_on = edges.get(i + 1).map_or(e.off_ns + (opts.off_s * 1e9) as i64, |n| n.on_ns);
        idle_w.push((e.off_ns + margin, next_on));
    }
    let energy_power = energy_to_power(&col.energy);
    let energy_f: Series = col.energy.iter().map(|&(t, e)| (t, e as f64)).collect();
    let mut periods = Vec::new();
    for (k, s) in POWER_SENSORS.iter().enumerate() {
        let p = &col.power[k];
        periods.push(SensorPeriod {
            sensor: s.name(),
            read_period_ns: read_period(*s),
            idle: update_period(p, &idle_w),
            busy: update_period(p, &busy_w),
        });
    }
    periods.push(SensorPeriod {
        sensor: Sensor::Energy.name(),
        read_period_ns: match energy_period.as_nanos() as u64 {
            0 => stats.sensor(Sensor::Energy).and_then(|s| s.cost).map(|c| c.median_ns),
            p => Some(p),
        },
        idle: update_period(&energy_f, &idle_w),
        busy: update_period(&energy_f, &busy_w),
    });

    let mut responses = Vec::new();
    let named: Vec<(&'static str, &Series)> = POWER_SENSORS
        .iter()
        .enumerate()
        .map(|(k, s)| (s.name(), &col.power[k]))
        .chain(std::iter::once(("nvml.energy (as power)", &energy_power)))
        .collect();
    for (name, series) in named {
        let mut est = Vec::new();
        for (i, e) in edges.iter().enumerate() {
            let before_on = if i == 0 { e.on_ns - idle_w[0].0 } else { e.on_ns - edges[i - 1].off_ns };
            let on = e.off_ns - e.on_ns;
            let off = edges.get(i + 1).map_or((opts.off_s * 1e9) as i64, |n| n.on_ns - e.off_ns);
            est.extend(step_response(series, e.on_ns, true, before_on.min(on), on));
            est.extend(step_response(series, e.off_ns, false, on.min(off), off));
        }
        responses.push(SensorResponse {
            sensor: name,
            rising: summarise_edges(&est, true),
            falling: summarise_edges(&est, false),
            edges: est,
        });
    }

    let raw = |sensor: &str, unit: &'static str, s: &[(i64, f64)], scale: f64| RawSeries {
        sensor: sensor.to_string(),
        unit,
        t_ms: s.iter().map(|p| ((p.0 - start_ns as i64) as f64 / 1e3).round() / 1e3).collect(),
        v: s.iter().map(|p| (p.1 * scale).round() / scale).collect(),
    };
    let e0 = col.energy.first().map_or(0.0, |p| p.1 as f64);
    let energy_rel: Series = energy_f.iter().map(|&(t, e)| (t, e - e0)).collect();
    let mut series: Vec<RawSeries> =
        POWER_SENSORS.iter().enumerate().map(|(k, s)| raw(s.name(), "W", &col.power[k], 1e3)).collect();
    series.push(raw("nvml.energy", "mJ since first read", &energy_rel, 1.0));
    series.push(raw("nvml.energy (as power)", "W", &energy_power, 1e3));
    series.push(raw("nvml.clocks.sm", "MHz", &col.sm_mhz, 1.0));
    series.push(raw("nvml.temperature", "C", &col.temp_c, 1.0));
    series.push(raw("nvml.throttle", "reason bits", &col.throttle, 1.0));

    Ok(Calibration {
        device: gpu.info.name.clone(),
        uuid: gpu.info.uuid.clone(),
        driver: gpu.info.driver_version.clone(),
        start_unix_ns: start_ns,
        load_kernel: load.symbol.to_string(),
        load_kernel_ms: kernel_ms,
        costs,
        periods,
        responses,
        edges,
        sampler: stats,
        series,
    })
}
