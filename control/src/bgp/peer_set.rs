//! The mesh's peers from etcd: in BGP mode the lease agent's compiled routes are not
//! installed; their node addresses become the set of BGP peers.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use tokio::sync::watch;

use crate::routes::{RouteDelta, RouteSink, RouteTable};

/// A [`RouteSink`] that publishes the node address of every routed lease.
#[derive(Debug)]
pub struct PeerSetSink {
    table: RouteTable,
    peers: watch::Sender<BTreeSet<Ipv4Addr>>,
}

impl PeerSetSink {
    /// A sink publishing into `peers`.
    pub fn new(peers: watch::Sender<BTreeSet<Ipv4Addr>>) -> Self {
        PeerSetSink { table: RouteTable::new(), peers }
    }
}

impl RouteSink for PeerSetSink {
    fn apply(&mut self, batch: &[RouteDelta]) {
        for delta in batch {
            match *delta {
                RouteDelta::Upsert(spec) => {
                    self.table.insert(spec.subnet, spec.via);
                }
                RouteDelta::Remove(subnet) => {
                    self.table.remove(&subnet);
                }
            }
        }
        let set: BTreeSet<Ipv4Addr> = self.table.values().map(|v| v.node_ip()).collect();
        self.peers.send_if_modified(|old| {
            let changed = *old != set;
            *old = set;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{RouteSpec, Via};

    #[test]
    fn leases_become_peers_and_a_removed_lease_removes_its_peer() {
        let (tx, rx) = watch::channel(BTreeSet::new());
        let mut sink = PeerSetSink::new(tx);
        let a = Ipv4Addr::new(198, 18, 0, 1);
        let spec = RouteSpec { subnet: "198.19.1.0/24".parse().unwrap(), via: Via::HostGw { gateway: a } };
        sink.apply(&[RouteDelta::Upsert(spec)]);
        assert_eq!(*rx.borrow(), BTreeSet::from([a]));
        sink.apply(&[RouteDelta::Remove(spec.subnet)]);
        assert!(rx.borrow().is_empty());
    }
}
