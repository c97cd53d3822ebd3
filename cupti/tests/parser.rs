//! parse_buffer on synthetic CUPTI buffers built from cudarc's own structs.

use std::mem::{size_of, zeroed};

use cnnergy_cupti::layout::*;
use cnnergy_cupti::*;
use cudarc::cupti::sys;

/// Appends `rec`'s bytes as CUPTI would (8-byte aligned, struct laid out per pack(8)).
fn push<T: Copy>(buf: &mut Vec<u8>, rec: &T) {
    // SAFETY: T is a plain-old-data CUPTI struct.
    let bytes = unsafe { std::slice::from_raw_parts(rec as *const T as *const u8, size_of::<T>()) };
    buf.extend_from_slice(bytes);
    buf.resize(buf.len().next_multiple_of(8), 0);
}

fn kernel(i: u32) -> sys::CUpti_ActivityKernel10 {
    // SAFETY: all-zero is a valid value for every field (ints, pointers, 0-valued enums).
    let mut k: sys::CUpti_ActivityKernel10 = unsafe { zeroed() };
    k.kind = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    k.registersPerThread = 40 + i as u16;
    k.start = 1_700_000_000_000_000_000 + i as u64 * 1000;
    k.end = k.start + 500 + i as u64;
    k.streamId = 7;
    k.deviceId = 0;
    k.contextId = 1;
    (k.gridX, k.gridY, k.gridZ) = (196 + i as i32, 2, 1);
    (k.blockX, k.blockY, k.blockZ) = (256, 1, 1);
    k.staticSharedMemory = 1024;
    k.dynamicSharedMemory = 49152;
    k.correlationId = 100 + i;
    k.graphNodeId = if i.is_multiple_of(2) { 0 } else { 0xABCD_0000 + i as u64 };
    k.graphId = i;
    k.name = (0x1000 + i as usize) as *const _;
    k
}

fn memcpy() -> sys::CUpti_ActivityMemcpy6 {
    let mut m: sys::CUpti_ActivityMemcpy6 = unsafe { zeroed() };
    m.kind = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY;
    m.copyKind = 1;
    m.bytes = 1 << 20;
    m.start = 10;
    m.end = 20;
    m.streamId = 3;
    m.correlationId = 55;
    m.graphNodeId = 9;
    m
}

fn memset() -> sys::CUpti_ActivityMemset4 {
    let mut m: sys::CUpti_ActivityMemset4 = unsafe { zeroed() };
    m.kind = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET;
    m.value = 0xFF;
    m.bytes = 4096;
    m.start = 30;
    m.end = 31;
    m.streamId = 4;
    m.correlationId = 56;
    m
}

fn graph() -> sys::CUpti_ActivityGraphTrace2 {
    let mut g: sys::CUpti_ActivityGraphTrace2 = unsafe { zeroed() };
    g.kind = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_GRAPH_TRACE;
    g.correlationId = 77;
    g.start = 40;
    g.end = 90;
    g.graphId = 5;
    g.streamId = 8;
    g
}

fn collect(bytes: &[u8], l: &RecordLayout) -> (Vec<Record>, ParseSummary) {
    let mut v = Vec::new();
    let s = parse_buffer(bytes, l, &mut |r| v.push(r));
    (v, s)
}

#[test]
fn cupti_13_layout_is_kernel10() {
    let l = RecordLayout::for_version(130001).unwrap();
    assert!(l.exact_sizes);
    assert_eq!(l.kernel.size, 216);
    assert_eq!(l.kernel.size % 8, 0);
    assert_eq!(RecordLayout::for_version(130200).unwrap().kernel.size, 224);
    assert!(!RecordLayout::for_version(130400).unwrap().exact_sizes);
    assert!(matches!(RecordLayout::for_version(28), Err(Error::UnsupportedVersion(28))));
    assert!(matches!(RecordLayout::for_version(140000), Err(Error::UnsupportedVersion(_))));
}

#[test]
fn every_parsed_kind_round_trips() {
    let l = RecordLayout::cupti_13_0();
    let mut buf = Vec::new();
    for i in 0..5 {
        push(&mut buf, &kernel(i));
    }
    push(&mut buf, &memcpy());
    push(&mut buf, &memset());
    push(&mut buf, &graph());
    let (recs, s) = collect(&buf, &l);
    assert_eq!(s, ParseSummary { records: 8, parsed_bytes: buf.len(), stop: None });
    for (i, r) in recs[..5].iter().enumerate() {
        let i = i as u32;
        let Record::Kernel(k) = r else { panic!("{r:?}") };
        let want = kernel(i);
        assert_eq!(k.start_ns, want.start);
        assert_eq!(k.end_ns, want.end);
        assert_eq!(k.correlation_id, 100 + i);
        assert_eq!(k.grid, [196 + i, 2, 1]);
        assert_eq!(k.block, [256, 1, 1]);
        assert_eq!(k.registers, 40 + i);
        assert_eq!((k.static_smem, k.dynamic_smem), (1024, 49152));
        assert_eq!((k.stream_id, k.context_id), (7, 1));
        assert_eq!(k.graph_node_id, want.graphNodeId);
        assert_eq!(k.graph_id, i);
        assert_eq!(k.name_addr, 0x1000 + i as usize);
    }
    assert_eq!(
        recs[5],
        Record::Memcpy(MemcpyRecord {
            start_ns: 10,
            end_ns: 20,
            bytes: 1 << 20,
            copy_kind: 1,
            correlation_id: 55,
            stream_id: 3,
            graph_node_id: 9
        })
    );
    assert_eq!(
        recs[6],
        Record::Memset(MemsetRecord {
            start_ns: 30,
            end_ns: 31,
            bytes: 4096,
            value: 0xFF,
            correlation_id: 56,
            stream_id: 4,
            graph_node_id: 0
        })
    );
    assert_eq!(
        recs[7],
        Record::GraphTrace(GraphTraceRecord {
            start_ns: 40,
            end_ns: 90,
            correlation_id: 77,
            graph_id: 5,
            stream_id: 8
        })
    );
}

