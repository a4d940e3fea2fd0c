//! `weft-cni`: the CNI plugin (spec 1.0.0; STATUS and GC of 1.1.0) that attaches pods to a
//! running weft node. The runtime execs it with a `CNI_*` environment and the network
//! configuration on stdin ([`conf`]); it answers on stdout with a result or the spec's
//! error JSON ([`error`]).
//!
//! ADD ([`add`]) makes a veth pair, its pod end `CNI_IFNAME` created directly inside
//! `CNI_NETNS` and its host end named from the container (`wft` + a hash of container id
//! and ifname, so DEL finds it without any state), gives the pod an address (IPAM by
//! delegation to the `ipam` plugin, or from the node subnet in weft's subnet.env, see
//! [`ipam`]), the MTU from the configuration or FLANNEL_MTU, a route via the gateway (the
//! subnet's first host, answered by weft), transmit checksum offload off, and attaches the
//! host end to weft through its API socket. DEL ([`del`]) and CHECK ([`check`]) reverse
//! and verify it. Synchronous: netlink runs on a current-thread runtime per socket.
#![deny(unsafe_code)]

pub mod add;
pub mod check;
pub mod conf;
pub mod del;
pub mod env;
pub mod error;
pub mod ethtool;
pub mod ipam;
pub mod link;
mod netns;
pub mod result;
pub mod subnet_env;
pub mod version;
pub mod weft_api;

use conf::NetConf;
use env::{CniEnv, Command};
use error::{CniError, NOT_AVAILABLE};
use ipam::{delegate, store};

/// Host-side veth prefix: GC removes only interfaces named so.
pub const HOST_PREFIX: &str = "wft";

/// The host end's name for `container_id`/`ifname`: `wft` and 12 hex digits of a 64-bit
/// FNV-1a hash (15 characters, the kernel's limit).
pub fn host_ifname(container_id: &str, ifname: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_id.bytes().chain([0]).chain(ifname.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{HOST_PREFIX}{:012x}", h >> 16)
}

/// This invocation's owner key in the allocation store.
pub(crate) fn owner(env: &CniEnv) -> store::Owner {
    store::Owner { container_id: env.container_id.clone(), ifname: env.ifname.clone() }
}

/// Releases the container's address: IPAM DEL by delegation, or from our store. Idempotent.
pub(crate) fn release_address(conf: &NetConf, env: &CniEnv, stdin: &[u8]) -> Result<(), CniError> {
    match conf.ipam_type() {
        Some(plugin) => {
            let stdin = ipam_stdin(conf, stdin, false)?;
            delegate::exec(&delegate::find(plugin, &env.path)?, "DEL", &stdin).map(drop)
        }
        None => store::Store::new(&conf.data_dir, &conf.name).release(&owner(env)).map(drop),
    }
}

/// The configuration the IPAM plugin gets: ours, with `ipam.ranges` filled in from the node
/// subnet in subnet.env when the section names neither `ranges` nor `subnet` (as flannel's
/// CNI plugin does), so one conflist serves every node. Without subnet.env that is an error
/// when `required` (ADD, CHECK); DEL passes the configuration on as it is.
pub(crate) fn ipam_stdin(conf: &NetConf, stdin: &[u8], required: bool) -> Result<Vec<u8>, CniError> {
    let Some(ipam) = &conf.ipam else { return Ok(stdin.to_vec()) };
    if ipam.get("ranges").is_some() || ipam.get("subnet").is_some() {
        return Ok(stdin.to_vec());
    }
    let node = match subnet_env::NodeSubnet::read(&conf.subnet_file) {
        Ok(node) => node,
        Err(e) if required => return Err(e),
        Err(_) => return Ok(stdin.to_vec()),
    };
    let mut v: serde_json::Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(error::DECODE_FAILURE, "the network configuration is not JSON", e.to_string())
    })?;
    v["ipam"]["ranges"] =
        serde_json::json!([[{ "subnet": node.subnet.to_string(), "gateway": node.gateway.to_string() }]]);
    Ok(v.to_string().into_bytes())
}

/// STATUS (1.1.0): ready when weft runs and, where ADD needs it, its subnet file is there.
fn status(conf: &NetConf) -> Result<(), CniError> {
    let not_available = |m: String| CniError::short(NOT_AVAILABLE, m);
    match weft_api::running(&conf.socket) {
        Ok(true) => {}
        Ok(false) => {
            return Err(not_available(format!("weft at {} is not running yet", conf.socket.display())));
        }
        Err(e) => return Err(not_available(e.to_string())),
    }
    if conf.ipam.is_none() || conf.mtu.is_none() {
        subnet_env::NodeSubnet::read(&conf.subnet_file).map_err(|e| not_available(e.msg))?;
    }
    Ok(())
}

