//! The offline tools on synthetic traces whose truth is known (`report::synth`):
//! figures and units, time-only reports, CSV/JSON columns, the Perfetto export's
//! slices and counter tracks, diff significance and the tradeoff from traces.

use std::collections::HashMap;

use cnnergy_traces::report::{self, diff, export, synth, table::Format, tradeoff, Analysis, By, Sort};
use cnnergy_traces::{energy, Event, Trace, TraceData};

struct Fixture {
    _dir: tempdir::Dir,
    path: std::path::PathBuf,
    truth: synth::Truth,
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn fixture(name: &str, spec: &synth::Spec) -> Fixture {
    let dir = std::env::temp_dir().join(format!("cnnergy-report-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.cnt"));
    let truth = synth::write(std::io::BufWriter::new(std::fs::File::create(&path).unwrap()), spec).unwrap();
    Fixture { _dir: tempdir::Dir(dir), path, truth }
}

fn analyse(f: &Fixture) -> Analysis {
    let data = TraceData::open(&f.path).unwrap();
    let trace = Trace::parse(&data).unwrap();
    Analysis::of(&trace, "t.cnt", &energy::Options::default()).unwrap()
}

fn render(a: &Analysis, format: Format, by: By) -> String {
    let mut v = Vec::new();
    report::render(a, format, by, Sort::Id, &mut v).unwrap();
    String::from_utf8(v).unwrap()
}

fn csv_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let head: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records().map(|rec| head.iter().cloned().zip(rec.unwrap().iter().map(str::to_string)).collect()).collect()
}

#[test]
fn layer_times_and_energy_units_match_the_synthetic_truth() {
    let f = fixture("energy", &synth::Spec::default());
    let a = analyse(&f);
    assert!(a.energy);
    let rows = csv_rows(&render(&a, Format::Csv, By::Layer));
    assert_eq!(rows.len(), f.truth.layer_time_ns.len());
    for r in &rows {
        let id: usize = r["layer_id"].parse().unwrap();
        let t_ms: f64 = r["time_ms"].parse().unwrap();
        let want = f.truth.layer_time_ns[id] * 1e-6;
        assert!((t_ms - want).abs() < 1e-9 * want.max(1.0) + 1e-9, "layer {id}: {t_ms} ms vs truth {want} ms");
    }
    // Units: per-inference energy in J against the simulator's exact integral, loosely
    // (the estimate's accuracy is the energy module's business; a unit slip is 1000x).
    let model = &csv_rows(&render(&a, Format::Csv, By::Model))[0];
    let j: f64 = model["j_per_inference"].parse().unwrap();
    let want = f.truth.total_energy_j / 500.0;
    assert!((j / want - 1.0).abs() < 0.1, "J/inference {j} vs truth {want}");
    let j_img: f64 = model["j_per_image"].parse().unwrap();
    assert!((j_img * 8.0 - j).abs() < 1e-9 * j, "batch 8: J/image x 8 = J/inference");
    let sum_mj: f64 = rows.iter().map(|r| r["energy_mj"].parse::<f64>().unwrap()).sum();
    assert!(sum_mj < j * 1e3 * 1.001, "layer energies ({sum_mj} mJ) within the inference's {j} J");
    let shares: f64 = rows.iter().map(|r| r["energy_share"].parse::<f64>().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9);
}

#[test]
fn kernel_rows_split_a_layer_and_add_up_to_it() {
    let f = fixture("kernels", &synth::Spec::default());
    let a = analyse(&f);
    let rows = csv_rows(&render(&a, Format::Csv, By::Kernel));
    // block0.conv2 is a split-K convolution: two kernels, one per inference each.
    let conv2: Vec<_> = rows.iter().filter(|r| r["layer"] == "block0.conv2").collect();
    assert_eq!(conv2.len(), 2);
    let t: f64 = conv2.iter().map(|r| r["time_ms"].parse::<f64>().unwrap()).sum();
    let want = f.truth.layer_time_ns[6] * 1e-6;
    assert!((t - want).abs() < 1e-6 * want, "{t} vs {want}");
    for r in &conv2 {
        assert_eq!(r["launches"], "1");
        assert_eq!(r["type"], "conv");
        assert!(r["energy_mj"].parse::<f64>().unwrap() > 0.0);
    }
}

