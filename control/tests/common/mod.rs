//! Shared test helpers: a real etcd, agent settings, a running agent.
#![allow(dead_code)]

pub mod etcd;
pub mod pki;
pub mod proxy;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use weft_control::etcd::{Agent, AgentSettings, AgentStatus, ControlError};
use weft_control::routes::{RecordingSink, RouteTable};

pub use etcd::Etcd;

/// Runs the `weft` binary under test with `args` and waits for it.
pub fn weft_output(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_weft")).args(args).output().expect("run weft")
}

/// Runs the `weft` binary under test: whether it succeeded, its stdout and its stderr.
pub fn weft(args: &[&str]) -> (bool, String, String) {
    let out = weft_output(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub const PREFIX: &str = "/coreos.com/network";

/// Settings for an agent with PublicIP 198.18.0.<host> whose subnet.env
/// lives in `dir`.
pub fn settings(etcd: &Etcd, host: u8, dir: &Path) -> AgentSettings {
    AgentSettings {
        endpoints: vec![etcd.endpoint()],
        prefix: PREFIX.into(),
        lease_ttl: Duration::from_secs(30),
        public_ip: Ipv4Addr::new(198, 18, 0, host),
        vtep_mac: format!("0a:58:c6:12:00:{host:02x}").parse().unwrap(),
        wg_public_key: None,
        wg_key_dir: None,
        uplink_subnet: Some("198.18.0.0/24".parse().unwrap()),
        subnet_file: dir.join(format!("node{host}/subnet.env")),
        ipmasq: false,
        mtu: 1500,
        init_network: None,
        backoff_max: Duration::from_millis(400),
        rpc_timeout: Duration::from_secs(2),
        client: Default::default(),
    }
}

/// Writes `<prefix>/config`.
pub fn put_network(etcd: &Etcd, json: &str) {
    etcd.etcdctl(&["put", &format!("{PREFIX}/config"), json]);
}

/// A lease value exactly as flanneld's vxlan backend writes it.
pub fn flannel_vxlan_lease(public_ip: &str, mac: &str) -> String {
    format!(
        r#"{{"PublicIP":"{public_ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{{"VNI":1,"VtepMAC":"{mac}"}}}}"#
    )
}

/// A fresh etcd holding `network_json` at `<prefix>/config`, and a temp dir
/// for the agents' subnet.env files.
pub fn etcd_with_network(network_json: &str) -> (Etcd, tempfile::TempDir) {
    let etcd = Etcd::start();
    put_network(&etcd, network_json);
    (etcd, tempfile::tempdir().expect("temp dir"))
}

/// Plays a flannel vxlan node: puts its lease for `subnet_key` (`198.19.9.0-24`).
pub fn put_peer(etcd: &Etcd, subnet_key: &str, public_ip: &str, vtep_mac: &str) {
    etcd.etcdctl(&[
        "put",
        &format!("{PREFIX}/subnets/{subnet_key}"),
        &flannel_vxlan_lease(public_ip, vtep_mac),
    ]);
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An agent running on the test's runtime, recording into a sink.
pub struct Running {
    pub subnet: ipnet::Ipv4Net,
    pub sink: RecordingSink,
    pub status: tokio::sync::watch::Receiver<AgentStatus>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ControlError>>>,
}

impl Running {
    pub async fn start(settings: AgentSettings) -> Self {
        Self::from_agent(Agent::start(settings).await.expect("agent start"))
    }

    pub fn from_agent(agent: Agent) -> Self {
        let sink = RecordingSink::new();
        let status = agent.status();
        let subnet = agent.subnet();
        let (stop, stopped) = oneshot::channel::<()>();
        let mut task_sink = sink.clone();
        let task = tokio::spawn(async move {
            agent
                .run(&mut task_sink, async {
                    let _ = stopped.await;
                })
                .await
        });
        Running { subnet, sink, status, stop: Some(stop), task: Some(task) }
    }

    pub fn status(&self) -> AgentStatus {
        self.status.borrow().clone()
    }

    pub fn table(&self) -> RouteTable {
        self.sink.table()
    }

    /// Stops the agent (without giving up its lease, like flanneld).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("agent task").expect("agent run");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
