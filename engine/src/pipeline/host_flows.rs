//! Flows the node's kernel forwarded to pods, so that their replies go back through it.
//!
//! A packet that reaches a pod from the host link went through the kernel's stack, where
//! netfilter may have translated it (a kube-proxy DNAT of a Service address to a pod, a NodePort
//! to a local pod). Its conntrack entry reverses the translation only if the reply goes through
//! the kernel too; a reply delivered straight to the client carries the wrong source address
//! and the client's stack drops it. So the worker that owns the host link records, for every
//! packet it forwards from the host link to a pod, the 5-tuple its reply will carry; every
//! worker checks a packet's 5-tuple before delivering it to a pod or sending it to a remote
//! node, and a packet that matches is handed to the host link instead (`exception_reply`): the
//! kernel reverses the translation and routes the result back to the pod through the host link.
//!
//! The table is direct-mapped and lossy: `SLOTS` atomics, each holding a 32-bit fingerprint of
//! the reply tuple and the second it was last refreshed. A slot is overwritten by whichever flow
//! hashes to it last, and an entry older than [`IDLE_SECS`] is ignored; every forward-direction
//! packet refreshes its entry. A false match (another flow with the same slot and fingerprint,
//! about one in 2^32 per live slot) only sends a packet through the kernel, which routes it
//! back. One writer (the worker that owns the host link), any number of readers, all Relaxed:
//! an entry is a routing hint, nothing else is published through it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use weft_encap::wire::ethernet::HEADER_LEN;

/// Slots in the table (a power of two).
const SLOTS: usize = 1 << 14;

/// Seconds without a forward-direction packet after which a flow's entry is ignored. The
/// kernel keeps an idle UDP stream 120 s (`nf_conntrack_udp_timeout_stream`); a TCP connection
/// idle longer than this whose server speaks first loses its entry (its client's next packet
/// restores it).
pub const IDLE_SECS: u32 = 600;

/// A packet's flow: addresses, protocol and ports (ICMP echo: the identifier as both ports;
/// other protocols and non-first fragments: no ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowKey {
    src: u32,
    dst: u32,
    proto: u8,
    sport: u16,
    dport: u16,
}

