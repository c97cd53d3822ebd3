//! `cnnergy selftest` profile cases: record a short profile of a small model, directly
//! launched and as a CUDA graph, and check that every kernel maps to its layer
//! (docs/design.md, "Kernels of a CUDA graph").
//!
//! The GPU part ([`run_profile_checks`]) only runs [`record`]; the checks of its
//! outcome ([`check_outcome`]) and of the written trace ([`check_trace`]) are pure and
//! unit-tested on hand-built outcomes and traces.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use cnnergy_traces::{Event, LayerId, StrId, Trace, TraceData};

use super::CaseResult;
use crate::exec_gpu::{ExecOptions, Plan};
use crate::gpu::Gpu;
use crate::ops::DType;
use crate::profile::{record, ProfileMeta, ProfileOptions, ProfileOutcome};

/// Model, batch and precision of the profile cases: small enough for a second per case.
pub const MODEL: &str = "squeezenet1_0";
pub const BATCH: usize = 2;
pub const WARMUP: u32 = 3;
pub const ITERATIONS: u32 = 30;

/// The case names, in run order.
pub const CASES: [(&str, bool); 2] = [("profile/direct", false), ("profile/graph", true)];

/// What the run was asked to do: the expectations are computed from these, not read
/// back from the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Kernel launches of one iteration of the plan.
    pub kernels_per_iteration: u64,
    pub warmup: u32,
    pub iterations: u32,
    pub graphs: bool,
}

impl Expected {
    pub fn kernels(&self) -> u64 {
        self.kernels_per_iteration * (self.warmup as u64 + self.iterations as u64)
    }
}

/// Problems with a recording's counters (empty = fine).
pub fn check_outcome(o: &ProfileOutcome, e: &Expected) -> Vec<String> {
    let mut p = Vec::new();
    if e.kernels_per_iteration == 0 {
        p.push("the plan launches no kernels".into());
    }
    if o.kernels_per_iteration != e.kernels_per_iteration {
        p.push(format!(
            "learned {} kernels per iteration, the plan launches {}",
            o.kernels_per_iteration, e.kernels_per_iteration
        ));
    }
    if (o.warmup_iterations, o.iterations) != (e.warmup, e.iterations) {
        p.push(format!(
            "ran {} + {} iterations, asked for {} + {}",
            o.warmup_iterations, o.iterations, e.warmup, e.iterations
        ));
    }
    if o.kernels_expected != e.kernels() {
        p.push(format!("expected {} kernel records, the plan makes {}", o.kernels_expected, e.kernels()));
    }
    if o.kernel_records != e.kernels() {
        p.push(format!("{} kernel records, {} launched", o.kernel_records, e.kernels()));
    }
    // Direct launches: one launch call per kernel.
    if !e.graphs && o.launch_calls != e.kernels() {
        p.push(format!("{} launch calls, {} kernels launched", o.launch_calls, e.kernels()));
    }
    for (what, n) in [("unmapped", o.unmapped), ("dropped", o.dropped), ("layout mismatches", o.layout_mismatches)] {
        if n != 0 {
            p.push(format!("{n} {what}"));
        }
    }
    if o.interrupted {
        p.push("interrupted".into());
    }
    // Warnings say a part of the recorder was off (CUPTI, NVML) or records were lost.
    p.extend(o.warnings.iter().map(|w| format!("warning: {w}")));
    p
}

/// What [`check_trace`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceCheck {
    pub layers: usize,
    pub kernels: u64,
    pub sensor_records: u64,
}

