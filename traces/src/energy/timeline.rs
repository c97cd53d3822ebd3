//! Timeline attribution: fit a per-layer power model to the power samples, build the
//! power curve, integrate it over kernels and idle gaps. See docs/energy-method.md.

use std::collections::BTreeMap;

use super::linalg::{chol_inverse, chol_solve, Sym};
use super::load::{Kernel, Loaded};
use super::stats::{mean_ci, t95};
use super::{
    sensors, Attribution, EnergyError, Estimate, KernelEnergy, LayerEnergy, Method, Options, RunEnergy, SensorModel,
    Window,
};
use crate::reader::Trace;
use crate::records::LayerId;

/// Name under which the energy counter is used as a power sensor when no power
/// samples exist.
pub const COUNTER_SENSOR: &str = "nvml.energy";

/// Delay grid: 2·DELAY_STEPS + 1 points over nominal ± uncertainty.
const DELAY_STEPS: i64 = 5;
/// Delay refinement stops at this step.
const REFINE_MIN_NS: i64 = 100_000;
/// 95 % quantile of χ²(1).
const CHI2_1_95: f64 = 3.841_458_820_694_124;

/// Column 0 of the power model is idle time; layers follow.
const IDLE: usize = 0;

/// A stretch of time with one owner: a kernel (`kernel` = index into the selected
/// kernels) or idle. Concurrent kernels share a stretch: one piece each, weight 1/k.
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    pub a: u64,
    pub b: u64,
    pub col: usize,
    pub kernel: Option<u32>,
    pub w: f64,
}

/// One power observation: the mean power over `[a, b]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Obs {
    pub a: u64,
    pub b: u64,
    pub watts: f64,
}

/// The reconstructed power curve: `P(t) = s(t) · Σ_{pieces at t} w · P̂[col]`, with
/// `s(t)` the per-sample-window scale (1 outside every window).
#[derive(Debug, Clone)]
pub struct Curve<'a> {
    pub pieces: &'a [Piece],
    pub power: Vec<f64>,
    /// Sorted, non-overlapping `(a, b, s)`.
    pub scale: Vec<(u64, u64, f64)>,
}

impl Curve<'_> {
    /// `∫ s(t) dt` over `[a, b]` (ns); `hint` speeds up monotone queries.
    fn scaled_len(&self, a: u64, b: u64, hint: &mut usize) -> f64 {
        let r = &self.scale;
        while *hint > 0 && r[*hint - 1].1 > a {
            *hint -= 1;
        }
        while *hint < r.len() && r[*hint].1 <= a {
            *hint += 1;
        }
        let mut covered = 0u64;
        let mut acc = 0.0;
        let mut i = *hint;
        while i < r.len() && r[i].0 < b {
            let lo = r[i].0.max(a);
            let hi = r[i].1.min(b);
            if hi > lo {
                acc += (hi - lo) as f64 * r[i].2;
                covered += hi - lo;
            }
            i += 1;
        }
        acc + (b - a - covered) as f64
    }

    /// Energy of each piece (J).
    pub fn piece_energies(&self) -> Vec<f64> {
        let mut hint = 0;
        self.pieces.iter().map(|p| p.w * self.power[p.col] * self.scaled_len(p.a, p.b, &mut hint) * 1e-9).collect()
    }

    /// Energy per model column and in total (J): the sums of [`Curve::piece_energies`]
    /// per column, from `index` (built once for these pieces) in O(scale regions · columns)
    /// instead of a pass over every piece.
    pub fn col_energies(&self, index: &ColIndex) -> (Vec<f64>, f64) {
        let mut weighted: Vec<f64> = index.cols.iter().map(|c| c.cum.last().copied().unwrap_or(0.0)).collect();
        for &(a, b, s) in &self.scale {
            for (c, acc) in weighted.iter_mut().enumerate() {
                *acc += (s - 1.0) * (index.upto(c, b) - index.upto(c, a));
            }
        }
        let per: Vec<f64> = weighted.iter().zip(&self.power).map(|(w, p)| w * p * 1e-9).collect();
        let total = per.iter().sum();
        (per, total)
    }

    /// The curve's power at `t` (W).
    #[cfg(test)]
    pub fn power_at(&self, t: u64) -> f64 {
        let s = match self.scale.partition_point(|r| r.1 <= t) {
            i if i < self.scale.len() && self.scale[i].0 <= t => self.scale[i].2,
            _ => 1.0,
        };
        let i = self.pieces.partition_point(|p| p.b <= t);
        let mut p = 0.0;
        for pc in self.pieces[i..].iter().take_while(|p| p.a <= t) {
            if pc.a <= t && t < pc.b {
                p += pc.w * self.power[pc.col];
            }
        }
        s * p
    }

    /// `∫ P(t) dt` over `[a, b]` (J).
    pub fn integral(&self, a: u64, b: u64) -> f64 {
        let i = self.pieces.partition_point(|p| p.b <= a);
        let mut hint = 0;
        let mut e = 0.0;
        for p in self.pieces[i..].iter().take_while(|p| p.a < b) {
            let (lo, hi) = (p.a.max(a), p.b.min(b));
            if hi > lo {
                e += p.w * self.power[p.col] * self.scaled_len(lo, hi, &mut hint) * 1e-9;
            }
        }
        e
    }
}

/// The pieces of each model column with their cumulative weighted length, so that the
/// weighted time a column spends in any interval is two binary searches away.
#[derive(Debug, Clone)]
pub struct ColIndex<'a> {
    pieces: &'a [Piece],
    cols: Vec<ColPieces>,
}

