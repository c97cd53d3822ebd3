//! Replay measurement: trace conventions, the replay planner, and the offline
//! analysis of a replay trace. See docs/energy-method.md, "Replay".
//!
//! # Trace conventions (what the GPU side writes)
//!
//! * The whole replay section is the phase [`PHASE`] (`"replay"`, header phase and
//!   `PhaseBegin/PhaseEnd { phase: "replay", index: 0 }` markers).
//! * Every busy window (one layer, one trial) is
//!   `PhaseBegin { phase: "replay.layer", index: w }` … `PhaseEnd { "replay.layer", w }`,
//!   `w` a window number unique within the trace (layer and idle windows share the
//!   numbering). Right after the `PhaseBegin` (same timestamp or later, before any
//!   kernel of the window) comes `Other { code: CODE_LAYER, a: layer id, b: trial }`.
//!   Right before the `PhaseEnd` comes `Other { code: CODE_EXECUTIONS, a: executions
//!   completed in the window, b: GPU busy span in ns (CUDA events around the launches;
//!   0 = unknown) }`.
//! * Idle windows: `PhaseBegin { "replay.idle", w }` … `PhaseEnd { "replay.idle", w }`,
//!   no kernels, same minimum length as busy windows.
//! * The energy counter is polled throughout the replay phase (one `Energy` event per
//!   read, back to back), including one read right after every `PhaseBegin` and one
//!   right before every `PhaseEnd`. Power samples may be recorded too (not needed).
//! * Kernel events inside busy windows are optional (CUPTI slows tiny launches); when
//!   present they give the GPU time per execution, otherwise `CODE_EXECUTIONS.b`.
//! * Trials of the same layer are separated by a random delay (e.g. 0–150 ms) so the
//!   counter's 100 ms update phase differs between trials.
//! * In-context replay (optional): a busy window alternates the layer's repetitions with
//!   whole-model iterations, so the board's power stays near the model's (a layer that
//!   alone exceeds the power limit is otherwise clocked down, and uses less energy per
//!   execution than in the model). Such a window carries, before its `CODE_EXECUTIONS`,
//!   `Other { code: CODE_CONTEXT, a: model iterations in the window, b: 0 }`; the
//!   model's share is measured in reference windows
//!   `PhaseBegin { "replay.reference", w }` … `PhaseEnd`, holding only model iterations,
//!   with `CODE_EXECUTIONS { a: iterations, b: busy span }`. Energy per layer execution =
//!   (window energy − iterations × reference energy per iteration) ÷ executions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::load::{Kernel, Loaded};
use super::stats::mean_ci;
use super::{Attribution, EnergyError, Estimate, LayerEnergy, Method, Options, RunEnergy};
use crate::reader::Trace;
use crate::records::{LayerId, MarkerKind};

/// Phase name of the whole replay section (header phase and markers).
pub const PHASE: &str = "replay";
/// Phase name of one busy window (one layer, one trial).
pub const LAYER_PHASE: &str = "replay.layer";
/// Phase name of one idle window.
pub const IDLE_PHASE: &str = "replay.idle";
/// Phase name of a reference window of in-context replay (whole-model iterations only).
pub const REFERENCE_PHASE: &str = "replay.reference";
/// `MarkerKind::Other` code: a = whole-model iterations interleaved in a busy window.
pub const CODE_CONTEXT: u8 = 0x42;
/// `MarkerKind::Other` code: a = layer id, b = trial, at the start of a busy window.
pub const CODE_LAYER: u8 = 0x40;
/// `MarkerKind::Other` code: a = executions in the window, b = GPU busy span (ns, 0 =
/// unknown), at the end of a busy window.
pub const CODE_EXECUTIONS: u8 = 0x41;
/// Fewest counter update edges a window needs after the skipped rise time.
pub const MIN_EDGES: usize = 2;

pub(crate) fn is_replay(trace: &Trace<'_>, data: &Loaded) -> bool {
    data.markers
        .iter()
        .any(|m| matches!(m.kind, MarkerKind::PhaseBegin { phase, .. } if trace.string(phase) == Some(LAYER_PHASE)))
}

