//! Differential test: weft's parse chain and etherparse must agree on every random
//! or mutated frame — on the fields when both accept, and on the failing layer (and
//! whether it is a length problem) when one rejects. Where weft is stricter by
//! design the expected verdict is spelled out below, one case each:
//!
//! - a second VLAN tag (or an 802.1ad outer tag) is `NestedVlan` for weft;
//!   etherparse walks up to three tags;
//! - UDP length 0 is malformed for weft (RFC 768, IPv4); etherparse falls back to
//!   the slice length (IPv6 jumbogram rule);
//! - ARP other than Ethernet/IPv4 is malformed for weft; etherparse takes any sizes;
//! - weft does not parse TCP, ICMPv6, IPv6, MACsec or IPv4 extension (AH) headers: where etherparse
//!   fails inside those, weft succeeds without a transport.

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice, err};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use weft_encap::parse::{L3, L4, ParseOptions, parse_frame};
use weft_encap::{Layer, ParseError, Problem, UdpChecksumPolicy, VlanPolicy};

/// Checksums are left out: etherparse does not verify them.
fn opts() -> ParseOptions {
    ParseOptions {
        vlan: VlanPolicy::Skip,
        verify_ipv4_checksum: false,
        udp_checksum: UdpChecksumPolicy::Ignore,
    }
}

