//! Next hops: what the data path does with a packet once the LPM has picked a route.
//!
//! Routes map to a [`NextHopId`]; the id indexes an immutable [`NextHopTable`] snapshot. The
//! writer publishes a whole new snapshot (copy, modify, `ArcSwap::store`) whenever next hops
//! change; a reader loads the snapshot once per batch, *after* its lookups and inside the same
//! read-side critical section (see [`crate::fib::FibReader::resolve_batch`]). Rules the writer
//! enforces so every id a reader gets from a lookup resolves in the snapshot it loads:
//!
//! 1. A route may only point at an id present in the published table (`UnknownNextHop`
//!    otherwise): the snapshot store happens before the route's entry stores, and the reader's
//!    Acquire entry load therefore orders its later snapshot load after the snapshot store.
//! 2. A next hop can only be removed when no route points to it (`NextHopInUse` otherwise), and
//!    only after a grace period that began after its last route was unlinked: no reader that may
//!    still hold the id from an old entry is inside its critical section when the snapshot
//!    without it is published. Old snapshots are freed by `Arc` when the last reader drops them.
//!
//! Payloads carry what the pipeline needs per packet, prebuilt by the route programmer
//! (`crate::pipeline::RouteProgrammer`): the VXLAN/IPIP outer headers as `weft-encap`
//! templates (with the underlay next hop's MAC already in them) and the neighbour's MAC for
//! unencapsulated forwarding. A next hop whose underlay MAC is not known yet says so
//! (`resolved == false`, or [`NextHop::HostGw`]); the programmer republishes it once the
//! neighbour table learns the MAC.

use std::net::Ipv4Addr;

pub use weft_encap::MacAddr;
use weft_encap::{IpipTemplate, VxlanTemplate};

/// Index of a neighbour's slot in `crate::neighbour::NeighbourTable` (its last-used stamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighbourSlot(pub u32);

/// Index of a next hop in the [`NextHopTable`]. At most [`NextHopId::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHopId(pub u32);

impl NextHopId {
    /// The largest id a route can carry: the DIR-24-8 entry keeps one bit for "extended" and
    /// reserves 0 for "no route", leaving `2^31 - 1` values.
    pub const MAX: u32 = (1 << 31) - 2;
}

/// Where a VXLAN-encapsulated packet goes: a remote node's VTEP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanNextHop {
    /// The finished outer headers (remote PublicIP, VtepMAC, VNI, port are in its params).
    pub template: VxlanTemplate,
    /// The underlay next hop whose MAC is the outer destination MAC: the remote node when it
    /// is on our uplink's subnet, else the underlay gateway.
    pub underlay: Ipv4Addr,
    /// Its neighbour-table slot (the pipeline stamps it when used).
    pub slot: NeighbourSlot,
    /// Whether the template's outer destination MAC is the resolved MAC of `underlay`.
    pub resolved: bool,
}

/// Where an IP-in-IP encapsulated packet goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpipNextHop {
    /// The finished outer headers (remote PublicIP is in its params).
    pub template: IpipTemplate,
    /// The underlay next hop (see [`VxlanNextHop::underlay`]).
    pub underlay: Ipv4Addr,
    /// Its neighbour-table slot.
    pub slot: NeighbourSlot,
    /// Whether the template's outer destination MAC is resolved.
    pub resolved: bool,
}

/// Where a WireGuard-encrypted packet goes: a remote node's peer slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgNextHop {
    /// The peer's slot id in every worker's `wireguard::PeerTable`.
    pub peer: u16,
    /// The worker that owns the peer's session (a `worker::WorkerId`): others hand it the
    /// packet to encrypt.
    pub owner: u16,
    /// The outer destination MAC: `underlay`'s resolved MAC.
    pub dst_mac: MacAddr,
    /// The underlay next hop (see [`VxlanNextHop::underlay`]).
    pub underlay: Ipv4Addr,
    /// Its neighbour-table slot.
    pub slot: NeighbourSlot,
    /// Whether `dst_mac` is resolved.
    pub resolved: bool,
}

