//! ICMPv4 (RFC 792): the header view, and the two errors weft generates —
//! time exceeded and fragmentation needed (RFC 1191) — built in place.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   unused (or, for 3/4: unused | Next-Hop MTU)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Internet Header + 64 bits of Original Data Datagram      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::Ipv4Addr;

use crate::checksum;
use crate::error::{Layer, ParseError, Problem, malformed, need};
use crate::wire::ipv4::{self, IpProtocol, Ipv4Packet, Ipv4Repr};
use crate::wire::{get_u16, put_u16};

mod field {
    use crate::wire::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const REST: Field = 4..8;
    /// Next-hop MTU of a "fragmentation needed" message (RFC 1191).
    pub const NEXT_HOP_MTU: Field = 6..8;
}

/// Length of the ICMP header (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = field::REST.end;

pub const TYPE_ECHO_REPLY: u8 = 0;
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
pub const TYPE_ECHO_REQUEST: u8 = 8;
pub const TYPE_TIME_EXCEEDED: u8 = 11;
pub const TYPE_PARAMETER_PROBLEM: u8 = 12;
pub const CODE_FRAGMENTATION_NEEDED: u8 = 4;
pub const CODE_TTL_EXCEEDED_IN_TRANSIT: u8 = 0;

/// A read/write view of an ICMPv4 message (header and data).
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        need(Layer::Icmpv4, HEADER_LEN, p.buffer.as_ref().len())?;
        Ok(p)
    }
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// The next-hop MTU of a "fragmentation needed" message.
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU.start)
    }
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// The checksum over the whole message verifies.
    pub fn check_checksum(&self) -> Result<(), ParseError> {
        if checksum::checksum(self.buffer.as_ref()) == 0 {
            Ok(())
        } else {
            Err(malformed(Layer::Icmpv4, Problem::Icmpv4Checksum))
        }
    }
    /// True for messages no ICMP error may be sent about (RFC 1122 §3.2.2):
    /// errors themselves (destination unreachable, time exceeded, parameter problem,
    /// and the obsolete source quench / redirect).
    pub fn is_error(&self) -> bool {
        matches!(self.msg_type(), 3 | 4 | 5 | 11 | 12)
    }
}

/// The ICMP errors weft sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// Type 11 code 0: TTL reached zero in transit.
    TimeExceeded,
    /// Type 3 code 4: the packet has DF set and is larger than `next_hop_mtu`.
    FragmentationNeeded { next_hop_mtu: u16 },
}

/// Why no ICMP error was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorRefusal {
    /// The offending packet is not a valid IPv4 packet.
    Original(ParseError),
    /// RFC 1122: never about an ICMP error, a non-first fragment, or a packet from
    /// a source that does not identify a single host (0.0.0.0, broadcast, multicast).
    NotAllowed,
    /// The buffer cannot hold the error message.
    NoRoom { need: usize, have: usize },
}

/// Bytes of the original datagram beyond its header that an error quotes.
const QUOTED_DATA: usize = 8;

impl IcmpError {
    const fn type_code(self) -> (u8, u8) {
        match self {
            IcmpError::TimeExceeded => (TYPE_TIME_EXCEEDED, CODE_TTL_EXCEEDED_IN_TRANSIT),
            IcmpError::FragmentationNeeded { .. } => (TYPE_DEST_UNREACHABLE, CODE_FRAGMENTATION_NEEDED),
        }
    }

