//! ONNX files written by `tools/make_onnx_fixtures.py` (onnx.helper graphs, no torch) with
//! outputs computed by onnxruntime's CPU provider, an engine independent of cnnergy: each is
//! imported and run through the CPU reference backend, as imported and as `cnnergy run`
//! rewrites it (BN folding, activation and residual fusion), and compared by relative L2.
//! Also the files the importer must reject, and what its error says about them.
//!
//! Regenerate: `pip install onnx onnxruntime numpy && python3 tools/make_onnx_fixtures.py`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cnnergy_host::exec_cpu;
use cnnergy_host::exec_gpu::{blueprint, emulate, ExecOptions};
use cnnergy_host::graph::Graph;
use cnnergy_host::onnx::{self, proto::ModelProto, OnnxError, SUPPORTED_OPS};
use cnnergy_host::ops::DType;
use cnnergy_host::rewrite::{self, RewriteOptions};
use cnnergy_host::weights::Weights;
use serde::Deserialize;

#[derive(Deserialize)]
struct Manifest {
    fixtures: Vec<Fixture>,
}

#[derive(Deserialize)]
struct Fixture {
    name: String,
    model: String,
    opset: i64,
    ops: Vec<String>,
    input: String,
    input_shape: Vec<usize>,
    output: String,
    output_shape: Vec<usize>,
    tolerance: f64,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

fn manifest() -> Manifest {
    let path = dir().join("ort/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Raw little-endian f32, with the element count the shape implies.
fn read_f32(path: &Path, shape: &[usize]) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let want: usize = shape.iter().product();
    assert_eq!(bytes.len(), want * 4, "{}: {} bytes for shape {shape:?}", path.display(), bytes.len());
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// |got - want|_2 / |want|_2, in f64.
fn rel_l2(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (g as f64 - w as f64).powi(2);
        den += (w as f64).powi(2);
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// The graph's output dims in ONNX rank: `[N, F]` is stored as `[N, F, 1, 1]`.
fn output_matches(g: &Graph, onnx_shape: &[usize]) -> bool {
    let d = g.tensors[g.output].dims;
    match onnx_shape {
        [n, f] => d == [*n, *f, 1, 1],
        s => d.as_slice() == s,
    }
}

fn import(f: &Fixture, batch: usize) -> (Graph, Weights) {
    onnx::import(&dir().join("ort").join(&f.model), Some(batch)).unwrap_or_else(|e| panic!("{}: {e}", f.name))
}

/// Runs `f`'s input (or its first `batch` images) as imported and as rewritten; returns
/// one line per failure.
fn check(f: &Fixture, batch: usize) -> Vec<String> {
    let n = f.input_shape[0];
    let x = read_f32(&dir().join("ort").join(&f.input), &f.input_shape);
    let y = read_f32(&dir().join("ort").join(&f.output), &f.output_shape);
    let (x, y) = (&x[..x.len() / n * batch], &y[..y.len() / n * batch]);
    let mut out_shape = f.output_shape.clone();
    out_shape[0] = batch;
    let (g, w) = import(f, batch);
    let mut fails = Vec::new();
    if !output_matches(&g, &out_shape) {
        fails.push(format!("{}: output dims {:?}, onnxruntime {out_shape:?}", f.name, g.tensors[g.output].dims));
        return fails;
    }
    let fused = rewrite::rewrite(&g, &w, RewriteOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    for (how, (g, w)) in [("imported", (g, w)), ("rewritten", fused)] {
        match exec_cpu::run(&g, &w, x) {
            Ok(got) => {
                let rel = rel_l2(&got, y);
                if rel.is_nan() || rel > f.tolerance {
                    fails.push(format!("{} ({how}, batch {batch}): relative L2 {rel:.3e} > {}", f.name, f.tolerance));
                }
            }
            Err(e) => fails.push(format!("{} ({how}): {e}", f.name)),
        }
    }
    fails
}

#[test]
fn fixtures_match_onnxruntime() {
    let m = manifest();
    assert!(m.fixtures.len() >= 9, "fixtures missing from the manifest");
    let fails: Vec<String> = m.fixtures.iter().flat_map(|f| check(f, f.input_shape[0])).collect();
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// The GPU executor's launch list for each fixture (as `cnnergy run X.onnx --device gpu`
/// builds it: imported, rewritten), run by its CPU emulator: f32 within the fixture's
/// tolerance of onnxruntime, tf32 within 5e-3, f16 within 1e-2. No GPU needed.
#[test]
fn fixtures_through_the_gpu_launch_list_match_onnxruntime() {
    // Softmax over the channels of a 4-D map has no GPU kernel (classifiers apply it to [N, C]).
    let may_lack_kernels = ["residual_inception_bn"];
    let mut fails = Vec::new();
    for f in manifest().fixtures {
        let (g, w) = import(&f, f.input_shape[0]);
        let (g, w) = rewrite::rewrite(&g, &w, RewriteOptions::default()).unwrap();
        let x = read_f32(&dir().join("ort").join(&f.input), &f.input_shape);
        let y = read_f32(&dir().join("ort").join(&f.output), &f.output_shape);
        for (opts, tol) in [
            (ExecOptions::new(DType::F32), f.tolerance),
            (ExecOptions::tf32(), 5e-3),
            (ExecOptions::new(DType::F16), 1e-2),
        ] {
            let dtype = opts.precision();
            let bp = match blueprint(&g, &w, &opts, 132) {
                Ok(bp) => bp,
                Err(e) if may_lack_kernels.contains(&f.name.as_str()) && e.to_string().contains("has no kernel") => {
                    continue
                }
                Err(e) => {
                    fails.push(format!("{} {dtype}: {e}", f.name));
                    continue;
                }
            };
            match emulate(&bp, &x) {
                Ok(got) => {
                    let rel = rel_l2(&got, &y);
                    if rel.is_nan() || rel > tol {
                        fails.push(format!("{} {dtype}: relative L2 {rel:.3e} > {tol}", f.name));
                    }
                }
                Err(e) => fails.push(format!("{} {dtype}: {e}", f.name)),
            }
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// At batch 1 the first image's output is the same: the batch override reaches every
/// layer (a Reshape target that spells the exported batch, a symbolic batch dimension).
#[test]
fn fixtures_at_batch_one_match_the_first_image() {
    let m = manifest();
    let fails: Vec<String> = m.fixtures.iter().flat_map(|f| check(f, 1)).collect();
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// Every operator the importer claims, in the files themselves (not just the manifest),
/// and opsets 13 to 17 each at least once.
#[test]
fn fixtures_cover_every_supported_op_and_opset() {
    let m = manifest();
    let mut seen_ops = BTreeSet::new();
    let mut seen_opsets = BTreeSet::new();
    for f in &m.fixtures {
        let bytes = std::fs::read(dir().join("ort").join(&f.model)).unwrap();
        let model = <ModelProto as prost::Message>::decode(&bytes[..]).unwrap();
        let ops: BTreeSet<String> = model.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect();
        assert_eq!(ops.iter().collect::<Vec<_>>(), f.ops.iter().collect::<Vec<_>>(), "{}: stale manifest", f.name);
        let opset = model.opset_import.iter().find(|o| o.domain.is_empty()).map(|o| o.version);
        assert_eq!(opset, Some(f.opset), "{}", f.name);
        seen_ops.extend(ops);
        seen_opsets.insert(f.opset);
    }
    let missing: Vec<&str> = SUPPORTED_OPS.iter().copied().filter(|op| !seen_ops.contains(*op)).collect();
    assert!(missing.is_empty(), "operators without a fixture: {missing:?}");
    for v in 13..=17 {
        assert!(seen_opsets.contains(&v), "no fixture at opset {v}");
    }
}

#[test]
fn fixtures_stay_small() {
    let mut total = 0;
    for sub in ["ort", "invalid"] {
        for e in std::fs::read_dir(dir().join(sub)).unwrap() {
            total += e.unwrap().metadata().unwrap().len();
        }
    }
    assert!(total < 300 * 1024, "ONNX fixtures take {total} bytes");
}

// ---- Files the importer rejects ---------------------------------------------------------------

fn import_err(file: &str) -> (OnnxError, String) {
    let path = dir().join("invalid").join(file);
    let e = match onnx::import(&path, None) {
        Ok(_) => panic!("{file} imported"),
        Err(e) => e,
    };
    let s = e.to_string();
    assert!(!s.contains('\n') && !s.is_empty(), "{file}: not one line: {s:?}");
    (e, s)
}

#[test]
fn unsupported_op_names_op_node_and_lists_supported() {
    let (e, s) = import_err("unsupported_op.onnx");
    assert!(matches!(e, OnnxError::UnsupportedOp { .. }), "{e:?}");
    assert!(s.starts_with("HardSwish node 'features.0.hardswish': unsupported operator"), "{s}");
    let (_, list) = s.split_once("supported: ").unwrap_or_else(|| panic!("no list: {s}"));
    let listed: Vec<&str> = list.split(", ").collect();
    assert_eq!(listed, SUPPORTED_OPS, "{s}");
}

#[test]
fn unsupported_attribute_names_op_node_and_attribute() {
    let (e, s) = import_err("unsupported_attr.onnx");
    assert!(matches!(e, OnnxError::UnsupportedAttr { .. }), "{e:?}");
    assert!(s.starts_with("Gemm node 'fc': transA=1 unsupported"), "{s}");
}

#[test]
fn truncated_and_foreign_files_are_one_line_errors() {
    for file in ["truncated.onnx", "not_onnx.onnx"] {
        let (e, s) = import_err(file);
        assert!(matches!(e, OnnxError::NotOnnx(_)), "{file}: {e:?}");
        assert!(s.starts_with("not an ONNX model: "), "{file}: {s}");
    }
}

#[test]
fn unknown_attribute_names_op_node_attribute_and_the_known_ones() {
    let (e, s) = import_err("unknown_attr.onnx");
    assert!(matches!(e, OnnxError::UnsupportedAttr { .. }), "{e:?}");
    assert_eq!(
        s,
        "Conv node 'conv': padding_mode=reflect unsupported; not a Conv attribute (known: auto_pad, dilations, group, \
         kernel_shape, pads, strides)"
    );
}

#[test]
fn dropout_in_training_mode_is_refused() {
    let (_, s) = import_err("dropout_training.onnx");
    assert_eq!(s, "Dropout node 'drop': training_mode=1 unsupported; inference only");
}

// ---- External data ------------------------------------------------------------------------------

/// A scratch folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("cnnergy-onnx-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn external_data_fixture_holds_its_weights_outside_the_model_file() {
    // The positive check above runs it; here: the .onnx really has no weight bytes.
    let bytes = std::fs::read(dir().join("ort/conv_attrs_external.onnx")).unwrap();
    let model = <ModelProto as prost::Message>::decode(&bytes[..]).unwrap();
    let inits = &model.graph.as_ref().unwrap().initializer;
    assert!(!inits.is_empty() && inits.iter().all(|t| t.data_location == 1 && t.raw_data.is_empty()));
    // From bytes, the data file cannot be found: a clear error.
    let e = onnx::import_bytes(&bytes, None).unwrap_err().to_string();
    assert!(e.contains("external data) is unsupported here; import the .onnx file by path"), "{e}");
}

#[test]
fn external_data_errors() {
    let tmp = TempDir::new("ext");
    let model = std::fs::read(dir().join("ort/conv_attrs_external.onnx")).unwrap();
    let data = std::fs::read(dir().join("ort/conv_attrs_external.onnx.data")).unwrap();
    let path = tmp.0.join("m.onnx");
    std::fs::write(&path, &model).unwrap();
    let err = |p: &Path| onnx::import(p, None).map(|_| ()).unwrap_err().to_string();
    // Missing data file.
    let e = err(&path);
    assert!(e.contains("external data file") && e.contains("conv_attrs_external.onnx.data"), "{e}");
    // A data file cut short: some tensor's offset + length runs past its end.
    std::fs::write(tmp.0.join("conv_attrs_external.onnx.data"), &data[..data.len() / 2]).unwrap();
    let e = err(&path);
    assert!(e.contains("outside its") && !e.contains('\n'), "{e}");
    // The whole file: imports.
    std::fs::write(tmp.0.join("conv_attrs_external.onnx.data"), &data).unwrap();
    onnx::import(&path, None).unwrap();
    // A location leaving the model's folder is refused before anything is read.
    let mut m = <ModelProto as prost::Message>::decode(&model[..]).unwrap();
    let t = &mut m.graph.as_mut().unwrap().initializer[0];
    let loc = t.external_data.iter_mut().find(|kv| kv.key == "location").unwrap();
    loc.value = "../conv_attrs_external.onnx.data".into();
    let name = t.name.clone();
    std::fs::write(&path, prost::Message::encode_to_vec(&m)).unwrap();
    assert_eq!(
        err(&path),
        format!(
            "tensor '{name}': external data location '../conv_attrs_external.onnx.data' must be a path inside the \
             model's folder"
        )
    );
}
