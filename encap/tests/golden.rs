//! Byte-exact checks against frames built by scapy (tests/golden/make_golden.py),
//! an implementation independent of ours. Each fixture gives the inputs; weft must
//! produce exactly scapy's bytes, or parse scapy's bytes to scapy's field values.

use std::net::Ipv4Addr;

use serde_json::Value;
use weft_encap::parse::{L3, L4, ParseOptions, parse_frame};
use weft_encap::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use weft_encap::wire::ethernet::{EthernetFrame, EthernetRepr};
use weft_encap::wire::icmpv4::IcmpError;
use weft_encap::wire::ipv4::Ipv4Packet;
use weft_encap::{
    EtherType, IpipDecapConfig, IpipParams, IpipTemplate, MacAddr, SourcePortRange, Span, UdpChecksumPolicy,
    VlanPolicy, Vni, VxlanDecapConfig, VxlanParams, VxlanTemplate,
};

const HEADROOM: usize = 256;

fn fixtures(kind: &str) -> Vec<Value> {
    let text = include_str!("golden/golden.json");
    let all: Value = serde_json::from_str(text).expect("golden.json parses");
    let list: Vec<Value> =
        all["fixtures"].as_array().unwrap().iter().filter(|f| f["kind"] == kind).cloned().collect();
    assert!(!list.is_empty(), "no fixtures of kind {kind}");
    list
}

fn hex(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn mac(v: &Value) -> MacAddr {
    v.as_str().unwrap().parse().unwrap()
}

fn ip(v: &Value) -> Ipv4Addr {
    v.as_str().unwrap().parse().unwrap()
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

/// Places `frame` after HEADROOM bytes in a 4 KiB buffer.
fn buffer_with(frame: &[u8]) -> (Vec<u8>, Span) {
    let mut buf = vec![0u8; 4096];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    (buf, Span::new(HEADROOM, frame.len()))
}

#[test]
fn parse_chain_reads_the_fields_scapy_wrote() {
    for f in fixtures("parse") {
        let frame = hex(&f["frame"]);
        let opts = ParseOptions { vlan: VlanPolicy::Skip, ..ParseOptions::default() };
        let p = parse_frame(&frame, &opts).unwrap_or_else(|e| panic!("{}: {e}", f["name"]));
        assert_eq!(p.l2.vlan.map(|v| u64::from(v.get())), f["vlan"].as_u64(), "{}", f["name"]);
        let L3::Ipv4(v4) = p.l3 else { panic!("{}: not ipv4", f["name"]) };
        assert_eq!(v4.src, ip(&f["src"]));
        assert_eq!(v4.dst, ip(&f["dst"]));
        assert_eq!(u64::from(v4.ttl), num(&f["ttl"]));
        assert_eq!(u64::from(v4.protocol.0), num(&f["protocol"]));
        assert_eq!(v4.header_len as u64, num(&f["header_len"]), "{}", f["name"]);
        assert_eq!(
            v4.l4,
            L4::Udp {
                src_port: num(&f["src_port"]) as u16,
                dst_port: num(&f["dst_port"]) as u16,
                len: num(&f["udp_len"]) as u16
            },
            "{}",
            f["name"]
        );
    }
}

#[test]
fn a_tagged_fixture_is_rejected_under_the_default_vlan_policy() {
    let f = fixtures("parse").into_iter().find(|f| f["name"] == "vlan_ipv4_udp").unwrap();
    assert!(parse_frame(&hex(&f["frame"]), &ParseOptions::default()).is_err());
}

#[test]
fn arp_reply_to_scapys_request_is_byte_identical_to_scapys_reply() {
    for f in fixtures("arp") {
        let req = hex(&f["frame"]);
        let p = parse_frame(&req, &ParseOptions::default()).unwrap();
        let L3::Arp(arp) = p.l3 else { panic!("not arp") };
        assert_eq!(arp.operation, ArpOperation::Request);
        let our = mac(&f["our_mac"]);
        let reply = arp.reply(our);
        let mut out = vec![0u8; 42];
        EthernetRepr { src: our, dst: arp.sender_mac, ethertype: EtherType::ARP }
            .emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        reply.emit(&mut ArpPacket::new_unchecked(&mut out[14..]));
        assert_eq!(out, hex(&f["reply"]));
        assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&out[14..]).unwrap()).unwrap(), reply);
    }
}