#[test]
fn serial_kernel_kind_uses_the_same_struct() {
    let mut k = kernel(3);
    k.kind = sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_KERNEL;
    let mut buf = Vec::new();
    push(&mut buf, &k);
    let (recs, _) = collect(&buf, &RecordLayout::cupti_13_0());
    assert!(matches!(recs[0], Record::Kernel(r) if r.correlation_id == 103));
}

#[test]
fn empty_buffer() {
    let (recs, s) = collect(&[], &RecordLayout::cupti_13_0());
    assert!(recs.is_empty());
    assert_eq!(s, ParseSummary::default());
}

#[test]
fn unknown_kind_stops_cleanly_or_is_skipped_by_size() {
    let mut buf = Vec::new();
    push(&mut buf, &kernel(0));
    let unknown_at = buf.len();
    buf.extend_from_slice(&[99, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]); // kind 99, 16 bytes
    push(&mut buf, &kernel(1));
    let l = RecordLayout::cupti_13_0();
    let (recs, s) = collect(&buf, &l);
    assert_eq!(recs.len(), 1);
    assert_eq!(s.stop, Some(Stop::UnknownKind { offset: unknown_at, kind: 99 }));
    assert_eq!(s.parsed_bytes, unknown_at);

    let (recs, s) = collect(&buf, &l.with_skip(99, 16));
    assert_eq!(s.stop, None);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1], Record::Skipped { kind: 99 });
    assert!(matches!(recs[2], Record::Kernel(k) if k.correlation_id == 101));
}

#[test]
fn truncation_anywhere_never_panics_and_keeps_whole_records() {
    let l = RecordLayout::cupti_13_0();
    let mut buf = Vec::new();
    push(&mut buf, &kernel(0));
    push(&mut buf, &memcpy());
    push(&mut buf, &kernel(1));
    let ends = [216, 216 + 96, buf.len()];
    for cut in 0..=buf.len() {
        let (recs, s) = collect(&buf[..cut], &l);
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(recs.len(), whole, "cut {cut}");
        assert_eq!(s.parsed_bytes, ends.iter().copied().filter(|&e| e <= cut).max().unwrap_or(0));
        if !ends.contains(&cut) && cut != 0 {
            assert!(matches!(s.stop, Some(Stop::Truncated { .. })), "cut {cut}: {s:?}");
        } else {
            assert_eq!(s.stop, None, "cut {cut}");
        }
    }
}

#[test]
fn records_are_read_from_8_aligned_offsets_in_unaligned_memory() {
    // The parser copies bytes, so a buffer starting at an odd address works too.
    let mut body = Vec::new();
    push(&mut body, &kernel(2));
    push(&mut body, &kernel(4));
    let mut odd = vec![0u8; 1];
    odd.extend_from_slice(&body);
    let (recs, s) = collect(&odd[1..], &RecordLayout::cupti_13_0());
    assert_eq!(s.stop, None);
    assert_eq!(recs.len(), 2);
    assert!(matches!(recs[1], Record::Kernel(k) if k.correlation_id == 104));
}

#[test]
fn dump_files_round_trip() {
    let mut body = Vec::new();
    push(&mut body, &kernel(0));
    let mut file = dump_header(130001).to_vec();
    file.extend_from_slice(&body);
    let (v, bytes) = parse_dump(&file).unwrap();
    assert_eq!(v, 130001);
    assert_eq!(bytes, &body[..]);
    assert!(parse_dump(b"short").is_none());
}

/// Real buffers captured on the GPU machine with `CollectorConfig::dump_buffers_to`
/// and copied to `cupti/tests/fixtures/*.bin`.
#[test]
fn captured_fixtures_parse_completely() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "bin") {
            continue;
        }
        n += 1;
        let file = std::fs::read(&p).unwrap();
        let (version, bytes) = parse_dump(&file).expect("dump header");
        let l = RecordLayout::for_version(version).unwrap();
        let (recs, s) = collect(bytes, &l);
        assert_eq!(s.stop, None, "{}: {s:?}", p.display());
        for r in &recs {
            if let Record::Kernel(k) = r {
                assert!(k.end_ns >= k.start_ns && k.correlation_id != 0, "{}: {k:?}", p.display());
                assert!(k.block.iter().all(|&b| b >= 1) && k.grid.iter().all(|&g| g >= 1));
            }
        }
        println!("{}: {} records", p.display(), recs.len());
    }
    if n == 0 {
        println!("no fixtures found in {} (synthetic tests cover the parser)", dir.display());
    }
}
