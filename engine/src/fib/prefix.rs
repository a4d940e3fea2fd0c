//! `Ipv4Prefix`: a validated IPv4 network prefix (`10.244.1.0/24`).
//!
//! Validation happens once, when a prefix is built or parsed: the length is at most 32 and the
//! host bits are zero. Everything downstream (writer, reference model) can then trust it.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Why a prefix was rejected. Each variant names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The length is larger than 32.
    #[error("prefix length {len} is longer than 32 bits (in {addr}/{len})")]
    LengthTooLong {
        /// The address part as given.
        addr: Ipv4Addr,
        /// The rejected length.
        len: u8,
    },
    /// Bits beyond the prefix length are set.
    #[error("{addr}/{len} has host bits set ({host_bits}); the network is {network}/{len}")]
    HostBitsSet {
        /// The address part as given.
        addr: Ipv4Addr,
        /// The prefix length.
        len: u8,
        /// The bits that should have been zero.
        host_bits: Ipv4Addr,
        /// The address with the host bits cleared, as a hint.
        network: Ipv4Addr,
    },
    /// The text has no `/len` part.
    #[error("{input:?} is not a prefix: missing \"/length\" (expected e.g. 10.244.1.0/24)")]
    MissingLength {
        /// The text as given.
        input: String,
    },
    /// The address part does not parse as a dotted-quad IPv4 address.
    #[error("{input:?} is not a prefix: {address:?} is not an IPv4 address")]
    InvalidAddress {
        /// The text as given.
        input: String,
        /// The part before the slash.
        address: String,
    },
    /// The length part is not a decimal number in 0..=255.
    #[error("{input:?} is not a prefix: {length:?} is not a prefix length (0-32)")]
    InvalidLength {
        /// The text as given.
        input: String,
        /// The part after the slash.
        length: String,
    },
}

/// An IPv4 prefix: a network address whose host bits are zero, and a length in `0..=32`.
///
/// Ordered by (network address, length), which is the order a sorted route dump uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Prefix {
    bits: u32,
    len: u8,
}

impl Ipv4Prefix {
    /// The default route, `0.0.0.0/0`.
    pub const DEFAULT: Ipv4Prefix = Ipv4Prefix { bits: 0, len: 0 };

    /// Builds a prefix; the host bits of `addr` must be zero and `len` at most 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 32 {
            return Err(PrefixError::LengthTooLong { addr, len });
        }
        let bits = u32::from(addr);
        let host = bits & !netmask(len);
        if host != 0 {
            return Err(PrefixError::HostBitsSet {
                addr,
                len,
                host_bits: Ipv4Addr::from(host),
                network: Ipv4Addr::from(bits & netmask(len)),
            });
        }
        Ok(Ipv4Prefix { bits, len })
    }

    /// Builds a prefix from a host-order address; same rules as [`Ipv4Prefix::new`].
    pub fn from_bits(bits: u32, len: u8) -> Result<Self, PrefixError> {
        Self::new(Ipv4Addr::from(bits), len)
    }

    /// The prefix of length `len` that contains the host-order address `addr` (host bits are
    /// cleared). Lengths above 32 are clamped to 32.
    pub fn covering(addr: u32, len: u8) -> Self {
        let len = len.min(32);
        Ipv4Prefix { bits: addr & netmask(len), len }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.bits)
    }

    /// The network address in host byte order.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The prefix length, `0..=32`.
    #[expect(clippy::len_without_is_empty, reason = "a prefix length, not a collection size")]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether the host-order address `addr` lies inside this prefix.
    pub fn contains(&self, addr: u32) -> bool {
        addr & netmask(self.len) == self.bits
    }

    /// The first and last host-order address inside this prefix.
    pub fn range(&self) -> (u32, u32) {
        (self.bits, self.bits | !netmask(self.len))
    }
}

