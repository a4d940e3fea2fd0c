//! Ethernet II frames, with at most one IEEE 802.1Q tag.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Destination MAC (6 bytes)                    |
//! +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//! |                    Source MAC (6 bytes)                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      EtherType / TPID       | [802.1Q: PCP|DEI|VID, EtherType]|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::fmt;

use crate::error::{Layer, ParseError, Problem, malformed, need};
use crate::wire::{get_mac, get_u16};

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub const fn octets(self) -> [u8; 6] {
        self.0
    }
    pub const fn is_broadcast(self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }
    /// Group bit (I/G) set: broadcast or multicast.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }
    /// A unicast address that is not all zeros.
    pub const fn is_unicast(self) -> bool {
        !self.is_multicast() && !matches!(self.0, [0, 0, 0, 0, 0, 0])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error from parsing a MAC address string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacParseError;

impl fmt::Display for MacParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a MAC address: want six two-digit hex octets separated by ':' or '-' (e.g. 0a:58:c6:13:01:01)")
    }
}

impl core::error::Error for MacParseError {}

/// Parses what Go's `net.ParseMAC` accepts for a 48-bit address — six two-digit hex
/// octets separated by ':' or '-' — so VtepMACs written by flannel always parse.
impl core::str::FromStr for MacAddr {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut out {
            let p = parts.next().ok_or(MacParseError)?;
            if p.len() != 2 {
                return Err(MacParseError);
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| MacParseError)?;
        }
        if parts.next().is_some() {
            return Err(MacParseError);
        }
        Ok(MacAddr(out))
    }
}

/// The EtherType field: an open number space, so unknown values are data, not errors.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
    pub const VLAN: EtherType = EtherType(0x8100);
    pub const QINQ: EtherType = EtherType(0x88a8);
    pub const IPV6: EtherType = EtherType(0x86dd);
}

impl fmt::Debug for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EtherType({:#06x})", self.0)
    }
}

/// A validated 12-bit VLAN identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanId(u16);

impl VlanId {
    /// `None` when `id` does not fit in 12 bits.
    pub const fn try_new(id: u16) -> Option<VlanId> {
        if id <= 0x0fff { Some(VlanId(id)) } else { None }
    }
    pub const fn get(self) -> u16 {
        self.0
    }
}

/// What to do with a frame carrying an 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VlanPolicy {
    /// Step over one tag; report its VID. A second tag is `NestedVlan`.
    Skip,
    /// Refuse tagged frames with `VlanTagged` (weft's uplinks are untagged).
    #[default]
    Reject,
}

mod field {
    use crate::wire::Field;
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    /// Present only when ETHERTYPE is 0x8100.
    pub const VLAN_TCI: Field = 14..16;
    pub const VLAN_ETHERTYPE: Field = 16..18;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::ETHERTYPE.end;
/// Length of a header with one 802.1Q tag.
pub const TAGGED_HEADER_LEN: usize = field::VLAN_ETHERTYPE.end;

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it; accessors panic on a short buffer, so
    /// use this only on buffers you sized yourself (emitting).
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// The buffer holds at least the untagged header.
    pub fn check_len(&self) -> Result<(), ParseError> {
        need(Layer::Ethernet, HEADER_LEN, self.buffer.as_ref().len())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst_addr(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::DESTINATION.start)
    }

    pub fn src_addr(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::SOURCE.start)
    }

    /// The outer EtherType (0x8100 for a tagged frame).
    pub fn ethertype(&self) -> EtherType {
        EtherType(get_u16(self.buffer.as_ref(), field::ETHERTYPE.start))
    }

    /// Resolves the VLAN policy: the payload's EtherType, its offset and the tag, if any.
    pub fn header(&self, policy: VlanPolicy) -> Result<EthernetHeader, ParseError> {
        let b = self.buffer.as_ref();
        let outer = self.ethertype();
        if outer == EtherType::QINQ {
            return Err(malformed(Layer::Vlan, Problem::NestedVlan));
        }
        if outer != EtherType::VLAN {
            return Ok(EthernetHeader { ethertype: outer, header_len: HEADER_LEN, vlan: None });
        }
        if policy == VlanPolicy::Reject {
            return Err(malformed(Layer::Vlan, Problem::VlanTagged));
        }
        need(Layer::Vlan, TAGGED_HEADER_LEN, b.len())?;
        let tci = get_u16(b, field::VLAN_TCI.start);
        let inner = EtherType(get_u16(b, field::VLAN_ETHERTYPE.start));
        if inner == EtherType::VLAN || inner == EtherType::QINQ {
            return Err(malformed(Layer::Vlan, Problem::NestedVlan));
        }
        Ok(EthernetHeader {
            ethertype: inner,
            header_len: TAGGED_HEADER_LEN,
            vlan: VlanId::try_new(tci & 0x0fff),
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }
    pub fn set_ethertype(&mut self, ty: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ty.0.to_be_bytes());
    }
}

