//! The compiled form of the policies that select one pod, per direction: which peers may talk to
//! it (or it to them) on which ports. Built on the control side, read by the workers.
//!
//! A direction's rules are the union of every rule of every policy that selects the pod, compiled
//! so that a lookup costs a hash probe, not a walk over the rules:
//! - peers named by pod/namespace selectors are resolved to their addresses, and each address maps
//!   to the union of the ports the rules allow it ([`AddrMap`], open addressing);
//! - rules with every peer (`from`/`to` empty) fold into one port set;
//! - `ipBlock`s (with their `except`s) go into one hash table per prefix length ([`BlockSet`],
//!   tuple-space search): a lookup costs a probe per distinct length, whatever the block count.

use std::net::Ipv4Addr;

use super::blocks::{Block, BlockSet};
use crate::fib::Ipv4Prefix;

/// IPv4 protocol numbers NetworkPolicy ports name.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// One `ports` entry: a protocol and a port range (`port` alone: `lo == hi`; no port: 0..=65535).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// IPv4 protocol number (TCP 6, UDP 17, SCTP 132).
    pub proto: u8,
    /// First port.
    pub lo: u16,
    /// Last port (inclusive).
    pub hi: u16,
}

impl PortRange {
    /// Every port of `proto`.
    pub const fn all(proto: u8) -> Self {
        PortRange { proto, lo: 0, hi: u16::MAX }
    }

    /// Port `port` of `proto`.
    pub const fn one(proto: u8, port: u16) -> Self {
        PortRange { proto, lo: port, hi: port }
    }

    #[inline]
    fn matches(&self, proto: u8, port: u16) -> bool {
        self.proto == proto && self.lo <= port && port <= self.hi
    }
}

/// What a rule allows: every protocol and port, or a list of ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ports {
    /// Nothing (the identity of [`Ports::union`]).
    #[default]
    None,
    /// Every protocol (ICMP included) and port: a rule without `ports`.
    All,
    /// These ranges only.
    Ranges(Box<[PortRange]>),
}

impl Ports {
    /// A set of ranges (empty: nothing).
    pub fn ranges(ranges: impl IntoIterator<Item = PortRange>) -> Self {
        let mut v: Vec<PortRange> = ranges.into_iter().collect();
        if v.is_empty() {
            return Ports::None;
        }
        v.sort_unstable();
        v.dedup();
        Ports::Ranges(v.into_boxed_slice())
    }

    /// Whether a packet of `proto` to port `port` is allowed.
    #[inline]
    pub fn matches(&self, proto: u8, port: u16) -> bool {
        match self {
            Ports::None => false,
            Ports::All => true,
            Ports::Ranges(r) => r.iter().any(|r| r.matches(proto, port)),
        }
    }

    /// Everything either allows.
    pub fn union(&self, other: &Ports) -> Ports {
        match (self, other) {
            (Ports::All, _) | (_, Ports::All) => Ports::All,
            (Ports::None, o) | (o, Ports::None) => o.clone(),
            (Ports::Ranges(a), Ports::Ranges(b)) => Ports::ranges(a.iter().chain(b.iter()).copied()),
        }
    }
}

/// An immutable open-addressed map from IPv4 address to [`Ports`] (0.0.0.0 is no key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AddrMap {
    /// `(address, index into ports)`, address 0 = empty; a power of two long, at most half full.
    slots: Box<[(u32, u32)]>,
    ports: Vec<Ports>,
}

#[inline]
fn hash(ip: u32) -> usize {
    (ip.wrapping_mul(0x9e37_79b1) >> 7) as usize
}

impl AddrMap {
    fn build(entries: &[(u32, Ports)]) -> Self {
        let cap = (entries.len() * 2).max(4).next_power_of_two();
        let mut slots = vec![(0u32, 0u32); cap].into_boxed_slice();
        let mut ports: Vec<Ports> = Vec::with_capacity(entries.len());
        for (addr, p) in entries.iter().filter(|(a, _)| *a != 0) {
            let mut i = hash(*addr) & (cap - 1);
            while slots[i].0 != 0 && slots[i].0 != *addr {
                i = (i + 1) & (cap - 1);
            }
            if slots[i].0 == *addr {
                let at = slots[i].1 as usize;
                ports[at] = ports[at].union(p);
            } else {
                slots[i] = (*addr, ports.len() as u32);
                ports.push(p.clone());
            }
        }
        AddrMap { slots, ports }
    }

    #[inline]
    fn get(&self, addr: u32) -> Option<&Ports> {
        let mask = self.slots.len().wrapping_sub(1);
        if addr == 0 || self.slots.is_empty() {
            return None;
        }
        let mut i = hash(addr) & mask;
        loop {
            match self.slots[i] {
                (0, _) => return None,
                (a, at) if a == addr => return self.ports.get(at as usize),
                _ => i = (i + 1) & mask,
            }
        }
    }
}

/// What one direction (ingress or egress) of an isolated pod allows, compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectionRules {
    any_peer: Ports,
    peers: AddrMap,
    blocks: BlockSet,
}

/// Builds a [`DirectionRules`] from rules, in any order (the result is their union).
#[derive(Debug, Clone, Default)]
pub struct DirectionBuilder {
    any_peer: Ports,
    peers: Vec<(u32, Ports)>,
    blocks: Vec<Block>,
}

impl DirectionBuilder {
    /// Allows `ports` with every peer (a rule without `from` / `to`).
    pub fn any_peer(&mut self, ports: &Ports) -> &mut Self {
        self.any_peer = self.any_peer.union(ports);
        self
    }

