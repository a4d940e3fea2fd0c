//! The set of nodes that hold a lease: tunnel traffic (VXLAN, IPIP) is accepted only from their
//! PublicIPs. The route programmer builds a new immutable [`PeerSet`] whenever the set of remote
//! nodes changes and publishes it with one `ArcSwap` store; each worker loads it once per batch
//! (lock-free) and probes it per tunnel packet.

use std::net::Ipv4Addr;
use std::sync::Arc;

use arc_swap::ArcSwap;

/// An immutable open-addressed set of IPv4 addresses (0.0.0.0 cannot be a member).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerSet {
    /// Host-order addresses, 0 = empty; length a power of two, at most half full.
    slots: Box<[u32]>,
    len: usize,
}

#[inline]
fn hash(ip: u32) -> usize {
    (ip.wrapping_mul(0x9e37_79b1) >> 7) as usize
}

impl PeerSet {
    /// A set of `peers` (duplicates and 0.0.0.0 ignored).
    pub fn new(peers: impl IntoIterator<Item = Ipv4Addr>) -> Self {
        let peers: Vec<u32> = peers.into_iter().map(u32::from).filter(|&p| p != 0).collect();
        let cap = (peers.len() * 2).max(4).next_power_of_two();
        let mut slots = vec![0u32; cap].into_boxed_slice();
        let mut len = 0;
        for p in peers {
            let mut i = hash(p) & (cap - 1);
            while slots[i] != 0 && slots[i] != p {
                i = (i + 1) & (cap - 1);
            }
            if slots[i] == 0 {
                slots[i] = p;
                len += 1;
            }
        }
        PeerSet { slots, len }
    }

    /// Whether `ip` holds a lease.
    #[inline]
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        let mask = self.slots.len().wrapping_sub(1);
        if ip == 0 || self.slots.is_empty() {
            return false;
        }
        let mut i = hash(ip) & mask;
        loop {
            match self.slots[i] {
                0 => return false,
                s if s == ip => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The published peer set, shared by the programmer (writer) and the workers (readers).
pub type SharedPeers = Arc<ArcSwap<PeerSet>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_and_others_are_not() {
        let s = PeerSet::new((1..=100u8).map(|i| Ipv4Addr::new(198, 18, 0, i)));
        assert_eq!(s.len(), 100);
        assert!((1..=100u8).all(|i| s.contains(Ipv4Addr::new(198, 18, 0, i))));
        assert!(!s.contains(Ipv4Addr::new(198, 18, 0, 101)));
        assert!(!s.contains(Ipv4Addr::UNSPECIFIED));
        assert!(!PeerSet::default().contains(Ipv4Addr::new(198, 18, 0, 1)));
    }
}
