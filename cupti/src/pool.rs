//! The activity-buffer pool: allocated once, handed to CUPTI in the buffer-requested
//! callback, returned after the background thread has parsed the buffer.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// `count` buffers of `size` bytes each, 8-byte aligned, in one allocation. At most 64
/// buffers: ownership is one bit per buffer in an `AtomicU64`, so [`take`](Self::take)
/// and [`give_back`](Self::give_back) are lock-free and a buffer can never be handed
/// out twice.
///
/// **Exhaustion**: when all buffers are out (the background thread is behind),
/// [`take`](Self::take) returns `None`; the collector then gives CUPTI a null buffer,
/// CUPTI drops the records it cannot store and counts them
/// (`cuptiActivityGetNumDroppedRecords`), and the collector reports them as
/// `Event::Dropped`. [`exhausted`](Self::exhausted) counts those refusals.
pub struct BufferPool {
    /// Raw allocation (not a Rust slice: CUPTI writes into it behind our back).
    mem: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
    size: usize,
    count: usize,
    /// Bit i set = buffer i is out.
    out: AtomicU64,
    exhausted: AtomicU64,
}

/// A buffer handed out by the pool: its index and start pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolBuffer {
    pub index: usize,
    pub ptr: *mut u8,
    pub size: usize,
}

// The pool hands out raw pointers into memory it owns; the bitmask makes ownership of
// each buffer exclusive, so sharing the pool between threads is sound.
unsafe impl Send for BufferPool {}
unsafe impl Sync for BufferPool {}

impl BufferPool {
    /// `size` must be a non-zero multiple of 8, `count` in 1..=64.
    pub fn new(count: usize, size: usize) -> Result<BufferPool> {
        if count == 0 || count > 64 || size == 0 || !size.is_multiple_of(8) {
            return Err(Error::Config(format!("buffer pool: count {count} (1..=64), size {size} (multiple of 8)")));
        }
        let layout = std::alloc::Layout::from_size_align(count * size, 8)
            .map_err(|e| Error::Config(format!("buffer pool layout: {e}")))?;
        // SAFETY: layout has non-zero size.
        let mem = std::ptr::NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
            .ok_or_else(|| Error::Config(format!("cannot allocate {} bytes of activity buffers", count * size)))?;
        Ok(BufferPool { mem, layout, size, count, out: AtomicU64::new(0), exhausted: AtomicU64::new(0) })
    }

    pub fn buffer_size(&self) -> usize {
        self.size
    }
    pub fn count(&self) -> usize {
        self.count
    }
    /// Buffers currently handed out.
    pub fn outstanding(&self) -> usize {
        self.out.load(Ordering::Acquire).count_ones() as usize
    }
    /// How many times `take` found no free buffer.
    pub fn exhausted(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// Hands out a free buffer, or `None` when all are out (counted). Lock-free.
    pub fn take(&self) -> Option<PoolBuffer> {
        let all = if self.count == 64 { u64::MAX } else { (1u64 << self.count) - 1 };
        let mut cur = self.out.load(Ordering::Acquire);
        loop {
            let free = !cur & all;
            if free == 0 {
                self.exhausted.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            let i = free.trailing_zeros() as usize;
            match self.out.compare_exchange_weak(cur, cur | 1 << i, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    // SAFETY: i < count, so the offset is inside `mem`; the pointer is only
                    // written through by CUPTI while bit i is set.
                    let ptr = unsafe { self.mem.as_ptr().add(i * self.size) };
                    return Some(PoolBuffer { index: i, ptr, size: self.size });
                }
                Err(now) => cur = now,
            }
        }
    }

    /// The index of the buffer starting at `ptr`, if it is one of ours.
    pub fn index_of(&self, ptr: *const u8) -> Option<usize> {
        let base = self.mem.as_ptr() as usize;
        let p = ptr as usize;
        let off = p.checked_sub(base)?;
        (off.is_multiple_of(self.size) && off / self.size < self.count).then_some(off / self.size)
    }

    /// Returns buffer `index`. Returns `false` (and changes nothing) if it was not out.
    pub fn give_back(&self, index: usize) -> bool {
        if index >= self.count {
            return false;
        }
        let prev = self.out.fetch_and(!(1u64 << index), Ordering::AcqRel);
        prev & (1 << index) != 0
    }

    /// The bytes of buffer `index`.
    ///
    /// # Safety
    /// The buffer must be out of the pool and not being written by CUPTI (i.e. CUPTI
    /// has completed it), and `valid <= buffer_size()`.
    pub unsafe fn bytes(&self, index: usize, valid: usize) -> &[u8] {
        let start = index * self.size;
        unsafe { std::slice::from_raw_parts(self.mem.as_ptr().add(start), valid.min(self.size)) }
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. The collector leaks the pool
        // instead of dropping it if CUPTI may still hold a buffer.
        unsafe { std::alloc::dealloc(self.mem.as_ptr(), self.layout) }
    }
}
