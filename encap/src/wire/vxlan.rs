//! VXLAN headers (RFC 7348 §5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! RFC 7348 says reserved bits are ignored on receipt; Linux's VXLAN device drops
//! frames with unknown flags or reserved VNI-word bits, and weft follows Linux so
//! that both ends of a mixed cluster agree on what is valid.

use core::fmt;

use crate::error::{Layer, ParseError, Problem, malformed, need};

/// A validated 24-bit VXLAN Network Identifier.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vni(u32);

impl Vni {
    /// flannel's default VNI.
    pub const FLANNEL: Vni = Vni(1);
    /// Calico's default VNI.
    pub const CALICO: Vni = Vni(4096);
    pub const MAX: u32 = 0x00ff_ffff;

    /// `None` when `v` does not fit in 24 bits.
    pub const fn try_new(v: u32) -> Option<Vni> {
        if v <= Self::MAX { Some(Vni(v)) } else { None }
    }
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vni({})", self.0)
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// flannel's (and the Linux kernel's) VXLAN UDP port.
pub const PORT_LINUX: u16 = 8472;
/// The IANA VXLAN port, Calico's default.
pub const PORT_IANA: u16 = 4789;

mod field {
    use crate::wire::Field;
    pub const FLAGS: usize = 0;
    pub const RESERVED0: Field = 1..4;
    pub const VNI: Field = 4..7;
    pub const RESERVED1: usize = 7;
}

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = field::RESERVED1 + 1;

const FLAG_I: u8 = 0x08;

/// A read/write view of a VXLAN header and its payload (the inner Ethernet frame).
#[derive(Debug, Clone)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        VxlanPacket { buffer }
    }

    /// Wraps a buffer holding at least the header, with valid flags and reserved bits.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Length, I flag set, every reserved bit clear.
    pub fn check(&self) -> Result<(), ParseError> {
        let b = self.buffer.as_ref();
        need(Layer::Vxlan, HEADER_LEN, b.len())?;
        if b[field::FLAGS] & FLAG_I == 0 {
            return Err(malformed(Layer::Vxlan, Problem::VxlanNoVni));
        }
        if b[field::FLAGS] != FLAG_I || b[field::RESERVED0] != [0, 0, 0] || b[field::RESERVED1] != 0 {
            return Err(malformed(Layer::Vxlan, Problem::VxlanReserved));
        }
        Ok(())
    }

    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    pub fn vni(&self) -> Vni {
        let b = &self.buffer.as_ref()[field::VNI];
        Vni(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Writes flags (I only), zero reserved fields and `vni`.
    pub fn set_header(&mut self, vni: Vni) {
        let b = self.buffer.as_mut();
        b[field::FLAGS] = FLAG_I;
        b[field::RESERVED0].fill(0);
        b[field::VNI].copy_from_slice(&vni.0.to_be_bytes()[1..]);
        b[field::RESERVED1] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: [u8; 8] = [0x08, 0, 0, 0, 0x00, 0x10, 0x00, 0x00];

    #[test]
    fn a_header_with_the_i_flag_yields_its_vni() {
        let p = VxlanPacket::new_checked(&HDR[..]).unwrap();
        assert_eq!(p.vni(), Vni::CALICO);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn set_header_writes_the_fixture() {
        let mut b = [0xffu8; 8];
        VxlanPacket::new_unchecked(&mut b[..]).set_header(Vni::CALICO);
        assert_eq!(b, HDR);
    }

    #[test]
    fn missing_i_flag_and_reserved_bits_are_named() {
        let mut b = HDR;
        b[0] = 0;
        assert_eq!(
            VxlanPacket::new_checked(&b[..]).err(),
            Some(malformed(Layer::Vxlan, Problem::VxlanNoVni))
        );
        for i in [0usize, 1, 2, 3, 7] {
            let mut b = HDR;
            b[i] |= 0x80;
            assert_eq!(
                VxlanPacket::new_checked(&b[..]).err(),
                Some(malformed(Layer::Vxlan, Problem::VxlanReserved)),
                "byte {i}"
            );
        }
    }

    #[test]
    fn vni_is_bounded_to_24_bits() {
        assert_eq!(Vni::try_new(0x00ff_ffff).map(Vni::get), Some(0x00ff_ffff));
        assert_eq!(Vni::try_new(0x0100_0000), None);
    }

    #[test]
    fn short_headers_are_truncated() {
        for n in 0..8 {
            assert_eq!(
                VxlanPacket::new_checked(&HDR[..n]).err(),
                Some(ParseError::Truncated { layer: Layer::Vxlan, need: 8, have: n })
            );
        }
    }
}