/// One measured window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowResult {
    /// None for idle and reference windows.
    pub layer: Option<LayerId>,
    /// A reference window of in-context replay (whole-model iterations only).
    pub reference: bool,
    /// Whole-model iterations in the window (in-context layer windows and reference
    /// windows; 0 otherwise).
    pub model_iterations: u64,
    /// GPU busy span of the whole window (ns; CUDA events, 0 = unknown).
    pub busy_ns: u64,
    pub trial: u32,
    pub begin_ns: u64,
    pub end_ns: u64,
    /// Steady-state power from the energy counter (W).
    pub power_w: f64,
    /// Counter update edges used.
    pub edges: usize,
    pub executions: u64,
    /// Busy span per execution (ns): the time the energy is divided over.
    pub span_per_exec_ns: f64,
    /// Sum of kernel durations per execution (ns).
    pub gpu_time_per_exec_ns: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Open {
    begin: u64,
    layer: Option<(u64, u64)>,
    execs: Option<(u64, u64)>,
    context: u64,
}

/// Kinds of replay windows, by phase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Idle,
    Layer,
    Reference,
}

fn kind(trace: &Trace<'_>, phase: crate::records::StrId) -> Option<Kind> {
    match trace.string(phase) {
        Some(LAYER_PHASE) => Some(Kind::Layer),
        Some(IDLE_PHASE) => Some(Kind::Idle),
        Some(REFERENCE_PHASE) => Some(Kind::Reference),
        _ => None,
    }
}

/// Steady-state power in `[from, to]` from counter update edges (W, edges used).
fn steady_power(edges: &[(u64, u64)], from: u64, to: u64) -> Option<(f64, usize)> {
    let inside: Vec<&(u64, u64)> = edges.iter().filter(|e| e.0 >= from && e.0 <= to).collect();
    if inside.len() < MIN_EDGES {
        return None;
    }
    let (a, b) = (inside[0], inside[inside.len() - 1]);
    (b.0 > a.0).then(|| ((b.1 - a.1) as f64 / (b.0 - a.0) as f64 * 1e6, inside.len()))
}

/// Measures every replay window of a replay trace (what [`super::analyze`] averages).
pub fn measure_windows(trace: &Trace<'_>, opts: &Options) -> Result<(Vec<WindowResult>, Vec<String>), EnergyError> {
    Ok(windows(trace, &Loaded::read(trace)?, opts))
}

