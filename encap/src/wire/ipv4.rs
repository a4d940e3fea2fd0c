//! IPv4 headers (RFC 791), options allowed and skipped.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |   DSCP/ECN    |          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options (IHL > 5)                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::fmt;
use core::net::Ipv4Addr;

use crate::checksum;
use crate::error::{Layer, ParseError, Problem, malformed, need};
use crate::wire::{get_ipv4, get_u16, put_u16};

/// The IPv4 protocol field: an open number space.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// IP in IP (RFC 2003).
    pub const IPIP: IpProtocol = IpProtocol(4);
    pub const TCP: IpProtocol = IpProtocol(6);
    pub const UDP: IpProtocol = IpProtocol(17);
    pub const SCTP: IpProtocol = IpProtocol(132);
}

impl fmt::Debug for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpProtocol({})", self.0)
    }
}

mod field {
    use crate::wire::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Largest header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet: the header and `total_len` bytes in all.
/// Bytes past `total_len` (Ethernet padding) belong to no layer.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it (for emitting into a buffer you sized).
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks what every accessor relies on: version 4, IHL ≥ 5, the whole header
    /// (with options) present, total length ≥ header length and present in the buffer.
    /// Checksum and fragmentation are checked separately: they are policy, not bounds.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let b = self.buffer.as_ref();
        need(Layer::Ipv4, HEADER_LEN, b.len())?;
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(malformed(Layer::Ipv4, Problem::IpVersion));
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(malformed(Layer::Ipv4, Problem::Ipv4HeaderLength));
        }
        need(Layer::Ipv4, hl, b.len())?;
        let total = usize::from(self.total_len());
        if total < hl {
            return Err(malformed(Layer::Ipv4, Problem::Ipv4TotalLength));
        }
        need(Layer::Ipv4, total, b.len())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    /// The DSCP and ECN byte (formerly TOS).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT.start)
    }
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & OFFSET_MASK) << 3
    }
    /// MF set or a non-zero offset: part of a fragmented datagram.
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start) & (FLAG_MF | OFFSET_MASK) != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::SRC_ADDR.start)
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::DST_ADDR.start)
    }
    /// True when the header checksum (over the whole header, options included) verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
    /// The header checksum verifies, else `Malformed(Ipv4Checksum)`.
    pub fn check_checksum(&self) -> Result<(), ParseError> {
        if self.verify_checksum() { Ok(()) } else { Err(malformed(Layer::Ipv4, Problem::Ipv4Checksum)) }
    }
    /// Options bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// The payload: from the end of the header to `total_len`.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length (a multiple of 4, 20..=60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }
    pub fn set_total_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH.start, v);
    }
    pub fn set_ident(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::IDENT.start, v);
    }
    /// Sets DF, clears MF and the offset.
    pub fn set_unfragmented(&mut self, dont_frag: bool) {
        put_u16(self.buffer.as_mut(), field::FLG_OFF.start, if dont_frag { FLAG_DF } else { 0 });
    }
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.0;
    }
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }
    /// Computes the header checksum from scratch and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(c);
    }

    /// Decrements TTL and patches the checksum incrementally (RFC 1624).
    /// Returns the new TTL, or `None` — leaving the packet untouched — when the TTL
    /// is already 0 or 1 and the packet must not be forwarded.
    #[inline]
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let b = self.buffer.as_mut();
        let ttl = b[field::TTL];
        if ttl <= 1 {
            return None;
        }
        // TTL and protocol share one 16-bit word of the checksum.
        let old = u16::from_be_bytes([ttl, b[field::PROTOCOL]]);
        let new = old - 0x0100;
        b[field::TTL] = ttl - 1;
        let c = checksum::update16(get_u16(b, field::CHECKSUM.start), old, new);
        put_u16(b, field::CHECKSUM.start, c);
        Some(ttl - 1)
    }

    /// Replaces the total length, patching the checksum incrementally.
    #[inline]
    pub fn patch_total_len(&mut self, v: u16) {
        let old = self.total_len();
        self.set_total_len(v);
        let c = checksum::update16(self.checksum(), old, v);
        self.set_checksum(c);
    }

    /// Replaces the source address, patching the header checksum incrementally.
    /// Transport checksums that cover the pseudo-header are the caller's business.
    #[inline]
    pub fn patch_src_addr(&mut self, a: Ipv4Addr) {
        let old = u32::from(self.src_addr());
        self.set_src_addr(a);
        let c = checksum::update32(self.checksum(), old, u32::from(a));
        self.set_checksum(c);
    }

    /// Replaces the destination address, patching the header checksum incrementally.
    #[inline]
    pub fn patch_dst_addr(&mut self, a: Ipv4Addr) {
        let old = u32::from(self.dst_addr());
        self.set_dst_addr(a);
        let c = checksum::update32(self.checksum(), old, u32::from(a));
        self.set_checksum(c);
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..total]
    }
}

