//! The DIR-24-8 lookup tables shared by the writer and all readers.
//!
//! Layout (as DPDK's `rte_lpm`):
//! - `tbl24`: 2^24 entries, one per /24, indexed by the top 24 bits of the address.
//! - `tbl8`: `groups` groups of 256 entries; a group refines one /24 that has routes longer
//!   than /24, indexed by the low 8 bits.
//!
//! Every entry is one `AtomicU32`, so a reader sees an entry either before or after a store,
//! never half of it:
//!
//! | bits            | meaning                                                   |
//! |-----------------|-----------------------------------------------------------|
//! | `0`             | no route                                                  |
//! | bit 31 clear    | `NextHopId(value - 1)`                                    |
//! | bit 31 set      | (tbl24 only) extended: bits 0..31 are the tbl8 group index |
//!
//! Memory ordering: the writer stores entries with `Release`; readers load them with
//! `Acquire`. The edge that matters is publication of a tbl8 group: the writer fills all 256
//! entries of a group, then stores the extended tbl24 entry (`Release`); a reader that loads the
//! extended entry (`Acquire`) is ordered after the fill and sees a complete group. On x86-64
//! both are plain `mov`s. The tbl8 load is `Acquire` too (rather than relying on the address
//! dependency, which Rust has no `consume` for) so that anything the writer did before an entry
//! store, such as publishing a next-hop snapshot or a version, is visible after the load.
//! Groups are only reused after a grace period (see `grace.rs`), so a reader holding a stale
//! extended entry still reads the old group's old content.

use std::sync::atomic::{AtomicU32, Ordering};

use super::next_hop::NextHopId;

/// Bit 31 of a tbl24 entry: the entry points to a tbl8 group.
pub(crate) const EXTENDED: u32 = 1 << 31;
/// Entries per tbl8 group.
pub(crate) const GROUP_ENTRIES: usize = 256;
/// Entries in tbl24.
pub(crate) const TBL24_ENTRIES: usize = 1 << 24;

/// Encodes an optional next hop as an entry value (`0` = no route).
#[inline]
pub(crate) fn encode(hop: Option<NextHopId>) -> u32 {
    hop.map_or(0, |id| id.0 + 1)
}

/// Decodes a non-extended entry value.
#[inline]
pub(crate) fn decode(entry: u32) -> Option<NextHopId> {
    entry.checked_sub(1).map(NextHopId)
}

/// The two tables. Allocated zeroed (no route) by the allocator, so the 64 MiB of tbl24 and the
/// tbl8 pool cost physical memory only where routes are written.
#[derive(Debug)]
pub(crate) struct Dir24_8 {
    tbl24: Box<[AtomicU32]>,
    tbl8: Box<[AtomicU32]>,
    groups: u32,
}

impl Dir24_8 {
    /// Empty tables with room for `groups` tbl8 groups (`groups < 2^31`).
    pub(crate) fn new(groups: u32) -> Self {
        let tables = Dir24_8 {
            tbl24: bytemuck::zeroed_slice_box(TBL24_ENTRIES),
            tbl8: bytemuck::zeroed_slice_box(groups as usize * GROUP_ENTRIES),
            groups,
        };
        // Huge pages cut the TLB misses of random lookups (the lpm benchmark measures up to 2x).
        // Advice only: without transparent huge pages the tables work the same, slower.
        for t in [&tables.tbl24, &tables.tbl8] {
            if let Err(e) = crate::port::afxdp::sys::advise_huge_pages(t) {
                log::debug!("fib: no transparent huge pages for the lookup tables: {e}");
            }
        }
        tables
    }

    /// Capacity of the tbl8 pool in groups.
    pub(crate) fn groups(&self) -> u32 {
        self.groups
    }

    /// Bytes allocated for both tables.
    pub(crate) fn allocated_bytes(&self) -> usize {
        (self.tbl24.len() + self.tbl8.len()) * std::mem::size_of::<AtomicU32>()
    }

    /// Longest-prefix match for one host-order address. The caller must be inside a read-side
    /// critical section (pinned) if tbl8 groups can be recycled.
    #[inline(always)]
    pub(crate) fn lookup(&self, dst: u32) -> Option<NextHopId> {
        let entry = self.load24(dst);
        decode(self.resolve(entry, dst))
    }

