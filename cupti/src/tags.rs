//! Lock-free launch tagging: the runtime publishes the current (layer, iteration) in a
//! [`TagCell`]; the CUPTI launch callback copies it into a [`TagTable`] keyed by the
//! launch's correlation id; the activity side looks the tag up when the kernel record
//! arrives. Neither side allocates, locks or formats after construction.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// The (layer, iteration) a kernel launch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tag {
    pub layer: u32,
    pub iteration: u32,
}

impl Tag {
    fn pack(self) -> u64 {
        (self.layer as u64) << 32 | self.iteration as u64
    }
    fn unpack(v: u64) -> Tag {
        Tag { layer: (v >> 32) as u32, iteration: v as u32 }
    }
}

/// The tag the runtime sets before each launch (one `AtomicU64`: both halves change
/// together). [`Tag`] `{ layer: u32::MAX, .. }` is conventional for "no layer".
#[derive(Debug)]
pub struct TagCell(AtomicU64);

impl Default for TagCell {
    fn default() -> Self {
        TagCell::new(TagCell::NONE)
    }
}

impl TagCell {
    /// "Not inside a layer".
    pub const NONE: Tag = Tag { layer: u32::MAX, iteration: u32::MAX };

    pub const fn new(tag: Tag) -> TagCell {
        TagCell(AtomicU64::new((tag.layer as u64) << 32 | tag.iteration as u64))
    }
    /// Called by the runtime before launching a layer's kernels (same thread as the launch).
    pub fn set(&self, tag: Tag) {
        self.0.store(tag.pack(), Ordering::Release);
    }
    pub fn get(&self) -> Tag {
        Tag::unpack(self.0.load(Ordering::Acquire))
    }
}

const EMPTY: u32 = 0;
const BUSY: u32 = u32::MAX;

struct Slot {
    /// Correlation id stored here; `EMPTY` (0, which CUPTI never uses) or `BUSY` while
    /// a writer is filling the slot.
    key: AtomicU32,
    tag: AtomicU64,
}

/// Fixed-size, direct-mapped table `correlation id → Tag`, written from CUPTI's launch
/// callback and read from the activity thread.
///
/// Slot = `correlation_id & (capacity - 1)`. Correlation ids increase monotonically per
/// process, so this is a ring: **overwrite policy** — inserting id `c` evicts id
/// `c - capacity` (a lookup for the evicted id then misses, it never returns a wrong
/// tag). Size the table for the launches that can be in flight between the launch and
/// the activity buffer being parsed (e.g. 2^20 slots = 16 MiB covers ~1M launches).
///
/// Each slot is a tiny seqlock: the writer claims the slot by CAS-ing its key to `BUSY`,
/// stores the tag, then publishes the key with `Release`; a reader accepts the tag only
/// if it saw the same key before and after reading it. If two writers hit the same slot
/// at the same instant (ids exactly `capacity` apart), the loser drops its entry and
/// [`collisions`](TagTable::collisions) counts it. Correlation id 0 and `u32::MAX` are
/// not stored.
pub struct TagTable {
    slots: Box<[Slot]>,
    mask: u32,
    collisions: AtomicU64,
}

impl TagTable {
    /// `capacity` is rounded up to a power of two (minimum 2). Allocates once, here.
    pub fn new(capacity: usize) -> TagTable {
        let cap = capacity.max(2).next_power_of_two().min(1 << 31);
        let slots = (0..cap).map(|_| Slot { key: AtomicU32::new(EMPTY), tag: AtomicU64::new(0) }).collect();
        TagTable { slots, mask: (cap - 1) as u32, collisions: AtomicU64::new(0) }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Entries dropped because another writer held the slot.
    pub fn collisions(&self) -> u64 {
        self.collisions.load(Ordering::Relaxed)
    }

    /// Records `tag` for `correlation_id`. Wait-free; safe from any thread, including a
    /// CUPTI callback.
    pub fn insert(&self, correlation_id: u32, tag: Tag) -> bool {
        if correlation_id == EMPTY || correlation_id == BUSY {
            return false;
        }
        let slot = &self.slots[(correlation_id & self.mask) as usize];
        let cur = slot.key.load(Ordering::Relaxed);
        if cur == BUSY || slot.key.compare_exchange(cur, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.collisions.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        fence(Ordering::Release);
        slot.tag.store(tag.pack(), Ordering::Relaxed);
        slot.key.store(correlation_id, Ordering::Release);
        true
    }

    /// The tag recorded for `correlation_id`, if it is still in the table.
    pub fn get(&self, correlation_id: u32) -> Option<Tag> {
        if correlation_id == EMPTY || correlation_id == BUSY {
            return None;
        }
        let slot = &self.slots[(correlation_id & self.mask) as usize];
        if slot.key.load(Ordering::Acquire) != correlation_id {
            return None;
        }
        let v = slot.tag.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        (slot.key.load(Ordering::Relaxed) == correlation_id).then(|| Tag::unpack(v))
    }
}

/// CUDA-graph launches: one `cuGraphLaunch` correlation id covers every kernel of the
/// graph, so the launch tag only gives the iteration. The layer comes from the kernel
/// record's `graphNodeId`: while capturing/instantiating the graph the runtime records,
/// for every kernel node, `cuptiGetGraphNodeId(node) → layer` here; at parse time
/// `layer = GraphNodeLayers::layer(graph_node_id)` and
/// `iteration = TagTable::get(correlation_id).iteration`.
///
/// Caveat (document, validate on GPU): node ids of an *instantiated* graph
/// (`cuGraphExec`) may differ from those of the captured `cuGraph`; record the ids of
/// the nodes CUPTI reports (CUPTI's graph-node-created callback
/// `CUPTI_CBID_RESOURCE_GRAPHNODE_CREATED`/`_CLONED` gives both original and clone).
#[derive(Debug, Clone, Default)]
pub struct GraphNodeLayers {
    map: HashMap<u64, u32>,
}

impl GraphNodeLayers {
    pub fn new() -> GraphNodeLayers {
        GraphNodeLayers::default()
    }
    /// Called at capture time (not in a hot path).
    pub fn record(&mut self, graph_node_id: u64, layer: u32) {
        self.map.insert(graph_node_id, layer);
    }
    /// A cloned node (graph instantiation) inherits its original's layer.
    pub fn record_clone(&mut self, original: u64, clone: u64) {
        if let Some(&l) = self.map.get(&original) {
            self.map.insert(clone, l);
        }
    }
    /// `None` for 0 (not launched from a graph) and unknown nodes.
    pub fn layer(&self, graph_node_id: u64) -> Option<u32> {
        if graph_node_id == 0 {
            return None;
        }
        self.map.get(&graph_node_id).copied()
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
