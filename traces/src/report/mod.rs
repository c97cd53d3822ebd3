//! The offline tools behind `cnnergy report`, `export`, `diff` and `tradeoff`.
//!
//! [`Analysis::of`] runs the energy attribution ([`crate::energy::analyze`] +
//! [`crate::energy::figures::build`]; a trace without power data gives time-only
//! figures) and gathers what the renderings need besides the figures: per-kernel
//! aggregates, recorded clocks, and the power / kernel timeline of the HTML charts.
//! Everything here renders numbers computed by `energy`; nothing re-derives energy.
//!
//! * [`tables`] — the figures as [`table::Tab`]s (stable column keys, see
//!   `docs/report-columns.md`), rendered by [`render`] as text, CSV, JSON, Markdown,
//! * [`html`] — one self-contained HTML page with SVG charts (plotters),
//! * [`export`] — Chrome / Perfetto trace JSON,
//! * [`diff`] — per-layer deltas between two traces with significance,
//! * [`tradeoff`] — the revenue model over several settings (`docs/revenue-model.md`),
//! * [`synth`] — deterministic synthetic traces for tests and benchmarks.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::energy::{self, figures, Attribution, Estimate, LayerType, Method};
use crate::reader::Trace;
use crate::records::*;

pub mod diff;
pub mod export;
pub mod html;
pub mod synth;
pub mod table;
pub mod tradeoff;

use table::{col, col_ci, Cell, Format, Show, Tab};

/// Everything a report shows about one trace.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The trace's path (or label).
    pub source: String,
    pub header: Header<'static>,
    /// False when the trace has no usable power data: energy columns are n/a.
    pub energy: bool,
    pub figures: figures::Report,
    /// Per kernel name and layer, per inference.
    pub kernels: Vec<KernelFigures>,
    /// SM / memory clocks recorded during the analysed window.
    pub clocks: Option<RecordedClocks>,
    /// Throttle reasons seen during the analysed window (names), excluding gpu_idle.
    pub throttle: Vec<String>,
    /// Notes for the reader: time-only, damage, analysis warnings.
    pub notes: Vec<String>,
    #[serde(skip)]
    pub timeline: Timeline,
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelFigures {
    pub kernel: String,
    pub layer: String,
    pub layer_type: LayerType,
    /// Launches per inference.
    pub launches: f64,
    /// GPU time per inference (ms).
    pub time_ms: f64,
    /// Energy per inference (mJ); NaN when unknown (time-only, replay).
    pub energy_mj: f64,
    pub avg_power_w: f64,
    pub time_share: f64,
    pub energy_share: f64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct RecordedClocks {
    pub samples: u64,
    pub sm_mhz_mean: f64,
    pub sm_mhz_min: u32,
    pub sm_mhz_max: u32,
    pub mem_mhz_mean: f64,
}

/// The time series the HTML charts draw (trace-clock ns).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Analysed window.
    pub window: (u64, u64),
    /// Per sensor: (t_ns, W), inside the window, at most [`MAX_POINTS`] per sensor.
    pub power: Vec<(String, Vec<(u64, f64)>)>,
    /// Busy time per layer type in [`BINS`] equal bins over the window (ns).
    pub activity: Vec<[f64; 6]>,
    /// One inference in the middle of the window, kernel by kernel.
    pub zoom: Vec<Span>,
    pub zoom_iteration: Option<u32>,
}

/// A kernel of the zoomed inference.
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    pub start_ns: u64,
    pub duration_ns: u64,
    pub layer_type: LayerType,
    pub layer: String,
    /// Attributed average power (W); NaN when unknown.
    pub power_w: f64,
}

pub const MAX_POINTS: usize = 1500;
pub const BINS: usize = 600;

fn type_index(t: LayerType) -> usize {
    LayerType::ALL.iter().position(|x| *x == t).unwrap_or(5)
}

