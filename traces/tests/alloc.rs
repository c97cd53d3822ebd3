//! "No allocation per record": count heap allocations made by this thread while
//! writing and reading many records once the writer / iterator exist.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cnnergy_traces::*;

struct Counting;

thread_local! {
    // const-initialised, no destructor: safe to touch from inside the allocator.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

fn kernel(i: u64) -> KernelEvent {
    KernelEvent {
        launch: KernelLaunch {
            layer: LayerId((i % 70) as u32),
            kernel: StrId((i % 110) as u32),
            grid: [(i % 110) as u32 * 8, 1, 1],
            block: [256, 1, 1],
            registers_per_thread: 128,
            dynamic_smem_bytes: 49_152,
            stream: 7,
            ..KernelLaunch::default()
        },
        iteration: (i / 110) as u32,
        start_ns: 1_000_000 + i * 20_000,
        duration_ns: 15_000 + (i * 7919) % 3000,
        correlation_id: i as u32,
    }
}

#[test]
fn steady_state_writing_and_reading_do_not_allocate() {
    // Writer into a sink: only the writer's own allocations count.
    let mut w = TraceWriter::new(std::io::sink(), &common::header()).unwrap();
    let sensor = w.intern("nvml.power_usage").unwrap();
    fn write_all<W: std::io::Write>(w: &mut TraceWriter<W>, sensor: StrId, range: std::ops::Range<u64>) {
        for i in range {
            w.kernel(&kernel(i)).unwrap();
            if i % 50 == 0 {
                w.power(&PowerSample { t_ns: 1_000_000 + i * 20_000, sensor, power_mw: 300_000 }).unwrap();
                w.marker(&Marker { t_ns: i, kind: MarkerKind::IterationEnd { iteration: i as u32 } }).unwrap();
            }
        }
    }
    write_all(&mut w, sensor, 0..20_000); // warm-up: buffers and site table reach full size
    let before = allocs();
    write_all(&mut w, sensor, 20_000..220_000); // ~30 frames
    w.flush().unwrap();
    assert_eq!(allocs() - before, 0, "writer allocated per record");
    drop(w);

    // Reader: everything is allocated when the iterator is created.
    let mut out = TraceWriter::new(Vec::new(), &common::header()).unwrap();
    write_all(&mut out, sensor, 0..200_000);
    let bytes = out.finish().unwrap();
    let trace = Trace::parse(&bytes).unwrap();
    let mut events = trace.events();
    let before = allocs();
    let mut n = 0u64;
    for e in &mut events {
        e.unwrap();
        n += 1;
    }
    assert_eq!(allocs() - before, 0, "reader allocated per record");
    assert_eq!(n, 200_000 + 2 * 4_000);
}
