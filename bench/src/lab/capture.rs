//! Recording the underlay: tcpdump on the bridge in the underlay namespace, written to a
//! pcap file, read back and classified with weft-encap's wire views, so a test can say
//! what crossed the wire between nodes.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use weft_encap::EtherType;
use weft_encap::wire::ethernet::{EthernetFrame, HEADER_LEN};
use weft_encap::wire::ipv4::{HEADER_LEN as IPV4_HEADER_LEN, Ipv4Packet};
use weft_encap::wire::udp::{HEADER_LEN as UDP_HEADER_LEN, UdpPacket};
use weft_encap::wire::vxlan::VxlanPacket;

use super::supervise::{self, wait_for};
use super::topology::BRIDGE;
use super::{Lab, LabError, ProcessRecord};

const IPPROTO_UDP: u8 = 17;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_TCP: u8 = 6;

/// One frame seen on the underlay, as far as the lab cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// ARP.
    Arp,
    /// VXLAN: outer addresses and port, VNI, and the inner IPv4 addresses (if IPv4 inside).
    Vxlan {
        /// Outer source.
        outer_src: Ipv4Addr,
        /// Outer destination.
        outer_dst: Ipv4Addr,
        /// UDP destination port.
        port: u16,
        /// VNI.
        vni: u32,
        /// Inner IPv4 source and destination.
        inner: Option<(Ipv4Addr, Ipv4Addr)>,
    },
    /// IP-in-IP (IP protocol 4): outer addresses and the inner IPv4 addresses.
    Ipip {
        /// Outer source.
        outer_src: Ipv4Addr,
        /// Outer destination.
        outer_dst: Ipv4Addr,
        /// Inner IPv4 source and destination (`None` if the inner header is unreadable).
        inner: Option<(Ipv4Addr, Ipv4Addr)>,
    },
    /// Any other IPv4 packet.
    Ipv4 {
        /// Source.
        src: Ipv4Addr,
        /// Destination.
        dst: Ipv4Addr,
        /// IP protocol number.
        protocol: u8,
        /// UDP destination port, for UDP.
        udp_port: Option<u16>,
        /// TCP source and destination ports, for TCP.
        tcp_ports: Option<(u16, u16)>,
    },
    /// Something else (IPv6, unparseable).
    Other(u16),
}

impl Seen {
    /// The outer IPv4 addresses, if any.
    pub fn outer(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        match *self {
            Seen::Vxlan { outer_src, outer_dst, .. } | Seen::Ipip { outer_src, outer_dst, .. } => {
                Some((outer_src, outer_dst))
            }
            Seen::Ipv4 { src, dst, .. } => Some((src, dst)),
            _ => None,
        }
    }
}

/// The IPv4 header at the start of `b` and the payload bytes that were captured. tcpdump
/// keeps only the first snap-length bytes of a frame, so a datagram is usually cut short:
/// only the header must be whole (the `new_checked` views want the whole datagram).
fn ipv4_prefix(b: &[u8]) -> Option<(Ipv4Packet<&[u8]>, &[u8])> {
    if b.len() < IPV4_HEADER_LEN || b[0] >> 4 != 4 {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(b);
    let header = ip.header_len();
    if header < IPV4_HEADER_LEN || header > b.len() {
        return None;
    }
    let end = usize::from(ip.total_len()).clamp(header, b.len());
    Some((ip, &b[header..end]))
}

/// The inner IPv4 addresses of an encapsulated Ethernet frame (VXLAN payload).
fn inner_ipv4(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::IPV4 {
        return None;
    }
    ipv4_prefix(&frame[HEADER_LEN..]).map(|(ip, _)| (ip.src_addr(), ip.dst_addr()))
}

/// Classifies one Ethernet frame, which may be cut short by the capture's snap length
/// (headers are read as far as they were captured). `vxlan_ports` are the UDP ports
/// decoded as VXLAN.
pub fn classify(frame: &[u8], vxlan_ports: &[u16]) -> Seen {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return Seen::Other(0) };
    let ethertype = eth.ethertype();
    if ethertype == EtherType::ARP {
        return Seen::Arp;
    }
    if ethertype != EtherType::IPV4 {
        return Seen::Other(ethertype.0);
    }
    let Some((ip, payload)) = ipv4_prefix(&frame[HEADER_LEN..]) else { return Seen::Other(ethertype.0) };
    let (src, dst, protocol) = (ip.src_addr(), ip.dst_addr(), ip.protocol().0);
    let first_fragment = ip.frag_offset() == 0;
    if protocol == IPPROTO_IPIP && first_fragment {
        let inner = ipv4_prefix(payload).map(|(i, _)| (i.src_addr(), i.dst_addr()));
        return Seen::Ipip { outer_src: src, outer_dst: dst, inner };
    }
    let mut udp_port = None;
    if protocol == IPPROTO_UDP && first_fragment && payload.len() >= UDP_HEADER_LEN {
        let port = UdpPacket::new_unchecked(payload).dst_port();
        udp_port = Some(port);
        if vxlan_ports.contains(&port) {
            if let Ok(vx) = VxlanPacket::new_checked(&payload[UDP_HEADER_LEN..]) {
                return Seen::Vxlan {
                    outer_src: src,
                    outer_dst: dst,
                    port,
                    vni: vx.vni().get(),
                    inner: inner_ipv4(vx.payload()),
                };
            }
        }
    }
    let tcp_ports = (protocol == IPPROTO_TCP && first_fragment && payload.len() >= 4).then(|| {
        (u16::from_be_bytes([payload[0], payload[1]]), u16::from_be_bytes([payload[2], payload[3]]))
    });
    Seen::Ipv4 { src, dst, protocol, udp_port, tcp_ports }
}