impl Analysis {
    /// Analyses `trace` (read from `source`). A trace without power data yields
    /// time-only figures with a note; other analysis errors are returned.
    pub fn of(trace: &Trace<'_>, source: &str, opts: &energy::Options) -> Result<Analysis, energy::EnergyError> {
        let mut notes = Vec::new();
        if let Some(d) = trace.damage() {
            notes.push(format!("damaged trace ({d}): analysed what precedes the damage"));
        } else if trace.summary().is_none() {
            notes.push("the recording was cut short (no summary frame): analysed what was written".into());
        }
        let (att, figures) = match energy::analyze(trace, opts) {
            Ok(att) => {
                let f = figures::build(trace, &att);
                (Some(att), f)
            }
            Err(energy::EnergyError::NoPowerData) => {
                notes.push("no power or energy samples in this trace: time-only figures".into());
                (None, time_only(trace, opts.phase.as_deref())?)
            }
            Err(e) => return Err(e),
        };
        notes.extend(figures.warnings.iter().cloned());
        let pass = Pass::run(trace, opts.phase.as_deref(), att.as_ref());
        let kernels = kernel_figures(trace, &pass, att.as_ref(), figures.model_figures.inferences);
        Ok(Analysis {
            source: source.to_string(),
            header: trace.header().clone().into_owned(),
            energy: att.is_some(),
            figures,
            kernels,
            clocks: pass.clocks,
            throttle: pass.throttle,
            notes,
            timeline: pass.timeline,
        })
    }

    /// The device / clocks / workload description, one `(field, value)` per line; `diff`
    /// compares these between traces.
    pub fn setting(&self) -> Vec<(&'static str, String)> {
        let h = &self.header;
        let variants: Vec<String> =
            h.workload.kernel_variants.iter().map(|v| format!("{}={}", v.target, v.variant)).collect();
        let mut v = vec![
            ("device", h.device.name.to_string()),
            ("driver", h.device.driver_version.to_string()),
            ("power limit (W)", format!("{:.0}", h.device.power_limit_mw as f64 / 1000.0)),
            ("SM clock at start (MHz)", h.device.sm_clock_mhz.to_string()),
            ("memory clock at start (MHz)", h.device.mem_clock_mhz.to_string()),
        ];
        if let Some(c) = &self.clocks {
            v.push((
                "SM clock recorded (MHz)",
                format!("{:.0} (min {}, max {})", c.sm_mhz_mean, c.sm_mhz_min, c.sm_mhz_max),
            ));
            v.push(("memory clock recorded (MHz)", format!("{:.0}", c.mem_mhz_mean)));
        }
        v.push(("throttle reasons", if self.throttle.is_empty() { "none".into() } else { self.throttle.join(",") }));
        v.extend([
            ("model", h.workload.model.to_string()),
            ("batch", h.workload.batch_size.to_string()),
            ("dtype", h.workload.dtype.to_string()),
            ("kernel variants", if variants.is_empty() { "default".into() } else { variants.join(",") }),
            (
                "method",
                if self.energy { format!("{:?}", self.figures.method).to_lowercase() } else { "time only".into() },
            ),
        ]);
        v
    }
}

/// Figures with time only (the trace has no power data): per-layer GPU time per
/// execution (mean ± 95% CI over executions), energy columns NaN.
fn time_only(trace: &Trace<'_>, phase: Option<&str>) -> Result<figures::Report, energy::EnergyError> {
    let window = phase_window(trace, phase.unwrap_or("measure"));
    // Per layer: (last iteration, summed kernel time per iteration).
    let mut per: HashMap<LayerId, (u32, Vec<f64>)> = HashMap::new();
    let mut iterations: std::collections::BTreeSet<u32> = Default::default();
    let (mut first, mut last) = (u64::MAX, 0u64);
    for e in trace.events() {
        let Ok(e) = e else { break };
        if let Event::Kernel(k) = e {
            if k.start_ns < window.0 || k.start_ns > window.1 {
                continue;
            }
            let (last_it, sums) = per.entry(k.launch.layer).or_insert((k.iteration, Vec::new()));
            match sums.last_mut() {
                Some(x) if *last_it == k.iteration => *x += k.duration_ns as f64,
                _ => sums.push(k.duration_ns as f64),
            }
            *last_it = k.iteration;
            iterations.insert(k.iteration);
            first = first.min(k.start_ns);
            last = last.max(k.end_ns());
        }
    }
    if per.is_empty() {
        return Err(energy::EnergyError::NoKernels(String::new()));
    }
    let by_layer: HashMap<LayerId, Vec<f64>> = per.into_iter().map(|(l, (_, v))| (l, v)).collect();
    let mut ids: Vec<LayerId> = by_layer.keys().copied().collect();
    ids.sort();
    let n = iterations.len() as u64;
    let nan = Estimate::new(f64::NAN, f64::NAN);
    let layers: Vec<energy::LayerEnergy> = ids
        .iter()
        .map(|id| {
            let xs = &by_layer[id];
            energy::LayerEnergy {
                layer: *id,
                executions: xs.len() as u64,
                time_ns: energy::stats::mean_ci(xs),
                energy_mj: nan,
                static_mj: f64::NAN,
                dynamic_mj: f64::NAN,
                avg_power_w: f64::NAN,
                method: Method::Timeline,
            }
        })
        .collect();
    let att = Attribution {
        method: Method::Timeline,
        layers,
        kernels: Vec::new(),
        run: energy::RunEnergy {
            window_ns: last.saturating_sub(first),
            inferences: n,
            kernel_energy_j: f64::NAN,
            idle_energy_j: f64::NAN,
            total_energy_j: nan,
            counter_energy_j: None,
            counter_mismatch: None,
            idle_power_w: f64::NAN,
            avg_power_w: f64::NAN,
        },
        warnings: Vec::new(),
        sensor: String::new(),
        sensor_delay_ns: 0,
    };
    // figures::build only divides and sums: with NaN energies it yields the time
    // figures and NaN energy figures, which is what a time-only report shows.
    Ok(figures::build(trace, &att))
}

