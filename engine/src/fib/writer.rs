//! `FibWriter`: the single writer. Owns the authoritative route set and derives the DIR-24-8
//! entries from it.
//!
//! Writer-private shadow state (never read by readers):
//! - `routes[len]`: the prefixes of each length, network address -> next hop. Authoritative.
//! - `depth24[i]`: `len + 1` of the route (length <= 24) that tbl24 entry `i` currently
//!   carries, 0 if none. For an extended entry this is the depth of the /24's *base* route, and
//!   `group_base[g]` holds that route's entry value.
//! - `group_depth[g * 256 + j]`: the same for tbl8 entries.
//!
//! Insert of `P/len` paints every entry in P's range whose depth is `<= len + 1` (not covered by
//! a longer prefix). Remove paints the entries whose depth is exactly `len + 1` (only P can have
//! put them there) with P's covering route, found in `routes` by trying the shorter lengths.
//! A tbl8 group is created when the first route longer than /24 lands in a /24 (filled with the
//! base route, painted, then published by one tbl24 store) and collapsed back to the base route
//! when the last one leaves; collapsed groups are recycled only after a grace period.
//!
//! Every entry goes straight from its answer before a change to its answer after it, so a
//! concurrent lookup returns the LPM answer of the route set as it stood after some prefix of
//! the applied changes: before the batch, after it, or between two of its changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::dir24_8::{EXTENDED, GROUP_ENTRIES, TBL24_ENTRIES, encode};
use super::grace::Stuck;
use super::next_hop::{NextHop, NextHopId, NextHopTable};
use super::prefix::{Ipv4Prefix, netmask};
use super::reader::FibReader;
use super::{FibConfig, FibVersion, Shared};

/// One route change of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteChange {
    /// Add the route, or change its next hop.
    Upsert(Ipv4Prefix, NextHopId),
    /// Remove the route if present (removing an absent route is not an error); addresses it
    /// covered fall back to the covering shorter route.
    Remove(Ipv4Prefix),
}

/// Why the writer refused a change. Route errors carry the index of the failing change in the
/// batch: the changes before it are applied and published (with a new version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    /// All tbl8 groups are in use.
    #[error(
        "route {prefix} (change #{index}): all {capacity} tbl8 groups are in use, one per /24 \
         holding routes longer than /24; raise FibConfig::tbl8_groups"
    )]
    Tbl8Exhausted {
        /// The route that needed a new group.
        prefix: Ipv4Prefix,
        /// Its index in the batch.
        index: usize,
        /// The configured number of groups.
        capacity: u32,
    },
    /// A route points to a next hop the table does not have.
    #[error(
        "route {prefix} (change #{index}) points to next hop {} which is not in the next-hop \
         table; publish it with set_next_hops first", id.0
    )]
    UnknownNextHop {
        /// The route.
        prefix: Ipv4Prefix,
        /// Its index in the batch.
        index: usize,
        /// The missing next hop.
        id: NextHopId,
    },
    /// A next-hop id beyond [`NextHopId::MAX`].
    #[error("next hop id {} is larger than the maximum {}", id.0, NextHopId::MAX)]
    NextHopIdOutOfRange {
        /// The rejected id.
        id: NextHopId,
    },
    /// Removing a next hop that routes still use.
    #[error("next hop {} is still used by {routes} route(s); remove or repoint them first", id.0)]
    NextHopInUse {
        /// The next hop.
        id: NextHopId,
        /// How many routes point to it.
        routes: u32,
    },
    /// Readers stayed inside one lookup call for longer than the grace timeout.
    #[error(
        "{readers} FIB reader(s) stayed inside a lookup for {waited:?} (grace timeout); memory \
         they may read cannot be recycled (a worker thread stalled or descheduled for that long?)"
    )]
    GraceTimeout {
        /// How long the writer waited.
        waited: Duration,
        /// Readers still pinned in the old epoch.
        readers: usize,
    },
}

impl From<Stuck> for FibError {
    fn from(s: Stuck) -> Self {
        FibError::GraceTimeout { waited: s.waited, readers: s.readers }
    }
}

