//! The netns lab (SPEC §5): an underlay bridge, N nodes, M pods per node and etcd, each in a
//! namespace whose name carries the run's prefix, with no link to the host's network.
//!
//! - [`topology`]: the spec ([`LabSpec`], [`NodeSpec`] with its start command) and the
//!   name and address plan (RFC 2544: underlay 198.18.0.0/24, pods `198.19.<node>.0/24`).
//! - [`up`](up::up) builds it, recording every namespace *before* creating it and every
//!   process after starting it in a state file ([`state`]); [`down`](down::teardown)
//!   removes exactly what the file lists, also after a crash.
//! - [`Lab`] is a running lab; [`LabGuard`] tears it down when dropped (tests).
//! - Kernel nodes run `weft-lab kflannel` ([`crate::kflannel`]); weft nodes get a
//!   generated config ([`weft_config`]) and the daemon named by their start command.
//! - [`capture`] records the underlay with tcpdump and reads the frames back;
//!   [`tcp`] is a tiny TCP echo server and checking client for pods.
//! - [`weft_api`]: a weft node's `weft status` report, and waiting for weft nodes' routes.

pub mod bird;
pub mod capture;
pub mod cmd;
pub mod down;
mod error;
pub mod etcd;
pub mod state;
pub mod supervise;
pub mod tcp;
pub mod topology;
pub mod udp;
pub mod up;
pub mod weft_api;
pub mod weft_config;
pub mod wiring;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

pub use down::Teardown;
pub use error::LabError;
pub use state::{LabState, NodeState, PodState, ProcessRecord};
pub use topology::{Backend, LabSpec, NodeKind, NodeSpec, Plan};

/// A running lab: its state, and what can be done to it.
#[derive(Debug)]
pub struct Lab {
    state: LabState,
}

impl Lab {
    /// Builds a lab (see [`up::up`]).
    pub fn up(spec: &LabSpec) -> Result<Lab, LabError> {
        up::up(spec).map(|state| Lab { state })
    }

    /// The lab recorded in `state_root/<prefix>/state.json` (made by another process).
    pub fn open(state_root: &Path, prefix: &str) -> Result<Lab, LabError> {
        LabState::load(&state::state_path(state_root, prefix)).map(|state| Lab { state })
    }

    /// What the lab consists of.
    pub fn state(&self) -> &LabState {
        &self.state
    }

    /// Node `i` (1-based).
    ///
    /// # Panics
    /// If the lab has no node `i`.
    pub fn node(&self, i: usize) -> &NodeState {
        self.state.node(i).unwrap_or_else(|| panic!("the lab has no node n{i}"))
    }

    /// Pod `k` of node `i` (both 1-based).
    ///
    /// # Panics
    /// If there is no such pod.
    pub fn pod(&self, i: usize, k: usize) -> &PodState {
        self.node(i).pods.get(k - 1).unwrap_or_else(|| panic!("node n{i} has no pod {k}"))
    }

    /// etcd's namespace.
    pub fn etcd_ns(&self) -> String {
        Plan { prefix: self.state.prefix.clone() }.etcd_ns()
    }

    /// The underlay namespace (bridge `br0`).
    pub fn underlay_ns(&self) -> String {
        Plan { prefix: self.state.prefix.clone() }.underlay_ns()
    }

