//! `cnnergy tradeoff`: which setting (batch size, precision, kernel variant, clocks)
//! earns the most, given a value per image, an energy price and a latency SLO. The
//! model and the sweep-summary schema are documented in `docs/revenue-model.md`:
//!
//! ```text
//! energy cost/s  = P × avg_power_w / 3.6e6          (P per kWh; 1 kWh = 3.6e6 J)
//! revenue/s      = V × images_per_s − energy cost/s
//! ```
//!
//! Settings whose latency exceeds the SLO are excluded. The Pareto front is over
//! (latency, J/image), both minimised, among the admitted settings. The best setting
//! maximises revenue/s when a value per image is given, else minimises J/image. The
//! default it is compared with is batch 1 (the first such setting, else the smallest
//! batch).

use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::table::{col, col_ci, Format, Show, Tab};
use super::Analysis;

pub const SCHEMA: &str = "cnnergy.sweep/1";
/// Joules per kilowatt-hour.
pub const J_PER_KWH: f64 = 3.6e6;

/// One measured setting: a row of the sweep summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepEntry {
    /// Path of the trace this row was computed from (relative to the summary file or absolute).
    pub trace: String,
    pub batch: u32,
    pub dtype: String,
    /// Kernel variant(s), e.g. "Conv=implicit_gemm_128x64" or "default".
    pub variant: String,
    /// Wall time per batch (ms).
    pub latency_ms: f64,
    pub images_per_s: f64,
    /// Energy per image (J; null when unknown).
    #[serde(with = "nan_as_null")]
    pub j_per_image: f64,
    /// 95% CI half-width of `j_per_image` (null when unknown).
    #[serde(default, with = "nan_as_null")]
    pub ci: f64,
    #[serde(with = "nan_as_null")]
    pub avg_power_w: f64,
    #[serde(default)]
    pub device: String,
    /// Recorded mean SM clock in the analysed window (MHz; 0 = unknown).
    #[serde(default)]
    pub sm_clock_mhz: f64,
    #[serde(default)]
    pub mem_clock_mhz: f64,
    #[serde(default)]
    pub power_limit_w: f64,
}

/// `cnnergy sweep`'s output file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub settings: Vec<SweepEntry>,
}

mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

impl SweepEntry {
    /// The summary row of an analysed trace (what `cnnergy sweep` writes per setting).
    pub fn from_analysis(trace: &str, a: &Analysis) -> SweepEntry {
        let h = &a.header;
        let m = &a.figures.model_figures;
        let variants: Vec<String> =
            h.workload.kernel_variants.iter().map(|v| format!("{}={}", v.target, v.variant)).collect();
        let (j, ci, w) = if a.energy {
            (m.j_per_image.value, m.j_per_image.ci95, m.avg_power_w)
        } else {
            (f64::NAN, f64::NAN, f64::NAN)
        };
        SweepEntry {
            trace: trace.to_string(),
            batch: h.workload.batch_size,
            dtype: h.workload.dtype.to_string(),
            variant: if variants.is_empty() { "default".into() } else { variants.join(",") },
            latency_ms: m.latency_ms,
            images_per_s: m.images_per_s,
            j_per_image: j,
            ci,
            avg_power_w: w,
            device: h.device.name.to_string(),
            sm_clock_mhz: a.clocks.map_or(h.device.sm_clock_mhz as f64, |c| c.sm_mhz_mean),
            mem_clock_mhz: a.clocks.map_or(h.device.mem_clock_mhz as f64, |c| c.mem_mhz_mean),
            power_limit_w: h.device.power_limit_mw as f64 / 1000.0,
        }
    }

    /// A short human label: "b8 f16 Conv=implicit_gemm_128x64 @1755MHz".
    pub fn label(&self) -> String {
        let mut s = format!("b{} {} {}", self.batch, self.dtype, self.variant);
        if self.sm_clock_mhz > 0.0 {
            s.push_str(&format!(" @{:.0}MHz", self.sm_clock_mhz));
        }
        s
    }
}

