//! UDP headers (RFC 768).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            Length             |           Checksum            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::Ipv4Addr;

use crate::checksum;
use crate::error::{Layer, ParseError, Problem, malformed, need};
use crate::wire::ipv4::IpProtocol;
use crate::wire::{get_u16, put_u16};

mod field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A read/write view of a UDP datagram: `len()` bytes, header included.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps the IP payload after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The header is present and the length field lies in `8..=buffer length`.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        need(Layer::Udp, HEADER_LEN, have)?;
        let len = usize::from(self.len());
        if len < HEADER_LEN || len > have {
            return Err(malformed(Layer::Udp, Problem::UdpLength));
        }
        Ok(())
    }

    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }
    /// The length field: header plus payload.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// The sum that verifies to zero for a correct non-zero checksum.
    fn verify_sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let len = self.len();
        let acc = checksum::pseudo_header(src, dst, IpProtocol::UDP.0, len);
        !checksum::fold(checksum::sum(acc, &self.buffer.as_ref()[..usize::from(len)]))
    }

    /// Checks the checksum under `policy`. A zero checksum means "none" (RFC 768).
    pub fn check_checksum(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        policy: UdpChecksumPolicy,
    ) -> Result<(), ParseError> {
        let ok = match (policy, self.checksum()) {
            (UdpChecksumPolicy::Ignore, _) => true,
            (UdpChecksumPolicy::VerifyIfPresent, 0) => true,
            (UdpChecksumPolicy::Require, 0) => false,
            (_, _) => self.verify_sum(src, dst) == 0,
        };
        if ok { Ok(()) } else { Err(malformed(Layer::Udp, Problem::UdpChecksum)) }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::SRC_PORT.start, v);
    }
    pub fn set_dst_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::DST_PORT.start, v);
    }
    pub fn set_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH.start, v);
    }
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }
    /// Computes the checksum over pseudo-header, header and payload (`len()` bytes).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = self.verify_sum(src, dst);
        self.set_checksum(checksum::udp_on_wire(c));
    }
}

/// How a receiver treats the UDP checksum of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UdpChecksumPolicy {
    /// Never look at it.
    Ignore,
    /// Zero means "none" and is accepted; anything else must verify (Linux's behaviour).
    #[default]
    VerifyIfPresent,
    /// A checksum must be present and verify.
    Require,
}

/// High-level representation of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: u16,
}

impl UdpRepr {
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }
    /// Writes the header with a zero checksum; call `fill_checksum` after the payload
    /// is in place if one is wanted.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut UdpPacket<T>) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(HEADER_LEN as u16 + self.payload_len);
        p.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);
    /// smoltcp's fixture: 48896 -> 53, length 12, checksum 0x124d.
    const DGRAM: [u8; 12] = [0xbf, 0x00, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x4d, 0xaa, 0x00, 0x00, 0xff];

    #[test]
    fn a_datagram_exposes_ports_length_and_payload() {
        let p = UdpPacket::new_checked(&DGRAM[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (48896, 53, 12));
        assert_eq!(p.payload(), &[0xaa, 0, 0, 0xff]);
        assert_eq!(p.check_checksum(SRC, DST, UdpChecksumPolicy::Require), Ok(()));
    }

    #[test]
    fn fill_checksum_reproduces_the_fixture() {
        let mut b = DGRAM;
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(SRC, DST);
        assert_eq!(b, DGRAM);
    }

    #[test]
    fn a_bad_checksum_is_caught_unless_ignored() {
        let mut b = DGRAM;
        b[11] ^= 1;
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        let bad = Err(malformed(Layer::Udp, Problem::UdpChecksum));
        assert_eq!(p.check_checksum(SRC, DST, UdpChecksumPolicy::VerifyIfPresent), bad);
        assert_eq!(p.check_checksum(SRC, DST, UdpChecksumPolicy::Ignore), Ok(()));
    }

    #[test]
    fn a_zero_checksum_means_none_unless_required() {
        let mut b = DGRAM;
        b[6] = 0;
        b[7] = 0;
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.check_checksum(SRC, DST, UdpChecksumPolicy::VerifyIfPresent), Ok(()));
        assert!(p.check_checksum(SRC, DST, UdpChecksumPolicy::Require).is_err());
    }

    #[test]
    fn length_field_outside_the_buffer_or_below_eight_is_malformed() {
        for n in 0..8 {
            assert!(UdpPacket::new_checked(&DGRAM[..n]).unwrap_err().is_truncated());
        }
        let bad = Some(malformed(Layer::Udp, Problem::UdpLength));
        assert_eq!(UdpPacket::new_checked(&DGRAM[..11]).err(), bad);
        let mut b = DGRAM;
        b[5] = 7;
        assert_eq!(UdpPacket::new_checked(&b[..]).err(), bad);
    }

    #[test]
    fn a_checksum_computing_to_zero_is_sent_as_ffff() {
        // Search payloads for one whose checksum computes to 0: it must go out as 0xffff
        // and still verify.
        let mut found = false;
        for v in 0..=u16::MAX {
            let mut b = [0u8; 10];
            let mut p = UdpPacket::new_unchecked(&mut b[..]);
            UdpRepr { src_port: 1, dst_port: 2, payload_len: 2 }.emit(&mut p);
            b[8..10].copy_from_slice(&v.to_be_bytes());
            let mut p = UdpPacket::new_unchecked(&mut b[..]);
            p.fill_checksum(SRC, DST);
            if p.checksum() == 0xffff {
                found = true;
                assert_eq!(p.check_checksum(SRC, DST, UdpChecksumPolicy::Require), Ok(()));
                break;
            }
        }
        assert!(found, "no payload hit the zero-checksum case");
    }
}
