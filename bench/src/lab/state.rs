//! The state file: what `up` made, so `down` removes exactly that, also after a crash.
//!
//! It is rewritten (temporary sibling + rename) *before* every namespace is created and
//! after every process is started, so a crash at any point leaves a file that lists
//! everything that may exist. `down` tolerates entries that do not exist (any more).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::LabError;
use super::topology::{Backend, NodeKind};

/// A process the lab started, identified by PID *and* start time so that `down` never
/// signals a process that merely reused the PID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// What it is (`etcd`, `n1 kflannel`, ...).
    pub name: String,
    /// The namespace it runs in.
    pub ns: String,
    /// Its PID.
    pub pid: i32,
    /// `/proc/<pid>/stat` field 22 (start time in clock ticks since boot).
    pub start_time: u64,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// One pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodState {
    /// Its namespace.
    pub ns: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// The host end of its veth in the node namespace.
    pub host_iface: String,
    /// The MAC of its `pod0` (what a weft node delivers to).
    #[serde(default)]
    pub mac: String,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Index (1-based).
    pub index: usize,
    /// Data path.
    pub kind: NodeKind,
    /// Namespace.
    pub ns: String,
    /// Uplink address (PublicIP).
    pub public_ip: Ipv4Addr,
    /// The pod subnet it holds (from its subnet.env once leased).
    pub subnet: Ipv4Net,
    /// Its subnet.env.
    pub subnet_file: PathBuf,
    /// The generated weft config (weft nodes).
    pub config: Option<PathBuf>,
    /// Its pods.
    pub pods: Vec<PodState>,
}

/// Everything a lab consists of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// Namespace prefix.
    pub prefix: String,
    /// The lab's directory (state file, logs, etcd data, configs).
    pub dir: PathBuf,
    /// The backend in etcd's network config.
    pub backend: Backend,
    /// etcd's client URL.
    pub etcd_endpoint: String,
    /// Namespaces, in creation order (recorded before each is created).
    pub namespaces: Vec<String>,
    /// Processes, in start order.
    pub processes: Vec<ProcessRecord>,
    /// Nodes.
    pub nodes: Vec<NodeState>,
}

/// The state file of the lab with `prefix` under `state_root`.
pub fn state_path(state_root: &Path, prefix: &str) -> PathBuf {
    state_root.join(prefix).join("state.json")
}

impl LabState {
    /// Reads a state file.
    pub fn load(path: &Path) -> Result<Self, LabError> {
        let text = std::fs::read_to_string(path).map_err(LabError::file(path))?;
        serde_json::from_str(&text).map_err(|error| LabError::State { path: path.to_owned(), error })
    }

    /// This state's file.
    pub fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Writes the state file atomically.
    pub fn save(&self) -> Result<(), LabError> {
        let path = self.path();
        let tmp = self.dir.join("state.json.tmp");
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&tmp, text).map_err(LabError::file(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(LabError::file(&path))
    }

    /// Node `i` (1-based).
    pub fn node(&self, i: usize) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.index == i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_identical() {
        let dir = tempfile::tempdir().unwrap();
        let state = LabState {
            prefix: "wl1".into(),
            dir: dir.path().to_owned(),
            backend: Backend::Vxlan,
            etcd_endpoint: "http://198.18.0.250:2379".into(),
            namespaces: vec!["wl1-ul".into(), "wl1-n1".into()],
            processes: vec![ProcessRecord {
                name: "etcd".into(),
                ns: "wl1-etcd".into(),
                pid: 42,
                start_time: 7,
                log: dir.path().join("etcd.log"),
            }],
            nodes: vec![NodeState {
                index: 1,
                kind: NodeKind::Kernel,
                ns: "wl1-n1".into(),
                public_ip: Ipv4Addr::new(198, 18, 0, 1),
                subnet: "198.19.1.0/24".parse().unwrap(),
                subnet_file: dir.path().join("n1.subnet.env"),
                config: None,
                pods: vec![],
            }],
        };
        state.save().unwrap();
        assert_eq!(LabState::load(&state.path()).unwrap(), state);
    }
}
