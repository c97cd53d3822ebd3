//! The library side of `cnnergy info`.

mod common;

use std::io::Write;

use cnnergy_traces::info::{inspect, inspect_bytes};
use cnnergy_traces::*;

fn tmp(name: &str, data: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cnnergy-traces-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(data).unwrap();
    p
}

#[test]
fn intact_trace_report() {
    let (d, _) = common::small_trace(128, true);
    let i = inspect(&tmp("ok.cnt", &d)).unwrap();
    assert!(!i.is_damaged(), "{i}");
    let text = i.to_string();
    for want in [
        "NVIDIA H100 80GB HBM3",
        "resnet50, batch 32, f16",
        "warmup x1, measure x3",
        "2026-11-27T",
        "kernel",
        "12",
        "cupti: 3",
        "summary    present, matches the records",
        "damage     none",
        "format 1.0",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert_eq!(i.counts.kernel, 12);
    assert_eq!(i.iterations, Some([0, 3]));
    assert_eq!(i.energy_mj, Some(36));
    let json = serde_json::to_value(&i).unwrap();
    assert_eq!(json["counts"]["kernel"], 12);
    assert_eq!(json["version"], "1.0");
    assert_eq!(json["header"]["device"]["sm_count"], 132);
}

#[test]
fn damaged_trace_reports_offset() {
    let (d, _) = common::small_trace(128, true);
    let bounds = common::frame_bounds(&d);
    let cut = (bounds[3] + 5) as usize; // inside the fourth frame
    let i = inspect(&tmp("cut.cnt", &d[..cut])).unwrap();
    assert!(i.is_damaged());
    let text = i.to_string();
    assert!(text.contains(&format!("truncated at byte offset {}", bounds[3])), "{text}");
    assert!(text.contains("MISSING"), "{text}");
    assert_eq!(i.damage.as_ref().unwrap().offset, bounds[3]);
    assert_eq!(i.intact_bytes, bounds[3]);

    let mut flipped = d.clone();
    flipped[(bounds[2] + 12) as usize] ^= 0x40;
    let i = inspect_bytes(&flipped, "flip").unwrap();
    assert!(i.is_damaged());
    assert!(i.to_string().contains("CRC-32C mismatch"), "{i}");
    assert!(i.to_string().contains(&format!("offset {}", bounds[2])), "{i}");
}

#[test]
fn unfinished_trace_is_damaged_without_damage() {
    let (d, _) = common::small_trace(128, false);
    let i = inspect_bytes(&d, "unfinished").unwrap();
    assert!(i.damage.is_none());
    assert!(i.is_damaged());
    assert!(i.to_string().contains("cut short"));
}

#[test]
fn empty_file_is_a_one_line_error() {
    let e = inspect(&tmp("empty.cnt", b"")).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains('\n'));
    assert!(msg.contains("not a cnnergy trace"), "{msg}");
}

#[test]
fn non_trace_files_are_errors() {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for (name, data) in [
        ("noise.bin", &noise[..]),
        ("text.txt", b"{\"traceEvents\": []}\n".as_slice()),
        ("elf", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".as_slice()),
    ] {
        let e = inspect(&tmp(name, data)).unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains('\n'));
        assert_eq!(msg, "not a cnnergy trace: bad magic at offset 0 (0x0)");
    }
    let e = inspect(std::path::Path::new("/nonexistent/trace.cnt")).unwrap_err();
    assert!(matches!(e, TraceError::Io { .. }));
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn summary_mismatch_is_damage() {
    // A summary frame claiming different counts than the records present.
    let (d, _) = common::small_trace(4096, false);
    let mut d2 = d.clone();
    let mut p = Vec::new();
    format::put_uvarint(&mut p, 0); // no kinds
    for v in [0u64, 0, 0, 0] {
        format::put_uvarint(&mut p, v);
    }
    d2.extend_from_slice(&format::frame_bytes(FrameKind::SUMMARY, &p));
    let i = inspect_bytes(&d2, "liar").unwrap();
    assert!(i.damage.is_none() && i.summary.is_some());
    assert!(i.summary_mismatch.is_some());
    assert!(i.is_damaged());
    assert!(i.to_string().contains("inconsistent"), "{i}");
}
