//! Golden outputs of the offline tools for every trace in `tests/fixtures/*.cnt`
//! (repository root): the report as a table, CSV (each `--by`), JSON and Markdown, and
//! the shape of the Perfetto export. `UPDATE_GOLDEN=1 cargo test -p cnnergy-traces
//! --test report_golden` (re)writes the synthetic fixtures and every `.golden` file;
//! otherwise outputs must match byte for byte.
//!
//! The synthetic fixtures come from `report::synth` (deterministic); a real GPU trace
//! dropped into the folder is picked up the same way.

use std::path::{Path, PathBuf};

use cnnergy_traces::report::{self, export, synth, table::Format, Analysis, By, Sort};
use cnnergy_traces::{energy, Trace, TraceData};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn updating() -> bool {
    std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

/// The synthetic fixtures: (file name, spec).
fn synthetic() -> Vec<(&'static str, synth::Spec)> {
    vec![
        ("synthetic-tinynet-b8.cnt", synth::Spec::default()),
        (
            "synthetic-tinynet-b8-timeonly.cnt",
            synth::Spec { power: false, warmup: 5, measure: 60, ..synth::Spec::default() },
        ),
    ]
}

fn synth_bytes(spec: &synth::Spec) -> Vec<u8> {
    let mut v = Vec::new();
    synth::write(&mut v, spec).unwrap();
    v
}

#[test]
fn synthetic_fixtures_are_what_synth_writes() {
    for (name, spec) in synthetic() {
        let path = fixtures().join(name);
        let bytes = synth_bytes(&spec);
        if updating() {
            std::fs::create_dir_all(fixtures()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            continue;
        }
        let have =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        assert!(have == bytes, "{} differs from report::synth's output: run with UPDATE_GOLDEN=1", path.display());
    }
}

/// Every output of one trace, as (golden file suffix, text).
fn outputs(path: &Path) -> Vec<(String, String)> {
    let data = TraceData::open(path).unwrap();
    let trace = Trace::parse(&data).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let a = Analysis::of(&trace, &name, &energy::Options::default()).unwrap();
    let mut v = Vec::new();
    let render = |f: Format, by: By| {
        let mut o = Vec::new();
        report::render(&a, f, by, Sort::Id, &mut o).unwrap();
        String::from_utf8(o).unwrap()
    };
    v.push(("table".to_string(), render(Format::Table, By::Layer)));
    v.push(("md".to_string(), render(Format::Md, By::Layer)));
    v.push(("json".to_string(), render(Format::Json, By::Layer)));
    for (by, label) in [(By::Layer, "layers"), (By::Type, "types"), (By::Kernel, "kernels"), (By::Model, "model")] {
        v.push((format!("{label}.csv"), render(Format::Csv, by)));
    }
    // The export is large: its golden is the set of tracks and the event counts.
    let mut json = Vec::new();
    let stats = export::chrome(&trace, &mut json).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let mut tracks: Vec<String> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        .collect();
    tracks.sort();
    let mut counters: Vec<String> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "C")
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    counters.sort();
    counters.dedup();
    let shape = serde_json::json!({"stats": stats, "tracks": tracks, "counters": counters});
    v.push(("export.json".to_string(), serde_json::to_string_pretty(&shape).unwrap() + "\n"));
    v
}

#[test]
fn every_fixture_matches_its_golden_outputs() {
    if updating() {
        // Fixtures first, in case this test runs before the one that writes them.
        for (name, spec) in synthetic() {
            std::fs::create_dir_all(fixtures()).unwrap();
            std::fs::write(fixtures().join(name), synth_bytes(&spec)).unwrap();
        }
    }
    let mut traces: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cnt"))
        .collect();
    traces.sort();
    assert!(traces.len() >= synthetic().len(), "fixtures missing in {}", fixtures().display());
    let mut failures = Vec::new();
    for t in &traces {
        for (suffix, text) in outputs(t) {
            let golden = t.with_extension(format!("{suffix}.golden"));
            if updating() {
                std::fs::write(&golden, &text).unwrap();
                continue;
            }
            match std::fs::read_to_string(&golden) {
                Ok(want) if want == text => {}
                Ok(want) => {
                    let line = want.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or(0);
                    failures.push(format!(
                        "{}: differs at line {}:\n  golden: {}\n  now:    {}",
                        golden.display(),
                        line + 1,
                        want.lines().nth(line).unwrap_or(""),
                        text.lines().nth(line).unwrap_or("")
                    ));
                }
                Err(e) => failures.push(format!("{}: {e} (UPDATE_GOLDEN=1 writes it)", golden.display())),
            }
        }
    }
    assert!(failures.is_empty(), "golden mismatches (UPDATE_GOLDEN=1 rewrites them):\n{}", failures.join("\n"));
}
