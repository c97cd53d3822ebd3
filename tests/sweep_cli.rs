//! `cnnergy sweep` without a GPU: every argument is checked before the GPU is opened, and
//! each mistake is a one-line error naming what is wrong.

use std::process::{Command, Output};

fn cnnergy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnnergy"))
        .args(args)
        // An override that does not exist: the GPU cannot open here, nor on a GPU machine.
        .env("CNNERGY_LIBCUDA", "/nonexistent/libcuda.so.1")
        .output()
        .expect("the binary runs")
}

fn one_line_error(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "expected failure: {e}");
    assert!(!e.contains("panicked"), "panic: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    e
}

#[test]
fn bad_arguments_are_named_before_the_gpu_is_needed() {
    let dir = std::env::temp_dir().join(format!("cnnergy-sweep-cli-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    for (args, want) in [
        (&["resnet50", "--batch", "0"][..], "error: --batch 0: batch sizes must be at least 1"),
        (&["resnet50", "--batch", "x"], "error: --batch x: `x` is not a batch size"),
        (&["resnet50", "--batch", "1,2,x"], "error: --batch 1,2,x: `x` is not a batch size"),
        (&["resnet50", "--batch", "2,2"], "error: --batch 2,2: batch 2 is given twice"),
        (&["resnet50", "--batch", "1", "--dtype", "f64"], "error: --dtype f64: expected f32, tf32 or f16"),
        (&["resnet50", "--batch", "1", "--seconds=-1"], "error: --seconds -1: must be a positive number"),
        (&["resnet50", "--batch", "1", "--seconds", "0"], "error: --seconds 0: must be a positive number"),
        (&["resnet50", "--batch", "1", "--variants", "conv"], "error: variant override `conv`"),
        (&["no_such_model", "--batch", "1"], "error: `no_such_model` is neither a file nor a built-in model"),
    ] {
        let mut a = vec!["sweep"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", out]);
        let e = one_line_error(&cnnergy(&a));
        assert!(e.starts_with(want), "{args:?}: {e}");
    }
    assert!(!dir.exists(), "nothing is created for a rejected sweep");
}

#[test]
fn valid_arguments_reach_the_gpu() {
    let dir = std::env::temp_dir().join(format!("cnnergy-sweep-cli-ok-{}", std::process::id()));
    let o = cnnergy(&["sweep", "resnet50", "--batch", "1,2,4", "--dtype", "f32,tf32,f16", "-o", dir.to_str().unwrap()]);
    let e = one_line_error(&o);
    assert!(e.starts_with("error: libcuda (the NVIDIA driver) not found"), "{e}");
    assert!(!dir.exists(), "the folder is created only once the GPU is open");
}

#[test]
fn batch_is_required() {
    let o = cnnergy(&["sweep", "resnet50"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--batch"));
}
