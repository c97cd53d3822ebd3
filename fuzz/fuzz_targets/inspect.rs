//! Run the `cnnergy info` library path on arbitrary bytes and render the report.
//!
//! `cargo +nightly fuzz run inspect ../traces/tests/corpus`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cnnergy_traces::fuzzing::inspect(data);
});
