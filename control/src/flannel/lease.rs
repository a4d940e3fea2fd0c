//! The value of `<prefix>/subnets/<subnet>`: flannel's `LeaseAttrs` JSON.
//!
//! flanneld (pkg/subnet `LeaseAttrs`) marshals, in this field order:
//! `PublicIP` (string), `PublicIPv6` (pointer, so `null` when unset — no
//! omitempty), `BackendType` (omitempty), `BackendData` (raw JSON, omitempty),
//! `BackendV6Data` (omitempty). The vxlan backend's data is
//! `{"VNI":<u16>,"VtepMAC":"aa:bb:cc:dd:ee:ff"}`; the wireguard backend's (pkg/backend/wireguard
//! `wireguardLeaseAttrs`) is `{"PublicKey":"<base64>","Port":<u16>}`; host-gw and ipip write none.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use serde_json::Value;

use super::MacAddr;
use super::go_json::present;
use super::wg_key::{WgKey, WgKeyParseError};

/// The backend a lease (or the network config) names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendType {
    /// `"vxlan"`
    Vxlan,
    /// `"host-gw"`
    HostGw,
    /// `"ipip"`
    Ipip,
    /// `"wireguard"`
    WireGuard,
    /// Any other backend (`"udp"`, `"alloc"`, …): read, never routed.
    Other(String),
}

impl BackendType {
    /// Parses flannel's backend name (case-sensitive, as flannel compares it).
    pub fn from_name(name: &str) -> Self {
        match name {
            "vxlan" => BackendType::Vxlan,
            "host-gw" => BackendType::HostGw,
            "ipip" => BackendType::Ipip,
            "wireguard" => BackendType::WireGuard,
            other => BackendType::Other(other.to_owned()),
        }
    }

    /// The name flannel writes.
    pub fn name(&self) -> &str {
        match self {
            BackendType::Vxlan => "vxlan",
            BackendType::HostGw => "host-gw",
            BackendType::Ipip => "ipip",
            BackendType::WireGuard => "wireguard",
            BackendType::Other(s) => s,
        }
    }
}

impl fmt::Display for BackendType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The vxlan backend's `BackendData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanBackendData {
    /// `VNI`; old flannel versions do not write it.
    pub vni: Option<u32>,
    /// `VtepMAC`: the MAC of the node's VTEP, the inner destination MAC.
    pub vtep_mac: MacAddr,
}

/// The wireguard backend's `BackendData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireGuardBackendData {
    /// `PublicKey`: the node's WireGuard public key.
    pub public_key: WgKey,
    /// `Port`: its listen port; flannel before v0.22 wrote none (`None`: the peer listens on
    /// the network's `Backend.ListenPort`, as flannel assumes).
    pub port: Option<u16>,
}

/// A decoded lease value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseAttrs {
    /// `PublicIP`: the node's underlay address.
    pub public_ip: Ipv4Addr,
    /// `PublicIPv6`: kept so a dual-stack flannel lease survives a round trip.
    pub public_ipv6: Option<Ipv6Addr>,
    /// `BackendType`.
    pub backend_type: BackendType,
    /// `BackendData` of a vxlan lease; `None` for other backends.
    pub vxlan: Option<VxlanBackendData>,
    /// `BackendData` of a wireguard lease; `None` for other backends.
    pub wireguard: Option<WireGuardBackendData>,
}

