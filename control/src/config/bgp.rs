//! `[bgp]`: weft as a BGP speaker (Calico's BGP mode). Present means on.
//!
//! ```toml
//! [bgp]
//! as = 64512                 # our AS and, unless peer_as says otherwise, the peers' (iBGP)
//! peers = []                 # empty: every other node with a lease in etcd (full mesh);
//!                            # else only these addresses (route reflectors, static mode)
//! hold_time = 90             # seconds; 0 or at least 3
//! restart_time = 120         # graceful-restart time announced to peers (0: no capability)
//! port = 179
//! ```

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::ConfigError;
use super::error::parse_at;
use super::int::Int;

/// Calico's default AS.
pub const DEFAULT_AS: u32 = 64512;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBgp {
    #[serde(rename = "as")]
    asn: Option<u32>,
    peer_as: Option<u32>,
    #[serde(default)]
    peers: Vec<String>,
    hold_time: Option<u16>,
    restart_time: Option<Int<u16, 0, 4095>>,
    port: Option<u16>,
}

/// `[bgp]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSection {
    /// `bgp.as` (default 64512).
    pub asn: u32,
    /// `bgp.peer_as` (default: `bgp.as`, an iBGP mesh).
    pub peer_as: u32,
    /// `bgp.peers`: empty means every other node with a lease in etcd.
    pub peers: Vec<Ipv4Addr>,
    /// `bgp.hold_time` in seconds (default 90).
    pub hold_time: u16,
    /// `bgp.restart_time` in seconds (default 120; 0: no graceful-restart capability).
    pub restart_time: u16,
    /// `bgp.port` (default 179).
    pub port: u16,
}

pub(super) fn validate(raw: RawBgp) -> Result<BgpSection, ConfigError> {
    let asn = raw.asn.unwrap_or(DEFAULT_AS);
    if asn == 0 || asn == u32::from(weft_bgp::wire::open::AS_TRANS) {
        return Err(ConfigError::key("bgp.as", format!("{asn} is reserved (RFC 7607, RFC 6793)")));
    }
    let peers = raw
        .peers
        .iter()
        .enumerate()
        .map(|(i, p)| parse_at::<Ipv4Addr>(&format!("bgp.peers[{i}]"), p, "an IPv4 address"))
        .collect::<Result<Vec<_>, _>>()?;
    let hold_time = raw.hold_time.unwrap_or(90);
    if hold_time == 1 || hold_time == 2 {
        return Err(ConfigError::key("bgp.hold_time", "must be 0 or at least 3 seconds (RFC 4271)"));
    }
    // The capability carries it in 12 bits (RFC 4724).
    let restart_time = raw.restart_time.map_or(120, Int::get);
    Ok(BgpSection {
        asn,
        peer_as: raw.peer_as.unwrap_or(asn),
        peers,
        hold_time,
        restart_time,
        port: raw.port.unwrap_or(179),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BgpSection, ConfigError> {
        validate(crate::config::de::from_str(text)?)
    }

    #[test]
    fn an_empty_section_is_calicos_ibgp_mesh() {
        let b = parse("").unwrap();
        assert_eq!((b.asn, b.peer_as, b.hold_time, b.restart_time, b.port), (64512, 64512, 90, 120, 179));
        assert!(b.peers.is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("peers = [\"198.18.0.1\", \"rr1\"]").unwrap_err();
        assert_eq!(e.to_string(), "bgp.peers[1]: expected an IPv4 address, found \"rr1\"");
        assert_eq!(parse("hold_time = 2").unwrap_err().key_path(), Some("bgp.hold_time"));
        assert_eq!(parse("as = 23456").unwrap_err().key_path(), Some("bgp.as"));
        let e = parse("restart_time = 5000").unwrap_err();
        assert_eq!(e.to_string(), "restart_time: expected an integer 0..=4095, found integer `5000`");
    }
}
