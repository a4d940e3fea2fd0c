//! ECN across the tunnel: RFC 6040 "normal mode", as Linux does it for VXLAN and IPIP
//! (`INET_ECN_encapsulate` / `INET_ECN_decapsulate`), so congestion marks survive the
//! overlay in both directions between weft and kernel nodes.
//!
//! - Encap: the outer ECN field copies the inner one, except that an inner CE becomes
//!   ECT(0) outside (the mark is not duplicated onto the outer packet). The outer DSCP is
//!   the template's.
//! - Decap: an outer CE marks an ECN-capable inner packet CE; an outer CE on a
//!   not-ECN-capable inner packet is dropped (the sender cannot react to it); an outer
//!   ECT(1) over an inner ECT(0) sets the inner to ECT(1). Otherwise the inner is unchanged.
//!   Non-IPv4 inner frames (VXLAN carries any Ethernet) are left alone.

use crate::checksum;
use crate::wire::ethernet::{self, EtherType};
use crate::wire::{get_u16, put_u16};

/// The ECN bits of a TOS byte.
pub const MASK: u8 = 0b11;
/// Not ECN-capable transport.
pub const NOT_ECT: u8 = 0b00;
/// ECN-capable transport (1).
pub const ECT1: u8 = 0b01;
/// ECN-capable transport (0).
pub const ECT0: u8 = 0b10;
/// Congestion experienced.
pub const CE: u8 = 0b11;

/// The outer ECN field for an inner packet whose TOS byte is `inner_tos`.
#[inline]
pub const fn encapsulate(inner_tos: u8) -> u8 {
    match inner_tos & MASK {
        CE => ECT0,
        e => e,
    }
}

/// The ECN field of the inner IPv4 packet of an Ethernet frame (0 for anything else or a
/// frame too short to say).
#[inline]
pub fn inner_ecn(frame: &[u8]) -> u8 {
    if frame.len() > ethernet::HEADER_LEN + 1 && get_u16(frame, 12) == EtherType::IPV4.0 {
        frame[ethernet::HEADER_LEN + 1] & MASK
    } else {
        NOT_ECT
    }
}

/// An outer CE mark arrived on a packet that is not ECN-capable: RFC 6040 says drop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CeOnNotEct;

/// What decapsulation does to an inner ECN field `inner` under an outer one `outer`:
/// the new inner field, or the drop.
#[inline]
pub const fn decapsulate(outer: u8, inner: u8) -> Result<u8, CeOnNotEct> {
    match (outer & MASK, inner & MASK) {
        (CE, NOT_ECT) => Err(CeOnNotEct),
        (CE, _) => Ok(CE),
        (ECT1, ECT0) => Ok(ECT1),
        (_, i) => Ok(i),
    }
}

/// Applies [`decapsulate`] to the decapsulated Ethernet `frame` in place, patching the inner
/// IPv4 header checksum incrementally (RFC 1624). Non-IPv4 frames are left alone.
#[inline]
pub fn decapsulate_in_place(outer_tos: u8, frame: &mut [u8]) -> Result<(), CeOnNotEct> {
    const TOS: usize = ethernet::HEADER_LEN + 1;
    const CHECKSUM: usize = ethernet::HEADER_LEN + 10;
    if frame.len() < ethernet::HEADER_LEN + 20 || get_u16(frame, 12) != EtherType::IPV4.0 {
        return Ok(());
    }
    let tos = frame[TOS];
    let ecn = decapsulate(outer_tos, tos)?;
    if ecn != tos & MASK {
        let new_tos = (tos & !MASK) | ecn;
        // TOS is the low byte of the header's first 16-bit word.
        let word = |t: u8| u16::from_be_bytes([frame[ethernet::HEADER_LEN], t]);
        let c = checksum::update16(get_u16(frame, CHECKSUM), word(tos), word(new_tos));
        frame[TOS] = new_tos;
        put_u16(frame, CHECKSUM, c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::Ipv4Packet;

    #[test]
    fn encap_copies_the_inner_ecn_except_that_ce_becomes_ect0() {
        assert_eq!(encapsulate(0xb8 | NOT_ECT), NOT_ECT, "DSCP is not copied");
        assert_eq!(encapsulate(ECT1), ECT1);
        assert_eq!(encapsulate(ECT0), ECT0);
        assert_eq!(encapsulate(CE), ECT0);
    }

    #[test]
    fn decap_follows_rfc_6040_table_4() {
        for inner in [NOT_ECT, ECT0, ECT1, CE] {
            assert_eq!(decapsulate(NOT_ECT, inner), Ok(inner));
            assert_eq!(decapsulate(ECT0, inner), Ok(inner));
        }
        assert_eq!(decapsulate(ECT1, NOT_ECT), Ok(NOT_ECT));
        assert_eq!(decapsulate(ECT1, ECT0), Ok(ECT1));
        assert_eq!(decapsulate(ECT1, ECT1), Ok(ECT1));
        assert_eq!(decapsulate(ECT1, CE), Ok(CE));
        assert_eq!(decapsulate(CE, NOT_ECT), Err(CeOnNotEct));
        for inner in [ECT0, ECT1, CE] {
            assert_eq!(decapsulate(CE, inner), Ok(CE));
        }
    }

    fn frame(tos: u8) -> [u8; 34] {
        let mut f = [0u8; 34];
        f[12..14].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[1] = tos;
        ip[2..4].copy_from_slice(&20u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[198, 19, 1, 2]);
        ip[16..20].copy_from_slice(&[198, 19, 2, 2]);
        Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        f
    }

    #[test]
    fn an_outer_ce_marks_the_inner_packet_and_its_checksum_stays_valid() {
        let mut f = frame(0x28 | ECT0);
        decapsulate_in_place(CE, &mut f).unwrap();
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.tos(), 0x28 | CE, "DSCP kept, CE set");
        assert!(ip.verify_checksum());
        assert_eq!(inner_ecn(&f), CE);
    }

    #[test]
    fn an_outer_ce_on_a_not_ect_packet_is_refused_and_other_frames_are_untouched() {
        let mut f = frame(0x28);
        assert_eq!(decapsulate_in_place(CE, &mut f), Err(CeOnNotEct));
        assert_eq!(f, frame(0x28), "refused frames are not modified");
        let mut arp = frame(0);
        arp[12..14].copy_from_slice(&EtherType::ARP.0.to_be_bytes());
        let before = arp;
        assert_eq!(decapsulate_in_place(CE, &mut arp), Ok(()));
        assert_eq!(arp, before);
        assert_eq!(decapsulate_in_place(CE, &mut [0u8; 20]), Ok(()), "too short to be IPv4: left alone");
    }
}
