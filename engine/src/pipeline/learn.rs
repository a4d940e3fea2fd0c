//! Pod MAC learning: a pod attached without a MAC (`weft pod add` / `[[pods]]` without `mac`)
//! gets one from its first accepted frame (its ARP request for the gateway, or any IPv4 frame
//! whose source is the pod's IP).
//!
//! The worker never programs routes itself: it pushes a [`LearnedMac`] into the bounded,
//! lock-free [`MacLearnQueue`] and goes on; the control side drains the queue and republishes
//! the pod's next hop with the MAC ([`RouteUpdate::Pod`](super::RouteUpdate)). Until then a
//! pod's next hop carries [`UNLEARNED_MAC`] and frames to the pod are dropped as
//! `pod_mac_unknown`. A full queue loses the event (counted); the worker asks again with the
//! pod's next frame.

use std::net::Ipv4Addr;

use weft_encap::MacAddr;

use crate::worker::LossyQueue;

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

/// Learn events from the workers to the control side (see the module docs): never blocks a
/// worker; a full queue loses the event and counts it in [`LossyQueue::lost`].
pub type MacLearnQueue = LossyQueue<LearnedMac>;

/// Whether `mac` can be a pod's own address: unicast and not all zeros.
pub(crate) fn learnable(mac: [u8; 6]) -> bool {
    mac[0] & 1 == 0 && mac != UNLEARNED_MAC.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 5]);

    #[test]
    fn only_unicast_nonzero_addresses_are_learnable() {
        assert!(learnable(MAC.0));
        assert!(!learnable([0xff; 6]));
        assert!(!learnable([0x01, 0, 0x5e, 0, 0, 1]));
        assert!(!learnable([0; 6]));
    }
}
