//! `parse_buffer` on activity buffers CUPTI 13.0 wrote on an H200 during
//! `cnnergy profile resnet50 --dtype f16 --batch 8` (direct launches, one stream);
//! see tests/fixtures/README.md for the capture and how the files were cut.
//! The checks are properties of that run, not numbers read back from the parser.

use cnnergy_cupti::layout::{MemcpyRecord, KIND_CONCURRENT_KERNEL};
use cnnergy_cupti::*;

const BUF0: &str = "h200-r50-b8-f16-buf0.bin";
const HEAD: &str = "h200-r50-b8-f16-buf1-head.bin";
const TAIL: &str = "h200-r50-b8-f16-buf6-tail.bin";

/// 2026-01-01T00:00:00Z and 2027-01-01T00:00:00Z in Unix ns (CUPTI's timebase).
const YEAR_2026: std::ops::Range<u64> = 1_767_225_600_000_000_000..1_798_761_600_000_000_000;

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

struct Parsed {
    version: u32,
    len: usize,
    summary: ParseSummary,
    records: Vec<Record>,
}

impl Parsed {
    fn kernels(&self) -> Vec<KernelRecord> {
        self.records.iter().filter_map(|r| if let Record::Kernel(k) = r { Some(*k) } else { None }).collect()
    }
}

fn parse(name: &str) -> Parsed {
    let file = fixture(name);
    let (version, bytes) = parse_dump(&file).unwrap_or_else(|| panic!("{name}: not a CNCUPTI1 dump"));
    let layout = RecordLayout::for_version(version).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut records = Vec::new();
    let summary = parse_buffer(bytes, &layout, &mut |r| records.push(r));
    Parsed { version, len: bytes.len(), summary, records }
}

/// Every byte parsed, no unknown kind, no skipped record, and the record count the cut
/// made (README): 1 memcpy + 59 kernels, 944 kernels, 236 kernels.
#[test]
fn every_record_parses() {
    for (name, want) in [(BUF0, 60), (HEAD, 944), (TAIL, 236)] {
        let p = parse(name);
        assert_eq!(p.version, 130_001, "{name}: captured with CUPTI 13.0");
        assert!(RecordLayout::for_version(p.version).unwrap().exact_sizes);
        assert_eq!(p.summary.stop, None, "{name}");
        assert_eq!(p.summary.parsed_bytes, p.len, "{name}");
        assert_eq!(p.summary.records, want, "{name}");
        assert_eq!(p.records.len(), want, "{name}");
        assert!(
            p.records.iter().all(|r| matches!(r, Record::Kernel(_) | Record::Memcpy(_))),
            "{name}: {:?}",
            p.records
        );
    }
}

fn check_kernel(name: &str, i: usize, k: &KernelRecord) {
    let ctx = format!("{name} kernel {i}: {k:?}");
    assert!(k.start_ns < k.end_ns, "{ctx}");
    // ResNet-50 batch 8 runs in ~1.7 ms per image batch: no single kernel takes 10 ms.
    assert!(k.end_ns - k.start_ns < 10_000_000, "{ctx}");
    assert!(YEAR_2026.contains(&k.start_ns) && YEAR_2026.contains(&k.end_ns), "{ctx}");
    assert!(k.grid.iter().all(|&g| g > 0) && k.block.iter().all(|&b| b > 0), "{ctx}");
    assert!(k.block.iter().product::<u32>() <= 1024, "{ctx}");
    // sm_90: at most 255 registers per thread, 227 KiB of shared memory per block.
    assert!((1..=255).contains(&k.registers), "{ctx}");
    assert!(k.static_smem + k.dynamic_smem <= 227 * 1024, "{ctx}");
    assert_eq!((k.device_id, k.graph_node_id, k.graph_id), (0, 0, 0), "{ctx}: direct launches on device 0");
    assert_ne!(k.name_addr, 0, "{ctx}");
}

#[test]
fn kernel_fields_are_plausible() {
    for name in [BUF0, HEAD, TAIL] {
        let ks = parse(name).kernels();
        assert!(!ks.is_empty(), "{name}");
        for (i, k) in ks.iter().enumerate() {
            check_kernel(name, i, k);
        }
    }
}