    /// `etcdctl args` against the lab's etcd.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String, LabError> {
        etcd::etcdctl(&self.etcd_ns(), args)
    }

    /// Starts `argv` in namespace `ns` as a lab process (stopped by `down`).
    pub fn spawn(&mut self, ns: &str, name: &str, argv: &[String]) -> Result<ProcessRecord, LabError> {
        let log =
            self.state.dir.join(format!("{}.log", name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")));
        let record = supervise::spawn_in(ns, name, argv, &log)?;
        self.state.processes.push(record.clone());
        self.state.save()?;
        Ok(record)
    }

    /// Adds a host that is no node on the underlay: namespace `<prefix>-<name>` with `ip`/24
    /// (MTU 1500) on the bridge (e.g. "the internet" for pods' traffic leaving the cluster network).
    /// Recorded before it is made, so `down` removes it. Returns the namespace.
    pub fn add_underlay_host(&mut self, name: &str, ip: std::net::Ipv4Addr) -> Result<String, LabError> {
        let ns = format!("{}-{name}", self.state.prefix);
        let ns = up::record_ns(&mut self.state, ns)?;
        wiring::plug_into_underlay(&self.underlay_ns(), name, &ns, "ul0", ip, 1500)?;
        Ok(ns)
    }

    /// Stops the lab processes named `name` (SIGTERM, then SIGKILL); returns how many ran.
    pub fn stop(&mut self, name: &str) -> usize {
        let mut n = 0;
        for p in self.state.processes.iter().filter(|p| p.name == name) {
            if supervise::is_alive(p) {
                supervise::stop(p, Duration::from_secs(3));
                n += 1;
            }
        }
        n
    }

    /// Stops node `i`'s agent or daemon (the lease stays in etcd, as when flanneld stops).
    pub fn stop_node(&mut self, i: usize) -> usize {
        self.stop(&Plan::node_process(i, self.node(i).kind))
    }

    /// Stops etcd (SIGTERM, then SIGKILL); its data stays. Returns whether it ran.
    pub fn stop_etcd(&mut self) -> bool {
        self.stop(etcd::ETCD_PROCESS) > 0
    }

    /// Starts etcd again with the same data directory and addresses and waits until it
    /// answers (up to 20 s). Its output goes to `etcd.<n>.log`, the n-th start.
    pub fn start_etcd(&mut self) -> Result<(), LabError> {
        let n = self.starts_of(etcd::ETCD_PROCESS) + 1;
        let log = self.state.dir.join(format!("etcd.{n}.log"));
        let ns = self.etcd_ns();
        let record = etcd::start_logging_to(&self.state, &ns, &log)?;
        self.state.processes.push(record);
        self.state.save()?;
        etcd::wait_ready(&ns, Duration::from_secs(20))
    }

    /// Starts node `i`'s agent or daemon again after [`stop_node`](Self::stop_node):
    /// `argv` is its start command with the placeholders of [`NodeSpec::start`] (the
    /// same one its [`NodeSpec`] gave, usually). Its output goes to `n<i>.<n>.log`, the
    /// n-th start.
    pub fn start_node(&mut self, i: usize, argv: &[String]) -> Result<ProcessRecord, LabError> {
        let node = self.node(i).clone();
        let name = Plan::node_process(i, node.kind);
        let log = self.state.dir.join(format!("n{i}.{}.log", self.starts_of(&name) + 1));
        let argv = up::expand(argv, &self.state, &node);
        let record = supervise::spawn_in(&node.ns, &name, &argv, &log)?;
        self.state.processes.push(record.clone());
        self.state.save()?;
        Ok(record)
    }

    /// How many times a process named `name` was started.
    fn starts_of(&self, name: &str) -> usize {
        self.state.processes.iter().filter(|p| p.name == name).count()
    }

    /// The last `max` bytes of every process log, for failure reports.
    pub fn log_tails(&self, max: u64) -> String {
        let mut out = String::new();
        for p in &self.state.processes {
            let Ok(mut file) = std::fs::File::open(&p.log) else { continue };
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let mut text = String::new();
            let _ = std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(len.saturating_sub(max)));
            let _ = file.read_to_string(&mut text);
            out.push_str(&format!("--- {} (pid {}, {}):\n{text}\n", p.name, p.pid, p.log.display()));
        }
        out
    }

    /// Tears the lab down (see [`down::teardown`]).
    pub fn down(self) -> Teardown {
        down::teardown(&self.state)
    }
}

/// Owns a lab and tears it down when dropped, also when a test panics (then it prints the
/// process logs first).
#[derive(Debug)]
pub struct LabGuard(Option<Lab>);

impl LabGuard {
    /// Guards `lab`.
    pub fn new(lab: Lab) -> Self {
        LabGuard(Some(lab))
    }
}

impl std::ops::Deref for LabGuard {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        self.0.as_ref().unwrap_or_else(|| unreachable!("only Drop takes the lab"))
    }
}

impl std::ops::DerefMut for LabGuard {
    fn deref_mut(&mut self) -> &mut Lab {
        self.0.as_mut().unwrap_or_else(|| unreachable!("only Drop takes the lab"))
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Some(lab) = self.0.take() {
            if std::thread::panicking() {
                eprintln!("lab {} failed; process logs:\n{}", lab.state.prefix, lab.log_tails(4000));
            }
            let report = lab.down();
            if !report.failures.is_empty() {
                eprintln!("lab teardown left: {:?}", report.failures);
            }
        }
    }
}
