//! VXLAN encapsulation (RFC 7348) by template, and validating decapsulation.
//!
//! ```text
//! outer Ethernet (14) | outer IPv4 (20) | UDP (8) | VXLAN (8) | inner Ethernet frame
//! <------------------------- 50 bytes of overhead ----------->
//! ```
//!
//! On encap the inner Ethernet addresses are rewritten too: destination = the
//! remote node's VtepMAC, source = ours, as flannel's `flannel.1` device does.

use core::net::Ipv4Addr;

use super::ecn;
use super::flow_hash::{SourcePortRange, ethernet_flow_hash};
use super::{
    DecapError, EncapError, OuterHeaders, OuterIpv4, Span, check_headroom, outer_ipv4, patch_outer_ipv4,
};
use crate::checksum;
use crate::error::{Layer, need};
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::ipv4::{self, IpProtocol};
use crate::wire::udp::{self, UdpChecksumPolicy, UdpPacket, UdpRepr};
use crate::wire::vxlan::{self, Vni, VxlanPacket};
use crate::wire::{get_u16, put_u16};

/// Bytes VXLAN adds in front of the inner Ethernet frame.
pub const OVERHEAD: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;

// Offsets within the outer headers.
const IP: usize = ethernet::HEADER_LEN;
const UDP: usize = IP + ipv4::HEADER_LEN;
const UDP_SRC_PORT: usize = UDP;
const UDP_LEN: usize = UDP + 4;
const UDP_CHECKSUM: usize = UDP + 6;

/// Everything that defines the outer headers towards one remote node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanParams {
    /// Our uplink's MAC.
    pub outer_src_mac: MacAddr,
    /// The underlay next hop's MAC: the remote node on our L2 segment, or the gateway.
    pub outer_dst_mac: MacAddr,
    /// Our PublicIP.
    pub src_ip: Ipv4Addr,
    /// The remote node's PublicIP.
    pub dst_ip: Ipv4Addr,
    /// UDP destination port: 8472 for flannel and Linux, 4789 for Calico/IANA.
    pub dst_port: u16,
    pub vni: Vni,
    /// Our VtepMAC (inner source).
    pub inner_src_mac: MacAddr,
    /// The remote node's VtepMAC (inner destination).
    pub inner_dst_mac: MacAddr,
    pub ttl: u8,
    pub tos: u8,
    pub dont_frag: bool,
    /// Compute the outer UDP checksum; RFC 7348 allows zero, and zero is the default.
    pub udp_checksum: bool,
    pub src_ports: SourcePortRange,
}

impl VxlanParams {
    /// flannel's defaults (VNI 1, port 8472) for the given endpoints; TTL 64, no DF,
    /// no UDP checksum, as Linux's VXLAN device sends by default.
    pub fn flannel(
        outer_src_mac: MacAddr,
        outer_dst_mac: MacAddr,
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
        inner_src_mac: MacAddr,
        inner_dst_mac: MacAddr,
    ) -> Self {
        VxlanParams {
            outer_src_mac,
            outer_dst_mac,
            src_ip,
            dst_ip,
            dst_port: vxlan::PORT_LINUX,
            vni: Vni::FLANNEL,
            inner_src_mac,
            inner_dst_mac,
            ttl: 64,
            tos: 0,
            dont_frag: false,
            udp_checksum: false,
            src_ports: SourcePortRange::LINUX,
        }
    }
}

/// Prebuilt outer headers towards one remote node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanTemplate {
    params: VxlanParams,
    /// Outer Ethernet + IPv4 + UDP + VXLAN, with IPv4 total length, identification,
    /// checksum and UDP source port, length, checksum all zero.
    outer: [u8; OVERHEAD],
    /// Inner destination and source MAC, in wire order.
    inner_macs: [u8; 12],
    /// Sum of the outer IPv4 header's fixed words (the variable ones are zero).
    ip_sum: u32,
    /// Sum of the UDP pseudo-header's addresses and protocol plus the fixed UDP and
    /// VXLAN words; used only when `udp_checksum` is set.
    udp_sum: u32,
}

impl VxlanTemplate {
    pub fn new(params: VxlanParams) -> Self {
        let mut outer = [0u8; OVERHEAD];
        let ip_sum = OuterHeaders {
            src_mac: params.outer_src_mac,
            dst_mac: params.outer_dst_mac,
            src_ip: params.src_ip,
            dst_ip: params.dst_ip,
            protocol: IpProtocol::UDP,
            ttl: params.ttl,
            tos: params.tos,
            dont_frag: params.dont_frag,
        }
        .emit(&mut outer);
        UdpRepr { src_port: 0, dst_port: params.dst_port, payload_len: 0 }
            .emit(&mut UdpPacket::new_unchecked(&mut outer[UDP..]));
        put_u16(&mut outer, UDP_LEN, 0);
        VxlanPacket::new_unchecked(&mut outer[UDP + udp::HEADER_LEN..]).set_header(params.vni);

        let mut inner_macs = [0u8; 12];
        inner_macs[..6].copy_from_slice(&params.inner_dst_mac.0);
        inner_macs[6..].copy_from_slice(&params.inner_src_mac.0);
        let pseudo = checksum::pseudo_header(params.src_ip, params.dst_ip, IpProtocol::UDP.0, 0);
        let udp_sum = checksum::sum(pseudo, &outer[UDP..]);
        VxlanTemplate { params, outer, inner_macs, ip_sum, udp_sum }
    }

