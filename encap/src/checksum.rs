//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried as `u32` accumulators of 16-bit big-endian words and folded at
//! the end; [`update16`] / [`update32`] patch an existing checksum when a field
//! changes, using RFC 1624 equation 3 (`HC' = ~(~HC + ~m + m')`), which — unlike
//! the older equation 2 — never produces the "negative zero" 0xffff where a full
//! recomputation would give 0x0000.

use core::net::Ipv4Addr;

/// Adds the bytes of `data` (as big-endian 16-bit words, an odd last byte padded
/// with zero) to the accumulator `acc`. Never overflows for buffers under 128 KiB.
#[inline]
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// Folds an accumulator to 16 bits with end-around carry.
#[inline]
pub const fn fold(mut acc: u32) -> u16 {
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The checksum over `data`: the ones' complement of the folded sum. A header whose
/// checksum field is already filled in verifies when this returns 0.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// Accumulator for the IPv4 pseudo-header of UDP/TCP (RFC 768): addresses,
/// protocol and the transport length.
#[inline]
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    u32::from(u16::from_be_bytes([s[0], s[1]]))
        + u32::from(u16::from_be_bytes([s[2], s[3]]))
        + u32::from(u16::from_be_bytes([d[0], d[1]]))
        + u32::from(u16::from_be_bytes([d[2], d[3]]))
        + u32::from(protocol)
        + u32::from(length)
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data
/// changed from `old` to `new`.
#[inline]
pub const fn update16(checksum: u16, old: u16, new: u16) -> u16 {
    !fold((!checksum) as u32 + (!old) as u32 + new as u32)
}

/// RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address), as two word updates in one fold.
#[inline]
pub const fn update32(checksum: u16, old: u32, new: u32) -> u16 {
    !fold(
        (!checksum) as u32
            + (!(old >> 16) as u16) as u32
            + (!(old as u16)) as u32
            + (new >> 16)
            + (new & 0xffff),
    )
}

/// The UDP rule: a computed checksum of 0 is sent as 0xffff, because 0 means
/// "no checksum" on the wire (RFC 768).
#[inline]
pub const fn udp_on_wire(computed: u16) -> u16 {
    if computed == 0 { 0xffff } else { computed }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3 example: the sum of 0001 f203 f4f5 f6f7 is ddf2.
    #[test]
    fn sum_matches_the_rfc_1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_the_last_byte_with_zero() {
        assert_eq!(fold(sum(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn a_header_with_its_checksum_filled_in_verifies_to_zero() {
        // IPv4 header from Wikipedia's checksum example, checksum b861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01,
            0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0);
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0xb861);
    }

    /// Recompute-from-scratch reference for the incremental tests.
    fn full(words: &[u16]) -> u16 {
        !fold(words.iter().map(|&w| u32::from(w)).sum())
    }

    #[test]
    fn update16_equals_recomputation_at_the_edges() {
        // Words chosen so the sums hit 0x0000 / 0xffff boundaries.
        let edge = [0x0000u16, 0x0001, 0x7fff, 0x8000, 0xfffe, 0xffff];
        for &a in &edge {
            for &b in &edge {
                for &old in &edge {
                    for &new in &edge {
                        // All-zero data is the one case where ones' complement has two
                        // zeros; no real header is all zero (IPv4 has a version nibble).
                        if a == 0 && b == 0 && new == 0 {
                            continue;
                        }
                        let before = full(&[a, b, old]);
                        let after = full(&[a, b, new]);
                        assert_eq!(update16(before, old, new), after, "a={a:#x} b={b:#x} {old:#x}->{new:#x}");
                    }
                }
            }
        }
    }

    /// RFC 1624 §4: the header whose checksum must become 0x0000, not 0xffff.
    #[test]
    fn update16_gives_zero_not_negative_zero() {
        // Data sums to 0xcd7a + 0x3285 = 0xffff -> checksum 0x0000 after the change.
        let before = full(&[0x3285, 0x5555]);
        let after = update16(before, 0x5555, 0xcd7a);
        assert_eq!(after, 0x0000);
        assert_eq!(after, full(&[0x3285, 0xcd7a]));
    }

    #[test]
    fn update32_equals_recomputation() {
        let mut x: u32 = 0x1234_5678;
        for _ in 0..10_000 {
            // xorshift: deterministic pseudo-random words.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let (other, old, new) = (x as u16, x.rotate_left(7), x.rotate_right(11) ^ 0xffff_0000);
            let before = full(&[other, (old >> 16) as u16, old as u16]);
            let after = full(&[other, (new >> 16) as u16, new as u16]);
            assert_eq!(update32(before, old, new), after);
        }
    }

    #[test]
    fn udp_zero_checksum_is_sent_as_all_ones() {
        assert_eq!(udp_on_wire(0), 0xffff);
        assert_eq!(udp_on_wire(0x1234), 0x1234);
    }
}
