//! `cnnergy diff A B`: what changed between two traces (kernel variants, batch sizes,
//! GPUs, clock settings). Layers are matched by name. A difference is *significant*
//! when `|Δ| > sqrt(ci_A² + ci_B²)` — the 95% half-width of the difference of two
//! independent estimates; it is unknown (empty) when either CI is unknown. Δ = B − A,
//! change = Δ / A.

use std::io::{self, Write};

use super::table::{col, col_ci, Cell, Format, Show, Tab};
use super::Analysis;
use crate::energy::Estimate;

/// The comparison, ready to render.
#[derive(Debug, Clone)]
pub struct Diff {
    pub a: String,
    pub b: String,
    /// `(field, A, B)` for every setting field that differs.
    pub setting_changes: Vec<(String, String, String)>,
    pub model: Tab,
    pub layers: Tab,
    pub notes: Vec<String>,
}

/// Δ, its CI and significance of two estimates.
pub fn delta(a: Estimate, b: Estimate) -> (f64, f64, Option<bool>) {
    let d = b.value - a.value;
    let ci = (a.ci95 * a.ci95 + b.ci95 * b.ci95).sqrt();
    let sig = (ci.is_finite() && d.is_finite()).then_some(d.abs() > ci);
    (d, ci, sig)
}

fn sig_cell(s: Option<bool>) -> Cell {
    s.map_or(Cell::Num(f64::NAN), Cell::Bool)
}

fn change(a: f64, b: f64) -> f64 {
    if a != 0.0 && a.is_finite() && b.is_finite() {
        (b - a) / a
    } else {
        f64::NAN
    }
}

/// An efficiency (work / energy) with the energy's relative CI.
fn efficiency(v: Option<f64>, energy: Estimate) -> Estimate {
    let v = v.unwrap_or(f64::NAN);
    Estimate::new(v, v * energy.relative())
}

pub fn diff(a: &Analysis, b: &Analysis) -> Diff {
    let (sa, sb) = (a.setting(), b.setting());
    let mut setting_changes = Vec::new();
    for (k, va) in &sa {
        let vb = sb.iter().find(|(kb, _)| kb == k).map(|(_, v)| v.clone()).unwrap_or_else(|| "n/a".into());
        if *va != vb {
            setting_changes.push((k.to_string(), va.clone(), vb));
        }
    }
    for (k, vb) in &sb {
        if !sa.iter().any(|(ka, _)| ka == k) {
            setting_changes.push((k.to_string(), "n/a".into(), vb.clone()));
        }
    }

    let mut model = Tab::new(
        "model",
        vec![
            col("metric", "metric", Show::Plain),
            col("a", "A", Show::Sig3),
            col("b", "B", Show::Sig3),
            col_ci("delta", "Δ (B − A)", Show::Sig3, "delta_ci"),
            col("delta_ci", "", Show::Hidden),
            col("change", "change", Show::Change),
            col("significant", "significant", Show::Plain),
        ],
    );
    let (ma, mb) = (&a.figures.model_figures, &b.figures.model_figures);
    let exact = Estimate::exact_unknown;
    let rows: [(&str, Estimate, Estimate); 7] = [
        ("latency_ms", exact(ma.latency_ms), exact(mb.latency_ms)),
        ("gpu_time_ms", ma.gpu_time_ms, mb.gpu_time_ms),
        ("images_per_s", exact(ma.images_per_s), exact(mb.images_per_s)),
        ("j_per_inference", ma.energy_per_inference_j, mb.energy_per_inference_j),
        ("j_per_image", ma.j_per_image, mb.j_per_image),
        (
            "images_per_j",
            efficiency(Some(ma.images_per_j), ma.j_per_image),
            efficiency(Some(mb.images_per_j), mb.j_per_image),
        ),
        ("avg_power_w", exact(ma.avg_power_w), exact(mb.avg_power_w)),
    ];
    for (name, x, y) in rows {
        let energy_metric = !matches!(name, "latency_ms" | "gpu_time_ms" | "images_per_s");
        let (x, y) = if energy_metric && !(a.energy && b.energy) { (exact(f64::NAN), exact(f64::NAN)) } else { (x, y) };
        let (d, ci, s) = delta(x, y);
        model.push(vec![
            name.into(),
            x.value.into(),
            y.value.into(),
            d.into(),
            ci.into(),
            change(x.value, y.value).into(),
            sig_cell(s),
        ]);
    }

    let mut layers = Tab::new(
        "layers",
        vec![
            col("layer", "layer", Show::Plain),
            col("type", "type", Show::Plain),
            col("status", "in", Show::Plain),
            col("time_a_ms", "time A (ms)", Show::Fixed(4)),
            col("time_b_ms", "time B (ms)", Show::Fixed(4)),
            col_ci("time_delta_ms", "Δ time (ms)", Show::Fixed(4), "time_delta_ci_ms"),
            col("time_delta_ci_ms", "", Show::Hidden),
            col("time_change", "Δ time", Show::Change),
            col("time_significant", "time sig.", Show::Plain),
            col("energy_a_mj", "energy A (mJ)", Show::Sig3),
            col("energy_b_mj", "energy B (mJ)", Show::Sig3),
            col_ci("energy_delta_mj", "Δ energy (mJ)", Show::Sig3, "energy_delta_ci_mj"),
            col("energy_delta_ci_mj", "", Show::Hidden),
            col("energy_change", "Δ energy", Show::Change),
            col("energy_significant", "energy sig.", Show::Plain),
            col("gflop_per_j_a", "GFLOP/J A", Show::Sig3),
            col("gflop_per_j_b", "GFLOP/J B", Show::Sig3),
            col("efficiency_change", "Δ GFLOP/J", Show::Change),
            col("efficiency_significant", "eff. sig.", Show::Plain),
        ],
    );
    let missing = Estimate::new(f64::NAN, f64::NAN);
    let mut names: Vec<&str> = a.figures.layers.iter().map(|l| l.name.as_str()).collect();
    for l in &b.figures.layers {
        if !names.contains(&l.name.as_str()) {
            names.push(&l.name);
        }
    }
    let mut rows = Vec::new();
    for name in names {
        let la = a.figures.layers.iter().find(|l| l.name == name);
        let lb = b.figures.layers.iter().find(|l| l.name == name);
        let status = match (la, lb) {
            (Some(_), Some(_)) => "both",
            (Some(_), None) => "only_a",
            _ => "only_b",
        };
        let ty = la.or(lb).map(|l| l.layer_type.name()).unwrap_or("other");
        let t = |l: Option<&crate::energy::figures::LayerFigures>| l.map_or(missing, |l| l.time_ms);
        let e = |l: Option<&crate::energy::figures::LayerFigures>, ok: bool| {
            l.filter(|_| ok).map_or(missing, |l| l.energy_mj)
        };
        let f = |l: Option<&crate::energy::figures::LayerFigures>, ok: bool| {
            l.filter(|_| ok).map_or(missing, |l| efficiency(l.gflop_per_j, l.energy_mj))
        };
        let (ta, tb) = (t(la), t(lb));
        let (ea, eb) = (e(la, a.energy), e(lb, b.energy));
        let (fa, fb) = (f(la, a.energy), f(lb, b.energy));
        let (dt, dtci, st) = delta(ta, tb);
        let (de, deci, se) = delta(ea, eb);
        let (_, _, sf) = delta(fa, fb);
        rows.push((
            de.abs(),
            dt.abs(),
            vec![
                name.into(),
                ty.into(),
                status.into(),
                ta.value.into(),
                tb.value.into(),
                dt.into(),
                dtci.into(),
                change(ta.value, tb.value).into(),
                sig_cell(st),
                ea.value.into(),
                eb.value.into(),
                de.into(),
                deci.into(),
                change(ea.value, eb.value).into(),
                sig_cell(se),
                fa.value.into(),
                fb.value.into(),
                change(fa.value, fb.value).into(),
                sig_cell(sf),
            ],
        ));
    }
    // Largest energy change first (time when energy is unknown); unmatched layers last.
    let key = |r: &(f64, f64, Vec<Cell>)| {
        if r.0.is_finite() {
            r.0
        } else if r.1.is_finite() {
            r.1 * 1e-9
        } else {
            -1.0
        }
    };
    rows.sort_by(|x, y| key(y).total_cmp(&key(x)));
    for (_, _, r) in rows {
        layers.push(r);
    }
    let mut notes = Vec::new();
    for (label, x) in [("A", a), ("B", b)] {
        for n in &x.notes {
            notes.push(format!("{label}: {n}"));
        }
    }
    Diff { a: a.source.clone(), b: b.source.clone(), setting_changes, model, layers, notes }
}

