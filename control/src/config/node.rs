//! `[node]`: who this node is.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::Deserialize;

use super::ConfigError;
use super::error::parse_at;
use super::int::Int;
use super::mac::unicast_mac_at;
use crate::flannel::MacAddr;

/// flannel's default subnet file.
pub const DEFAULT_SUBNET_FILE: &str = "/run/flannel/subnet.env";

/// Default `node.state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/weft";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    name: String,
    public_ip: String,
    uplink_subnet: Option<String>,
    vtep_mac: Option<String>,
    subnet_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    ipmasq: bool,
    mtu: Option<Int<u32, 576, 9216>>,
}

/// `[node]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSection {
    /// `node.name`: for logs and status.
    pub name: String,
    /// `node.public_ip`: our underlay address, the lease's PublicIP.
    pub public_ip: Ipv4Addr,
    /// `node.uplink_subnet`: the uplink's L2 subnet (DirectRouting); must contain public_ip.
    pub uplink_subnet: Option<Ipv4Net>,
    /// `node.vtep_mac`: our VTEP MAC, written into vxlan leases and the inner source MAC of our
    /// VXLAN frames. Absent, `weft run` in etcd mode keeps a random one under `state_dir` (see
    /// [`crate::daemon::vtep_mac`]), and static mode uses the uplink's MAC.
    pub vtep_mac: Option<MacAddr>,
    /// `node.subnet_file` (default `/run/flannel/subnet.env`).
    pub subnet_file: PathBuf,
    /// `node.state_dir` (default `/var/lib/weft`): what weft keeps across restarts.
    pub state_dir: PathBuf,
    /// `node.ipmasq` -> FLANNEL_IPMASQ.
    pub ipmasq: bool,
    /// `node.mtu`: the uplink MTU (default 1500); FLANNEL_MTU subtracts the encap overhead.
    pub mtu: u32,
}

pub(super) fn validate(raw: RawNode) -> Result<NodeSection, ConfigError> {
    if raw.name.trim().is_empty() {
        return Err(ConfigError::key("node.name", "must not be empty"));
    }
    let public_ip: Ipv4Addr = parse_at("node.public_ip", &raw.public_ip, "an IPv4 address")?;
    if public_ip.is_unspecified() || public_ip.is_multicast() || public_ip.is_broadcast() {
        return Err(ConfigError::key(
            "node.public_ip",
            format!("expected a unicast address, found {public_ip}"),
        ));
    }
    let uplink_subnet = raw
        .uplink_subnet
        .map(|s| {
            parse_at::<Ipv4Net>("node.uplink_subnet", &s, "an IPv4 CIDR like 198.18.0.0/24")
                .map(|n| n.trunc())
        })
        .transpose()?;
    if let Some(net) = uplink_subnet {
        if !net.contains(&public_ip) {
            return Err(ConfigError::key(
                "node.uplink_subnet",
                format!("{net} does not contain node.public_ip {public_ip}"),
            ));
        }
    }
    let vtep_mac =
        raw.vtep_mac.map(|s| unicast_mac_at("node.vtep_mac", &s, "0a:58:c6:13:01:01")).transpose()?;
    let mtu = raw.mtu.map_or(1500, Int::get);
    Ok(NodeSection {
        name: raw.name,
        public_ip,
        uplink_subnet,
        vtep_mac,
        subnet_file: raw.subnet_file.unwrap_or_else(|| PathBuf::from(DEFAULT_SUBNET_FILE)),
        state_dir: raw.state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        ipmasq: raw.ipmasq,
        mtu,
    })
}