/// Memory use in bytes, for metrics and the memory-per-prefix benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibMemory {
    /// tbl24 plus the whole tbl8 pool as allocated (zeroed pages cost RAM only once touched).
    pub tables_allocated: usize,
    /// tbl24 plus the tbl8 groups in use (including collapsed ones awaiting a grace period).
    pub tables_in_use: usize,
    /// The writer's authoritative route set and shadow depths.
    pub writer: usize,
    /// The current next-hop snapshot.
    pub next_hops: usize,
}

/// A snapshot of the FIB's size, for `weft status` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibStats {
    /// The last published version.
    pub version: FibVersion,
    /// Number of routes.
    pub prefixes: usize,
    /// tbl8 groups in use (live plus awaiting a grace period).
    pub tbl8_groups_in_use: u32,
    /// tbl8 groups that exist.
    pub tbl8_groups_capacity: u32,
    /// Registered readers.
    pub readers: usize,
    /// Grace periods the writer waited for (tbl8 recycling, next-hop removal).
    pub grace_periods: u64,
    /// Memory in bytes.
    pub memory: FibMemory,
}

/// The FIB's single writer. Not `Clone`: the control thread owns it. Creating it allocates the
/// tables; [`FibWriter::reader`] hands out readers for the workers.
#[derive(Debug)]
pub struct FibWriter {
    shared: Arc<Shared>,
    config: FibConfig,
    version: u64,
    routes: Vec<HashMap<u32, NextHopId>>,
    prefixes: usize,
    depth24: Box<[u8]>,
    group_depth: Box<[u8]>,
    group_base: Box<[u32]>,
    free_groups: Vec<u32>,
    retired_groups: Vec<u32>,
    hops: Arc<NextHopTable>,
    route_refs: HashMap<NextHopId, u32>,
    grace_periods: u64,
}

impl FibWriter {
    /// An empty FIB (no routes, no next hops, version 0).
    pub fn new(config: FibConfig) -> Self {
        let groups = config.tbl8_groups.min(EXTENDED - 1);
        let config = FibConfig { tbl8_groups: groups, ..config };
        let shared = Arc::new(Shared::new(groups));
        FibWriter {
            hops: shared.next_hops.load_full(),
            shared,
            config,
            version: 0,
            routes: vec![HashMap::new(); 33],
            prefixes: 0,
            depth24: vec![0u8; TBL24_ENTRIES].into_boxed_slice(),
            group_depth: vec![0u8; groups as usize * GROUP_ENTRIES].into_boxed_slice(),
            group_base: vec![0u32; groups as usize].into_boxed_slice(),
            free_groups: (0..groups).rev().collect(),
            retired_groups: Vec::new(),
            route_refs: HashMap::new(),
            grace_periods: 0,
        }
    }

    /// A new reader (its own grace slot) for a worker.
    pub fn reader(&self) -> FibReader {
        FibReader::new(self.shared.clone())
    }

    /// The last published version.
    pub fn version(&self) -> FibVersion {
        FibVersion(self.version)
    }

    /// The next hop of an exact route, if present.
    pub fn route(&self, prefix: Ipv4Prefix) -> Option<NextHopId> {
        self.routes[prefix.len() as usize].get(&prefix.bits()).copied()
    }

