//! The four AF_XDP rings as single-producer/single-consumer queues shared with the kernel,
//! one type each: we produce into [`FillRing`] and [`TxRing`] and consume from [`RxRing`] and
//! [`CompletionRing`]. The types hold the invariants: a producer writes only slots the kernel
//! gave back (counted from its consumer index), a consumer reads only slots the kernel
//! published (up to its producer index) and hands them back after reading; no caller can get
//! either wrong, so every method is safe. What the slot arithmetic needs is checked once at
//! setup: the entry count is a [`RingSize`] (a power of two) and the offsets the kernel
//! reports must lie inside the mapping, aligned.
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

/// The number of entries of a ring: a power of two (so `index & (size - 1)` is always a slot
/// of the ring), validated once where the socket is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RingSize(u32);

impl RingSize {
    /// `entries` as a ring size; `None` unless it is a power of two.
    pub(crate) fn new(entries: u32) -> Option<Self> {
        entries.is_power_of_two().then_some(RingSize(entries))
    }

    /// The number of entries.
    pub(crate) fn get(self) -> u32 {
        self.0
    }
}

/// Ring element types: `u64` (fill, completion) or `xdp_desc` (rx, tx).
trait Desc: Copy {}
impl Desc for u64 {}
impl Desc for libc::xdp_desc {}

/// One mapped ring: the shared indices, the flags word and the descriptor array.
#[derive(Debug)]
struct RingMap<T: Desc> {
    /// Keeps the mapping alive: the raw pointers below point into it.
    _map: Mmap,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    size: u32,
    _t: PhantomData<T>,
}

// SAFETY: the ring is owned by one worker; the raw pointers point into `_map`,
// which moves with it. The kernel side is synchronised through the atomics.
unsafe impl<T: Desc> Send for RingMap<T> {}

