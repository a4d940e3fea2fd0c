//! Kubernetes NetworkPolicy in the data plane: compiled per-pod rules and a per-worker
//! connection table, consulted first.
//!
//! The control side compiles the policies, the endpoints and the namespaces into a
//! [`PolicySet`]: for each local pod that some policy isolates, what its ingress and egress allow
//! ([`PodPolicy`], peers as hashed address sets, `ipBlock`s as one hash table per prefix length,
//! ports as ranges).
//! It publishes a new set whole with one `ArcSwap` store ([`SharedPolicy`]); each worker loads it
//! once per batch, so a packet sees the old set or the new one, never half of either.
//!
//! Each worker's pipeline holds an [`Enforcer`]: the worker's [`ConnTable`] and its clock. For a
//! packet from a local pod (its egress) and for a packet delivered to a local pod (its ingress),
//! the pipeline asks [`Enforcer::check`]:
//! 1. if neither end is a pod the set isolates (in any direction), the packet passes untracked:
//!    no rule of this node can refuse it or its replies;
//! 2. a tracked connection (either direction) passes, and so does an ICMP error about one;
//! 3. otherwise the connection is new: the source pod's egress rules (when the source is a local
//!    pod sending from this worker) and the destination pod's ingress rules (when the
//!    destination is a local pod this worker delivers to) must both allow it; it is then
//!    tracked, and its replies pass by step 2.
//!
//! Refusals are the drops `policy_denied_egress` and `policy_denied_ingress`; tracked connections
//! and evictions are the path counters `conntrack_new` and `conntrack_evictions`. Traffic between
//! a pod and its own node (the host link's address, the PublicIP) never reaches the check: the
//! Kubernetes documentation keeps it allowed so that kubelet probes work.
//!
//! Both directions of a connection meet the same table because every frame to or from a pod is
//! processed by the worker that owns the pod's port (frames for a pod arriving at other workers
//! are handed to it, and its ingress is checked there).

mod blocks;
mod conntrack;
mod flow;
mod rules;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

pub use conntrack::{ConnTable, Inserted, Timeouts, WAYS};
pub use flow::{Flow, Packet, TcpEnd};
pub use rules::{DirectionBuilder, DirectionRules, PodPolicy, PortRange, Ports, proto};

use crate::pipeline::{PathCounter, PathCounts};
use crate::worker::DropReason;

/// Flows each worker's connection table holds at most.
pub const CONNTRACK_CAPACITY: usize = 1 << 16;

/// A hasher for IPv4 addresses (the set's keys): one multiply, no per-process seed.
#[derive(Debug, Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.0 = (u64::from(i) ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 29;
    }
}

/// The policy of every local pod some policy isolates; pods not in it are isolated in neither
/// direction. Immutable once published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySet {
    pods: HashMap<u32, PodPolicy, BuildHasherDefault<AddrHasher>>,
}

impl PolicySet {
    /// A set from the isolated pods' policies (a pod given twice keeps the last).
    pub fn new(pods: impl IntoIterator<Item = (Ipv4Addr, PodPolicy)>) -> Self {
        PolicySet { pods: pods.into_iter().map(|(ip, p)| (u32::from(ip), p)).collect() }
    }

    /// The policy of the pod at `addr`, if a policy isolates it.
    #[inline]
    pub fn pod(&self, addr: u32) -> Option<&PodPolicy> {
        if self.pods.is_empty() {
            return None;
        }
        self.pods.get(&addr)
    }

    /// Whether no pod is isolated (the pipeline then skips every check).
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Number of isolated pods.
    pub fn len(&self) -> usize {
        self.pods.len()
    }
}

/// The published policy set, shared by the control side (writer) and the workers (readers).
pub type SharedPolicy = Arc<ArcSwap<PolicySet>>;

/// A new shared handle holding the empty set (nothing isolated).
pub fn shared_policy() -> SharedPolicy {
    Arc::new(ArcSwap::from_pointee(PolicySet::default()))
}

