//! The per-worker connection table: flows the policy allowed, found again by either direction
//! before any rule is read.
//!
//! Fixed capacity, allocated when the worker's pipeline is built; the packet path only reads and
//! overwrites slots. The table is set-associative with two choices: a flow hashes to two buckets
//! of [`WAYS`] slots and goes into the first unless it is full; a bucket is one 64-byte cache
//! line, so a lookup costs one line, two for the few flows in their second bucket. A slot holds the flow's
//! key in a direction-independent form (the lower address/port end first, 13 bytes) and the
//! second it expires, as the low 24 bits of the table's clock; every packet of the flow pushes
//! the expiry out by its protocol's timeout ([`Timeouts`]). Inserting when both buckets' slots
//! are all live evicts the one closest to expiry, and says so (the pipeline counts
//! `conntrack_evictions`): an evicted flow is checked against the rules again at its next
//! packet, so an eviction costs a rule lookup, or a drop if the policy no longer allows that
//! direction to open the flow.
//!
//! The 24-bit expiry is compared with serial-number arithmetic (RFC 1982): a slot is live while
//! its expiry is less than 2^23 seconds ahead of the clock. That holds for every live slot
//! (timeouts are far shorter), and a dead slot must not look live again once the clock has gone
//! 2^23 seconds past it: [`ConnTable::tick`], called before the lookups of every batch, clears
//! every dead slot each time the clock enters a new 2^22-second epoch (once per 48 days), and
//! the whole table when 2^22 seconds (more than any timeout) passed since the last batch, so no
//! dead slot gets that old. `tick` also clears [`SWEEP_BUCKETS`] buckets' dead slots per call,
//! round-robin, which keeps [`ConnTable::entries`] (maintained in O(1)) close to the live count.
//!
//! Lookups of a batch overlap their cache misses: the pipeline calls [`ConnTable::touch`] for
//! every packet of the batch first, then checks them one by one.
//!
//! One writer and reader: the worker that owns it. A connection is tracked by the worker of the
//! local pod whose policy it passed, and every frame to or from a pod is processed by that pod's
//! worker (frames for it from other workers are handed to it), so both directions of a
//! connection meet the same table.

use super::flow::{Flow, TcpEnd};
use super::rules::proto;

/// Slots per bucket (one cache line).
pub const WAYS: usize = 4;

/// Buckets whose dead slots [`ConnTable::tick`] clears per call.
pub const SWEEP_BUCKETS: usize = 2;

/// The expiry's bits.
const EXPIRY_BITS: u32 = 24;
const EXPIRY_MASK: u32 = (1 << EXPIRY_BITS) - 1;
/// A slot is live while its expiry is less than this many seconds ahead.
const HALF: u32 = 1 << (EXPIRY_BITS - 1);
/// The full sweep's epoch: 2^22 seconds.
const EPOCH_SHIFT: u32 = EXPIRY_BITS - 2;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    /// The lower (address, port) end's address.
    lo: u32,
    /// The other end's address.
    hi: u32,
    /// The lower end's port << 16 | the other end's port.
    ports: u32,
    proto: u8,
}

impl Key {
    #[inline]
    fn of(f: &Flow) -> Self {
        let (a, b) = if (f.src, f.sport) <= (f.dst, f.dport) {
            ((f.src, f.sport), (f.dst, f.dport))
        } else {
            ((f.dst, f.dport), (f.src, f.sport))
        };
        Key { lo: a.0, hi: b.0, ports: u32::from(a.1) << 16 | u32::from(b.1), proto: f.proto }
    }

    #[inline]
    fn hash(self) -> u64 {
        // splitmix64's finaliser over both words.
        let k0 = u64::from(self.lo) << 32 | u64::from(self.hi);
        let k1 = u64::from(self.proto) << 32 | u64::from(self.ports);
        let mut z = k0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k1.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One tracked flow: 16 bytes, four to a cache line.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    lo: u32,
    hi: u32,
    ports: u32,
    /// The protocol << 24 | the expiry's low 24 bits; expiry 0: empty.
    meta: u32,
}

impl Slot {
    #[inline]
    fn new(key: Key, expires: u32) -> Self {
        let e = expires & EXPIRY_MASK;
        // 0 marks an empty slot: such an expiry is moved one second later.
        let e = if e == 0 { 1 } else { e };
        Slot { lo: key.lo, hi: key.hi, ports: key.ports, meta: u32::from(key.proto) << EXPIRY_BITS | e }
    }

    #[inline]
    fn expiry(&self) -> u32 {
        self.meta & EXPIRY_MASK
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.expiry() == 0
    }

    /// Seconds it has left at `now` (serial arithmetic), 0 when dead or empty.
    #[inline]
    fn left(&self, now: u32) -> u32 {
        let d = self.expiry().wrapping_sub(now) & EXPIRY_MASK;
        if self.is_empty() || d >= HALF { 0 } else { d }
    }

