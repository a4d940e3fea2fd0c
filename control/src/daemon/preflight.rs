//! What `weft run` checks before it takes anything (the etcd lease, sockets, XDP programs):
//! everything that can be known to fail in advance stops the start here, with one line naming
//! what is missing and how to fix it, so such a start leaves etcd untouched.
//!
//! ```text
//! capabilities   CAP_NET_ADMIN, CAP_NET_RAW; CAP_BPF or CAP_SYS_ADMIN where AF_XDP is a must
//! interfaces     uplink.interface (with an Ethernet address), pods[i].interface,
//!                exception.interface (one end of a veth whose peer is here)
//! files          node.subnet_file: a file can be created in its directory;
//!                node.state_dir: a file can be created in it (or it can be created)
//! programs       nft, with [host_link] and node.ipmasq (the masquerade rules)
//! ```
//! What cannot be known before the lease (a pod outside the subnet we get, an XDP attach the
//! driver refuses) fails later and gives the lease back (see the daemon module).

use std::path::Path;

use super::DaemonError;
use super::underlay::{link_mac, veth_peer_mac};
use crate::config::{Config, PortBackend};

/// Capability numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Runs every check in the order above; the first failure is the error.
pub fn check(config: &Config) -> Result<(), DaemonError> {
    capabilities(config, effective_capabilities()?)?;
    interfaces(config)?;
    writable_dir("node.subnet_file", &config.node.subnet_file)?;
    creatable_dir("node.state_dir", &config.node.state_dir)?;
    programs(config)
}

/// With `[host_link]` and `node.ipmasq`, `nft` (which applies the masquerade rules) is on PATH.
fn programs(config: &Config) -> Result<(), DaemonError> {
    if config.host_link.is_none() || !config.node.ipmasq {
        return Ok(());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join("nft").is_file()) {
        return Ok(());
    }
    Err(DaemonError::Preflight {
        what: "node.ipmasq: the masquerade rules need nft (package nftables) on PATH; install it \
               or set node.ipmasq = false"
            .to_owned(),
    })
}

/// This process's effective capability set (`CapEff` in /proc/self/status).
fn effective_capabilities() -> Result<u64, DaemonError> {
    const STATUS: &str = "/proc/self/status";
    let bad = |what: String| DaemonError::Preflight { what: format!("{STATUS}: {what}") };
    let status = std::fs::read_to_string(STATUS).map_err(|e| bad(e.to_string()))?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .ok_or_else(|| bad("no CapEff line".to_owned()))?;
    u64::from_str_radix(hex.trim(), 16).map_err(|e| bad(format!("CapEff {:?}: {e}", hex.trim())))
}

/// The capabilities `config` needs that `effective` lacks, named, with what each is for.
fn missing_capabilities(config: &Config, effective: u64) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN (attach XDP programs, configure interfaces)");
    }
    if !has(CAP_NET_RAW) {
        missing.push("CAP_NET_RAW (AF_XDP and AF_PACKET sockets, ARP probes)");
    }
    // `auto` with one queue falls back to AF_PACKET without them (and says so).
    let xdp_required = config
        .uplink
        .as_ref()
        .is_some_and(|u| u.backend == PortBackend::AfXdp || (u.backend == PortBackend::Auto && u.queues > 1));
    if xdp_required && !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF or CAP_SYS_ADMIN (load the XDP programs AF_XDP needs)");
    }
    missing
}

fn capabilities(config: &Config, effective: u64) -> Result<(), DaemonError> {
    let missing = missing_capabilities(config, effective);
    if missing.is_empty() {
        return Ok(());
    }
    Err(DaemonError::MissingCapabilities { missing: missing.join(", ") })
}

/// Every configured interface exists in this namespace; the uplink has a MAC; the exception
/// interface is a veth whose other end is here.
fn interfaces(config: &Config) -> Result<(), DaemonError> {
    let uplink = config.uplink.as_ref().ok_or(DaemonError::NoUplink)?;
    let mut names = vec![("uplink.interface".to_owned(), uplink.interface.clone())];
    for (i, p) in config.pods.iter().enumerate() {
        names.push((format!("pods[{i}].interface"), p.interface.to_string()));
    }
    if let Some(ifname) = &config.exception.interface {
        names.push(("exception.interface".to_owned(), ifname.clone()));
    }
    for (key, ifname) in names {
        if nix::net::if_::if_nametoindex(ifname.as_str()).is_err() {
            return Err(DaemonError::NoSuchInterface { key, ifname });
        }
    }
    link_mac(&uplink.interface)?;
    if let Some(ifname) = &config.exception.interface {
        veth_peer_mac("exception.interface", ifname)?;
    }
    Ok(())
}

