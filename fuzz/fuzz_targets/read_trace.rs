//! Parse arbitrary bytes as a trace and decode every record (also by seeking to
//! every frame). Seeds: `traces/tests/corpus/`.
//!
//! `cargo +nightly fuzz run read_trace ../traces/tests/corpus`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cnnergy_traces::fuzzing::read_trace(data);
});
