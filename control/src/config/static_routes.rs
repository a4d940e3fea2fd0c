//! `[static]`: this node's subnet and every remote route, no etcd.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;

use super::error::parse_at;
use super::mac::unicast_mac_at;
use super::{ConfigError, NodeSection};
use crate::flannel::{BackendType, NetworkConfig};
use crate::routes::{RouteSpec, Via};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatic {
    subnet: String,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    subnet: String,
    via: String,
    node_ip: String,
    vtep_mac: Option<String>,
}

/// `[static]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSection {
    /// `static.subnet`: our own pod subnet.
    pub subnet: Ipv4Net,
    /// `static.routes`: remote subnets, VNI and port from `[network]`.
    pub routes: Vec<RouteSpec>,
}

pub(super) fn validate(
    raw: RawStatic,
    network: Option<&NetworkConfig>,
    node: &NodeSection,
) -> Result<StaticSection, ConfigError> {
    let subnet = parse_at::<Ipv4Net>("static.subnet", &raw.subnet, "an IPv4 CIDR")?;
    if subnet.trunc() != subnet {
        return Err(ConfigError::key("static.subnet", format!("{subnet} has host bits set")));
    }
    let mut routes: Vec<RouteSpec> = Vec::with_capacity(raw.routes.len());
    for (i, r) in raw.routes.into_iter().enumerate() {
        let key = |field: &str| format!("static.routes[{i}].{field}");
        let dest = parse_at::<Ipv4Net>(&key("subnet"), &r.subnet, "an IPv4 CIDR")?;
        if dest.trunc() != dest {
            return Err(ConfigError::key(key("subnet"), format!("{dest} has host bits set")));
        }
        if dest.contains(&subnet.network()) || subnet.contains(&dest.network()) {
            return Err(ConfigError::key(
                key("subnet"),
                format!("{dest} overlaps our own static.subnet {subnet}"),
            ));
        }
        if let Some(j) = routes.iter().position(|s| s.subnet == dest) {
            return Err(ConfigError::key(
                key("subnet"),
                format!("{dest} is already routed by static.routes[{j}]"),
            ));
        }
        let node_ip: Ipv4Addr = parse_at(&key("node_ip"), &r.node_ip, "an IPv4 address")?;
        let via = match r.via.as_str() {
            "vxlan" => {
                let mac = r
                    .vtep_mac
                    .ok_or_else(|| ConfigError::key(key("vtep_mac"), "required when via = \"vxlan\""))?;
                let vtep_mac = unicast_mac_at(&key("vtep_mac"), &mac, "0a:58:c6:13:01:01")?;
                let (vni, port) = network
                    .filter(|n| n.backend.backend_type == BackendType::Vxlan)
                    .map(|n| (n.backend.vni, n.backend.port))
                    .ok_or_else(|| {
                        ConfigError::key(
                            key("via"),
                            "vxlan routes need [network] backend = \"vxlan\" (for vni and port)",
                        )
                    })?;
                Via::Vxlan { remote: node_ip, vtep_mac, vni, port }
            }
            "ipip" => Via::Ipip { remote: node_ip },
            "host-gw" => {
                if let Some(uplink) = node.uplink_subnet.filter(|u| !u.contains(&node_ip)) {
                    return Err(ConfigError::key(
                        key("node_ip"),
                        format!(
                            "{node_ip} is not on node.uplink_subnet {uplink}; host-gw needs an on-link gateway"
                        ),
                    ));
                }
                Via::HostGw { gateway: node_ip }
            }
            other => {
                return Err(ConfigError::key(
                    key("via"),
                    format!("expected one of vxlan, ipip, host-gw, found {other:?}"),
                ));
            }
        };
        routes.push(RouteSpec { subnet: dest, via });
    }
    Ok(StaticSection { subnet, routes })
}