pub(crate) fn windows(trace: &Trace<'_>, data: &Loaded, opts: &Options) -> (Vec<WindowResult>, Vec<String>) {
    let mut warnings = Vec::new();
    let edges = data.counter_edges(opts.counter_delay_ns);
    let mut open: BTreeMap<(Kind, u32), Open> = BTreeMap::new();
    let mut current: Option<(Kind, u32)> = None;
    let mut out = Vec::new();
    for m in &data.markers {
        match m.kind {
            MarkerKind::PhaseBegin { phase, index } => {
                let Some(k) = kind(trace, phase) else { continue };
                open.insert((k, index), Open { begin: m.t_ns, ..Open::default() });
                current = Some((k, index));
            }
            MarkerKind::Other { code: CODE_CONTEXT, a, .. } => {
                if let Some(o) = current.and_then(|c| open.get_mut(&c)) {
                    o.context = a;
                }
            }
            MarkerKind::Other { code: CODE_LAYER, a, b } => {
                if let Some(o) = current.and_then(|c| open.get_mut(&c)) {
                    o.layer = Some((a, b));
                }
            }
            MarkerKind::Other { code: CODE_EXECUTIONS, a, b } => {
                if let Some(o) = current.and_then(|c| open.get_mut(&c)) {
                    o.execs = Some((a, b));
                }
            }
            MarkerKind::PhaseEnd { phase, index } => {
                let Some(k) = kind(trace, phase) else { continue };
                let Some(o) = open.remove(&(k, index)) else {
                    warnings.push(format!("replay window {index}: end without begin"));
                    continue;
                };
                current = None;
                let (begin, end) = (o.begin, m.t_ns);
                let Some((power_w, n_edges)) = steady_power(&edges, begin.saturating_add(opts.replay_skip_ns), end)
                else {
                    warnings.push(format!(
                        "replay window {index} ({:.0} ms): fewer than {MIN_EDGES} energy-counter updates after the \
                         {} ms rise time; skipped",
                        (end - begin) as f64 * 1e-6,
                        opts.replay_skip_ns / 1_000_000
                    ));
                    continue;
                };
                if k != Kind::Layer {
                    let (iters, busy) = o.execs.unwrap_or((0, 0));
                    if k == Kind::Reference && (iters == 0 || busy == 0) {
                        warnings.push(format!("reference window {index}: no iteration count or busy span; skipped"));
                        continue;
                    }
                    out.push(WindowResult {
                        layer: None,
                        reference: k == Kind::Reference,
                        model_iterations: iters,
                        busy_ns: busy,
                        trial: index,
                        begin_ns: begin,
                        end_ns: end,
                        power_w,
                        edges: n_edges,
                        executions: 0,
                        span_per_exec_ns: 0.0,
                        gpu_time_per_exec_ns: 0.0,
                    });
                    continue;
                }
                let Some((layer, trial)) = o.layer else {
                    warnings.push(format!("replay window {index}: no layer marker (code {CODE_LAYER:#x}); skipped"));
                    continue;
                };
                let layer = LayerId(layer as u32);
                let ks: Vec<&Kernel> =
                    data.kernels.iter().filter(|k| k.start_ns >= begin && k.start_ns < end).collect();
                let per_exec_kernels = trace.layer(layer).map_or(0, |l| l.kernels.len());
                let executions = match (o.execs, ks.is_empty(), per_exec_kernels) {
                    (Some((n, _)), _, _) if n > 0 => n,
                    (_, false, k) if k > 0 => (ks.len() / k) as u64,
                    _ => {
                        warnings.push(format!(
                            "replay window {index}: execution count unknown (no code {CODE_EXECUTIONS:#x} marker); \
                             skipped"
                        ));
                        continue;
                    }
                };
                let n = executions as f64;
                // In context the window also ran model iterations: keep its whole busy span
                // here (per execution); `analyze` takes the reference's share off.
                let in_context = o.context > 0;
                let (span, gpu) = if in_context {
                    match o.execs.filter(|e| e.1 > 0) {
                        Some((_, s)) => (s as f64 / n, s as f64 / n),
                        None => {
                            warnings
                                .push(format!("replay window {index}: in-context window without busy span; skipped"));
                            continue;
                        }
                    }
                } else if !ks.is_empty() {
                    let first = ks.iter().map(|k| k.start_ns).min().unwrap_or(begin);
                    let last = ks.iter().map(|k| k.end_ns).max().unwrap_or(end);
                    let busy: u64 = ks.iter().map(|k| k.end_ns - k.start_ns).sum();
                    ((last - first) as f64 / n, busy as f64 / n)
                } else if let Some((_, s)) = o.execs.filter(|e| e.1 > 0) {
                    (s as f64 / n, s as f64 / n)
                } else {
                    warnings.push(format!(
                        "replay window {index}: no kernel events and no busy span; using the window length"
                    ));
                    ((end - begin) as f64 / n, (end - begin) as f64 / n)
                };
                if gpu < 0.9 * span {
                    warnings.push(format!(
                        "replay window {index} (layer {}): GPU busy only {:.0}% of the span; the gaps' energy is \
                         charged to the layer",
                        layer.0,
                        gpu / span * 100.0
                    ));
                }
                out.push(WindowResult {
                    layer: Some(layer),
                    reference: false,
                    model_iterations: o.context,
                    busy_ns: o.execs.map_or(0, |e| e.1),
                    trial: trial as u32,
                    begin_ns: begin,
                    end_ns: end,
                    power_w,
                    edges: n_edges,
                    executions,
                    span_per_exec_ns: span,
                    gpu_time_per_exec_ns: gpu,
                });
            }
            _ => {}
        }
    }
    (out, warnings)
}

