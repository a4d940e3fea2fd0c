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
        _ => "network.network",
    }
}

pub(super) fn validate(raw: RawNetwork) -> Result<NetworkConfig, ConfigError> {
    if !matches!(raw.backend.as_str(), "vxlan" | "host-gw" | "ipip") {
        return Err(ConfigError::key(
            "network.backend",
            format!("expected one of vxlan, host-gw, ipip, found {:?}", raw.backend),
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