/// High-level representation of an option-less IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    pub payload_len: u16,
    pub ttl: u8,
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Reads the header fields of a checked packet whose header checksum verifies
    /// and which is not a fragment.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Self, ParseError> {
        p.check_checksum()?;
        if p.is_fragment() {
            return Err(malformed(Layer::Ipv4, Problem::Ipv4Fragment));
        }
        Ok(Ipv4Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len() - p.header_len() as u16,
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with its checksum into the start of `p`'s buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv4Packet<T>) {
        p.set_version_and_header_len(HEADER_LEN);
        p.set_tos(self.tos);
        p.set_total_len(HEADER_LEN as u16 + self.payload_len);
        p.set_ident(self.ident);
        p.set_unfragmented(self.dont_frag);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 192.168.0.1 -> 192.168.0.199, UDP, total 0x73, DF, TTL 64, checksum b861.
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0,
        0xa8, 0x00, 0xc7,
    ];

    fn packet() -> [u8; 0x73] {
        let mut b = [0u8; 0x73];
        b[..20].copy_from_slice(&HDR);
        b
    }

    #[test]
    fn a_valid_header_exposes_every_field() {
        let b = packet();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 0x73 - 20);
    }

    #[test]
    fn every_truncation_is_a_length_error_at_ipv4() {
        let b = packet();
        for n in 0..b.len() {
            let e = Ipv4Packet::new_checked(&b[..n]).unwrap_err();
            assert!(e.is_truncated() && e.layer() == Layer::Ipv4, "len {n}: {e}");
        }
    }

    #[test]
    fn bad_version_ihl_and_total_length_are_content_errors() {
        let mut b = packet();
        b[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&b[..]).err(), Some(malformed(Layer::Ipv4, Problem::IpVersion)));
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(malformed(Layer::Ipv4, Problem::Ipv4HeaderLength))
        );
        b[0] = 0x45;
        b[2] = 0;
        b[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(malformed(Layer::Ipv4, Problem::Ipv4TotalLength))
        );
    }

    #[test]
    fn options_are_covered_by_length_and_checksum() {
        let mut b = [0u8; 28];
        b[..20].copy_from_slice(&HDR);
        b[0] = 0x46; // IHL 6: four bytes of options (NOP NOP NOP EOL)
        b[2] = 0;
        b[3] = 28;
        b[20..24].copy_from_slice(&[1, 1, 1, 0]);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload().len(), 4);
        // A 24-byte header cut at 22 bytes is truncated, asking for 24.
        assert_eq!(
            Ipv4Packet::new_checked(&b[..22]).err(),
            Some(ParseError::Truncated { layer: Layer::Ipv4, need: 24, have: 22 })
        );
    }

    #[test]
    fn fragments_are_recognised() {
        let mut b = packet();
        b[6] = 0x20; // MF
        assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_fragment());
        b[6] = 0x00;
        b[7] = 0x01; // offset 8
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 8);
    }

    #[test]
    fn ttl_decrement_keeps_the_checksum_valid_for_every_ttl_and_protocol() {
        for ttl in 2..=255u8 {
            for proto in [0u8, 1, 4, 17, 0xff] {
                let mut b = packet();
                b[8] = ttl;
                b[9] = proto;
                let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
                p.fill_checksum();
                assert_eq!(p.decrement_ttl(), Some(ttl - 1));
                assert!(p.verify_checksum(), "ttl {ttl} proto {proto}");
                let incremental = p.checksum();
                p.fill_checksum();
                assert_eq!(incremental, p.checksum(), "ttl {ttl} proto {proto}");
            }
        }
    }

    #[test]
    fn ttl_of_one_or_zero_is_not_decremented() {
        for ttl in [0u8, 1] {
            let mut b = packet();
            b[8] = ttl;
            let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
            p.fill_checksum();
            let before = p.checksum();
            assert_eq!(p.decrement_ttl(), None);
            assert_eq!((p.ttl(), p.checksum()), (ttl, before));
        }
    }

    #[test]
    fn address_and_length_patches_equal_recomputation() {
        let mut x = 0x9e37_79b9u32;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut b = packet();
            let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
            p.patch_src_addr(Ipv4Addr::from(x));
            p.patch_dst_addr(Ipv4Addr::from(x.rotate_left(9)));
            p.patch_total_len(20 + (x as u16 % 80));
            let patched = p.checksum();
            p.fill_checksum();
            assert_eq!(patched, p.checksum());
        }
    }

    #[test]
    fn repr_round_trips_through_emit_and_parse() {
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(198, 18, 0, 1),
            dst: Ipv4Addr::new(198, 18, 0, 2),
            protocol: IpProtocol::IPIP,
            payload_len: 40,
            ttl: 64,
            tos: 0xb8,
            ident: 0x1234,
            dont_frag: true,
        };
        let mut b = [0u8; 60];
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        repr.emit(&mut p);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr);
    }
}