pub(crate) fn analyze(trace: &Trace<'_>, data: &Loaded, opts: &Options) -> Result<Attribution, EnergyError> {
    let (wins, mut warnings) = windows(trace, data, opts);
    if data.energy.len() < 2 {
        return Err(EnergyError::NoPowerData);
    }
    let idle: Vec<f64> = wins.iter().filter(|w| w.layer.is_none() && !w.reference).map(|w| w.power_w).collect();
    // In-context replay: energy and time of one whole-model iteration, from the reference windows.
    let refs: Vec<&WindowResult> = wins.iter().filter(|w| w.reference).collect();
    let mut ref_e = mean_ci(
        &refs.iter().map(|w| w.power_w * w.busy_ns as f64 * 1e-6 / w.model_iterations as f64).collect::<Vec<_>>(),
    );
    let mut ref_t = mean_ci(&refs.iter().map(|w| w.busy_ns as f64 / w.model_iterations as f64).collect::<Vec<_>>());
    let in_context = wins.iter().any(|w| w.layer.is_some() && w.model_iterations > 0);
    if refs.is_empty() {
        (ref_e, ref_t) = (Estimate::new(0.0, 0.0), Estimate::new(0.0, 0.0));
    }
    if in_context {
        if refs.is_empty() {
            return Err(EnergyError::Replay("in-context replay without a usable reference window".into()));
        }
        warnings.push(format!(
            "in-context replay: layers alternated with whole-model iterations of {:.3} ± {:.3} mJ and {:.1} µs \
             (from {} reference windows), subtracted per window",
            ref_e.value,
            ref_e.ci95,
            ref_t.value * 1e-3,
            refs.len()
        ));
    }
    let idle_est = mean_ci(&idle);
    if idle.is_empty() {
        warnings.push("no usable idle window: static/dynamic split unavailable (NaN)".into());
    }
    let idle_w = idle_est.value;
    let mut by_layer: BTreeMap<LayerId, Vec<&WindowResult>> = BTreeMap::new();
    for w in wins.iter().filter(|w| w.layer.is_some()) {
        by_layer.entry(w.layer.unwrap_or(LayerId::NONE)).or_default().push(w);
    }
    if by_layer.is_empty() {
        return Err(EnergyError::Replay("no usable busy window (see the warnings of the window checks)".into()));
    }
    let mut layers = Vec::new();
    for (id, ws) in &by_layer {
        // Model iterations per execution (0 unless in context).
        let share = |w: &WindowResult| w.model_iterations as f64 / w.executions.max(1) as f64;
        let e: Vec<f64> = ws.iter().map(|w| w.power_w * w.span_per_exec_ns * 1e-6 - share(w) * ref_e.value).collect();
        let t: Vec<f64> = ws.iter().map(|w| w.gpu_time_per_exec_ns - share(w) * ref_t.value).collect();
        let span_of = |w: &WindowResult| w.span_per_exec_ns - share(w) * ref_t.value;
        let p: Vec<f64> = ws.iter().zip(&e).map(|(w, e)| e / span_of(w).max(1.0) * 1e6).collect();
        let span: f64 = ws.iter().map(|w| span_of(w)).sum::<f64>() / ws.len() as f64;
        let mut energy = mean_ci(&e);
        // The reference's uncertainty is shared by every trial: add it in quadrature.
        let k = ws.iter().map(|w| share(w)).sum::<f64>() / ws.len() as f64;
        energy.ci95 = (energy.ci95.powi(2) + (k * ref_e.ci95).powi(2)).sqrt();
        if ws.len() < 2 {
            warnings.push(format!("layer {}: one usable trial only, no CI", id.0));
        }
        let static_mj = idle_w * span * 1e-6;
        layers.push(LayerEnergy {
            layer: *id,
            executions: ws.iter().map(|w| w.executions).sum(),
            time_ns: mean_ci(&t),
            energy_mj: energy,
            static_mj,
            dynamic_mj: energy.value - static_mj,
            avg_power_w: p.iter().sum::<f64>() / p.len() as f64,
            method: Method::Replay,
        });
    }
    warnings.extend(context_notes(trace, data, &layers, &wins));
    // Whole-run figures: from the trace's measure phase when it has one, else per inference from the layers.
    let run = match super::timeline::analyze(trace, data, &Options { phase: Some("measure".into()), ..opts.clone() }) {
        Ok(t) => t.run,
        Err(_) => {
            let t_ns: f64 = layers.iter().map(|l| l.time_ns.value).sum();
            let e_j: f64 = layers.iter().map(|l| l.energy_mj.value).sum::<f64>() * 1e-3;
            let ci = layers.iter().map(|l| l.energy_mj.ci95.powi(2)).sum::<f64>().sqrt() * 1e-3;
            RunEnergy {
                window_ns: t_ns as u64,
                inferences: 1,
                kernel_energy_j: e_j,
                idle_energy_j: 0.0,
                total_energy_j: Estimate::new(e_j, ci),
                counter_energy_j: None,
                counter_mismatch: None,
                idle_power_w: idle_w,
                avg_power_w: if t_ns > 0.0 { e_j / t_ns * 1e9 } else { 0.0 },
            }
        }
    };
    Ok(Attribution {
        method: Method::Replay,
        layers,
        kernels: Vec::new(),
        run,
        warnings,
        sensor: String::new(),
        sensor_delay_ns: 0,
    })
}