/// One stream, direct launches: one correlation id per launch, strictly increasing, and
/// each kernel starts after the previous one ended — within and across the buffers, which
/// CUPTI completed in file order.
#[test]
fn one_stream_in_launch_order() {
    let all: Vec<Record> = [BUF0, HEAD, TAIL].iter().flat_map(|n| parse(n).records).collect();
    let stream = |r: &Record| match r {
        Record::Kernel(k) => k.stream_id,
        Record::Memcpy(m) => m.stream_id,
        r => panic!("unexpected {r:?}"),
    };
    let span = |r: &Record| match r {
        Record::Kernel(k) => (k.correlation_id, k.start_ns, k.end_ns),
        Record::Memcpy(m) => (m.correlation_id, m.start_ns, m.end_ns),
        r => panic!("unexpected {r:?}"),
    };
    let s0 = stream(&all[0]);
    for w in all.windows(2) {
        let ((c0, _, e0), (c1, s1, _)) = (span(&w[0]), span(&w[1]));
        assert_eq!(stream(&w[1]), s0, "{:?}", w[1]);
        assert!(c1 > c0, "correlation ids not increasing: {:?} then {:?}", w[0], w[1]);
        assert!(s1 >= e0, "overlap on one stream: {:?} then {:?}", w[0], w[1]);
    }
    // Warm-up (20 iterations) plus a 3 s measured phase: well under 10 s in all.
    let (first, last) = (span(&all[0]).1, span(&all[all.len() - 1]).2);
    assert!(last - first < 10_000_000_000, "capture spans {} ns", last - first);
}

/// Buffer 0 starts with the input upload: host→device, batch 8 × 3 × 224 × 224 f32
/// (the plan converts to f16 on the GPU), finished before the first kernel starts.
#[test]
fn input_upload_memcpy() {
    let p = parse(BUF0);
    let Record::Memcpy(m) = p.records[0] else { panic!("first record: {:?}", p.records[0]) };
    let MemcpyRecord { start_ns, end_ns, bytes, copy_kind, graph_node_id, .. } = m;
    assert_eq!(copy_kind, 1, "CUPTI_ACTIVITY_MEMCPY_KIND_HTOD");
    assert_eq!(bytes, 8 * 3 * 224 * 224 * 4);
    assert!(start_ns < end_ns && YEAR_2026.contains(&start_ns));
    assert_eq!(graph_node_id, 0);
    let first_kernel = p.kernels()[0];
    assert!(end_ns <= first_kernel.start_ns);
    assert_eq!(p.records.iter().filter(|r| matches!(r, Record::Memcpy(_))).count(), 1);
}

/// Every iteration launches the same kernels in the same order (what `profile` relies on
/// to map a CUDA graph's k-th kernel to the k-th learned entry): buffer 0 holds iteration
/// 0; the head starts at iteration 1 and the tail ends with the last iteration, so both
/// repeat buffer 0's (name, grid, block) sequence with its period.
#[test]
fn iterations_repeat_the_first() {
    let seq = parse(BUF0).kernels();
    let n = seq.len();
    let key = |k: &KernelRecord| (k.name_addr, k.grid, k.block);
    // Several distinct kernels (ResNet-50 has convolutions, pools, a GEMM, conversions).
    let distinct: std::collections::HashSet<usize> = seq.iter().map(|k| k.name_addr).collect();
    assert!(distinct.len() > 3, "{distinct:?}");
    for name in [HEAD, TAIL] {
        let ks = parse(name).kernels();
        assert_eq!(ks.len() % n, 0, "{name}: whole iterations of {n} kernels");
        for (i, k) in ks.iter().enumerate() {
            assert_eq!(key(k), key(&seq[i % n]), "{name} kernel {i} (position {} of an iteration)", i % n);
        }
    }
}

/// The parser stops cleanly on real data cut mid-record, at the last whole record.
#[test]
fn truncated_real_buffer_stops_at_a_record_boundary() {
    let file = fixture(HEAD);
    let (v, bytes) = parse_dump(&file).unwrap();
    let layout = RecordLayout::for_version(v).unwrap();
    let size = layout.kernel.size;
    let cut = &bytes[..bytes.len() - size / 2];
    let mut n = 0;
    let s = parse_buffer(cut, &layout, &mut |_| n += 1);
    assert_eq!(n, 943);
    assert_eq!(s.stop, Some(Stop::Truncated { offset: 943 * size, need: size, have: size - size / 2 }));
}

/// The checks above can fail: read with a later CUPTI's kernel size (13.2: 224 bytes),
/// the same bytes either stop early or give implausible kernels.
#[test]
fn wrong_layout_is_detected() {
    let file = fixture(HEAD);
    let (_, bytes) = parse_dump(&file).unwrap();
    let wrong = RecordLayout::for_version(130_200).unwrap();
    assert_ne!(wrong.kernel.size, RecordLayout::for_version(130_001).unwrap().kernel.size);
    let mut ks = Vec::new();
    let s = parse_buffer(bytes, &wrong, &mut |r| {
        if let Record::Kernel(k) = r {
            ks.push(k)
        }
    });
    let plausible = |k: &KernelRecord| {
        k.start_ns < k.end_ns
            && YEAR_2026.contains(&k.start_ns)
            && k.block.iter().all(|&b| b > 0)
            && k.block.iter().product::<u32>() <= 1024
            && k.name_addr != 0
    };
    assert!(s.stop.is_some() || !ks.iter().all(plausible), "{s:?}");
    // The first record is still at offset 0 and is a kernel.
    assert_eq!(u32::from_ne_bytes(bytes[..4].try_into().unwrap()), KIND_CONCURRENT_KERNEL);
}
