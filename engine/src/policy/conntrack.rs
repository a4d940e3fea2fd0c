//! The per-worker connection table: flows the policy allowed, found again by either direction
//! before any rule is read.
//!
//! Fixed capacity, allocated when the worker's pipeline is built; the packet path only reads and
//! overwrites slots. The table is set-associative: a flow hashes to one bucket of [`WAYS`] slots.
//! A slot holds the flow's key in a direction-independent form (the lower address/port end
//! first) and the second it expires; every packet of the flow pushes the expiry out by its
//! protocol's timeout ([`Timeouts`]). Inserting into a bucket whose slots are all live evicts the
//! one closest to expiry, and says so (the pipeline counts `conntrack_evictions`): an evicted
//! flow is checked against the rules again at its next packet, so an eviction costs a rule
//! lookup, or a drop if the policy no longer allows that direction to open the flow.
//!
//! One writer and reader: the worker that owns it. A connection is tracked by the worker of the
//! local pod whose policy it passed, and every frame to or from a pod is processed by that pod's
//! worker (frames for it from other workers are handed to it), so both directions of a
//! connection meet the same table.

use super::flow::{Flow, TcpEnd};
use super::rules::proto;

/// Slots per bucket.
pub const WAYS: usize = 4;

/// Seconds a flow lives after its last packet, per protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP without FIN or RST seen.
    pub tcp: u32,
    /// TCP after a FIN.
    pub tcp_fin: u32,
    /// TCP after a RST.
    pub tcp_rst: u32,
    /// UDP.
    pub udp: u32,
    /// ICMP.
    pub icmp: u32,
    /// Every other protocol (SCTP included).
    pub other: u32,
}

impl Default for Timeouts {
    /// Close to Linux conntrack's: TCP established 1 h (Linux: 5 days; bounded tables prefer
    /// less), FIN 120 s, RST 10 s, UDP 120 s (a stream), ICMP 30 s, others 600 s.
    fn default() -> Self {
        Timeouts { tcp: 3600, tcp_fin: 120, tcp_rst: 10, udp: 120, icmp: 30, other: 600 }
    }
}

impl Timeouts {
    fn of(&self, p: u8, tcp: TcpEnd) -> u32 {
        match p {
            proto::TCP if tcp.rst => self.tcp_rst,
            proto::TCP if tcp.fin => self.tcp_fin,
            proto::TCP => self.tcp,
            proto::UDP => self.udp,
            proto::ICMP => self.icmp,
            _ => self.other,
        }
    }
}

/// A flow's direction-independent key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Key(u64, u64);

impl Key {
    fn of(f: &Flow) -> Self {
        let (a, b) = if (f.src, f.sport) <= (f.dst, f.dport) {
            ((f.src, f.sport), (f.dst, f.dport))
        } else {
            ((f.dst, f.dport), (f.src, f.sport))
        };
        Key(
            u64::from(a.0) << 32 | u64::from(b.0),
            u64::from(f.proto) << 32 | u64::from(a.1) << 16 | u64::from(b.1),
        )
    }

    fn hash(self) -> u64 {
        // splitmix64's finaliser over both words.
        let mut z = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.1.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: Key,
    /// The second it expires; 0: empty.
    expires: u32,
}

/// What [`ConnTable::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Into a free or expired slot.
    Free,
    /// Over a live flow (evicted).
    Evicted,
}

/// The table (see the module docs).
#[derive(Debug)]
pub struct ConnTable {
    slots: Box<[Slot]>,
    /// Buckets - 1 (buckets are a power of two).
    mask: usize,
    timeouts: Timeouts,
}

