//! The neighbour table: underlay IPv4 -> MAC, published by the control side, plus the bounded
//! queue of resolve requests the workers push misses into.
//!
//! Neighbour resolution is kernel-assisted: the XDP filter passes ARP to the node's kernel, so
//! the engine never sees ARP replies on the uplink. The control side reads the kernel's
//! neighbour table (and pings or `ip neigh` probes what the workers ask for), writes MACs here
//! with [`NeighbourTable::publish`], and the route programmer rebuilds the next hops that use
//! them. Workers never read a MAC from this table on the packet path: the MAC is already in the
//! next hop. What workers do here:
//! - [`NeighbourTable::request`]: a next hop was unresolved; ask for `ip` (bounded queue, a full
//!   queue is counted, never blocks).
//! - [`NeighbourTable::touch`]: stamp a slot with the current epoch when a packet used it, so
//!   the control side can tell which entries are in use and refresh only those.
//!
//! # Memory ordering
//! One writer (the control thread). A slot's key is written once (`Release`) after its MAC word,
//! and never changes afterwards (slots are not reused), so a reader that `Acquire`-loads a key
//! sees the MAC stored before it; MAC updates are single `u64` stores. Stamps and the epoch are
//! `Relaxed`: they are hints for the refresh policy, not synchronisation.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use weft_encap::MacAddr;

use crate::fib::next_hop::NeighbourSlot;
use crate::worker::LossyQueue;

/// Bit 63 of a slot's MAC word: the MAC is valid.
const VALID: u64 = 1 << 63;

#[derive(Debug, Default)]
struct Slot {
    /// The IPv4 address (host order) + 1; 0 = empty.
    key: AtomicU32,
    /// `VALID | mac` (48 bits), or 0 when unresolved.
    mac: AtomicU64,
    /// Epoch of the last packet that used this neighbour.
    last_used: AtomicU32,
}

/// Why the control side could not add a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NeighbourError {
    /// Every slot is taken.
    #[error("neighbour table full ({capacity} entries) while adding {ip}; raise its capacity")]
    Full {
        /// The address that did not fit.
        ip: Ipv4Addr,
        /// Slots in the table.
        capacity: usize,
    },
}

/// The neighbour table (see the module docs). Shared through an `Arc` between the control
/// thread (the one writer) and the workers.
#[derive(Debug)]
pub struct NeighbourTable {
    slots: Box<[Slot]>,
    mask: usize,
    used: AtomicU32,
    epoch: CachePadded<AtomicU32>,
    requests: LossyQueue<Ipv4Addr>,
}

fn hash(ip: u32) -> usize {
    (ip.wrapping_mul(0x9e37_79b1) >> 8) as usize
}

fn mac_word(mac: MacAddr) -> u64 {
    let m = mac.0;
    VALID | u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

fn word_mac(w: u64) -> Option<MacAddr> {
    if w & VALID == 0 {
        return None;
    }
    let b = w.to_be_bytes();
    Some(MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]]))
}

impl NeighbourTable {
    /// A table of at least `capacity` neighbours (rounded up to a power of two, kept at most
    /// half full) and a resolve-request queue of `queue` entries.
    pub fn new(capacity: usize, queue: usize) -> Self {
        let slots = (capacity.max(1) * 2).next_power_of_two();
        NeighbourTable {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            mask: slots - 1,
            used: AtomicU32::new(0),
            epoch: CachePadded::new(AtomicU32::new(1)),
            requests: LossyQueue::new(queue),
        }
    }