/// The netmask of a prefix length in host order; `len` must be at most 32.
pub(crate) fn netmask(len: u8) -> u32 {
    // `checked_shl` handles len == 0 (shift by 32) without overflow.
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl FromStr for Ipv4Prefix {
    type Err = PrefixError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let Some((address, length)) = input.split_once('/') else {
            return Err(PrefixError::MissingLength { input: input.to_owned() });
        };
        let addr: Ipv4Addr = address.parse().map_err(|_| PrefixError::InvalidAddress {
            input: input.to_owned(),
            address: address.to_owned(),
        })?;
        let len_ok = !length.is_empty() && length.bytes().all(|b| b.is_ascii_digit());
        let len: u8 = length.parse().ok().filter(|_| len_ok).ok_or_else(|| PrefixError::InvalidLength {
            input: input.to_owned(),
            length: length.to_owned(),
        })?;
        Ipv4Prefix::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_prints_and_parses_as_cidr_text() {
        let p: Ipv4Prefix = "10.244.1.0/24".parse().unwrap();
        assert_eq!(p.addr(), Ipv4Addr::new(10, 244, 1, 0));
        assert_eq!(p.len(), 24);
        assert_eq!(p.to_string(), "10.244.1.0/24");
        assert_eq!("0.0.0.0/0".parse::<Ipv4Prefix>().unwrap(), Ipv4Prefix::DEFAULT);
        assert_eq!("198.19.3.7/32".parse::<Ipv4Prefix>().unwrap().range(), (0xc613_0307, 0xc613_0307));
    }

    #[test]
    fn host_bits_are_rejected_with_the_network_as_a_hint() {
        let err = "10.244.1.5/24".parse::<Ipv4Prefix>().unwrap_err();
        assert_eq!(
            err,
            PrefixError::HostBitsSet {
                addr: Ipv4Addr::new(10, 244, 1, 5),
                len: 24,
                host_bits: Ipv4Addr::new(0, 0, 0, 5),
                network: Ipv4Addr::new(10, 244, 1, 0),
            }
        );
        let text = err.to_string();
        assert!(text.contains("host bits") && text.contains("10.244.1.0/24"), "{text}");
        assert!(Ipv4Prefix::new(Ipv4Addr::new(0, 0, 0, 1), 0).is_err());
    }

    #[test]
    fn a_length_over_32_is_rejected() {
        assert_eq!(
            Ipv4Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 33),
            Err(PrefixError::LengthTooLong { addr: Ipv4Addr::new(10, 0, 0, 0), len: 33 })
        );
        assert!(matches!(
            "10.0.0.0/33".parse::<Ipv4Prefix>(),
            Err(PrefixError::LengthTooLong { len: 33, .. })
        ));
    }

    #[test]
    fn malformed_text_says_which_part_is_wrong() {
        assert!(matches!("10.0.0.0".parse::<Ipv4Prefix>(), Err(PrefixError::MissingLength { .. })));
        assert!(matches!(
            "10.0.0/8".parse::<Ipv4Prefix>(),
            Err(PrefixError::InvalidAddress { address, .. }) if address == "10.0.0"
        ));
        for bad in ["10.0.0.0/", "10.0.0.0/x", "10.0.0.0/+8", "10.0.0.0/256", "10.0.0.0/-1"] {
            assert!(matches!(bad.parse::<Ipv4Prefix>(), Err(PrefixError::InvalidLength { .. })), "{bad}");
        }
    }

    #[test]
    fn covering_clears_host_bits_and_contains_checks_the_network() {
        let p = Ipv4Prefix::covering(0x0af4_0105, 24);
        assert_eq!(p.to_string(), "10.244.1.0/24");
        assert!(p.contains(0x0af4_01ff));
        assert!(!p.contains(0x0af4_0200));
        assert!(Ipv4Prefix::DEFAULT.contains(u32::MAX));
        assert_eq!(netmask(0), 0);
        assert_eq!(netmask(32), u32::MAX);
        assert_eq!(netmask(20), 0xffff_f000);
    }
}