#[test]
fn a_trace_without_power_gives_time_only_figures_with_a_note() {
    let spec = synth::Spec { power: false, warmup: 5, measure: 40, ..synth::Spec::default() };
    let f = fixture("timeonly", &spec);
    let a = analyse(&f);
    assert!(!a.energy);
    assert!(a.notes.iter().any(|n| n.contains("time-only")), "{:?}", a.notes);
    let rows = csv_rows(&render(&a, Format::Csv, By::Layer));
    for r in &rows {
        let id: usize = r["layer_id"].parse().unwrap();
        let t: f64 = r["time_ms"].parse().unwrap();
        let want = f.truth.layer_time_ns[id] * 1e-6;
        assert!((t - want).abs() < 1e-9 * want + 1e-12, "layer {id}: {t} vs {want}");
        assert!(r["time_ci_ms"].parse::<f64>().unwrap() > 0.0, "time CI from 40 executions");
        assert_eq!(r["energy_mj"], "", "energy unknown");
        assert_eq!(r["gflop_per_j"], "");
    }
    let text = render(&a, Format::Table, By::Layer);
    assert!(text.contains("time only") && text.contains("n/a"), "{text}");
    let j: serde_json::Value = serde_json::from_str(&render(&a, Format::Json, By::Layer)).unwrap();
    assert!(j["model"]["j_per_image"].is_null());
    assert_eq!(j["model"]["inferences"], 40);
    // Every chart is still drawn (time instead of energy).
    let mut html = Vec::new();
    report::html::report(&a, Sort::Energy, &mut html).unwrap();
    let html = String::from_utf8(html).unwrap();
    for id in report::html::CHARTS {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("no power data"));
}

#[test]
fn json_and_csv_carry_the_documented_columns() {
    let f = fixture("columns", &synth::Spec { warmup: 5, measure: 300, ..synth::Spec::default() });
    let a = analyse(&f);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report-columns.md")).unwrap();
    for by in [By::Layer, By::Type, By::Kernel, By::Model] {
        let t = report::table_by(&a, by, Sort::Id);
        for c in &t.columns {
            assert!(doc.contains(&format!("`{}`", c.key)), "column {} of {} undocumented", c.key, t.name);
        }
        let csv = render(&a, Format::Csv, by);
        let header = csv.lines().next().unwrap();
        assert_eq!(header, t.columns.iter().map(|c| c.key).collect::<Vec<_>>().join(","));
    }
    let j: serde_json::Value = serde_json::from_str(&render(&a, Format::Json, By::Layer)).unwrap();
    assert_eq!(j["schema"], "cnnergy.report/1");
    assert_eq!(j["layers"].as_array().unwrap().len(), 11);
    assert_eq!(j["types"].as_array().unwrap().len(), 6);
    assert!(j["layers"][1]["gflop_per_j"].as_f64().unwrap() > 0.0);
}

#[test]
fn sorting_orders_rows() {
    let f = fixture("sort", &synth::Spec { warmup: 5, measure: 300, ..synth::Spec::default() });
    let a = analyse(&f);
    let col = |sort: Sort, key: &str| -> Vec<f64> {
        let t = report::layer_table(&a, sort);
        let i = t.columns.iter().position(|c| c.key == key).unwrap();
        t.rows.iter().map(|r| r[i].as_f64()).collect()
    };
    let e = col(Sort::Energy, "energy_mj");
    assert!(e.windows(2).all(|w| w[0] >= w[1]), "{e:?}");
    let t = col(Sort::Time, "time_ms");
    assert!(t.windows(2).all(|w| w[0] >= w[1]), "{t:?}");
    let g: Vec<f64> = col(Sort::Efficiency, "gflop_per_j");
    let known: Vec<f64> = g.iter().copied().take_while(|x| x.is_finite()).collect();
    assert!(known.windows(2).all(|w| w[0] <= w[1]), "least efficient first: {g:?}");
    assert!(g[known.len()..].iter().all(|x| x.is_nan()), "layers without FLOPs last: {g:?}");
}