/// A lease value that cannot be used; names the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseDecodeError {
    /// Not a JSON object at all.
    #[error("lease value is not a JSON object: {0}")]
    NotJson(String),
    /// A field has the wrong type or an unparsable value.
    #[error("lease field {field}: {problem}")]
    Field {
        /// The flannel field name (`PublicIP`, `BackendData.VtepMAC`, …).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

fn bad(field: &'static str, problem: impl Into<String>) -> LeaseDecodeError {
    LeaseDecodeError::Field { field, problem: problem.into() }
}

#[derive(Serialize)]
struct WireVxlan {
    #[serde(rename = "VNI")]
    vni: u32,
    #[serde(rename = "VtepMAC")]
    vtep_mac: String,
}

#[derive(Serialize)]
struct WireWireGuard {
    #[serde(rename = "PublicKey")]
    public_key: String,
    #[serde(rename = "Port")]
    port: u16,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireData {
    Vxlan(WireVxlan),
    WireGuard(WireWireGuard),
}

#[derive(Serialize)]
struct WireLease<'a> {
    #[serde(rename = "PublicIP")]
    public_ip: Ipv4Addr,
    #[serde(rename = "PublicIPv6")]
    public_ipv6: Option<Ipv6Addr>,
    #[serde(rename = "BackendType", skip_serializing_if = "str::is_empty")]
    backend_type: &'a str,
    #[serde(rename = "BackendData", skip_serializing_if = "Option::is_none")]
    backend_data: Option<WireData>,
}

impl LeaseAttrs {
    /// The JSON flanneld would write for these attributes, byte for byte.
    /// A vxlan lease without a VNI writes VNI 0, a wireguard lease without a port Port 0, as
    /// flannel's zero values would.
    pub fn to_json(&self) -> String {
        let vxlan = self.vxlan.map(|v| {
            WireData::Vxlan(WireVxlan { vni: v.vni.unwrap_or(0), vtep_mac: v.vtep_mac.to_string() })
        });
        let wireguard = self.wireguard.map(|w| {
            WireData::WireGuard(WireWireGuard {
                public_key: w.public_key.to_string(),
                port: w.port.unwrap_or(0),
            })
        });
        let wire = WireLease {
            public_ip: self.public_ip,
            public_ipv6: self.public_ipv6,
            backend_type: self.backend_type.name(),
            backend_data: vxlan.or(wireguard),
        };
        // Serialising plain strings and integers into a String cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Decodes a lease value as flanneld does: field names matched
    /// case-insensitively, unknown fields ignored. `BackendData` is decoded
    /// only for vxlan leases, where `VtepMAC` is required, and wireguard leases, where
    /// `PublicKey` is.
    pub fn from_json(bytes: &[u8]) -> Result<Self, LeaseDecodeError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| LeaseDecodeError::NotJson(e.to_string()))?;
        let obj = value.as_object().ok_or_else(|| LeaseDecodeError::NotJson("not an object".into()))?;
        let public_ip = match present(obj, "PublicIP") {
            Some(Value::String(s)) => {
                s.parse().map_err(|_| bad("PublicIP", format!("{s:?} is not an IPv4 address")))?
            }
            Some(other) => return Err(bad("PublicIP", format!("{other} is not a string"))),
            None => return Err(bad("PublicIP", "missing")),
        };
        let public_ipv6 = match present(obj, "PublicIPv6") {
            Some(Value::String(s)) => {
                Some(s.parse().map_err(|_| bad("PublicIPv6", format!("{s:?} is not an IPv6 address")))?)
            }
            Some(other) => return Err(bad("PublicIPv6", format!("{other} is not a string"))),
            None => None,
        };
        let backend_type = match present(obj, "BackendType") {
            Some(Value::String(s)) => BackendType::from_name(s),
            Some(other) => return Err(bad("BackendType", format!("{other} is not a string"))),
            None => BackendType::Other(String::new()),
        };
        let vxlan = match (&backend_type, present(obj, "BackendData")) {
            (BackendType::Vxlan, Some(Value::Object(data))) => {
                let vtep_mac = match present(data, "VtepMAC") {
                    Some(Value::String(s)) => s.parse().map_err(|e: super::MacParseError| {
                        bad("BackendData.VtepMAC", format!("{s:?}: {e}"))
                    })?,
                    _ => return Err(bad("BackendData.VtepMAC", "missing or not a string")),
                };
                let vni = match present(data, "VNI") {
                    Some(v) => Some(
                        v.as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .filter(|&n| n < 1 << 24)
                            .ok_or_else(|| bad("BackendData.VNI", format!("{v} is not a 24-bit VNI")))?,
                    ),
                    None => None,
                };
                Some(VxlanBackendData { vni, vtep_mac })
            }
            (BackendType::Vxlan, _) => {
                return Err(bad("BackendData", "a vxlan lease needs an object with VtepMAC"));
            }
            _ => None,
        };
        let wireguard = match (&backend_type, present(obj, "BackendData")) {
            (BackendType::WireGuard, Some(Value::Object(data))) => Some(wireguard_data(data)?),
            (BackendType::WireGuard, _) => {
                return Err(bad("BackendData", "a wireguard lease needs an object with PublicKey"));
            }
            _ => None,
        };
        Ok(LeaseAttrs { public_ip, public_ipv6, backend_type, vxlan, wireguard })
    }
}