/// A worker's side of the policy: its connection table and clock.
#[derive(Debug)]
pub struct Enforcer {
    table: ConnTable,
    base: Instant,
}

impl Default for Enforcer {
    fn default() -> Self {
        Enforcer::new(ConnTable::new(CONNTRACK_CAPACITY, Timeouts::default()))
    }
}

impl Enforcer {
    /// An enforcer over `table`.
    pub fn new(table: ConnTable) -> Self {
        Enforcer { table, base: Instant::now() }
    }

    /// The table's clock: whole seconds since the enforcer was made, from 1.
    #[inline]
    pub fn secs(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.base).as_secs()).unwrap_or(u32::MAX - 1) + 1
    }

    /// The connection table (status and tests).
    pub fn table(&self) -> &ConnTable {
        &self.table
    }

    /// Once per batch, before its checks: advances the table's sweep to `now` (from
    /// [`Enforcer::secs`]).
    #[inline]
    pub fn tick(&mut self, now: u32) {
        self.table.tick(now);
    }

    /// Loads the connection-table line of `pkt` when the check would read it (one end is a pod
    /// the set isolates); returns a word to fold into a value the caller keeps. A batch touches
    /// every packet first and checks them after, so the cache misses overlap.
    #[inline]
    pub fn touch(&self, set: &PolicySet, pkt: &Packet) -> u32 {
        let f = &pkt.flow;
        if set.pod(f.src).is_none() && set.pod(f.dst).is_none() {
            return 0;
        }
        self.table.touch(f)
    }

    /// Whether `pkt` may pass (see the module docs). `src_here`: its source is a local pod that
    /// sent it from this worker (its egress is checked); `dst_here`: this worker delivers it to
    /// the local pod at its destination (its ingress is checked). `now` from [`Enforcer::secs`].
    #[inline]
    pub fn check(
        &mut self,
        set: &PolicySet,
        pkt: &Packet,
        src_here: bool,
        dst_here: bool,
        now: u32,
        totals: &mut PathCounts,
    ) -> Result<(), DropReason> {
        let f = &pkt.flow;
        let src = if src_here { set.pod(f.src) } else { None };
        let dst = if dst_here { set.pod(f.dst) } else { None };
        if src.is_none() && dst.is_none() {
            return Ok(());
        }
        if self.table.hit(f, pkt.tcp, now) {
            return Ok(());
        }
        if let Some(r) = &pkt.related
            && self.table.contains(r, now)
        {
            return Ok(());
        }
        if let Some(e) = src.and_then(|p| p.egress.as_ref())
            && !e.allows(f.dst, f.proto, f.dport)
        {
            return Err(DropReason::PolicyDeniedEgress);
        }
        if let Some(i) = dst.and_then(|p| p.ingress.as_ref())
            && !i.allows(f.src, f.proto, f.dport)
        {
            return Err(DropReason::PolicyDeniedIngress);
        }
        totals.bump(PathCounter::ConntrackNew);
        if self.table.insert(f, pkt.tcp, now) == Inserted::Evicted {
            totals.bump(PathCounter::ConntrackEvictions);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u32 = 0xc613_0102;
    const B: u32 = 0xc613_0103;
    const C: u32 = 0xc613_0204;

    fn tcp(src: u32, sport: u16, dst: u32, dport: u16) -> Packet {
        Packet {
            flow: Flow { src, dst, proto: proto::TCP, sport, dport },
            related: None,
            tcp: TcpEnd::default(),
        }
    }

    fn reply(p: &Packet) -> Packet {
        let f = p.flow;
        Packet { flow: Flow { src: f.dst, dst: f.src, sport: f.dport, dport: f.sport, ..f }, ..*p }
    }

    /// B isolated for ingress: only A on TCP 80.
    fn set() -> PolicySet {
        let mut ing = DirectionBuilder::default();
        ing.peer(Ipv4Addr::from(A), &Ports::ranges([PortRange::one(proto::TCP, 80)]));
        PolicySet::new([(Ipv4Addr::from(B), PodPolicy { ingress: Some(ing.build()), egress: None })])
    }

    #[test]
    fn an_allowed_connection_is_tracked_and_its_replies_pass() {
        let (s, mut e, mut t) = (set(), Enforcer::default(), PathCounts::default());
        let p = tcp(A, 40000, B, 80);
        assert_eq!(e.check(&s, &p, true, true, 5, &mut t), Ok(()));
        assert_eq!(t.get(PathCounter::ConntrackNew), 1);
        assert_eq!(e.check(&s, &reply(&p), true, true, 6, &mut t), Ok(()));
        assert_eq!(e.check(&s, &p, true, true, 7, &mut t), Ok(()));
        assert_eq!(t.get(PathCounter::ConntrackNew), 1, "one connection");
    }

    #[test]
    fn a_new_connection_the_ingress_rules_do_not_allow_is_refused() {
        let (s, mut e, mut t) = (set(), Enforcer::default(), PathCounts::default());
        assert_eq!(
            e.check(&s, &tcp(A, 40000, B, 81), true, true, 5, &mut t),
            Err(DropReason::PolicyDeniedIngress)
        );
        assert_eq!(
            e.check(&s, &tcp(C, 40000, B, 80), false, true, 5, &mut t),
            Err(DropReason::PolicyDeniedIngress)
        );
        // Not delivered by this worker: its owner checks it.
        assert_eq!(e.check(&s, &tcp(C, 40000, B, 80), false, false, 5, &mut t), Ok(()));
        // B's own connection out (egress not isolated) is tracked, so its reply gets in.
        let out = tcp(B, 50000, C, 443);
        assert_eq!(e.check(&s, &out, true, false, 5, &mut t), Ok(()));
        assert_eq!(e.check(&s, &reply(&out), false, true, 6, &mut t), Ok(()));
    }

    #[test]
    fn egress_rules_refuse_what_they_do_not_allow() {
        let mut eg = DirectionBuilder::default();
        eg.any_peer(&Ports::ranges([PortRange { proto: proto::UDP, lo: 53, hi: 53 }]));
        let s = PolicySet::new([(Ipv4Addr::from(A), PodPolicy { ingress: None, egress: Some(eg.build()) })]);
        let (mut e, mut t) = (Enforcer::default(), PathCounts::default());
        assert_eq!(
            e.check(&s, &tcp(A, 1, C, 53), true, false, 1, &mut t),
            Err(DropReason::PolicyDeniedEgress)
        );
        let dns = Packet { flow: Flow { proto: proto::UDP, ..tcp(A, 1, C, 53).flow }, ..tcp(A, 1, C, 53) };
        assert_eq!(e.check(&s, &dns, true, false, 1, &mut t), Ok(()));
        // Traffic between unisolated pods is not even tracked.
        let before = t.get(PathCounter::ConntrackNew);
        assert_eq!(e.check(&s, &tcp(B, 1, C, 2), true, true, 1, &mut t), Ok(()));
        assert_eq!(t.get(PathCounter::ConntrackNew), before);
    }

    #[test]
    fn an_icmp_error_about_a_tracked_connection_passes_and_others_are_checked() {
        let (s, mut e, mut t) = (set(), Enforcer::default(), PathCounts::default());
        let p = tcp(A, 40000, B, 80);
        e.check(&s, &p, false, true, 5, &mut t).unwrap();
        let icmp = |related| Packet {
            flow: Flow { src: C, dst: B, proto: proto::ICMP, sport: 0, dport: 0 },
            related: Some(related),
            tcp: TcpEnd::default(),
        };
        assert_eq!(e.check(&s, &icmp(reply(&p).flow), false, true, 6, &mut t), Ok(()));
        let other = tcp(A, 40001, B, 80).flow;
        assert_eq!(e.check(&s, &icmp(other), false, true, 6, &mut t), Err(DropReason::PolicyDeniedIngress));
    }

    #[test]
    fn the_clock_starts_at_one() {
        let e = Enforcer::default();
        assert_eq!(e.secs(e.base), 1);
    }
}