    pub const fn params(&self) -> &VxlanParams {
        &self.params
    }

    /// Encapsulates the Ethernet frame at `span` in place: writes the outer headers
    /// into the 50 bytes of headroom before it and rewrites its MAC addresses.
    /// `ident` is the outer IPv4 identification (a per-worker counter).
    /// Returns the span of the outer frame.
    #[inline]
    pub fn encap(&self, buf: &mut [u8], span: Span, ident: u16) -> Result<Span, EncapError> {
        check_headroom(buf.len(), span, OVERHEAD)?;
        need(Layer::InnerEthernet, ethernet::HEADER_LEN, span.len).map_err(EncapError::Inner)?;
        let ip_len = ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN + span.len;
        let ip_len = u16::try_from(ip_len).map_err(|_| EncapError::TooLong)?;
        let udp_len = ip_len - ipv4::HEADER_LEN as u16;
        let src_port = self.params.src_ports.pick(ethernet_flow_hash(&buf[span.start..span.end()]));
        let ecn = ecn::encapsulate(ecn::inner_ecn(&buf[span.start..span.end()]));

        buf[span.start..span.start + 12].copy_from_slice(&self.inner_macs);
        let out = span.start - OVERHEAD;
        let frame = &mut buf[out..span.end()];
        frame[..OVERHEAD].copy_from_slice(&self.outer);
        patch_outer_ipv4(frame, self.ip_sum, ip_len, ident, ecn);
        put_u16(frame, UDP_SRC_PORT, src_port);
        put_u16(frame, UDP_LEN, udp_len);
        if self.params.udp_checksum {
            // Pseudo-header length and UDP length field are the same value, counted twice.
            let acc = self.udp_sum + 2 * u32::from(udp_len) + u32::from(src_port);
            let acc = checksum::sum(acc, &frame[OVERHEAD..]);
            put_u16(frame, UDP_CHECKSUM, checksum::udp_on_wire(!checksum::fold(acc)));
        }
        Ok(Span::new(out, span.len + OVERHEAD))
    }
}

/// What a receiving node accepts as VXLAN for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanDecapConfig {
    /// Our PublicIP: the outer destination.
    pub local_ip: Ipv4Addr,
    pub port: u16,
    pub vni: Vni,
    pub udp_checksum: UdpChecksumPolicy,
}

/// A decapsulated VXLAN frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanDecapped {
    /// The inner Ethernet frame.
    pub inner: Span,
    /// The sending node's PublicIP (check it holds a lease).
    pub outer_src: Ipv4Addr,
    pub outer_src_mac: MacAddr,
    /// The outer DSCP/ECN byte (for ECN propagation).
    pub outer_tos: u8,
}

impl VxlanDecapConfig {
    /// Validates the outer headers of the frame at `span` — untagged Ethernet,
    /// IPv4 with a good header checksum, not a fragment, to `local_ip`, UDP to
    /// `port` with the checksum policy, VXLAN flags and VNI — and finds the inner
    /// Ethernet frame. Reads only; the caller moves its span.
    #[inline]
    pub fn decap(&self, buf: &[u8], span: Span) -> Result<VxlanDecapped, DecapError> {
        let frame = buf.get(span.start..span.end()).ok_or(DecapError::NotTunnel)?;
        let OuterIpv4 { l2_len, src_mac, ip } = outer_ipv4(frame, self.local_ip, IpProtocol::UDP)?;
        let udp = UdpPacket::new_checked(ip.payload())?;
        if udp.dst_port() != self.port {
            return Err(DecapError::NotTunnel);
        }
        udp.check_checksum(ip.src_addr(), self.local_ip, self.udp_checksum)?;
        let vx = VxlanPacket::new_checked(udp.payload())?;
        if vx.vni() != self.vni {
            return Err(DecapError::WrongVni { got: vx.vni().get() });
        }
        let inner_len = vx.payload().len();
        need(Layer::InnerEthernet, ethernet::HEADER_LEN, inner_len)?;
        let inner_start = span.start + l2_len + ip.header_len() + udp::HEADER_LEN + vxlan::HEADER_LEN;
        Ok(VxlanDecapped {
            inner: Span::new(inner_start, inner_len),
            outer_src: ip.src_addr(),
            outer_src_mac: src_mac,
            outer_tos: ip.tos(),
        })
    }
}