/// The resolved Ethernet header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    /// EtherType of the payload (after the tag, if one was skipped).
    pub ethertype: EtherType,
    /// Offset of the payload: 14, or 18 with a tag.
    pub header_len: usize,
    pub vlan: Option<VlanId>,
}

/// High-level representation of an untagged Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    pub src: MacAddr,
    pub dst: MacAddr,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first 14 bytes of `frame`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst);
        frame.set_src_addr(self.src);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 16] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, 0x45, 0x00];
    const TAGGED: [u8; 20] =
        [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x81, 0x00, 0x20, 0x64, 0x08, 0x06, 0, 1];

    #[test]
    fn untagged_frame_exposes_addresses_and_type() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.src_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        let h = f.header(VlanPolicy::Reject).unwrap();
        assert_eq!((h.ethertype, h.header_len, h.vlan), (EtherType::IPV4, 14, None));
    }

    #[test]
    fn one_vlan_tag_is_skipped_when_asked() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        let h = f.header(VlanPolicy::Skip).unwrap();
        assert_eq!(h.ethertype, EtherType::ARP);
        assert_eq!(h.header_len, 18);
        assert_eq!(h.vlan.map(VlanId::get), Some(100));
    }

    #[test]
    fn a_vlan_tag_is_rejected_by_default() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(f.header(VlanPolicy::default()), Err(malformed(Layer::Vlan, Problem::VlanTagged)));
    }

    #[test]
    fn a_second_tag_is_nested_vlan() {
        let mut qinq = TAGGED;
        qinq[16] = 0x81;
        qinq[17] = 0x00;
        let f = EthernetFrame::new_checked(&qinq[..]).unwrap();
        assert_eq!(f.header(VlanPolicy::Skip), Err(malformed(Layer::Vlan, Problem::NestedVlan)));
    }

    #[test]
    fn a_tag_cut_short_is_truncated_at_the_vlan_layer() {
        let f = EthernetFrame::new_checked(&TAGGED[..16]).unwrap();
        assert_eq!(
            f.header(VlanPolicy::Skip),
            Err(ParseError::Truncated { layer: Layer::Vlan, need: 18, have: 16 })
        );
    }

    #[test]
    fn short_frames_are_truncated_at_every_length() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&UNTAGGED[..n]).err(),
                Some(ParseError::Truncated { layer: Layer::Ethernet, need: 14, have: n })
            );
        }
    }

    #[test]
    fn emit_writes_a_header_that_parses_back() {
        let repr = EthernetRepr {
            src: MacAddr([2, 0, 0, 0, 0, 1]),
            dst: MacAddr([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::IPV4,
        };
        let mut buf = [0u8; 14];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..], UNTAGGED[..14]);
    }

    #[test]
    fn mac_addresses_parse_and_print() {
        let m: MacAddr = "0a:58:0A:f4:01:01".parse().unwrap();
        assert_eq!(m, MacAddr([0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01]));
        extern crate std;
        use std::string::ToString;
        assert_eq!(m.to_string(), "0a:58:0a:f4:01:01");
        assert!("0a:58:0a:f4:01".parse::<MacAddr>().is_err());
        assert!("0a:58:0a:f4:01:01:02".parse::<MacAddr>().is_err());
        assert!("0a:58:0a:f4:01:zz".parse::<MacAddr>().is_err());
        assert!("a:58:0a:f4:01:01".parse::<MacAddr>().is_err());
        assert_eq!("0a-58-0a-f4-01-01".parse::<MacAddr>(), Ok(m));
        assert!(m.is_unicast() && !MacAddr::BROADCAST.is_unicast() && MacAddr::BROADCAST.is_broadcast());
    }
}
