//! Import arbitrary bytes as an ONNX model: every malformed file must come back as an `OnnxError`
//! (a one-line message), never a panic, an abort or an allocation sized by a field of the file.
//!
//! `cargo +nightly fuzz run onnx_import ../host/tests/fixtures/onnx/ort`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Both batch paths: the file's own batch, and an override (what `--batch` does).
    let _ = cnnergy_host::onnx::import_bytes(data, None);
    let _ = cnnergy_host::onnx::import_bytes(data, Some(3));
});