impl<T: Desc> RingMap<T> {
    /// Maps the ring of `size` entries at page offset `pgoff` using the offsets the kernel
    /// reported for it. Refuses offsets that would put the indices, the flags word or the
    /// descriptor array outside the mapping or misaligned: the dereferences below rely on
    /// them.
    fn map(fd: BorrowedFd<'_>, off: &libc::xdp_ring_offset, size: RingSize, pgoff: i64) -> io::Result<Self> {
        let size = size.get();
        let desc_bytes = (size as usize).checked_mul(size_of::<T>());
        let len = desc_bytes.and_then(|b| b.checked_add(usize::try_from(off.desc).ok()?));
        let Some(len) = len else { return Err(bad_offsets("descriptor array", off.desc)) };
        let word_ok = |o: u64| {
            usize::try_from(o).is_ok_and(|o| o % align_of::<AtomicU32>() == 0 && o + size_of::<u32>() <= len)
        };
        for (what, o) in [("producer", off.producer), ("consumer", off.consumer), ("flags", off.flags)] {
            if !word_ok(o) {
                return Err(bad_offsets(what, o));
            }
        }
        if off.desc % align_of::<T>() as u64 != 0 {
            return Err(bad_offsets("descriptor array", off.desc));
        }
        // The mapping starts on a page boundary, so the checked offsets are aligned addresses.
        let map = Mmap::shared(fd, len, pgoff)?;
        let base = map.as_ptr();
        Ok(RingMap {
            producer: base.wrapping_add(off.producer as usize).cast::<AtomicU32>(),
            consumer: base.wrapping_add(off.consumer as usize).cast::<AtomicU32>(),
            flags: base.wrapping_add(off.flags as usize).cast::<AtomicU32>(),
            descs: base.wrapping_add(off.desc as usize).cast::<T>(),
            _map: map,
            mask: size - 1,
            size,
            _t: PhantomData,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into `self._map` (offset checked in `map`: inside the mapping and
        // 4-byte aligned), alive as long as `self`; AtomicU32 has the layout of u32 and the
        // kernel only accesses it atomically.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as in `producer`.
        unsafe { &*self.consumer }
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: as in `producer`.
        let flags = unsafe { &*self.flags };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    fn slot(&self, idx: u32) -> *mut T {
        // SAFETY: `size` is a power of two (`RingSize`), so `idx & mask` < size: inside the
        // descriptor array, which `map` checked lies in the mapping.
        unsafe { self.descs.add((idx & self.mask) as usize) }
    }
}

fn bad_offsets(what: &str, offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("kernel reported ring offset {offset} for the {what}: outside the ring or misaligned"),
    )
}

/// Our half of a ring we produce into.
#[derive(Debug)]
struct Producer<T: Desc> {
    ring: RingMap<T>,
    /// The producer index we own.
    local: u32,
    /// The kernel's consumer index plus `size` as last seen: we may write up to it.
    cached: u32,
}

impl<T: Desc> Producer<T> {
    fn new(ring: RingMap<T>) -> Self {
        let local = ring.producer().load(Ordering::Relaxed);
        let cached = ring.consumer().load(Ordering::Acquire).wrapping_add(ring.size);
        Producer { ring, local, cached }
    }

    /// Free slots, refreshing the kernel's consumer index only when the cached
    /// value says fewer than `want` are free.
    fn free_slots(&mut self, want: u32) -> u32 {
        let free = self.cached.wrapping_sub(self.local);
        if free >= want {
            return free;
        }
        self.cached = self.ring.consumer().load(Ordering::Acquire).wrapping_add(self.ring.size);
        self.cached.wrapping_sub(self.local)
    }

    /// Writes up to `n` descriptors made by `f(i)` into free slots and publishes them;
    /// returns how many (fewer than `n` when the ring has less room).
    fn produce(&mut self, n: u32, mut f: impl FnMut(u32) -> T) -> u32 {
        let n = n.min(self.free_slots(n));
        for i in 0..n {
            let d = f(i);
            // SAFETY: the slot is free: it lies below the kernel's consumer index plus
            // `size`, and we own it until the producer store below.
            unsafe { self.ring.slot(self.local.wrapping_add(i)).write(d) };
        }
        self.local = self.local.wrapping_add(n);
        // Release: the descriptors written above are visible before the index.
        self.ring.producer().store(self.local, Ordering::Release);
        n
    }

    /// Passes the last `n` entries we produced to `f`, oldest first (at most `size`). For a
    /// socket about to close: the caller knows from its own accounting that the kernel never
    /// took them (the kernel publishes its consumer index lazily, so the index cannot say).
    fn last(&self, n: u32, mut f: impl FnMut(T)) {
        let n = n.min(self.ring.size);
        for i in 0..n {
            // SAFETY: the slot lies in the `size` entries below our producer index, which we
            // wrote; the kernel only reads produced slots, so the value is the one we wrote.
            f(unsafe { self.ring.slot(self.local.wrapping_sub(n - i)).read() });
        }
    }

    /// Entries we produced that the kernel has not consumed yet.
    fn pending(&self) -> u32 {
        self.local.wrapping_sub(self.ring.consumer().load(Ordering::Acquire))
    }
}

/// Our half of a ring we consume from.
#[derive(Debug)]
struct Consumer<T: Desc> {
    ring: RingMap<T>,
    /// The consumer index we own.
    local: u32,
    /// The kernel's producer index as last seen: we may read up to it.
    cached: u32,
}

impl<T: Desc> Consumer<T> {
    fn new(ring: RingMap<T>) -> Self {
        let local = ring.consumer().load(Ordering::Relaxed);
        let cached = ring.producer().load(Ordering::Acquire);
        Consumer { ring, local, cached }
    }

    /// Passes up to `max` published entries to `f`, in order, then hands their slots back to
    /// the kernel; returns how many.
    fn consume(&mut self, max: u32, mut f: impl FnMut(T)) -> u32 {
        let mut n = self.cached.wrapping_sub(self.local);
        if n == 0 {
            // Acquire: pairs with the kernel's release store of the producer index.
            self.cached = self.ring.producer().load(Ordering::Acquire);
            n = self.cached.wrapping_sub(self.local);
        }
        let n = n.min(max);
        for i in 0..n {
            // SAFETY: the slot lies between our consumer index and the producer index we
            // loaded with Acquire, so the kernel finished writing it and will not reuse it
            // before the consumer store below.
            f(unsafe { self.ring.slot(self.local.wrapping_add(i)).read() });
        }
        self.local = self.local.wrapping_add(n);
        // Release: our reads above happen before the kernel may overwrite the slots.
        self.ring.consumer().store(self.local, Ordering::Release);
        n
    }
}

/// The fill ring: UMEM frame addresses we give the kernel to receive into.
#[derive(Debug)]
pub(crate) struct FillRing(Producer<u64>);

impl FillRing {
    pub(crate) fn map(fd: BorrowedFd<'_>, off: &libc::xdp_ring_offset, size: RingSize) -> io::Result<Self> {
        let pgoff = libc::XDP_UMEM_PGOFF_FILL_RING as i64;
        Ok(FillRing(Producer::new(RingMap::map(fd, off, size, pgoff)?)))
    }

    /// Free slots (at least `want` when the ring has that many).
    pub(crate) fn free_slots(&mut self, want: u32) -> u32 {
        self.0.free_slots(want)
    }

    /// Gives the kernel up to `n` frame addresses made by `addr(i)`; returns how many.
    pub(crate) fn fill(&mut self, n: u32, addr: impl FnMut(u32) -> u64) -> u32 {
        self.0.produce(n, addr)
    }

    /// Whether the kernel asked for a wakeup to process the ring.
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.0.ring.needs_wakeup()
    }

    /// The last `n` addresses given to the kernel (see `Producer::last`).
    pub(crate) fn last(&self, n: u32, f: impl FnMut(u64)) {
        self.0.last(n, f);
    }
}

/// The tx ring: descriptors of frames we send.
#[derive(Debug)]
pub(crate) struct TxRing(Producer<libc::xdp_desc>);

impl TxRing {
    pub(crate) fn map(fd: BorrowedFd<'_>, off: &libc::xdp_ring_offset, size: RingSize) -> io::Result<Self> {
        Ok(TxRing(Producer::new(RingMap::map(fd, off, size, libc::XDP_PGOFF_TX_RING)?)))
    }

    /// Queues up to `n` descriptors made by `desc(i)`; returns how many (fewer when full).
    pub(crate) fn send(&mut self, n: u32, desc: impl FnMut(u32) -> libc::xdp_desc) -> u32 {
        self.0.produce(n, desc)
    }

    /// Descriptors the kernel has not taken yet.
    pub(crate) fn pending(&self) -> u32 {
        self.0.pending()
    }

    /// The last `n` descriptors queued (see `Producer::last`).
    pub(crate) fn last(&self, n: u32, f: impl FnMut(libc::xdp_desc)) {
        self.0.last(n, f);
    }

    /// Whether the kernel asked for a wakeup to process the ring.
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.0.ring.needs_wakeup()
    }
}

/// The rx ring: descriptors of received frames.
#[derive(Debug)]
pub(crate) struct RxRing(Consumer<libc::xdp_desc>);

impl RxRing {
    pub(crate) fn map(fd: BorrowedFd<'_>, off: &libc::xdp_ring_offset, size: RingSize) -> io::Result<Self> {
        Ok(RxRing(Consumer::new(RingMap::map(fd, off, size, libc::XDP_PGOFF_RX_RING)?)))
    }