#[derive(Debug, Clone, Default)]
struct ColPieces {
    /// The column's pieces (indices into the pieces, in time order) and their ends.
    idx: Vec<u32>,
    b: Vec<u64>,
    /// `cum[i]` = Σ w·len of the column's pieces before `idx[i]` (len + 1 entries).
    cum: Vec<f64>,
}

impl ColIndex<'_> {
    pub fn new(pieces: &[Piece], ncols: usize) -> ColIndex<'_> {
        let mut count = vec![0usize; ncols];
        for p in pieces {
            count[p.col] += 1;
        }
        let mut cols: Vec<ColPieces> = count
            .iter()
            .map(|&n| {
                let mut cum = Vec::with_capacity(n + 1);
                cum.push(0.0);
                ColPieces { idx: Vec::with_capacity(n), b: Vec::with_capacity(n), cum }
            })
            .collect();
        for (i, p) in pieces.iter().enumerate() {
            let c = &mut cols[p.col];
            c.idx.push(i as u32);
            c.b.push(p.b);
            let last = c.cum.last().copied().unwrap_or(0.0);
            c.cum.push(last + p.w * (p.b - p.a) as f64);
        }
        ColIndex { pieces, cols }
    }

    /// Σ w·|piece ∩ (−∞, t]| over column `c`'s pieces (pieces are in time order, `a` and
    /// `b` non-decreasing; only pieces of one elementary interval can straddle `t`).
    fn upto(&self, c: usize, t: u64) -> f64 {
        let col = &self.cols[c];
        let i = col.b.partition_point(|&b| b <= t);
        let mut v = col.cum[i];
        for &k in &col.idx[i..] {
            let p = &self.pieces[k as usize];
            if p.a >= t {
                break;
            }
            v += p.w * (t - p.a) as f64;
        }
        v
    }
}

/// Splits `[from, to]` into pieces: elementary intervals between kernel boundaries.
/// `cols[k]` is kernel k's model column.
pub fn pieces(kernels: &[(u64, u64)], cols: &[usize], from: u64, to: u64) -> Vec<Piece> {
    let mut out = Vec::with_capacity(kernels.len() * 2 + 1);
    let mut active: Vec<(u64, u32)> = Vec::new(); // (end, kernel)
    let mut i = 0;
    let mut t = from;
    loop {
        active.retain(|x| x.0 > t);
        while i < kernels.len() && kernels[i].0 <= t {
            if kernels[i].1 > t {
                active.push((kernels[i].1, i as u32));
            }
            i += 1;
        }
        let next_start = kernels.get(i).map_or(u64::MAX, |k| k.0);
        let next_end = active.iter().map(|x| x.0).min().unwrap_or(u64::MAX);
        let next = next_start.min(next_end).min(to);
        if next <= t {
            break;
        }
        if active.is_empty() {
            out.push(Piece { a: t, b: next, col: IDLE, kernel: None, w: 1.0 });
        } else {
            let w = 1.0 / active.len() as f64;
            for &(_, k) in &active {
                out.push(Piece { a: t, b: next, col: cols[k as usize], kernel: Some(k), w });
            }
        }
        t = next;
    }
    out
}

/// Turns a sensor's readings into observations under `model` (see [`SensorModel`]).
pub fn observations(readings: &[(u64, f64)], model: &SensorModel) -> Vec<Obs> {
    // Effective reading times.
    let mut pts: Vec<(u64, f64)> = Vec::with_capacity(readings.len());
    if model.polled {
        for w in readings.windows(2) {
            if w[1].1 != w[0].1 {
                pts.push((w[0].0 + (w[1].0 - w[0].0) / 2, w[1].1));
            }
        }
    } else {
        pts.extend_from_slice(readings);
    }
    let shift = |t: u64| (t as i64).saturating_sub(model.delay_ns).max(0) as u64;
    let mut out = Vec::with_capacity(pts.len());
    match model.window {
        Window::SincePrevious { max_ns } => {
            for w in pts.windows(2) {
                let (a, b) = (shift(w[0].0), shift(w[1].0));
                if b > a && b - a <= max_ns {
                    out.push(Obs { a, b, watts: w[1].1 });
                }
            }
        }
        Window::Fixed { ns } => {
            for &(t, p) in &pts {
                let b = shift(t);
                if b >= ns {
                    out.push(Obs { a: b - ns, b, watts: p });
                }
            }
        }
    }
    out
}

/// Observations from the energy counter: mean power between consecutive update edges.
fn counter_observations(edges: &[(u64, u64)]) -> Vec<Obs> {
    edges
        .windows(2)
        .filter(|w| w[1].0 > w[0].0 && w[1].1 >= w[0].1)
        .map(|w| Obs { a: w[0].0, b: w[1].0, watts: (w[1].1 - w[0].1) as f64 / (w[1].0 - w[0].0) as f64 * 1e6 })
        .collect()
}

/// Result of the power-model fit.
#[derive(Debug, Clone)]
pub struct Fit {
    pub power: Vec<f64>,
    /// Posterior covariance of `power` (row-major, ncols²; W²).
    pub cov: Vec<f64>,
    /// Residual degrees of freedom (n − effective parameters).
    pub df: f64,
    pub sigma_w: f64,
    /// Residual sum of squares (W²).
    pub rss: f64,
    /// Time (ns) each column is observed for, summed over observations.
    pub observed_ns: Vec<f64>,
    /// Per observation: (column, fraction of the window it owns), the design matrix row.
    pub rows: Vec<Vec<(usize, f64)>>,
}

