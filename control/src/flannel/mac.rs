//! Ethernet MAC addresses as flannel writes them (`"aa:bb:cc:dd:ee:ff"`): weft's one
//! `MacAddr` type (from `weft-encap`), whose `Display` prints what Go's
//! `net.HardwareAddr.String` prints and whose `FromStr` takes what `net.ParseMAC` takes.

pub use weft_encap::MacAddr;
pub use weft_encap::wire::ethernet::MacParseError;

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
        for bad in ["", "0a:58:c6:13:01", "0a:58:c6:13:01:ff:00", "0a:58:c6:13:01:fg", "a:58:c6:13:01:ff"] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }
}