/// `file` can be written: its directory passes [`creatable_dir`].
fn writable_dir(key: &'static str, file: &Path) -> Result<(), DaemonError> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    probe(key, dir, file)
}

/// Files can be made in `dir`: a file can be created (and is removed again) in it or, when it
/// does not exist yet, in its nearest existing ancestor (the writer creates the rest).
fn creatable_dir(key: &'static str, dir: &Path) -> Result<(), DaemonError> {
    probe(key, dir, dir)
}

/// The probe of [`creatable_dir`]; a failure names `key`, `shown` and the OS error.
fn probe(key: &'static str, dir: &Path, shown: &Path) -> Result<(), DaemonError> {
    let existing = dir.ancestors().find(|a| a.as_os_str().is_empty() || a.exists()).unwrap_or(dir);
    let existing = if existing.as_os_str().is_empty() { Path::new(".") } else { existing };
    tempfile::Builder::new().prefix(".weft-preflight-").tempfile_in(existing).map(drop).map_err(|e| {
        DaemonError::Unwritable {
            key,
            path: shown.to_owned(),
            why: format!("cannot create a file in {}: {e}", existing.display()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(uplink: &str) -> Config {
        let text = format!(
            "mode = \"static\"\n[node]\nname = \"n\"\npublic_ip = \"198.18.0.11\"\n\
             [network]\nnetwork = \"198.19.0.0/16\"\nbackend = \"host-gw\"\n\
             [static]\nsubnet = \"198.19.1.0/24\"\n[uplink]\ninterface = \"lo\"\n{uplink}"
        );
        Config::parse(&text).unwrap()
    }

    const ALL: u64 = u64::MAX;

    #[test]
    fn every_missing_capability_is_named_in_one_line() {
        let c = config("backend = \"af_xdp\"\n");
        let none = missing_capabilities(&c, 0);
        assert_eq!(none.len(), 3, "{none:?}");
        let err = capabilities(&c, 0).unwrap_err().to_string();
        for cap in ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF or CAP_SYS_ADMIN"] {
            assert!(err.contains(cap), "{err}");
        }
        assert!(!err.contains('\n'), "{err}");
        assert!(capabilities(&c, ALL).is_ok());
    }

    #[test]
    fn cap_sys_admin_stands_in_for_cap_bpf() {
        let c = config("backend = \"af_xdp\"\n");
        let net = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW);
        assert_eq!(missing_capabilities(&c, net).len(), 1);
        assert!(missing_capabilities(&c, net | (1 << CAP_SYS_ADMIN)).is_empty());
        assert!(missing_capabilities(&c, net | (1 << CAP_BPF)).is_empty());
    }

    #[test]
    fn auto_with_one_queue_and_af_packet_need_no_bpf() {
        let net = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW);
        assert!(missing_capabilities(&config(""), net).is_empty());
        assert!(missing_capabilities(&config("backend = \"af_packet\"\n"), net).is_empty());
        assert_eq!(missing_capabilities(&config("queues = 2\n"), net).len(), 1);
    }

    #[test]
    fn a_directory_that_is_a_file_or_read_only_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("afile");
        std::fs::write(&file, "").unwrap();
        let err = writable_dir("node.subnet_file", &file.join("subnet.env")).unwrap_err().to_string();
        assert!(
            err.starts_with("node.subnet_file: cannot write")
                && err.contains("Not a directory (os error 20)"),
            "{err}"
        );
        let err = creatable_dir("node.state_dir", &file.join("state")).unwrap_err().to_string();
        let state = file.join("state");
        assert!(
            err.starts_with(&format!("node.state_dir: cannot write {}: ", state.display()))
                && err.contains("Not a directory (os error 20)"),
            "{err}"
        );
        let err = writable_dir("node.subnet_file", Path::new("/proc/weft/subnet.env")).unwrap_err();
        assert!(err.to_string().contains("/proc"), "{err}");
    }

    #[test]
    fn a_missing_directory_is_fine_when_its_parent_is_writable_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        writable_dir("node.subnet_file", &dir.path().join("a/b/subnet.env")).unwrap();
        writable_dir("node.subnet_file", &dir.path().join("subnet.env")).unwrap();
        creatable_dir("node.state_dir", &dir.path().join("a/state")).unwrap();
        creatable_dir("node.state_dir", dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is removed");
    }
}
