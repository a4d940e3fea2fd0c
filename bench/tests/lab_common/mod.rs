//! Helpers shared by the lab tests: root check, prefixes, kernel labs, ping and TCP in pods.
#![allow(dead_code)]

mod e2e;
#[allow(unused_imports)]
pub use e2e::*;

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeSpec, cmd};

/// The weft-lab binary under test.
pub const WEFT_LAB: &str = env!("CARGO_BIN_EXE_weft-lab");

/// True when the test can run; prints loudly what is missing otherwise.
pub fn have_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: the netns lab needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); run `make test` as root"
    );
    false
}

/// A namespace prefix unique to this process and call: `wl<pid><n>`.
pub fn prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("wl{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
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
    lab.spawn(
        server_ns,
        &format!("echo {listen}"),
        &[WEFT_LAB.into(), "tcp-echo".into(), "--listen".into(), listen.clone()],
    )
    .unwrap();
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