impl Fit {
    pub fn sd(&self, c: usize) -> f64 {
        self.cov[c * self.power.len() + c].sqrt()
    }

    /// Standard deviation of `Σ a_c P_c` over the given (column, a) pairs.
    pub fn sd_of(&self, terms: &[(usize, f64)]) -> f64 {
        let n = self.power.len();
        let mut v = 0.0;
        for &(i, ai) in terms {
            for &(j, aj) in terms {
                v += ai * aj * self.cov[i * n + j];
            }
        }
        v.max(0.0).sqrt()
    }
}

/// Bayesian ridge fit of `y_j = Σ_c φ_jc P_c + ε`, `φ_jc` = fraction of window j
/// owned by column c; prior `P_c ~ N(m, τ²)`, `m` = mean observation; noise σ
/// estimated from the residuals (floored at `noise_floor_w`).
pub fn fit(pieces: &[Piece], obs: &[Obs], ncols: usize, prior_sd_w: f64, noise_floor_w: f64) -> Fit {
    // Normal equations, accumulated once: G = ΦᵀΦ, h = Φᵀy.
    let mut g = Sym::zeros(ncols);
    let mut h = vec![0.0; ncols];
    let mut yy = 0.0;
    let mut dense = vec![0.0; ncols];
    let mut row: Vec<(usize, f64)> = Vec::with_capacity(ncols);
    let mut observed_ns = vec![0.0; ncols];
    let mut rows = Vec::with_capacity(obs.len());
    for o in obs {
        row.clear();
        let i = pieces.partition_point(|p| p.b <= o.a);
        for p in pieces[i..].iter().take_while(|p| p.a < o.b) {
            let (lo, hi) = (p.a.max(o.a), p.b.min(o.b));
            if hi > lo {
                if dense[p.col] == 0.0 {
                    row.push((p.col, 0.0));
                }
                dense[p.col] += p.w * (hi - lo) as f64;
            }
        }
        let len = (o.b - o.a) as f64;
        for r in row.iter_mut() {
            r.1 = dense[r.0] / len;
            dense[r.0] = 0.0;
            observed_ns[r.0] += r.1 * len;
        }
        for &(c1, v1) in &row {
            h[c1] += v1 * o.watts;
            for &(c2, v2) in &row {
                if c2 >= c1 {
                    g.add(c1, c2, v1 * v2);
                }
            }
        }
        yy += o.watts * o.watts;
        rows.push(row.clone());
    }
    for i in 0..ncols {
        for j in 0..i {
            g.a[i * ncols + j] = g.at(j, i);
        }
    }
    let n = obs.len();
    let m = obs.iter().map(|o| o.watts).sum::<f64>() / n.max(1) as f64;
    let tau2 = prior_sd_w * prior_sd_w;
    let mut sigma = noise_floor_w.max(1e-3);
    let mut p_eff = None;
    let mut result = None;
    // Alternate between the fit and the noise level it implies (converges in a few
    // steps). The effective parameter count changes slowly with σ, so the O(p³)
    // inverse is taken only on the first and the final step.
    for step in 0..8 {
        let s2 = sigma * sigma;
        let mut a = Sym { n: ncols, a: g.a.iter().map(|x| x / s2).collect() };
        for c in 0..ncols {
            a.add(c, c, 1.0 / tau2);
        }
        let b: Vec<f64> = h.iter().map(|x| x / s2 + m / tau2).collect();
        let l = a.cholesky().expect("the prior term makes the matrix positive definite");
        let p = chol_solve(&l, ncols, &b);
        // rss = yᵀy − 2 pᵀh + pᵀGp
        let gp: Vec<f64> = (0..ncols).map(|i| (0..ncols).map(|j| g.at(i, j) * p[j]).sum()).collect();
        let rss = (yy - 2.0 * dot(&p, &h) + dot(&p, &gp)).max(0.0);
        let pe = *p_eff.get_or_insert_with(|| effective_params(&l, ncols, tau2));
        let df = (n as f64 - pe).max(1.0);
        let new_sigma = (rss / df).sqrt().max(noise_floor_w);
        let done = (new_sigma - sigma).abs() <= 1e-3 * sigma || step == 7;
        if done {
            let cov = chol_inverse(&l, ncols);
            let pe = effective_params_from(&cov, ncols, tau2);
            result = Some((p, cov, (n as f64 - pe).max(1.0), rss, sigma));
            break;
        }
        sigma = new_sigma;
    }
    let (power, cov, df, rss, sigma) = result.expect("the loop ends with a result");
    Fit { power, cov, df, sigma_w: sigma, rss, observed_ns, rows }
}

/// Effective number of parameters of the ridge fit: `p − tr(A⁻¹)/τ²`.
fn effective_params(l: &[f64], n: usize, tau2: f64) -> f64 {
    effective_params_from(&chol_inverse(l, n), n, tau2)
}

