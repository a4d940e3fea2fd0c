//! Helpers shared by the lab tests: root check, prefixes, kernel labs, ping and TCP in pods.
#![allow(dead_code)]

pub mod cni;
mod e2e;
#[allow(unused_imports)]
pub use e2e::*;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeSpec, cmd};

/// The weft-lab binary under test.
pub const WEFT_LAB: &str = env!("CARGO_BIN_EXE_weft-lab");

/// True when the test can run; otherwise skips loudly (fails where `CI` is set).
pub fn have_root(test: &str) -> bool {
    weft_testnet::root_or_skip(test)
}

/// A lab prefix unique to this process and call: `wl` (or `$WEFT_NETNS_PREFIX`), the pid and a
/// counter.
pub fn prefix() -> String {
    weft_testnet::unique_stem("wl")
}

/// A lab of `nodes` kernel-flannel nodes with `pods` pods each.
pub fn kernel_lab(backend: Backend, nodes: usize, pods: usize) -> LabGuard {
    let spec = LabSpec {
        prefix: prefix(),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend,
        nodes: vec![NodeSpec::kernel(WEFT_LAB); nodes],
        pods_per_node: pods,
        uplink_mtu: 1500,
    };
    LabGuard::new(Lab::up(&spec).unwrap_or_else(|e| panic!("lab up: {e}")))
}

/// Namespaces whose names start with `<prefix>-`.
pub fn namespaces_of(prefix: &str) -> Vec<String> {
    cmd::namespaces().unwrap().into_iter().filter(|n| n.starts_with(&format!("{prefix}-"))).collect()
}

/// `ping` from namespace `ns` to `to`: true when all `count` echoes came back.
pub fn ping(ns: &str, to: Ipv4Addr, count: u32) -> bool {
    let (count, deadline) = (count.to_string(), (count + 4).to_string());
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-q", "-c", &count, "-i", "0.2", "-w", &deadline])
        .arg(to.to_string())
        .output()
        .unwrap();
    out.status.success()
}

/// Starts `weft-lab tcp-echo` in `ns` on `listen` (a lab process) and waits until it listens,
/// so a first connection cannot race the server's bind. Returns its log.
pub fn echo_server(lab: &mut Lab, ns: &str, listen: &str) -> PathBuf {
    let argv = [WEFT_LAB.to_owned(), "tcp-echo".into(), "--listen".into(), listen.to_owned()];
    let record = lab.spawn(ns, &format!("echo {ns} {listen}"), &argv).unwrap();
    weft_bench::lab::supervise::wait_for(
        &format!("the echo server on {listen} in {ns}"),
        Duration::from_secs(10),
        || std::fs::read_to_string(&record.log).is_ok_and(|t| t.contains("listening on")),
    )
    .unwrap();
    record.log
}

/// Starts a TCP echo server in `server_ns` on `ip:port` (a lab process), then sends `bytes`
/// from `client_ns` and checks the echo with `weft-lab tcp-send`.
pub fn tcp_echo_works(
    lab: &mut Lab,
    client_ns: &str,
    server_ns: &str,
    ip: Ipv4Addr,
    port: u16,
    bytes: usize,
) {
    let listen = format!("{ip}:{port}");
    echo_server(lab, server_ns, &listen);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            client_ns,
            WEFT_LAB,
            "tcp-send",
            "--to",
            &listen,
            "--bytes",
            &bytes.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "TCP {client_ns} -> {listen} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` every 100 ms for up to `timeout`.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// The `weft` daemon binary under test: control/src/bin/weft.rs built under weft-bench as
/// `lab-weft` (see bench/Cargo.toml), so every `cargo test` invocation has a fresh one.
pub fn weft_bin() -> PathBuf {
    PathBuf::from(e2e::WEFT)
}

/// `weft run --config {config}` with [`weft_bin`]: the start command of a lab weft node.
pub fn weft_run_cmd() -> Vec<String> {
    vec![weft_bin().display().to_string(), "run".into(), "--config".into(), "{config}".into()]
}

/// A vxlan lab of `kernel` kernel-flannel nodes (n1..) then `weft` nodes running
/// [`weft_run_cmd`], `pods` pods each.
pub fn weft_lab(kernel: usize, weft: usize, pods: usize) -> LabGuard {
    let mut nodes = vec![NodeSpec::kernel(WEFT_LAB); kernel];
    nodes.extend(std::iter::repeat_n(NodeSpec::weft(Some(weft_run_cmd())), weft));
    let spec = LabSpec {
        prefix: prefix(),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend: Backend::Vxlan,
        nodes,
        pods_per_node: pods,
        uplink_mtu: 1500,
    };
    LabGuard::new(Lab::up(&spec).unwrap_or_else(|e| panic!("lab up: {e}")))
}

/// Node `i`'s API socket (see `weft_bench::lab::weft_config`).
pub fn weft_socket(lab: &Lab, i: usize) -> PathBuf {
    lab.state().dir.join(format!("n{i}.weft.sock"))
}

/// `weft status --json` of weft node `i`, or why it did not answer.
pub fn weft_status(lab: &Lab, i: usize) -> Result<weft_control::api::StatusReport, String> {
    let out = Command::new(weft_bin())
        .args(["status", "--json", "--socket"])
        .arg(weft_socket(lab, i))
        .output()
        .map_err(|e| format!("running weft status: {e}"))?;
    if !out.status.success() {
        return Err(format!("weft status of n{i}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("weft status --json of n{i}: {e}"))
}

/// Waits (up to 20 s) until weft node `i` answers `weft status` as running (it answers
/// while it waits for etcd too).
pub fn wait_weft_ready(lab: &Lab, i: usize) -> weft_control::api::StatusReport {
    let mut last = String::new();
    let ready = eventually(Duration::from_secs(20), || match weft_status(lab, i) {
        Ok(s) if s.phase == "running" => true,
        Ok(s) => {
            last = format!("phase {}: {:?}", s.phase, s.waiting);
            false
        }
        Err(e) => {
            last = e;
            false
        }
    });
    assert!(ready, "weft on n{i} never answered: {last}");
    weft_status(lab, i).unwrap_or_else(|e| panic!("{e}"))
}

/// The subnets weft node `i` routes, from its status.
pub fn weft_routes(lab: &Lab, i: usize) -> Vec<String> {
    weft_status(lab, i).map(|s| s.routes.into_iter().map(|r| r.subnet).collect()).unwrap_or_default()
}

/// A drop or path counter of weft node `i`'s status by name (0 when absent).
pub fn weft_counter(report: &weft_control::api::StatusReport, name: &str) -> u64 {
    report.drops.iter().chain(&report.paths).find(|d| d.reason == name).map_or(0, |d| d.count)
}
