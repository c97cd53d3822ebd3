//! `cnnergy sweep`: one profile per setting (batch size × precision), then a
//! `cnnergy.sweep/1` summary for `cnnergy tradeoff` (docs/revenue-model.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use cnnergy_host::gpu::Gpu;
use cnnergy_traces::report::tradeoff::{self, SweepEntry};

use super::profile::{self, ProfileArgs};

pub struct SweepArgs {
    pub model: String,
    pub device: usize,
    /// `--batch`, as given: comma-separated positive integers.
    pub batch: String,
    /// `--dtype`, as given: comma-separated precisions.
    pub dtype: String,
    pub variants: String,
    pub graphs: bool,
    pub seconds: f64,
    pub warmup: u32,
    pub output: Option<PathBuf>,
}

/// Parses `--batch 1,2,4`: positive integers, each once.
pub fn parse_batches(s: &str) -> Result<Vec<usize>> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim) {
        let b: usize = part
            .parse()
            .map_err(|_| anyhow::anyhow!("--batch {s}: `{part}` is not a batch size (expected e.g. 1,2,4,8)"))?;
        if b == 0 {
            anyhow::bail!("--batch {s}: batch sizes must be at least 1");
        }
        if v.contains(&b) {
            anyhow::bail!("--batch {s}: batch {b} is given twice");
        }
        v.push(b);
    }
    Ok(v)
}

/// Parses `--dtype f16` or `--dtype f32,tf32,f16` into canonical names, each once.
pub fn parse_dtypes(s: &str) -> Result<Vec<&'static str>> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim) {
        let d = profile::parse_dtype(part)?.precision();
        if v.contains(&d) {
            anyhow::bail!("--dtype {s}: {d} is given twice");
        }
        v.push(d);
    }
    Ok(v)
}

/// One setting of the sweep, in run order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub batch: usize,
    pub dtype: &'static str,
}

impl Setting {
    /// Trace file name in the sweep folder: `MODEL-bBATCH-DTYPE[-graph].cnt`.
    pub fn trace_name(&self, model: &str, graphs: bool) -> String {
        let stem = Path::new(model).file_stem().and_then(|s| s.to_str()).unwrap_or(model);
        format!("{stem}-b{}-{}{}.cnt", self.batch, self.dtype, if graphs { "-graph" } else { "" })
    }
}

/// Every setting: for each precision, the batch sizes in the order given.
pub fn settings(a: &SweepArgs) -> Result<Vec<Setting>> {
    let batches = parse_batches(&a.batch)?;
    let dtypes = parse_dtypes(&a.dtype)?;
    Ok(dtypes.iter().flat_map(|&dtype| batches.iter().map(move |&batch| Setting { batch, dtype })).collect())
}

/// The summary row of a recorded trace, its path written relative to the summary (the
/// sweep folder).
pub fn summary_entry(dir: &Path, trace_name: &str) -> Result<SweepEntry> {
    let analysis = super::report::analyse(&dir.join(trace_name), None)?;
    Ok(SweepEntry::from_analysis(trace_name, &analysis))
}

