//! write → read round-trips every record kind exactly (property test).

mod common;

use std::borrow::Cow;

use cnnergy_traces::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn s() -> impl Strategy<Value = Cow<'static, str>> {
    ".{0,12}".prop_map(Cow::Owned)
}

fn header() -> impl Strategy<Value = Header<'static>> {
    let device = (
        (s(), s(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>()),
        (s(), s(), any::<u32>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(|((name, uuid, cc_major, cc_minor, sm_count, memory_bytes), (dv, cv, pl, sm, mem))| Device {
            name,
            uuid,
            cc_major,
            cc_minor,
            sm_count,
            memory_bytes,
            driver_version: dv,
            cuda_version: cv,
            power_limit_mw: pl,
            sm_clock_mhz: sm,
            mem_clock_mhz: mem,
        });
    let workload = (s(), any::<u32>(), s(), vec((s(), s()), 0..3), any::<u32>(), vec((s(), any::<u32>()), 0..3))
        .prop_map(|(model, batch_size, dtype, kv, iterations, ph)| Workload {
            model,
            batch_size,
            dtype,
            kernel_variants: kv.into_iter().map(|(target, variant)| KernelVariant { target, variant }).collect(),
            iterations,
            phases: ph.into_iter().map(|(name, iterations)| Phase { name, iterations }).collect(),
        });
    let timebase = (s(), any::<u64>(), any::<i64>(), any::<u64>())
        .prop_map(|(clock, t0_ns, nvml_offset_ns, residual_ns)| Timebase { clock, t0_ns, nvml_offset_ns, residual_ns });
    (s(), vec(s(), 0..4), any::<u64>(), s(), device, workload, timebase).prop_map(
        |(tool_version, command_line, start_unix_ns, host, device, workload, timebase)| Header {
            tool_version,
            command_line,
            start_unix_ns,
            host,
            device,
            workload,
            timebase,
        },
    )
}

fn strid() -> impl Strategy<Value = StrId> {
    prop_oneof![(0u32..8).prop_map(StrId), any::<u32>().prop_map(StrId)]
}

fn layer() -> impl Strategy<Value = Layer> {
    let value = prop_oneof![
        any::<i64>().prop_map(AttrValue::Int),
        any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()).prop_map(AttrValue::Float),
        strid().prop_map(AttrValue::Str),
        vec(any::<i64>(), 0..4).prop_map(AttrValue::Ints),
    ];
    (
        any::<u32>(),
        strid(),
        strid(),
        vec(vec(any::<u64>(), 0..5), 0..3),
        vec(vec(any::<u64>(), 0..5), 0..3),
        vec((strid(), value), 0..4),
        any::<u64>(),
        any::<u64>(),
        vec(strid(), 0..4),
    )
        .prop_map(|(id, name, op, inputs, outputs, attrs, flops, bytes_moved, kernels)| Layer {
            id: LayerId(id),
            name,
            op,
            inputs,
            outputs,
            attrs: attrs.into_iter().map(|(key, value)| Attr { key, value }).collect(),
            flops,
            bytes_moved,
            kernels,
        })
}

/// Mostly small, realistic values with full-range ones mixed in, so both the
/// common short encodings and the wrapping extremes are covered.
fn u64v() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..100_000, 1 => any::<u64>()]
}

fn u32v() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0u32..1000, 1 => any::<u32>()]
}

fn launch() -> impl Strategy<Value = KernelLaunch> {
    (
        prop_oneof![(0u32..3).prop_map(LayerId), any::<u32>().prop_map(LayerId)],
        strid(),
        [u32v(), u32v(), u32v()],
        [u32v(), u32v(), u32v()],
        (u32v(), u32v(), u32v(), u32v()),
        prop_oneof![Just(0u64), any::<u64>()],
    )
        .prop_map(|(layer, kernel, grid, block, (r, ss, ds, stream), graph_node)| KernelLaunch {
            layer,
            kernel,
            grid,
            block,
            registers_per_thread: r,
            static_smem_bytes: ss,
            dynamic_smem_bytes: ds,
            stream,
            graph_node,
        })
}