pub fn render<W: Write>(d: &Diff, format: Format, mut out: W) -> io::Result<()> {
    match format {
        Format::Csv => d.layers.write_csv(out),
        Format::Json => {
            let changes: Vec<serde_json::Value> =
                d.setting_changes.iter().map(|(k, a, b)| serde_json::json!({"field": k, "a": a, "b": b})).collect();
            let doc = serde_json::json!({
                "schema": "cnnergy.diff/1", "a": d.a, "b": d.b, "setting_changes": changes,
                "model": d.model.to_json(), "layers": d.layers.to_json(), "notes": d.notes,
            });
            serde_json::to_writer_pretty(&mut out, &doc).map_err(io::Error::other)?;
            writeln!(out)
        }
        Format::Table | Format::Md | Format::Html => {
            let md = format == Format::Md;
            let item = if md { "- " } else { "  " };
            if md {
                writeln!(out, "# diff\n\n- A: `{}`\n- B: `{}`\n", d.a, d.b)?;
            } else {
                writeln!(out, "A: {}\nB: {}", d.a, d.b)?;
            }
            if d.setting_changes.is_empty() {
                writeln!(out, "same device, clocks and workload")?;
            } else {
                writeln!(out, "setting differences (A -> B):")?;
                for (k, a, b) in &d.setting_changes {
                    writeln!(out, "{item}{k}: {a} -> {b}")?;
                }
            }
            writeln!(out)?;
            let r = |t: &Tab| if md { t.to_markdown() } else { t.to_text_table() };
            writeln!(out, "{}", r(&d.model))?;
            writeln!(out, "{}", r(&d.layers))?;
            writeln!(out, "significant: |Δ| > sqrt(ci_A² + ci_B²) (95% CIs); blank when a CI is unknown")?;
            for n in &d.notes {
                writeln!(out, "{item}note: {n}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significance_uses_the_combined_half_width() {
        // CIs 3 and 4 combine to 5: a difference of 5 is not significant, 5.1 is.
        assert_eq!(delta(Estimate::new(10.0, 3.0), Estimate::new(15.0, 4.0)), (5.0, 5.0, Some(false)));
        let (d, ci, s) = delta(Estimate::new(10.0, 3.0), Estimate::new(4.9, 4.0));
        assert!((d + 5.1).abs() < 1e-12 && ci == 5.0 && s == Some(true));
        assert_eq!(delta(Estimate::new(1.0, f64::NAN), Estimate::new(2.0, 0.1)).2, None);
    }
}
