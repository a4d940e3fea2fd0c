//! etcd in its own namespace on the underlay: Debian's `/usr/bin/etcd`, data in the lab's
//! directory, client URL `http://198.18.0.250:2379`; `etcdctl` runs in the same namespace.

use std::path::Path;
use std::time::Duration;

use super::state::{LabState, ProcessRecord};
use super::supervise::{spawn_in, wait_for};
use super::topology::{ETCD_IP, ETCD_PORT, Plan};
use super::{LabError, cmd};

/// The lab process name of etcd.
pub const ETCD_PROCESS: &str = "etcd";

/// The etcd server binary (Debian's etcd-server package).
pub const ETCD_BIN: &str = "/usr/bin/etcd";

/// Starts etcd in namespace `ns`; it listens on the underlay address and on loopback.
pub fn start(state: &LabState, ns: &str) -> Result<ProcessRecord, LabError> {
    start_logging_to(state, ns, &state.dir.join("etcd.log"))
}

/// Starts etcd as [`start`] does (same data directory, same addresses: a restart), its
/// output going to `log`.
pub fn start_logging_to(state: &LabState, ns: &str, log: &Path) -> Result<ProcessRecord, LabError> {
    let data = state.dir.join("etcd-data");
    let client = Plan::etcd_endpoint();
    let argv: Vec<String> = [
        ETCD_BIN.to_owned(),
        "--name=lab".into(),
        format!("--data-dir={}", data.display()),
        format!("--listen-client-urls={client},http://127.0.0.1:{ETCD_PORT}"),
        format!("--advertise-client-urls={client}"),
        "--listen-peer-urls=http://127.0.0.1:2380".into(),
        "--initial-advertise-peer-urls=http://127.0.0.1:2380".into(),
        "--initial-cluster=lab=http://127.0.0.1:2380".into(),
        "--log-level=warn".into(),
    ]
    .into();
    spawn_in(ns, ETCD_PROCESS, &argv, log)
}

/// `etcdctl --endpoints <lab etcd> args` inside etcd's namespace.
pub fn etcdctl(ns: &str, args: &[&str]) -> Result<String, LabError> {
    let endpoints = format!("--endpoints=http://{ETCD_IP}:{ETCD_PORT}");
    let mut full = vec![endpoints.as_str(), "--command-timeout=3s"];
    full.extend_from_slice(args);
    cmd::exec_in(ns, "etcdctl", &full)
}

/// Waits until etcd answers a health check.
pub fn wait_ready(ns: &str, timeout: Duration) -> Result<(), LabError> {
    wait_for("etcd to answer `etcdctl endpoint health`", timeout, || {
        etcdctl(ns, &["endpoint", "health"]).is_ok()
    })
}
