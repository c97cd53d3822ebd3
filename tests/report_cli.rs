//! `cnnergy report / export / diff / tradeoff` as a user runs them, on the synthetic
//! fixture in tests/fixtures: outputs land where asked, errors are one line.

use std::path::PathBuf;
use std::process::{Command, Output};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/synthetic-tinynet-b8.cnt");
const TIMEONLY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/synthetic-tinynet-b8-timeonly.cnt");

fn cnnergy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnnergy")).args(args).output().expect("the binary runs")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn one_line_error(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "expected failure");
    assert!(!e.contains("panicked"), "panic: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    e
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cnnergy-report-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn report_prints_tables_and_writes_files() {
    let out = ok(&cnnergy(&["report", FIXTURE]));
    assert!(out.contains("tinynet batch 8 f16") && out.contains("conv1") && out.contains("GFLOP/J"), "{out}");
    let csv = tmp("layers.csv");
    ok(&cnnergy(&["report", FIXTURE, "--format", "csv", "--by", "type", "-o", csv.to_str().unwrap()]));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("type,layers,time_ms,energy_mj,"), "{text}");
    assert_eq!(text.lines().count(), 7, "header + 6 types: {text}");
    let html = tmp("r.html");
    ok(&cnnergy(&["report", FIXTURE, "--format", "html", "-o", html.to_str().unwrap()]));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.matches("<svg").count() >= 5);
    let json = ok(&cnnergy(&["report", TIMEONLY, "--format", "json", "--sort", "time"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["model"]["j_per_image"].is_null());
}

#[test]
fn report_method_can_be_forced() {
    let json = ok(&cnnergy(&["report", FIXTURE, "--format", "json", "--method", "timeline"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["model"]["method"], "timeline", "{json}");
    let e = one_line_error(&cnnergy(&["report", FIXTURE, "--method", "replay"]));
    assert!(e.contains("not a replay trace"), "{e}");
}

#[test]
fn export_diff_and_tradeoff_run_on_fixtures() {
    let chrome = tmp("t.json");
    let out = ok(&cnnergy(&["export", FIXTURE, "--chrome", chrome.to_str().unwrap()]));
    assert!(out.contains("6600 kernel, 6050 layer, 550 inference"), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&chrome).unwrap()).unwrap();
    assert!(v["traceEvents"].as_array().unwrap().len() > 6600 + 6050 + 550);

    let d = ok(&cnnergy(&["diff", FIXTURE, TIMEONLY]));
    assert!(d.contains("setting differences") && d.contains("time only"), "{d}");

    let summary = tmp("sweep.json");
    let t = ok(&cnnergy(&[
        "tradeoff",
        FIXTURE,
        "--value-per-image",
        "0.0001",
        "--write-summary",
        summary.to_str().unwrap(),
    ]));
    assert!(t.contains("best: b8 f16"), "{t}");
    let again = ok(&cnnergy(&["tradeoff", summary.to_str().unwrap(), "--format", "csv"]));
    assert!(again.starts_with("setting,trace,batch,"), "{again}");
    // An SLO nothing meets: a clear verdict and a failing exit code.
    let o = cnnergy(&["tradeoff", summary.to_str().unwrap(), "--slo-ms", "0.001"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stdout).contains("no setting meets the SLO"));
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let e = one_line_error(&cnnergy(&["report", "/nonexistent/x.cnt"]));
    assert!(e.starts_with("error: /nonexistent/x.cnt"), "{e}");
    let foreign = tmp("foreign.cnt");
    std::fs::write(&foreign, b"{\"traceEvents\": []}").unwrap();
    one_line_error(&cnnergy(&["export", foreign.to_str().unwrap(), "--chrome", tmp("x.json").to_str().unwrap()]));
    one_line_error(&cnnergy(&["tradeoff", foreign.to_str().unwrap()]));
    one_line_error(&cnnergy(&["report", FIXTURE, "-o", "/nonexistent/dir/r.html", "--format", "html"]));
    one_line_error(&cnnergy(&["tradeoff", FIXTURE, "--energy-price=-1"]));
    assert!(!cnnergy(&["report", FIXTURE, "--format", "pdf"]).status.success());
}