/// Reads the UDP source port of an encapsulated frame (tests and diagnostics).
pub fn outer_src_port(frame: &[u8]) -> Option<u16> {
    (frame.len() >= OVERHEAD).then(|| get_u16(frame, UDP_SRC_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ParseError, Problem, malformed};
    use crate::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr};
    use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr};

    const HEADROOM: usize = 128;
    const OUR_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x12, 0, 1]);
    const GW_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x12, 0, 2]);
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const OUR_VTEP: MacAddr = MacAddr([0x0a, 0x58, 0, 0, 0, 1]);
    const PEER_VTEP: MacAddr = MacAddr([0x0a, 0x58, 0, 0, 0, 2]);

    fn params() -> VxlanParams {
        VxlanParams::flannel(OUR_MAC, GW_MAC, OUR_IP, PEER_IP, OUR_VTEP, PEER_VTEP)
    }

    /// A 98-byte pod frame (ICMP-sized) at HEADROOM in a 2 KiB buffer.
    fn pod_frame() -> ([u8; 2048], Span) {
        let mut buf = [0u8; 2048];
        let span = Span::new(HEADROOM, 98);
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
            protocol: IpProtocol::ICMP,
            payload_len: 64,
            ttl: 63,
            tos: 0,
            ident: 1,
            dont_frag: true,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
        (buf, span)
    }

    fn decap_config() -> VxlanDecapConfig {
        VxlanDecapConfig {
            local_ip: PEER_IP,
            port: 8472,
            vni: Vni::FLANNEL,
            udp_checksum: UdpChecksumPolicy::Require,
        }
    }

    #[test]
    fn encap_writes_valid_outer_headers_and_rewrites_inner_macs() {
        let (mut buf, span) = pod_frame();
        let inner_ip: [u8; 84] = buf[span.start + 14..span.end()].try_into().unwrap();
        let t = VxlanTemplate::new(VxlanParams { udp_checksum: true, ..params() });
        let out = t.encap(&mut buf, span, 0x4242).unwrap();
        assert_eq!(out, Span::new(HEADROOM - 50, 148));
        let f = &buf[out.start..out.end()];
        let eth = EthernetFrame::new_checked(f).unwrap();
        assert_eq!((eth.src_addr(), eth.dst_addr(), eth.ethertype()), (OUR_MAC, GW_MAC, EtherType::IPV4));
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.total_len(), ip.ident(), ip.ttl(), ip.dont_frag()), (134, 0x4242, 64, false));
        assert_eq!((ip.src_addr(), ip.dst_addr()), (OUR_IP, PEER_IP));
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((udp.dst_port(), udp.len()), (8472, 114));
        assert!(
            SourcePortRange::LINUX.min() <= udp.src_port() && udp.src_port() <= SourcePortRange::LINUX.max()
        );
        assert_eq!(udp.check_checksum(OUR_IP, PEER_IP, UdpChecksumPolicy::Require), Ok(()));
        let vx = VxlanPacket::new_checked(udp.payload()).unwrap();
        assert_eq!(vx.vni(), Vni::FLANNEL);
        let inner = EthernetFrame::new_checked(vx.payload()).unwrap();
        assert_eq!((inner.dst_addr(), inner.src_addr()), (PEER_VTEP, OUR_VTEP));
        assert_eq!(&vx.payload()[14..], &inner_ip[..]);
    }

    #[test]
    fn the_checksum_is_zero_unless_enabled() {
        let (mut buf, span) = pod_frame();
        let out = VxlanTemplate::new(params()).encap(&mut buf, span, 0).unwrap();
        assert_eq!(get_u16(&buf[out.start..], UDP_CHECKSUM), 0);
    }

    #[test]
    fn encap_then_decap_returns_the_inner_frame() {
        for udp_checksum in [false, true] {
            let (mut buf, span) = pod_frame();
            let t = VxlanTemplate::new(VxlanParams { udp_checksum, ..params() });
            let out = t.encap(&mut buf, span, 9).unwrap();
            let policy =
                if udp_checksum { UdpChecksumPolicy::Require } else { UdpChecksumPolicy::VerifyIfPresent };
            let d = VxlanDecapConfig { udp_checksum: policy, ..decap_config() }.decap(&buf, out).unwrap();
            assert_eq!(d.inner, span);
            assert_eq!((d.outer_src, d.outer_src_mac), (OUR_IP, OUR_MAC));
        }
    }

    #[test]
    fn calico_parameters_are_carried() {
        let (mut buf, span) = pod_frame();
        let t = VxlanTemplate::new(VxlanParams { vni: Vni::CALICO, dst_port: vxlan::PORT_IANA, ..params() });
        let out = t.encap(&mut buf, span, 0).unwrap();
        let cfg = VxlanDecapConfig {
            vni: Vni::CALICO,
            port: 4789,
            udp_checksum: UdpChecksumPolicy::VerifyIfPresent,
            ..decap_config()
        };
        assert_eq!(cfg.decap(&buf, out).unwrap().inner, span);
        // flannel's decap config does not take Calico's port.
        let flannel = VxlanDecapConfig { udp_checksum: UdpChecksumPolicy::VerifyIfPresent, ..decap_config() };
        assert_eq!(flannel.decap(&buf, out), Err(DecapError::NotTunnel));
    }

    #[test]
    fn decap_names_what_is_wrong() {
        let (mut plain, span) = pod_frame();
        let out = VxlanTemplate::new(params()).encap(&mut plain, span, 0).unwrap();
        let cfg = VxlanDecapConfig { udp_checksum: UdpChecksumPolicy::VerifyIfPresent, ..decap_config() };
        let at = |off: usize| out.start + off;

        let mut b = plain;
        b[at(42)] = 0x0c; // a reserved flag beside I
        assert_eq!(
            cfg.decap(&b, out),
            Err(DecapError::Parse(malformed(Layer::Vxlan, Problem::VxlanReserved)))
        );
        let mut b = plain;
        b[at(42)] = 0x00; // I flag clear
        assert_eq!(cfg.decap(&b, out), Err(DecapError::Parse(malformed(Layer::Vxlan, Problem::VxlanNoVni))));
        let mut b = plain;
        b[at(24)] ^= 0xff; // outer IPv4 checksum
        assert_eq!(cfg.decap(&b, out), Err(DecapError::Parse(malformed(Layer::Ipv4, Problem::Ipv4Checksum))));
        let other = VxlanDecapConfig { local_ip: OUR_IP, ..cfg };
        assert_eq!(other.decap(&plain, out), Err(DecapError::NotTunnel));

        let (mut summed, span) = pod_frame();
        let out = VxlanTemplate::new(VxlanParams { udp_checksum: true, ..params() })
            .encap(&mut summed, span, 0)
            .unwrap();
        summed[out.start + 60] ^= 1; // an inner byte: breaks the UDP checksum
        assert_eq!(
            decap_config().decap(&summed, out),
            Err(DecapError::Parse(malformed(Layer::Udp, Problem::UdpChecksum)))
        );
    }

    #[test]
    fn wrong_vni_is_reported_with_the_vni_seen() {
        let (mut buf, span) = pod_frame();
        let out = VxlanTemplate::new(VxlanParams { vni: Vni::try_new(77).unwrap(), ..params() })
            .encap(&mut buf, span, 0)
            .unwrap();
        assert_eq!(
            VxlanDecapConfig { udp_checksum: UdpChecksumPolicy::VerifyIfPresent, ..decap_config() }
                .decap(&buf, out),
            Err(DecapError::WrongVni { got: 77 })
        );
    }

    #[test]
    fn truncation_at_every_offset_is_an_error_not_a_panic() {
        let (mut buf, span) = pod_frame();
        let out = VxlanTemplate::new(params()).encap(&mut buf, span, 0).unwrap();
        let cfg = VxlanDecapConfig { udp_checksum: UdpChecksumPolicy::VerifyIfPresent, ..decap_config() };
        for len in 0..out.len {
            let r = cfg.decap(&buf, Span::new(out.start, len));
            assert!(r.is_err(), "len {len} decapsulated");
        }
        // Cut inside the inner Ethernet header: truncated at the inner layer.
        let mut b = buf;
        // Shrink IP and UDP lengths so the inner frame is 10 bytes.
        let ip_len = (20 + 8 + 8 + 10) as u16;
        let mut ip = Ipv4Packet::new_checked(&mut b[out.start + 14..out.end()]).unwrap();
        ip.patch_total_len(ip_len);
        put_u16(&mut b, out.start + UDP_LEN, 26);
        assert_eq!(
            cfg.decap(&b, out),
            Err(DecapError::Parse(ParseError::Truncated { layer: Layer::InnerEthernet, need: 14, have: 10 }))
        );
    }

    #[test]
    fn encap_refuses_without_headroom_or_inner_header() {
        let (mut buf, _) = pod_frame();
        let t = VxlanTemplate::new(params());
        assert_eq!(
            t.encap(&mut buf, Span::new(49, 98), 0),
            Err(EncapError::NoHeadroom { need: 50, have: 49 })
        );
        assert_eq!(t.encap(&mut buf, Span::new(2000, 98), 0), Err(EncapError::OutOfBuffer));
        assert!(matches!(t.encap(&mut buf, Span::new(128, 13), 0), Err(EncapError::Inner(_))));
    }
}
