//! The `CNI_*` environment of one invocation, validated as the spec asks.

use std::path::PathBuf;

use crate::error::{CniError, INVALID_ENV};

/// The command the runtime asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach a container.
    Add,
    /// Detach a container (idempotent).
    Del,
    /// Verify an attachment.
    Check,
    /// Report supported versions.
    Version,
    /// Report whether ADDs can be served (1.1.0).
    Status,
    /// Release what no listed attachment uses (1.1.0).
    Gc,
}

/// The environment of one invocation.
#[derive(Debug, Clone)]
pub struct CniEnv {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS` (may be empty on DEL).
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS`, passed on to the IPAM plugin.
    pub args: String,
    /// `CNI_PATH`, split: where the IPAM plugin is looked for.
    pub path: Vec<PathBuf>,
}

fn invalid(msg: String) -> CniError {
    CniError::short(INVALID_ENV, msg)
}

impl CniEnv {
    /// The pod's namespace and name from `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, as
    /// container runtimes pass them), when both are there.
    pub fn k8s_pod(&self) -> Option<(String, String)> {
        let arg = |key: &str| {
            self.args
                .split(';')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_owned())
                .filter(|v| !v.is_empty())
        };
        Some((arg("K8S_POD_NAMESPACE")?, arg("K8S_POD_NAME")?))
    }

    /// Reads the environment through `get` (the process environment in the binary).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, CniError> {
        let command = match get("CNI_COMMAND").as_deref() {
            Some("ADD") => Command::Add,
            Some("DEL") => Command::Del,
            Some("CHECK") => Command::Check,
            Some("VERSION") => Command::Version,
            Some("STATUS") => Command::Status,
            Some("GC") => Command::Gc,
            Some(other) => {
                return Err(invalid(format!(
                    "CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, VERSION, STATUS, GC"
                )));
            }
            None => return Err(invalid("CNI_COMMAND is not set".into())),
        };
        let path = get("CNI_PATH")
            .map(|p| p.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect())
            .unwrap_or_default();
        let mut env = CniEnv {
            command,
            container_id: String::new(),
            netns: get("CNI_NETNS").filter(|s| !s.is_empty()).map(PathBuf::from),
            ifname: String::new(),
            args: get("CNI_ARGS").unwrap_or_default(),
            path,
        };
        if matches!(command, Command::Add | Command::Del | Command::Check) {
            let id = get("CNI_CONTAINERID").filter(|s| !s.is_empty());
            env.container_id = id.ok_or_else(|| invalid("CNI_CONTAINERID is not set".into()))?;
            validate_container_id(&env.container_id)?;
            let ifname = get("CNI_IFNAME").filter(|s| !s.is_empty());
            env.ifname = ifname.ok_or_else(|| invalid("CNI_IFNAME is not set".into()))?;
            validate_ifname(&env.ifname)?;
            if command != Command::Del && env.netns.is_none() {
                return Err(invalid("CNI_NETNS is not set".into()));
            }
        }
        Ok(env)
    }

    /// Reads the process environment.
    pub fn from_process() -> Result<Self, CniError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// The spec: alphanumerics, underscore, period and hyphen, starting alphanumeric.
fn validate_container_id(id: &str) -> Result<(), CniError> {
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok { Ok(()) } else { Err(invalid(format!("CNI_CONTAINERID {id:?} has characters the spec forbids"))) }
}

/// The spec: at most 15 characters, not `.` or `..`, no `/`, `:` or whitespace.
fn validate_ifname(name: &str) -> Result<(), CniError> {
    let bad = name.len() > 15
        || name == "."
        || name == ".."
        || name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(invalid(format!(
            "CNI_IFNAME {name:?} is not a valid interface name (at most 15 characters, no '/', ':' or spaces)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<CniEnv, CniError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        CniEnv::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn add_needs_a_container_an_interface_and_a_netns() {
        let ok = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc-1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_PATH", "/a:/b"),
        ])
        .unwrap();
        assert_eq!(ok.path, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        let e =
            env(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "abc"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!(e.code, INVALID_ENV);
        assert!(e.msg.contains("CNI_NETNS"), "{e}");
    }

    #[test]
    fn the_pods_namespace_and_name_come_from_cni_args() {
        let with = |args: &str| {
            env(&[
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", "abc"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_ARGS", args),
            ])
            .unwrap()
            .k8s_pod()
        };
        let both = "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;K8S_POD_INFRA_CONTAINER_ID=abc";
        assert_eq!(with(both), Some(("x".into(), "a".into())));
        assert_eq!(with("K8S_POD_NAMESPACE=x"), None);
        assert_eq!(with(""), None);
    }

    #[test]
    fn del_without_a_netns_is_fine() {
        let ok = env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "abc"), ("CNI_IFNAME", "eth0")]).unwrap();
        assert!(ok.netns.is_none());
    }

    #[test]
    fn bad_commands_ids_and_interface_names_are_named() {
        assert!(env(&[]).unwrap_err().msg.contains("CNI_COMMAND"));
        assert!(env(&[("CNI_COMMAND", "PUT")]).unwrap_err().msg.contains("PUT"));
        let e =
            env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "a/b"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert!(e.msg.contains("CNI_CONTAINERID"), "{e}");
        let e =
            env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "a"), ("CNI_IFNAME", "a-very-long-ifname")])
                .unwrap_err();
        assert!(e.msg.contains("CNI_IFNAME"), "{e}");
        assert!(env(&[("CNI_COMMAND", "VERSION")]).is_ok());
    }
}
