//! The routes every peer gave us (Adj-RIB-In per peer), the choice among them, and the FIB
//! route each chosen one becomes. Pure: the speaker feeds it events and the time.
//!
//! - Choice: one route per prefix; when peers disagree the lowest peer address wins (in a
//!   Calico mesh each block has one owner, so this only orders a transition).
//! - A route whose next hop is on our uplink's subnet goes there directly (host-gw, its MAC
//!   resolved by ARP); any other is sent over IP-in-IP to the next hop, as Calico's
//!   CrossSubnet mode does.
//! - Graceful restart (RFC 4724, receiving side): when a peer that announced the capability
//!   for IPv4 unicast drops without a NOTIFICATION, its routes stay, marked stale, until its
//!   restart time passes or its End-of-RIB after reconnecting; then the stale ones go. If it
//!   comes back without having kept its forwarding state (the F bit clear, or no capability
//!   for IPv4 unicast), they go as the new session comes up.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use crate::routes::{RouteDelta, RouteSpec, RouteTable, Via};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    next_hop: Ipv4Addr,
    stale: bool,
}

#[derive(Debug, Default)]
struct PeerRib {
    routes: BTreeMap<Ipv4Net, Entry>,
    /// Stale routes go at this time (graceful restart).
    stale_until: Option<Instant>,
}

/// What is known about our node, to judge learned routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// Our underlay address: routes pointing at it are ignored.
    pub address: Ipv4Addr,
    /// Our pod subnet: never routed away.
    pub subnet: Ipv4Net,
    /// Our uplink's L2 subnet: next hops in it are reached directly.
    pub uplink_subnet: Ipv4Net,
}

/// Every peer's routes, and the prefixes whose choice may have changed since
/// [`Rib::changes`] last ran (so a change costs the prefixes it touches, not the table).
#[derive(Debug)]
pub struct Rib {
    local: Local,
    peers: BTreeMap<Ipv4Addr, PeerRib>,
    dirty: BTreeSet<Ipv4Net>,
}

impl Rib {
    /// An empty RIB.
    pub fn new(local: Local) -> Self {
        Rib { local, peers: BTreeMap::new(), dirty: BTreeSet::new() }
    }

    /// Announcements and withdrawals from `peer`.
    pub fn update(&mut self, peer: Ipv4Addr, announced: &[(Ipv4Net, Ipv4Addr)], withdrawn: &[Ipv4Net]) {
        let rib = self.peers.entry(peer).or_default();
        for p in withdrawn {
            if rib.routes.remove(p).is_some() {
                self.dirty.insert(*p);
            }
        }
        for &(p, next_hop) in announced {
            rib.routes.insert(p, Entry { next_hop, stale: false });
            self.dirty.insert(p);
        }
    }

    /// `peer`'s session ended: with `keep` (graceful restart) its routes stay, stale, until
    /// `now + keep`; without, they go now.
    pub fn peer_down(&mut self, peer: Ipv4Addr, keep: Option<Duration>, now: Instant) {
        match keep {
            Some(keep) if !keep.is_zero() => {
                if let Some(rib) = self.peers.get_mut(&peer) {
                    rib.routes.values_mut().for_each(|e| e.stale = true);
                    rib.stale_until = Some(now + keep);
                }
            }
            _ => {
                if let Some(rib) = self.peers.remove(&peer) {
                    self.dirty.extend(rib.routes.into_keys());
                }
            }
        }
    }

    /// `peer` finished sending its table: routes it did not announce again go.
    pub fn end_of_rib(&mut self, peer: Ipv4Addr) {
        if let Some(rib) = self.peers.get_mut(&peer) {
            Self::drop_stale(rib, &mut self.dirty);
        }
    }

    /// `peer` came back without its forwarding state: its stale routes go now.
    pub fn forwarding_lost(&mut self, peer: Ipv4Addr) {
        if let Some(rib) = self.peers.get_mut(&peer) {
            Self::drop_stale(rib, &mut self.dirty);
        }
    }

