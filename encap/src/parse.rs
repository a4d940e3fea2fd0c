//! The parse chain: one call from raw frame bytes to the offsets and fields the
//! pipeline dispatches on. Each layer is validated by its wire view; the first
//! failure is returned with its layer.

use core::net::Ipv4Addr;

use crate::error::ParseError;
use crate::wire::arp::{ArpPacket, ArpRepr};
use crate::wire::ethernet::{EtherType, EthernetFrame, EthernetHeader, MacAddr, VlanPolicy};
use crate::wire::icmpv4::Icmpv4Packet;
use crate::wire::ipv4::{IpProtocol, Ipv4Packet};
use crate::wire::udp::{UdpChecksumPolicy, UdpPacket};

/// What the chain checks beyond lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    pub vlan: VlanPolicy,
    pub verify_ipv4_checksum: bool,
    pub udp_checksum: UdpChecksumPolicy,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            vlan: VlanPolicy::Reject,
            verify_ipv4_checksum: true,
            udp_checksum: UdpChecksumPolicy::VerifyIfPresent,
        }
    }
}

/// A parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedFrame {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub l2: EthernetHeader,
    pub l3: L3,
}

/// The network layer of a parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    Ipv4(Ipv4Info),
    Arp(ArpRepr),
    /// Any other EtherType: not an error, just not ours.
    Other(EtherType),
}

/// IPv4 header fields and where the transport starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Offset of the IPv4 header in the frame.
    pub offset: usize,
    pub header_len: usize,
    pub total_len: u16,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    pub ttl: u8,
    pub dont_frag: bool,
    /// MF set or non-zero offset: the transport header is not parsed.
    pub fragment: bool,
    pub l4: L4,
}

/// The transport layer of an unfragmented IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Udp {
        src_port: u16,
        dst_port: u16,
        len: u16,
    },
    Icmp {
        msg_type: u8,
        code: u8,
    },
    /// A protocol the chain does not look into, or a fragment.
    Opaque,
}

/// Parses Ethernet, then ARP or IPv4, then UDP or ICMP.
pub fn parse_frame(frame: &[u8], opts: &ParseOptions) -> Result<ParsedFrame, ParseError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let l2 = eth.header(opts.vlan)?;
    let rest = &frame[l2.header_len..];
    let l3 = match l2.ethertype {
        EtherType::IPV4 => L3::Ipv4(parse_ipv4(rest, l2.header_len, opts)?),
        EtherType::ARP => L3::Arp(ArpRepr::parse(&ArpPacket::new_checked(rest)?)?),
        other => L3::Other(other),
    };
    Ok(ParsedFrame { src_mac: eth.src_addr(), dst_mac: eth.dst_addr(), l2, l3 })
}

fn parse_ipv4(bytes: &[u8], offset: usize, opts: &ParseOptions) -> Result<Ipv4Info, ParseError> {
    let ip = Ipv4Packet::new_checked(bytes)?;
    if opts.verify_ipv4_checksum {
        ip.check_checksum()?;
    }
    let fragment = ip.is_fragment();
    let l4 = if fragment {
        L4::Opaque
    } else {
        match ip.protocol() {
            IpProtocol::UDP => {
                let udp = UdpPacket::new_checked(ip.payload())?;
                udp.check_checksum(ip.src_addr(), ip.dst_addr(), opts.udp_checksum)?;
                L4::Udp { src_port: udp.src_port(), dst_port: udp.dst_port(), len: udp.len() }
            }
            IpProtocol::ICMP => {
                let icmp = Icmpv4Packet::new_checked(ip.payload())?;
                L4::Icmp { msg_type: icmp.msg_type(), code: icmp.code() }
            }
            _ => L4::Opaque,
        }
    };
    Ok(Ipv4Info {
        offset,
        header_len: ip.header_len(),
        total_len: ip.total_len(),
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        protocol: ip.protocol(),
        ttl: ip.ttl(),
        dont_frag: ip.dont_frag(),
        fragment,
        l4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Layer, Problem, malformed};

    /// Ethernet + IPv4 (198.19.1.2 -> 198.19.2.2) + UDP 1234 -> 5678 with 4 payload bytes.
    fn udp_frame() -> [u8; 46] {
        let mut f = [0u8; 46];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 1, 2]);
        f[12] = 0x08;
        let ip = &mut f[14..];
        ip[..20]
            .copy_from_slice(&[0x45, 0, 0, 32, 0, 1, 0x40, 0, 64, 17, 0, 0, 198, 19, 1, 2, 198, 19, 2, 2]);
        let c = crate::checksum::checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip[20..28].copy_from_slice(&[0x04, 0xd2, 0x16, 0x2e, 0, 12, 0, 0]);
        ip[28..32].copy_from_slice(b"weft");
        f
    }

    #[test]
    fn a_udp_frame_parses_to_ports_and_addresses() {
        let p = parse_frame(&udp_frame(), &ParseOptions::default()).unwrap();
        let L3::Ipv4(ip) = p.l3 else { panic!("not ipv4: {p:?}") };
        assert_eq!((ip.offset, ip.header_len, ip.total_len, ip.ttl), (14, 20, 32, 64));
        assert_eq!(ip.l4, L4::Udp { src_port: 1234, dst_port: 5678, len: 12 });
    }

    #[test]
    fn truncation_at_every_offset_names_the_layer() {
        let f = udp_frame();
        for n in 0..f.len() {
            let e = parse_frame(&f[..n], &ParseOptions::default()).unwrap_err();
            let expect = match n {
                0..=13 => Layer::Ethernet,
                14..=45 => Layer::Ipv4, // total length 32 reaches to byte 46
                _ => unreachable!(),
            };
            assert_eq!(e.layer(), expect, "len {n}: {e}");
            assert!(e.is_truncated());
        }
    }

    #[test]
    fn a_bad_header_checksum_is_caught_unless_disabled() {
        let mut f = udp_frame();
        f[24] ^= 1;
        assert_eq!(
            parse_frame(&f, &ParseOptions::default()),
            Err(malformed(Layer::Ipv4, Problem::Ipv4Checksum))
        );
        let lax = ParseOptions { verify_ipv4_checksum: false, ..ParseOptions::default() };
        assert!(parse_frame(&f, &lax).is_ok());
    }

    #[test]
    fn fragments_are_parsed_without_transport() {
        let mut f = udp_frame();
        f[20] = 0x20; // MF
        let lax = ParseOptions { verify_ipv4_checksum: false, ..ParseOptions::default() };
        let L3::Ipv4(ip) = parse_frame(&f, &lax).unwrap().l3 else { panic!() };
        assert!(ip.fragment);
        assert_eq!(ip.l4, L4::Opaque);
    }

    #[test]
    fn other_ethertypes_are_not_errors() {
        let mut f = udp_frame();
        f[12] = 0x86;
        f[13] = 0xdd;
        assert_eq!(parse_frame(&f, &ParseOptions::default()).unwrap().l3, L3::Other(EtherType::IPV6));
    }
}
