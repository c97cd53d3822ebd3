//! Damaged input: truncation, corruption, unknown versions and kinds. Nothing may
//! panic or loop; every complete frame before the damage must still be read.

mod common;

use cnnergy_traces::format::{frame_bytes, preamble, put_uvarint, tag, MAGIC};
use cnnergy_traces::*;
use proptest::prelude::*;

/// Events held by the complete events frames among `frames`.
fn events_in_frames(full: &[u8], upto: u64) -> usize {
    let t = Trace::parse(full).unwrap();
    let k = t.frames().iter().take_while(|f| f.end().0 <= upto).count();
    let all = common::read_all(&t).0.len();
    let rest = if k < t.frames().len() { t.events_from(k).count() } else { 0 };
    all - rest
}

#[test]
fn truncation_at_every_offset() {
    for (target, finish) in [(64, true), (200, false), (4096, true)] {
        let (full, _) = common::small_trace(target, finish);
        let bounds = common::frame_bounds(&full);
        let header_end = bounds[1];
        for k in 0..=full.len() as u64 {
            let cut = &full[..k as usize];
            match Trace::parse(cut) {
                Err(e) => {
                    // Only when not even the header survived.
                    assert!(k < header_end, "cut {k}: {e}");
                    assert!(e.is_truncated(), "cut {k}: {e}");
                    let want = if k < 16 { 0 } else { 16 };
                    assert_eq!(e.offset(), Some(Offset(want)), "cut {k}");
                    assert!(!e.to_string().contains('\n'));
                }
                Ok(t) => {
                    assert!(k >= header_end);
                    let intact: Vec<u64> = bounds.iter().copied().filter(|&b| b <= k).collect();
                    let n_complete = intact.len() - 1;
                    assert_eq!(t.frames().len(), n_complete, "cut {k}");
                    assert_eq!(t.intact_len().0, *intact.last().unwrap());
                    match t.damage() {
                        None => assert!(bounds.contains(&k), "cut {k} inside a frame but no damage"),
                        Some(e) => {
                            assert!(!bounds.contains(&k), "cut {k} at a boundary reported {e}");
                            assert!(e.is_truncated(), "cut {k}: {e}");
                            assert_eq!(e.offset(), Some(Offset(*intact.last().unwrap())));
                            assert!(e.to_string().contains(&format!("offset {}", intact.last().unwrap())));
                        }
                    }
                    // Exactly the records of the complete frames, no error from them.
                    let (evs, err) = common::read_all(&t);
                    assert!(err.is_none(), "cut {k}: {err:?}");
                    assert_eq!(evs.len(), events_in_frames(&full, k), "cut {k}");
                    // The summary only counts when the file was not cut before it.
                    assert_eq!(t.summary().is_some(), finish && k == full.len() as u64);
                }
            }
        }
    }
}

#[test]
fn every_single_byte_flip_is_caught_at_its_frame() {
    let (full, _) = common::small_trace(96, true);
    let bounds = common::frame_bounds(&full);
    for p in 0..full.len() {
        for bit in [0x01u8, 0x80] {
            let mut d = full.clone();
            d[p] ^= bit;
            let frame_start = *bounds.iter().rev().find(|&&b| b <= p as u64).unwrap_or(&0);
            let frame_start = if p < 16 { 0 } else { frame_start };
            match Trace::parse(&d) {
                // Preamble or header frame: the whole file is refused, at that spot.
                Err(e) => assert_eq!(e.offset(), Some(Offset(frame_start)), "flip {p}: {e}"),
                Ok(t) => {
                    let e = t.damage().unwrap_or_else(|| panic!("flip at {p} undetected"));
                    assert_eq!(e.offset(), Some(Offset(frame_start)), "flip {p}: {e}");
                    assert_eq!(t.intact_len().0, frame_start);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random damage: never a panic, never an endless loop, and the intact prefix
    /// is always a prefix of the original frames.
    #[test]
    fn random_flips_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let (full, _) = common::small_trace(80, true);
        let mut d = full.clone();
        for (i, x) in &flips {
            let i = i.index(d.len());
            d[i] ^= x | 1;
        }
        if do_cut { d.truncate(cut.index(d.len() + 1)); }
        cnnergy_traces::fuzzing::read_trace(&d);
        cnnergy_traces::fuzzing::inspect(&d);
        if let Ok(t) = Trace::parse(&d) {
            let n = t.events().count();
            prop_assert!(n <= d.len());
        }
    }

    /// Arbitrary bytes behind a valid preamble (so the frame layer is exercised).
    #[test]
    fn garbage_frames_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut d = preamble(Version::CURRENT).to_vec();
        d.extend_from_slice(&frame_bytes(FrameKind::HEADER, &[]));
        d.extend_from_slice(&body);
        cnnergy_traces::fuzzing::read_trace(&d);
        cnnergy_traces::fuzzing::inspect(&d);
    }

    /// Arbitrary payloads inside frames with valid CRCs reach the record decoders.
    #[test]
    fn garbage_payloads_never_panic(
        frames in proptest::collection::vec((1u8..7, proptest::collection::vec(any::<u8>(), 0..200)), 0..6)
    ) {
        let (full, _) = common::small_trace(4096, false);
        let mut d = full[..common::frame_bounds(&full)[1] as usize].to_vec();
        for (kind, payload) in &frames {
            d.extend_from_slice(&frame_bytes(FrameKind(*kind), payload));
        }
        cnnergy_traces::fuzzing::read_trace(&d);
        cnnergy_traces::fuzzing::inspect(&d);
    }
}

#[test]
fn unsupported_major_version_is_refused_by_name() {
    let (mut d, _) = common::small_trace(4096, true);
    d[..16].copy_from_slice(&preamble(Version { major: 2, minor: 3 }));
    let e = Trace::parse(&d).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, TraceError::UnsupportedVersion { .. }));
    assert!(msg.contains("2.3") && msg.contains("1.0") && msg.contains("1.x"), "{msg}");
}

