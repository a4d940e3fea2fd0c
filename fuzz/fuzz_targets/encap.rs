//! Encap of arbitrary frames with arbitrary template parameters and headroom; when
//! encap succeeds, decap must give the frame back.
#![no_main]

use std::net::Ipv4Addr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weft_encap::{
    IpipDecapConfig, IpipParams, IpipTemplate, MacAddr, SourcePortRange, Span, UdpChecksumPolicy, Vni,
    VxlanDecapConfig, VxlanParams, VxlanTemplate,
};

#[derive(Debug, Arbitrary)]
struct Input {
    headroom: u8,
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    port: u16,
    vni: u32,
    udp_checksum: bool,
    ident: u16,
    ports: (u16, u16),
    frame: Vec<u8>,
}

fuzz_target!(|inp: Input| {
    let headroom = usize::from(inp.headroom);
    let mut buf = vec![0u8; headroom + inp.frame.len()];
    buf[headroom..].copy_from_slice(&inp.frame);
    let span = Span::new(headroom, inp.frame.len());
    let (src_ip, dst_ip) = (Ipv4Addr::from(inp.src_ip), Ipv4Addr::from(inp.dst_ip));
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);

    let vni = Vni::try_new(inp.vni & Vni::MAX).unwrap();
    let src_ports = SourcePortRange::try_new(inp.ports.0.max(1), inp.ports.1.max(inp.ports.0.max(1)))
        .unwrap_or_default();
    let vx = VxlanTemplate::new(VxlanParams {
        udp_checksum: inp.udp_checksum,
        dst_port: inp.port,
        vni,
        src_ports,
        ..VxlanParams::flannel(mac, mac, src_ip, dst_ip, mac, mac)
    });
    let mut b = buf.clone();
    if let Ok(out) = vx.encap(&mut b, span, inp.ident) {
        let cfg = VxlanDecapConfig { local_ip: dst_ip, port: inp.port, vni, udp_checksum: UdpChecksumPolicy::Require };
        let cfg = if inp.udp_checksum { cfg } else { VxlanDecapConfig { udp_checksum: UdpChecksumPolicy::VerifyIfPresent, ..cfg } };
        let d = cfg.decap(&b, out).expect("decap of our own encap");
        assert_eq!(d.inner, span);
        assert_eq!(&b[span.start + 12..span.end()], &inp.frame[12..]);
    }

    let ipip = IpipTemplate::new(IpipParams {
        outer_src_mac: mac,
        outer_dst_mac: mac,
        src_ip,
        dst_ip,
        ttl: 64,
        tos: 0,
        dont_frag: true,
    });
    let mut b = buf;
    if let Ok(out) = ipip.encap(&mut b, span, inp.ident) {
        let d = IpipDecapConfig { local_ip: dst_ip }.decap(&mut b, out).expect("decap of our own encap");
        let inner_len = d.frame.len - 14;
        assert_eq!(&b[d.frame.start + 14..d.frame.end()], &inp.frame[14..14 + inner_len]);
    }
});