/// Writes `DIR/sweep.json`.
pub fn write_summary(dir: &Path, entries: &[SweepEntry]) -> Result<PathBuf> {
    let p = dir.join("sweep.json");
    tradeoff::write_summary(&p, entries).with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

fn profile_args(a: &SweepArgs, s: &Setting, path: &Path) -> ProfileArgs {
    ProfileArgs {
        model: a.model.clone(),
        device: a.device,
        batch: s.batch,
        dtype: s.dtype.into(),
        seed: 0,
        no_fuse: false,
        variants: a.variants.clone(),
        graphs: a.graphs,
        iters: None,
        seconds: a.seconds,
        warmup: a.warmup,
        output: Some(path.to_path_buf()),
        no_cupti: false,
        no_nvml: false,
        dump_cupti: None,
        json: None,
        top: 0,
        strict: false,
        per_layer: false,
        replay_window: 1.0,
        replay_trials: 3,
        replay_cache: "model".into(),
        replay_between: "idle".into(),
        replay_in_context: false,
    }
}

pub fn sweep(out: &mut impl Write, a: &SweepArgs) -> Result<ExitCode> {
    // Everything that needs no GPU is checked first.
    let settings = settings(a)?;
    if !a.seconds.is_finite() || a.seconds <= 0.0 {
        anyhow::bail!("--seconds {}: must be a positive number", a.seconds);
    }
    for s in &settings {
        profile::check_args(&profile_args(a, s, Path::new("")))?;
    }
    let dir = match &a.output {
        Some(d) => d.clone(),
        None => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let name = cnnergy_host::profile::default_trace_name(&a.model, 0, "f32", now);
            // MODEL-b0-f32-TIME.cnt → sweep-MODEL-TIME
            let stem = Path::new(&a.model).file_stem().and_then(|s| s.to_str()).unwrap_or(&a.model);
            let time = name.rsplit('-').next().unwrap_or("").trim_end_matches(".cnt");
            PathBuf::from(format!("sweep-{stem}-{time}"))
        }
    };
    let gpu = Gpu::open(a.device, cnnergy::ptx::module_set())?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    writeln!(
        out,
        "sweeping {} on {}: {} settings of {:.0} s each into {}",
        a.model,
        gpu.info.name,
        settings.len(),
        a.seconds,
        dir.display()
    )?;

    let stop = profile::ctrl_c_flag();
    let bar = indicatif::ProgressBar::new(settings.len() as u64 * 1000);
    // Positions count thousandths of a setting.
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg:<12} {bar:40} {percent:>3}% {elapsed}/{duration}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut entries = Vec::new();
    let mut failed = Vec::new();
    for (i, s) in settings.iter().enumerate() {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            bar.suspend(|| writeln!(out, "interrupted: {} settings not run", settings.len() - i))?;
            break;
        }
        bar.set_message(format!("b{} {}", s.batch, s.dtype));
        let name = s.trace_name(&a.model, a.graphs);
        let path = dir.join(&name);
        let pa = profile_args(a, s, &path);
        let base = i as u64 * 1000;
        let mut progress = |f: f64| bar.set_position(base + (f.clamp(0.0, 1.0) * 1000.0) as u64);
        let line = match profile::record_setting(&gpu, &pa, &path, &stop, &mut progress) {
            Err(e) => {
                failed.push(s.clone());
                format!("batch {} {}: FAILED: {e:#}", s.batch, s.dtype)
            }
            Ok(o) => {
                let mapping = if profile::mapping_ok(&pa, &o) {
                    String::new()
                } else {
                    format!(
                        "; WARNING: {} of {} kernel records, {} unmapped, {} dropped",
                        o.kernel_records, o.kernels_expected, o.unmapped, o.dropped
                    )
                };
                match summary_entry(&dir, &name) {
                    Ok(e) => {
                        let energy = if e.j_per_image.is_finite() {
                            format!(
                                "{:.2} mJ ± {:.2} per image, {:.0} W",
                                e.j_per_image * 1e3,
                                e.ci * 1e3,
                                e.avg_power_w
                            )
                        } else {
                            "no energy figures".to_owned()
                        };
                        entries.push(e);
                        write_summary(&dir, &entries)?;
                        format!(
                            "batch {} {}: {:.1} images/s, {energy}{mapping} → {}",
                            s.batch,
                            s.dtype,
                            o.images_per_s,
                            path.display()
                        )
                    }
                    Err(e) => {
                        failed.push(s.clone());
                        format!("batch {} {}: recorded but not analysable: {e:#}{mapping}", s.batch, s.dtype)
                    }
                }
            }
        };
        bar.suspend(|| writeln!(out, "{line}"))?;
        bar.set_position(base + 1000);
    }
    bar.finish_and_clear();
    if entries.is_empty() {
        writeln!(out, "no setting recorded; no summary written")?;
        return Ok(ExitCode::FAILURE);
    }
    let p = write_summary(&dir, &entries)?;
    writeln!(
        out,
        "{} of {} settings recorded; summary: {} (`cnnergy tradeoff {}`)",
        entries.len(),
        settings.len(),
        p.display(),
        p.display()
    )?;
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|s| format!("b{} {}", s.batch, s.dtype)).collect();
        writeln!(out, "failed: {}", list.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_parse_and_bad_ones_are_named() {
        assert_eq!(parse_batches("1,2,4, 8").unwrap(), vec![1, 2, 4, 8]);
        assert_eq!(parse_batches("16").unwrap(), vec![16]);
        let e = |s: &str| parse_batches(s).unwrap_err().to_string();
        assert_eq!(e("0"), "--batch 0: batch sizes must be at least 1");
        assert!(e("1,x").contains("`x` is not a batch size"), "{}", e("1,x"));
        assert!(e("1,,2").contains("`` is not a batch size"));
        assert!(e("-1").contains("`-1` is not a batch size"));
        assert!(e("4,2,4").contains("batch 4 is given twice"));
    }

    #[test]
    fn dtypes_parse() {
        assert_eq!(parse_dtypes("f16").unwrap(), vec!["f16"]);
        assert_eq!(parse_dtypes("fp32,f16").unwrap(), vec!["f32", "f16"]);
        assert_eq!(parse_dtypes("tf32,fp32").unwrap(), vec!["tf32", "f32"]);
        assert!(parse_dtypes("f64").unwrap_err().to_string().contains("expected f32, tf32 or f16"));
        assert!(parse_dtypes("tf32,tf32").unwrap_err().to_string().contains("tf32 is given twice"));
        assert!(parse_dtypes("f16,fp16").unwrap_err().to_string().contains("f16 is given twice"));
    }

    fn args(batch: &str, dtype: &str) -> SweepArgs {
        SweepArgs {
            model: "resnet50".into(),
            device: 0,
            batch: batch.into(),
            dtype: dtype.into(),
            variants: String::new(),
            graphs: false,
            seconds: 6.0,
            warmup: 20,
            output: None,
        }
    }

    #[test]
    fn settings_are_precision_major_in_the_order_given() {
        let s = settings(&args("8,1", "f32,f16")).unwrap();
        let got: Vec<(usize, &str)> = s.iter().map(|s| (s.batch, s.dtype)).collect();
        assert_eq!(got, vec![(8, "f32"), (1, "f32"), (8, "f16"), (1, "f16")]);
        assert_eq!(s[0].trace_name("resnet50", false), "resnet50-b8-f32.cnt");
        assert_eq!(s[3].trace_name("/models/net.onnx", true), "net-b1-f16-graph.cnt");
    }

    /// The summary of a real recorded trace, written and read back: the row names the
    /// trace relative to the folder and carries the trace header's workload.
    #[test]
    fn summary_of_a_recorded_trace() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let name = "resnet50-b8-f16-h200.cnt";
        let dir = std::env::temp_dir().join(format!("cnnergy-sweep-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(fixtures.join(name), dir.join(name)).unwrap();
        let e = summary_entry(&dir, name).unwrap();
        let p = write_summary(&dir, std::slice::from_ref(&e)).unwrap();
        let back = tradeoff::read_summary(&p).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.schema, "cnnergy.sweep/1");
        assert_eq!(back.settings.len(), 1);
        let r = &back.settings[0];
        // From the trace's name and `cnnergy info` of it: resnet50, batch 8, f16, H200.
        assert_eq!((r.trace.as_str(), r.batch, r.dtype.as_str()), (name, 8, "f16"));
        assert!(r.device.contains("H200"), "{}", r.device);
        assert!(r.j_per_image.is_finite() && r.j_per_image > 0.0 && r.latency_ms > 0.0);
        // images/s and latency describe the same runs: batch × 1000 / latency_ms.
        assert!((r.images_per_s - 8.0 * 1000.0 / r.latency_ms).abs() / r.images_per_s < 1e-6, "{r:?}");
        assert_eq!(r, &e);
    }

    #[test]
    fn a_missing_trace_is_an_error_naming_it() {
        let e = summary_entry(Path::new("/nonexistent"), "x.cnt").unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/x.cnt"), "{e:#}");
    }
}