fn be16(f: &[u8], at: usize) -> Option<u16> {
    f.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Returns an explanation when the two parsers disagree.
fn compare(frame: &[u8]) -> Result<(), String> {
    let ours = parse_frame(frame, &opts());
    let nested = Err(ParseError::Malformed { layer: Layer::Vlan, problem: Problem::NestedVlan });

    // Design divergences at the VLAN layer.
    match be16(frame, 12) {
        Some(0x88a8) => return expect(ours == nested, "outer 802.1ad tag must be NestedVlan", &ours),
        Some(0x9100) => {
            return expect(
                matches!(ours, Ok(p) if matches!(p.l3, L3::Other(_))),
                "0x9100 is an unknown EtherType for weft",
                &ours,
            );
        }
        Some(0x8100) if matches!(be16(frame, 16), Some(0x8100 | 0x88a8)) => {
            return expect(ours == nested, "second tag must be NestedVlan", &ours);
        }
        Some(0x8100) if matches!(be16(frame, 16), Some(0x9100)) => return Ok(()),
        _ => {}
    }
    let payload_type = if be16(frame, 12) == Some(0x8100) { be16(frame, 16) } else { be16(frame, 12) };
    if matches!(payload_type, Some(0x86dd | 0x88e5)) {
        return expect(
            matches!(ours, Ok(p) if matches!(p.l3, L3::Other(_))),
            "IPv6 and MACsec are opaque to weft",
            &ours,
        );
    }

    match SlicedPacket::from_ethernet(frame) {
        Ok(theirs) => compare_ok(frame, &theirs, ours),
        Err(e) => compare_err(&e, ours),
    }
}

fn expect<T: std::fmt::Debug>(ok: bool, what: &str, ours: &T) -> Result<(), String> {
    if ok { Ok(()) } else { Err(format!("{what}; weft said {ours:?}")) }
}

fn compare_ok(
    frame: &[u8],
    theirs: &SlicedPacket,
    ours: Result<weft_encap::parse::ParsedFrame, ParseError>,
) -> Result<(), String> {
    match &theirs.net {
        Some(NetSlice::Ipv4(v4)) => {
            let h = v4.header();
            if let Some(TransportSlice::Udp(u)) = &theirs.transport
                && u.length() == 0
            {
                let bad = Err(ParseError::Malformed { layer: Layer::Udp, problem: Problem::UdpLength });
                return expect(ours == bad, "UDP length 0 must be malformed", &ours);
            }
            let p = ours.map_err(|e| format!("etherparse accepted, weft said {e}"))?;
            let L3::Ipv4(ip) = p.l3 else { return Err(format!("weft did not see IPv4: {p:?}")) };
            let same = ip.src.octets() == h.source()
                && ip.dst.octets() == h.destination()
                && ip.ttl == h.ttl()
                && ip.protocol.0 == h.protocol().0
                && ip.header_len == usize::from(h.ihl()) * 4
                && ip.total_len == h.total_len()
                && ip.fragment == v4.is_payload_fragmented();
            if !same {
                return Err(format!("IPv4 fields differ: weft {ip:?}"));
            }
            let l4_ok = match (&theirs.transport, ip.l4) {
                (Some(TransportSlice::Udp(u)), L4::Udp { src_port, dst_port, len }) => {
                    (u.source_port(), u.destination_port(), u.length()) == (src_port, dst_port, len)
                }
                (Some(TransportSlice::Icmpv4(i)), L4::Icmp { msg_type, code }) => {
                    (i.type_u8(), i.code_u8()) == (msg_type, code)
                }
                // weft does not parse TCP, nor ICMPv6 carried (oddly) in IPv4.
                (Some(TransportSlice::Tcp(_) | TransportSlice::Icmpv6(_)) | None, L4::Opaque) => true,
                // weft does not walk IPv4 AH (51): whatever etherparse found behind it,
                // weft reports the protocol as opaque.
                (_, L4::Opaque) => ip.protocol.0 == 51,
                _ => false,
            };
            expect(l4_ok, "transport differs", &(&theirs.transport.is_some(), ip.l4))
        }
        Some(NetSlice::Arp(a)) => {
            let eth_ipv4 = a.hw_addr_type().0 == 1
                && a.proto_addr_type().0 == 0x0800
                && a.hw_addr_size() == 6
                && a.proto_addr_size() == 4;
            let known_op = matches!(a.operation().0, 1 | 2);
            match ours {
                Ok(p) => {
                    let L3::Arp(r) = p.l3 else { return Err(format!("weft did not see ARP: {p:?}")) };
                    let same = eth_ipv4
                        && known_op
                        && r.sender_mac.0[..] == *a.sender_hw_addr()
                        && r.sender_ip.octets()[..] == *a.sender_protocol_addr()
                        && r.target_mac.0[..] == *a.target_hw_addr()
                        && r.target_ip.octets()[..] == *a.target_protocol_addr();
                    expect(same, "ARP fields differ", &r)
                }
                Err(e) => expect(
                    e.layer() == Layer::Arp && (!eth_ipv4 || !known_op),
                    "weft rejected a valid Ethernet/IPv4 ARP",
                    &e,
                ),
            }
        }
        Some(NetSlice::Ipv6(_)) => Ok(()),
        None => {
            let _ = frame;
            expect(
                matches!(ours, Ok(p) if matches!(p.l3, L3::Other(_))),
                "no network layer: must be Other",
                &ours,
            )
        }
    }
}

fn compare_err(
    e: &err::packet::SliceError,
    ours: Result<weft_encap::parse::ParsedFrame, ParseError>,
) -> Result<(), String> {
    use err::packet::SliceError as S;
    let want: Option<(Layer, Option<bool>)> = match e {
        S::Len(l) => match l.layer {
            err::Layer::Ethernet2Header => Some((Layer::Ethernet, Some(true))),
            err::Layer::VlanHeader => Some((Layer::Vlan, Some(true))),
            err::Layer::Ipv4Header | err::Layer::Ipv4Packet => Some((Layer::Ipv4, None)),
            err::Layer::UdpHeader | err::Layer::UdpPayload => Some((Layer::Udp, None)),
            err::Layer::Icmpv4 | err::Layer::Icmpv4Timestamp | err::Layer::Icmpv4TimestampReply => {
                // etherparse wants 20 bytes for timestamp messages; weft only the 8-byte header.
                return expect(
                    ours.is_ok() || matches!(ours, Err(e) if e.layer() == Layer::Icmpv4),
                    "ICMP length",
                    &ours,
                );
            }
            // etherparse sizes ARP by its address-length fields; weft refuses lengths
            // other than 6/4 as content first. Either way the ARP layer fails.
            err::Layer::Arp => Some((Layer::Arp, None)),
            // Inside what weft does not parse (TCP, AH): weft succeeds.
            err::Layer::TcpHeader | err::Layer::IpAuthHeader | err::Layer::Icmpv6 => None,
            other => return Err(format!("unmapped etherparse length error at {other:?}")),
        },
        S::Ipv4(_) => Some((Layer::Ipv4, Some(false))),
        S::Tcp(_) | S::Ipv4Exts(_) => None,
        other => return Err(format!("unmapped etherparse error {other:?}")),
    };
    match (want, ours) {
        (None, Ok(_)) => Ok(()),
        (Some((layer, truncated)), Err(o))
            if o.layer() == layer && truncated.is_none_or(|t| t == o.is_truncated()) =>
        {
            Ok(())
        }
        (w, o) => Err(format!("etherparse: {e}; expected weft {w:?}, weft said {o:?}")),
    }
}

/// A valid frame of one of the shapes weft meets, built by etherparse's builder.
fn base_frame() -> impl Strategy<Value = Vec<u8>> {
    let macs = (any::<[u8; 6]>(), any::<[u8; 6]>());
    let ips = (any::<[u8; 4]>(), any::<[u8; 4]>(), 1u8..=255);
    (
        macs,
        ips,
        0u8..6,
        any::<bool>(),
        0u16..4096,
        any::<(u16, u16)>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|((sm, dm), (sa, da, ttl), shape, tagged, vid, (sp, dp), payload)| {
            let eth = PacketBuilder::ethernet2(sm, dm);
            let mut out = Vec::new();
            let ip = |e: etherparse::PacketBuilderStep<etherparse::Ethernet2Header>| {
                if tagged {
                    e.single_vlan(etherparse::VlanId::try_new(vid).unwrap()).ipv4(sa, da, ttl)
                } else {
                    e.ipv4(sa, da, ttl)
                }
            };
            match shape {
                0 => ip(eth).udp(sp, dp).write(&mut out, &payload).unwrap(),
                1 => ip(eth).icmpv4_echo_request(sp, dp).write(&mut out, &payload).unwrap(),
                2 => ip(eth).tcp(sp, dp, 1, 1024).write(&mut out, &payload).unwrap(),
                3 => {
                    // ARP request, Ethernet/IPv4.
                    out.extend_from_slice(&dm);
                    out.extend_from_slice(&sm);
                    out.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
                    out.extend_from_slice(&sm);
                    out.extend_from_slice(&sa);
                    out.extend_from_slice(&[0; 6]);
                    out.extend_from_slice(&da);
                }
                4 => {
                    // IPv4 with options (IHL 6..=15) and an opaque protocol.
                    let mut b = Vec::new();
                    ip(eth).udp(sp, dp).write(&mut b, &payload).unwrap();
                    let l3 = if tagged { 18 } else { 14 };
                    let extra = 4 * usize::from(1 + (vid % 10));
                    b.splice(l3 + 20..l3 + 20, std::iter::repeat_n(1u8, extra));
                    b[l3] = 0x40 | (5 + (extra / 4) as u8);
                    let total = u16::from_be_bytes([b[l3 + 2], b[l3 + 3]]) + extra as u16;
                    b[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
                    out = b;
                }
                _ => {
                    out.extend_from_slice(&dm);
                    out.extend_from_slice(&sm);
                    out.extend_from_slice(&sp.to_be_bytes());
                    out.extend_from_slice(&payload);
                }
            }
            out
        })
}

/// Base frames, then up to four byte overwrites concentrated in the headers, then
/// an optional cut.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    (base_frame(), prop::collection::vec((0usize..64, any::<u8>()), 0..4), prop::option::of(0usize..128))
        .prop_map(|(mut f, edits, cut)| {
            for (at, v) in edits {
                if !f.is_empty() {
                    let i = at % f.len();
                    f[i] = v;
                }
            }
            if let Some(c) = cut {
                f.truncate(c.min(f.len()));
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn weft_and_etherparse_agree_on_valid_frames(f in base_frame()) {
        compare(&f).map_err(|e| TestCaseError::fail(format!("{e}\nframe: {f:02x?}")))?;
    }

    #[test]
    fn weft_and_etherparse_agree_on_mutated_frames(f in mutated_frame()) {
        compare(&f).map_err(|e| TestCaseError::fail(format!("{e}\nframe: {f:02x?}")))?;
    }
}

#[test]
fn weft_and_etherparse_agree_on_every_truncation_of_each_shape() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..200 {
        let f = base_frame().new_tree(&mut runner).unwrap().current();
        for n in 0..=f.len() {
            compare(&f[..n]).unwrap_or_else(|e| panic!("cut at {n}: {e}\nframe: {f:02x?}"));
        }
    }
}