/// `[begin, end]` of the first occurrence of phase `name`, or everything.
fn phase_window(trace: &Trace<'_>, name: &str) -> (u64, u64) {
    let mut begin = None;
    for e in trace.events() {
        let Ok(Event::Marker(m)) = e else {
            if e.is_err() {
                break;
            }
            continue;
        };
        match m.kind {
            MarkerKind::PhaseBegin { phase, .. } if begin.is_none() && trace.string(phase) == Some(name) => {
                begin = Some(m.t_ns)
            }
            MarkerKind::PhaseEnd { phase, .. } if begin.is_some() && trace.string(phase) == Some(name) => {
                return (begin.unwrap_or(0), m.t_ns);
            }
            _ => {}
        }
    }
    (begin.unwrap_or(0), u64::MAX)
}

/// One pass over the events for what the figures do not hold.
struct Pass {
    /// Per kernel-event index (trace order): index into `keys`.
    event_key: Vec<u32>,
    keys: Vec<(StrId, LayerId)>,
    /// Per key: launches and summed time inside the window.
    key_time: Vec<(u64, u64)>,
    clocks: Option<RecordedClocks>,
    throttle: Vec<String>,
    timeline: Timeline,
}

impl Pass {
    fn run(trace: &Trace<'_>, phase: Option<&str>, att: Option<&Attribution>) -> Pass {
        let (wb, we) = phase_window(trace, phase.unwrap_or("measure"));
        let mut key_of: Vec<Vec<(LayerId, u32)>> = Vec::new();
        let mut p = Pass {
            event_key: Vec::new(),
            keys: Vec::new(),
            key_time: Vec::new(),
            clocks: None,
            throttle: Vec::new(),
            timeline: Timeline::default(),
        };
        let types = LayerTypes::of(trace);
        let ty = |id: LayerId| types.get(id);
        let mut kwin = (u64::MAX, 0u64);
        let mut iters: Vec<u32> = Vec::new();
        let (mut csum, mut msum, mut cn, mut cmin, mut cmax) = (0f64, 0f64, 0u64, u32::MAX, 0u32);
        let mut reasons = 0u64;
        let mut power: Vec<(StrId, Vec<(u64, f64)>)> = Vec::new();
        for e in trace.events() {
            let Ok(e) = e else { break };
            match e {
                Event::Kernel(k) => {
                    // Keys by kernel-name id (dense), then layer: no hashing per kernel.
                    let (kern, layer) = (k.launch.kernel, k.launch.layer);
                    let slot = kern.0 as usize;
                    if key_of.len() <= slot {
                        key_of.resize(slot + 1, Vec::new());
                    }
                    let idx = match key_of[slot].iter().find(|(l, _)| *l == layer) {
                        Some(&(_, i)) => i,
                        None => {
                            p.keys.push((kern, layer));
                            p.key_time.push((0, 0));
                            let i = p.keys.len() as u32 - 1;
                            key_of[slot].push((layer, i));
                            i
                        }
                    };
                    p.event_key.push(idx);
                    if k.start_ns >= wb && k.start_ns <= we {
                        let kt = &mut p.key_time[idx as usize];
                        kt.0 += 1;
                        kt.1 += k.duration_ns;
                        kwin = (kwin.0.min(k.start_ns), kwin.1.max(k.end_ns()));
                        if iters.last() != Some(&k.iteration) {
                            iters.push(k.iteration);
                        }
                    }
                }
                Event::Clocks(c) if c.t_ns >= wb && c.t_ns <= we => {
                    csum += c.sm_mhz as f64;
                    msum += c.mem_mhz as f64;
                    cn += 1;
                    cmin = cmin.min(c.sm_mhz);
                    cmax = cmax.max(c.sm_mhz);
                }
                Event::Throttle(t) if t.t_ns >= wb && t.t_ns <= we => reasons |= t.reasons,
                Event::Power(s) => match power.iter_mut().find(|x| x.0 == s.sensor) {
                    Some(x) => x.1.push((s.t_ns, s.power_mw as f64 / 1e3)),
                    None => power.push((s.sensor, vec![(s.t_ns, s.power_mw as f64 / 1e3)])),
                },
                _ => {}
            }
        }
        if cn > 0 {
            p.clocks = Some(RecordedClocks {
                samples: cn,
                sm_mhz_mean: csum / cn as f64,
                sm_mhz_min: cmin,
                sm_mhz_max: cmax,
                mem_mhz_mean: msum / cn as f64,
            });
        }
        p.throttle = throttle::NAMES
            .iter()
            .filter(|(bit, _)| reasons & bit != 0 && *bit != throttle::GPU_IDLE)
            .map(|(_, n)| n.to_string())
            .collect();
        if kwin.0 == u64::MAX {
            return p;
        }
        let (t0, t1) = kwin;
        p.timeline.window = kwin;
        let span = (t1 - t0).max(1) as f64;
        // Power inside the window (plus one sample either side, so lines reach the edges).
        for (sensor, mut xs) in power {
            xs.sort_by_key(|x| x.0);
            let lo = xs.partition_point(|x| x.0 < t0).saturating_sub(1);
            let hi = (xs.partition_point(|x| x.0 <= t1) + 1).min(xs.len());
            p.timeline.power.push((trace.string(sensor).unwrap_or("?").to_string(), downsample(&xs[lo..hi])));
        }
        p.timeline.power.sort_by(|a, b| a.0.cmp(&b.0));
        // Activity bins and the zoomed inference: a second pass over the kernels.
        let zoom_it = iters.get(iters.len() / 2).copied();
        p.timeline.zoom_iteration = zoom_it;
        let mut bins = vec![[0f64; 6]; BINS];
        let kernel_power: Option<&[energy::KernelEnergy]> = att.map(|a| a.kernels.as_slice());
        let layer_power: HashMap<LayerId, f64> =
            att.map(|a| a.layers.iter().map(|l| (l.layer, l.avg_power_w)).collect()).unwrap_or_default();
        let mut index = 0u64;
        for e in trace.events() {
            let Ok(e) = e else { break };
            let Event::Kernel(k) = e else { continue };
            let this = index;
            index += 1;
            if k.start_ns < t0 || k.start_ns > t1 {
                continue;
            }
            let ti = type_index(ty(k.launch.layer));
            // Spread the kernel's time over the bins it covers.
            let (a, b) = ((k.start_ns - t0) as f64, (k.end_ns().min(t1) - t0) as f64);
            let (ba, bb) = (((a / span) * BINS as f64) as usize, ((b / span) * BINS as f64) as usize);
            for (bi, bin) in bins.iter_mut().enumerate().take(bb.min(BINS - 1) + 1).skip(ba.min(BINS - 1)) {
                let lo = (bi as f64 * span / BINS as f64).max(a);
                let hi = ((bi + 1) as f64 * span / BINS as f64).min(b);
                if hi > lo {
                    bin[ti] += hi - lo;
                }
            }
            if Some(k.iteration) == zoom_it {
                let power_w = match kernel_power {
                    Some(ks) if !ks.is_empty() => ks
                        .binary_search_by_key(&this, |x| x.event_index)
                        .ok()
                        .map(|i| ks[i].energy_mj / (ks[i].duration_ns.max(1) as f64 * 1e-6))
                        .unwrap_or(f64::NAN),
                    _ => layer_power.get(&k.launch.layer).copied().unwrap_or(f64::NAN),
                };
                let layer = trace.layer(k.launch.layer).and_then(|l| trace.string(l.name)).unwrap_or("?");
                p.timeline.zoom.push(Span {
                    start_ns: k.start_ns,
                    duration_ns: k.duration_ns,
                    layer_type: ty(k.launch.layer),
                    layer: layer.to_string(),
                    power_w,
                });
            }
        }
        p.timeline.activity = bins;
        p
    }
}