    /// Allows `ports` with the peer at `addr` (a pod a selector picked).
    pub fn peer(&mut self, addr: Ipv4Addr, ports: &Ports) -> &mut Self {
        self.peers.push((u32::from(addr), ports.clone()));
        self
    }

    /// Allows `ports` with the addresses of `cidr` outside every `except`.
    pub fn block(&mut self, cidr: Ipv4Prefix, except: &[Ipv4Prefix], ports: &Ports) -> &mut Self {
        self.blocks.push(Block { cidr, except: except.into(), ports: ports.clone() });
        self
    }

    /// Adds every rule of `other` (the union of two rule sets).
    pub fn merge(&mut self, other: &DirectionBuilder) -> &mut Self {
        self.any_peer = self.any_peer.union(&other.any_peer);
        self.peers.extend(other.peers.iter().cloned());
        self.blocks.extend(other.blocks.iter().cloned());
        self
    }

    /// The compiled rules.
    pub fn build(&self) -> DirectionRules {
        DirectionRules {
            any_peer: self.any_peer.clone(),
            peers: AddrMap::build(&self.peers),
            blocks: BlockSet::build(&self.blocks),
        }
    }
}

impl DirectionRules {
    /// Nothing allowed: the pod is isolated and no rule lets anything through.
    pub fn deny_all() -> Self {
        DirectionRules::default()
    }

    /// Whether traffic with `peer` of `proto` to port `port` (the destination port) is allowed.
    #[inline]
    pub fn allows(&self, peer: u32, proto: u8, port: u16) -> bool {
        self.any_peer.matches(proto, port)
            || self.peers.get(peer).is_some_and(|p| p.matches(proto, port))
            || self.blocks.get(peer).is_some_and(|p| p.matches(proto, port))
    }
}

/// The policy of one local pod: for each direction, `None` when no policy isolates it in that
/// direction (everything allowed), else what its policies allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodPolicy {
    /// Ingress: who may open connections to the pod.
    pub ingress: Option<DirectionRules>,
    /// Egress: whom the pod may open connections to.
    pub egress: Option<DirectionRules>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: [u8; 4], len: u8) -> Ipv4Prefix {
        Ipv4Prefix::new(Ipv4Addr::from(a), len).unwrap()
    }

    #[test]
    fn port_ranges_match_their_protocol_and_bounds_only() {
        let ports =
            Ports::ranges([PortRange { proto: proto::TCP, lo: 80, hi: 90 }, PortRange::one(proto::UDP, 53)]);
        assert!(ports.matches(proto::TCP, 80) && ports.matches(proto::TCP, 90));
        assert!(!ports.matches(proto::TCP, 79) && !ports.matches(proto::TCP, 91));
        assert!(ports.matches(proto::UDP, 53) && !ports.matches(proto::TCP, 53));
        assert!(!ports.matches(proto::ICMP, 0));
        assert!(Ports::All.matches(proto::ICMP, 0));
        assert!(!Ports::None.matches(proto::TCP, 80));
        assert_eq!(Ports::None.union(&ports), ports);
        assert_eq!(ports.union(&Ports::All), Ports::All);
    }

    #[test]
    fn peers_get_the_union_of_the_ports_of_every_rule_naming_them() {
        let a = Ipv4Addr::new(198, 19, 1, 2);
        let mut b = DirectionBuilder::default();
        b.peer(a, &Ports::ranges([PortRange::one(proto::TCP, 80)]));
        b.peer(a, &Ports::ranges([PortRange::one(proto::TCP, 81)]));
        let r = b.build();
        assert!(r.allows(u32::from(a), proto::TCP, 80) && r.allows(u32::from(a), proto::TCP, 81));
        assert!(!r.allows(u32::from(a), proto::TCP, 82));
        assert!(!r.allows(u32::from(Ipv4Addr::new(198, 19, 1, 3)), proto::TCP, 80));
        assert!(!DirectionRules::deny_all().allows(u32::from(a), proto::TCP, 80));
    }

    #[test]
    fn an_ip_block_allows_its_cidr_except_the_excepted_prefixes() {
        let mut b = DirectionBuilder::default();
        b.block(p([198, 19, 0, 0], 16), &[p([198, 19, 2, 0], 24)], &Ports::All);
        let r = b.build();
        assert!(r.allows(u32::from(Ipv4Addr::new(198, 19, 1, 9)), proto::UDP, 1));
        assert!(!r.allows(u32::from(Ipv4Addr::new(198, 19, 2, 9)), proto::UDP, 1));
        assert!(!r.allows(u32::from(Ipv4Addr::new(198, 18, 0, 1)), proto::UDP, 1));
    }

    #[test]
    fn a_rule_without_peers_allows_its_ports_from_everyone() {
        let mut b = DirectionBuilder::default();
        b.any_peer(&Ports::ranges([PortRange::all(proto::SCTP)]));
        let r = b.build();
        assert!(r.allows(7, proto::SCTP, 9) && !r.allows(7, proto::TCP, 9));
    }

    #[test]
    fn many_peers_are_all_found() {
        let mut b = DirectionBuilder::default();
        for i in 1..=1000u32 {
            b.peer(Ipv4Addr::from(0xc613_0000 + i), &Ports::All);
        }
        let r = b.build();
        assert!((1..=1000u32).all(|i| r.allows(0xc613_0000 + i, proto::TCP, 1)));
        assert!(!r.allows(0xc613_0000 + 1001, proto::TCP, 1));
    }
}