impl FlowKey {
    /// The flow of the Ethernet + IPv4 frame `d` (stage 1 validated its IPv4 header).
    #[inline]
    pub(crate) fn of(d: &[u8]) -> Option<Self> {
        let ip = d.get(HEADER_LEN..)?;
        let ihl = usize::from(ip.first()? & 0x0f) * 4;
        let word = |at: usize| ip.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let (src, dst, proto) = (word(12)?, word(16)?, *ip.get(9)?);
        let first_fragment = ip.get(6..8).is_some_and(|b| u16::from_be_bytes([b[0], b[1]]) & 0x1fff == 0);
        let l4 = ip.get(ihl..).filter(|_| first_fragment).unwrap_or(&[]);
        let be16 = |at: usize| l4.get(at..at + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        let (sport, dport) = match proto {
            // TCP, UDP, SCTP, UDP-Lite: ports first.
            6 | 17 | 132 | 136 => (be16(0), be16(2)),
            // ICMP echo request / reply: the identifier, the same both ways.
            1 if matches!(l4.first(), Some(0 | 8)) => (be16(4), be16(4)),
            _ => (0, 0),
        };
        Some(FlowKey { src, dst, proto, sport, dport })
    }

    /// The key of the packets answering this one.
    pub(crate) fn reversed(self) -> Self {
        FlowKey { src: self.dst, dst: self.src, proto: self.proto, sport: self.dport, dport: self.sport }
    }

    /// The source address.
    pub(crate) fn src(self) -> u32 {
        self.src
    }

    fn hash(self) -> u64 {
        // splitmix64's finaliser over the packed tuple: cheap and well mixed in every bit.
        let a = (u64::from(self.src) << 32 | u64::from(self.dst)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let b = u64::from(self.proto) << 32 | u64::from(self.sport) << 16 | u64::from(self.dport);
        let mut z = a ^ b.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The shared table (see the module docs).
#[derive(Debug)]
pub struct HostFlows {
    slots: Box<[AtomicU64]>,
    /// Set by the first learned flow: until then workers skip the lookups.
    live: AtomicBool,
    base: Instant,
}

impl Default for HostFlows {
    fn default() -> Self {
        HostFlows {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            live: AtomicBool::new(false),
            base: Instant::now(),
        }
    }
}

impl HostFlows {
    /// Whether any flow was ever learned (read once per batch).
    #[inline]
    pub(crate) fn live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// The table's clock: whole seconds since it was made, from 1.
    pub(crate) fn secs(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.base).as_secs()).unwrap_or(u32::MAX - 1) + 1
    }

    fn slot(&self, key: FlowKey) -> (&AtomicU64, u64) {
        let h = key.hash();
        // The low bits pick the slot, the high 32 bits (never 0) are the fingerprint.
        let fingerprint = (h >> 32) | 1;
        (&self.slots[h as usize & (SLOTS - 1)], fingerprint << 32)
    }

    /// Records that packets of flow `reply` belong to the kernel, at time `secs`.
    #[inline]
    pub(crate) fn learn(&self, reply: FlowKey, secs: u32) {
        let (slot, fp) = self.slot(reply);
        let entry = fp | u64::from(secs);
        if slot.load(Ordering::Relaxed) != entry {
            slot.store(entry, Ordering::Relaxed);
        }
        if !self.live.load(Ordering::Relaxed) {
            self.live.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a packet of flow `key` answers a flow the kernel forwarded in the last
    /// [`IDLE_SECS`] seconds before `secs`.
    #[inline]
    pub(crate) fn hit(&self, key: FlowKey, secs: u32) -> bool {
        let (slot, fp) = self.slot(key);
        let entry = slot.load(Ordering::Relaxed);
        entry & !0xffff_ffff == fp && secs.saturating_sub(entry as u32) <= IDLE_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20];
        f[14] = 0x45;
        f[23] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f.extend_from_slice(l4);
        f
    }

    #[test]
    fn a_reply_matches_the_reversed_key_of_what_the_kernel_forwarded() {
        let t = HostFlows::default();
        let req = FlowKey::of(&frame(6, [198, 19, 1, 2], [198, 19, 2, 7], &[0x9c, 0x40, 0, 80])).unwrap();
        let reply = FlowKey::of(&frame(6, [198, 19, 2, 7], [198, 19, 1, 2], &[0, 80, 0x9c, 0x40])).unwrap();
        assert!(!t.live());
        assert!(!t.hit(reply, 5));
        t.learn(req.reversed(), 5);
        assert!(t.live());
        assert!(t.hit(reply, 5));
        assert!(!t.hit(req, 5), "the forward direction itself is not a reply");
        assert!(t.hit(reply, 5 + IDLE_SECS));
        assert!(!t.hit(reply, 6 + IDLE_SECS), "idle entries expire");
    }

    #[test]
    fn icmp_echo_replies_match_by_identifier_and_other_ports_do_not() {
        let t = HostFlows::default();
        let echo =
            FlowKey::of(&frame(1, [10, 0, 0, 1], [10, 0, 0, 2], &[8, 0, 0, 0, 0x12, 0x34, 0, 1])).unwrap();
        t.learn(echo.reversed(), 1);
        let reply =
            FlowKey::of(&frame(1, [10, 0, 0, 2], [10, 0, 0, 1], &[0, 0, 0, 0, 0x12, 0x34, 0, 1])).unwrap();
        assert!(t.hit(reply, 1));
        let other =
            FlowKey::of(&frame(1, [10, 0, 0, 2], [10, 0, 0, 1], &[0, 0, 0, 0, 0x12, 0x35, 0, 1])).unwrap();
        assert!(!t.hit(other, 1));
        let udp = FlowKey::of(&frame(17, [10, 0, 0, 2], [10, 0, 0, 1], &[0, 53, 0x9c, 0x41])).unwrap();
        assert!(!t.hit(udp, 1));
    }

    #[test]
    fn truncated_frames_have_no_flow_and_missing_ports_read_as_zero() {
        assert_eq!(FlowKey::of(&[0u8; 20]), None);
        let k = FlowKey::of(&frame(17, [1, 1, 1, 1], [2, 2, 2, 2], &[0, 1])).unwrap();
        assert_eq!((k.sport, k.dport), (1, 0));
    }
}