/// A wireguard lease's `BackendData` object.
fn wireguard_data(data: &serde_json::Map<String, Value>) -> Result<WireGuardBackendData, LeaseDecodeError> {
    let public_key = match present(data, "PublicKey") {
        Some(Value::String(s)) => {
            s.parse().map_err(|e: WgKeyParseError| bad("BackendData.PublicKey", format!("{s:?}: {e}")))?
        }
        _ => return Err(bad("BackendData.PublicKey", "missing or not a string")),
    };
    let port = match present(data, "Port") {
        None => None,
        Some(v) => {
            let port = v
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| bad("BackendData.Port", format!("{v} is not a UDP port")))?;
            (port != 0).then_some(port)
        }
    };
    Ok(WireGuardBackendData { public_key, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vxlan_lease() -> LeaseAttrs {
        LeaseAttrs {
            public_ip: Ipv4Addr::new(198, 18, 0, 11),
            public_ipv6: None,
            backend_type: BackendType::Vxlan,
            vxlan: Some(VxlanBackendData { vni: Some(1), vtep_mac: "0a:58:c6:13:01:01".parse().unwrap() }),
            wireguard: None,
        }
    }

    fn wireguard_lease() -> LeaseAttrs {
        LeaseAttrs {
            public_ip: Ipv4Addr::new(198, 18, 0, 12),
            public_ipv6: None,
            backend_type: BackendType::WireGuard,
            vxlan: None,
            wireguard: Some(WireGuardBackendData {
                public_key: "GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=".parse().unwrap(),
                port: Some(51820),
            }),
        }
    }

    #[test]
    fn a_wireguard_lease_is_written_as_flannel_writes_it() {
        // flannel's newSubnetAttrs: json.Marshal(&wireguardLeaseAttrs{PublicKey, Port}) as
        // BackendData of an IPv4 lease.
        assert_eq!(
            wireguard_lease().to_json(),
            r#"{"PublicIP":"198.18.0.12","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=","Port":51820}}"#
        );
        assert_eq!(LeaseAttrs::from_json(wireguard_lease().to_json().as_bytes()), Ok(wireguard_lease()));
    }

    #[test]
    fn a_wireguard_lease_of_an_old_flannel_has_no_port() {
        let old = br#"{"PublicIP":"198.18.0.12","BackendType":"wireguard","BackendData":{"PublicKey":"GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A="}}"#;
        let lease = LeaseAttrs::from_json(old).unwrap();
        assert_eq!(lease.wireguard.map(|w| w.port), Some(None));
        let zero = br#"{"PublicIP":"198.18.0.12","BackendType":"wireguard","BackendData":{"PublicKey":"GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=","Port":0}}"#;
        assert_eq!(LeaseAttrs::from_json(zero), Ok(lease));
    }

    #[test]
    fn a_vxlan_lease_is_written_in_flannels_field_order() {
        assert_eq!(
            vxlan_lease().to_json(),
            r#"{"PublicIP":"198.18.0.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:c6:13:01:01"}}"#
        );
    }

    #[test]
    fn host_gw_and_ipip_leases_carry_no_backend_data() {
        for bt in [BackendType::HostGw, BackendType::Ipip] {
            let lease = LeaseAttrs { backend_type: bt.clone(), vxlan: None, ..vxlan_lease() };
            assert_eq!(
                lease.to_json(),
                format!(r#"{{"PublicIP":"198.18.0.11","PublicIPv6":null,"BackendType":"{bt}"}}"#)
            );
        }
    }

    #[test]
    fn a_lease_decodes_with_go_case_folding_and_round_trips() {
        let lease = vxlan_lease();
        assert_eq!(LeaseAttrs::from_json(lease.to_json().as_bytes()), Ok(lease.clone()));
        let folded = br#"{"publicip":"198.18.0.11","backendtype":"vxlan","backenddata":{"vni":1,"vtepmac":"0A:58:C6:13:01:01"},"Extra":1}"#;
        assert_eq!(LeaseAttrs::from_json(folded), Ok(lease));
    }

    #[test]
    fn broken_leases_name_the_field() {
        let cases: [(&[u8], &str); 7] = [
            (br#"{"PublicIP":"300.1.1.1"}"#, "PublicIP"),
            (br#"{"BackendType":"host-gw"}"#, "PublicIP"),
            (br#"{"PublicIP":"1.1.1.1","BackendType":"vxlan"}"#, "BackendData"),
            (
                br#"{"PublicIP":"1.1.1.1","BackendType":"vxlan","BackendData":{"VtepMAC":"zz"}}"#,
                "BackendData.VtepMAC",
            ),
            (br#"{"PublicIP":"1.1.1.1","BackendType":"wireguard"}"#, "BackendData"),
            (
                br#"{"PublicIP":"1.1.1.1","BackendType":"wireguard","BackendData":{"PublicKey":"AAAA"}}"#,
                "BackendData.PublicKey",
            ),
            (
                br#"{"PublicIP":"1.1.1.1","BackendType":"wireguard","BackendData":{"PublicKey":"GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=","Port":70000}}"#,
                "BackendData.Port",
            ),
        ];
        for (json, want) in cases {
            match LeaseAttrs::from_json(json) {
                Err(LeaseDecodeError::Field { field, .. }) => assert_eq!(field, want),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(json)),
            }
        }
    }
}