/// Layer id -> type, without hashing (ids are small and dense in practice).
struct LayerTypes(Vec<LayerType>);

impl LayerTypes {
    fn of(trace: &Trace<'_>) -> LayerTypes {
        let mut v = Vec::new();
        for l in trace.layers() {
            // Ids far beyond the layer count (e.g. LayerId::NONE) stay "other".
            if (l.id.0 as usize) < 4 * trace.layers().len() + 1024 {
                let i = l.id.0 as usize;
                if v.len() <= i {
                    v.resize(i + 1, LayerType::Other);
                }
                v[i] = LayerType::from_op(trace.string(l.op).unwrap_or(""));
            }
        }
        LayerTypes(v)
    }

    fn get(&self, id: LayerId) -> LayerType {
        self.0.get(id.0 as usize).copied().unwrap_or(LayerType::Other)
    }
}

/// At most [`MAX_POINTS`] points: bucket means (keeps the energy-relevant level).
fn downsample(xs: &[(u64, f64)]) -> Vec<(u64, f64)> {
    if xs.len() <= MAX_POINTS {
        return xs.to_vec();
    }
    let per = xs.len().div_ceil(MAX_POINTS);
    xs.chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            let t = c.iter().map(|x| x.0 as f64).sum::<f64>() / n;
            (t as u64, c.iter().map(|x| x.1).sum::<f64>() / n)
        })
        .collect()
}