/// Writes a sweep summary (pretty JSON).
pub fn write_summary(path: &Path, settings: &[SweepEntry]) -> io::Result<()> {
    let doc = SweepSummary { schema: SCHEMA.into(), settings: settings.to_vec() };
    let text = serde_json::to_string_pretty(&doc).map_err(io::Error::other)?;
    std::fs::write(path, text + "\n")
}

/// Reads a sweep summary; the error says what is wrong in one line.
pub fn read_summary(path: &Path) -> Result<SweepSummary, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s: SweepSummary =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a sweep summary ({e})", path.display()))?;
    if s.schema != SCHEMA {
        return Err(format!("{}: schema {:?}, expected {SCHEMA:?}", path.display(), s.schema));
    }
    Ok(s)
}

/// Prices and constraints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Latency SLO (ms per batch); settings above it are excluded.
    pub slo_ms: Option<f64>,
    /// Energy price per kWh (any currency).
    pub energy_price_per_kwh: f64,
    /// Value of one processed image (same currency); None = rank by J/image.
    pub value_per_image: Option<f64>,
}

impl Default for Prices {
    fn default() -> Prices {
        Prices { slo_ms: None, energy_price_per_kwh: 0.15, value_per_image: None }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub entry: SweepEntry,
    pub energy_cost_per_s: f64,
    /// NaN without a value per image.
    pub revenue_per_s: f64,
    pub within_slo: bool,
    pub pareto: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tradeoff {
    pub prices: Prices,
    pub outcomes: Vec<Outcome>,
    pub best: Option<usize>,
    pub default: Option<usize>,
}

pub fn evaluate(settings: &[SweepEntry], prices: Prices) -> Tradeoff {
    let mut outcomes: Vec<Outcome> = settings
        .iter()
        .map(|e| {
            let cost = prices.energy_price_per_kwh * e.avg_power_w / J_PER_KWH;
            let revenue = prices.value_per_image.map_or(f64::NAN, |v| v * e.images_per_s - cost);
            Outcome {
                entry: e.clone(),
                energy_cost_per_s: cost,
                revenue_per_s: revenue,
                within_slo: prices.slo_ms.is_none_or(|slo| e.latency_ms <= slo),
                pareto: false,
            }
        })
        .collect();
    let ok: Vec<usize> =
        (0..outcomes.len()).filter(|&i| outcomes[i].within_slo && outcomes[i].entry.j_per_image.is_finite()).collect();
    for &i in &ok {
        let (li, ji) = (outcomes[i].entry.latency_ms, outcomes[i].entry.j_per_image);
        let dominated = ok.iter().any(|&k| {
            let (lk, jk) = (outcomes[k].entry.latency_ms, outcomes[k].entry.j_per_image);
            k != i && lk <= li && jk <= ji && (lk < li || jk < ji)
        });
        outcomes[i].pareto = !dominated;
    }
    let best = match prices.value_per_image {
        Some(_) => ok.iter().copied().max_by(|&x, &y| outcomes[x].revenue_per_s.total_cmp(&outcomes[y].revenue_per_s)),
        None => ok.iter().copied().min_by(|&x, &y| {
            let (a, b) = (&outcomes[x].entry, &outcomes[y].entry);
            a.j_per_image.total_cmp(&b.j_per_image).then(a.latency_ms.total_cmp(&b.latency_ms))
        }),
    };
    let default = outcomes
        .iter()
        .position(|o| o.entry.batch == 1)
        .or_else(|| (0..outcomes.len()).min_by_key(|&i| outcomes[i].entry.batch));
    Tradeoff { prices, outcomes, best, default }
}

impl Tradeoff {
    pub fn table(&self) -> Tab {
        let mut t = Tab::new(
            "settings",
            vec![
                col("setting", "setting", Show::Plain),
                col("trace", "trace", Show::Hidden),
                col("batch", "batch", Show::Hidden),
                col("dtype", "dtype", Show::Hidden),
                col("variant", "variant", Show::Hidden),
                col("device", "device", Show::Hidden),
                col("sm_clock_mhz", "SM clock (MHz)", Show::Fixed(0)),
                col("mem_clock_mhz", "mem clock (MHz)", Show::Hidden),
                col("power_limit_w", "power limit (W)", Show::Fixed(0)),
                col("latency_ms", "latency (ms)", Show::Fixed(3)),
                col("images_per_s", "images/s", Show::Fixed(1)),
                col_ci("j_per_image", "J/image", Show::Sig3, "j_per_image_ci"),
                col("j_per_image_ci", "", Show::Hidden),
                col("avg_power_w", "power (W)", Show::Fixed(1)),
                col("energy_cost_per_s", "energy cost/s", Show::Sig3),
                col("revenue_per_s", "revenue/s", Show::Sig3),
                col("within_slo", "within SLO", Show::Plain),
                col("pareto", "Pareto", Show::Plain),
                col("best", "best", Show::Plain),
            ],
        );
        for (i, o) in self.outcomes.iter().enumerate() {
            let e = &o.entry;
            t.push(vec![
                e.label().into(),
                e.trace.clone().into(),
                (e.batch as u64).into(),
                e.dtype.clone().into(),
                e.variant.clone().into(),
                e.device.clone().into(),
                e.sm_clock_mhz.into(),
                e.mem_clock_mhz.into(),
                e.power_limit_w.into(),
                e.latency_ms.into(),
                e.images_per_s.into(),
                e.j_per_image.into(),
                e.ci.into(),
                e.avg_power_w.into(),
                o.energy_cost_per_s.into(),
                o.revenue_per_s.into(),
                o.within_slo.into(),
                o.pareto.into(),
                (self.best == Some(i)).into(),
            ]);
        }
        t
    }

    /// One-line verdicts: the best setting and its improvement over the default.
    pub fn summary(&self) -> Vec<String> {
        let mut v = Vec::new();
        let p = &self.prices;
        v.push(format!(
            "model: revenue/s = V x images/s - P x W / 3.6e6 with V = {}, P = {} per kWh{}",
            p.value_per_image.map_or("n/a (ranking by J/image)".to_string(), |x| format!("{x}")),
            p.energy_price_per_kwh,
            p.slo_ms.map_or(String::new(), |s| format!(", SLO {s} ms"))
        ));
        let Some(b) = self.best else {
            v.push("no setting meets the SLO with a known J/image".into());
            return v;
        };
        let best = &self.outcomes[b];
        v.push(format!("best: {} ({})", best.entry.label(), best.entry.trace));
        if let Some(d) = self.default {
            let def = &self.outcomes[d];
            let pct = |new: f64, old: f64| (new - old) / old.abs() * 100.0;
            let mut s = format!(
                "vs default {}: J/image {:+.1}%, images/s {:+.1}%, latency {:+.1}%",
                def.entry.label(),
                pct(best.entry.j_per_image, def.entry.j_per_image),
                pct(best.entry.images_per_s, def.entry.images_per_s),
                pct(best.entry.latency_ms, def.entry.latency_ms),
            );
            if p.value_per_image.is_some() {
                s.push_str(&format!(
                    ", revenue/s {:.4} -> {:.4} ({:+.1}%)",
                    def.revenue_per_s,
                    best.revenue_per_s,
                    pct(best.revenue_per_s, def.revenue_per_s)
                ));
            }
            if !def.within_slo {
                s.push_str(" (the default itself misses the SLO)");
            }
            v.push(s);
        }
        let front: Vec<String> = self.outcomes.iter().filter(|o| o.pareto).map(|o| o.entry.label()).collect();
        v.push(format!("Pareto front (latency, J/image): {}", front.join("; ")));
        v
    }
}

pub fn render<W: Write>(t: &Tradeoff, format: Format, mut out: W) -> io::Result<()> {
    let tab = t.table();
    match format {
        Format::Csv => tab.write_csv(out),
        Format::Json => {
            let p = &t.prices;
            let doc = serde_json::json!({
                "schema": "cnnergy.tradeoff/1",
                "slo_ms": p.slo_ms, "energy_price_per_kwh": p.energy_price_per_kwh, "value_per_image": p.value_per_image,
                "settings": tab.to_json(),
                "best": t.best.map(|i| t.outcomes[i].entry.label()),
                "default": t.default.map(|i| t.outcomes[i].entry.label()),
                "summary": t.summary(),
            });
            serde_json::to_writer_pretty(&mut out, &doc).map_err(io::Error::other)?;
            writeln!(out)
        }
        Format::Table | Format::Md | Format::Html => {
            let md = format == Format::Md;
            writeln!(out, "{}", if md { tab.to_markdown() } else { tab.to_text_table() })?;
            for s in t.summary() {
                writeln!(out, "{}{s}", if md { "- " } else { "" })?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(batch: u32, latency_ms: f64, j: f64, watts: f64) -> SweepEntry {
        SweepEntry {
            trace: format!("b{batch}.cnt"),
            batch,
            dtype: "f16".into(),
            variant: "default".into(),
            latency_ms,
            images_per_s: batch as f64 * 1e3 / latency_ms,
            j_per_image: j,
            ci: 0.01 * j,
            avg_power_w: watts,
            device: "gpu".into(),
            sm_clock_mhz: 0.0,
            mem_clock_mhz: 0.0,
            power_limit_w: 700.0,
        }
    }

    #[test]
    fn revenue_uses_price_per_kwh_and_the_slo_excludes_slow_settings() {
        let s = [entry(1, 2.0, 0.5, 250.0), entry(8, 8.0, 0.2, 200.0), entry(64, 40.0, 0.1, 160.0)];
        let t = evaluate(&s, Prices { slo_ms: Some(10.0), energy_price_per_kwh: 0.36, value_per_image: Some(1e-5) });
        // b8: 1000 images/s x 1e-5 = 0.01/s revenue; 200 W x 0.36 / 3.6e6 = 2e-5/s cost.
        let b8 = &t.outcomes[1];
        assert!((b8.energy_cost_per_s - 2e-5).abs() < 1e-12);
        assert!((b8.revenue_per_s - (0.01 - 2e-5)).abs() < 1e-12);
        assert!(!t.outcomes[2].within_slo);
        assert_eq!(t.best, Some(1));
        assert_eq!(t.default, Some(0));
        // b1 (2 ms, 0.5 J) and b8 (8 ms, 0.2 J) are both on the front; b64 is excluded.
        assert_eq!(t.outcomes.iter().map(|o| o.pareto).collect::<Vec<_>>(), [true, true, false]);
    }

    #[test]
    fn without_a_value_the_best_setting_uses_the_least_energy_per_image() {
        let s = [entry(1, 2.0, 0.5, 250.0), entry(8, 8.0, 0.2, 200.0), entry(16, 9.0, 0.3, 260.0)];
        let t = evaluate(&s, Prices::default());
        assert_eq!(t.best, Some(1));
        assert!(!t.outcomes[2].pareto, "b16 is slower and costlier than b8");
    }

    #[test]
    fn summaries_round_trip_and_unknown_ci_is_null() {
        let dir = std::env::temp_dir().join(format!("cnnergy-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("sweep.json");
        let mut e = entry(4, 3.0, 0.3, 200.0);
        e.ci = f64::NAN;
        write_summary(&p, std::slice::from_ref(&e)).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains("\"ci\": null"));
        let back = read_summary(&p).unwrap();
        assert!(back.settings[0].ci.is_nan());
        assert_eq!(back.settings[0].latency_ms, 3.0);
        std::fs::write(&p, "{\"schema\":\"other/1\",\"settings\":[]}").unwrap();
        assert!(read_summary(&p).unwrap_err().contains("expected \"cnnergy.sweep/1\""));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