    fn drop_stale(rib: &mut PeerRib, dirty: &mut BTreeSet<Ipv4Net>) -> bool {
        let before = rib.routes.len();
        rib.routes.retain(|p, e| {
            if e.stale {
                dirty.insert(*p);
            }
            !e.stale
        });
        rib.stale_until = None;
        before != rib.routes.len()
    }

    /// Drops stale routes whose restart time passed; returns whether any went.
    pub fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for rib in self.peers.values_mut() {
            if rib.stale_until.is_some_and(|t| t <= now) {
                changed |= Self::drop_stale(rib, &mut self.dirty);
            }
        }
        changed
    }

    /// The next time [`Rib::expire`] has work.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.peers.values().filter_map(|r| r.stale_until).min()
    }

    /// How many prefixes `peer` gave us (stale included).
    pub fn prefixes_from(&self, peer: Ipv4Addr) -> usize {
        self.peers.get(&peer).map_or(0, |r| r.routes.len())
    }

    fn via(&self, next_hop: Ipv4Addr) -> Via {
        if self.local.uplink_subnet.contains(&next_hop) {
            Via::HostGw { gateway: next_hop }
        } else {
            Via::Ipip { remote: next_hop }
        }
    }

    /// The route for `subnet`, chosen as the module docs say.
    fn best(&self, subnet: Ipv4Net) -> Option<Via> {
        if subnet == self.local.subnet {
            return None;
        }
        self.peers
            .values()
            .filter_map(|rib| rib.routes.get(&subnet))
            .find(|e| e.next_hop != self.local.address && !e.next_hop.is_unspecified())
            .map(|e| self.via(e.next_hop))
    }

    /// The FIB routes: one per prefix.
    pub fn routes(&self) -> Vec<RouteSpec> {
        let all: BTreeSet<Ipv4Net> = self.peers.values().flat_map(|r| r.routes.keys().copied()).collect();
        all.into_iter().filter_map(|subnet| Some(RouteSpec { subnet, via: self.best(subnet)? })).collect()
    }

    /// What changed since the last call, against the routes the sink has (`installed`,
    /// updated here): at most one delta per prefix, into `out` (cleared first).
    pub fn changes(&mut self, installed: &mut RouteTable, out: &mut Vec<RouteDelta>) {
        out.clear();
        for subnet in std::mem::take(&mut self.dirty) {
            match (self.best(subnet), installed.get(&subnet).copied()) {
                (Some(via), have) if have != Some(via) => {
                    installed.insert(subnet, via);
                    out.push(RouteDelta::Upsert(RouteSpec { subnet, via }));
                }
                (None, Some(_)) => {
                    installed.remove(&subnet);
                    out.push(RouteDelta::Remove(subnet));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    const P1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const P3: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

    fn rib() -> Rib {
        Rib::new(Local {
            address: Ipv4Addr::new(198, 18, 0, 2),
            subnet: net("198.19.2.0/24"),
            uplink_subnet: net("198.18.0.0/24"),
        })
    }

    #[test]
    fn on_link_next_hops_are_direct_and_others_ipip() {
        let mut r = rib();
        r.update(
            P1,
            &[(net("198.19.1.0/24"), P1), (net("198.19.9.0/24"), Ipv4Addr::new(198, 18, 5, 9))],
            &[],
        );
        assert_eq!(
            r.routes(),
            vec![
                RouteSpec { subnet: net("198.19.1.0/24"), via: Via::HostGw { gateway: P1 } },
                RouteSpec {
                    subnet: net("198.19.9.0/24"),
                    via: Via::Ipip { remote: Ipv4Addr::new(198, 18, 5, 9) }
                },
            ]
        );
    }

    #[test]
    fn our_subnet_and_routes_through_us_are_never_installed() {
        let mut r = rib();
        r.update(
            P1,
            &[(net("198.19.2.0/24"), P1), (net("198.19.7.0/24"), Ipv4Addr::new(198, 18, 0, 2))],
            &[],
        );
        assert!(r.routes().is_empty());
    }

    #[test]
    fn a_withdrawal_or_a_plain_peer_down_removes_the_routes() {
        let mut r = rib();
        r.update(P1, &[(net("198.19.1.0/24"), P1)], &[]);
        r.update(P3, &[(net("198.19.3.0/24"), P3)], &[]);
        r.update(P1, &[], &[net("198.19.1.0/24")]);
        assert_eq!(r.routes().len(), 1);
        r.peer_down(P3, None, Instant::now());
        assert!(r.routes().is_empty());
    }

    #[test]
    fn graceful_restart_keeps_stale_routes_until_end_of_rib_or_the_restart_time() {
        let t0 = Instant::now();
        let mut r = rib();
        r.update(P1, &[(net("198.19.1.0/24"), P1), (net("198.19.11.0/24"), P1)], &[]);
        r.peer_down(P1, Some(Duration::from_secs(120)), t0);
        assert_eq!(r.routes().len(), 2, "stale routes stay");
        assert!(!r.expire(t0 + Duration::from_secs(119)));
        r.update(P1, &[(net("198.19.1.0/24"), P1)], &[]);
        r.end_of_rib(P1);
        assert_eq!(r.routes().len(), 1, "the one not announced again went at End-of-RIB");
        r.peer_down(P1, Some(Duration::from_secs(120)), t0);
        r.update(P1, &[(net("198.19.1.0/24"), P1)], &[]);
        r.forwarding_lost(P1);
        assert_eq!(r.routes().len(), 1, "a route announced again is not stale");
        r.update(P1, &[(net("198.19.11.0/24"), P1)], &[]);
        r.peer_down(P1, Some(Duration::from_secs(120)), t0);
        r.forwarding_lost(P1);
        assert!(r.routes().is_empty(), "back without forwarding state: the stale routes went");
        r.update(P1, &[(net("198.19.1.0/24"), P1)], &[]);
        r.peer_down(P1, Some(Duration::from_secs(120)), t0);
        assert_eq!(r.next_expiry(), Some(t0 + Duration::from_secs(120)));
        assert!(r.expire(t0 + Duration::from_secs(120)));
        assert!(r.routes().is_empty());
    }

    #[test]
    fn changes_send_each_touched_prefix_once_and_nothing_for_the_untouched() {
        let mut r = rib();
        let (mut installed, mut out) = (RouteTable::new(), Vec::new());
        r.update(P1, &[(net("198.19.1.0/24"), P1), (net("198.19.11.0/24"), P1)], &[]);
        r.changes(&mut installed, &mut out);
        assert_eq!(out.len(), 2);
        r.update(P1, &[(net("198.19.1.0/24"), P1)], &[net("198.19.11.0/24")]);
        r.changes(&mut installed, &mut out);
        assert_eq!(
            out,
            vec![RouteDelta::Remove(net("198.19.11.0/24"))],
            "re-announcing the same route sends nothing"
        );
        r.update(P3, &[(net("198.19.1.0/24"), P3)], &[]);
        r.peer_down(P1, None, Instant::now());
        r.changes(&mut installed, &mut out);
        assert_eq!(
            out,
            vec![RouteDelta::Upsert(RouteSpec {
                subnet: net("198.19.1.0/24"),
                via: Via::HostGw { gateway: P3 }
            })]
        );
        assert_eq!(installed.len(), 1);
    }

    #[test]
    fn the_lowest_peer_wins_a_contested_prefix() {
        let mut r = rib();
        r.update(P3, &[(net("198.19.9.0/24"), P3)], &[]);
        r.update(P1, &[(net("198.19.9.0/24"), P1)], &[]);
        assert_eq!(r.routes()[0].via, Via::HostGw { gateway: P1 });
    }
}
