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
use weft_encap::wire::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use weft_encap::wire::ipv4::{self, IpProtocol, Ipv4Packet, Ipv4Repr};
use weft_encap::wire::udp::{self, UdpPacket, UdpRepr};

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
        let Ok(payload_len) = u16::try_from(udp::HEADER_LEN + payload) else { return false };
        if usize::from(payload_len) + ipv4::HEADER_LEN > usize::from(u16::MAX) {
            return false;
        }
        let (eth, rest) = h.split_at_mut(ethernet::HEADER_LEN);
        let (ip, udp_hdr) = rest.split_at_mut(ipv4::HEADER_LEN);
        EthernetRepr { src: self.src_mac, dst: self.dst_mac, ethertype: EtherType::IPV4 }
            .emit(&mut EthernetFrame::new_unchecked(eth));
        Ipv4Repr {
            src: self.src_ip,
            dst: self.dst_ip,
            protocol: IpProtocol::UDP,
            payload_len,
            ttl: 64,
            tos: 0,
            ident,
            dont_frag: false,
        }
        .emit(&mut Ipv4Packet::new_unchecked(ip));
        UdpRepr { src_port: self.src_port, dst_port: self.dst_port, payload_len: payload_len - 8 }
            .emit(&mut UdpPacket::new_unchecked(udp_hdr));
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
    let eth = EthernetFrame::new_checked(d).map_err(|_| Malformed)?;
    if eth.ethertype() != EtherType::IPV4 {
        return Err(Malformed);
    }
    let ip = Ipv4Packet::new_checked(&d[ethernet::HEADER_LEN..]).map_err(|_| Malformed)?;
    if ip.protocol() != IpProtocol::UDP {
        return Err(Malformed);
    }
    if ip.is_fragment() {
        return Err(Fragment);
    }
    let udp_at = ethernet::HEADER_LEN + ip.header_len();
    let datagram = UdpPacket::new_checked(ip.payload()).map_err(|_| Malformed)?;
    Ok(Datagram {
        dst_mac: eth.dst_addr(),
        src_mac: eth.src_addr(),
        src_ip: ip.src_addr(),
        dst_ip: ip.dst_addr(),
        src_port: datagram.src_port(),
        dst_port: datagram.dst_port(),
        payload_at: udp_at + udp::HEADER_LEN,
        payload_len: datagram.payload().len(),
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
    use weft_encap::checksum::checksum;

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
