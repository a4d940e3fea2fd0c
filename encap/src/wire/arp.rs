//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Hardware type (1)        |     Protocol type (0x0800)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  HLEN (6)     |   PLEN (4)    |          Operation            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Sender hardware address (6) | Sender protocol address (4) |
//! |     Target hardware address (6) | Target protocol address (4) |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::Ipv4Addr;

use crate::error::{Layer, ParseError, Problem, malformed, need};
use crate::wire::ethernet::{EtherType, MacAddr};
use crate::wire::{get_ipv4, get_mac, get_u16, put_u16};

mod field {
    use crate::wire::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOperation {
    Request,
    Reply,
}

impl ArpOperation {
    const fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        need(Layer::Arp, PACKET_LEN, p.buffer.as_ref().len())?;
        Ok(p)
    }
    pub fn hardware_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::HTYPE.start)
    }
    pub fn protocol_type(&self) -> EtherType {
        EtherType(get_u16(self.buffer.as_ref(), field::PTYPE.start))
    }
    pub fn operation_code(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::OPER.start)
    }
    pub fn sender_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::SHA.start)
    }
    pub fn sender_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::SPA.start)
    }
    pub fn target_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::THA.start)
    }
    pub fn target_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::TPA.start)
    }
}

/// High-level representation of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Validates hardware/protocol types and lengths and the operation.
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> Result<Self, ParseError> {
        let b = p.buffer.as_ref();
        if p.hardware_type() != 1 || b[field::HLEN] != 6 {
            return Err(malformed(Layer::Arp, Problem::ArpHardware));
        }
        if p.protocol_type() != EtherType::IPV4 || b[field::PLEN] != 4 {
            return Err(malformed(Layer::Arp, Problem::ArpProtocol));
        }
        let operation = match p.operation_code() {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            _ => return Err(malformed(Layer::Arp, Problem::ArpOperation)),
        };
        Ok(ArpRepr {
            operation,
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        })
    }

    /// The reply a host owning `target_ip` with `our_mac` sends to this request.
    pub const fn reply(&self, our_mac: MacAddr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: our_mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }

    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes all 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ArpPacket<T>) {
        let b = p.buffer.as_mut();
        put_u16(b, field::HTYPE.start, 1);
        put_u16(b, field::PTYPE.start, EtherType::IPV4.0);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        put_u16(b, field::OPER.start, self.operation.code());
        b[field::SHA].copy_from_slice(&self.sender_mac.0);
        b[field::SPA].copy_from_slice(&self.sender_ip.octets());
        b[field::THA].copy_from_slice(&self.target_mac.0);
        b[field::TPA].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 198.19.1.1? Tell 198.19.1.2 (02:00:00:00:01:02).
    const REQUEST: [u8; 28] =
        [0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 1, 2, 198, 19, 1, 2, 0, 0, 0, 0, 0, 0, 198, 19, 1, 1];

    #[test]
    fn a_request_parses_and_its_reply_swaps_the_parties() {
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap()).unwrap();
        assert_eq!(repr.operation, ArpOperation::Request);
        assert_eq!(repr.target_ip, Ipv4Addr::new(198, 19, 1, 1));
        let gw = MacAddr([2, 0, 0, 0, 0, 0xfe]);
        let reply = repr.reply(gw);
        let mut b = [0u8; 28];
        reply.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
        let back = ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(back.operation, ArpOperation::Reply);
        assert_eq!((back.sender_mac, back.sender_ip), (gw, Ipv4Addr::new(198, 19, 1, 1)));
        assert_eq!((back.target_mac, back.target_ip), (repr.sender_mac, repr.sender_ip));
    }

    #[test]
    fn emit_reproduces_the_fixture() {
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap()).unwrap();
        let mut b = [0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
        assert_eq!(b, REQUEST);
    }

    #[test]
    fn wrong_types_lengths_and_operations_are_named() {
        let cases = [
            (1usize, 2u8, Problem::ArpHardware),
            (4, 8, Problem::ArpHardware),
            (2, 0x86, Problem::ArpProtocol),
            (5, 16, Problem::ArpProtocol),
            (7, 3, Problem::ArpOperation),
        ];
        for (at, v, problem) in cases {
            let mut b = REQUEST;
            b[at] = v;
            let p = ArpPacket::new_checked(&b[..]).unwrap();
            assert_eq!(ArpRepr::parse(&p), Err(malformed(Layer::Arp, problem)), "byte {at}");
        }
    }

    #[test]
    fn short_packets_are_truncated() {
        for n in 0..28 {
            assert!(ArpPacket::new_checked(&REQUEST[..n]).unwrap_err().is_truncated());
        }
    }
}