/// Checks a recorded trace: it parses, is complete, and every kernel event names a
/// layer record of the trace and one of that layer's kernels. With `graphs`, iteration
/// 0 (always direct) has no graph node ids and every later kernel has one; without, no
/// kernel has one.
pub fn check_trace(path: &Path, graphs: bool) -> Result<TraceCheck, String> {
    let data = TraceData::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let trace = Trace::parse(&data).map_err(|e| format!("{}: {e}", path.display()))?;
    if !trace.is_complete() {
        let why = trace.damage().map_or("no summary".to_owned(), |d| d.to_string());
        return Err(format!("{}: incomplete trace ({why})", path.display()));
    }
    let layers: HashMap<LayerId, &[StrId]> = trace.layers().iter().map(|l| (l.id, &l.kernels[..])).collect();
    let mut c = TraceCheck { layers: layers.len(), ..TraceCheck::default() };
    let mut events = trace.events();
    loop {
        let e = match events.next_event() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let k = match e {
            Event::Kernel(k) => k,
            Event::Power(_) | Event::Energy(_) | Event::Clocks(_) | Event::Temperature(_) | Event::Throttle(_) => {
                c.sensor_records += 1;
                continue;
            }
            _ => continue,
        };
        c.kernels += 1;
        let name = |id: StrId| trace.string(id).unwrap_or("?");
        let Some(kernels) = layers.get(&k.launch.layer) else {
            return Err(format!(
                "kernel {} (iteration {}, correlation id {}) has layer {}, not a layer of the trace",
                name(k.launch.kernel),
                k.iteration,
                k.correlation_id,
                k.launch.layer.0
            ));
        };
        if !kernels.contains(&k.launch.kernel) {
            return Err(format!(
                "kernel {} (iteration {}) is not among layer {}'s kernels",
                name(k.launch.kernel),
                k.iteration,
                k.launch.layer.0
            ));
        }
        let from_graph = k.launch.graph_node != 0;
        if from_graph != (graphs && k.iteration > 0) {
            return Err(format!(
                "kernel {} of iteration {} has graph node {} ({})",
                name(k.launch.kernel),
                k.iteration,
                k.launch.graph_node,
                if graphs { "iteration 0 runs direct, later ones from the graph" } else { "no graph was launched" }
            ));
        }
    }
    if c.kernels == 0 {
        return Err(format!("{}: no kernel records", path.display()));
    }
    Ok(c)
}

/// Kernels one iteration of `plan` launches: one per step, two for a split-K GEMM.
fn planned_kernels(plan: &Plan) -> u64 {
    use crate::exec_gpu::Step;
    let sms = plan.gpu.info.sm_count;
    let per_step = |s: &Step| match s {
        Step::GemmTc { gemm, .. } if crate::launch::smallm::fc_workspace_len(DType::F16, gemm, sms).is_some() => 2,
        Step::GemmTf32 { gemm, .. } if crate::launch::smallm::fc_workspace_len(DType::F32, gemm, sms).is_some() => 2,
        _ => 1,
    };
    plan.blueprint.launches.iter().map(|l| per_step(&l.step)).sum()
}

/// One profile case: records `MODEL` into a temporary trace and checks it. The trace
/// is removed when the case passes and kept (its path in the detail) when it fails.
fn profile_case(gpu: &Gpu, graphs: bool, seed: u64) -> Result<String, String> {
    use crate::{models, rewrite, weights};
    let g = models::build(MODEL, BATCH).ok_or("squeezenet1_0 is not a built-in model")?.map_err(|e| e.to_string())?;
    let w = weights::Weights::seeded(&g, seed);
    let (g, w) = rewrite::rewrite(&g, &w, rewrite::RewriteOptions::default()).map_err(|e| e.to_string())?;
    let plan = Plan::new(gpu, &g, &w, &ExecOptions::new(DType::F16)).map_err(|e| e.to_string())?;
    drop(w);
    let expected =
        Expected { kernels_per_iteration: planned_kernels(&plan), warmup: WARMUP, iterations: ITERATIONS, graphs };
    let path = std::env::temp_dir().join(format!(
        "cnnergy-selftest-{}-{}.cnt",
        std::process::id(),
        if graphs { "graph" } else { "direct" }
    ));
    let meta = ProfileMeta {
        model: MODEL.into(),
        command_line: vec!["cnnergy".into(), "selftest".into()],
        variants: vec![("seed".into(), seed.to_string())],
    };
    let opts = ProfileOptions {
        warmup: WARMUP,
        iterations: Some(ITERATIONS),
        seconds: 0.0,
        graphs,
        cupti: true,
        nvml: true,
        dump_cupti: None,
        replay: None,
    };
    let stop = AtomicBool::new(false);
    let o = record(plan, &g, DType::F16, &meta, &opts, &path, &stop, &mut |_| {})
        .map_err(|e| format!("{e} (trace {})", path.display()))?;
    let mut problems = check_outcome(&o, &expected);
    let t = check_trace(&path, graphs);
    match &t {
        Ok(t) if t.kernels != o.kernel_records => {
            problems.push(format!("the trace holds {} kernel events, {} were recorded", t.kernels, o.kernel_records))
        }
        Ok(_) => {}
        Err(e) => problems.push(e.clone()),
    }
    if !problems.is_empty() {
        return Err(format!("{} (trace kept: {})", problems.join("; "), path.display()));
    }
    let _ = std::fs::remove_file(&path);
    let t = t.unwrap_or_default();
    Ok(format!(
        "{MODEL} b{BATCH} f16: {} kernels ({} per iteration) all mapped to {} layers, 0 dropped, {} sensor records",
        o.kernel_records, o.kernels_per_iteration, t.layers, t.sensor_records
    ))
}

