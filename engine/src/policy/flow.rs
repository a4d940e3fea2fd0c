//! A packet's connection as the policy sees it: addresses, protocol and ports, and, for an ICMP
//! error, the connection the error is about (the packet it quotes).

use weft_encap::wire::ethernet::HEADER_LEN;

use super::rules::proto;

/// One direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Source address (host order).
    pub src: u32,
    /// Destination address (host order).
    pub dst: u32,
    /// IPv4 protocol number.
    pub proto: u8,
    /// Source port (ICMP echo: the identifier; no ports: 0).
    pub sport: u16,
    /// Destination port (ICMP echo: the identifier; no ports: 0).
    pub dport: u16,
}

/// TCP FIN and RST, as the connection table reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpEnd {
    /// FIN set.
    pub fin: bool,
    /// RST set.
    pub rst: bool,
}

/// What the policy reads of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// The packet's own flow.
    pub flow: Flow,
    /// For an ICMP error (destination unreachable, source quench, redirect, time exceeded,
    /// parameter problem): the flow of the packet it quotes.
    pub related: Option<Flow>,
    /// TCP FIN / RST.
    pub tcp: TcpEnd,
}

fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The flow of the IPv4 packet `ip` and its transport header (ports only from a first fragment;
/// ICMP echo request and reply: the identifier as both ports).
fn flow_of(ip: &[u8]) -> Option<(Flow, &[u8])> {
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let (src, dst, p) = (be32(ip, 12)?, be32(ip, 16)?, *ip.get(9)?);
    let first_fragment = be16(ip, 6) & 0x1fff == 0;
    let l4 = ip.get(ihl..).filter(|_| first_fragment).unwrap_or(&[]);
    let (sport, dport) = match p {
        proto::TCP | proto::UDP | proto::SCTP => (be16(l4, 0), be16(l4, 2)),
        proto::ICMP if matches!(l4.first(), Some(0 | 8)) => (be16(l4, 4), be16(l4, 4)),
        _ => (0, 0),
    };
    Some((Flow { src, dst, proto: p, sport, dport }, l4))
}

impl Packet {
    /// The packet in the Ethernet + IPv4 frame `d` (the pipeline validated its IPv4 header).
    #[inline]
    pub fn of_frame(d: &[u8]) -> Option<Self> {
        let (flow, l4) = flow_of(d.get(HEADER_LEN..)?)?;
        let related = match (flow.proto, l4.first()) {
            // The quoted packet's header and first 8 bytes follow the 8-byte ICMP header.
            (proto::ICMP, Some(3 | 4 | 5 | 11 | 12)) => l4.get(8..).and_then(flow_of).map(|(f, _)| f),
            _ => None,
        };
        let tcp = match flow.proto {
            proto::TCP => {
                let flags = l4.get(13).copied().unwrap_or(0);
                TcpEnd { fin: flags & 0x01 != 0, rst: flags & 0x04 != 0 }
            }
            _ => TcpEnd::default(),
        };
        Some(Packet { flow, related, tcp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        let mut h = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        f.extend_from_slice(&h);
        f.extend_from_slice(l4);
        f
    }

    #[test]
    fn tcp_ports_and_end_flags_are_read() {
        let mut tcp = [0u8; 20];
        tcp[..4].copy_from_slice(&[0x9c, 0x40, 0, 80]);
        tcp[13] = 0x11;
        let p = Packet::of_frame(&ipv4(6, [198, 19, 1, 2], [198, 19, 2, 3], &tcp)).unwrap();
        assert_eq!((p.flow.sport, p.flow.dport, p.flow.proto), (40000, 80, 6));
        assert_eq!(p.tcp, TcpEnd { fin: true, rst: false });
        assert_eq!(p.related, None);
    }

    #[test]
    fn an_icmp_error_names_the_flow_it_quotes() {
        let quoted = ipv4(17, [198, 19, 1, 2], [198, 19, 2, 3], &[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted[14..]);
        let p = Packet::of_frame(&ipv4(1, [198, 19, 2, 3], [198, 19, 1, 2], &icmp)).unwrap();
        let r = p.related.unwrap();
        assert_eq!((r.src, r.dst, r.proto, r.sport, r.dport), (0xc613_0102, 0xc613_0203, 17, 40000, 53));
    }

    #[test]
    fn an_echo_uses_its_identifier_as_both_ports() {
        let p =
            Packet::of_frame(&ipv4(1, [1, 1, 1, 1], [2, 2, 2, 2], &[8, 0, 0, 0, 0x12, 0x34, 0, 1])).unwrap();
        assert_eq!((p.flow.sport, p.flow.dport, p.related), (0x1234, 0x1234, None));
    }
}
