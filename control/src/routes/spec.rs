//! What a route is, independent of where it came from (etcd or static config).

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::flannel::{MacAddr, WgKey};

/// How to reach a remote node's pod subnet. Each maps onto one engine next-hop kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    /// VXLAN to the node: outer IPv4 to `remote`, inner destination MAC `vtep_mac`.
    Vxlan {
        /// The remote node's PublicIP.
        remote: Ipv4Addr,
        /// The remote VTEP's MAC.
        vtep_mac: MacAddr,
        /// VXLAN network identifier.
        vni: u32,
        /// UDP destination port.
        port: u16,
    },
    /// IP-in-IP (protocol 4) to the node's PublicIP.
    Ipip {
        /// The remote node's PublicIP.
        remote: Ipv4Addr,
    },
    /// No encapsulation: forward to the node's address on our L2 segment.
    HostGw {
        /// The remote node's PublicIP, resolved by ARP on the uplink.
        gateway: Ipv4Addr,
    },
    /// WireGuard transport messages to the node's endpoint (flannel's wireguard backend).
    WireGuard {
        /// The remote node's PublicIP.
        remote: Ipv4Addr,
        /// Its listen port.
        port: u16,
        /// Its public key.
        public_key: WgKey,
    },
}

impl Via {
    /// The remote node's underlay address, whatever the encapsulation.
    pub fn node_ip(&self) -> Ipv4Addr {
        match *self {
            Via::Vxlan { remote, .. } | Via::Ipip { remote } | Via::WireGuard { remote, .. } => remote,
            Via::HostGw { gateway } => gateway,
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::Vxlan { remote, vtep_mac, vni, port } => {
                write!(f, "vxlan {remote} vtep {vtep_mac} vni {vni} port {port}")
            }
            Via::Ipip { remote } => write!(f, "ipip {remote}"),
            Via::HostGw { gateway } => write!(f, "host-gw {gateway}"),
            Via::WireGuard { remote, port, public_key } => {
                write!(f, "wireguard {remote}:{port} key {public_key}")
            }
        }
    }
}

/// One route: a remote node's pod subnet and how to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    /// The remote pod subnet.
    pub subnet: Ipv4Net,
    /// The next hop.
    pub via: Via,
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} via {}", self.subnet, self.via)
    }
}

/// One change to the route table. Maps onto the engine's
/// `RouteChange::{Upsert, Remove}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteDelta {
    /// Add the route, or replace the next hop of an existing one.
    Upsert(RouteSpec),
    /// Remove the route for this subnet.
    Remove(Ipv4Net),
}