    #[inline]
    fn is(&self, key: Key) -> bool {
        self.lo == key.lo
            && self.hi == key.hi
            && self.ports == key.ports
            && self.meta >> EXPIRY_BITS == u32::from(key.proto)
    }
}

/// One bucket: a cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket([Slot; WAYS]);

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
    buckets: Box<[Bucket]>,
    /// Buckets - 1 (buckets are a power of two).
    mask: usize,
    timeouts: Timeouts,
    /// Slots holding a flow (live, or dead and not yet cleared or reused).
    entries: usize,
    /// The next bucket the per-tick sweep clears.
    cursor: usize,
    /// The clock's epoch at the last full sweep.
    epoch: u32,
    /// The clock at the last tick.
    last: u32,
}

impl ConnTable {
    /// A table of at least `capacity` flows (rounded up to a power of two, at least [`WAYS`]).
    /// Timeouts are capped at 2^22 seconds (48 days).
    pub fn new(capacity: usize, timeouts: Timeouts) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        let cap = |t: u32| t.min(1 << EPOCH_SHIFT);
        let timeouts = Timeouts {
            tcp: cap(timeouts.tcp),
            tcp_fin: cap(timeouts.tcp_fin),
            tcp_rst: cap(timeouts.tcp_rst),
            udp: cap(timeouts.udp),
            icmp: cap(timeouts.icmp),
            other: cap(timeouts.other),
        };
        ConnTable {
            buckets: vec![Bucket::default(); buckets].into_boxed_slice(),
            mask: buckets - 1,
            timeouts,
            entries: 0,
            cursor: 0,
            epoch: 0,
            last: 0,
        }
    }

    /// How many flows it holds at most.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Slots holding a flow: the live ones, plus dead ones the sweep has not cleared yet (at
    /// most [`SWEEP_BUCKETS`] buckets per batch). O(1).
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Live flows at second `now` (walks the table: for tests, not the packet path).
    pub fn live(&self, now: u32) -> usize {
        self.buckets.iter().flat_map(|b| b.0.iter()).filter(|s| s.left(now) > 0).count()
    }

    /// The flow's two buckets: its first choice and the one it goes to when the first is full.
    #[inline]
    fn index(&self, key: Key) -> (usize, usize) {
        let h = key.hash();
        ((h as usize) & self.mask, ((h >> 32) as usize) & self.mask)
    }

    /// The slot holding `key` live at `now`, as (bucket, way).
    #[inline]
    fn find(&self, key: Key, now: u32) -> Option<(usize, usize)> {
        let (b1, b2) = self.index(key);
        for b in [b1, b2] {
            if let Some(w) = self.buckets[b].0.iter().position(|s| s.is(key) && s.left(now) > 0) {
                return Some((b, w));
            }
        }
        None
    }

    /// Clears the dead slots of bucket `b`.
    fn sweep(&mut self, b: usize, now: u32) {
        for s in self.buckets[b].0.iter_mut() {
            if !s.is_empty() && s.left(now) == 0 {
                *s = Slot::default();
                self.entries -= 1;
            }
        }
    }

    /// Once per batch, before its lookups, with the batch's clock: clears [`SWEEP_BUCKETS`]
    /// buckets' dead slots, and every dead slot when `now` starts a new epoch (module docs).
    pub fn tick(&mut self, now: u32) {
        let idle = now.wrapping_sub(self.last);
        self.last = now;
        if idle >= 1 << EPOCH_SHIFT {
            // Longer than any timeout since the last batch: every flow is dead, and the oldest
            // may be too old for its expiry's 24 bits to say so.
            self.epoch = now >> EPOCH_SHIFT;
            self.clear();
            return;
        }
        if now >> EPOCH_SHIFT != self.epoch {
            self.epoch = now >> EPOCH_SHIFT;
            for b in 0..self.buckets.len() {
                self.sweep(b, now);
            }
            return;
        }
        for _ in 0..SWEEP_BUCKETS {
            let b = self.cursor;
            self.cursor = (b + 1) & self.mask;
            self.sweep(b, now);
        }
    }

    /// Reads the bucket of `flow` (either direction) so that a check of it soon after finds the
    /// line in cache; returns a word of it for the caller to fold into a value it keeps (so the
    /// load is not optimised away). A batch touches all its flows first: the misses overlap.
    #[inline]
    pub fn touch(&self, flow: &Flow) -> u32 {
        self.buckets[self.index(Key::of(flow)).0].0[0].meta
    }

    /// Whether `flow` (either direction) is tracked and live at second `now`; if so its expiry
    /// is pushed out by its protocol's timeout (`tcp`: the packet's FIN/RST).
    #[inline]
    pub fn hit(&mut self, flow: &Flow, tcp: TcpEnd, now: u32) -> bool {
        let key = Key::of(flow);
        let Some((b, w)) = self.find(key, now) else { return false };
        let life = self.timeouts.of(flow.proto, tcp);
        self.buckets[b].0[w] = Slot::new(key, now.wrapping_add(life));
        true
    }

    /// Whether `flow` (either direction) is tracked and live at second `now`, without refreshing
    /// it (an ICMP error about the flow is no sign of life).
    #[inline]
    pub fn contains(&self, flow: &Flow, now: u32) -> bool {
        self.find(Key::of(flow), now).is_some()
    }

    /// Tracks `flow` from second `now`: in its slot if it has one, else in a free or dead slot of
    /// its first bucket, then of its second (two choices keep buckets from overflowing while the
    /// table has room), else over the live flow of either bucket closest to expiry.
    #[inline]
    pub fn insert(&mut self, flow: &Flow, tcp: TcpEnd, now: u32) -> Inserted {
        let key = Key::of(flow);
        let slot = Slot::new(key, now.wrapping_add(self.timeouts.of(flow.proto, tcp)));
        if let Some((b, w)) = self.find(key, now) {
            self.buckets[b].0[w] = slot;
            return Inserted::Free;
        }
        let (b1, b2) = self.index(key);
        for b in [b1, b2] {
            if let Some(s) = self.buckets[b].0.iter_mut().find(|s| s.left(now) == 0) {
                if s.is_empty() {
                    self.entries += 1;
                }
                *s = slot;
                return Inserted::Free;
            }
        }
        // Every slot of both is live: the one closest to expiry goes.
        let mut victim = (b1, 0);
        for b in [b1, b2] {
            for (w, s) in self.buckets[b].0.iter().enumerate() {
                if s.left(now) < self.buckets[victim.0].0[victim.1].left(now) {
                    victim = (b, w);
                }
            }
        }
        self.buckets[victim.0].0[victim.1] = slot;
        Inserted::Evicted
    }

    /// Forgets every flow (a policy change that must not let old connections through is not
    /// what NetworkPolicy asks; this is for tests and for a pod detached from the worker).
    pub fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
        self.entries = 0;
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

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn entries_are_counted_as_flows_come_and_the_sweep_clears_dead_ones() {
        let to = Timeouts { udp: 5, ..Timeouts::default() };
        let mut t = ConnTable::new(16, to);
        for i in 0..3 {
            t.insert(&udp(1, i, 2, 9), TcpEnd::default(), 10);
        }
        t.insert(&udp(1, 0, 2, 9), TcpEnd::default(), 11);
        assert_eq!(t.entries(), 3, "a flow inserted again is one entry");
        for _ in 0..t.capacity() {
            t.tick(12);
        }
        assert_eq!(t.entries(), 3, "live flows stay");
        for _ in 0..t.capacity() {
            t.tick(100);
        }
        assert_eq!((t.entries(), t.live(100)), (0, 0), "dead ones are cleared");
    }

    #[test]
    fn the_expiry_survives_the_clock_passing_its_24_bits() {
        let mut t = ConnTable::new(64, Timeouts::default());
        let f = udp(1, 1, 2, 2);
        let now = (1 << 24) - 10;
        t.tick(now);
        t.insert(&f, TcpEnd::default(), now);
        assert!(t.hit(&f, TcpEnd::default(), now + 100), "alive across the wrap");
        assert!(!t.contains(&f, now + 100 + 120), "and dead after its timeout");
    }

    #[test]
    fn a_long_idle_clock_finds_no_dead_flow_alive() {
        let mut t = ConnTable::new(64, Timeouts::default());
        let f = udp(1, 1, 2, 2);
        t.insert(&f, TcpEnd::default(), 10);
        // 2^24 seconds later the stored expiry's 24 bits look 120 s ahead again; the epoch's
        // sweep, which runs before any lookup of a batch, cleared it.
        let later = 10 + (1 << 24);
        t.tick(later);
        assert!(!t.contains(&f, later));
        assert_eq!(t.entries(), 0);
    }

    #[test]
    fn two_choices_keep_a_sixth_full_table_free_of_evictions() {
        let mut t = ConnTable::new(1 << 16, Timeouts::default());
        let evicted = (0..10_000u32)
            .filter(|&i| {
                let f = udp(0xc613_0102, 1024 + i as u16, 0xc613_0103 + i % 15, 5201);
                t.insert(&f, TcpEnd::default(), 1) == Inserted::Evicted
            })
            .count();
        assert_eq!(evicted, 0);
        assert_eq!((t.entries(), t.live(1)), (10_000, 10_000));
    }
}
