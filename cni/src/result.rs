//! The ADD result (interfaces, ips, routes, dns), written in the configuration's
//! cniVersion, and the IPAM plugin's result as this plugin reads it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{CniError, IPAM_FAILURE};
use crate::version;

/// One interface the result lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its MAC, `aa:bb:..`.
    pub mac: String,
    /// The netns path, for interfaces inside the container.
    pub sandbox: Option<String>,
}

/// One address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct IpConfig {
    /// The address with its prefix length.
    pub address: Ipv4Net,
    /// The gateway.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// Index into the result's interfaces.
    #[serde(default)]
    pub interface: Option<usize>,
}

/// One route inside the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Route {
    /// The destination.
    pub dst: Ipv4Net,
    /// The next hop; `None`: the address's gateway.
    #[serde(default)]
    pub gw: Option<Ipv4Addr>,
}

/// The ADD result.
#[derive(Debug, Clone, PartialEq)]
pub struct CniResult {
    /// Host end first, then the container's interface.
    pub interfaces: Vec<Interface>,
    /// The pod's addresses.
    pub ips: Vec<IpConfig>,
    /// The pod's routes.
    pub routes: Vec<Route>,
    /// DNS settings passed through from IPAM.
    pub dns: Value,
}

impl CniResult {
    /// The result's JSON in `cni_version` (before 1.0.0 every ip carries `"version":"4"`).
    pub fn to_json(&self, cni_version: &str) -> String {
        let interfaces: Vec<Value> = self
            .interfaces
            .iter()
            .map(|i| {
                let mut v = json!({ "name": i.name, "mac": i.mac });
                if let Some(s) = &i.sandbox {
                    v["sandbox"] = json!(s);
                }
                v
            })
            .collect();
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut v = json!({ "address": ip.address.to_string() });
                if let Some(g) = ip.gateway {
                    v["gateway"] = json!(g.to_string());
                }
                if let Some(i) = ip.interface {
                    v["interface"] = json!(i);
                }
                if !version::at_least(cni_version, "1.0.0") {
                    v["version"] = json!("4");
                }
                v
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                let mut v = json!({ "dst": r.dst.to_string() });
                if let Some(g) = r.gw {
                    v["gw"] = json!(g.to_string());
                }
                v
            })
            .collect();
        json!({
            "cniVersion": cni_version,
            "interfaces": interfaces,
            "ips": ips,
            "routes": routes,
            "dns": self.dns,
        })
        .to_string()
    }

    /// Reads a result (an IPAM plugin's or a prevResult): its IPv4 addresses and routes;
    /// IPv6 entries are left out (weft's pod network is IPv4).
    pub fn parse(value: &Value) -> Result<Self, String> {
        let list = |key: &str| value.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
        let is_v4 =
            |v: &Value, key: &str| v.get(key).and_then(Value::as_str).is_some_and(|s| !s.contains(':'));
        let ips = list("ips")
            .into_iter()
            .filter(|v| is_v4(v, "address"))
            .map(|v| serde_json::from_value::<IpConfig>(v).map_err(|e| format!("ips: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let routes = list("routes")
            .into_iter()
            .filter(|v| is_v4(v, "dst"))
            .map(|v| serde_json::from_value::<Route>(v).map_err(|e| format!("routes: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let interfaces = list("interfaces")
            .into_iter()
            .map(|v| Interface {
                name: v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                mac: v.get("mac").and_then(Value::as_str).unwrap_or_default().to_owned(),
                sandbox: v.get("sandbox").and_then(Value::as_str).map(str::to_owned),
            })
            .collect();
        Ok(CniResult { interfaces, ips, routes, dns: value.get("dns").cloned().unwrap_or_else(|| json!({})) })
    }

    /// The IPAM plugin's stdout: exactly one IPv4 address is what weft attaches.
    pub fn from_ipam(plugin: &str, stdout: &[u8]) -> Result<Self, CniError> {
        let fail =
            |msg: String| CniError::new(IPAM_FAILURE, msg, String::from_utf8_lossy(stdout).into_owned());
        let value: Value = serde_json::from_slice(stdout)
            .map_err(|e| fail(format!("IPAM plugin {plugin}: result is not JSON: {e}")))?;
        let result = Self::parse(&value).map_err(|e| fail(format!("IPAM plugin {plugin}: {e}")))?;
        if result.ips.is_empty() {
            return Err(fail(format!("IPAM plugin {plugin} returned no IPv4 address")));
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_local_result_of_any_version_is_read_and_ipv6_is_left_out() {
        let r = CniResult::from_ipam(
            "host-local",
            br#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"198.19.1.2/24","gateway":"198.19.1.1"},
                {"version":"6","address":"fd00::2/64"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#,
        )
        .unwrap();
        assert_eq!(r.ips.len(), 1);
        assert_eq!(r.ips[0].gateway, Some(Ipv4Addr::new(198, 19, 1, 1)));
        assert_eq!(r.routes, vec![Route { dst: "0.0.0.0/0".parse().unwrap(), gw: None }]);
    }

    #[test]
    fn an_ipam_result_without_an_address_is_an_ipam_failure() {
        let e = CniResult::from_ipam("host-local", br#"{"cniVersion":"1.0.0","ips":[]}"#).unwrap_err();
        assert_eq!(e.code, IPAM_FAILURE);
    }

    #[test]
    fn results_carry_the_ip_version_only_before_1_0_0() {
        let r = CniResult {
            interfaces: vec![
                Interface { name: "wft1".into(), mac: "02:00:00:00:00:01".into(), sandbox: None },
                Interface {
                    name: "eth0".into(),
                    mac: "02:00:00:00:00:02".into(),
                    sandbox: Some("/run/netns/p".into()),
                },
            ],
            ips: vec![IpConfig {
                address: "198.19.1.2/24".parse().unwrap(),
                gateway: Some(Ipv4Addr::new(198, 19, 1, 1)),
                interface: Some(1),
            }],
            routes: vec![Route { dst: "0.0.0.0/0".parse().unwrap(), gw: Some(Ipv4Addr::new(198, 19, 1, 1)) }],
            dns: json!({}),
        };
        let v: Value = serde_json::from_str(&r.to_json("1.0.0")).unwrap();
        assert_eq!(v["ips"][0], json!({"address":"198.19.1.2/24","gateway":"198.19.1.1","interface":1}));
        assert_eq!(v["interfaces"][1]["sandbox"], json!("/run/netns/p"));
        assert_eq!(v["routes"][0], json!({"dst":"0.0.0.0/0","gw":"198.19.1.1"}));
        let old: Value = serde_json::from_str(&r.to_json("0.3.1")).unwrap();
        assert_eq!(old["ips"][0]["version"], json!("4"));
        assert_eq!(CniResult::parse(&v).unwrap(), r);
    }
}