fn marker_kind() -> impl Strategy<Value = MarkerKind> {
    prop_oneof![
        any::<u32>().prop_map(|iteration| MarkerKind::IterationBegin { iteration }),
        any::<u32>().prop_map(|iteration| MarkerKind::IterationEnd { iteration }),
        (strid(), any::<u32>()).prop_map(|(phase, index)| MarkerKind::PhaseBegin { phase, index }),
        (strid(), any::<u32>()).prop_map(|(phase, index)| MarkerKind::PhaseEnd { phase, index }),
        strid().prop_map(|label| MarkerKind::Label { label }),
        (5u8..=255, any::<u64>(), any::<u64>()).prop_map(|(code, a, b)| MarkerKind::Other { code, a, b }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (launch(), u32v(), u64v(), u64v(), u32v()).prop_map(|(launch, iteration, start_ns, duration_ns, correlation_id)| {
            Event::Kernel(KernelEvent { launch, iteration, start_ns, duration_ns, correlation_id })
        }),
        1 => (u64v(), strid(), any::<u32>()).prop_map(|(t_ns, sensor, power_mw)| Event::Power(PowerSample { t_ns, sensor, power_mw })),
        1 => (u64v(), u64v()).prop_map(|(t_ns, energy_mj)| Event::Energy(EnergySample { t_ns, energy_mj })),
        1 => (u64v(), any::<u32>(), any::<u32>()).prop_map(|(t_ns, sm_mhz, mem_mhz)| Event::Clocks(ClockSample { t_ns, sm_mhz, mem_mhz })),
        1 => (u64v(), strid(), any::<i32>()).prop_map(|(t_ns, sensor, temp_c)| Event::Temperature(TemperatureSample { t_ns, sensor, temp_c })),
        1 => (u64v(), any::<u64>()).prop_map(|(t_ns, reasons)| Event::Throttle(ThrottleSample { t_ns, reasons })),
        1 => (u64v(), marker_kind()).prop_map(|(t_ns, kind)| Event::Marker(Marker { t_ns, kind })),
        1 => (u64v(), strid(), any::<u64>()).prop_map(|(t_ns, source, count)| Event::Dropped(Dropped { t_ns, source, count })),
        1 => (u64v(), any::<i64>(), any::<u64>()).prop_map(|(t_ns, nvml_offset_ns, residual_ns)| Event::ClockSync(ClockSync { t_ns, nvml_offset_ns, residual_ns })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn round_trip(
        h in header(),
        strings in vec(".{0,10}", 0..12),
        layers in vec(layer(), 0..5),
        events in vec(event(), 0..150),
        frame_target in 64usize..1500,
        interleave in any::<u64>(),
    ) {
        let opts = WriterOptions { frame_target_bytes: frame_target };
        let mut w = TraceWriter::with_options(Vec::new(), &h, opts).unwrap();
        let mut table: Vec<String> = Vec::new();
        let mut expect_counts = Counts::default();
        // Interleave table definitions with events, as a live producer would.
        let (mut si, mut li) = (0, 0);
        for (i, e) in events.iter().enumerate() {
            if (interleave >> (i % 64)) & 1 == 1 {
                if let Some(s) = strings.get(si) {
                    let id = w.intern(s).unwrap();
                    if id.0 as usize == table.len() { table.push(s.clone()); }
                    prop_assert_eq!(table[id.0 as usize].as_str(), s.as_str());
                    si += 1;
                } else if let Some(l) = layers.get(li) {
                    w.layer(l).unwrap();
                    li += 1;
                }
            }
            w.event(e).unwrap();
            expect_counts.add(e.kind(), 1);
        }
        for s in &strings[si..] {
            let id = w.intern(s).unwrap();
            if id.0 as usize == table.len() { table.push(s.clone()); }
        }
        for l in &layers[li..] { w.layer(l).unwrap(); }
        prop_assert_eq!(w.counts(), &expect_counts);
        let bytes = w.finish().unwrap();

        let t = Trace::parse(&bytes).unwrap();
        prop_assert!(t.damage().is_none(), "{:?}", t.damage());
        prop_assert!(t.is_complete());
        prop_assert_eq!(t.version(), Version::CURRENT);
        prop_assert_eq!(t.header(), &h);
        let want: Vec<&str> = table.iter().map(String::as_str).collect();
        prop_assert_eq!(t.strings(), want.as_slice());
        prop_assert_eq!(t.layers(), layers.as_slice());
        let (got, err) = common::read_all(&t);
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(&got, &events);
        let s = t.summary().unwrap();
        prop_assert_eq!(s.counts, expect_counts);
        if !events.is_empty() {
            prop_assert_eq!(s.first_t_ns, events.iter().map(Event::t_ns).min().unwrap());
            prop_assert_eq!(s.last_t_ns, events.iter().map(|e| e.end_ns().max(e.t_ns())).max().unwrap());
        }
        // Seeking: decoding from any frame yields exactly the suffix of events.
        let n_frames = t.frames().len();
        let k = (interleave as usize) % n_frames;
        let suffix: Vec<Event> = t.events_from(k).map(Result::unwrap).collect();
        prop_assert_eq!(&got[got.len() - suffix.len()..], suffix.as_slice());
        // The inspection agrees and sees no damage.
        let i = info::inspect_bytes(&bytes, "prop").unwrap();
        prop_assert!(!i.is_damaged(), "{}", i);
        prop_assert_eq!(i.counts, expect_counts);
    }
}

#[test]
fn small_trace_round_trips_and_is_complete() {
    let (bytes, evs) = common::small_trace(64, true);
    let t = Trace::parse(&bytes).unwrap();
    assert!(t.is_complete());
    assert!(t.frames().iter().filter(|f| f.kind == FrameKind::EVENTS).count() > 2);
    assert_eq!(common::read_all(&t).0, evs);
    assert_eq!(t.header(), &common::header());
    assert_eq!(t.layers().len(), 3);
    assert_eq!(t.string(t.layers()[1].name), Some("layer1"));
}

#[test]
fn many_distinct_sites_span_frames() {
    // More distinct launch configurations than one frame may define.
    let mut w = TraceWriter::new(Vec::new(), &Header::default()).unwrap();
    let mut evs = Vec::new();
    for i in 0..3000u32 {
        let e = KernelEvent {
            launch: KernelLaunch { grid: [i, 1, 1], ..KernelLaunch::default() },
            iteration: 0,
            start_ns: i as u64 * 10,
            duration_ns: 5,
            correlation_id: i,
        };
        w.kernel(&e).unwrap();
        evs.push(Event::Kernel(e));
    }
    let bytes = w.finish().unwrap();
    let t = Trace::parse(&bytes).unwrap();
    assert!(t.is_complete());
    assert!(t.summary().unwrap().event_frames >= 3);
    assert_eq!(common::read_all(&t).0, evs);
}

#[test]
fn writer_is_send_across_threads() {
    let w = TraceWriter::new(Vec::new(), &common::header()).unwrap();
    let bytes = std::thread::spawn(move || {
        let mut w = w;
        w.energy(&EnergySample { t_ns: 5, energy_mj: 9 }).unwrap();
        w.finish().unwrap()
    })
    .join()
    .unwrap();
    assert!(Trace::parse(&bytes).unwrap().is_complete());
}

#[test]
fn dropping_without_finish_leaves_a_valid_unfinished_trace() {
    let mut out = Vec::new();
    {
        let mut w = TraceWriter::new(&mut out, &common::header()).unwrap();
        w.energy(&EnergySample { t_ns: 5, energy_mj: 9 }).unwrap();
    }
    let t = Trace::parse(&out).unwrap();
    assert!(t.damage().is_none());
    assert!(t.summary().is_none());
    assert!(!t.is_complete());
    assert_eq!(common::read_all(&t).0.len(), 1);
}