#[test]
fn vxlan_encap_is_byte_identical_to_scapy_and_decaps_back() {
    for f in fixtures("vxlan") {
        let sport = num(&f["src_port"]) as u16;
        let params = VxlanParams {
            outer_src_mac: mac(&f["outer_src_mac"]),
            outer_dst_mac: mac(&f["outer_dst_mac"]),
            src_ip: ip(&f["src_ip"]),
            dst_ip: ip(&f["dst_ip"]),
            dst_port: num(&f["dst_port"]) as u16,
            vni: Vni::try_new(num(&f["vni"]) as u32).unwrap(),
            inner_src_mac: mac(&f["inner_src_mac"]),
            inner_dst_mac: mac(&f["inner_dst_mac"]),
            ttl: 64,
            tos: 0,
            dont_frag: false,
            udp_checksum: f["udp_checksum"].as_bool().unwrap(),
            // A one-port range pins the hashed source port to scapy's value.
            src_ports: SourcePortRange::try_new(sport, sport).unwrap(),
        };
        let (mut buf, span) = buffer_with(&hex(&f["inner"]));
        let out = VxlanTemplate::new(params).encap(&mut buf, span, num(&f["ident"]) as u16).unwrap();
        let expect = hex(&f["frame"]);
        assert_eq!(&buf[out.start..out.end()], &expect[..], "{}", f["name"]);

        let cfg = VxlanDecapConfig {
            local_ip: params.dst_ip,
            port: params.dst_port,
            vni: params.vni,
            udp_checksum: UdpChecksumPolicy::VerifyIfPresent,
        };
        let (scapy_buf, scapy_span) = buffer_with(&expect);
        let d = cfg.decap(&scapy_buf, scapy_span).unwrap();
        assert_eq!(&scapy_buf[d.inner.start..d.inner.end()], &expect[50..]);
        assert_eq!(d.outer_src, params.src_ip);
    }
}

#[test]
fn ipip_encap_is_byte_identical_to_scapy_and_decaps_back() {
    for f in fixtures("ipip") {
        let params = IpipParams {
            outer_src_mac: mac(&f["outer_src_mac"]),
            outer_dst_mac: mac(&f["outer_dst_mac"]),
            src_ip: ip(&f["src_ip"]),
            dst_ip: ip(&f["dst_ip"]),
            ttl: 64,
            tos: 0,
            dont_frag: true,
        };
        let inner = hex(&f["inner"]);
        let (mut buf, span) = buffer_with(&inner);
        let out = IpipTemplate::new(params).encap(&mut buf, span, num(&f["ident"]) as u16).unwrap();
        let expect = hex(&f["frame"]);
        assert_eq!(&buf[out.start..out.end()], &expect[..]);

        let (mut scapy_buf, scapy_span) = buffer_with(&expect);
        let d = IpipDecapConfig { local_ip: params.dst_ip }.decap(&mut scapy_buf, scapy_span).unwrap();
        // The decapsulated frame carries the outer Ethernet header and the inner packet.
        assert_eq!(&scapy_buf[d.frame.start + 14..d.frame.end()], &inner[14..]);
    }
}

#[test]
fn icmp_errors_are_byte_identical_to_scapy() {
    for f in fixtures("icmp") {
        let original = hex(&f["original"]);
        let mut buf = vec![0u8; 2048];
        buf[..original.len()].copy_from_slice(&original);
        let kind = match f["mtu"].as_u64() {
            Some(mtu) => IcmpError::FragmentationNeeded { next_hop_mtu: mtu as u16 },
            None => IcmpError::TimeExceeded,
        };
        let len = kind.emit_in_place(&mut buf, 14, ip(&f["from"]), num(&f["ttl"]) as u8).unwrap();
        assert_eq!(&buf[14..14 + len], &hex(&f["icmp"])[..], "{}", f["name"]);
    }
}

#[test]
fn ttl_decrement_matches_scapys_recomputed_checksum() {
    for f in fixtures("ttl") {
        let mut pkt = hex(&f["before"]);
        Ipv4Packet::new_checked(&mut pkt[..]).unwrap().decrement_ttl().unwrap();
        assert_eq!(pkt, hex(&f["after"]));
    }
}
