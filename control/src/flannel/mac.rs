//! Ethernet MAC addresses as flannel writes them (`"aa:bb:cc:dd:ee:ff"`).

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

/// `s` is not six colon- or dash-separated hex octets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address (want six hex octets like 0a:58:c6:13:01:01)")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_owned());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    /// Lower-case, colon separated: what Go's `net.HardwareAddr.String` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_round_trips_through_go_formatting() {
        let mac: MacAddr = "0A:58:c6:13:01:FF".parse().unwrap();
        assert_eq!(mac.0, [0x0a, 0x58, 0xc6, 0x13, 0x01, 0xff]);
        assert_eq!(mac.to_string(), "0a:58:c6:13:01:ff");
    }

    #[test]
    fn short_long_and_non_hex_macs_are_rejected() {
        for bad in [
            "",
            "0a:58:c6:13:01",
            "0a:58:c6:13:01:ff:00",
            "0a:58:c6:13:01:fg",
            "a:58:c6:13:01:ff",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }
}
