//! The node's host link: what weft creates in the node's network namespace so that the
//! Kubernetes network model holds (SPEC §8), and removes exactly on exit.
//!
//! - a veth pair: `host_link.interface` (`weft0`) in the kernel's stack with the node's address
//!   in the pod network, the subnet's .0/32 (as flannel gives flannel.1), and
//!   `host_link.engine_interface` (`weft0e`), which the engine owns as its exception port;
//!   transmit checksum offload off on the kernel end (AF_XDP carries no "checksum partial"),
//!   MTU the pods' (uplink MTU minus the encap overhead, as FLANNEL_MTU);
//! - the route for the cluster network, `<Network> via <subnet .1> dev weft0 onlink src
//!   <subnet .0>`: the engine answers the kernel's ARP for the pods' gateway, so the node's
//!   processes reach every pod, local ones delivered and remote ones encapsulated by the engine
//!   with the node's address as source (the engine routes that /32 back to the kernel);
//! - IPv4 forwarding in the node's namespace (`net.ipv4.ip_forward`), if it was off: pod
//!   traffic to anywhere outside the cluster network reaches the kernel over the link and is
//!   routed on, and a Service DNAT to a pod elsewhere leaves over the link again;
//! - with `node.ipmasq`, flannel's masquerade rules in an nftables table of weft's own
//!   (`masquerade.rs`).
//!
//! Pod traffic to the node's other addresses (PublicIP, the uplink's) needs nothing more: it
//! reaches the kernel through the exception port. A veth pair or table of the same names left
//! by a weft that did not stop cleanly is replaced. Creation stops at the first failure and
//! removes what it made; [`HostLink::remove`] deletes the link (the kernel drops its address
//! and route with it) and weft's table and turns forwarding off again if weft turned it on.

mod masquerade;
mod netlink;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::api::HostLinkState;
use crate::config::{Config, HostLinkSection};
use crate::flannel::NetworkConfig;
use crate::subnet_env::SubnetEnv;

pub use masquerade::{MasqueradeRules, TABLE as NFT_TABLE};

/// Why the host link could not be set up or removed.
#[derive(Debug, thiserror::Error)]
pub enum HostLinkError {
    /// A netlink request failed.
    #[error("host_link: {what}: {source}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The kernel's answer.
        source: rtnetlink::Error,
    },
    /// Another system call failed (netlink socket, ethtool, sysctl).
    #[error("host_link: {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An interface of that name exists and is not a veth (so not a host link weft left).
    #[error(
        "host_link.{key}: interface {ifname} already exists and is not a veth: name another in host_link.{key}"
    )]
    NotOurs {
        /// `interface` or `engine_interface`.
        key: &'static str,
        /// The name.
        ifname: String,
    },
    /// The nftables rules could not be applied or removed.
    #[error("host_link: nftables table ip {table}: {source}")]
    Nft {
        /// Our table.
        table: &'static str,
        /// What `nft` said.
        source: nftables::helper::NftablesError,
    },
}

/// What weft creates for the host link, derived from the config and the node's subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLinkPlan {
    /// The kernel end.
    pub interface: String,
    /// The engine end (the exception port).
    pub engine_interface: String,
    /// The node's address on the kernel end (the subnet's .0).
    pub address: Ipv4Addr,
    /// The next hop of the cluster route (the pods' gateway, the subnet's .1).
    pub gateway: Ipv4Addr,
    /// The cluster network (routed over the link).
    pub cluster: Ipv4Net,
    /// The node's subnet.
    pub subnet: Ipv4Net,
    /// The kernel end's MTU.
    pub mtu: u32,
    /// flannel's masquerade rules, when `node.ipmasq` is on.
    pub masquerade: Option<MasqueradeRules>,
}

