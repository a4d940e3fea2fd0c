//! Property tests: whatever frame and parameters, encap followed by decap gives the
//! frame back (with the MAC rewrites the tunnel defines), and the outer headers
//! always carry valid checksums.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use weft_encap::tunnel::ecn;
use weft_encap::wire::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use weft_encap::wire::udp::UdpPacket;
use weft_encap::{
    IpipDecapConfig, IpipParams, IpipTemplate, MacAddr, SourcePortRange, Span, UdpChecksumPolicy, Vni,
    VxlanDecapConfig, VxlanParams, VxlanTemplate,
};

const HEADROOM: usize = 128;

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

prop_compose! {
    fn vxlan_params()(
        outer_src_mac in mac(), outer_dst_mac in mac(), src_ip in addr(), dst_ip in addr(),
        dst_port in 1u16.., vni in 0u32..=Vni::MAX, inner_src_mac in mac(), inner_dst_mac in mac(),
        ttl in 1u8.., tos in any::<u8>(), dont_frag in any::<bool>(), udp_checksum in any::<bool>(),
        (lo, span) in (1u16.., any::<u16>()),
    ) -> VxlanParams {
        VxlanParams {
            outer_src_mac, outer_dst_mac, src_ip, dst_ip, dst_port, vni: Vni::try_new(vni).unwrap(),
            inner_src_mac, inner_dst_mac, ttl, tos, dont_frag, udp_checksum,
            src_ports: SourcePortRange::try_new(lo, lo.saturating_add(span)).unwrap(),
        }
    }
}

/// Any Ethernet frame of 14..1600 bytes (VXLAN carries whatever it is given).
fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 14..1600)
}

/// A well-formed Ethernet + IPv4 frame (IPIP carries IPv4 only), maybe padded.
fn ipv4_frame() -> impl Strategy<Value = Vec<u8>> {
    (addr(), addr(), any::<u8>(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..1480), 0usize..8)
        .prop_map(|(src, dst, proto, tos, payload, pad)| {
            let mut f = vec![0u8; 14 + 20 + payload.len() + pad];
            f[12] = 0x08;
            Ipv4Repr {
                src,
                dst,
                protocol: IpProtocol(proto),
                payload_len: payload.len() as u16,
                ttl: 64,
                tos,
                ident: 0,
                dont_frag: true,
            }
            .emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
            f[34..34 + payload.len()].copy_from_slice(&payload);
            f
        })
}

fn place(frame: &[u8]) -> (Vec<u8>, Span) {
    let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    (buf, Span::new(HEADROOM, frame.len()))
}

proptest! {
    #[test]
    fn vxlan_encap_then_decap_restores_the_frame_with_vtep_macs(p in vxlan_params(), frame in any_frame(), ident in any::<u16>()) {
        let (mut buf, span) = place(&frame);
        let out = VxlanTemplate::new(p).encap(&mut buf, span, ident).unwrap();
        let ip = Ipv4Packet::new_checked(&buf[out.start + 14..out.end()]).unwrap();
        prop_assert!(ip.verify_checksum());
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        prop_assert!(udp.src_port() >= p.src_ports.min() && udp.src_port() <= p.src_ports.max());
        prop_assert_eq!(udp.checksum() != 0, p.udp_checksum);

        let cfg = VxlanDecapConfig { local_ip: p.dst_ip, port: p.dst_port, vni: p.vni, udp_checksum: UdpChecksumPolicy::VerifyIfPresent };
        let d = cfg.decap(&buf, out).unwrap();
        prop_assert_eq!(d.inner, span);
        let inner = &buf[span.start..span.end()];
        prop_assert_eq!(&inner[..6], &p.inner_dst_mac.0[..]);
        prop_assert_eq!(&inner[6..12], &p.inner_src_mac.0[..]);
        prop_assert_eq!(&inner[12..], &frame[12..]);
        // Outer DSCP from the template, ECN from the inner packet (RFC 6040).
        let want_tos = (p.tos & !ecn::MASK) | ecn::encapsulate(ecn::inner_ecn(&frame));
        prop_assert_eq!((d.outer_src, d.outer_tos), (p.src_ip, want_tos));
    }

    #[test]
    fn ipip_encap_then_decap_restores_the_packet(
        frame in ipv4_frame(), src_ip in addr(), dst_ip in addr(), smac in mac(), dmac in mac(),
        ttl in 1u8.., tos in any::<u8>(), ident in any::<u16>(),
    ) {
        let p = IpipParams { outer_src_mac: smac, outer_dst_mac: dmac, src_ip, dst_ip, ttl, tos, dont_frag: false };
        let (mut buf, span) = place(&frame);
        let out = IpipTemplate::new(p).encap(&mut buf, span, ident).unwrap();
        prop_assert!(Ipv4Packet::new_checked(&buf[out.start + 14..out.end()]).unwrap().verify_checksum());
        let d = IpipDecapConfig { local_ip: dst_ip }.decap(&mut buf, out).unwrap();
        let ip_len = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        prop_assert_eq!(d.frame.len, 14 + ip_len);
        prop_assert_eq!(&buf[d.frame.start + 14..d.frame.end()], &frame[14..14 + ip_len]);
        prop_assert_eq!(d.outer_src, src_ip);
        prop_assert_eq!(d.outer_tos, (tos & !ecn::MASK) | ecn::encapsulate(frame[15]));
    }

    #[test]
    fn decap_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let (mut buf, span) = place(&bytes);
        let v = VxlanDecapConfig { local_ip: Ipv4Addr::new(198, 18, 0, 1), port: 8472, vni: Vni::FLANNEL, udp_checksum: UdpChecksumPolicy::VerifyIfPresent };
        let _ = v.decap(&buf, span);
        let _ = IpipDecapConfig { local_ip: Ipv4Addr::new(198, 18, 0, 1) }.decap(&mut buf, span);
    }
}
