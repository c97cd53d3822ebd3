//! `cnnergy run FILE.onnx` as a user meets it: files the importer rejects give a one-line
//! error and a non-zero exit, never a panic; a valid file with `--input`/`--logits-out`
//! reproduces onnxruntime's output (the fixtures of host/tests/fixtures/onnx, made by
//! tools/make_onnx_fixtures.py).

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("host/tests/fixtures/onnx")
}

fn cnnergy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnnergy")).args(args).output().expect("the binary runs")
}

/// Fails with exactly one line on stderr, starting `error: ` and containing `want`.
fn assert_one_line_error(o: &Output, want: &[&str]) {
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure: {e}");
    assert!(!e.contains("panicked") && !e.contains("RUST_BACKTRACE"), "panic: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    assert!(e.starts_with("error: "), "{e}");
    for w in want {
        assert!(e.contains(w), "missing {w:?}: {e}");
    }
}

#[test]
fn run_on_rejected_onnx_files_is_a_one_line_error() {
    let bad = |f: &str| fixtures().join("invalid").join(f).to_string_lossy().into_owned();
    let cases: [(&str, &[&str]); 4] = [
        ("truncated.onnx", &["truncated.onnx", "not an ONNX model"]),
        ("not_onnx.onnx", &["not an ONNX model"]),
        ("unsupported_op.onnx", &["HardSwish node 'features.0.hardswish': unsupported operator; supported: Add,"]),
        ("unsupported_attr.onnx", &["Gemm node 'fc': transA=1 unsupported"]),
    ];
    for (file, want) in cases {
        assert_one_line_error(&cnnergy(&["run", &bad(file), "--device", "cpu"]), want);
    }
}

#[test]
fn run_onnx_with_input_file_reproduces_onnxruntime() {
    let dir = fixtures().join("ort");
    let out = std::env::temp_dir().join(format!("cnnergy-onnx-cli-{}.f32", std::process::id()));
    // gemm_matmul: input [3, 3, 4, 4] (symbolic batch), output [3, 6].
    let o = cnnergy(&[
        "run",
        dir.join("gemm_matmul.onnx").to_str().unwrap(),
        "--device",
        "cpu",
        "--batch",
        "3",
        "--input",
        dir.join("gemm_matmul.in.f32").to_str().unwrap(),
        "--logits-out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f32s = |b: Vec<u8>| -> Vec<f64> {
        b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect()
    };
    let got = f32s(std::fs::read(&out).unwrap());
    let _ = std::fs::remove_file(&out);
    let want = f32s(std::fs::read(dir.join("gemm_matmul.out.f32")).unwrap());
    assert_eq!(got.len(), 18);
    let num: f64 = got.iter().zip(&want).map(|(g, w)| (g - w).powi(2)).sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    assert!((num / den).sqrt() <= 1e-5, "relative L2 {:.3e}", (num / den).sqrt());
    // A wrong-sized input file is a one-line error.
    assert_one_line_error(
        &cnnergy(&[
            "run",
            dir.join("gemm_matmul.onnx").to_str().unwrap(),
            "--device",
            "cpu",
            "--input",
            dir.join("gemm_matmul.in.f32").to_str().unwrap(),
        ]),
        &["--input"],
    );
}
