//! weft's `subnet.env` as this plugin reads it: the node subnet and the pod MTU.
//!
//! ```text
//! FLANNEL_NETWORK=198.19.0.0/16
//! FLANNEL_SUBNET=198.19.1.1/24
//! FLANNEL_MTU=1450
//! FLANNEL_IPMASQ=false
//! ```

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;

use crate::error::{CniError, INVALID_CONFIG, TRY_AGAIN_LATER};

/// What the plugin needs from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSubnet {
    /// The node's pod subnet (FLANNEL_SUBNET without its host part).
    pub subnet: Ipv4Net,
    /// The pods' gateway: the subnet's first host (FLANNEL_SUBNET's address).
    pub gateway: Ipv4Addr,
    /// FLANNEL_MTU.
    pub mtu: u32,
}

impl NodeSubnet {
    /// Reads `path`; absent means weft has not taken its lease yet (try again later).
    pub fn read(path: &Path) -> Result<Self, CniError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CniError::new(
                TRY_AGAIN_LATER,
                format!(
                    "cannot read weft's subnet file {} (is weft running with this node.subnet_file?)",
                    path.display()
                ),
                e.to_string(),
            )
        })?;
        Self::parse(&text)
            .map_err(|msg| CniError::short(INVALID_CONFIG, format!("{}: {msg}", path.display())))
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut subnet = None;
        let mut mtu = None;
        for (n, line) in text.lines().enumerate() {
            let Some((key, value)) = line.split_once('=') else { continue };
            let value = value.trim();
            match key.trim() {
                "FLANNEL_SUBNET" => {
                    let net: Ipv4Net = value.parse().map_err(|_| {
                        format!("line {}: FLANNEL_SUBNET {value:?} is not a.b.c.d/len", n + 1)
                    })?;
                    subnet = Some(net);
                }
                "FLANNEL_MTU" => {
                    mtu = Some(
                        value
                            .parse()
                            .map_err(|_| format!("line {}: FLANNEL_MTU {value:?} is not a number", n + 1))?,
                    );
                }
                _ => {}
            }
        }
        let net = subnet.ok_or("FLANNEL_SUBNET is missing")?;
        Ok(NodeSubnet { subnet: net.trunc(), gateway: net.addr(), mtu: mtu.ok_or("FLANNEL_MTU is missing")? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subnet_gateway_and_mtu_are_read_from_flannels_keys() {
        let s = NodeSubnet::parse(
            "FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.1.1/24\nFLANNEL_MTU=1450\n",
        )
        .unwrap();
        assert_eq!(s.subnet, "198.19.1.0/24".parse::<Ipv4Net>().unwrap());
        assert_eq!(s.gateway, Ipv4Addr::new(198, 19, 1, 1));
        assert_eq!(s.mtu, 1450);
    }

    #[test]
    fn missing_or_bad_keys_are_named() {
        assert!(NodeSubnet::parse("FLANNEL_MTU=1450\n").unwrap_err().contains("FLANNEL_SUBNET"));
        assert!(NodeSubnet::parse("FLANNEL_SUBNET=x\n").unwrap_err().contains("line 1"));
        assert!(NodeSubnet::parse("FLANNEL_SUBNET=198.19.1.1/24\n").unwrap_err().contains("FLANNEL_MTU"));
    }
}
