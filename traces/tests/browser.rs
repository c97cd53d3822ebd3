//! The HTML report opened in a real headless browser (Debian's `chromium`): no console
//! message (the page logs nothing, so any message is an error or an uncaught exception),
//! the page's script ran to its end (it marks `<body data-charts=N>`) and every chart
//! figure holds a drawn SVG. Under CI (`CI=true`) a missing chromium fails; elsewhere
//! the test is skipped with a message. `CNNERGY_CHROMIUM` overrides the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use cnnergy_traces::report::{self, synth, Analysis, Sort};
use cnnergy_traces::{energy, Trace, TraceData};

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CNNERGY_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

struct Loaded {
    dom: String,
    console: Vec<String>,
}

/// Loads `page` with `--dump-dom`, console messages on stderr.
fn load(browser: &Path, page: &Path, profile: &Path) -> Loaded {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console: stderr.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect(),
    }
}

/// What is wrong with a loaded report page (empty = fine).
fn problems(l: &Loaded, charts: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = l.console.iter().map(|c| format!("console: {c}")).collect();
    let want = format!("data-charts=\"{}\"", charts.len());
    if !l.dom.contains(&want) {
        v.push(format!("the page script did not finish or counted other charts (no {want})"));
    }
    for id in charts {
        let Some(at) = l.dom.find(&format!("id=\"{id}\"")) else {
            v.push(format!("chart {id} missing"));
            continue;
        };
        let fig = &l.dom[at..at + l.dom[at..].find("</figure>").unwrap_or(0)];
        let shapes = fig.matches("<rect").count() + fig.matches("<circle").count() + fig.matches("<polyline").count();
        if !fig.contains("<svg") || shapes < 3 {
            v.push(format!("chart {id} has no drawing ({shapes} shapes)"));
        }
    }
    v
}

#[test]
fn html_report_loads_without_errors_and_draws_every_chart() {
    let Some(browser) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium not found under CI (apt-get install -y chromium)");
        }
        eprintln!("SKIPPED: chromium not found (apt-get install -y chromium); the HTML report was not checked");
        return;
    };
    let dir = std::env::temp_dir().join(format!("cnnergy-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("profile");

    for (name, power) in [("energy", true), ("timeonly", false)] {
        let spec = synth::Spec { power, warmup: 5, measure: 300, ..synth::Spec::default() };
        let trace_path = dir.join(format!("{name}.cnt"));
        synth::write(std::fs::File::create(&trace_path).unwrap(), &spec).unwrap();
        let data = TraceData::open(&trace_path).unwrap();
        let trace = Trace::parse(&data).unwrap();
        let a = Analysis::of(&trace, name, &energy::Options::default()).unwrap();
        let page = dir.join(format!("{name}.html"));
        report::html::report(&a, Sort::Energy, std::fs::File::create(&page).unwrap()).unwrap();
        let l = load(&browser, &page, &profile);
        let p = problems(&l, &report::html::CHARTS);
        assert!(p.is_empty(), "{name} report: {}", p.join("\n"));
    }

    // The checker itself catches a throwing page and a missing chart.
    let bad = dir.join("bad.html");
    let html = std::fs::read_to_string(dir.join("energy.html")).unwrap();
    let broken =
        html.replacen("id=\"chart-roofline\"", "id=\"chart-gone\"", 1).replacen("<script>", "<script>nope();", 1);
    std::fs::write(&bad, broken).unwrap();
    let p = problems(&load(&browser, &bad, &profile), &report::html::CHARTS);
    assert!(p.iter().any(|m| m.contains("Uncaught ReferenceError")), "{p:?}");
    assert!(p.iter().any(|m| m.contains("chart-roofline missing")), "{p:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