fn kernel_figures(trace: &Trace<'_>, pass: &Pass, att: Option<&Attribution>, inferences: u64) -> Vec<KernelFigures> {
    let n = inferences.max(1) as f64;
    let mut energy = vec![0f64; pass.keys.len()];
    let mut time = vec![0u64; pass.keys.len()];
    let mut count = vec![0u64; pass.keys.len()];
    let from_att = att.is_some_and(|a| !a.kernels.is_empty());
    if let Some(a) = att.filter(|_| from_att) {
        // The attributed kernels define the window: time and energy both from them.
        for k in &a.kernels {
            if let Some(&key) = pass.event_key.get(k.event_index as usize) {
                energy[key as usize] += k.energy_mj;
                time[key as usize] += k.duration_ns;
                count[key as usize] += 1;
            }
        }
    } else {
        for (i, (c, t)) in pass.key_time.iter().enumerate() {
            count[i] = *c;
            time[i] = *t;
            energy[i] = f64::NAN;
        }
    }
    let (sum_t, sum_e) = (time.iter().sum::<u64>() as f64, energy.iter().sum::<f64>());
    let mut v: Vec<KernelFigures> = pass
        .keys
        .iter()
        .enumerate()
        .filter(|(i, _)| count[*i] > 0)
        .map(|(i, (kern, layer))| {
            let rec = trace.layer(*layer);
            let op = rec.and_then(|l| trace.string(l.op)).unwrap_or("");
            let e = energy[i] / n;
            let t = time[i] as f64 / n * 1e-6;
            KernelFigures {
                kernel: trace.string(*kern).unwrap_or("?").to_string(),
                layer: rec.and_then(|l| trace.string(l.name)).unwrap_or("(no layer)").to_string(),
                layer_type: LayerType::from_op(op),
                launches: count[i] as f64 / n,
                time_ms: t,
                energy_mj: e,
                avg_power_w: if t > 0.0 { e / t } else { f64::NAN },
                time_share: time[i] as f64 / sum_t,
                energy_share: energy[i] / sum_e,
            }
        })
        .collect();
    v.sort_by(|a, b| a.layer.cmp(&b.layer).then(a.kernel.cmp(&b.kernel)));
    v
}

// ---------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------

/// Which rows `report` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Layer,
    Type,
    Kernel,
    Model,
}

impl std::str::FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<By, String> {
        Ok(match s {
            "layer" => By::Layer,
            "type" => By::Type,
            "kernel" => By::Kernel,
            "model" => By::Model,
            _ => return Err(format!("unknown grouping `{s}`: expected layer, type, kernel or model")),
        })
    }
}