/// What to do with a packet whose destination matched a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// Deliver to a pod on this node.
    LocalPod {
        /// The worker that owns the pod's port (a `worker::WorkerId`): another worker hands
        /// the packet to it.
        worker: u16,
        /// The engine's port id of the pod's veth on that worker (a `worker::PortId`).
        port: u16,
        /// The pod interface's MAC (destination MAC of the delivered frame).
        mac: MacAddr,
    },
    /// Encapsulate in VXLAN towards another node.
    Vxlan(VxlanNextHop),
    /// Encapsulate in IP-in-IP towards another node.
    Ipip(IpipNextHop),
    /// Encrypt in a WireGuard transport message towards another node.
    WireGuard(WgNextHop),
    /// Forward unencapsulated via another node on the same L2 segment (host-gw, or
    /// DirectRouting/CrossSubnet) whose MAC is not known yet: the pipeline asks the control
    /// side to resolve `node` and drops the packet as `neighbour_unresolved`.
    HostGw {
        /// The node's underlay address.
        node: Ipv4Addr,
    },
    /// Forward unencapsulated to a resolved underlay neighbour: eth dst = `mac`, TTL-1.
    Direct {
        /// The node's underlay address.
        node: Ipv4Addr,
        /// Its MAC on our uplink's segment.
        mac: MacAddr,
        /// Its neighbour-table slot.
        slot: NeighbourSlot,
    },
    /// Hand the packet to the slow path (the kernel or the control thread).
    Exception,
    /// The node's own address on the host link (its kernel's address in the pod network):
    /// hand the packet to the kernel, whatever port it came from.
    Host,
    /// Drop the packet, counted.
    Blackhole,
}

/// An immutable snapshot of all next hops, indexed by [`NextHopId`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NextHopTable {
    slots: Vec<Option<NextHop>>,
}

impl NextHopTable {
    /// The next hop with this id, if the snapshot has one.
    #[inline]
    pub fn get(&self, id: NextHopId) -> Option<&NextHop> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// Number of next hops present.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether the table has no next hop.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy with `id` set to `hop` (writer side; grows the table as needed).
    pub(crate) fn with(&self, changes: &[(NextHopId, NextHop)]) -> Self {
        let mut next = self.clone();
        for (id, hop) in changes {
            let i = id.0 as usize;
            if next.slots.len() <= i {
                next.slots.resize(i + 1, None);
            }
            next.slots[i] = Some(hop.clone());
        }
        next
    }

    /// A copy without `id` (writer side).
    pub(crate) fn without(&self, id: NextHopId) -> Self {
        let mut next = self.clone();
        if let Some(slot) = next.slots.get_mut(id.0 as usize) {
            *slot = None;
        }
        while next.slots.last().is_some_and(Option::is_none) {
            next.slots.pop();
        }
        next
    }

    /// Heap bytes held by this snapshot (metrics).
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<NextHop>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_copy_changes_only_the_named_ids() {
        let base = NextHopTable::default()
            .with(&[(NextHopId(3), NextHop::Blackhole), (NextHopId(0), NextHop::Exception)]);
        assert_eq!(base.len(), 2);
        assert_eq!(base.get(NextHopId(3)), Some(&NextHop::Blackhole));
        assert_eq!(base.get(NextHopId(1)), None);
        assert_eq!(base.get(NextHopId(99)), None);
        let smaller = base.without(NextHopId(3));
        assert_eq!(smaller.get(NextHopId(3)), None);
        assert_eq!(smaller.get(NextHopId(0)), Some(&NextHop::Exception));
        // The original snapshot is untouched: readers holding it keep their view.
        assert_eq!(base.get(NextHopId(3)), Some(&NextHop::Blackhole));
    }
}
