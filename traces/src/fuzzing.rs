//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay
//! test, so CI exercises exactly what the fuzzer does. They panic only when an
//! invariant of the crate is violated (that is what the fuzzer looks for).

use crate::info::inspect_bytes;
use crate::records::Event;
use crate::Trace;

/// Rewrites the preamble and frame CRCs of `data` so they match (walking frames by
/// their length fields). Random mutations almost never keep a CRC-32C valid, so
/// without this a fuzzer would rarely get past the frame layer into the decoders.
pub fn fix_checksums(data: &mut [u8]) {
    use crate::format::{FRAME_HEADER_LEN, PREAMBLE_LEN};
    if data.len() < PREAMBLE_LEN {
        return;
    }
    let crc = crc32c::crc32c(&data[..12]);
    data[12..16].copy_from_slice(&crc.to_le_bytes());
    let mut pos = PREAMBLE_LEN;
    while pos + FRAME_HEADER_LEN <= data.len() {
        let len = u32::from_le_bytes([data[pos + 5], data[pos + 6], data[pos + 7], data[pos + 8]]) as usize;
        let Some(end) = (pos + FRAME_HEADER_LEN).checked_add(len).filter(|&e| e <= data.len()) else {
            return;
        };
        let crc = crc32c::crc32c(&data[pos + 4..end]);
        data[pos..pos + 4].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
}

/// Runs [`read_one`] on `data` as given and again with its checksums fixed.
pub fn read_trace(data: &[u8]) {
    read_one(data);
    let mut fixed = data.to_vec();
    fix_checksums(&mut fixed);
    if fixed != data {
        read_one(&fixed);
    }
}

/// Parses `data`, decodes every event (also by seeking to each frame) and resolves
/// every string reference.
pub fn read_one(data: &[u8]) {
    let Ok(trace) = Trace::parse(data) else {
        return;
    };
    if let Some(d) = trace.damage() {
        let off = d.offset().expect("damage has an offset").0;
        assert!(off <= data.len() as u64, "damage offset past the end");
        assert!(off >= trace.intact_len().0, "damage inside the intact prefix");
    }
    let mut n = 0u64;
    for ev in trace.events() {
        let Ok(ev) = ev else { break };
        n += 1;
        // Every record takes at least 2 bytes, so this bounds any runaway loop.
        assert!(n <= data.len() as u64, "more records than bytes");
        let name = match ev {
            Event::Kernel(k) => trace.string(k.launch.kernel),
            Event::Power(p) => trace.string(p.sensor),
            Event::Dropped(d) => trace.string(d.source),
            _ => None,
        };
        std::hint::black_box(name);
    }
    let mut seek = 0u64;
    for i in 0..trace.frames().len() {
        seek += trace.events_from(i).take_while(Result::is_ok).count() as u64;
    }
    std::hint::black_box(seek);
    for l in trace.layers() {
        std::hint::black_box((trace.string(l.name), trace.string(l.op)));
    }
}

/// Runs [`inspect_one`] on `data` as given and again with its checksums fixed.
pub fn inspect(data: &[u8]) {
    inspect_one(data);
    let mut fixed = data.to_vec();
    fix_checksums(&mut fixed);
    if fixed != data {
        inspect_one(&fixed);
    }
}

/// Runs the `cnnergy info` library path on `data` and renders its report (or checks
/// that its error is one line).
pub fn inspect_one(data: &[u8]) {
    match inspect_bytes(data, "fuzz-input") {
        Ok(i) => {
            let text = i.to_string();
            assert!(!text.is_empty());
            if i.damage.is_some() {
                assert!(i.is_damaged());
            }
            std::hint::black_box(i.is_damaged());
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "error display must be one line: {msg}");
        }
    }
}
