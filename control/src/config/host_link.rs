//! `[host_link]`: the veth pair weft creates between the engine and the node's kernel stack,
//! so the node's processes reach every pod and pods reach the node (SPEC §8).

use serde::Deserialize;

use super::ConfigError;
use super::uplink::check_ifname;

/// The kernel end's default name.
pub const DEFAULT_INTERFACE: &str = "weft0";
/// The engine end's default name.
pub const DEFAULT_ENGINE_INTERFACE: &str = "weft0e";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHostLink {
    interface: Option<String>,
    engine_interface: Option<String>,
}

/// `[host_link]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLinkSection {
    /// `host_link.interface` (default `weft0`): the end in the node's kernel stack. It gets the
    /// node's address in the pod network (the subnet's .0/32, as flannel gives flannel.1) and
    /// the route for the cluster network.
    pub interface: String,
    /// `host_link.engine_interface` (default `weft0e`): the end the engine owns (its exception
    /// port).
    pub engine_interface: String,
}

pub(super) fn validate(raw: RawHostLink) -> Result<HostLinkSection, ConfigError> {
    let interface = raw.interface.unwrap_or_else(|| DEFAULT_INTERFACE.to_owned());
    let engine_interface = raw.engine_interface.unwrap_or_else(|| DEFAULT_ENGINE_INTERFACE.to_owned());
    check_ifname("host_link.interface", &interface)?;
    check_ifname("host_link.engine_interface", &engine_interface)?;
    if interface == engine_interface {
        return Err(ConfigError::key(
            "host_link.engine_interface",
            format!("must differ from host_link.interface ({interface})"),
        ));
    }
    Ok(HostLinkSection { interface, engine_interface })
}