/// GC (1.1.0): releases what no attachment in `cni.dev/valid-attachments` holds: our own
/// allocations, `wft*` veths and their weft pods. (An `ipam` plugin keeps its own store.)
fn gc(conf: &NetConf, stdin: &[u8]) -> Result<(), CniError> {
    let v: serde_json::Value = serde_json::from_slice(stdin).unwrap_or_default();
    let valid: Vec<(String, String)> = v
        .get("cni.dev/valid-attachments")
        .and_then(serde_json::Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some((a.get("containerID")?.as_str()?.to_owned(), a.get("ifname")?.as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let keep: std::collections::HashSet<String> = valid.iter().map(|(c, i)| host_ifname(c, i)).collect();
    if conf.ipam.is_none() {
        store::Store::new(&conf.data_dir, &conf.name)
            .release_unless(|o| valid.iter().any(|(c, i)| *c == o.container_id && *i == o.ifname))?;
    }
    let nl = link::Netlink::open()?;
    for name in nl.link_names()? {
        if name.starts_with(HOST_PREFIX) && name.len() == 15 && !keep.contains(&name) {
            if let Err(e) = weft_api::pod_del(&conf.socket, &name) {
                eprintln!("weft-cni: GC {name}: {e}");
            }
            nl.del_link(&name)?;
        }
    }
    Ok(())
}

/// One invocation: `env` and `stdin` in, stdout text and success out. On failure the
/// stdout text is the error JSON.
pub fn run(env: Result<CniEnv, CniError>, stdin: &[u8]) -> (String, bool) {
    let hint = conf::version_hint(stdin).unwrap_or_else(|| version::CURRENT.to_owned());
    let outcome = (|| -> Result<String, CniError> {
        let env = env?;
        if env.command == Command::Version {
            return Ok(version::report());
        }
        let conf = NetConf::parse(stdin)?;
        version::check(&conf.cni_version)?;
        match env.command {
            Command::Add => add::add(&conf, &env, stdin),
            Command::Del => del::del(&conf, &env, stdin).map(|()| String::new()),
            Command::Check => check::check(&conf, &env, stdin).map(|()| String::new()),
            Command::Status => {
                version::check_at_least(&conf.cni_version, "1.1.0", "STATUS")?;
                status(&conf).map(|()| String::new())
            }
            Command::Gc => {
                version::check_at_least(&conf.cni_version, "1.1.0", "GC")?;
                gc(&conf, stdin).map(|()| String::new())
            }
            Command::Version => unreachable!("answered above"),
        }
    })();
    match outcome {
        Ok(out) => (out, true),
        Err(e) => (e.to_json(&hint), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_15_characters_stable_and_differ_per_container_and_ifname() {
        let a = host_ifname("abc", "eth0");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with(HOST_PREFIX));
        assert_eq!(a, host_ifname("abc", "eth0"));
        assert_ne!(a, host_ifname("abc", "eth1"));
        assert_ne!(a, host_ifname("abd", "eth0"));
    }

    #[test]
    fn version_answers_without_a_configuration() {
        let env = CniEnv::from_lookup(|k| (k == "CNI_COMMAND").then(|| "VERSION".to_owned()));
        let (out, ok) = run(env, b"");
        assert!(ok);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert!(v["supportedVersions"].as_array().unwrap().iter().any(|s| s == "0.4.0"));
    }

    #[test]
    fn errors_are_the_specs_json_in_the_configurations_version() {
        let env = CniEnv::from_lookup(|k| (k == "CNI_COMMAND").then(|| "ADD".to_owned()));
        let (out, ok) = run(env, br#"{"cniVersion":"0.4.0","name":"n","type":"weft-cni"}"#);
        assert!(!ok);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!((v["cniVersion"].as_str(), v["code"].as_u64()), (Some("0.4.0"), Some(4)));
        assert!(v["msg"].as_str().unwrap().contains("CNI_CONTAINERID"), "{v}");
        let env = CniEnv::from_lookup(|k| (k == "CNI_COMMAND").then(|| "STATUS".to_owned()));
        let (out, _) = run(env, br#"{"cniVersion":"0.2.0","name":"n","type":"weft-cni"}"#);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["code"], 1, "{v}");
    }
}
