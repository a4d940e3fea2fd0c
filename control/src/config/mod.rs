//! The node's TOML config, loaded into validated types.
//!
//! One file per section; each section has a `Raw*` serde type (unknown keys
//! are errors) and a validated type. Every error names the key, e.g.
//! `etcd.endpoints[0]: "htp://x" is not an http(s) URL`. Later sections
//! (ports, workers, metrics) add a file and a field here.

mod error;
mod etcd;
mod network;
mod node;
mod static_routes;

use std::path::Path;

use serde::Deserialize;

pub use error::ConfigError;
pub use etcd::EtcdSection;
pub use node::NodeSection;
pub use static_routes::StaticSection;

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
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text)
    }

    /// Validates TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.message().to_owned(), e.span()))?;
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
        Ok(Config { mode: raw.mode, node, etcd, network, static_routes })
    }
}

#[cfg(test)]
mod tests;