impl HostLinkPlan {
    /// The plan for `section` on a node holding `subnet` of `network`.
    pub fn new(section: &HostLinkSection, config: &Config, network: &NetworkConfig, subnet: Ipv4Net) -> Self {
        let base = u32::from(subnet.network());
        let env = SubnetEnv::for_network(network, subnet, config.node.mtu, config.node.ipmasq);
        HostLinkPlan {
            interface: section.interface.clone(),
            engine_interface: section.engine_interface.clone(),
            address: Ipv4Addr::from(base),
            gateway: Ipv4Addr::from(base.wrapping_add(1)),
            cluster: network.network,
            subnet,
            mtu: env.mtu,
            masquerade: config.node.ipmasq.then_some(MasqueradeRules { cluster: network.network, subnet }),
        }
    }

    /// The cluster route, as `ip route` shows it.
    pub fn route(&self) -> String {
        format!("{} via {} dev {} onlink src {}", self.cluster, self.gateway, self.interface, self.address)
    }

    /// One line per thing weft creates, as `weft check` shows them.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "veth {} (kernel, {}/32, mtu {}, tx checksum off) <-> {} (engine)",
                self.interface, self.address, self.mtu, self.engine_interface
            ),
            format!("route {}", self.route()),
        ];
        lines.push("net.ipv4.ip_forward = 1 (if off: turned on, and off again on exit)".to_owned());
        match &self.masquerade {
            Some(m) => lines.extend(m.describe()),
            None => lines.push("masquerade off (node.ipmasq = false)".to_owned()),
        }
        lines
    }

    /// Creates everything (see the module docs); on failure removes what it made.
    pub async fn create(&self) -> Result<HostLink, HostLinkError> {
        netlink::create(self).await?;
        let mut link = HostLink { plan: self.clone(), masquerading: false, forwarding_turned_on: false };
        if let Some(m) = &self.masquerade {
            if let Err(e) = m.apply() {
                link.remove().await;
                return Err(e);
            }
            link.masquerading = true;
        }
        match netlink::turn_forwarding_on() {
            Ok(turned_on) => link.forwarding_turned_on = turned_on,
            Err(e) => {
                link.remove().await;
                return Err(e);
            }
        }
        tracing::info!(
            interface = %self.interface,
            engine = %self.engine_interface,
            address = %self.address,
            cluster = %self.cluster,
            masquerade = self.masquerade.is_some(),
            "host link created"
        );
        Ok(link)
    }
}

/// The host link as created; [`HostLink::remove`] takes it away again.
#[derive(Debug)]
pub struct HostLink {
    plan: HostLinkPlan,
    /// Whether weft's nftables table is in place.
    masquerading: bool,
    /// Whether weft turned `net.ipv4.ip_forward` on (so turns it off again).
    forwarding_turned_on: bool,
}

impl HostLink {
    /// What was created.
    pub fn plan(&self) -> &HostLinkPlan {
        &self.plan
    }

    /// What `weft status` shows.
    pub fn state(&self) -> HostLinkState {
        let p = &self.plan;
        HostLinkState {
            interface: p.interface.clone(),
            engine_interface: p.engine_interface.clone(),
            address: format!("{}/32", p.address),
            mtu: p.mtu,
            routes: vec![p.route()],
            forwarding_turned_on: self.forwarding_turned_on,
            masquerade: self.masquerading,
            rules: p
                .masquerade
                .as_ref()
                .filter(|_| self.masquerading)
                .map(|m| m.describe())
                .unwrap_or_default(),
        }
    }

    /// Deletes the veth pair (its address and route go with it) and weft's nftables table,
    /// and turns forwarding off if weft turned it on. Failures are logged: removal goes on
    /// with the rest.
    pub async fn remove(self) {
        if self.forwarding_turned_on {
            if let Err(e) = netlink::turn_forwarding_off() {
                tracing::error!("turning net.ipv4.ip_forward off again: {e}");
            }
        }
        if let Err(e) = netlink::remove(&self.plan).await {
            tracing::error!("removing the host link: {e}");
        }
        if let (true, Some(m)) = (self.masquerading, &self.plan.masquerade) {
            if let Err(e) = m.remove() {
                tracing::error!("removing the masquerade rules: {e}");
            }
        }
        tracing::info!(interface = %self.plan.interface, "host link removed");
    }
}