    fn find(&self, ip: Ipv4Addr) -> Result<usize, usize> {
        let key = u32::from(ip).wrapping_add(1);
        let mut i = hash(key) & self.mask;
        loop {
            // Acquire: pairs with the Release store of the key in `slot_of`.
            match self.slots[i].key.load(Ordering::Acquire) {
                0 => return Err(i),
                k if k == key => return Ok(i),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// The slot of `ip`, created (unresolved) if new. Control side only.
    pub fn slot_of(&self, ip: Ipv4Addr) -> Result<NeighbourSlot, NeighbourError> {
        match self.find(ip) {
            Ok(i) => Ok(NeighbourSlot(i as u32)),
            Err(i) => {
                if self.used.load(Ordering::Relaxed) as usize * 2 >= self.slots.len() {
                    return Err(NeighbourError::Full { ip, capacity: self.slots.len() / 2 });
                }
                self.used.fetch_add(1, Ordering::Relaxed);
                self.slots[i].last_used.store(0, Ordering::Relaxed);
                // Release: the slot's zeroed MAC and stamp are visible before its key.
                self.slots[i].key.store(u32::from(ip).wrapping_add(1), Ordering::Release);
                Ok(NeighbourSlot(i as u32))
            }
        }
    }

    /// Sets (or with `None` forgets) the MAC of `ip`. Control side only; the route programmer
    /// calls this and republishes the next hops that use `ip`.
    pub fn publish(&self, ip: Ipv4Addr, mac: Option<MacAddr>) -> Result<NeighbourSlot, NeighbourError> {
        let slot = self.slot_of(ip)?;
        self.slots[slot.0 as usize].mac.store(mac.map_or(0, mac_word), Ordering::Release);
        Ok(slot)
    }

    /// The MAC of `ip`, if resolved. Lock-free; any thread.
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        let i = self.find(ip).ok()?;
        word_mac(self.slots[i].mac.load(Ordering::Acquire))
    }

    /// The current epoch (workers read it once per batch).
    #[inline]
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Starts a new epoch and returns it. The control side calls this on its refresh timer
    /// (say once a second); a neighbour whose stamp is older than a few epochs is unused.
    pub fn advance_epoch(&self) -> u32 {
        self.epoch.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Stamps `slot` as used in `epoch`. One load per packet; a store only when the stamp
    /// changes (once per epoch), so workers do not bounce the cache line.
    #[inline]
    pub fn touch(&self, slot: NeighbourSlot, epoch: u32) {
        if let Some(s) = self.slots.get(slot.0 as usize) {
            if s.last_used.load(Ordering::Relaxed) != epoch {
                s.last_used.store(epoch, Ordering::Relaxed);
            }
        }
    }

    /// The epoch `ip` was last used in (0: never), if it has a slot.
    pub fn last_used(&self, ip: Ipv4Addr) -> Option<u32> {
        let i = self.find(ip).ok()?;
        Some(self.slots[i].last_used.load(Ordering::Relaxed))
    }

    /// Every neighbour: address, MAC if resolved, last-used epoch (control side, for refresh).
    pub fn entries(&self) -> impl Iterator<Item = (Ipv4Addr, Option<MacAddr>, u32)> + '_ {
        self.slots.iter().filter_map(|s| {
            let k = s.key.load(Ordering::Acquire);
            (k != 0).then(|| {
                let mac = word_mac(s.mac.load(Ordering::Acquire));
                (Ipv4Addr::from(k.wrapping_sub(1)), mac, s.last_used.load(Ordering::Relaxed))
            })
        })
    }

    /// Asks the control side to resolve `ip`. Never blocks; a full queue drops the request and
    /// counts it (the next packet asks again). Returns whether it was queued.
    #[inline]
    pub fn request(&self, ip: Ipv4Addr) -> bool {
        self.requests.push(ip)
    }

    /// Takes the next resolve request (control side).
    pub fn next_request(&self) -> Option<Ipv4Addr> {
        self.requests.pop()
    }

    /// Requests lost to a full queue.
    pub fn requests_lost(&self) -> u64 {
        self.requests.lost()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x12, 0, 2]);

    #[test]
    fn a_published_mac_is_found_and_can_be_forgotten() {
        let t = NeighbourTable::new(4, 4);
        assert_eq!(t.lookup(A), None);
        let s = t.publish(A, Some(MAC)).unwrap();
        assert_eq!(t.lookup(A), Some(MAC));
        assert_eq!(t.publish(A, None).unwrap(), s, "an address keeps its slot");
        assert_eq!(t.lookup(A), None);
        assert_eq!(t.entries().collect::<Vec<_>>(), vec![(A, None, 0)]);
    }

    #[test]
    fn the_zero_address_and_colliding_addresses_get_their_own_slots() {
        let t = NeighbourTable::new(64, 1);
        for i in 0..64u32 {
            t.publish(Ipv4Addr::from(i << 8), Some(MacAddr([0, 0, 0, 0, 0, i as u8]))).unwrap();
        }
        for i in 0..64u32 {
            assert_eq!(t.lookup(Ipv4Addr::from(i << 8)), Some(MacAddr([0, 0, 0, 0, 0, i as u8])));
        }
        assert!(matches!(t.publish(Ipv4Addr::new(1, 2, 3, 4), None), Err(NeighbourError::Full { .. })));
    }

    #[test]
    fn stamps_record_the_epoch_of_last_use() {
        let t = NeighbourTable::new(4, 4);
        let s = t.slot_of(A).unwrap();
        assert_eq!(t.last_used(A), Some(0));
        t.touch(s, t.epoch());
        assert_eq!(t.last_used(A), Some(1));
        let e = t.advance_epoch();
        t.touch(s, e);
        assert_eq!(t.last_used(A), Some(2));
    }

    #[test]
    fn a_full_request_queue_counts_what_it_loses() {
        let t = NeighbourTable::new(4, 2);
        assert!(t.request(A) && t.request(A));
        assert!(!t.request(A));
        assert_eq!(t.requests_lost(), 1);
        assert_eq!(t.next_request(), Some(A));
    }
}
