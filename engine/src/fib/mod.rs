//! The FIB: IPv4 longest-prefix match from destination to [`NextHopId`], with one writer (the
//! control thread) and lock-free readers (the workers).
//!
//! # Structure
//! - [`prefix`]: validated [`Ipv4Prefix`].
//! - `dir24_8`: the lookup tables, DPDK's DIR-24-8. One `AtomicU32` per /24 (64 MiB), plus a
//!   pool of 256-entry tbl8 groups for /24s that hold longer routes. A lookup is one load, or
//!   two for addresses under a route longer than /24.
//! - [`writer`]: [`FibWriter`] keeps the authoritative route set and derives the entries from
//!   it; removing a route restores its covering shorter route.
//! - [`reader`]: [`FibReader`], one per worker, `Clone + Send`, never blocks.
//! - `grace`: when a collapsed tbl8 group or a removed next hop may be recycled.
//! - [`next_hop`]: [`NextHop`]s in immutable snapshots published with `arc-swap`.
//! - [`reference`](mod@reference): the naive model the tests compare against; [`sample`]: seeded route
//!   generators shared by the tests and the benchmark.
//!
//! # Consistency contract
//! Route changes are *atomic entry stores*, never a lock the workers take:
//! - Every entry is a single 32-bit atomic. The writer stores with `Release`, readers load with
//!   `Acquire`, and a new tbl8 group is completely filled before the tbl24 entry that links it
//!   is stored. A lookup concurrent with [`FibWriter::apply`] therefore returns the LPM answer
//!   of the route set after some prefix of the changes applied so far (before the batch, after
//!   it, or between two of its changes), never an answer that no such route set gives.
//! - [`FibVersion`] is bumped (`Release`) once per applied batch, after all its stores; a
//!   reader that observes version `v` (`Acquire`) sees every batch up to `v` in later lookups.
//!   The stress test uses it to bound what a lookup may see; `FibWriter::stats` reports it
//!   for metrics.
//!
//! # Reclamation
//! Memory that a reader may be reading is never reused while it may: collapsed tbl8 groups
//! wait on a retired list and a removed next hop is unpublished only after a grace period
//! (`grace.rs`: epoch slots, pinned around each lookup call with one `SeqCst` fence, waited for
//! by the writer only). Readers pay one fence per batch; the writer pays a wait of at most one
//! lookup call of every reader, and only when it recycles. We chose this over whole-table
//! versions (arc-swap of a new table) because a 64 MiB table cannot be copied per update batch
//! at 10k updates/s, and over pure QSBR because idle workers would stall reclamation.
//! The churn benchmark (`weft-bench lpm`) measures the readers' rate while the writer applies
//! 10k updates/s; the stress test (`tests/fib_concurrency.rs`) recycles tbl8 groups over 10k
//! times a second under two readers and checks every answer.
//!
//! # Pages
//! tbl24 is read at random: with 4 KiB pages most lookups also miss the TLB. The tables ask
//! for transparent huge pages before first touch (`MADV_HUGEPAGE`, through the AF_XDP layer's
//! `advise_huge_pages`, the one place unsafe code lives); where THP is off the advice fails,
//! is logged at debug level, and the tables work the same, slower.

mod dir24_8;
mod grace;
pub mod next_hop;
pub mod prefix;
pub mod reader;
#[cfg(any(test, feature = "test-support"))]
pub mod reference;
#[cfg(any(test, feature = "test-support"))]
pub mod sample;
pub mod writer;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use arc_swap::ArcSwap;

pub use next_hop::{IpipNextHop, MacAddr, NextHop, NextHopId, NextHopTable, VxlanNextHop, WgNextHop};
pub use prefix::{Ipv4Prefix, PrefixError};
pub use reader::{FibReader, NextHopSnapshot};
#[cfg(any(test, feature = "test-support"))]
pub use reference::ReferenceFib;
pub use writer::{FibError, FibMemory, FibStats, FibWriter, RouteChange};

/// A FIB version: the number of route batches applied so far. Starts at 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FibVersion(pub u64);

/// Sizing and timing of a FIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibConfig {
    /// tbl8 groups (1 KiB each): at most this many /24s can hold routes longer than /24 at
    /// once. Allocated zeroed up front; pages cost RAM once used.
    pub tbl8_groups: u32,
    /// How long the writer waits for a reader stuck inside one lookup call before it reports
    /// [`FibError::GraceTimeout`].
    pub grace_timeout: Duration,
}

impl Default for FibConfig {
    /// 65 536 tbl8 groups (64 MiB of address space), a 1 s grace timeout.
    fn default() -> Self {
        FibConfig { tbl8_groups: 1 << 16, grace_timeout: Duration::from_secs(1) }
    }
}

/// What the writer and all readers share.
#[derive(Debug)]
pub(crate) struct Shared {
    tables: dir24_8::Dir24_8,
    grace: grace::Grace,
    version: AtomicU64,
    next_hops: ArcSwap<NextHopTable>,
}

impl Shared {
    fn new(tbl8_groups: u32) -> Self {
        Shared {
            tables: dir24_8::Dir24_8::new(tbl8_groups),
            grace: grace::Grace::new(),
            version: AtomicU64::new(0),
            next_hops: ArcSwap::from_pointee(NextHopTable::default()),
        }
    }
}