/// Row order of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Most energy first (time when energy is unknown).
    Energy,
    /// Most GPU time first.
    Time,
    /// Least efficient (lowest GFLOP/J, or GFLOP/s without energy) first; rows
    /// without a figure last.
    Efficiency,
    /// Model order (layer id).
    Id,
}

impl std::str::FromStr for Sort {
    type Err = String;
    fn from_str(s: &str) -> Result<Sort, String> {
        Ok(match s {
            "energy" => Sort::Energy,
            "time" => Sort::Time,
            "efficiency" => Sort::Efficiency,
            "id" => Sort::Id,
            _ => return Err(format!("unknown sort `{s}`: expected energy, time, efficiency or id")),
        })
    }
}

pub fn model_table(a: &Analysis) -> Tab {
    let m = &a.figures.model_figures;
    let h = &a.header;
    // The replay consistency columns are always in CSV/JSON, shown only for replay traces.
    let replay = |show: Show| if a.energy && a.figures.method == Method::Replay { show } else { Show::Hidden };
    let mut t = Tab::new(
        "model",
        vec![
            col("model", "model", Show::Plain),
            col("device", "device", Show::Hidden),
            col("batch", "batch", Show::Plain),
            col("dtype", "dtype", Show::Plain),
            col("method", "method", Show::Hidden),
            col("sensor", "sensor", Show::Hidden),
            col("inferences", "inferences", Show::Plain),
            col("latency_ms", "latency (ms)", Show::Fixed(3)),
            col_ci("gpu_time_ms", "GPU time (ms)", Show::Fixed(3), "gpu_time_ci_ms"),
            col("gpu_time_ci_ms", "", Show::Hidden),
            col("images_per_s", "images/s", Show::Fixed(1)),
            col_ci("j_per_inference", "J/inference", Show::Sig3, "j_per_inference_ci"),
            col("j_per_inference_ci", "", Show::Hidden),
            col_ci("j_per_image", "J/image", Show::Sig3, "j_per_image_ci"),
            col("j_per_image_ci", "", Show::Hidden),
            col("images_per_j", "images/J", Show::Sig3),
            col("avg_power_w", "avg power (W)", Show::Fixed(1)),
            col("idle_power_w", "idle power (W)", Show::Fixed(1)),
            col("idle_energy_share", "idle energy", Show::Percent),
            col("counter_energy_j", "counter energy (J)", Show::Hidden),
            col("counter_mismatch", "vs counter", Show::Change),
            col("measured_j_per_inference", "measured J/inference", replay(Show::Sig3)),
            col("replay_sum_j_per_inference", "Σ replay J/inference", replay(Show::Sig3)),
            col("replay_consistency", "replay vs measured", replay(Show::Change)),
            col("gap_j_per_inference", "gap J/inference", replay(Show::Sig3)),
            col("sm_clock_mhz", "SM clock (MHz)", Show::Hidden),
            col("mem_clock_mhz", "mem clock (MHz)", Show::Hidden),
            col("power_limit_w", "power limit (W)", Show::Hidden),
        ],
    );
    let sm = a.clocks.map_or(h.device.sm_clock_mhz as f64, |c| c.sm_mhz_mean);
    let mem = a.clocks.map_or(h.device.mem_clock_mhz as f64, |c| c.mem_mhz_mean);
    t.push(vec![
        h.workload.model.to_string().into(),
        h.device.name.to_string().into(),
        (h.workload.batch_size as u64).into(),
        h.workload.dtype.to_string().into(),
        if a.energy { format!("{:?}", a.figures.method).to_lowercase() } else { "time".into() }.into(),
        a.figures.sensor.clone().into(),
        m.inferences.into(),
        m.latency_ms.into(),
        m.gpu_time_ms.value.into(),
        m.gpu_time_ms.ci95.into(),
        m.images_per_s.into(),
        m.energy_per_inference_j.value.into(),
        m.energy_per_inference_j.ci95.into(),
        m.j_per_image.value.into(),
        m.j_per_image.ci95.into(),
        nan_unless(a.energy, m.images_per_j).into(),
        nan_unless(a.energy, m.avg_power_w).into(),
        m.idle_power_w.into(),
        nan_unless(a.energy, m.idle_energy_share).into(),
        Cell::opt(m.counter_energy_j),
        Cell::opt(m.counter_mismatch),
        Cell::opt(m.measured_j_per_inference),
        Cell::opt(m.replay_sum_j_per_inference),
        Cell::opt(m.replay_consistency),
        Cell::opt(m.gap_j_per_inference),
        sm.into(),
        mem.into(),
        (h.device.power_limit_mw as f64 / 1000.0).into(),
    ]);
    t
}