impl ConnTable {
    /// A table of at least `capacity` flows (rounded up to a power of two, at least [`WAYS`]).
    pub fn new(capacity: usize, timeouts: Timeouts) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        ConnTable {
            slots: vec![Slot::default(); buckets * WAYS].into_boxed_slice(),
            mask: buckets - 1,
            timeouts,
        }
    }

    /// How many flows it holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Live flows at second `now` (walks the table: for status, not the packet path).
    pub fn live(&self, now: u32) -> usize {
        self.slots.iter().filter(|s| s.expires > now).count()
    }

    fn bucket(&mut self, key: Key) -> &mut [Slot] {
        let b = (key.hash() as usize) & self.mask;
        &mut self.slots[b * WAYS..(b + 1) * WAYS]
    }

    /// Whether `flow` (either direction) is tracked and live at second `now`; if so its expiry
    /// is pushed out by its protocol's timeout (`tcp`: the packet's FIN/RST).
    #[inline]
    pub fn hit(&mut self, flow: &Flow, tcp: TcpEnd, now: u32) -> bool {
        let key = Key::of(flow);
        let life = self.timeouts.of(flow.proto, tcp);
        match self.bucket(key).iter_mut().find(|s| s.key == key && s.expires > now) {
            Some(s) => {
                s.expires = now.saturating_add(life);
                true
            }
            None => false,
        }
    }

    /// Whether `flow` (either direction) is tracked and live at second `now`, without refreshing
    /// it (an ICMP error about the flow is no sign of life).
    #[inline]
    pub fn contains(&mut self, flow: &Flow, now: u32) -> bool {
        let key = Key::of(flow);
        self.bucket(key).iter().any(|s| s.key == key && s.expires > now)
    }

    /// Tracks `flow` from second `now`.
    #[inline]
    pub fn insert(&mut self, flow: &Flow, tcp: TcpEnd, now: u32) -> Inserted {
        let key = Key::of(flow);
        let expires = now.saturating_add(self.timeouts.of(flow.proto, tcp)).max(1);
        let bucket = self.bucket(key);
        if let Some(s) = bucket.iter_mut().find(|s| s.key == key || s.expires <= now) {
            *s = Slot { key, expires };
            return Inserted::Free;
        }
        // Every slot is live: the one closest to expiry goes.
        let mut victim = 0;
        for (i, s) in bucket.iter().enumerate() {
            if s.expires < bucket[victim].expires {
                victim = i;
            }
        }
        bucket[victim] = Slot { key, expires };
        Inserted::Evicted
    }

    /// Forgets every flow (a policy change that must not let old connections through is not
    /// what NetworkPolicy asks; this is for tests and for a pod detached from the worker).
    pub fn clear(&mut self) {
        self.slots.fill(Slot::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(src: u32, sport: u16, dst: u32, dport: u16) -> Flow {
        Flow { src, dst, proto: proto::UDP, sport, dport }
    }

    fn reversed(f: Flow) -> Flow {
        Flow { src: f.dst, dst: f.src, proto: f.proto, sport: f.dport, dport: f.sport }
    }

    #[test]
    fn a_tracked_flow_is_found_from_either_direction() {
        let mut t = ConnTable::new(64, Timeouts::default());
        let f = udp(1, 40000, 2, 53);
        assert!(!t.hit(&f, TcpEnd::default(), 10));
        assert_eq!(t.insert(&f, TcpEnd::default(), 10), Inserted::Free);
        assert!(t.hit(&f, TcpEnd::default(), 11));
        assert!(t.hit(&reversed(f), TcpEnd::default(), 12));
        assert!(!t.hit(&udp(1, 40001, 2, 53), TcpEnd::default(), 12), "another source port");
        assert!(!t.hit(&Flow { proto: proto::TCP, ..f }, TcpEnd::default(), 12), "another protocol");
    }

    #[test]
    fn flows_expire_after_their_protocols_timeout_and_packets_refresh_them() {
        let to = Timeouts { udp: 5, tcp: 100, tcp_rst: 1, ..Timeouts::default() };
        let mut t = ConnTable::new(64, to);
        let f = udp(1, 1, 2, 2);
        t.insert(&f, TcpEnd::default(), 10);
        assert!(t.hit(&f, TcpEnd::default(), 14), "alive before 15, refreshed to 19");
        assert!(t.hit(&f, TcpEnd::default(), 18));
        assert!(!t.hit(&f, TcpEnd::default(), 23), "expired at 23");
        let c = Flow { proto: proto::TCP, ..f };
        t.insert(&c, TcpEnd::default(), 10);
        assert!(t.hit(&c, TcpEnd { rst: true, fin: false }, 50), "a RST shortens the timeout");
        assert!(!t.contains(&c, 51));
        assert_eq!(t.live(51), 0);
    }

    #[test]
    fn a_full_bucket_evicts_the_flow_closest_to_expiry_and_says_so() {
        let mut t = ConnTable::new(WAYS, Timeouts::default());
        assert_eq!(t.capacity(), WAYS);
        for i in 0..WAYS as u16 {
            assert_eq!(t.insert(&udp(1, i, 2, 9), TcpEnd::default(), 10 + u32::from(i)), Inserted::Free);
        }
        assert_eq!(t.insert(&udp(1, 99, 2, 9), TcpEnd::default(), 20), Inserted::Evicted);
        assert!(!t.contains(&udp(1, 0, 2, 9), 20), "the oldest went");
        assert!((1..WAYS as u16).all(|i| t.contains(&udp(1, i, 2, 9), 20)));
        assert!(t.contains(&udp(1, 99, 2, 9), 20));
        // Expired slots are reused without an eviction.
        assert_eq!(t.insert(&udp(1, 100, 2, 9), TcpEnd::default(), 10_000), Inserted::Free);
        t.clear();
        assert_eq!(t.live(0), 0);
    }
}
