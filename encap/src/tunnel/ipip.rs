//! IP-in-IP encapsulation (RFC 2003) by template, and validating decapsulation.
//!
//! ```text
//! before: Ethernet (14) | inner IPv4 ...
//! after:  Ethernet (14) | outer IPv4 (20, protocol 4) | inner IPv4 ...
//! ```
//!
//! The inner Ethernet header is replaced by the outer Ethernet + IPv4 headers, so
//! encap needs 20 bytes of headroom; decap moves the Ethernet header forward over
//! the outer IPv4 header.

use core::net::Ipv4Addr;

use super::ecn;
use super::{
    DecapError, EncapError, OuterHeaders, OuterIpv4, Span, check_headroom, outer_ipv4, patch_outer_ipv4,
};
use crate::error::{Layer, Problem, malformed, need};
use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::get_u16;
use crate::wire::ipv4::{self, IpProtocol, Ipv4Packet};

/// Bytes IPIP adds to a frame.
pub const OVERHEAD: usize = ipv4::HEADER_LEN;
const OUTER_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;

/// Everything that defines the outer headers towards one remote node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpipParams {
    pub outer_src_mac: MacAddr,
    pub outer_dst_mac: MacAddr,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub ttl: u8,
    pub tos: u8,
    pub dont_frag: bool,
}

/// Prebuilt outer Ethernet + IPv4 headers towards one remote node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpipTemplate {
    params: IpipParams,
    /// Outer headers with total length, identification and checksum zero.
    outer: [u8; OUTER_LEN],
    /// Sum of the outer IPv4 header's fixed words.
    ip_sum: u32,
}

impl IpipTemplate {
    pub fn new(params: IpipParams) -> Self {
        let mut outer = [0u8; OUTER_LEN];
        let ip_sum = OuterHeaders {
            src_mac: params.outer_src_mac,
            dst_mac: params.outer_dst_mac,
            src_ip: params.src_ip,
            dst_ip: params.dst_ip,
            protocol: IpProtocol::IPIP,
            ttl: params.ttl,
            tos: params.tos,
            dont_frag: params.dont_frag,
        }
        .emit(&mut outer);
        IpipTemplate { params, outer, ip_sum }
    }

    pub const fn params(&self) -> &IpipParams {
        &self.params
    }

    /// Encapsulates the Ethernet/IPv4 frame at `span` in place. The outer packet
    /// carries exactly the inner IPv4 packet's `total_len` bytes (Ethernet padding
    /// is dropped). Returns the outer frame's span.
    #[inline]
    pub fn encap(&self, buf: &mut [u8], span: Span, ident: u16) -> Result<Span, EncapError> {
        check_headroom(buf.len(), span, OVERHEAD)?;
        let frame = &buf[span.start..span.end()];
        need(Layer::InnerEthernet, ethernet::HEADER_LEN, frame.len()).map_err(EncapError::Inner)?;
        if get_u16(frame, 12) != EtherType::IPV4.0 {
            return Err(EncapError::Inner(malformed(Layer::InnerEthernet, Problem::NotIpv4)));
        }
        let inner = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..])
            .map_err(|e| EncapError::Inner(e.at(Layer::InnerIpv4)))?;
        let ip_len = u16::try_from(ipv4::HEADER_LEN + usize::from(inner.total_len()))
            .map_err(|_| EncapError::TooLong)?;
        let ecn = ecn::encapsulate(inner.tos());

        let out = span.start - OVERHEAD;
        let frame = &mut buf[out..];
        frame[..OUTER_LEN].copy_from_slice(&self.outer);
        patch_outer_ipv4(frame, self.ip_sum, ip_len, ident, ecn);
        Ok(Span::new(out, ethernet::HEADER_LEN + usize::from(ip_len)))
    }
}

/// What a receiving node accepts as IPIP for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpipDecapConfig {
    /// Our PublicIP: the outer destination.
    pub local_ip: Ipv4Addr,
}

/// A decapsulated IPIP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpipDecapped {
    /// The inner packet behind a copy of the outer Ethernet header (rewrite its MACs).
    pub frame: Span,
    pub outer_src: Ipv4Addr,
    pub outer_src_mac: MacAddr,
    pub outer_tos: u8,
}

