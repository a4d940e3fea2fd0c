//! `[host_link]`: the veth pair between the engine and the node's kernel stack that weft
//! creates at start and removes on exit, so that the node's processes reach every pod and pods
//! reach the node (SPEC §8). Its engine end is the exception port. On by default; an operator
//! who makes such a veth themselves names its engine end in `[exception] interface` instead.

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
    enabled: Option<bool>,
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

/// `None`: `host_link.enabled = false`, or `[exception] interface` names a veth the operator
/// made (`exception_set`) and `[host_link]` is absent.
pub(super) fn validate(
    raw: Option<RawHostLink>,
    exception_set: bool,
) -> Result<Option<HostLinkSection>, ConfigError> {
    let given = raw.is_some();
    let raw = raw.unwrap_or_default();
    match (raw.enabled, given, exception_set) {
        (Some(false), ..) => return Ok(None),
        (_, false, true) => return Ok(None),
        (_, true, true) => {
            return Err(ConfigError::key(
                "host_link",
                "exception.interface names a veth you made, [host_link] one weft makes: keep one \
                 (or set host_link.enabled = false)",
            ));
        }
        _ => {}
    }
    let interface = raw.interface.unwrap_or_else(|| DEFAULT_INTERFACE.to_owned());
    let engine_interface = raw.engine_interface.unwrap_or_else(|| DEFAULT_ENGINE_INTERFACE.to_owned());
    check_ifname("host_link.interface", &interface)?;
    check_ifname("host_link.engine_interface", &engine_interface)?;
    if interface == engine_interface {
        return Err(ConfigError::key(
            "host_link.engine_interface",
            format!("expected a name other than host_link.interface, found {engine_interface:?}"),
        ));
    }
    Ok(Some(HostLinkSection { interface, engine_interface }))
}