    /// Batched longest-prefix match: first all tbl24 loads (independent, so the CPU overlaps
    /// their cache misses), then the tbl8 loads for the extended ones. Looks up
    /// `min(dsts.len(), out.len())` addresses.
    #[inline]
    pub(crate) fn lookup_batch(&self, dsts: &[u32], out: &mut [Option<NextHopId>]) {
        const CHUNK: usize = 64;
        for (dsts, out) in dsts.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
            let mut entries = [0u32; CHUNK];
            for (entry, &dst) in entries.iter_mut().zip(dsts) {
                *entry = self.load24(dst);
            }
            for ((o, &entry), &dst) in out.iter_mut().zip(&entries).zip(dsts) {
                *o = decode(self.resolve(entry, dst));
            }
        }
    }

    #[inline(always)]
    fn load24(&self, dst: u32) -> u32 {
        // Index < 2^24 == len, so `get` never fails; it keeps the path panic-free.
        self.tbl24.get((dst >> 8) as usize).map_or(0, |e| e.load(Ordering::Acquire))
    }

    #[inline(always)]
    fn resolve(&self, entry: u32, dst: u32) -> u32 {
        if entry & EXTENDED == 0 {
            return entry;
        }
        let index = ((entry & !EXTENDED) as usize) * GROUP_ENTRIES + (dst & 0xff) as usize;
        self.tbl8.get(index).map_or(0, |e| e.load(Ordering::Acquire))
    }

    // ---- writer side: only `FibWriter` (the single writer) calls these ----

    /// The current tbl24 entry for a /24 index. `Relaxed`: the writer reads its own stores.
    pub(crate) fn entry24(&self, index: usize) -> u32 {
        self.tbl24[index].load(Ordering::Relaxed)
    }

    /// Publishes a tbl24 entry (`Release`: pairs with the readers' `Acquire`).
    pub(crate) fn store24(&self, index: usize, value: u32) {
        self.tbl24[index].store(value, Ordering::Release);
    }

    /// Stores one tbl8 entry (`Release`).
    pub(crate) fn store8(&self, group: u32, slot: usize, value: u32) {
        self.tbl8[group as usize * GROUP_ENTRIES + slot].store(value, Ordering::Release);
    }

    /// Fills a whole group that no reader can see yet (unpublished or past its grace period).
    pub(crate) fn fill_group(&self, group: u32, value: u32) {
        let start = group as usize * GROUP_ENTRIES;
        for e in &self.tbl8[start..start + GROUP_ENTRIES] {
            // Relaxed: the Release store of the tbl24 entry that publishes the group orders
            // these before any reader can reach them.
            e.store(value, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_encode_no_route_as_zero_and_ids_off_by_one() {
        assert_eq!(encode(None), 0);
        assert_eq!(decode(0), None);
        assert_eq!(decode(encode(Some(NextHopId(0)))), Some(NextHopId(0)));
        let max = encode(Some(NextHopId(NextHopId::MAX)));
        assert_eq!(max & EXTENDED, 0, "the largest id must not look extended");
        assert_eq!(decode(max), Some(NextHopId(NextHopId::MAX)));
    }

    #[test]
    fn a_published_group_answers_per_low_byte() {
        let t = Dir24_8::new(2);
        t.fill_group(1, encode(Some(NextHopId(7))));
        t.store8(1, 0x80, encode(Some(NextHopId(9))));
        t.store24(0x0a_0000, EXTENDED | 1);
        assert_eq!(t.lookup(0x0a00_0001), Some(NextHopId(7)));
        assert_eq!(t.lookup(0x0a00_0080), Some(NextHopId(9)));
        assert_eq!(t.lookup(0x0a00_0100), None);
        let mut out = [None; 3];
        t.lookup_batch(&[0x0a00_0080, 0x0a00_0001, 0x0b00_0000], &mut out);
        assert_eq!(out, [Some(NextHopId(9)), Some(NextHopId(7)), None]);
    }
}