/// Reads the Ethernet frames of a classic pcap file (microsecond or nanosecond, either byte
/// order).
pub fn read_pcap(path: &Path) -> Result<Vec<Vec<u8>>, LabError> {
    let bytes = std::fs::read(path).map_err(LabError::file(path))?;
    let bad = |why: &str| LabError::File {
        path: path.to_owned(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned()),
    };
    if bytes.len() < 24 {
        return Err(bad("shorter than a pcap header"));
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(bad("not a pcap file")),
    };
    let u32_at = |b: &[u8], at: usize| {
        let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if le { u32::from_le_bytes(w) } else { u32::from_be_bytes(w) }
    };
    if u32_at(&bytes, 20) != 1 {
        return Err(bad("link type is not Ethernet"));
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32_at(&bytes, at + 8) as usize;
        let start = at + 16;
        if start + len > bytes.len() {
            break; // a record cut short by tcpdump's exit
        }
        frames.push(bytes[start..start + len].to_vec());
        at = start + len;
    }
    Ok(frames)
}

/// A running tcpdump on the underlay bridge.
#[derive(Debug)]
pub struct Capture {
    record: ProcessRecord,
    file: PathBuf,
}

impl Capture {
    /// Starts tcpdump on the lab's underlay bridge and waits until it listens.
    pub fn start(lab: &mut Lab, name: &str) -> Result<Capture, LabError> {
        let file = lab.state().dir.join(format!("{name}.pcap"));
        let argv: Vec<String> =
            ["tcpdump", "-i", BRIDGE, "-n", "-U", "--immediate-mode", "-Z", "root", "-s", "256", "-w"]
                .iter()
                .map(|s| (*s).to_owned())
                .chain([file.display().to_string()])
                .collect();
        let ns = lab.underlay_ns();
        let record = lab.spawn(&ns, name, &argv)?;
        let log = record.log.clone();
        wait_for("tcpdump to listen on the underlay bridge", Duration::from_secs(10), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("listening on"))
        })?;
        Ok(Capture { record, file })
    }

    /// Stops tcpdump (it flushes on SIGTERM) and returns every frame it saw (its first 256
    /// bytes), unclassified.
    pub fn finish_raw(self) -> Result<Vec<Vec<u8>>, LabError> {
        supervise::stop(&self.record, Duration::from_secs(5));
        read_pcap(&self.file)
    }

    /// Stops tcpdump (it flushes on SIGTERM) and returns every frame it saw, classified.
    pub fn finish(self, vxlan_ports: &[u16]) -> Result<Vec<Seen>, LabError> {
        supervise::stop(&self.record, Duration::from_secs(5));
        let frames = read_pcap(&self.file)?;
        Ok(frames.iter().map(|f| classify(f, vxlan_ports)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD_A: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);
    const POD_B: Ipv4Addr = Ipv4Addr::new(198, 19, 2, 2);
    const NODE_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const NODE_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    /// An IPv4 header (checksum left zero: the classifier does not look at it).
    fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload_len: usize) -> Vec<u8> {
        let total = (20 + payload_len) as u16;
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0x40, 0, 64, protocol, 0, 0]);
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h
    }

    /// A 1400-byte TCP segment from POD_A:40000 to POD_B:2379, as an IPv4 packet.
    fn inner_tcp() -> Vec<u8> {
        let mut p = ipv4(POD_A, POD_B, 6, 1400);
        p.extend_from_slice(&[0x9c, 0x40, 0x09, 0x4b]);
        p.resize(20 + 1400, 0);
        p
    }

    #[test]
    fn a_vxlan_frame_cut_by_the_snap_length_still_shows_its_inner_addresses() {
        let inner = [eth(0x0800), inner_tcp()].concat();
        let mut frame = eth(0x0800);
        frame.extend(ipv4(NODE_A, NODE_B, IPPROTO_UDP, 8 + 8 + inner.len()));
        frame.extend_from_slice(&[0x9c, 0x40, 0x21, 0x18]); // sport 40000, dport 8472
        frame.extend_from_slice(&((8 + 8 + inner.len()) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0x08, 0, 0, 0, 0, 0, 1, 0]); // checksum, VXLAN I, VNI 1
        frame.extend(inner);
        let whole = classify(&frame, &[8472]);
        frame.truncate(120);
        let cut = classify(&frame, &[8472]);
        let expected = Seen::Vxlan {
            outer_src: NODE_A,
            outer_dst: NODE_B,
            port: 8472,
            vni: 1,
            inner: Some((POD_A, POD_B)),
        };
        assert_eq!((whole, cut), (expected, expected));
        assert_eq!(cut.outer(), Some((NODE_A, NODE_B)));
    }

    #[test]
    fn ipip_and_bare_frames_cut_by_the_snap_length_keep_their_addresses() {
        let mut ipip = eth(0x0800);
        ipip.extend(ipv4(NODE_A, NODE_B, IPPROTO_IPIP, 20 + 1400));
        ipip.extend(inner_tcp());
        ipip.truncate(80);
        assert_eq!(
            classify(&ipip, &[8472]),
            Seen::Ipip { outer_src: NODE_A, outer_dst: NODE_B, inner: Some((POD_A, POD_B)) }
        );
        let mut bare = eth(0x0800);
        bare.extend(inner_tcp());
        bare.truncate(60);
        assert_eq!(
            classify(&bare, &[8472]),
            Seen::Ipv4 {
                src: POD_A,
                dst: POD_B,
                protocol: 6,
                udp_port: None,
                tcp_ports: Some((40000, 2379))
            }
        );
        bare.truncate(HEADER_LEN + 19);
        assert_eq!(classify(&bare, &[8472]), Seen::Other(0x0800), "a cut IPv4 header is not read");
    }
}
