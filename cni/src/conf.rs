//! The network configuration on stdin: the spec's keys plus weft's own.
//!
//! ```json
//! {"cniVersion":"1.0.0","name":"weft","type":"weft-cni",
//!  "socket":"/run/weft/weft.sock","subnetFile":"/run/flannel/subnet.env",
//!  "dataDir":"/var/lib/cni/weft","mtu":1450,
//!  "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24"}]]}}
//! ```
//! Without `ipam`, addresses come from the node subnet in `subnetFile`, allocated by the
//! plugin itself under `dataDir`. `mtu` overrides `FLANNEL_MTU`.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{CniError, DECODE_FAILURE, INVALID_CONFIG};

/// weft's API socket when the configuration names none (weft's `[api] socket` default).
pub const DEFAULT_SOCKET: &str = "/run/weft/weft.sock";
/// The subnet file when the configuration names none (weft's `node.subnet_file` default).
pub const DEFAULT_SUBNET_FILE: &str = "/run/flannel/subnet.env";
/// The plugin's state directory when the configuration names none.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/weft";

/// The validated network configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// The spec version the runtime speaks (results are written in it).
    pub cni_version: String,
    /// The network's name (allocations are kept per name).
    pub name: String,
    /// The plugin's binary name.
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// The IPAM plugin's section, passed on whole; `None`: allocate from the lease.
    #[serde(default)]
    pub ipam: Option<Value>,
    /// weft's API socket.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// weft's subnet.env (FLANNEL_SUBNET, FLANNEL_MTU).
    #[serde(default = "default_subnet_file")]
    pub subnet_file: PathBuf,
    /// Where attachments and allocations are kept.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The pod interface's MTU; default FLANNEL_MTU.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The previous result (CHECK, chained ADD).
    #[serde(default)]
    pub prev_result: Option<Value>,
    /// `args`: `args.labels` (an object of strings) are the pod's labels, which network
    /// policies select it by.
    #[serde(default)]
    pub args: Option<Value>,
}

fn default_socket() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET)
}

fn default_subnet_file() -> PathBuf {
    PathBuf::from(DEFAULT_SUBNET_FILE)
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}

impl NetConf {
    /// Parses stdin: not JSON is code 6, a missing or wrong key code 7 naming the key.
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let value: Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(DECODE_FAILURE, "the network configuration on stdin is not JSON", e.to_string())
        })?;
        let conf: NetConf = serde_json::from_value(value)
            .map_err(|e| CniError::new(INVALID_CONFIG, format!("network configuration: {e}"), ""))?;
        if conf.name.is_empty() {
            return Err(CniError::short(INVALID_CONFIG, "network configuration: `name` is empty"));
        }
        if let Some(ipam) = &conf.ipam {
            match ipam.get("type").and_then(Value::as_str) {
                Some(t) if !t.is_empty() && !t.contains('/') => {}
                _ => {
                    return Err(CniError::short(
                        INVALID_CONFIG,
                        "network configuration: `ipam.type` must name an IPAM plugin binary (e.g. \"host-local\")",
                    ));
                }
            }
        }
        if conf.mtu.is_some_and(|m| !(68..=65535).contains(&m)) {
            return Err(CniError::short(INVALID_CONFIG, "network configuration: `mtu` must be 68..=65535"));
        }
        conf.labels()?;
        Ok(conf)
    }

    /// The pod's labels from `args.labels`.
    pub fn labels(&self) -> Result<std::collections::BTreeMap<String, String>, CniError> {
        let Some(labels) = self.args.as_ref().and_then(|a| a.get("labels")) else {
            return Ok(Default::default());
        };
        serde_json::from_value(labels.clone()).map_err(|e| {
            CniError::short(
                INVALID_CONFIG,
                format!("network configuration: `args.labels` must map strings to strings: {e}"),
            )
        })
    }

    /// The IPAM plugin's binary name, when delegating.
    pub fn ipam_type(&self) -> Option<&str> {
        self.ipam.as_ref().and_then(|i| i.get("type")).and_then(Value::as_str)
    }
}

/// Reads the `cniVersion` of stdin when it can, for error results written before the
/// configuration is validated.
pub fn version_hint(stdin: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(stdin).ok()?;
    v.get("cniVersion")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_args_and_must_be_strings() {
        let conf = |args: &str| {
            NetConf::parse(
                format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"weft","args":{args}}}"#).as_bytes(),
            )
        };
        let c = conf(r#"{"labels":{"app":"web"}}"#).unwrap();
        assert_eq!(c.labels().unwrap(), [("app".to_owned(), "web".to_owned())].into());
        assert!(conf(r#"{"other":1}"#).unwrap().labels().unwrap().is_empty());
        let e = conf(r#"{"labels":{"app":1}}"#).unwrap_err();
        assert!(e.msg.contains("args.labels"), "{e}");
    }

    #[test]
    fn a_minimal_configuration_takes_the_defaults() {
        let c = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"weft","type":"weft-cni"}"#).unwrap();
        assert_eq!(c.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(c.subnet_file, PathBuf::from(DEFAULT_SUBNET_FILE));
        assert!(c.ipam.is_none() && c.mtu.is_none());
    }

    #[test]
    fn weft_keys_and_an_ipam_section_are_read() {
        let c = NetConf::parse(
            br#"{"cniVersion":"0.4.0","name":"n","type":"weft-cni","socket":"/s","subnetFile":"/f",
                "dataDir":"/d","mtu":1400,"ipam":{"type":"host-local","subnet":"198.19.1.0/24"}}"#,
        )
        .unwrap();
        assert_eq!((c.socket.to_str(), c.subnet_file.to_str(), c.mtu), (Some("/s"), Some("/f"), Some(1400)));
        assert_eq!(c.ipam_type(), Some("host-local"));
    }

    #[test]
    fn not_json_is_a_decode_failure_and_a_missing_key_is_an_invalid_config_naming_it() {
        assert_eq!(NetConf::parse(b"{nope").unwrap_err().code, DECODE_FAILURE);
        let e = NetConf::parse(br#"{"cniVersion":"1.0.0","type":"weft-cni"}"#).unwrap_err();
        assert_eq!(e.code, INVALID_CONFIG);
        assert!(e.msg.contains("name"), "{e}");
        let e = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"t","mtu":"big"}"#).unwrap_err();
        assert_eq!(e.code, INVALID_CONFIG);
        let e = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"t","ipam":{}}"#).unwrap_err();
        assert!(e.msg.contains("ipam.type"), "{e}");
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// Each plugin entry of `list` as the runtime hands it over: with the list's
    /// `cniVersion` and `name`.
    fn entries(list: &str) -> Vec<Vec<u8>> {
        let v: Value = serde_json::from_str(list).unwrap();
        v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let mut p = p.clone();
                p["cniVersion"] = v["cniVersion"].clone();
                p["name"] = v["name"].clone();
                p.to_string().into_bytes()
            })
            .collect()
    }

    #[test]
    fn the_example_conflists_are_valid_weft_configurations() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cni");
        let hostlocal =
            NetConf::parse(&entries(&std::fs::read_to_string(dir.join("10-weft.conflist")).unwrap())[0])
                .unwrap();
        assert_eq!((hostlocal.plugin_type.as_str(), hostlocal.ipam_type()), ("weft-cni", Some("host-local")));
        let lease = NetConf::parse(
            &entries(&std::fs::read_to_string(dir.join("10-weft-lease.conflist")).unwrap())[0],
        )
        .unwrap();
        assert!(lease.ipam.is_none());
        assert_eq!(lease.socket, PathBuf::from(DEFAULT_SOCKET));
    }
}
