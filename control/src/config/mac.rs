//! MAC address values: six hex octets naming one station, so neither a group (multicast or
//! broadcast) address nor all zeros.

use super::ConfigError;
use super::error::parse_at;
use crate::flannel::MacAddr;

/// Parses the unicast MAC `value` at `key`; `example` shows the expected form.
pub(crate) fn unicast_mac_at(key: &str, value: &str, example: &str) -> Result<MacAddr, ConfigError> {
    let mac: MacAddr = parse_at(key, value, &format!("a MAC address like {example}"))?;
    let why = if mac.is_multicast() {
        "a multicast address"
    } else if mac == MacAddr::ZERO {
        "all zeros"
    } else {
        return Ok(mac);
    };
    Err(ConfigError::key(key, format!("expected a unicast MAC address, found {mac} ({why})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_zero_addresses_are_refused_naming_why() {
        let at = |v| unicast_mac_at("node.vtep_mac", v, "0a:58:c6:13:01:01").map_err(|e| e.to_string());
        assert_eq!(at("0a:58:c6:13:01:01"), Ok("0a:58:c6:13:01:01".parse().unwrap()));
        for (value, why) in [
            ("01:00:5e:00:00:01", "a multicast address"),
            ("ff:ff:ff:ff:ff:ff", "a multicast address"),
            ("00:00:00:00:00:00", "all zeros"),
        ] {
            let e = at(value).unwrap_err();
            assert_eq!(e, format!("node.vtep_mac: expected a unicast MAC address, found {value} ({why})"));
        }
        assert_eq!(
            at("0a:58").unwrap_err(),
            "node.vtep_mac: expected a MAC address like 0a:58:c6:13:01:01, found \"0a:58\""
        );
    }
}
