//! Recording the underlay: tcpdump on the bridge in the underlay namespace, written to a
//! pcap file, read back and classified with weft-encap's wire views, so a test can say
//! what crossed the wire between nodes.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use weft_encap::EtherType;
use weft_encap::wire::ethernet::{EthernetFrame, HEADER_LEN};
use weft_encap::wire::ipv4::Ipv4Packet;
use weft_encap::wire::udp::UdpPacket;
use weft_encap::wire::vxlan::VxlanPacket;

use super::supervise::{self, wait_for};
use super::topology::BRIDGE;
use super::{Lab, LabError, ProcessRecord};

const IPPROTO_UDP: u8 = 17;

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
    },
    /// Something else (IPv6, unparseable).
    Other(u16),
}

impl Seen {
    /// The outer IPv4 addresses, if any.
    pub fn outer(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        match *self {
            Seen::Vxlan { outer_src, outer_dst, .. } => Some((outer_src, outer_dst)),
            Seen::Ipv4 { src, dst, .. } => Some((src, dst)),
            _ => None,
        }
    }
}

fn inner_ipv4(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(&frame[HEADER_LEN..]).ok()?;
    Some((ip.src_addr(), ip.dst_addr()))
}

/// Classifies one Ethernet frame. `vxlan_ports` are the UDP ports decoded as VXLAN.
pub fn classify(frame: &[u8], vxlan_ports: &[u16]) -> Seen {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return Seen::Other(0) };
    let ethertype = eth.ethertype();
    if ethertype == EtherType::ARP {
        return Seen::Arp;
    }
    if ethertype != EtherType::IPV4 {
        return Seen::Other(ethertype.0);
    }
    let Ok(ip) = Ipv4Packet::new_checked(&frame[HEADER_LEN..]) else { return Seen::Other(ethertype.0) };
    let (src, dst, protocol) = (ip.src_addr(), ip.dst_addr(), ip.protocol().0);
    let mut udp_port = None;
    if protocol == IPPROTO_UDP && !ip.is_fragment() {
        if let Ok(udp) = UdpPacket::new_checked(ip.payload()) {
            udp_port = Some(udp.dst_port());
            if vxlan_ports.contains(&udp.dst_port()) {
                if let Ok(vx) = VxlanPacket::new_checked(udp.payload()) {
                    return Seen::Vxlan {
                        outer_src: src,
                        outer_dst: dst,
                        port: udp.dst_port(),
                        vni: vx.vni().get(),
                        inner: inner_ipv4(vx.payload()),
                    };
                }
            }
        }
    }
    Seen::Ipv4 { src, dst, protocol, udp_port }
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

    /// Stops tcpdump (it flushes on SIGTERM) and returns every frame it saw, classified.
    pub fn finish(self, vxlan_ports: &[u16]) -> Result<Vec<Seen>, LabError> {
        supervise::stop(&self.record, Duration::from_secs(5));
        let frames = read_pcap(&self.file)?;
        Ok(frames.iter().map(|f| classify(f, vxlan_ports)).collect())
    }
}
