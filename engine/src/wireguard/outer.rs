//! The outer headers of WireGuard messages: Ethernet, IPv4 and UDP written in front of a
//! message, and the UDP datagram of a received frame found.
//!
//! ```text
//! | Ethernet 14 | IPv4 20 (no options) | UDP 8 | WireGuard message |
//! ```
//!
//! The IPv4 header carries TTL 64, no DF (WireGuard sends as the kernel's UDP does) and its
//! checksum; the UDP checksum is 0, which IPv4 allows: the message inside is authenticated
//! end to end.

use std::net::Ipv4Addr;

use weft_encap::MacAddr;
use weft_encap::checksum::checksum;

/// Bytes of Ethernet + IPv4 + UDP in front of a message.
pub(crate) const LEN: usize = 14 + 20 + 8;

/// The addresses of one outer header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outer {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
}

impl Outer {
    /// Writes the headers for a `payload`-byte message into `buf[..LEN]`; false when `buf` is
    /// shorter or the datagram would not fit an IPv4 packet.
    pub(crate) fn write(&self, buf: &mut [u8], payload: usize, ident: u16) -> bool {
        let Some(h) = buf.get_mut(..LEN) else { return false };
        let Ok(ip_len) = u16::try_from(20 + 8 + payload) else { return false };
        h[0..6].copy_from_slice(&self.dst_mac.0);
        h[6..12].copy_from_slice(&self.src_mac.0);
        h[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut h[14..34];
        ip[0] = 0x45;
        ip[1] = 0;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        ip[6..8].copy_from_slice(&[0, 0]);
        ip[8] = 64;
        ip[9] = 17;
        ip[10..12].copy_from_slice(&[0, 0]);
        ip[12..16].copy_from_slice(&self.src_ip.octets());
        ip[16..20].copy_from_slice(&self.dst_ip.octets());
        let sum = checksum(ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let udp = &mut h[34..42];
        udp[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        udp[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
        udp[6..8].copy_from_slice(&[0, 0]);
        true
    }
}

/// A received UDP datagram: who sent it and where its payload is in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Datagram {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Offset of the payload from the start of the frame's data.
    pub payload_at: usize,
    /// Payload length (the UDP length field's, minus 8).
    pub payload_len: usize,
}

/// Why a frame is no usable datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatagramError {
    /// Shorter than its headers or length fields say, or not UDP in untagged IPv4.
    Malformed,
    /// An IPv4 fragment (not reassembled).
    Fragment,
}

/// The UDP datagram of an untagged Ethernet + IPv4 frame whose IPv4 header was validated
/// (version, IHL, total length within the frame).
pub(crate) fn datagram(d: &[u8]) -> Result<Datagram, DatagramError> {
    use DatagramError::*;
    if d.len() < 14 + 20 || d[12..14] != [0x08, 0x00] || d[14] >> 4 != 4 || d[23] != 17 {
        return Err(Malformed);
    }
    let ihl = usize::from(d[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
    if u16::from_be_bytes([d[20], d[21]]) & 0x3fff != 0 {
        return Err(Fragment);
    }
    if ihl < 20 || total < ihl + 8 || 14 + total > d.len() {
        return Err(Malformed);
    }
    let udp = 14 + ihl;
    let udp_len = usize::from(u16::from_be_bytes([d[udp + 4], d[udp + 5]]));
    if udp_len < 8 || udp + udp_len > 14 + total {
        return Err(Malformed);
    }
    let mac = |at: usize| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&d[at..at + 6]);
        MacAddr(m)
    };
    let ip = |at: usize| Ipv4Addr::new(d[at], d[at + 1], d[at + 2], d[at + 3]);
    Ok(Datagram {
        dst_mac: mac(0),
        src_mac: mac(6),
        src_ip: ip(26),
        dst_ip: ip(30),
        src_port: u16::from_be_bytes([d[udp], d[udp + 1]]),
        dst_port: u16::from_be_bytes([d[udp + 2], d[udp + 3]]),
        payload_at: udp + 8,
        payload_len: udp_len - 8,
    })
}

/// The UDP destination port of an untagged Ethernet + IPv4 frame, when it is an unfragmented
/// UDP datagram (cheap: the uplink's classification asks it of every UDP frame to our address).
pub(crate) fn udp_dst_port(d: &[u8]) -> Option<u16> {
    let ihl = usize::from(*d.get(14)? & 0x0f) * 4;
    let at = 14 + ihl + 2;
    (*d.get(23)? == 17).then_some(())?;
    d.get(at..at + 2).map(|p| u16::from_be_bytes([p[0], p[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outer() -> Outer {
        Outer {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 18, 0, 2),
            src_port: 51820,
            dst_port: 51821,
        }
    }

    #[test]
    fn written_headers_parse_back_with_a_valid_ipv4_checksum() {
        let mut frame = [0u8; LEN + 32];
        assert!(outer().write(&mut frame, 32, 7));
        assert_eq!(checksum(&frame[14..34]), 0, "the header checksum verifies");
        let d = datagram(&frame).unwrap();
        assert_eq!((d.src_ip, d.dst_ip), (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)));
        assert_eq!((d.src_port, d.dst_port, d.payload_at, d.payload_len), (51820, 51821, LEN, 32));
        assert_eq!(udp_dst_port(&frame), Some(51821));
    }

    #[test]
    fn short_lying_and_fragmented_datagrams_are_refused() {
        let mut frame = [0u8; LEN + 32];
        assert!(outer().write(&mut frame, 32, 7));
        for cut in 0..LEN + 32 {
            assert!(datagram(&frame[..cut]).is_err(), "cut at {cut}");
            let _ = udp_dst_port(&frame[..cut]);
        }
        let mut lying = frame;
        lying[38..40].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(datagram(&lying), Err(DatagramError::Malformed));
        let mut fragment = frame;
        fragment[20] = 0x20;
        assert_eq!(datagram(&fragment), Err(DatagramError::Fragment));
        assert!(!outer().write(&mut [0u8; LEN - 1], 0, 0));
    }
}
