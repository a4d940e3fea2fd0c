//! Grace periods: when may the writer recycle memory a reader might still be reading?
//!
//! The scheme is a minimal epoch scheme (the read side of `crossbeam-epoch`, with the writer
//! doing all the waiting):
//!
//! - Every reader owns a cache-padded *slot*. Around each lookup call (one address or one
//!   batch) it *pins*: loads the global epoch (`Acquire`), stores it in its slot, and issues a
//!   `SeqCst` fence; then it does its table loads; then it *unpins* by storing [`IDLE`]
//!   (`Release`). Readers never wait and never take a lock.
//! - The writer, after unlinking something (a tbl8 group, the last route to a next hop), calls
//!   [`Grace::synchronize`]: it bumps the epoch to `target`, issues a `SeqCst` fence, and waits
//!   until every slot is `IDLE` or holds an epoch `>= target`. Then nothing can still reach
//!   the unlinked memory, and it may be reused.
//!
//! Why that is enough (for each slot the writer examines after its fence):
//! - Slot `>= target`: the reader loaded the epoch after the bump (`Acquire` pairs with the
//!   bump), so its table loads are ordered after the unlink and cannot see the old link.
//! - Slot seen `IDLE`, reader not pinned since: its earlier loads happen-before the writer's
//!   later stores (its `Release` unpin pairs with the writer's `Acquire` slot load).
//! - Slot seen `IDLE` but the reader pins concurrently: this is Dekker's pattern. The reader
//!   does *store slot; fence(SeqCst); load table*, the writer *store unlink; fence(SeqCst);
//!   load slot*. The two fences are totally ordered: if the reader's came first the writer
//!   would have seen the pin, so the writer's came first and the reader's table loads see the
//!   unlink.
//!
//! Cost on the read side: one `mfence`-class fence per pin, i.e. per batch of lookups (~0.5 ns
//! per address at batch 64). An idle reader (a parked worker) never holds anything up, unlike
//! pure QSBR. A reader descheduled *inside* a pin delays the writer; `synchronize` gives up after
//! a timeout and the writer reports it instead of hanging.
//!
//! Registration (creating or cloning a reader) and deregistration (dropping one) take a mutex
//! shared with the writer's slot scan; both are setup operations, never on the lookup path.

use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Slot value of a reader outside any lookup.
pub(crate) const IDLE: u64 = 0;

/// One reader's announcement. Padded to two cache lines so readers do not false-share.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ReaderSlot {
    pinned: AtomicU64,
}

/// The global epoch and the registry of reader slots.
#[derive(Debug)]
pub(crate) struct Grace {
    epoch: AtomicU64,
    slots: Mutex<Vec<Arc<ReaderSlot>>>,
}

/// A grace period did not end: some reader stayed pinned in an old epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stuck {
    pub(crate) waited: Duration,
    pub(crate) readers: usize,
}

impl Grace {
    pub(crate) fn new() -> Self {
        Grace { epoch: AtomicU64::new(1), slots: Mutex::new(Vec::new()) }
    }

    /// Registers a new reader slot.
    pub(crate) fn register(&self) -> Arc<ReaderSlot> {
        let slot = Arc::new(ReaderSlot::default());
        self.lock().push(slot.clone());
        slot
    }

    /// Removes a reader slot (the reader is gone).
    pub(crate) fn deregister(&self, slot: &Arc<ReaderSlot>) {
        self.lock().retain(|s| !Arc::ptr_eq(s, slot));
    }

    /// Number of registered readers.
    pub(crate) fn readers(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ReaderSlot>>> {
        // The registry holds no invariant a panic could break: keep going if poisoned.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters a read-side critical section on `slot`. Must be paired with [`Grace::unpin`];
    /// never nested on the same slot.
    #[inline(always)]
    pub(crate) fn pin(&self, slot: &ReaderSlot) {
        // Acquire pairs with the writer's SeqCst bump: a reader that sees epoch >= target also
        // sees everything the writer unlinked before the bump.
        let epoch = self.epoch.load(Ordering::Acquire);
        slot.pinned.store(epoch, Ordering::Relaxed);
        // Dekker edge with the writer's fence in `synchronize` (see module docs).
        fence(Ordering::SeqCst);
    }

    /// Leaves the read-side critical section. `Release`: all loads made while pinned happen
    /// before a writer that observes `IDLE` reuses memory.
    #[inline(always)]
    pub(crate) fn unpin(&self, slot: &ReaderSlot) {
        slot.pinned.store(IDLE, Ordering::Release);
    }

    /// Waits until no reader can still hold anything unlinked before this call. Returns
    /// `Err(Stuck)` if some reader stayed pinned in an older epoch for longer than `timeout`.
    pub(crate) fn synchronize(&self, timeout: Duration) -> Result<(), Stuck> {
        let target = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        // Dekker edge with the readers' fence in `pin` (see module docs).
        fence(Ordering::SeqCst);
        let slots = self.lock();
        let start = Instant::now();
        let mut spins = 0u32;
        for slot in slots.iter() {
            loop {
                let pinned = slot.pinned.load(Ordering::Acquire);
                if pinned == IDLE || pinned >= target {
                    break;
                }
                let waited = start.elapsed();
                if waited > timeout {
                    let readers = slots
                        .iter()
                        .filter(|s| {
                            let p = s.pinned.load(Ordering::Acquire);
                            p != IDLE && p < target
                        })
                        .count();
                    return Err(Stuck { waited, readers });
                }
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronize_returns_at_once_when_readers_are_idle() {
        let grace = Grace::new();
        let slot = grace.register();
        grace.pin(&slot);
        grace.unpin(&slot);
        assert_eq!(grace.synchronize(Duration::from_millis(10)), Ok(()));
        assert_eq!(grace.readers(), 1);
        grace.deregister(&slot);
        assert_eq!(grace.readers(), 0);
    }

    #[test]
    fn a_reader_pinned_in_an_old_epoch_holds_up_the_writer_until_the_timeout() {
        let grace = Grace::new();
        let slot = grace.register();
        grace.pin(&slot);
        let stuck = grace.synchronize(Duration::from_millis(20)).unwrap_err();
        assert_eq!(stuck.readers, 1);
        assert!(stuck.waited >= Duration::from_millis(20));
        // Pinned again, it announces the current epoch: it still holds up the *next* grace
        // period (which may unlink what it can now see), until it unpins.
        grace.unpin(&slot);
        grace.pin(&slot);
        assert_eq!(grace.synchronize(Duration::from_millis(20)).map_err(|s| s.readers), Err(1));
        grace.unpin(&slot);
        assert_eq!(grace.synchronize(Duration::from_millis(20)), Ok(()));
    }
}