/// Layers whose replayed time differs from their time in the model by more than this
/// (relative) are named in the notes.
pub const CONTEXT_TIME_TOLERANCE: f64 = 0.10;

/// How far the replay ran under the model's conditions: each layer's GPU time per
/// execution in replay against its kernels' time per iteration in the measure phase
/// (a layer that ran faster alone, e.g. from a warmer cache, also used less energy), and
/// the die temperature in the measure phase against the busy windows (leakage power
/// grows with it). Empty without a measure phase.
pub(crate) fn context_notes(
    trace: &Trace<'_>,
    data: &Loaded,
    layers: &[LayerEnergy],
    wins: &[WindowResult],
) -> Vec<String> {
    let mut notes = Vec::new();
    let Some((b, e)) = data.phase_span(trace, "measure") else {
        return notes;
    };
    let mut model: BTreeMap<LayerId, f64> = BTreeMap::new();
    let mut iterations = std::collections::BTreeSet::new();
    for k in data.kernels.iter().filter(|k| k.start_ns >= b && k.end_ns <= e) {
        *model.entry(k.layer).or_default() += (k.end_ns - k.start_ns) as f64;
        iterations.insert(k.iteration);
    }
    if !iterations.is_empty() {
        let n = iterations.len() as f64;
        let (mut t_replay, mut t_model) = (0.0, 0.0);
        let mut off = Vec::new();
        for l in layers {
            let Some(m) = model.get(&l.layer).map(|t| t / n) else { continue };
            t_replay += l.time_ns.value;
            t_model += m;
            let d = l.time_ns.value / m - 1.0;
            if d.abs() > CONTEXT_TIME_TOLERANCE && m > 0.0 {
                let name = trace.layer(l.layer).and_then(|x| trace.string(x.name)).unwrap_or("?");
                off.push((d, format!("{name} {:+.0} %", d * 100.0)));
            }
        }
        if t_model > 0.0 {
            off.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
            let list: Vec<String> = off.iter().take(5).map(|x| x.1.clone()).collect();
            notes.push(format!(
                "replay vs model: replayed layers' GPU time {:.4} ms per inference, their kernels in the measure \
                 phase {:.4} ms ({:+.1} %){}",
                t_replay * 1e-6,
                t_model * 1e-6,
                (t_replay / t_model - 1.0) * 100.0,
                if off.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} layers off by more than {:.0} %: {}",
                        off.len(),
                        CONTEXT_TIME_TOLERANCE * 100.0,
                        list.join(", ")
                    )
                }
            ));
        }
    }
    // Mean of samples in the measure phase and over the busy windows (sample-weighted).
    let compare = |xs: &[(u64, f64)]| -> Option<(f64, f64)> {
        let mean = |from: u64, to: u64| -> (f64, usize) {
            let v: Vec<f64> = xs.iter().filter(|x| x.0 >= from && x.0 <= to).map(|x| x.1).collect();
            (v.iter().sum::<f64>(), v.len())
        };
        let (sm, nm) = mean(b, e);
        let (sr, nr) = wins
            .iter()
            .filter(|w| w.layer.is_some())
            .map(|w| mean(w.begin_ns, w.end_ns))
            .fold((0.0, 0), |a, x| (a.0 + x.0, a.1 + x.1));
        (nm > 0 && nr > 0).then(|| (sm / nm as f64, sr / nr as f64))
    };
    if let Some((tm, tr)) = compare(&data.temperature) {
        notes.push(format!(
            "die temperature: {tm:.1} °C in the measure phase, {tr:.1} °C in the replay windows ({:+.1} °C)",
            tr - tm
        ));
    }
    if let Some((cm, cr)) = compare(&data.sm_clock) {
        let capped: Vec<(u64, f64)> = data
            .throttle
            .iter()
            .map(|&(t, bits)| {
                let cap = crate::records::throttle::SW_POWER_CAP | crate::records::throttle::HW_POWER_BRAKE_SLOWDOWN;
                (t, if bits & cap != 0 { 100.0 } else { 0.0 })
            })
            .collect();
        let cap = compare(&capped)
            .map(|(pm, pr)| format!("; power-capped samples {pm:.0} % vs {pr:.0} %"))
            .unwrap_or_default();
        notes.push(format!(
            "SM clock: {cm:.0} MHz in the measure phase, {cr:.0} MHz in the replay windows ({:+.1} %){cap}",
            (cr / cm - 1.0) * 100.0
        ));
    }
    // Layers whose replay windows ran into the power limit: alone they are clocked down
    // and use less energy per execution than in the model (`--replay-in-context` helps).
    let cap = crate::records::throttle::SW_POWER_CAP | crate::records::throttle::HW_POWER_BRAKE_SLOWDOWN;
    let mut capped: BTreeMap<LayerId, (usize, usize)> = BTreeMap::new();
    for w in wins.iter().filter(|w| w.layer.is_some() && w.model_iterations == 0) {
        let c = capped.entry(w.layer.unwrap_or(LayerId::NONE)).or_default();
        for &(_, bits) in data.throttle.iter().filter(|x| x.0 >= w.begin_ns && x.0 <= w.end_ns) {
            c.0 += usize::from(bits & cap != 0);
            c.1 += 1;
        }
    }
    let mut list: Vec<(f64, String)> = capped
        .iter()
        .filter(|(_, c)| c.1 > 0 && c.0 * 4 > c.1)
        .map(|(id, c)| {
            let name = trace.layer(*id).and_then(|x| trace.string(x.name)).unwrap_or("?");
            (c.0 as f64 / c.1 as f64, format!("{name} ({:.0} %)", c.0 as f64 / c.1 as f64 * 100.0))
        })
        .collect();
    if !list.is_empty() {
        list.sort_by(|a, b| b.0.total_cmp(&a.0));
        notes.push(format!(
            "power-capped in isolated replay (share of clock-event samples): {}; these layers were clocked down and \
             their replayed energy is below what they use in the model (re-measure with --replay-in-context)",
            list.iter().map(|x| x.1.clone()).collect::<Vec<_>>().join(", ")
        ));
    }
    notes
}