#[test]
fn newer_minor_version_with_unknown_frames_and_records_is_read() {
    let (full, evs) = common::small_trace(4096, false);
    let mut d = full.clone();
    d[..16].copy_from_slice(&preamble(Version { major: 1, minor: 7 }));
    // An unknown frame kind, then an events frame with an extension record between
    // two known ones, then a header with extra trailing fields is not needed.
    d.extend_from_slice(&frame_bytes(FrameKind(0x42), b"future stuff"));
    let mut p = Vec::new();
    put_uvarint(&mut p, 1000); // base
    p.push(tag::ENERGY);
    put_uvarint(&mut p, 0);
    put_uvarint(&mut p, 10);
    p.push(0x90); // extension record
    put_uvarint(&mut p, 3);
    p.extend_from_slice(&[1, 2, 3]);
    p.push(tag::ENERGY);
    put_uvarint(&mut p, 2); // +1 ns
    put_uvarint(&mut p, 4); // +2 mJ
    d.extend_from_slice(&frame_bytes(FrameKind::EVENTS, &p));
    let t = Trace::parse(&d).unwrap();
    assert_eq!(t.version(), Version { major: 1, minor: 7 });
    assert!(t.damage().is_none());
    assert_eq!(t.unknown_frames(), 1);
    let (got, err) = common::read_all(&t);
    assert!(err.is_none());
    assert_eq!(&got[..evs.len()], &evs[..]);
    assert_eq!(
        &got[evs.len()..],
        &[
            Event::Energy(EnergySample { t_ns: 1000, energy_mj: 5 }),
            Event::Energy(EnergySample { t_ns: 1001, energy_mj: 7 }),
        ]
    );
}

#[test]
fn preamble_errors() {
    assert!(matches!(Trace::parse(&[]), Err(TraceError::Empty)));
    assert!(matches!(Trace::parse(b"hello world, not a trace"), Err(TraceError::BadMagic { .. })));
    assert!(matches!(Trace::parse(&MAGIC[..5]), Err(TraceError::Truncated { .. })));
    let mut p = preamble(Version::CURRENT);
    p[13] ^= 1;
    assert!(matches!(Trace::parse(&p), Err(TraceError::Checksum { .. })));
    let e = Trace::parse(&preamble(Version::CURRENT)).unwrap_err();
    assert!(e.is_truncated() && e.offset() == Some(Offset(16)), "{e}");
    // First frame not a header.
    let mut d = preamble(Version::CURRENT).to_vec();
    d.extend_from_slice(&frame_bytes(FrameKind::EVENTS, &[0]));
    assert!(matches!(Trace::parse(&d), Err(TraceError::Malformed { .. })));
}

#[test]
fn frame_after_summary_is_damage() {
    let (mut d, _) = common::small_trace(4096, true);
    let end = d.len() as u64;
    d.extend_from_slice(&frame_bytes(FrameKind::EVENTS, &[0]));
    let t = Trace::parse(&d).unwrap();
    let e = t.damage().unwrap();
    assert_eq!(e.offset(), Some(Offset(end)));
    assert!(t.summary().is_some() && !t.is_complete());
}

#[test]
fn oversized_length_is_malformed_not_truncated() {
    let (full, _) = common::small_trace(4096, true);
    let b = common::frame_bounds(&full);
    let mut d = full.clone();
    let at = b[1] as usize; // second frame
    d[at + 5..at + 9].copy_from_slice(&u32::MAX.to_le_bytes());
    let t = Trace::parse(&d).unwrap();
    assert!(matches!(t.damage(), Some(TraceError::Malformed { .. })));
}

#[test]
fn malformed_record_inside_valid_frame_is_reported_with_offset() {
    let (full, _) = common::small_trace(4096, false);
    let mut d = full.clone();
    let frame_at = d.len() as u64;
    let mut p = Vec::new();
    put_uvarint(&mut p, 1000);
    p.push(tag::KERNEL); // refers to site 5, never defined
    put_uvarint(&mut p, 5);
    d.extend_from_slice(&frame_bytes(FrameKind::EVENTS, &p));
    let t = Trace::parse(&d).unwrap();
    assert!(t.damage().is_none()); // frame-level fine
    let (_, err) = common::read_all(&t);
    let err = err.unwrap();
    // payload starts 9 bytes in; base varint is 2 bytes; tag at +11.
    assert_eq!(err.offset(), Some(Offset(frame_at + 11)), "{err}");
    let i = info::inspect_bytes(&d, "x").unwrap();
    assert!(i.is_damaged());
    assert_eq!(i.intact_bytes, frame_at);
}
