//! `[[pods]]`: pod ports attached at start (more arrive with `weft pod add`).

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::ConfigError;
use super::error::parse_at;
use super::mac::unicast_mac_at;
use super::uplink::check_ifname;
use crate::flannel::MacAddr;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPod {
    interface: String,
    ip: String,
    mac: Option<String>,
}

/// One pod port: the host end of the pod's veth and the pod's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PodSpec {
    /// Host-side interface name (at most 15 bytes, stored inline).
    pub interface: IfName,
    /// The pod's IPv4 address (must be in our pod subnet).
    pub ip: Ipv4Addr,
    /// The pod's MAC, when known (otherwise learned from its traffic by the pipeline).
    pub mac: Option<MacAddr>,
}

/// A Linux interface name, validated (1..=15 bytes), `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName {
    len: u8,
    bytes: [u8; 15],
}

impl IfName {
    /// Validates `name`, naming `key` on error.
    pub fn parse_at(key: &str, name: &str) -> Result<Self, ConfigError> {
        check_ifname(key, name)?;
        let mut bytes = [0u8; 15];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(IfName { len: name.len() as u8, bytes })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Built from a &str in `parse_at`, so always valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl std::fmt::Display for IfName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for IfName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl serde::Serialize for IfName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for IfName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IfName::parse_at("interface", &s).map_err(serde::de::Error::custom)
    }
}

impl PodSpec {
    /// Validates one pod's fields; `key` is the prefix used in errors
    /// (`pods[0]` in the config, `pod` on the API).
    pub fn parse(key: &str, interface: &str, ip: &str, mac: Option<&str>) -> Result<Self, ConfigError> {
        let interface = IfName::parse_at(&format!("{key}.interface"), interface)?;
        let ip: Ipv4Addr = parse_at(&format!("{key}.ip"), ip, "an IPv4 address")?;
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() {
            return Err(ConfigError::key(
                format!("{key}.ip"),
                format!("expected a unicast pod address, found {ip}"),
            ));
        }
        let mac = mac.map(|m| unicast_mac_at(&format!("{key}.mac"), m, "0a:58:c6:13:01:02")).transpose()?;
        Ok(PodSpec { interface, ip, mac })
    }
}

/// Why `ip` cannot be a pod's address in `subnet`: the network or broadcast
/// address, or the first host, which is the pods' gateway (FLANNEL_SUBNET).
pub fn reserved_in_subnet(subnet: ipnet::Ipv4Net, ip: Ipv4Addr) -> Option<&'static str> {
    let first_host = Ipv4Addr::from(u32::from(subnet.network()).wrapping_add(1));
    if ip == subnet.network() || ip == subnet.broadcast() {
        Some("the subnet's network or broadcast address")
    } else if ip == first_host {
        Some("the pods' gateway address (the subnet's first host)")
    } else {
        None
    }
}

pub(super) fn validate(raw: Vec<RawPod>) -> Result<Vec<PodSpec>, ConfigError> {
    let mut pods: Vec<PodSpec> = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let key = format!("pods[{i}]");
        let pod = PodSpec::parse(&key, &r.interface, &r.ip, r.mac.as_deref())?;
        if let Some(j) = pods.iter().position(|p| p.interface == pod.interface) {
            return Err(ConfigError::key(
                format!("{key}.interface"),
                format!("{} is already pods[{j}]", pod.interface),
            ));
        }
        if let Some(j) = pods.iter().position(|p| p.ip == pod.ip) {
            return Err(ConfigError::key(format!("{key}.ip"), format!("{} is already pods[{j}]", pod.ip)));
        }
        pods.push(pod);
    }
    Ok(pods)
}