#[test]
fn perfetto_export_has_kernel_layer_and_inference_slices_and_counter_tracks() {
    let spec = synth::Spec { warmup: 3, measure: 40, ..synth::Spec::default() };
    let f = fixture("export", &spec);
    let data = TraceData::open(&f.path).unwrap();
    let trace = Trace::parse(&data).unwrap();
    let mut out = Vec::new();
    let stats = export::chrome(&trace, &mut out).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    let events = doc["traceEvents"].as_array().unwrap();

    // What the trace holds, read independently.
    let mut kernels = Vec::new();
    let mut power: HashMap<String, usize> = HashMap::new();
    let (mut energy_n, mut origin) = (0, u64::MAX);
    for e in trace.events() {
        let e = e.unwrap();
        origin = origin.min(e.t_ns());
        match e {
            Event::Kernel(k) => kernels.push(k),
            Event::Power(p) => *power.entry(trace.string(p.sensor).unwrap().to_string()).or_default() += 1,
            Event::Energy(_) => energy_n += 1,
            _ => {}
        }
    }
    let tracks: HashMap<u64, String> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| (e["tid"].as_u64().unwrap(), e["args"]["name"].as_str().unwrap().to_string()))
        .collect();
    let on = |track: &str| -> Vec<&serde_json::Value> {
        events
            .iter()
            .filter(|e| e["ph"] == "X" && tracks.get(&e["tid"].as_u64().unwrap_or(0)).is_some_and(|t| t == track))
            .collect()
    };
    let ks = on("stream 7 · kernels");
    assert_eq!(ks.len(), kernels.len());
    assert_eq!(stats.kernel_slices as usize, kernels.len());
    let k0 = &kernels[0];
    let s0 = ks.iter().find(|s| s["args"]["correlation"] == k0.correlation_id).unwrap();
    assert_eq!(s0["name"], trace.string(k0.launch.kernel).unwrap());
    assert_eq!(s0["args"]["layer"], "input.convert");
    assert_eq!(s0["args"]["type"], "other");
    assert_eq!(s0["args"]["iteration"], 0);
    assert_eq!(s0["args"]["grid"], serde_json::json!(k0.launch.grid));
    assert_eq!(s0["args"]["block"], serde_json::json!(k0.launch.block));
    let ts = s0["ts"].as_f64().unwrap();
    assert!((ts - (k0.start_ns - origin) as f64 / 1e3).abs() < 1e-6, "ts in µs since the first event");
    assert!((s0["dur"].as_f64().unwrap() - k0.duration_ns as f64 / 1e3).abs() < 1e-6);

    // One layer slice per layer and inference (split-K kernels share one), enclosing its kernels.
    let layers = on("stream 7 · layers");
    assert_eq!(layers.len(), 11 * 43);
    let conv2: Vec<_> = layers.iter().filter(|l| l["name"] == "block0.conv2").collect();
    assert_eq!(conv2.len(), 43);
    assert!(conv2.iter().all(|l| l["args"]["kernels"] == 2 && l["cat"] == "conv"));
    for k in ks.iter().filter(|k| k["args"]["layer"] == "block0.conv2") {
        let it = &k["args"]["iteration"];
        let l = conv2.iter().find(|l| l["args"]["iteration"] == *it).unwrap();
        let (lt, ld) = (l["ts"].as_f64().unwrap(), l["dur"].as_f64().unwrap());
        let (kt, kd) = (k["ts"].as_f64().unwrap(), k["dur"].as_f64().unwrap());
        assert!(lt <= kt + 1e-9 && kt + kd <= lt + ld + 1e-6, "layer slice encloses its kernel");
    }
    assert_eq!(on("stream 7 · inferences").len(), 43);
    let phases: Vec<_> = on("phases").iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(phases, ["warmup", "measure"]);

    // Counter tracks: one value per sample.
    let count = |name: &str| events.iter().filter(|e| e["ph"] == "C" && e["name"] == name).count();
    assert_eq!(count("power nvml.samples (W)"), power["nvml.samples"]);
    assert_eq!(count("power nvml.instant (W)"), power["nvml.instant"]);
    assert_eq!(count("energy (J)"), energy_n);
    assert!(count("clocks (MHz)") > 0 && count("temperature gpu (C)") > 0);
    assert!(count("power from energy counter (W)") > 0);
    let p = events.iter().find(|e| e["name"] == "power nvml.samples (W)").unwrap();
    let w = p["args"]["W"].as_f64().unwrap();
    assert!((50.0..400.0).contains(&w), "watts, not milliwatts: {w}");
}