    /// All routes, in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = (Ipv4Prefix, NextHopId)> + '_ {
        self.routes.iter().enumerate().flat_map(|(len, map)| {
            map.iter().map(move |(&bits, &hop)| (Ipv4Prefix::covering(bits, len as u8), hop))
        })
    }

    /// The current next-hop table.
    pub fn next_hops(&self) -> &NextHopTable {
        &self.hops
    }

    /// Adds or replaces next hops and publishes a new snapshot. Readers that loaded the old
    /// snapshot keep it until they drop it.
    pub fn set_next_hops(&mut self, hops: &[(NextHopId, NextHop)]) -> Result<(), FibError> {
        if let Some((id, _)) = hops.iter().find(|(id, _)| id.0 > NextHopId::MAX) {
            return Err(FibError::NextHopIdOutOfRange { id: *id });
        }
        self.publish_hops(self.hops.with(hops));
        Ok(())
    }

    /// Removes a next hop no route uses. Waits for a grace period first, so no reader that
    /// might still hold the id from an old entry can load a snapshot without it.
    pub fn remove_next_hop(&mut self, id: NextHopId) -> Result<(), FibError> {
        if let Some(&routes) = self.route_refs.get(&id) {
            return Err(FibError::NextHopInUse { id, routes });
        }
        if self.hops.get(id).is_none() {
            return Ok(());
        }
        self.synchronize()?;
        self.publish_hops(self.hops.without(id));
        Ok(())
    }

    fn synchronize(&mut self) -> Result<(), FibError> {
        self.grace_periods += 1;
        Ok(self.shared.grace.synchronize(self.config.grace_timeout)?)
    }

    fn publish_hops(&mut self, table: NextHopTable) {
        let table = Arc::new(table);
        self.hops = table.clone();
        // ArcSwap::store is SeqCst; route entries stored after it are Release, so a reader that
        // Acquire-loads such an entry and then the snapshot sees this snapshot or a newer one.
        self.shared.next_hops.store(table);
    }

    /// Applies a batch of route changes in order and publishes it as one new version.
    ///
    /// Lookups running meanwhile see each change atomically per address (see the module
    /// docs). On error the changes before the failing one stay applied and are published.
    pub fn apply(&mut self, changes: &[RouteChange]) -> Result<FibVersion, FibError> {
        let mut result = Ok(());
        let mut applied = 0;
        for (index, change) in changes.iter().enumerate() {
            result = match *change {
                RouteChange::Upsert(prefix, hop) => self.upsert(index, prefix, hop),
                RouteChange::Remove(prefix) => self.remove(prefix),
            };
            if result.is_err() {
                break;
            }
            applied += 1;
        }
        if applied > 0 {
            self.version += 1;
            // Release: a reader that sees this version sees every entry of the batch.
            self.shared.version.store(self.version, Ordering::Release);
        }
        result.map(|()| FibVersion(self.version))
    }

    /// Sizes and memory use.
    pub fn stats(&self) -> FibStats {
        let groups = self.shared.tables.groups();
        let in_use = groups - self.free_groups.len() as u32;
        let entry = std::mem::size_of::<(u32, NextHopId)>() + 1;
        let route_bytes: usize = self.routes.iter().map(|m| m.capacity() * entry).sum();
        FibStats {
            version: FibVersion(self.version),
            prefixes: self.prefixes,
            tbl8_groups_in_use: in_use,
            tbl8_groups_capacity: groups,
            readers: self.shared.grace.readers(),
            grace_periods: self.grace_periods,
            memory: FibMemory {
                tables_allocated: self.shared.tables.allocated_bytes(),
                tables_in_use: (TBL24_ENTRIES + in_use as usize * GROUP_ENTRIES) * 4,
                writer: route_bytes
                    + self.depth24.len()
                    + self.group_depth.len()
                    + self.group_base.len() * 4
                    + self.free_groups.capacity() * 4
                    + self.route_refs.capacity() * (entry + 4),
                next_hops: self.hops.memory_bytes(),
            },
        }
    }

    fn upsert(&mut self, index: usize, prefix: Ipv4Prefix, hop: NextHopId) -> Result<(), FibError> {
        if self.hops.get(hop).is_none() {
            return Err(FibError::UnknownNextHop { prefix, index, id: hop });
        }
        let len = prefix.len();
        let bits = prefix.bits();
        // Get the group before touching the route set, so a capacity error changes nothing.
        let group = if len > 24 { Some(self.group_for(prefix, index)?) } else { None };
        let old = self.routes[len as usize].insert(bits, hop);
        match old {
            Some(old) => self.unref(old),
            None => self.prefixes += 1,
        }
        *self.route_refs.entry(hop).or_insert(0) += 1;

        let depth = len + 1;
        let value = encode(Some(hop));
        match group {
            None => self.paint24(prefix, |d| d <= depth, depth, value),
            Some((group, fresh)) => {
                let (first, count) = range8(prefix);
                self.paint8(group, first, count, |d| d <= depth, depth, value);
                if fresh {
                    // Publication: the group is complete before this Release store.
                    self.shared.tables.store24((bits >> 8) as usize, EXTENDED | group);
                }
            }
        }
        Ok(())
    }

    fn remove(&mut self, prefix: Ipv4Prefix) -> Result<(), FibError> {
        let len = prefix.len();
        let bits = prefix.bits();
        let Some(hop) = self.routes[len as usize].remove(&bits) else {
            return Ok(());
        };
        self.prefixes -= 1;
        self.unref(hop);

        // The covering route: the longest shorter prefix present.
        let (cover_depth, cover_value) = (0..len)
            .rev()
            .find_map(|l| {
                self.routes[l as usize].get(&(bits & netmask(l))).map(|&h| (l + 1, encode(Some(h))))
            })
            .unwrap_or((0, 0));
        let depth = len + 1;
        if len <= 24 {
            self.paint24(prefix, |d| d == depth, cover_depth, cover_value);
            return Ok(());
        }
        let slot = (bits >> 8) as usize;
        let entry = self.shared.tables.entry24(slot);
        debug_assert!(entry & EXTENDED != 0, "a route longer than /24 lives in a group");
        let group = entry & !EXTENDED;
        let (first, count) = range8(prefix);
        self.paint8(group, first, count, |d| d == depth, cover_depth, cover_value);

        let start = group as usize * GROUP_ENTRIES;
        if self.group_depth[start..start + GROUP_ENTRIES].iter().all(|&d| d <= 25) {
            // No route longer than /24 left: every entry equals the base route. Unlink the
            // group; it is recycled only after a grace period.
            self.shared.tables.store24(slot, self.group_base[group as usize]);
            self.retired_groups.push(group);
        }
        Ok(())
    }

    fn unref(&mut self, hop: NextHopId) {
        if let Some(n) = self.route_refs.get_mut(&hop) {
            *n -= 1;
            if *n == 0 {
                self.route_refs.remove(&hop);
            }
        }
    }

    /// The group of the /24 holding `prefix`, and whether it is fresh (not yet published).
    fn group_for(&mut self, prefix: Ipv4Prefix, index: usize) -> Result<(u32, bool), FibError> {
        let slot = (prefix.bits() >> 8) as usize;
        let entry = self.shared.tables.entry24(slot);
        if entry & EXTENDED != 0 {
            return Ok((entry & !EXTENDED, false));
        }
        let group = self.allocate_group(prefix, index)?;
        self.shared.tables.fill_group(group, entry);
        let start = group as usize * GROUP_ENTRIES;
        self.group_depth[start..start + GROUP_ENTRIES].fill(self.depth24[slot]);
        self.group_base[group as usize] = entry;
        Ok((group, true))
    }

    fn allocate_group(&mut self, prefix: Ipv4Prefix, index: usize) -> Result<u32, FibError> {
        if self.free_groups.is_empty() && !self.retired_groups.is_empty() {
            // Groups collapsed earlier may still be read by a reader pinned before the
            // collapse: recycle them only once every such reader has left its lookup.
            self.synchronize()?;
            self.free_groups.append(&mut self.retired_groups);
        }
        self.free_groups.pop().ok_or(FibError::Tbl8Exhausted {
            prefix,
            index,
            capacity: self.shared.tables.groups(),
        })
    }

    /// Paints tbl24 entries in `prefix` (length <= 24) whose depth satisfies `paint_over`, and
    /// the matching entries of their groups.
    fn paint24(&mut self, prefix: Ipv4Prefix, paint_over: impl Fn(u8) -> bool + Copy, depth: u8, value: u32) {
        let first = (prefix.bits() >> 8) as usize;
        let count = 1usize << (24 - prefix.len());
        for slot in first..first + count {
            if !paint_over(self.depth24[slot]) {
                continue;
            }
            self.depth24[slot] = depth;
            let entry = self.shared.tables.entry24(slot);
            if entry & EXTENDED != 0 {
                let group = entry & !EXTENDED;
                self.group_base[group as usize] = value;
                self.paint8(group, 0, GROUP_ENTRIES, paint_over, depth, value);
            } else if entry != value {
                self.shared.tables.store24(slot, value);
            }
        }
    }

    fn paint8(
        &mut self,
        group: u32,
        first: usize,
        count: usize,
        paint_over: impl Fn(u8) -> bool,
        depth: u8,
        value: u32,
    ) {
        let start = group as usize * GROUP_ENTRIES;
        for slot in first..first + count {
            let d = &mut self.group_depth[start + slot];
            if paint_over(*d) {
                *d = depth;
                self.shared.tables.store8(group, slot, value);
            }
        }
    }
}

/// First slot and slot count inside a tbl8 group of a prefix longer than /24.
fn range8(prefix: Ipv4Prefix) -> (usize, usize) {
    ((prefix.bits() & 0xff) as usize, 1usize << (32 - prefix.len()))
}
