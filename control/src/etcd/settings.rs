//! What the agent needs from the config, in one place.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::config::{Config, EtcdAuth, EtcdSection, EtcdTls};
use crate::flannel::{MacAddr, NetworkConfig, WgKey};

/// Agent settings, usually [`AgentSettings::from_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// etcd endpoints (`http://host:port`).
    pub endpoints: Vec<String>,
    /// Key prefix.
    pub prefix: String,
    /// TTL of our lease.
    pub lease_ttl: Duration,
    /// Our PublicIP.
    pub public_ip: Ipv4Addr,
    /// Our VtepMAC, written into vxlan leases (other backends' leases carry none).
    pub vtep_mac: MacAddr,
    /// Our WireGuard public key, written into wireguard leases; `None`: the key kept in
    /// `wg_key_dir` (made there when the network is wireguard).
    pub wg_public_key: Option<WgKey>,
    /// Where the node's WireGuard key is kept (`node.state_dir`); a wireguard network with
    /// neither this nor `wg_public_key` is refused.
    pub wg_key_dir: Option<PathBuf>,
    /// Uplink L2 subnet for DirectRouting.
    pub uplink_subnet: Option<Ipv4Net>,
    /// subnet.env path.
    pub subnet_file: PathBuf,
    /// FLANNEL_IPMASQ.
    pub ipmasq: bool,
    /// Uplink MTU.
    pub mtu: u32,
    /// Written to `<prefix>/config` when absent (`--init-network`).
    pub init_network: Option<NetworkConfig>,
    /// Longest wait between reconnect attempts.
    pub backoff_max: Duration,
    /// Deadline for one unary etcd call.
    pub rpc_timeout: Duration,
    /// How the client talks to etcd (keepalive, TLS, user).
    pub client: ClientOptions,
}

/// How the etcd client connects, beyond the endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// HTTP/2 keepalive ping interval (only while a stream is open).
    pub keepalive_interval: Duration,
    /// An unanswered keepalive ping closes the connection after this long.
    pub keepalive_timeout: Duration,
    /// TLS for `https://` endpoints: the CA, and our client certificate if any.
    pub tls: Option<EtcdTls>,
    /// The etcd user we authenticate as.
    pub auth: Option<EtcdAuth>,
}

impl Default for ClientOptions {
    /// The `[etcd]` defaults.
    fn default() -> Self {
        ClientOptions::from_section(&EtcdSection::default())
    }
}

impl ClientOptions {
    /// The client options of `[etcd]`.
    pub fn from_section(section: &EtcdSection) -> Self {
        ClientOptions {
            keepalive_interval: section.keepalive_interval,
            keepalive_timeout: section.keepalive_timeout,
            tls: section.tls.clone(),
            auth: section.auth.clone(),
        }
    }
}

impl AgentSettings {
    /// Settings from a validated config and the node's VtepMAC (`node.vtep_mac`, or the one
    /// `weft run` keeps in `node.state_dir`); `init_network` takes `[network]` when
    /// `--init-network` was given.
    pub fn from_config(config: &Config, vtep_mac: MacAddr, init_network: bool) -> Self {
        AgentSettings {
            endpoints: config.etcd.endpoints.clone(),
            prefix: config.etcd.prefix.clone(),
            lease_ttl: config.etcd.lease_ttl,
            public_ip: config.node.public_ip,
            vtep_mac,
            wg_public_key: None,
            wg_key_dir: Some(config.node.state_dir.clone()),
            uplink_subnet: config.node.uplink_subnet,
            subnet_file: config.node.subnet_file.clone(),
            ipmasq: config.node.ipmasq,
            mtu: config.node.mtu,
            init_network: if init_network { config.network.clone() } else { None },
            backoff_max: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(5),
            client: ClientOptions::from_section(&config.etcd),
        }
    }

    /// How long before expiry to renew: flannel's one hour, scaled down to a
    /// third of the TTL for short (test) TTLs.
    pub fn renew_margin(&self) -> Duration {
        Duration::from_secs(3600).min(self.lease_ttl / 3)
    }
}