fn nan_unless(ok: bool, v: f64) -> f64 {
    if ok {
        v
    } else {
        f64::NAN
    }
}

fn sort_rows<T>(
    rows: &mut [T],
    sort: Sort,
    energy: impl Fn(&T) -> f64,
    time: impl Fn(&T) -> f64,
    eff: impl Fn(&T) -> f64,
) {
    let desc = |x: f64| if x.is_finite() { -x } else { f64::INFINITY };
    let asc = |x: f64| if x.is_finite() { x } else { f64::INFINITY };
    match sort {
        Sort::Id => {}
        Sort::Energy => rows
            .sort_by(|a, b| desc(energy(a)).total_cmp(&desc(energy(b))).then(desc(time(a)).total_cmp(&desc(time(b))))),
        Sort::Time => rows.sort_by(|a, b| desc(time(a)).total_cmp(&desc(time(b)))),
        Sort::Efficiency => rows.sort_by(|a, b| asc(eff(a)).total_cmp(&asc(eff(b)))),
    }
}

pub fn layer_table(a: &Analysis, sort: Sort) -> Tab {
    let mut t = Tab::new(
        "layers",
        vec![
            col("layer_id", "id", Show::Hidden),
            col("layer", "layer", Show::Plain),
            col("op", "op", Show::Hidden),
            col("type", "type", Show::Plain),
            col("executions", "runs", Show::Hidden),
            col_ci("time_ms", "time (ms)", Show::Fixed(4), "time_ci_ms"),
            col("time_ci_ms", "", Show::Hidden),
            col_ci("energy_mj", "energy (mJ)", Show::Sig3, "energy_ci_mj"),
            col("energy_ci_mj", "", Show::Hidden),
            col("static_mj", "static (mJ)", Show::Hidden),
            col("dynamic_mj", "dynamic (mJ)", Show::Hidden),
            col("avg_power_w", "power (W)", Show::Fixed(1)),
            col("energy_share", "energy share", Show::Percent),
            col("time_share", "time share", Show::Percent),
            col("gflop_per_s", "GFLOP/s", Show::Sig3),
            col("gflop_per_j", "GFLOP/J", Show::Sig3),
            col("bytes_per_j", "bytes/J", Show::Sig3),
            col("arithmetic_intensity", "FLOP/byte", Show::Sig3),
        ],
    );
    let mut rows: Vec<&figures::LayerFigures> = a.figures.layers.iter().collect();
    sort_rows(
        &mut rows,
        sort,
        |l| l.energy_mj.value,
        |l| l.time_ms.value,
        |l| if a.energy { l.gflop_per_j.unwrap_or(f64::NAN) } else { l.gflop_per_s.unwrap_or(f64::NAN) },
    );
    for l in rows {
        let e = a.energy;
        t.push(vec![
            (l.layer.0 as u64).into(),
            l.name.clone().into(),
            l.op.clone().into(),
            l.layer_type.name().into(),
            l.executions.into(),
            l.time_ms.value.into(),
            l.time_ms.ci95.into(),
            l.energy_mj.value.into(),
            l.energy_mj.ci95.into(),
            l.static_mj.into(),
            l.dynamic_mj.into(),
            nan_unless(e, l.avg_power_w).into(),
            nan_unless(e, l.energy_share).into(),
            l.time_share.into(),
            Cell::opt(l.gflop_per_s),
            Cell::opt(l.gflop_per_j.filter(|_| e)),
            Cell::opt(l.bytes_per_j.filter(|_| e)),
            Cell::opt(l.arithmetic_intensity),
        ]);
    }
    t
}

pub fn type_table(a: &Analysis, sort: Sort) -> Tab {
    let mut t = Tab::new(
        "types",
        vec![
            col("type", "type", Show::Plain),
            col("layers", "layers", Show::Plain),
            col("time_ms", "time (ms)", Show::Fixed(4)),
            col("energy_mj", "energy (mJ)", Show::Sig3),
            col("time_share", "time share", Show::Percent),
            col("energy_share", "energy share", Show::Percent),
            col("avg_power_w", "power (W)", Show::Fixed(1)),
        ],
    );
    let mut rows: Vec<&figures::TypeFigures> = a.figures.types.iter().collect();
    sort_rows(&mut rows, sort, |r| r.energy_mj, |r| r.time_ms, |r| -r.avg_power_w);
    for r in rows {
        let e = a.energy;
        t.push(vec![
            r.layer_type.name().into(),
            (r.layers as u64).into(),
            r.time_ms.into(),
            nan_unless(e, r.energy_mj).into(),
            r.time_share.into(),
            nan_unless(e, r.energy_share).into(),
            nan_unless(e, r.avg_power_w).into(),
        ]);
    }
    t
}

