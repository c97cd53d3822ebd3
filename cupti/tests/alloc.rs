//! No allocation after construction: TagTable insert/get, TagCell, BufferPool take/return.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cnnergy_cupti::*;

struct Counting;
thread_local! {
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

#[test]
fn hot_paths_do_not_allocate() {
    let table = TagTable::new(1 << 10);
    let cell = TagCell::default();
    let pool = BufferPool::new(8, 1 << 12).unwrap();
    let layout = RecordLayout::cupti_13_0();
    let buf = vec![0u8; 4096];
    let before = ALLOCS.with(Cell::get);
    let mut n = 0u64;
    for c in 1..100_000u32 {
        cell.set(Tag { layer: c % 70, iteration: c / 70 });
        table.insert(c, cell.get());
        n += table.get(c).map_or(0, |t| t.layer as u64);
        let b = pool.take().unwrap();
        pool.give_back(b.index);
    }
    // parsing (kind 0 = unknown → stops at once) allocates nothing either
    let s = parse_buffer(&buf, &layout, &mut |_| n += 1);
    assert_eq!(ALLOCS.with(Cell::get) - before, 0);
    assert!(n > 0 && s.records == 0);
}
