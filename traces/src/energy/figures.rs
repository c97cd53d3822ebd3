//! Derived figures for reports (rendered by the CLI/tools): per layer, per model and
//! per layer type. Plain serialisable data; every number is computed here.

use serde::Serialize;

use super::{Attribution, Estimate, LayerType, Method};
use crate::reader::Trace;
use crate::records::LayerId;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub method: Method,
    /// Power sensor the timeline used ("" for replay).
    pub sensor: String,
    pub model: String,
    pub batch_size: u32,
    pub device: String,
    pub model_figures: ModelFigures,
    /// Sorted by layer id.
    pub layers: Vec<LayerFigures>,
    /// One entry per [`LayerType`] that occurs, in [`LayerType::ALL`] order.
    pub types: Vec<TypeFigures>,
    pub warnings: Vec<String>,
}

/// Per layer, per execution (one inference of the batch).
#[derive(Debug, Clone, Serialize)]
pub struct LayerFigures {
    pub layer: LayerId,
    pub name: String,
    pub op: String,
    pub layer_type: LayerType,
    pub executions: u64,
    pub time_ms: Estimate,
    pub energy_mj: Estimate,
    pub static_mj: f64,
    pub dynamic_mj: f64,
    pub avg_power_w: f64,
    /// Share of the summed layer energy (idle time excluded), 0..1.
    pub energy_share: f64,
    /// Share of the summed layer time, 0..1.
    pub time_share: f64,
    /// None when the layer record has no flop / byte count.
    pub gflop_per_s: Option<f64>,
    pub gflop_per_j: Option<f64>,
    pub bytes_per_j: Option<f64>,
    /// flops / bytes moved.
    pub arithmetic_intensity: Option<f64>,
}