fn effective_params_from(cov: &[f64], n: usize, tau2: f64) -> f64 {
    n as f64 - (0..n).map(|c| cov[c * n + c]).sum::<f64>() / tau2
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The curve's power levels: the fit, floored at 0 W (an unresolvable column can fit
/// negative; power cannot be).
pub fn curve_power(fit: &Fit) -> Vec<f64> {
    fit.power.iter().map(|p| p.max(0.0)).collect()
}

/// Per-window scale so that the curve integrates to each observation (`rows`: the
/// fit's design rows of `obs`).
fn scale_regions(obs: &[Obs], rows: &[Vec<(usize, f64)>], power: &[f64]) -> Vec<(u64, u64, f64)> {
    let mut order: Vec<usize> = (0..obs.len()).collect();
    order.sort_by_key(|&j| (obs[j].b, obs[j].a));
    let mut out: Vec<(u64, u64, f64)> = Vec::with_capacity(obs.len());
    let mut last_end = 0u64;
    for j in order {
        let o = obs[j];
        // Mean model power over the window.
        let model: f64 = rows[j].iter().map(|&(c, frac)| frac * power[c]).sum();
        let a = o.a.max(last_end);
        if o.b > a && model > 0.0 && o.watts >= 0.0 {
            out.push((a, o.b, o.watts / model));
            last_end = o.b;
        }
    }
    out
}

/// `items.iter().map(f)` spread over the available cores (order kept): the delay
/// search runs many independent fits over the same pieces.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let workers: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// The kernels grouped by execution (layer, iteration), without a per-kernel map entry.
struct ExecGroups {
    /// Distinct layers, sorted.
    layers: Vec<LayerId>,
    /// Per layer: its executions (distinct iterations).
    counts: Vec<usize>,
    /// Per kernel: (layer index, execution index among the layer's executions in
    /// iteration order).
    slot: Vec<(u32, u32)>,
    /// Per kernel: position in its execution's launch sequence (0 = first kernel).
    position: Vec<u32>,
}

impl ExecGroups {
    fn of(kernels: &[Kernel]) -> ExecGroups {
        let mut layers: Vec<LayerId> = kernels.iter().map(|k| k.layer).collect();
        layers.sort_unstable();
        layers.dedup();
        // Per layer: distinct iterations in order, and the kernels seen in the current one.
        let mut iters: Vec<Vec<u32>> = vec![Vec::new(); layers.len()];
        let mut seen: Vec<u32> = vec![0; layers.len()];
        let mut slot = Vec::with_capacity(kernels.len());
        let mut position = Vec::with_capacity(kernels.len());
        let mut ordered = true;
        let mut last_layer: Option<(LayerId, usize)> = None;
        for k in kernels {
            // Consecutive kernels mostly share a layer: skip the search then.
            let l = match last_layer {
                Some((id, l)) if id == k.layer => l,
                _ => layers.binary_search(&k.layer).unwrap_or_default(),
            };
            last_layer = Some((k.layer, l));
            let it = &mut iters[l];
            match it.last() {
                Some(&i) if i == k.iteration => seen[l] += 1,
                Some(&i) if i > k.iteration => {
                    ordered = false;
                    break;
                }
                _ => {
                    it.push(k.iteration);
                    seen[l] = 1;
                }
            }
            slot.push((l as u32, (it.len() - 1) as u32));
            position.push(seen[l] - 1);
        }
        if !ordered {
            // A layer's iterations interleave in start order (concurrent streams): use a map.
            let mut at: BTreeMap<(usize, u32), u32> = BTreeMap::new();
            slot.clear();
            position.clear();
            for k in kernels {
                let l = layers.binary_search(&k.layer).unwrap_or_default();
                let n = at.entry((l, k.iteration)).or_default();
                *n += 1;
                position.push(*n - 1);
                slot.push((l as u32, k.iteration));
            }
            iters = vec![Vec::new(); layers.len()];
            for &(l, i) in at.keys() {
                iters[l].push(i);
            }
            for s in slot.iter_mut() {
                s.1 = iters[s.0 as usize].binary_search(&s.1).unwrap_or_default() as u32;
            }
        }
        let counts = iters.iter().map(Vec::len).collect();
        ExecGroups { layers, counts, slot, position }
    }

    fn layer_index(&self, id: LayerId) -> Option<usize> {
        self.layers.binary_search(&id).ok()
    }
}

/// The fit under one sensor-delay hypothesis (the curve is built only for the delays
/// that are used, see [`Pass::curve`]).
struct Pass {
    fit: Fit,
    obs: Vec<Obs>,
    nobs: usize,
}

impl Pass {
    fn curve<'a>(&self, pieces: &'a [Piece], opts: &Options) -> Curve<'a> {
        let power = curve_power(&self.fit);
        let scale = if opts.honour_samples { scale_regions(&self.obs, &self.fit.rows, &power) } else { Vec::new() };
        Curve { pieces, power, scale }
    }
}

#[allow(clippy::too_many_arguments)]
fn pass(
    pieces: &[Piece],
    readings: &Readings,
    model: &SensorModel,
    delay_ns: i64,
    ncols: usize,
    from: u64,
    to: u64,
    opts: &Options,
) -> Pass {
    let obs: Vec<Obs> = match readings {
        Readings::Power(r) => observations(r, &SensorModel { delay_ns, ..*model }),
        Readings::Counter(edges) => {
            let shifted: Vec<(u64, u64)> =
                edges.iter().map(|&(t, e)| (((t as i64) - delay_ns).max(0) as u64, e)).collect();
            counter_observations(&shifted)
        }
    }
    .into_iter()
    .filter(|o| o.a >= from && o.b <= to)
    .collect();
    let floor = opts.noise_floor_w.max(model.resolution_mw / 1e3 / 12f64.sqrt());
    let fit = fit(pieces, &obs, ncols, opts.prior_sd_w, floor);
    let nobs = obs.len();
    Pass { fit, obs, nobs }
}