    /// Rewrites, in place, the IPv4 packet at `buf[ip_start..]` into this ICMP error
    /// about it, sent from `from` to the packet's source with `ttl`. The quoted
    /// original (its header plus 8 bytes) moves back by 28 bytes, so `buf` must
    /// extend to `ip_start + 28 + header + 8`. Returns the error's IPv4 length.
    /// Link-layer headers before `ip_start` are left for the caller to rewrite.
    pub fn emit_in_place(
        self,
        buf: &mut [u8],
        ip_start: usize,
        from: Ipv4Addr,
        ttl: u8,
    ) -> Result<usize, IcmpErrorRefusal> {
        let have = buf.len();
        let orig_area = buf.get(ip_start..).ok_or(IcmpErrorRefusal::NoRoom { need: ip_start, have })?;
        let orig = Ipv4Packet::new_checked(orig_area).map_err(IcmpErrorRefusal::Original)?;
        let src = orig.src_addr();
        if src.is_unspecified() || src.is_broadcast() || src.is_multicast() || orig.frag_offset() != 0 {
            return Err(IcmpErrorRefusal::NotAllowed);
        }
        if orig.protocol() == IpProtocol::ICMP {
            match Icmpv4Packet::new_checked(orig.payload()) {
                Ok(icmp) if !icmp.is_error() => {}
                _ => return Err(IcmpErrorRefusal::NotAllowed),
            }
        }
        let quoted = orig.header_len() + orig.payload().len().min(QUOTED_DATA);
        let icmp_len = HEADER_LEN + quoted;
        let total = ipv4::HEADER_LEN + icmp_len;
        let need_len = ip_start + total;
        if need_len > have {
            return Err(IcmpErrorRefusal::NoRoom { need: need_len, have });
        }

        let icmp_start = ip_start + ipv4::HEADER_LEN;
        buf.copy_within(ip_start..ip_start + quoted, icmp_start + HEADER_LEN);
        let (ty, code) = self.type_code();
        let icmp = &mut buf[icmp_start..icmp_start + icmp_len];
        icmp[field::TYPE] = ty;
        icmp[field::CODE] = code;
        icmp[field::REST].fill(0);
        if let IcmpError::FragmentationNeeded { next_hop_mtu } = self {
            put_u16(icmp, field::NEXT_HOP_MTU.start, next_hop_mtu);
        }
        put_u16(icmp, field::CHECKSUM.start, 0);
        let c = checksum::checksum(icmp);
        put_u16(icmp, field::CHECKSUM.start, c);

        let repr = Ipv4Repr {
            src: from,
            dst: src,
            protocol: IpProtocol::ICMP,
            payload_len: icmp_len as u16,
            ttl,
            tos: 0xc0, // internetwork control, as Linux sends its ICMP errors
            ident: 0,
            dont_frag: false,
        };
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[ip_start..ip_start + total]));
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);

    /// A UDP packet 198.19.1.2 -> 198.19.2.2 of `payload` bytes, DF set, at offset 14.
    fn udp_frame(payload: usize, ttl: u8) -> ([u8; 256], usize) {
        let mut b = [0u8; 256];
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(198, 19, 1, 2),
            dst: Ipv4Addr::new(198, 19, 2, 2),
            protocol: IpProtocol::UDP,
            payload_len: payload as u16,
            ttl,
            tos: 0,
            ident: 7,
            dont_frag: true,
        };
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut b[14..]));
        for (i, x) in b[34..34 + payload].iter_mut().enumerate() {
            *x = i as u8;
        }
        (b, 20 + payload)
    }

    #[test]
    fn time_exceeded_quotes_the_header_and_eight_bytes() {
        let (mut b, _) = udp_frame(40, 1);
        let orig: [u8; 28] = b[14..42].try_into().unwrap();
        let len = IcmpError::TimeExceeded.emit_in_place(&mut b, 14, GW, 64).unwrap();
        assert_eq!(len, 20 + 8 + 28);
        let ip = Ipv4Packet::new_checked(&b[14..14 + len]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.protocol()),
            (GW, Ipv4Addr::new(198, 19, 1, 2), IpProtocol::ICMP)
        );
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((icmp.msg_type(), icmp.code()), (11, 0));
        assert_eq!(icmp.check_checksum(), Ok(()));
        assert_eq!(icmp.data(), &orig[..]);
    }

    #[test]
    fn fragmentation_needed_carries_the_next_hop_mtu() {
        let (mut b, _) = udp_frame(100, 64);
        let len =
            IcmpError::FragmentationNeeded { next_hop_mtu: 1450 }.emit_in_place(&mut b, 14, GW, 64).unwrap();
        let ip = Ipv4Packet::new_checked(&b[14..14 + len]).unwrap();
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((icmp.msg_type(), icmp.code(), icmp.next_hop_mtu()), (3, 4, 1450));
        assert_eq!(icmp.check_checksum(), Ok(()));
    }

    #[test]
    fn a_short_original_is_quoted_whole() {
        let (mut b, _) = udp_frame(3, 1);
        let len = IcmpError::TimeExceeded.emit_in_place(&mut b, 14, GW, 64).unwrap();
        assert_eq!(len, 20 + 8 + 23);
    }

    #[test]
    fn no_error_about_an_icmp_error_or_a_later_fragment() {
        let (mut b, _) = udp_frame(40, 1);
        let len = IcmpError::TimeExceeded.emit_in_place(&mut b, 14, GW, 1).unwrap();
        // The error we just built is itself an ICMP error: no error about it.
        let mut again = b;
        assert_eq!(
            IcmpError::TimeExceeded.emit_in_place(&mut again[..14 + len + 40], 14, GW, 64),
            Err(IcmpErrorRefusal::NotAllowed)
        );
        let (mut f, _) = udp_frame(40, 1);
        f[14 + 7] = 1; // fragment offset 8
        assert_eq!(
            IcmpError::TimeExceeded.emit_in_place(&mut f, 14, GW, 64),
            Err(IcmpErrorRefusal::NotAllowed)
        );
    }

    #[test]
    fn no_room_and_bad_originals_are_refused_not_panicked() {
        let (mut b, _) = udp_frame(40, 1);
        assert!(matches!(
            IcmpError::TimeExceeded.emit_in_place(&mut b[..62], 14, GW, 64),
            Err(IcmpErrorRefusal::Original(_))
        ));
        // A 23-byte original ends the buffer at 37; its 51-byte error needs 65.
        let (mut short, _) = udp_frame(3, 1);
        assert_eq!(
            IcmpError::TimeExceeded.emit_in_place(&mut short[..37], 14, GW, 64),
            Err(IcmpErrorRefusal::NoRoom { need: 65, have: 37 })
        );
        assert!(matches!(
            IcmpError::TimeExceeded.emit_in_place(&mut b[..10], 14, GW, 64),
            Err(IcmpErrorRefusal::NoRoom { .. })
        ));
    }
}