impl IpipDecapConfig {
    /// Validates the outer headers (untagged Ethernet, IPv4 with good checksum, not a
    /// fragment, protocol 4, to `local_ip`) and the inner IPv4 header's lengths, then
    /// moves the Ethernet header forward so the frame is Ethernet + inner IPv4.
    #[inline]
    pub fn decap(&self, buf: &mut [u8], span: Span) -> Result<IpipDecapped, DecapError> {
        let frame = buf.get(span.start..span.end()).ok_or(DecapError::NotTunnel)?;
        let OuterIpv4 { src_mac: outer_src_mac, ip: outer, .. } =
            outer_ipv4(frame, self.local_ip, IpProtocol::IPIP)?;
        let inner = Ipv4Packet::new_checked(outer.payload()).map_err(|e| e.at(Layer::InnerIpv4))?;
        let inner_len = usize::from(inner.total_len());
        let (outer_src, outer_tos) = (outer.src_addr(), outer.tos());
        let outer_hl = outer.header_len();

        let new_start = span.start + outer_hl;
        buf.copy_within(span.start..span.start + ethernet::HEADER_LEN, new_start);
        Ok(IpipDecapped {
            frame: Span::new(new_start, ethernet::HEADER_LEN + inner_len),
            outer_src,
            outer_src_mac,
            outer_tos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseError;
    use crate::wire::ethernet::{EthernetFrame, EthernetRepr};
    use crate::wire::ipv4::Ipv4Repr;

    const OUR_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x12, 0, 1]);
    const PEER_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x12, 0, 2]);
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn params() -> IpipParams {
        IpipParams {
            outer_src_mac: OUR_MAC,
            outer_dst_mac: PEER_MAC,
            src_ip: OUR_IP,
            dst_ip: PEER_IP,
            ttl: 64,
            tos: 0,
            dont_frag: true,
        }
    }

    /// A pod frame of a 60-byte IPv4 packet plus 4 bytes of Ethernet padding.
    fn pod_frame() -> ([u8; 512], Span) {
        let mut buf = [0u8; 512];
        let span = Span::new(64, 14 + 60 + 4);
        let f = &mut buf[span.start..span.end()];
        EthernetRepr {
            src: MacAddr([2, 0, 0, 0, 1, 2]),
            dst: MacAddr([2, 0, 0, 0, 1, 1]),
            ethertype: EtherType::IPV4,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
        Ipv4Repr {
            src: Ipv4Addr::new(198, 19, 1, 2),
            dst: Ipv4Addr::new(198, 19, 2, 2),
            protocol: IpProtocol::TCP,
            payload_len: 40,
            ttl: 63,
            tos: 0,
            ident: 5,
            dont_frag: true,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
        (buf, span)
    }

    #[test]
    fn encap_prepends_a_protocol_4_header_and_drops_padding() {
        let (mut buf, span) = pod_frame();
        let inner: [u8; 60] = buf[span.start + 14..span.start + 74].try_into().unwrap();
        let out = IpipTemplate::new(params()).encap(&mut buf, span, 0x1111).unwrap();
        assert_eq!(out, Span::new(44, 14 + 20 + 60));
        let f = &buf[out.start..out.end()];
        let eth = EthernetFrame::new_checked(f).unwrap();
        assert_eq!((eth.src_addr(), eth.dst_addr()), (OUR_MAC, PEER_MAC));
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.protocol(), ip.total_len(), ip.ident(), ip.dont_frag()),
            (IpProtocol::IPIP, 80, 0x1111, true)
        );
        assert_eq!(ip.payload(), &inner[..]);
    }

    #[test]
    fn encap_then_decap_returns_ethernet_and_the_inner_packet() {
        let (mut buf, span) = pod_frame();
        let inner: [u8; 60] = buf[span.start + 14..span.start + 74].try_into().unwrap();
        let out = IpipTemplate::new(params()).encap(&mut buf, span, 1).unwrap();
        let d = IpipDecapConfig { local_ip: PEER_IP }.decap(&mut buf, out).unwrap();
        assert_eq!(d.frame, Span::new(64, 74));
        assert_eq!((d.outer_src, d.outer_src_mac), (OUR_IP, OUR_MAC));
        let f = &buf[d.frame.start..d.frame.end()];
        assert_eq!(EthernetFrame::new_checked(f).unwrap().ethertype(), EtherType::IPV4);
        assert_eq!(&f[14..], &inner[..]);
    }

    #[test]
    fn encap_refuses_non_ipv4_and_broken_inner_headers() {
        let (mut buf, span) = pod_frame();
        let t = IpipTemplate::new(params());
        let mut arp = buf;
        arp[span.start + 13] = 0x06;
        assert_eq!(
            t.encap(&mut arp, span, 0),
            Err(EncapError::Inner(malformed(Layer::InnerEthernet, Problem::NotIpv4)))
        );
        buf[span.start + 14] = 0x55; // version 5
        assert_eq!(
            t.encap(&mut buf, span, 0),
            Err(EncapError::Inner(malformed(Layer::InnerIpv4, Problem::IpVersion)))
        );
        assert_eq!(
            t.encap(&mut buf, Span::new(19, 78), 0),
            Err(EncapError::NoHeadroom { need: 20, have: 19 })
        );
    }

    #[test]
    fn decap_rejects_other_destinations_protocols_and_bad_inner_headers() {
        let (mut buf, span) = pod_frame();
        let out = IpipTemplate::new(params()).encap(&mut buf, span, 1).unwrap();
        assert_eq!(
            IpipDecapConfig { local_ip: OUR_IP }.decap(&mut buf.clone(), out),
            Err(DecapError::NotTunnel)
        );
        let cfg = IpipDecapConfig { local_ip: PEER_IP };
        let mut b = buf;
        b[out.start + 34] = 0x35; // inner version 3
        assert_eq!(
            cfg.decap(&mut b, out),
            Err(DecapError::Parse(malformed(Layer::InnerIpv4, Problem::IpVersion)))
        );
        for len in 0..out.len {
            assert!(cfg.decap(&mut buf.clone(), Span::new(out.start, len)).is_err(), "len {len}");
        }
        let mut b = buf;
        b[out.start + 20] = 0x20; // MF on the outer header...
        let mut ip = Ipv4Packet::new_checked(&mut b[out.start + 14..out.end()]).unwrap();
        ip.fill_checksum(); // ...with a valid checksum
        assert_eq!(
            cfg.decap(&mut b, out),
            Err(DecapError::Parse(malformed(Layer::Ipv4, Problem::Ipv4Fragment)))
        );
        let e = cfg.decap(&mut buf.clone(), Span::new(out.start, 40)).unwrap_err();
        assert_eq!(e, DecapError::Parse(ParseError::Truncated { layer: Layer::Ipv4, need: 80, have: 26 }));
    }
}
