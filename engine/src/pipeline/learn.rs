//! Pod MAC learning: a pod attached without a MAC (`weft pod add` / `[[pods]]` without `mac`)
//! gets one from its first accepted frame (its ARP request for the gateway, or any IPv4 frame
//! whose source is the pod's IP).
//!
//! The worker never programs routes itself: it pushes a [`LearnedMac`] into the bounded,
//! lock-free [`MacLearnQueue`] and goes on; the control side drains the queue and republishes
//! the pod's next hop with the MAC ([`RouteUpdate::Pod`](super::RouteUpdate)). Until then a
//! pod's next hop carries [`UNLEARNED_MAC`] and frames to the pod are dropped as
//! `pod_mac_unknown`. A full queue loses the event (counted in [`MacLearnQueue::lost`]); the
//! worker asks again with the pod's next frame.
//!
//! Ordering: `ArrayQueue` push/pop synchronise with each other (release/acquire), so the
//! control side sees the event's bytes as written; `lost` is a statistic (`Relaxed`).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use weft_encap::MacAddr;

/// The MAC of a pod whose MAC is not known yet (all zeros: never a host's address).
pub const UNLEARNED_MAC: MacAddr = MacAddr([0; 6]);

/// One learned pod MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnedMac {
    /// The pod's IP (its identity on the control side).
    pub ip: Ipv4Addr,
    /// The source MAC of its frame.
    pub mac: MacAddr,
}

/// Learn events from the workers to the control side (see the module docs).
#[derive(Debug)]
pub struct MacLearnQueue {
    events: ArrayQueue<LearnedMac>,
    lost: AtomicU64,
}

impl MacLearnQueue {
    /// A queue of `capacity` (at least 1) events.
    pub fn new(capacity: usize) -> Self {
        MacLearnQueue { events: ArrayQueue::new(capacity.max(1)), lost: AtomicU64::new(0) }
    }

    /// Queues an event (workers). Never blocks: a full queue counts the loss and returns false.
    pub fn push(&self, e: LearnedMac) -> bool {
        if self.events.push(e).is_ok() {
            true
        } else {
            self.lost.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Takes the oldest event (control side).
    pub fn pop(&self) -> Option<LearnedMac> {
        self.events.pop()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Events lost to a full queue.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// Whether `mac` can be a pod's own address: unicast and not all zeros.
pub(crate) fn learnable(mac: [u8; 6]) -> bool {
    mac[0] & 1 == 0 && mac != UNLEARNED_MAC.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 5);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 5]);

    #[test]
    fn a_full_queue_counts_the_lost_event_and_keeps_the_first() {
        let q = MacLearnQueue::new(1);
        assert!(q.push(LearnedMac { ip: IP, mac: MAC }));
        assert!(!q.push(LearnedMac { ip: IP, mac: MacAddr([2; 6]) }));
        assert_eq!(q.lost(), 1);
        assert_eq!(q.pop(), Some(LearnedMac { ip: IP, mac: MAC }));
        assert!(q.is_empty());
    }

    #[test]
    fn only_unicast_nonzero_addresses_are_learnable() {
        assert!(learnable(MAC.0));
        assert!(!learnable([0xff; 6]));
        assert!(!learnable([0x01, 0, 0x5e, 0, 0, 1]));
        assert!(!learnable([0; 6]));
    }
}
