//! The node's TOML config, loaded into validated types.
//!
//! One file per section; each section has a `Raw*` serde type (unknown keys
//! are errors) and a validated type. Every error names the key, e.g.
//! `etcd.endpoints[0]: expected an http(s) URL, found "htp://x"`, and where it is in
//! the file: `config.toml:7:7: node.mtu: expected an integer 576..=9216,
//! found string "1500"`.

mod api;
mod bgp;
mod de;
mod error;
mod etcd;
mod etcd_credentials;
mod exception;
mod host_link;
mod int;
mod mac;
mod metrics;
mod network;
mod node;
mod pods;
mod source;
mod static_routes;
mod uplink;
mod workers;

use std::path::Path;

use serde::Deserialize;

pub use api::{ApiSection, DEFAULT_API_SOCKET};
pub use bgp::{BgpSection, DEFAULT_AS};
pub use error::{ConfigError, Location};
pub use etcd::EtcdSection;
pub use etcd_credentials::{EtcdAuth, EtcdTls, Password, PemFile};
pub use exception::ExceptionSection;
pub use host_link::HostLinkSection;
pub use metrics::{DEFAULT_METRICS_LISTEN, MetricsSection};
pub use node::NodeSection;
pub use pods::{IfName, PodSpec, reserved_in_subnet};
pub use static_routes::StaticSection;
pub use uplink::{PortBackend, UplinkSection, XdpAttach};
pub use workers::{DEFAULT_POD_SLOTS, WorkersSection};

use crate::flannel::NetworkConfig;

/// Where routes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// flannel-compatible leases in etcd.
    Etcd,
    /// Routes from the `[static]` section, no etcd.
    Static,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mode: Mode,
    node: node::RawNode,
    etcd: Option<etcd::RawEtcd>,
    network: Option<network::RawNetwork>,
    #[serde(rename = "static")]
    static_routes: Option<static_routes::RawStatic>,
    uplink: Option<uplink::RawUplink>,
    #[serde(default)]
    pods: Vec<pods::RawPod>,
    workers: Option<workers::RawWorkers>,
    metrics: Option<metrics::RawMetrics>,
    api: Option<api::RawApi>,
    exception: Option<exception::RawException>,
    host_link: Option<host_link::RawHostLink>,
    bgp: Option<bgp::RawBgp>,
}

/// A validated node config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `mode`.
    pub mode: Mode,
    /// `[node]`.
    pub node: NodeSection,
    /// `[etcd]` (defaults filled in when absent).
    pub etcd: EtcdSection,
    /// `[network]`: the flannel network config `--init-network` writes, and
    /// the backend static mode uses.
    pub network: Option<NetworkConfig>,
    /// `[static]`, present in static mode.
    pub static_routes: Option<StaticSection>,
    /// `[uplink]`: required by `weft run`, optional for `weft check`.
    pub uplink: Option<UplinkSection>,
    /// `[[pods]]`: pod ports attached at start.
    pub pods: Vec<PodSpec>,
    /// `[workers]` (defaults when absent).
    pub workers: WorkersSection,
    /// `[metrics]` (defaults when absent: on, 127.0.0.1:9464).
    pub metrics: MetricsSection,
    /// `[api]` (defaults when absent: /run/weft/weft.sock).
    pub api: ApiSection,
    /// `[exception]` (defaults when absent: no exception interface).
    pub exception: ExceptionSection,
    /// `[host_link]` (on by default): the veth into the node's kernel stack that weft makes
    /// (its engine end the exception port), the cluster route and, with `node.ipmasq`, the
    /// masquerade rules. `None` with `host_link.enabled = false` or `[exception] interface`.
    pub host_link: Option<HostLinkSection>,
    /// `[bgp]`: present, weft is a BGP speaker and its peers' routes drive the FIB.
    pub bgp: Option<BgpSection>,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse_named(&path.display().to_string(), &text)
    }

    /// Validates TOML text; errors name it `config`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_named("config", text)
    }

    /// Validates TOML text; error locations name it `name` (`name:line:column`).
    pub fn parse_named(name: &str, text: &str) -> Result<Self, ConfigError> {
        let source = source::Source::parse(name, text).map_err(|e| ConfigError::Syntax {
            message: e.message().trim_end().to_owned(),
            at: e.span().map(|s| source::location(name, text, s.start)),
        })?;
        // A section that is absent is required by `mode`: such errors point at it.
        let locate = |e: ConfigError| e.located(|key| source.locate(key).or_else(|| source.locate("mode")));
        let raw = de::from_str(text).map_err(locate)?;
        Self::validate(raw).map_err(locate)
    }

    fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let node = node::validate(raw.node)?;
        let etcd = etcd::validate(raw.etcd.unwrap_or_default())?;
        let network = raw.network.map(network::validate).transpose()?;
        let static_routes =
            raw.static_routes.map(|s| static_routes::validate(s, network.as_ref(), &node)).transpose()?;
        if raw.mode == Mode::Static && static_routes.is_none() {
            return Err(ConfigError::key(
                "static",
                "mode = \"static\" needs a [static] section with subnet and routes",
            ));
        }
        if raw.mode == Mode::Static && network.is_none() {
            return Err(ConfigError::key(
                "network",
                "mode = \"static\" needs a [network] section (network and backend)",
            ));
        }
        let uplink = raw.uplink.map(uplink::validate).transpose()?;
        let pods = pods::validate(raw.pods)?;
        if let Some(s) = &static_routes {
            if let Some(pod) = pods.iter().position(|p| !s.subnet.contains(&p.ip)) {
                return Err(ConfigError::key(
                    format!("pods[{pod}].ip"),
                    format!("{} is not in our pod subnet static.subnet {}", pods[pod].ip, s.subnet),
                ));
            }
            for (i, p) in pods.iter().enumerate() {
                if let Some(why) = reserved_in_subnet(s.subnet, p.ip) {
                    return Err(ConfigError::key(format!("pods[{i}].ip"), format!("{} is {why}", p.ip)));
                }
            }
        }
        let queues = uplink.as_ref().map_or(1, |u| u.queues);
        let workers = workers::validate(raw.workers.unwrap_or_default(), queues)?;
        let metrics = metrics::validate(raw.metrics.unwrap_or_default())?;
        let api = api::validate(raw.api.unwrap_or_default())?;
        let exception = exception::validate(raw.exception.unwrap_or_default())?;
        let host_link = host_link::validate(raw.host_link, exception.interface.is_some())?;
        let bgp = raw.bgp.map(bgp::validate).transpose()?;
        if raw.mode == Mode::Static && bgp.as_ref().is_some_and(|b| b.peers.is_empty()) {
            return Err(ConfigError::key(
                "bgp.peers",
                "mode = \"static\" has no etcd to find the mesh in: list the peers",
            ));
        }
        Ok(Config {
            mode: raw.mode,
            node,
            etcd,
            network,
            static_routes,
            uplink,
            pods,
            workers,
            metrics,
            api,
            exception,
            host_link,
            bgp,
        })
    }
}

#[cfg(test)]
mod tests;
