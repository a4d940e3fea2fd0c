//! `[uplink]`: the NIC the engine owns, one worker per RX queue.

use serde::Deserialize;

use super::ConfigError;
use super::int::Int;

/// Which kind of socket carries a port (maps onto `weft_engine::port::Backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PortBackend {
    /// AF_XDP, falling back to AF_PACKET when XDP is not supported.
    #[default]
    Auto,
    /// AF_XDP only.
    AfXdp,
    /// AF_PACKET only (copies; the kernel still sees every frame).
    AfPacket,
}

/// How the XDP program is attached (maps onto `weft_engine::port::xdp_filter::XdpMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpAttach {
    /// Native, falling back to generic.
    #[default]
    Auto,
    /// Driver mode only.
    Native,
    /// Generic (SKB) mode only.
    Generic,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUplink {
    interface: String,
    queues: Option<Int<u32, 1, 64>>,
    backend: Option<String>,
    xdp_mode: Option<String>,
}

/// `[uplink]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkSection {
    /// `uplink.interface`: the NIC (or veth) name.
    pub interface: String,
    /// `uplink.queues`: RX queues the engine serves, 0..queues (default 1).
    pub queues: u32,
    /// `uplink.backend`: `auto` | `af_xdp` | `af_packet` (default `auto`).
    pub backend: PortBackend,
    /// `uplink.xdp_mode`: `auto` | `native` | `generic` (default `auto`).
    pub xdp_mode: XdpAttach,
}

/// Checks a Linux interface name (1..=15 bytes, no '/', no whitespace).
pub(crate) fn check_ifname(key: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > 15 || name.contains('/') || name.contains(char::is_whitespace) {
        return Err(ConfigError::key(
            key,
            format!("expected an interface name (1 to 15 characters, no '/' or spaces), found {name:?}"),
        ));
    }
    Ok(())
}

/// Parses a port backend name at `key`.
pub(crate) fn parse_backend(key: &str, value: Option<&str>) -> Result<PortBackend, ConfigError> {
    match value {
        None | Some("auto") => Ok(PortBackend::Auto),
        Some("af_xdp") => Ok(PortBackend::AfXdp),
        Some("af_packet") => Ok(PortBackend::AfPacket),
        Some(other) => {
            Err(ConfigError::key(key, format!("expected one of auto, af_xdp, af_packet, found {other:?}")))
        }
    }
}

pub(super) fn validate(raw: RawUplink) -> Result<UplinkSection, ConfigError> {
    check_ifname("uplink.interface", &raw.interface)?;
    let queues = raw.queues.map_or(1, Int::get);
    let backend = parse_backend("uplink.backend", raw.backend.as_deref())?;
    if backend == PortBackend::AfPacket && queues > 1 {
        return Err(ConfigError::key(
            "uplink.queues",
            "backend = \"af_packet\" sees the whole interface: use queues = 1",
        ));
    }
    let xdp_mode = match raw.xdp_mode.as_deref() {
        None | Some("auto") => XdpAttach::Auto,
        Some("native") => XdpAttach::Native,
        Some("generic") => XdpAttach::Generic,
        Some(other) => {
            return Err(ConfigError::key(
                "uplink.xdp_mode",
                format!("expected one of auto, native, generic, found {other:?}"),
            ));
        }
    };
    Ok(UplinkSection { interface: raw.interface, queues, backend, xdp_mode })
}