/// Runs the profile cases whose name contains `filter` (all when `None`), calling
/// `on_case` as each finishes.
pub fn run_profile_checks(
    gpu: &Gpu,
    filter: Option<&str>,
    seed: u64,
    mut on_case: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    let mut v = Vec::new();
    for (name, graphs) in CASES {
        if filter.is_some_and(|f| !super::matches(name, f)) {
            continue;
        }
        let t = Instant::now();
        let r = profile_case(gpu, graphs, seed);
        let res = CaseResult {
            name: name.into(),
            passed: r.is_ok(),
            detail: r.unwrap_or_else(|e| e),
            millis: t.elapsed().as_secs_f64() * 1e3,
        };
        on_case(&res);
        v.push(res);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnnergy_traces::records::*;
    use cnnergy_traces::TraceWriter;

    fn expected(graphs: bool) -> Expected {
        Expected { kernels_per_iteration: 10, warmup: 3, iterations: 30, graphs }
    }

    /// A clean direct run of 10 kernels × 33 iterations, as counted by hand.
    fn good() -> ProfileOutcome {
        ProfileOutcome {
            warmup_iterations: 3,
            iterations: 30,
            kernels_per_iteration: 10,
            kernels_expected: 330,
            kernel_records: 330,
            launch_calls: 330,
            ..ProfileOutcome::default()
        }
    }

    #[test]
    fn a_clean_outcome_passes() {
        assert_eq!(check_outcome(&good(), &expected(false)), Vec::<String>::new());
        // A graph run: 10 direct launches, 2 + 30 graph launches (+ capture ones).
        let g = ProfileOutcome { launch_calls: 52, ..good() };
        assert_eq!(check_outcome(&g, &expected(true)), Vec::<String>::new());
    }

    #[test]
    fn each_problem_is_reported() {
        let e = expected(false);
        let cases: [(ProfileOutcome, &str); 8] = [
            (ProfileOutcome { unmapped: 2, ..good() }, "2 unmapped"),
            (ProfileOutcome { dropped: 5, ..good() }, "5 dropped"),
            (ProfileOutcome { layout_mismatches: 1, ..good() }, "1 layout mismatches"),
            (ProfileOutcome { kernel_records: 329, ..good() }, "329 kernel records, 330 launched"),
            (ProfileOutcome { kernels_per_iteration: 9, kernels_expected: 297, ..good() }, "learned 9"),
            (ProfileOutcome { iterations: 12, ..good() }, "ran 3 + 12 iterations"),
            (ProfileOutcome { launch_calls: 331, ..good() }, "331 launch calls"),
            (ProfileOutcome { warnings: vec!["CUPTI unavailable".into()], ..good() }, "warning: CUPTI unavailable"),
        ];
        for (o, want) in cases {
            let p = check_outcome(&o, &e);
            assert!(p.iter().any(|s| s.contains(want)), "{want}: {p:?}");
        }
        // CUPTI off: nothing learned, nothing recorded; "0 == 0" must not pass.
        let off = ProfileOutcome { kernels_per_iteration: 0, kernels_expected: 0, kernel_records: 0, ..good() };
        assert!(!check_outcome(&off, &e).is_empty());
    }

    struct Tmp(std::path::PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Writes a trace with layers 0 and 1 (kernels "k0", "k1") and `kernels` as
    /// (layer, kernel name, iteration, graph node); `finish` = close it properly.
    fn write_trace(tag: &str, kernels: &[(u32, &str, u32, u64)], finish: bool) -> Tmp {
        let path = std::env::temp_dir().join(format!("cnnergy-selftest-unit-{}-{tag}.cnt", std::process::id()));
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut w = TraceWriter::new(file, &Header::default()).unwrap();
        let (k0, k1, other) = (w.intern("k0").unwrap(), w.intern("k1").unwrap(), w.intern("other").unwrap());
        let name = |s: &str| match s {
            "k0" => k0,
            "k1" => k1,
            _ => other,
        };
        for (i, &(layer, kernel)) in [(0u32, k0), (1, k1)].iter().enumerate() {
            let n = w.intern(&format!("layer{i}")).unwrap();
            w.layer(&Layer { id: LayerId(layer), name: n, kernels: vec![kernel], ..Layer::default() }).unwrap();
        }
        for (i, &(layer, kernel, iteration, graph_node)) in kernels.iter().enumerate() {
            let launch =
                KernelLaunch { layer: LayerId(layer), kernel: name(kernel), graph_node, ..KernelLaunch::default() };
            let ev = KernelEvent {
                launch,
                iteration,
                start_ns: 1000 + 100 * i as u64,
                duration_ns: 50,
                correlation_id: i as u32 + 1,
            };
            w.kernel(&ev).unwrap();
        }
        w.power(&PowerSample::default()).unwrap();
        if finish {
            w.finish().unwrap();
        } else {
            w.flush().unwrap();
            std::mem::forget(w); // no summary frame: what a crashed recorder leaves
        }
        Tmp(path)
    }

    #[test]
    fn a_mapped_trace_passes() {
        let t = write_trace("ok", &[(0, "k0", 0, 0), (1, "k1", 0, 0), (0, "k0", 1, 0), (1, "k1", 1, 0)], true);
        assert_eq!(check_trace(&t.0, false), Ok(TraceCheck { layers: 2, kernels: 4, sensor_records: 1 }));
        let g = write_trace("graph", &[(0, "k0", 0, 0), (1, "k1", 0, 0), (0, "k0", 1, 77), (1, "k1", 1, 78)], true);
        assert_eq!(check_trace(&g.0, true).map(|c| c.kernels), Ok(4));
        // The same graph trace read as a direct run: graph nodes where none belong.
        assert!(check_trace(&g.0, false).unwrap_err().contains("graph node 77"));
    }

    #[test]
    fn unmapped_and_mismatched_kernels_fail() {
        let t = write_trace("unmapped", &[(0, "k0", 0, 0), (u32::MAX, "k1", 1, 0)], true);
        let e = check_trace(&t.0, false).unwrap_err();
        assert!(e.contains(&format!("layer {}", u32::MAX)) && e.contains("not a layer"), "{e}");
        let t = write_trace("wrongname", &[(0, "k1", 0, 0)], true);
        assert!(check_trace(&t.0, false).unwrap_err().contains("not among layer 0's kernels"));
        // A graph replay kernel without a node id: mapped by the wrong path.
        let t = write_trace("nonode", &[(0, "k0", 0, 0), (0, "k0", 1, 0)], true);
        assert!(check_trace(&t.0, true).unwrap_err().contains("graph node 0"));
        let t = write_trace("empty", &[], true);
        assert!(check_trace(&t.0, false).unwrap_err().contains("no kernel records"));
    }

    #[test]
    fn an_unfinished_or_missing_trace_fails() {
        let t = write_trace("unfinished", &[(0, "k0", 0, 0)], false);
        assert!(check_trace(&t.0, false).unwrap_err().contains("incomplete"));
        assert!(check_trace(Path::new("/nonexistent/x.cnt"), false).is_err());
    }

    #[test]
    fn the_recorded_h200_trace_passes() {
        // A real `cnnergy profile resnet50 --dtype f16 --batch 8` trace (direct launches).
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/resnet50-b8-f16-h200.cnt");
        let c = check_trace(&p, false).unwrap();
        assert!(c.kernels > 0 && c.layers > 50 && c.sensor_records > 0, "{c:?}");
    }
}
