//! `FibReader`: a worker's lock-free handle on the FIB.
//!
//! Each reader owns one grace slot (see `grace.rs`); every lookup call pins it around its table
//! loads. Readers never lock, never wait and never allocate on the lookup path. A reader is
//! `Send` but not `Sync`: two threads sharing one slot could unpin each other. Clone it instead
//! (one clone per worker; cloning registers a new slot).

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::Guard;

use super::grace::ReaderSlot;
use super::next_hop::{NextHopId, NextHopTable};
use super::{FibVersion, Shared};

/// The next-hop snapshot loaded by [`FibReader::resolve_batch`]: every id that batch returned
/// resolves in it. Hold it for one batch, not longer: it keeps that snapshot alive.
pub type NextHopSnapshot = Guard<Arc<NextHopTable>>;

/// A worker's handle on the FIB: `Clone + Send`, one per worker thread.
///
/// It is deliberately not `Sync` (two threads must not share one grace slot):
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<weft_engine::fib::FibReader>();
/// ```
///
/// ```
/// fn moved_to_a_worker<T: Send + Clone>() {}
/// moved_to_a_worker::<weft_engine::fib::FibReader>();
/// ```
#[derive(Debug)]
pub struct FibReader {
    shared: Arc<Shared>,
    slot: Arc<ReaderSlot>,
    /// `Cell` is `Send + !Sync`, which is exactly what a reader must be.
    _not_sync: PhantomData<Cell<()>>,
}

impl FibReader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let slot = shared.grace.register();
        FibReader { shared, slot, _not_sync: PhantomData }
    }

    /// Longest-prefix match for one host-order destination address. Pins and unpins around
    /// the lookup (one fence); use [`FibReader::lookup_batch`] on the packet path.
    #[inline]
    pub fn lookup(&self, dst: u32) -> Option<NextHopId> {
        self.shared.grace.pin(&self.slot);
        let hop = self.shared.tables.lookup(dst);
        self.shared.grace.unpin(&self.slot);
        hop
    }

    /// Longest-prefix match for `min(dsts.len(), out.len())` host-order addresses, with their
    /// memory loads interleaved. Each answer is the route of that address in some route set
    /// the writer had during this call (see [`crate::fib`]).
    #[inline]
    pub fn lookup_batch(&self, dsts: &[u32], out: &mut [Option<NextHopId>]) {
        self.shared.grace.pin(&self.slot);
        self.shared.tables.lookup_batch(dsts, out);
        self.shared.grace.unpin(&self.slot);
    }

    /// [`FibReader::lookup_batch`], then loads the next-hop snapshot inside the same critical
    /// section: every `Some(id)` in `out` resolves in the returned snapshot. This is what the
    /// pipeline calls, once per RX batch.
    #[inline]
    pub fn resolve_batch(&self, dsts: &[u32], out: &mut [Option<NextHopId>]) -> NextHopSnapshot {
        self.shared.grace.pin(&self.slot);
        self.shared.tables.lookup_batch(dsts, out);
        let hops = self.shared.next_hops.load();
        self.shared.grace.unpin(&self.slot);
        hops
    }

    /// The last version the writer published. `Acquire`: entries of that version (and older)
    /// are visible to lookups made after this call.
    pub fn version(&self) -> FibVersion {
        FibVersion(self.shared.version.load(Ordering::Acquire))
    }
}

impl Clone for FibReader {
    fn clone(&self) -> Self {
        FibReader::new(self.shared.clone())
    }
}

impl Drop for FibReader {
    fn drop(&mut self) {
        self.shared.grace.deregister(&self.slot);
    }
}