enum Readings<'a> {
    Power(&'a [(u64, f64)]),
    Counter(Vec<(u64, u64)>),
}

pub(crate) fn analyze(trace: &Trace<'_>, data: &Loaded, opts: &Options) -> Result<Attribution, EnergyError> {
    let mut warnings = Vec::new();
    if data.damaged {
        warnings.push("trace damaged: analysed the intact part only".to_string());
    }
    // --- sensor
    let (sensor, readings, model) = match &opts.sensor {
        Some(name) if name == COUNTER_SENSOR => {
            (name.clone(), Readings::Counter(data.counter_edges(opts.counter_delay_ns)), opts.samples)
        }
        Some(name) => match data.sensor(name) {
            Some(r) => (name.clone(), Readings::Power(r), opts.model(name)),
            None => {
                let present: Vec<&str> = data.power.iter().map(|(n, _)| n.as_str()).collect();
                return Err(EnergyError::NoSuchSensor(name.clone(), present.join(", ")));
            }
        },
        None => {
            let pick = sensors::PREFERENCE.iter().find(|s| data.sensor(s).is_some_and(|r| r.len() >= 2));
            match pick {
                Some(s) => (s.to_string(), Readings::Power(data.sensor(s).unwrap_or(&[])), opts.model(s)),
                None if data.energy.len() >= 2 => {
                    warnings.push(format!(
                        "no power samples: the energy counter ({COUNTER_SENSOR}, ~100 ms updates) is the power sensor"
                    ));
                    let edges = data.counter_edges(opts.counter_delay_ns);
                    (COUNTER_SENSOR.to_string(), Readings::Counter(edges), opts.samples)
                }
                None => return Err(EnergyError::NoPowerData),
            }
        }
    };
    let model = match readings {
        // Counter observations are already edge-to-edge means; the delay is applied to the edges.
        Readings::Counter(_) => SensorModel { delay_ns: 0, polled: false, ..model },
        _ => model,
    };

    // --- window
    let phase = opts.phase.clone().or_else(|| data.phase_span(trace, "measure").map(|_| "measure".to_string()));
    let span = match &phase {
        Some(p) => Some(
            data.phase_span(trace, p)
                .ok_or_else(|| EnergyError::NoKernels(format!(" (no phase {p:?} in the trace)")))?,
        ),
        None => None,
    };
    let sel: Vec<Kernel> =
        data.kernels.iter().filter(|k| span.is_none_or(|(a, b)| k.start_ns >= a && k.start_ns < b)).copied().collect();
    if sel.is_empty() {
        let what = phase.map(|p| format!(" (phase {p:?})")).unwrap_or_default();
        return Err(EnergyError::NoKernels(what));
    }
    let kmin = sel.iter().map(|k| k.start_ns).min().unwrap_or(0);
    let kmax = sel.iter().map(|k| k.end_ns).max().unwrap_or(0);
    let (from, to) = match span {
        Some((a, b)) if b != u64::MAX => (a.min(kmin), b.max(kmax)),
        Some((a, _)) => (a.min(kmin), kmax),
        None => (kmin, kmax),
    };

    // --- model columns: idle, then kernel sites (layer, position in the layer's
    // launch sequence) in order: one power level per site, since a layer's kernels
    // can draw very different power.
    let groups = ExecGroups::of(&sel);
    let site: Vec<(LayerId, u32)> = sel.iter().zip(&groups.position).map(|(k, &n)| (k.layer, n)).collect();
    let mut sites: Vec<(LayerId, u32)> = site.clone();
    sites.sort();
    sites.dedup();
    let col_of: BTreeMap<(LayerId, u32), usize> = sites.iter().enumerate().map(|(i, s)| (*s, i + 1)).collect();
    let ncols = sites.len() + 1;
    let mut layer_ids: Vec<LayerId> = sites.iter().map(|s| s.0).collect();
    layer_ids.dedup();
    let layer_cols = |id: LayerId| col_of.range((id, 0)..=(id, u32::MAX)).map(|(_, c)| *c);
    let spans: Vec<(u64, u64)> = sel.iter().map(|k| (k.start_ns, k.end_ns)).collect();
    let cols: Vec<usize> = site.iter().map(|s| col_of[s]).collect();
    let pcs = pieces(&spans, &cols, from, to);

    // --- fit over a grid of sensor delays (nominal ± uncertainty); the data pick the
    // delay (least squares), and every delay the data cannot reject (profile
    // likelihood, Δχ² ≤ 3.84) enters the CI.
    const MIN_OBS: usize = 3;
    let du = model.delay_uncertainty_ns as i64;
    let steps: i64 = if du > 0 { DELAY_STEPS } else { 0 };
    let run_at = |d: i64| pass(&pcs, &readings, &model, d, ncols, from, to, opts);
    let grid: Vec<i64> =
        (-steps..=steps).map(|i| model.delay_ns + if steps > 0 { du * i / steps } else { 0 }).collect();
    let mut passes: Vec<(i64, Pass)> =
        par_map(&grid, |&d| (d, run_at(d))).into_iter().filter(|(_, p)| p.nobs >= MIN_OBS).collect();
    // Compare delays per observation: a shifted delay may lose one window at an edge,
    // which is negligible against hundreds.
    let per_obs = |p: &Pass| p.fit.rss / p.nobs as f64;
    let best = |ps: &[(i64, Pass)]| (0..ps.len()).min_by(|&a, &b| per_obs(&ps[a].1).total_cmp(&per_obs(&ps[b].1)));
    // Refine around the best grid point by bisection of the step (short windows are
    // sensitive to ~1 ms of delay error).
    if steps > 0 && !passes.is_empty() {
        let mut step = du / steps / 2;
        while step >= REFINE_MIN_NS {
            if let Some(b) = best(&passes) {
                let centre = passes[b].0;
                let new: Vec<i64> = [centre - step, centre + step]
                    .into_iter()
                    .filter(|&d| (d - model.delay_ns).abs() <= du && !passes.iter().any(|p| p.0 == d))
                    .collect();
                passes.extend(par_map(&new, |&d| (d, run_at(d))).into_iter().filter(|(_, p)| p.nobs >= MIN_OBS));
            }
            step /= 2;
        }
    }
    let Some(best_i) = best(&passes) else {
        let n = run_at(model.delay_ns).nobs;
        return Err(EnergyError::TooFewSamples(n, MIN_OBS));
    };
    let (sensor_delay_ns, main) = passes.swap_remove(best_i);
    let s2 = main.fit.sigma_w.powi(2);
    let per_obs_best = per_obs(&main);
    let alt: Vec<Pass> = passes
        .into_iter()
        .filter(|(_, p)| (per_obs(p) - per_obs_best) * main.nobs as f64 / s2 <= CHI2_1_95)
        .map(|(_, p)| p)
        .collect();
    if steps > 0 && (sensor_delay_ns - model.delay_ns).abs() == du {
        warnings.push(format!(
            "{sensor}: best-fitting sensor delay {:.1} ms is at the edge of the searched range; widen the delay uncertainty",
            sensor_delay_ns as f64 * 1e-6
        ));
    }

    // --- kernel energies and per-layer, per-execution sums
    let col_index = ColIndex::new(&pcs, ncols);
    let main_curve = main.curve(&pcs, opts);
    let main_energies = main_curve.piece_energies();
    let mut kernel_j = vec![0.0; sel.len()];
    let mut weighted_ns = vec![0.0; ncols]; // Σ w·len per column
    let mut idle_j = 0.0;
    for (p, e) in pcs.iter().zip(&main_energies) {
        weighted_ns[p.col] += p.w * (p.b - p.a) as f64;
        match p.kernel {
            Some(k) => kernel_j[k as usize] += e,
            None => idle_j += e,
        }
    }
    let (alt_layer_j, alt_total): (Vec<Vec<f64>>, Vec<f64>) =
        alt.iter().map(|ap| ap.curve(&pcs, opts).col_energies(&col_index)).unzip();

    // per layer, per execution in iteration order: (energy J, time ns)
    let mut per_exec: Vec<Vec<(f64, f64)>> = groups.counts.iter().map(|&n| vec![(0.0, 0.0); n]).collect();
    for ((k, e), &(l, x)) in sel.iter().zip(&kernel_j).zip(&groups.slot) {
        let slot = &mut per_exec[l as usize][x as usize];
        slot.0 += e;
        slot.1 += (k.end_ns - k.start_ns) as f64;
    }
    let mut iterations: Vec<u32> = sel.iter().map(|k| k.iteration).collect();
    iterations.sort_unstable();
    iterations.dedup();

    // --- idle power
    let fit = &main.fit;
    let window_ns = to - from;
    let idle_observed = fit.observed_ns[IDLE] >= 0.02 * window_ns as f64;
    let pre_idle: Vec<f64> = match &readings {
        Readings::Power(r) => {
            let first_kernel = data.kernels.first().map_or(u64::MAX, |k| k.start_ns);
            observations(r, &model).iter().filter(|o| o.b < first_kernel).map(|o| o.watts).collect()
        }
        Readings::Counter(_) => Vec::new(),
    };
    let idle_power_w = if idle_observed {
        fit.power[IDLE]
    } else if !pre_idle.is_empty() {
        warnings.push(format!(
            "idle gaps too short to observe idle power in the window; using the {} samples before the first kernel",
            pre_idle.len()
        ));
        pre_idle.iter().sum::<f64>() / pre_idle.len() as f64
    } else {
        warnings.push("idle power not observable (no idle gaps, no samples before the run): static/dynamic split uses the fitted prior".into());
        fit.power[IDLE]
    };

    // --- layers
    let t_reg = t95(fit.df);
    let mut layers = Vec::with_capacity(layer_ids.len());
    for &id in &layer_ids {
        let execs: &[(f64, f64)] = groups.layer_index(id).map_or(&[], |l| &per_exec[l]);
        let n = execs.len().max(1) as f64;
        let e_total: f64 = execs.iter().map(|x| x.0).sum();
        let e_mj = e_total / n * 1e3;
        let times: Vec<f64> = execs.iter().map(|x| x.1).collect();
        let time = mean_ci(&times);
        // CI terms (mJ per execution): model-fit uncertainty of the layer's power,
        let terms: Vec<(usize, f64)> = layer_cols(id).map(|c| (c, weighted_ns[c] / n * 1e-6)).collect();
        let ci_fit = t_reg * fit.sd_of(&terms);
        // spread between time blocks (sample noise, drift),
        let k = opts.blocks.clamp(2, execs.len().max(2));
        let block_means: Vec<f64> = (0..k)
            .filter_map(|b| {
                let chunk = &execs[b * execs.len() / k..(b + 1) * execs.len() / k];
                (!chunk.is_empty()).then(|| chunk.iter().map(|x| x.0).sum::<f64>() / chunk.len() as f64 * 1e3)
            })
            .collect();
        let ci_blocks = if block_means.len() >= 2 { mean_ci(&block_means).ci95 } else { 0.0 };
        // and sensitivity to the sensor delay.
        let ci_delay = alt_layer_j
            .iter()
            .map(|per| (layer_cols(id).map(|c| per[c]).sum::<f64>() / n * 1e3 - e_mj).abs())
            .fold(0.0, f64::max);
        let ci = (ci_fit * ci_fit + ci_blocks * ci_blocks + ci_delay * ci_delay).sqrt();
        let static_mj = idle_power_w * time.value * 1e-6;
        layers.push(LayerEnergy {
            layer: id,
            executions: execs.len() as u64,
            time_ns: time,
            energy_mj: Estimate::new(e_mj, ci),
            static_mj,
            dynamic_mj: e_mj - static_mj,
            avg_power_w: if time.value > 0.0 { e_mj / time.value * 1e6 } else { 0.0 },
            method: Method::Timeline,
        });
    }
    layers.retain(|l| l.layer != LayerId::NONE);

    // --- run
    let kernel_energy_j: f64 = kernel_j.iter().sum();
    let total = kernel_energy_j + idle_j;
    let covered_ns: f64 = main_curve.scale.iter().map(|r| (r.1 - r.0) as f64).sum();
    let uncovered_ns = (window_ns as f64 - covered_ns).max(0.0);
    let n_obs = main.nobs.max(1) as f64;
    let mean_obs_ns = covered_ns / n_obs;
    // Sample noise on the covered part, model uncertainty on the rest, delay sensitivity.
    let ci_noise = t_reg * fit.sigma_w * (n_obs).sqrt() * mean_obs_ns * 1e-9;
    let ci_uncov = t_reg * fit.sigma_w.max((0..ncols).map(|c| fit.sd(c)).fold(0.0, f64::max)) * uncovered_ns * 1e-9;
    let ci_delay = alt_total.iter().map(|t| (t - total).abs()).fold(0.0, f64::max);
    let total_ci = (ci_noise.powi(2) + ci_uncov.powi(2) + ci_delay.powi(2)).sqrt();

    let edges: Vec<(u64, u64)> =
        data.counter_edges(opts.counter_delay_ns).into_iter().filter(|e| e.0 >= from && e.0 <= to).collect();
    let (counter_energy_j, counter_mismatch) = if edges.len() >= 2 {
        let (first, last) = (edges[0], edges[edges.len() - 1]);
        let de_j = (last.1 - first.1) as f64 * 1e-3;
        let dt = (last.0 - first.0) as f64;
        let curve_j = main_curve.integral(first.0, last.0);
        if edges.len() < 11 {
            warnings.push(format!(
                "window of {:.2} s: energy counter updated only {} times; the counter cross-check is coarse",
                window_ns as f64 * 1e-9,
                edges.len()
            ));
        }
        let mismatch = if de_j > 0.0 { Some((curve_j - de_j) / de_j) } else { None };
        if let Some(m) = mismatch.filter(|m| m.abs() > 0.05) {
            warnings.push(format!(
                "power curve and energy counter disagree by {:+.1}% over {:.2} s",
                m * 100.0,
                dt * 1e-9
            ));
        }
        (Some(de_j / dt * window_ns as f64), mismatch)
    } else {
        if !data.energy.is_empty() {
            warnings.push("fewer than two energy-counter updates in the window: no counter cross-check".into());
        }
        (None, None)
    };
    if main.nobs < 50 {
        warnings
            .push(format!("only {} power observations from {sensor} in the window: per-layer CIs are wide", main.nobs));
    }

    let mut kernels: Vec<KernelEnergy> = sel
        .iter()
        .zip(&kernel_j)
        .map(|(k, e)| KernelEnergy {
            event_index: k.index,
            layer: k.layer,
            start_ns: k.start_ns,
            duration_ns: k.end_ns - k.start_ns,
            energy_mj: e * 1e3,
        })
        .collect();
    kernels.sort_by_key(|k| k.event_index);

    Ok(Attribution {
        method: Method::Timeline,
        layers,
        kernels,
        run: RunEnergy {
            window_ns,
            inferences: iterations.len() as u64,
            kernel_energy_j,
            idle_energy_j: idle_j,
            total_energy_j: Estimate::new(total, total_ci),
            counter_energy_j,
            counter_mismatch,
            idle_power_w,
            avg_power_w: if window_ns > 0 { total / window_ns as f64 * 1e9 } else { 0.0 },
        },
        warnings,
        sensor,
        sensor_delay_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pieces_split_concurrent_kernels_and_idle() {
        // kernel 0: [10, 30), kernel 1: [20, 40) (overlap 20..30), window [0, 50)
        let p = pieces(&[(10, 30), (20, 40)], &[1, 2], 0, 50);
        let got: Vec<(u64, u64, usize, Option<u32>, f64)> =
            p.iter().map(|p| (p.a, p.b, p.col, p.kernel, p.w)).collect();
        let want = vec![
            (0, 10, IDLE, None, 1.0),
            (10, 20, 1, Some(0), 1.0),
            (20, 30, 1, Some(0), 0.5),
            (20, 30, 2, Some(1), 0.5),
            (30, 40, 2, Some(1), 1.0),
            (40, 50, IDLE, None, 1.0),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn fit_recovers_exact_powers() {
        // Two columns alternating with different duty per window: y is exact, so the
        // fit must return the true powers (prior is weak against 40 exact windows).
        let mut ks = Vec::new();
        let mut cols = Vec::new();
        let mut obs = Vec::new();
        for w in 0..40u64 {
            let a = w * 100;
            let split = 20 + (w * 37) % 60;
            ks.push((a, a + split));
            cols.push(1);
            ks.push((a + split, a + 100));
            cols.push(2);
            let watts = (split as f64 * 600.0 + (100 - split) as f64 * 300.0) / 100.0;
            obs.push(Obs { a, b: a + 100, watts });
        }
        let pcs = pieces(&ks, &cols, 0, 4000);
        let f = fit(&pcs, &obs, 3, 200.0, 0.01);
        assert!((f.power[1] - 600.0).abs() < 0.1 && (f.power[2] - 300.0).abs() < 0.1, "{:?}", f.power);
    }

    proptest! {
        /// Energy conservation: Σ kernels + idle == ∫ of the reconstructed curve,
        /// the integral taken independently by evaluating the curve between breakpoints.
        #[test]
        fn kernels_plus_idle_equal_the_curve_integral(
            ks in prop::collection::vec((0u64..10_000, 1u64..3_000, 1usize..4), 1..25),
            obs in prop::collection::vec((0u64..12_000, 50u64..2_000, 50.0f64..700.0), 3..20),
        ) {
            let mut ks: Vec<(u64, u64, usize)> = ks.into_iter().map(|(a, d, c)| (a, a + d, c)).collect();
            ks.sort();
            let spans: Vec<(u64, u64)> = ks.iter().map(|k| (k.0, k.1)).collect();
            let cols: Vec<usize> = ks.iter().map(|k| k.2).collect();
            let to = 15_000;
            let pcs = pieces(&spans, &cols, 0, to);
            let obs: Vec<Obs> = obs.into_iter().map(|(a, l, w)| Obs { a, b: (a + l).min(to), watts: w }).collect();
            let f = fit(&pcs, &obs, 4, 200.0, 1.0);
            let power = curve_power(&f);
            let scale = scale_regions(&obs, &f.rows, &power);
            let curve = Curve { pieces: &pcs, power, scale };
            let sum: f64 = curve.piece_energies().iter().sum();
            let mut cuts: Vec<u64> = vec![0, to];
            cuts.extend(pcs.iter().flat_map(|p| [p.a, p.b]));
            cuts.extend(curve.scale.iter().flat_map(|r| [r.0, r.1]));
            cuts.sort();
            cuts.dedup();
            let integral: f64 = cuts.windows(2).map(|w| curve.power_at(w[0]) * (w[1] - w[0]) as f64 * 1e-9).sum();
            prop_assert!((sum - integral).abs() <= 1e-9 * integral.abs().max(1e-6), "{} vs {}", sum, integral);
            prop_assert!((curve.integral(0, to) - integral).abs() <= 1e-9 * integral.abs().max(1e-6));
            // Every kernel gets non-negative energy; the pieces tile [0, to].
            prop_assert!(curve.piece_energies().iter().all(|e| *e >= 0.0));
            let covered: f64 = pcs.iter().map(|p| p.w * (p.b - p.a) as f64).sum();
            prop_assert!((covered - to as f64).abs() < 1e-6);
            // The per-column sums from the index equal the per-piece energies summed by column.
            let mut want = [0.0; 4];
            for (p, e) in pcs.iter().zip(curve.piece_energies()) {
                want[p.col] += e;
            }
            let (per, total) = curve.col_energies(&ColIndex::new(&pcs, 4));
            for c in 0..4 {
                prop_assert!((per[c] - want[c]).abs() <= 1e-9 * integral.abs().max(1e-6), "col {}: {} vs {}", c, per[c], want[c]);
            }
            prop_assert!((total - integral).abs() <= 1e-9 * integral.abs().max(1e-6));
        }

        /// Grouping kernels by execution matches a plain map, also when a layer's
        /// iterations interleave in start order.
        #[test]
        fn exec_groups_match_a_map(ks in prop::collection::vec((0u32..3, 0u32..4), 1..40), sorted in any::<bool>()) {
            let mut ks = ks;
            if sorted {
                ks.sort_by_key(|k| k.1);
            }
            let kernels: Vec<Kernel> = ks
                .iter()
                .enumerate()
                .map(|(i, &(l, it))| Kernel { index: i as u64, layer: LayerId(l), iteration: it, start_ns: i as u64, end_ns: i as u64 + 1 })
                .collect();
            let g = ExecGroups::of(&kernels);
            let mut seen: BTreeMap<(u32, u32), u32> = BTreeMap::new();
            for (i, &(l, it)) in ks.iter().enumerate() {
                let n = seen.entry((l, it)).or_default();
                prop_assert_eq!(g.position[i], *n);
                *n += 1;
                let li = g.layer_index(LayerId(l)).unwrap();
                prop_assert_eq!(g.layers[li], LayerId(l));
                // execution index = rank of the iteration among the layer's iterations
                let mut its: Vec<u32> = ks.iter().filter(|k| k.0 == l).map(|k| k.1).collect();
                its.sort();
                its.dedup();
                prop_assert_eq!(g.slot[i], (li as u32, its.iter().position(|&x| x == it).unwrap() as u32));
                prop_assert_eq!(g.counts[li], its.len());
            }
        }
    }
}
