//! Entropy for the outer UDP source port (RFC 7348 §5): a hash of the inner flow,
//! so that one flow keeps one underlay path and different flows spread over ECMP
//! links and receive queues (RSS).

use core::fmt;

use crate::wire::ethernet::{self, EtherType};
use crate::wire::ipv4::{self, IpProtocol};

/// An inclusive range of UDP source ports, validated to exclude 0.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SourcePortRange {
    min: u16,
    max: u16,
}

impl SourcePortRange {
    /// RFC 7348 §5 recommends the dynamic/private range.
    pub const DYNAMIC: SourcePortRange = SourcePortRange { min: 49152, max: 65535 };
    /// Linux's default `ip_local_port_range`, which its VXLAN device uses.
    pub const LINUX: SourcePortRange = SourcePortRange { min: 32768, max: 60999 };

    /// `None` when `min` is 0 or `min > max`.
    pub const fn try_new(min: u16, max: u16) -> Option<Self> {
        if min == 0 || min > max { None } else { Some(SourcePortRange { min, max }) }
    }
    pub const fn min(self) -> u16 {
        self.min
    }
    pub const fn max(self) -> u16 {
        self.max
    }

    /// Maps a 32-bit hash onto the range (multiply-shift, no division).
    #[inline]
    pub const fn pick(self, hash: u32) -> u16 {
        let span = (self.max - self.min) as u64 + 1;
        self.min + ((hash as u64 * span) >> 32) as u16
    }
}

impl Default for SourcePortRange {
    fn default() -> Self {
        Self::DYNAMIC
    }
}

impl fmt::Debug for SourcePortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

#[inline(always)]
fn mix(a: u64, b: u64) -> u32 {
    // Two rounds of a multiply-xorshift: cheap, and every input bit reaches the top
    // 32 bits that `pick` uses.
    let mut h = (a ^ b.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 31;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (h >> 32) as u32
}

/// Hash of the flow an Ethernet frame belongs to: IPv4 addresses and protocol,
/// plus the ports of TCP/UDP/SCTP when the packet is not a fragment. Frames that
/// are not IPv4 hash their MAC addresses and EtherType. Never fails, never panics.
#[inline]
pub fn ethernet_flow_hash(frame: &[u8]) -> u32 {
    if frame.len() >= ethernet::HEADER_LEN && u16::from_be_bytes([frame[12], frame[13]]) == EtherType::IPV4.0
    {
        ipv4_flow_hash(&frame[ethernet::HEADER_LEN..])
    } else {
        let mut w = [0u8; 16];
        let n = frame.len().min(14);
        w[..n].copy_from_slice(&frame[..n]);
        let x = u128::from_be_bytes(w);
        mix((x >> 64) as u64, x as u64)
    }
}

/// Hash of the flow of an IPv4 packet (see [`ethernet_flow_hash`]).
#[inline]
pub fn ipv4_flow_hash(ip: &[u8]) -> u32 {
    if ip.len() < ipv4::HEADER_LEN {
        return mix(ip.len() as u64, 0);
    }
    let addrs = u64::from_be_bytes([ip[12], ip[13], ip[14], ip[15], ip[16], ip[17], ip[18], ip[19]]);
    let proto = ip[9];
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let unfragmented = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff == 0;
    let ported = matches!(IpProtocol(proto), IpProtocol::TCP | IpProtocol::UDP | IpProtocol::SCTP);
    let ports = if unfragmented && ported && hl >= ipv4::HEADER_LEN && ip.len() >= hl + 4 {
        u32::from_be_bytes([ip[hl], ip[hl + 1], ip[hl + 2], ip[hl + 3]])
    } else {
        0
    };
    mix(addrs, (u64::from(proto) << 32) | u64::from(ports))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(src_port: u16) -> [u8; 42] {
        let mut f = [0u8; 42];
        f[12] = 0x08;
        f[14] = 0x45;
        f[23] = 17;
        f[26..30].copy_from_slice(&[198, 19, 1, 2]);
        f[30..34].copy_from_slice(&[198, 19, 2, 2]);
        f[34..36].copy_from_slice(&src_port.to_be_bytes());
        f[36..38].copy_from_slice(&5201u16.to_be_bytes());
        f
    }

    #[test]
    fn the_same_flow_always_gets_the_same_port_and_ports_are_never_zero() {
        let r = SourcePortRange::default();
        assert_eq!(r.pick(ethernet_flow_hash(&udp(1000))), r.pick(ethernet_flow_hash(&udp(1000))));
        for h in [0u32, 1, u32::MAX, 0x8000_0000] {
            let p = r.pick(h);
            assert!(p >= r.min() && p <= r.max() && p != 0);
        }
        let one = SourcePortRange::try_new(7, 7).unwrap();
        assert_eq!((one.pick(0), one.pick(u32::MAX)), (7, 7));
    }

    #[test]
    fn different_flows_spread_over_the_range() {
        let r = SourcePortRange::default();
        let mut buckets = [0u32; 16];
        for p in 0..16_000u16 {
            let port = r.pick(ethernet_flow_hash(&udp(p)));
            buckets[usize::from((port - r.min()) / 1024)] += 1;
        }
        // 1000 expected per bucket; a poor hash would leave some nearly empty.
        assert!(buckets.iter().all(|&b| (700..1300).contains(&b)), "{buckets:?}");
    }

    #[test]
    fn fragments_hash_without_ports() {
        let mut a = udp(1);
        let mut b = udp(2);
        for f in [&mut a, &mut b] {
            f[20] = 0x20; // MF
        }
        assert_eq!(ethernet_flow_hash(&a), ethernet_flow_hash(&b));
    }

    #[test]
    fn zero_and_inverted_ranges_are_refused() {
        assert!(SourcePortRange::try_new(0, 10).is_none());
        assert!(SourcePortRange::try_new(10, 9).is_none());
    }

    #[test]
    fn any_garbage_hashes_without_panicking() {
        for n in 0..64 {
            let buf = [0x45u8; 64];
            let _ = ethernet_flow_hash(&buf[..n]);
            let _ = ipv4_flow_hash(&buf[..n]);
        }
    }
}
