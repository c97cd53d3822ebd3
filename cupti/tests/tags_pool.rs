//! TagTable, BufferPool, and "no libcupti → error, not panic".

use std::sync::Arc;

use cnnergy_cupti::*;

#[test]
fn tag_table_concurrent_insert_lookup() {
    let t = Arc::new(TagTable::new(1 << 16));
    let hs: Vec<_> = (0..4u32)
        .map(|w| {
            let t = t.clone();
            std::thread::spawn(move || {
                for c in (1 + w..40_000).step_by(4) {
                    assert!(t.insert(c, Tag { layer: c % 70, iteration: c / 70 }));
                    let g = t.get(c).unwrap();
                    assert_eq!(g, Tag { layer: c % 70, iteration: c / 70 });
                }
            })
        })
        .collect();
    let reader = {
        let t = t.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                for c in 1..40_000u32 {
                    if let Some(g) = t.get(c) {
                        assert_eq!(g, Tag { layer: c % 70, iteration: c / 70 }, "torn read for {c}");
                    }
                }
            }
        })
    };
    hs.into_iter().for_each(|h| h.join().unwrap());
    reader.join().unwrap();
    assert_eq!(t.collisions(), 0);
}

#[test]
fn tag_table_wraps_by_overwriting_oldest() {
    let t = TagTable::new(5); // rounded to 8
    assert_eq!(t.capacity(), 8);
    for c in 1..=20u32 {
        t.insert(c, Tag { layer: c, iteration: 0 });
    }
    for c in 1..=12u32 {
        assert_eq!(t.get(c), None, "{c} was evicted");
    }
    for c in 13..=20u32 {
        assert_eq!(t.get(c), Some(Tag { layer: c, iteration: 0 }));
    }
    assert!(!t.insert(0, Tag::default()));
    assert_eq!(t.get(0), None);
}

#[test]
fn tag_cell_and_graph_nodes() {
    let c = TagCell::default();
    assert_eq!(c.get(), TagCell::NONE);
    c.set(Tag { layer: 3, iteration: 9 });
    assert_eq!(c.get(), Tag { layer: 3, iteration: 9 });
    let mut g = GraphNodeLayers::new();
    g.record(42, 7);
    g.record_clone(42, 4242);
    assert_eq!(g.layer(4242), Some(7));
    assert_eq!(g.layer(0), None);
}

#[test]
fn pool_hands_out_each_buffer_once_then_exhausts() {
    let p = BufferPool::new(8, 4096).unwrap();
    let bufs: Vec<_> = (0..8).map(|_| p.take().unwrap()).collect();
    let mut ptrs: Vec<_> = bufs.iter().map(|b| b.ptr as usize).collect();
    ptrs.sort();
    ptrs.dedup();
    assert_eq!(ptrs.len(), 8);
    assert!(ptrs.iter().all(|&x| x % 8 == 0));
    assert!(p.take().is_none(), "exhausted: CUPTI gets a null buffer and drops records");
    assert_eq!(p.exhausted(), 1);
    assert_eq!(p.index_of(bufs[3].ptr), Some(bufs[3].index));
    assert_eq!(p.index_of(unsafe { bufs[3].ptr.add(1) }), None);
    assert!(p.give_back(bufs[3].index));
    assert!(!p.give_back(bufs[3].index), "double return refused");
    assert_eq!(p.take().unwrap().index, bufs[3].index);
    assert!(BufferPool::new(65, 4096).is_err() && BufferPool::new(1, 12).is_err());
}

#[test]
fn pool_is_exclusive_under_contention() {
    let p = Arc::new(BufferPool::new(4, 64).unwrap());
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    if let Some(b) = p.take() {
                        let w = b.ptr as *mut u32;
                        unsafe { w.write(i) };
                        assert_eq!(unsafe { w.read() }, i, "buffer shared between threads");
                        assert!(p.give_back(b.index));
                    }
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(p.outstanding(), 0);
}

#[test]
fn without_libcupti_constructors_return_errors() {
    if library_present() {
        println!("libcupti is loadable here: skipping the no-library test");
        return;
    }
    assert!(matches!(cupti_version(), Err(Error::LibraryMissing)));
    assert!(matches!(timestamp_ns(), Err(Error::LibraryMissing)));
    let r = ActivityCollector::new(CollectorConfig::default(), |_| {});
    assert!(matches!(r, Err(Error::LibraryMissing)));
    let r = LaunchTagger::new(Arc::new(TagCell::default()), Arc::new(TagTable::new(16)));
    assert!(matches!(r, Err(Error::LibraryMissing)));
}
