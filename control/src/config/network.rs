//! `[network]`: the flannel network config, in TOML, for `--init-network`
//! and static mode.

use serde::Deserialize;

use super::ConfigError;
use super::int::Int;
use crate::flannel::NetworkConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    network: String,
    subnet_len: Option<u8>,
    subnet_min: Option<String>,
    subnet_max: Option<String>,
    backend: String,
    vni: Option<Int<u32, 0, 0xff_ffff>>,
    port: Option<u16>,
    #[serde(default)]
    direct_routing: bool,
    mtu: Option<Int<u32, 0, 65535>>,
    /// wireguard: `Backend.ListenPort`.
    listen_port: Option<u16>,
    /// wireguard: `Backend.PSK` (base64, as `wg genpsk` prints).
    psk: Option<String>,
    /// wireguard: `Backend.PersistentKeepaliveInterval`, seconds.
    persistent_keepalive_interval: Option<u16>,
}

/// Maps a flannel config key to its `[network]` TOML key.
fn toml_key(flannel_key: &str) -> &'static str {
    match flannel_key {
        "SubnetLen" => "network.subnet_len",
        "SubnetMin" => "network.subnet_min",
        "SubnetMax" => "network.subnet_max",
        "Backend.Type" => "network.backend",
        "Backend.VNI" => "network.vni",
        "Backend.Port" => "network.port",
        "Backend.MTU" => "network.mtu",
        "Backend.ListenPort" => "network.listen_port",
        "Backend.PSK" => "network.psk",
        "Backend.PersistentKeepaliveInterval" => "network.persistent_keepalive_interval",
        _ => "network.network",
    }
}

pub(super) fn validate(raw: RawNetwork) -> Result<NetworkConfig, ConfigError> {
    if !matches!(raw.backend.as_str(), "vxlan" | "host-gw" | "ipip" | "wireguard") {
        return Err(ConfigError::key(
            "network.backend",
            format!("expected one of vxlan, host-gw, ipip, wireguard, found {:?}", raw.backend),
        ));
    }
    let wireguard = [
        ("network.listen_port", raw.listen_port.is_some()),
        ("network.psk", raw.psk.is_some()),
        ("network.persistent_keepalive_interval", raw.persistent_keepalive_interval.is_some()),
    ];
    if let Some((key, _)) = wireguard.iter().find(|(_, set)| *set).filter(|_| raw.backend != "wireguard") {
        return Err(ConfigError::key(
            *key,
            format!("only the wireguard backend takes it, not {:?}", raw.backend),
        ));
    }
    // Build flannel's JSON and run it through the one validator, so TOML and
    // etcd configs obey the same rules and defaults.
    let mut backend = serde_json::json!({ "Type": raw.backend, "DirectRouting": raw.direct_routing });
    if let Some(vni) = raw.vni {
        backend["VNI"] = vni.get().into();
    }
    if let Some(port) = raw.port {
        backend["Port"] = port.into();
    }
    if let Some(mtu) = raw.mtu {
        backend["MTU"] = mtu.get().into();
    }
    if let Some(port) = raw.listen_port {
        backend["ListenPort"] = port.into();
    }
    if let Some(psk) = raw.psk {
        backend["PSK"] = psk.into();
    }
    if let Some(secs) = raw.persistent_keepalive_interval {
        backend["PersistentKeepaliveInterval"] = secs.into();
    }
    let mut doc = serde_json::json!({ "Network": raw.network, "Backend": backend });
    if let Some(len) = raw.subnet_len {
        doc["SubnetLen"] = len.into();
    }
    if let Some(min) = raw.subnet_min {
        doc["SubnetMin"] = min.into();
    }
    if let Some(max) = raw.subnet_max {
        doc["SubnetMax"] = max.into();
    }
    NetworkConfig::parse(doc.to_string().as_bytes()).map_err(|e| ConfigError::key(toml_key(e.key), e.problem))
}
