//! `down`: removes exactly what the state file lists, in reverse order, tolerating what is
//! already gone (a crashed `up`, a process that died, a namespace deleted by hand).

use std::time::Duration;

use super::state::{LabState, ProcessRecord};
use super::supervise::{self, is_alive, stop};
use super::{cmd, wiring};

/// PIDs of the processes inside namespace `ns` (none if it does not exist).
fn namespace_pids(ns: &str) -> Vec<i32> {
    cmd::ip(&["netns", "pids", ns])
        .map(|out| out.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// What `down` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Teardown {
    /// Processes that were still running and were stopped.
    pub stopped: Vec<String>,
    /// Namespaces deleted.
    pub deleted: Vec<String>,
    /// Things that could not be removed (printed by the CLI; the state file is then kept).
    pub failures: Vec<String>,
}

/// Stops every recorded process (SIGTERM, 3 s, SIGKILL), deletes every recorded namespace,
/// and removes the lab's directory (state file, logs, etcd data) when all of that worked.
pub fn teardown(state: &LabState) -> Teardown {
    let mut report = Teardown::default();
    for p in state.processes.iter().rev() {
        if is_alive(p) {
            stop(p, Duration::from_secs(3));
            report.stopped.push(format!("{} (pid {})", p.name, p.pid));
        }
        if is_alive(p) {
            report.failures.push(format!("{} (pid {}) survived SIGKILL", p.name, p.pid));
        }
    }
    // Anything else still inside one of our namespaces is ours too (e.g. a process started
    // just before a crash, before its PID reached the state file): `ip netns pids`.
    for ns in state.namespaces.iter().rev() {
        for pid in namespace_pids(ns) {
            let record = ProcessRecord {
                name: format!("pid {pid} in {ns}"),
                ns: ns.clone(),
                pid,
                start_time: supervise::start_time(pid).unwrap_or(0),
                log: Default::default(),
            };
            stop(&record, Duration::from_secs(3));
            report.stopped.push(record.name);
        }
    }
    for ns in state.namespaces.iter().rev() {
        match wiring::del_namespace(ns) {
            Ok(true) => report.deleted.push(ns.clone()),
            Ok(false) => {}
            Err(e) => report.failures.push(format!("namespace {ns}: {e}")),
        }
    }
    if report.failures.is_empty() {
        if let Err(e) = std::fs::remove_dir_all(&state.dir) {
            report.failures.push(format!("{}: {e}", state.dir.display()));
        }
    }
    report
}
