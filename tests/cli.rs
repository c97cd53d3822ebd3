//! The command-line program as a user meets it on a machine without a GPU (CI): clear
//! one-line errors and non-zero exits, never a panic; offline commands work.

use std::process::{Command, Output};

fn cnnergy(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cnnergy"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_clean_error(o: &Output, starts: &str) {
    let e = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {e}");
    assert!(!e.contains("panicked") && !e.contains("RUST_BACKTRACE"), "panic: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    assert!(e.starts_with(starts), "{e}");
}

#[test]
fn gpu_commands_without_the_driver_name_the_library_and_exit_non_zero() {
    // An override that does not exist makes this hold on a GPU machine too.
    let env = [("CNNERGY_LIBCUDA", "/nonexistent/libcuda.so.1")];
    for cmd in [&["devices"][..], &["selftest"], &["bench-layers", "--models", "resnet50", "--batch", "1"]] {
        let o = cnnergy(cmd, &env);
        assert_clean_error(&o, "error: libcuda (the NVIDIA driver) not found");
        assert!(stderr(&o).contains("CNNERGY_LIBCUDA"), "{}", stderr(&o));
    }
}

#[test]
fn info_on_empty_and_foreign_files_is_a_one_line_error() {
    let dir = std::env::temp_dir().join(format!("cnnergy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.cnt");
    std::fs::write(&empty, b"").unwrap();
    assert_clean_error(&cnnergy(&["info", empty.to_str().unwrap()], &[]), "error: ");
    let foreign = dir.join("foreign.cnt");
    std::fs::write(&foreign, b"{\"traceEvents\": []}").unwrap();
    assert_clean_error(&cnnergy(&["info", foreign.to_str().unwrap()], &[]), "error: ");
    assert_clean_error(&cnnergy(&["info", dir.join("missing.cnt").to_str().unwrap()], &[]), "error: ");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn info_on_a_damaged_trace_reports_the_offset_and_fails() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/traces/tests/corpus/damaged-crc.cnt");
    let o = cnnergy(&["info", path], &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success());
    assert!(out.contains("damage") && out.contains("byte offset"), "{out}");
    assert!(out.contains("MISSING"), "an unfinished trace says so: {out}");
}

#[test]
fn models_lists_torchvision_parameter_counts() {
    let o = cnnergy(&["models"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for n in ["61100840", "138357544", "25557032", "6624904", "3504872", "1248424"] {
        assert!(out.contains(n), "{n} missing from:\n{out}");
    }
}

#[test]
fn kernels_lists_the_registry_offline() {
    let o = cnnergy(&["kernels", "--offline", "--arch", "sm_80"], &[("CNNERGY_LIBCUDA", "/nonexistent")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for k in ["axpy_f32", "conv2d_igemm_f32", "conv2d_igemm_tc_f16_nhwc", "pool_max_f32_nchw", "softmax_f32"] {
        assert!(out.contains(k), "{k} missing");
    }
}

#[test]
fn usage_errors_exit_with_clap_status_and_no_panic() {
    let o = cnnergy(&["no-such-command"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn dtype_tf32_is_accepted_and_a_bad_dtype_is_named_before_the_gpu() {
    let env = [("CNNERGY_LIBCUDA", "/nonexistent/libcuda.so.1")];
    for cmd in [&["run", "resnet50", "--device", "gpu"][..], &["profile", "resnet50"]] {
        for (dtype, want) in [
            ("tf32", "error: libcuda (the NVIDIA driver) not found"),
            ("f16", "error: libcuda (the NVIDIA driver) not found"),
            ("f64", "error: --dtype f64: expected f32, tf32 or f16"),
        ] {
            let mut a = cmd.to_vec();
            a.extend_from_slice(&["--dtype", dtype]);
            assert_clean_error(&cnnergy(&a, &env), want);
        }
    }
}

#[test]
fn replay_options_parse_and_a_bad_cache_state_lists_the_choices() {
    let env = [("CNNERGY_LIBCUDA", "/nonexistent/libcuda.so.1")];
    // Valid replay settings get as far as opening the GPU.
    for extra in [
        &["--replay-cache", "cold"][..],
        &["--replay-cache", "warm", "--replay-between", "model"],
        &["--replay-in-context"],
    ] {
        let mut a = vec!["profile", "resnet50", "--per-layer"];
        a.extend_from_slice(extra);
        assert_clean_error(&cnnergy(&a, &env), "error: libcuda (the NVIDIA driver) not found");
    }
    // A bad value is a usage error (clap status 2) naming the valid ones, before any GPU work.
    for (cmd, flag) in [(&["profile", "resnet50"][..], "--replay-cache"), (&["replay", "x.cnt"], "--cache")] {
        let mut a = cmd.to_vec();
        a.extend_from_slice(&[flag, "hot"]);
        let o = cnnergy(&a, &env);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("invalid value 'hot'") && e.contains("model") && e.contains("cold"), "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn selftest_list_needs_no_gpu_and_honours_the_filter() {
    let env = [("CNNERGY_LIBCUDA", "/nonexistent/libcuda.so.1")];
    let o = cnnergy(&["selftest", "--list"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let all: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect();
    let unique: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "case names must be unique (--filter selects by them)");
    for family in ["pool/", "batchnorm", "tensorcore/", "depthwise/", "smallm/", "profile/direct"] {
        assert!(all.iter().any(|n| n.contains(family)), "no {family} case in the list");
    }
    let o = cnnergy(&["selftest", "--list", "--filter", "pool/"], &env);
    let some: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect();
    assert!(!some.is_empty() && some.len() < all.len() && some.iter().all(|n| n.contains("pool/")));
    // `^` anchors the filter at the start: `^core/` leaves out the `tensorcore/` cases.
    let o = cnnergy(&["selftest", "--list", "--filter", "^core/"], &env);
    let core: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect();
    assert!(!core.is_empty() && core.iter().all(|n| n.starts_with("core/")), "{core:?}");
    assert!(all.iter().any(|n| n.starts_with("tensorcore/") && n.contains("core/")));
}