/// Per model (per inference unless the name says otherwise).
#[derive(Debug, Clone, Serialize)]
pub struct ModelFigures {
    pub inferences: u64,
    /// Wall time per inference (timeline: window / inferences, idle gaps included;
    /// replay: the sum of layer times).
    pub latency_ms: f64,
    /// Sum of layer GPU times per inference.
    pub gpu_time_ms: Estimate,
    pub images_per_s: f64,
    /// Energy per inference (timeline: kernels + idle; replay: sum over layers).
    pub energy_per_inference_j: Estimate,
    pub j_per_image: Estimate,
    pub images_per_j: f64,
    pub avg_power_w: f64,
    pub idle_power_w: f64,
    /// Share of the energy spent in idle gaps (timeline), 0..1.
    pub idle_energy_share: f64,
    pub counter_energy_j: Option<f64>,
    pub counter_mismatch: Option<f64>,
    /// Replay trace with a measure phase (None otherwise): energy-counter energy of the
    /// measure phase per measured inference (J).
    pub measured_j_per_inference: Option<f64>,
    /// Replay: Σ layers' replay energy per inference (J), the same as
    /// `energy_per_inference_j` (None for timeline traces).
    pub replay_sum_j_per_inference: Option<f64>,
    /// Replay with a measure phase: `replay_sum / measured − 1` (the replayed layers
    /// have no gaps between inferences, so a gap-heavy run reads negative).
    pub replay_consistency: Option<f64>,
    /// Replay with a measure phase: energy of the idle gaps between kernels in the
    /// measure phase (timeline attribution), per inference (J).
    pub gap_j_per_inference: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeFigures {
    pub layer_type: LayerType,
    pub layers: usize,
    pub time_ms: f64,
    pub energy_mj: f64,
    pub time_share: f64,
    pub energy_share: f64,
    pub avg_power_w: f64,
}

/// Builds the figures from an attribution of `trace`.
pub fn build(trace: &Trace<'_>, att: &Attribution) -> Report {
    let h = trace.header();
    let batch = h.workload.batch_size.max(1) as f64;
    let sum_e: f64 = att.layers.iter().map(|l| l.energy_mj.value).sum();
    let sum_t: f64 = att.layers.iter().map(|l| l.time_ns.value).sum();
    let share = |x: f64, total: f64| if total > 0.0 { x / total } else { 0.0 };

    let mut layers = Vec::with_capacity(att.layers.len());
    for l in &att.layers {
        let rec = trace.layer(l.layer);
        let name = rec.and_then(|r| trace.string(r.name)).unwrap_or("?").to_string();
        let op = rec.and_then(|r| trace.string(r.op)).unwrap_or("?").to_string();
        let flops = rec.map(|r| r.flops).filter(|&f| f > 0).map(|f| f as f64);
        let bytes = rec.map(|r| r.bytes_moved).filter(|&b| b > 0).map(|b| b as f64);
        let t_ns = l.time_ns.value;
        let e_j = l.energy_mj.value / 1e3;
        let pos = |x: f64| (x > 0.0).then_some(x);
        layers.push(LayerFigures {
            layer: l.layer,
            name,
            layer_type: LayerType::from_op(&op),
            op,
            executions: l.executions,
            time_ms: l.time_ns.scale(1e-6),
            energy_mj: l.energy_mj,
            static_mj: l.static_mj,
            dynamic_mj: l.dynamic_mj,
            avg_power_w: l.avg_power_w,
            energy_share: share(l.energy_mj.value, sum_e),
            time_share: share(t_ns, sum_t),
            // flop per ns = GFLOP/s
            gflop_per_s: flops.and_then(|f| pos(t_ns).map(|t| f / t)),
            gflop_per_j: flops.and_then(|f| pos(e_j).map(|e| f / 1e9 / e)),
            bytes_per_j: bytes.and_then(|b| pos(e_j).map(|e| b / e)),
            arithmetic_intensity: flops.and_then(|f| bytes.map(|b| f / b)),
        });
    }

    let mut types = Vec::new();
    for ty in LayerType::ALL {
        let of: Vec<&LayerFigures> = layers.iter().filter(|l| l.layer_type == ty).collect();
        if of.is_empty() {
            continue;
        }
        let t: f64 = of.iter().map(|l| l.time_ms.value).sum();
        let e: f64 = of.iter().map(|l| l.energy_mj.value).sum();
        types.push(TypeFigures {
            layer_type: ty,
            layers: of.len(),
            time_ms: t,
            energy_mj: e,
            time_share: share(t * 1e6, sum_t),
            energy_share: share(e, sum_e),
            avg_power_w: if t > 0.0 { e / t } else { 0.0 }, // mJ / ms = W
        });
    }

    let run = &att.run;
    // Layer CIs of one timeline fit are correlated (they share the sensor data), so the
    // model's CI comes from the run total; replay trials of different layers are
    // independent measurements, so their CIs add in quadrature.
    let gpu_ci = att.layers.iter().map(|l| l.time_ns.ci95.powi(2)).sum::<f64>().sqrt();
    let gpu_time_ms = Estimate::new(sum_t * 1e-6, gpu_ci * 1e-6);
    let (inferences, latency_ms, energy) = match att.method {
        Method::Timeline => {
            let n = run.inferences.max(1) as f64;
            (run.inferences, run.window_ns as f64 * 1e-6 / n, run.total_energy_j.scale(1.0 / n))
        }
        Method::Replay => {
            let ci = att.layers.iter().map(|l| l.energy_mj.ci95.powi(2)).sum::<f64>().sqrt();
            (run.inferences, sum_t * 1e-6, Estimate::new(sum_e / 1e3, ci / 1e3))
        }
    };
    let j_per_image = energy.scale(1.0 / batch);
    // Replay against the measure phase of the same trace (its counter and its gaps).
    let replay_sum = (att.method == Method::Replay).then_some(sum_e / 1e3);
    let per_inf = |x: f64| x / run.inferences as f64;
    let measured = replay_sum.and(run.counter_energy_j).filter(|_| run.inferences > 0).map(per_inf);
    let replay_consistency = replay_sum.zip(measured).filter(|(_, m)| *m > 0.0).map(|(s, m)| s / m - 1.0);
    let gap_j_per_inference = measured.map(|_| per_inf(run.idle_energy_j));
    let model_figures = ModelFigures {
        inferences,
        latency_ms,
        gpu_time_ms,
        images_per_s: if latency_ms > 0.0 { batch * 1e3 / latency_ms } else { 0.0 },
        energy_per_inference_j: energy,
        j_per_image,
        images_per_j: if j_per_image.value > 0.0 { 1.0 / j_per_image.value } else { 0.0 },
        avg_power_w: if latency_ms > 0.0 { energy.value * 1e3 / latency_ms } else { 0.0 },
        idle_power_w: run.idle_power_w,
        idle_energy_share: share(run.idle_energy_j, run.total_energy_j.value),
        counter_energy_j: run.counter_energy_j,
        counter_mismatch: run.counter_mismatch,
        measured_j_per_inference: measured,
        replay_sum_j_per_inference: replay_sum,
        replay_consistency,
        gap_j_per_inference,
    };

    Report {
        method: att.method,
        sensor: att.sensor.clone(),
        model: h.workload.model.to_string(),
        batch_size: h.workload.batch_size,
        device: h.device.name.to_string(),
        model_figures,
        layers,
        types,
        warnings: att.warnings.clone(),
    }
}