/// One kernel launch of a replay plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedKernel {
    pub kernel: String,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub registers_per_thread: u32,
    pub static_smem_bytes: u32,
    pub dynamic_smem_bytes: u32,
    pub stream: u32,
    /// Mean duration in the profile (ns).
    pub mean_ns: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerPlan {
    pub layer: u32,
    pub name: String,
    pub op: String,
    /// In launch order, from one measure iteration.
    pub kernels: Vec<PlannedKernel>,
    /// Mean GPU time of one execution (sum of its kernels) over the measure phase.
    pub mean_ns: f64,
    /// Back-to-back executions per busy window: fills `skip_ns + window_ns`.
    pub repetitions: u64,
}

/// What the GPU side replays: per layer, its kernels and how often to run them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayPlan {
    /// Steady-state part of each busy window.
    pub window_ns: u64,
    /// Rise time skipped at the start of each busy window.
    pub skip_ns: u64,
    pub trials: u32,
    /// Iteration whose launches were copied.
    pub source_iteration: u32,
    /// Sorted by layer id.
    pub layers: Vec<LayerPlan>,
}

/// Plans a replay from a profile trace (kernels of the "measure" phase, or of the
/// whole trace when it has none).
pub fn plan_replay(trace: &Trace<'_>, opts: &Options) -> Result<ReplayPlan, EnergyError> {
    let data = Loaded::read(trace)?;
    let phase = opts.phase.as_deref().unwrap_or("measure");
    let span = data.phase_span(trace, phase);
    let sel: Vec<(usize, &Kernel)> = data
        .kernels
        .iter()
        .enumerate()
        .filter(|(_, k)| span.is_none_or(|(a, b)| k.start_ns >= a && k.start_ns < b))
        .filter(|(_, k)| k.layer != LayerId::NONE)
        .collect();
    let Some(source) = sel.iter().map(|(_, k)| k.iteration).min() else {
        return Err(EnergyError::NoKernels(format!(" (phase {phase:?})")));
    };
    // Per layer: time per iteration, and per kernel position: durations.
    let mut per_iter: BTreeMap<(LayerId, u32), f64> = BTreeMap::new();
    let mut per_pos: BTreeMap<(LayerId, u32), Vec<f64>> = BTreeMap::new(); // (layer, iteration) -> durations in order
    for (_, k) in &sel {
        *per_iter.entry((k.layer, k.iteration)).or_default() += (k.end_ns - k.start_ns) as f64;
        per_pos.entry((k.layer, k.iteration)).or_default().push((k.end_ns - k.start_ns) as f64);
    }
    let fill = opts.replay_skip_ns + opts.replay_window_ns;
    let mut layers: BTreeMap<LayerId, LayerPlan> = BTreeMap::new();
    for (_, k) in sel.iter().filter(|(_, k)| k.iteration == source) {
        let launch = data.launches[k.index as usize];
        let plan = layers.entry(k.layer).or_insert_with(|| {
            let rec = trace.layer(k.layer);
            LayerPlan {
                layer: k.layer.0,
                name: rec.and_then(|r| trace.string(r.name)).unwrap_or("?").to_string(),
                op: rec.and_then(|r| trace.string(r.op)).unwrap_or("?").to_string(),
                kernels: Vec::new(),
                mean_ns: 0.0,
                repetitions: 0,
            }
        });
        let pos = plan.kernels.len();
        let durs: Vec<f64> =
            per_pos.range((k.layer, 0)..=(k.layer, u32::MAX)).filter_map(|(_, d)| d.get(pos).copied()).collect();
        plan.kernels.push(PlannedKernel {
            kernel: trace.string(launch.kernel).unwrap_or("?").to_string(),
            grid: launch.grid,
            block: launch.block,
            registers_per_thread: launch.registers_per_thread,
            static_smem_bytes: launch.static_smem_bytes,
            dynamic_smem_bytes: launch.dynamic_smem_bytes,
            stream: launch.stream,
            mean_ns: durs.iter().sum::<f64>() / durs.len().max(1) as f64,
        });
    }
    for plan in layers.values_mut() {
        let id = LayerId(plan.layer);
        let times: Vec<f64> = per_iter.range((id, 0)..=(id, u32::MAX)).map(|(_, t)| *t).collect();
        plan.mean_ns = times.iter().sum::<f64>() / times.len().max(1) as f64;
        plan.repetitions = (fill as f64 / plan.mean_ns.max(1.0)).ceil().max(1.0) as u64;
    }
    Ok(ReplayPlan {
        window_ns: opts.replay_window_ns,
        skip_ns: opts.replay_skip_ns,
        trials: opts.replay_trials,
        source_iteration: source,
        layers: layers.into_values().collect(),
    })
}
