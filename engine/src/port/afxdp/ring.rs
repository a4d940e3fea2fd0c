//! The four AF_XDP rings as single-producer/single-consumer queues shared with
//! the kernel. We produce into fill and tx, consume from rx and completion.
//!
//! Synchronisation edges (same as libxdp's `xsk.h`):
//! - producer side: write descriptors, then `producer.store(Release)` — the
//!   kernel's acquire load of `producer` sees the descriptors;
//! - consumer side: `producer.load(Acquire)` before reading descriptors (pairs
//!   with the kernel's release store), and `consumer.store(Release)` after
//!   reading them, so the kernel reuses a slot only after we are done with it;
//! - the `flags` word (need_wakeup) is read Relaxed, as libxdp does; a missed
//!   wakeup is retried on the next loop.

use std::io;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sys::Mmap;

/// Ring element types: `u64` (fill, completion) or `xdp_desc` (rx, tx).
pub(crate) trait Desc: Copy {}
impl Desc for u64 {}
impl Desc for libc::xdp_desc {}

/// One mapped ring; fill and tx use the producer half of the API, rx and
/// completion the consumer half.
#[derive(Debug)]
pub(crate) struct Ring<T: Desc> {
    /// Keeps the mapping alive: the raw pointers below point into it.
    _map: Mmap,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    size: u32,
    /// Our copy of the index we own (producer for fill/tx, consumer for rx/completion).
    local: u32,
    /// Last seen value of the index the kernel owns (plus `size` for producer rings).
    cached: u32,
    _t: PhantomData<T>,
}

// SAFETY: the ring is owned by one worker; the raw pointers point into `map`,
// which moves with it. The kernel side is synchronised through the atomics.
unsafe impl<T: Desc> Send for Ring<T> {}

impl<T: Desc> Ring<T> {
    /// Maps the ring of `size` entries at page offset `pgoff` using the offsets
    /// the kernel reported for it. `size` must be a power of two (checked by the caller).
    pub(crate) fn map(
        fd: BorrowedFd<'_>,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: i64,
        producer_ring: bool,
    ) -> io::Result<Self> {
        let len = off.desc as usize + size as usize * size_of::<T>();
        let map = Mmap::shared(fd, len, pgoff)?;
        let base = map.as_ptr();
        // The kernel reported these offsets inside the mapping of `len` bytes;
        // producer/consumer/flags are 4-byte aligned u32 fields and the descriptor
        // array is aligned for `T` (kernel ring layout). Dereferences below rely on it.
        let producer = base.wrapping_add(off.producer as usize).cast::<AtomicU32>();
        let consumer = base.wrapping_add(off.consumer as usize).cast::<AtomicU32>();
        let flags = base.wrapping_add(off.flags as usize).cast::<AtomicU32>();
        let descs = base.wrapping_add(off.desc as usize).cast::<T>();
        let mut ring = Ring {
            _map: map,
            producer,
            consumer,
            flags,
            descs,
            mask: size - 1,
            size,
            local: 0,
            cached: 0,
            _t: PhantomData,
        };
        if producer_ring {
            ring.local = ring.producer().load(Ordering::Relaxed);
            ring.cached = ring.consumer().load(Ordering::Acquire).wrapping_add(size);
        } else {
            ring.local = ring.consumer().load(Ordering::Relaxed);
            ring.cached = ring.producer().load(Ordering::Acquire);
        }
        Ok(ring)
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into `self._map`, alive as long as `self`; AtomicU32 has the
        // layout of u32 and the kernel only accesses it atomically.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as in `producer`.
        unsafe { &*self.consumer }
    }

    /// Whether the kernel asked for a wakeup syscall on this ring.
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SAFETY: as in `producer`.
        let flags = unsafe { &*self.flags };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Ring size in entries.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    fn slot(&self, idx: u32) -> *mut T {
        // SAFETY: `idx & mask` < size, inside the descriptor array of the mapping.
        unsafe { self.descs.add((idx & self.mask) as usize) }
    }

    // ---- producer rings (fill, tx) ----

    /// Free slots, refreshing the kernel's consumer index only when the cached
    /// value says fewer than `want` are free.
    pub(crate) fn free_slots(&mut self, want: u32) -> u32 {
        let free = self.cached.wrapping_sub(self.local);
        if free >= want {
            return free;
        }
        self.cached = self.consumer().load(Ordering::Acquire).wrapping_add(self.size);
        self.cached.wrapping_sub(self.local)
    }

    /// Writes `n` descriptors produced by `f(i)` and publishes them. The caller
    /// checked `n <= free_slots(n)`.
    pub(crate) fn produce(&mut self, n: u32, mut f: impl FnMut(u32) -> T) {
        for i in 0..n {
            let d = f(i);
            // SAFETY: the slot is free (we own it until the producer store below).
            unsafe { self.slot(self.local.wrapping_add(i)).write(d) };
        }
        self.local = self.local.wrapping_add(n);
        // Release: the descriptors written above are visible before the index.
        self.producer().store(self.local, Ordering::Release);
    }

    /// Entries we produced that the kernel has not consumed yet.
    pub(crate) fn pending(&self) -> u32 {
        self.local.wrapping_sub(self.consumer().load(Ordering::Acquire))
    }

    // ---- consumer rings (rx, completion) ----

    /// Number of filled entries available, at most `max`.
    pub(crate) fn available(&mut self, max: u32) -> u32 {
        let mut n = self.cached.wrapping_sub(self.local);
        if n == 0 {
            // Acquire: pairs with the kernel's release store of the producer index.
            self.cached = self.producer().load(Ordering::Acquire);
            n = self.cached.wrapping_sub(self.local);
        }
        n.min(max)
    }

    /// Reads the `i`-th available entry (`i < available()`).
    pub(crate) fn read(&self, i: u32) -> T {
        // SAFETY: the slot lies between our consumer index and the producer index we
        // loaded with Acquire, so the kernel finished writing it and will not reuse it
        // before our `release`.
        unsafe { self.slot(self.local.wrapping_add(i)).read() }
    }

    /// Hands `n` read entries back to the kernel.
    pub(crate) fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        // Release: our reads above happen before the kernel may overwrite the slots.
        self.consumer().store(self.local, Ordering::Release);
    }
}
