//! The pods attached through the API, kept under `node.state_dir` so that a restarted weft
//! re-attaches them without a CNI call.
//!
//! One JSON file per pod, `<state_dir>/pods/<interface>.json` (interface names are at most 15
//! bytes without `/`, so they are file names), written to a temporary name and renamed: a
//! crash leaves the old record or the new one, never half of one. A record is written once the
//! pod is attached and removed once it is detached. At start, [`PodStore::restore`] attaches
//! every recorded pod whose interface still exists and drops the records of the others (their
//! veth went with the pod's namespace while weft was down), and of those that no longer fit
//! (an address outside the subnet weft got this time).
//!
//! The directory is created on the first write, so a node that never attaches a pod through
//! the API leaves nothing behind.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::workers::Dataplane;
use crate::config::PodSpec;

/// One attached pod, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    /// Host-side interface of the pod's veth.
    pub interface: String,
    /// The pod's IPv4 address.
    pub ip: Ipv4Addr,
    /// The pod's MAC, when the caller gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The pod's Kubernetes namespace, when the caller knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The pod's Kubernetes name, when the caller knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl PodRecord {
    /// The record of `spec`, with the pod's Kubernetes `namespace` and `name` when known.
    pub fn of(spec: &PodSpec, namespace: Option<String>, name: Option<String>) -> Self {
        PodRecord {
            interface: spec.interface.to_string(),
            ip: spec.ip,
            mac: spec.mac.map(|m| m.to_string()),
            namespace,
            name,
        }
    }
}

/// Why a record could not be written or removed.
#[derive(Debug, thiserror::Error)]
#[error("node.state_dir: {what} {}: {source}", path.display())]
pub struct StoreError {
    what: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// What [`PodStore::restore`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Pods attached again.
    pub attached: usize,
    /// Records dropped (interface gone, or the pod no longer fits).
    pub dropped: usize,
}

/// The pod records under `<state_dir>/pods`.
#[derive(Debug, Clone)]
pub struct PodStore {
    dir: PathBuf,
}

impl PodStore {
    /// The store under `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        PodStore { dir: state_dir.join("pods") }
    }

    fn path(&self, interface: &str) -> PathBuf {
        self.dir.join(format!("{interface}.json"))
    }

    /// Records `record` (replacing the interface's earlier record).
    pub fn put(&self, record: &PodRecord) -> Result<(), StoreError> {
        let err = |what, path: &Path| {
            let path = path.to_owned();
            move |source| StoreError { what, path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(err("creating", &self.dir))?;
        let path = self.path(&record.interface);
        let tmp = self.dir.join(format!(".{}.json.tmp", record.interface));
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| err("encoding", &path)(e.into()))?;
        let mut f = std::fs::File::create(&tmp).map_err(err("writing", &tmp))?;
        f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(err("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(err("renaming", &path))
    }

    /// Forgets `interface`'s record (none: nothing to do).
    pub fn remove(&self, interface: &str) -> Result<(), StoreError> {
        let path = self.path(interface);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError { what: "removing", path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// Every readable record, by interface name; unreadable files are logged and skipped.
    pub fn load(&self) -> Vec<PodRecord> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "pod records unreadable: {e}");
                return Vec::new();
            }
        };
        let mut out: Vec<PodRecord> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| {
                let parsed = std::fs::read(&p)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<PodRecord>(&b).map_err(|e| e.to_string()));
                match parsed {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!(file = %p.display(), "pod record skipped: {e}");
                        None
                    }
                }
            })
            .collect();
        out.sort_by(|a, b| a.interface.cmp(&b.interface));
        out
    }

    /// Attaches every recorded pod to `dp` whose interface exists and whose address is a pod
    /// address of `subnet`; drops the other records.
    pub fn restore(&self, dp: &mut Dataplane, subnet: Ipv4Net) -> Restored {
        let mut done = Restored::default();
        for r in self.load() {
            let why = match self.reattach(dp, &r, subnet) {
                Ok(()) => {
                    done.attached += 1;
                    tracing::info!(interface = %r.interface, ip = %r.ip, namespace = ?r.namespace, name = ?r.name, "pod re-attached from its record");
                    continue;
                }
                Err(why) => why,
            };
            done.dropped += 1;
            tracing::warn!(interface = %r.interface, ip = %r.ip, "pod record dropped: {why}");
            if let Err(e) = self.remove(&r.interface) {
                tracing::warn!("{e}");
            }
        }
        done
    }

    fn reattach(&self, dp: &mut Dataplane, r: &PodRecord, subnet: Ipv4Net) -> Result<(), String> {
        let spec = PodSpec::parse("pod", &r.interface, &r.ip.to_string(), r.mac.as_deref())
            .map_err(|e| e.to_string())?;
        if nix::net::if_::if_nametoindex(spec.interface.as_str()).is_err() {
            return Err(format!("interface {} is gone", spec.interface));
        }
        if !subnet.contains(&spec.ip) {
            return Err(format!("{} is not in our pod subnet {subnet}", spec.ip));
        }
        if let Some(why) = crate::config::reserved_in_subnet(subnet, spec.ip) {
            return Err(format!("{} is {why}", spec.ip));
        }
        dp.pod_add(spec).map(drop).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_removing_it_twice_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let store = PodStore::new(dir.path());
        assert!(store.load().is_empty(), "no directory yet: no records");
        let r = PodRecord {
            interface: "veth1a".into(),
            ip: Ipv4Addr::new(198, 19, 1, 5),
            mac: Some("02:00:00:00:00:05".into()),
            namespace: Some("default".into()),
            name: Some("web-0".into()),
        };
        store.put(&r).unwrap();
        let bare =
            PodRecord { interface: "veth2b".into(), mac: None, namespace: None, name: None, ..r.clone() };
        store.put(&bare).unwrap();
        assert_eq!(store.load(), vec![r.clone(), bare.clone()]);
        store.remove("veth1a").unwrap();
        store.remove("veth1a").unwrap();
        assert_eq!(store.load(), vec![bare]);
    }

    #[test]
    fn an_unparsable_record_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let store = PodStore::new(dir.path());
        std::fs::create_dir_all(dir.path().join("pods")).unwrap();
        std::fs::write(dir.path().join("pods/bad.json"), b"{ not json").unwrap();
        std::fs::write(dir.path().join("pods/.x.json.tmp"), b"half").unwrap();
        assert!(store.load().is_empty());
    }
}