#[test]
fn diff_marks_significant_changes_and_setting_differences() {
    let base = synth::Spec { warmup: 5, measure: 300, ..synth::Spec::default() };
    let slower = synth::Spec { time_scale: 110.0, conv_variant: "implicit_gemm_64x64".into(), ..base.clone() };
    let (fa, fb) = (fixture("diff-a", &base), fixture("diff-b", &slower));
    let (a, b) = (analyse(&fa), analyse(&fb));

    let same = diff::diff(&a, &a);
    assert!(same.setting_changes.is_empty());
    let i = same.layers.columns.iter().position(|c| c.key == "time_significant").unwrap();
    assert!(same.layers.rows.iter().all(|r| r[i] == report::table::Cell::Bool(false)));

    let d = diff::diff(&a, &b);
    assert!(d
        .setting_changes
        .iter()
        .any(|(k, x, y)| k == "kernel variants" && x.contains("128x64") && y.contains("64x64")));
    let col = |key: &str| d.layers.columns.iter().position(|c| c.key == key).unwrap();
    for r in &d.layers.rows {
        // Every kernel is 10% longer (same seed, same jitter): significant, +10%.
        assert_eq!(r[col("time_significant")], report::table::Cell::Bool(true), "{r:?}");
        let ch = r[col("time_change")].as_f64();
        assert!((ch - 0.10).abs() < 0.002, "{ch}");
        assert_eq!(r[col("status")], report::table::Cell::Text("both".into()));
    }
    let mut text = Vec::new();
    diff::render(&d, Format::Table, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("setting differences") && text.contains("kernel variants"), "{text}");
}

#[test]
fn tradeoff_from_traces_ranks_settings_and_shows_their_clocks() {
    let mk = |batch: u32, name: &str| {
        let spec = synth::Spec {
            batch,
            warmup: 5,
            measure: 200,
            time_scale: 100.0 * batch as f64 / 8.0,
            sm_clock_mhz: 1980,
            ..synth::Spec::default()
        };
        fixture(name, &spec)
    };
    let fs = [mk(1, "t1"), mk(8, "t8")];
    let entries: Vec<_> =
        fs.iter().map(|f| tradeoff::SweepEntry::from_analysis(&f.path.display().to_string(), &analyse(f))).collect();
    assert_eq!(entries[0].batch, 1);
    assert!(entries[1].j_per_image.is_finite() && entries[1].ci.is_finite());
    assert_eq!(entries[0].sm_clock_mhz, 1755.0, "recorded clocks (the samples), not the header's");
    let t = tradeoff::evaluate(&entries, tradeoff::Prices::default());
    assert_eq!(t.default, Some(0));
    assert!(t.best.is_some());
    let mut out = Vec::new();
    tradeoff::render(&t, Format::Table, &mut out).unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains("best: ") && s.contains("vs default b1"), "{s}");
}