pub fn kernel_table(a: &Analysis, sort: Sort) -> Tab {
    let mut t = Tab::new(
        "kernels",
        vec![
            col("kernel", "kernel", Show::Plain),
            col("layer", "layer", Show::Plain),
            col("type", "type", Show::Plain),
            col("launches", "launches", Show::Fixed(1)),
            col("time_ms", "time (ms)", Show::Fixed(4)),
            col("energy_mj", "energy (mJ)", Show::Sig3),
            col("avg_power_w", "power (W)", Show::Fixed(1)),
            col("time_share", "time share", Show::Percent),
            col("energy_share", "energy share", Show::Percent),
        ],
    );
    let mut rows: Vec<&KernelFigures> = a.kernels.iter().collect();
    sort_rows(&mut rows, sort, |k| k.energy_mj, |k| k.time_ms, |k| -k.avg_power_w);
    for k in rows {
        t.push(vec![
            k.kernel.clone().into(),
            k.layer.clone().into(),
            k.layer_type.name().into(),
            k.launches.into(),
            k.time_ms.into(),
            k.energy_mj.into(),
            k.avg_power_w.into(),
            k.time_share.into(),
            k.energy_share.into(),
        ]);
    }
    t
}

/// The table `--by` selects.
pub fn table_by(a: &Analysis, by: By, sort: Sort) -> Tab {
    match by {
        By::Layer => layer_table(a, sort),
        By::Type => type_table(a, sort),
        By::Kernel => kernel_table(a, sort),
        By::Model => model_table(a),
    }
}

/// Renders `report` in a text format (all but HTML, see [`html::report`]).
/// * table / md: title, setting, model figures, the `--by` table, type shares, notes;
/// * csv: the `--by` table only (one table per file);
/// * json: `{"schema", "trace", "setting", "model", "layers", "types", "kernels", "notes"}`.
pub fn render<W: Write>(a: &Analysis, format: Format, by: By, sort: Sort, mut out: W) -> io::Result<()> {
    let h = &a.header;
    match format {
        Format::Csv => table_by(a, by, sort).write_csv(out),
        Format::Json => {
            let setting: serde_json::Map<String, serde_json::Value> =
                a.setting().into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
            let doc = serde_json::json!({
                "schema": "cnnergy.report/1",
                "trace": a.source,
                "setting": setting,
                "model": model_table(a).to_json()[0],
                "layers": layer_table(a, sort).to_json(),
                "types": type_table(a, sort).to_json(),
                "kernels": kernel_table(a, sort).to_json(),
                "notes": a.notes,
            });
            serde_json::to_writer_pretty(&mut out, &doc).map_err(io::Error::other)?;
            writeln!(out)
        }
        Format::Table | Format::Md | Format::Html => {
            let md = format == Format::Md;
            let render = |t: &Tab| if md { t.to_markdown() } else { t.to_text_table() };
            let title = format!(
                "{} batch {} {} on {} ({})",
                h.workload.model,
                h.workload.batch_size,
                h.workload.dtype,
                h.device.name,
                if a.energy { format!("{:?}", a.figures.method).to_lowercase() } else { "time only".into() }
            );
            if md {
                writeln!(out, "# {title}\n")?;
                for (k, v) in a.setting() {
                    writeln!(out, "- {k}: {v}")?;
                }
                writeln!(out)?;
            } else {
                writeln!(out, "{title}")?;
                let s: Vec<String> = a.setting().into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                writeln!(out, "{}", s.join("; "))?;
            }
            writeln!(out, "{}", render(&model_table(a)))?;
            writeln!(out, "{}", render(&table_by(a, by, sort)))?;
            if by == By::Layer {
                writeln!(out, "{}", render(&type_table(a, sort)))?;
            }
            for n in &a.notes {
                writeln!(out, "{}note: {n}", if md { "- " } else { "" })?;
            }
            Ok(())
        }
    }
}