    /// Passes up to `max` received descriptors to `f`; returns how many.
    pub(crate) fn receive(&mut self, max: u32, f: impl FnMut(libc::xdp_desc)) -> u32 {
        self.0.consume(max, f)
    }
}

/// The completion ring: addresses of frames the kernel finished sending.
#[derive(Debug)]
pub(crate) struct CompletionRing(Consumer<u64>);

impl CompletionRing {
    pub(crate) fn map(fd: BorrowedFd<'_>, off: &libc::xdp_ring_offset, size: RingSize) -> io::Result<Self> {
        let pgoff = libc::XDP_UMEM_PGOFF_COMPLETION_RING as i64;
        Ok(CompletionRing(Consumer::new(RingMap::map(fd, off, size, pgoff)?)))
    }

    /// Passes every completed frame address to `f`; returns how many.
    pub(crate) fn complete(&mut self, f: impl FnMut(u64)) -> u32 {
        let size = self.0.ring.size;
        self.0.consume(size, f)
    }
}

#[cfg(test)]
mod tests {
    use super::RingSize;

    #[test]
    fn ring_sizes_are_powers_of_two_and_nothing_else() {
        assert_eq!(RingSize::new(2048).map(RingSize::get), Some(2048));
        assert_eq!(RingSize::new(1).map(RingSize::get), Some(1));
        for bad in [0, 3, 100, 2047, u32::MAX] {
            assert!(RingSize::new(bad).is_none(), "{bad}");
        }
    }
}
