//! The daemon's pod-side paths beyond pod <-> pod, each against the real
//! kernel in namespaces this test creates (prefix `wq`), static mode,
//! host-gw, generic or native XDP on veths:
//! - the exception port: a pod reaches the node's own address and a host on
//!   the underlay through the node's kernel, and the node reaches the pod;
//!   without `[exception]` (and with `host_link.enabled = false`) the same frames are
//!   `no_exception_port` drops;
//! - uplink queues > 1: frames for a pod arriving on queue 1 are handed to
//!   the pod worker (queue 0) and delivered;
//! - pod MAC learning: a pod attached without a MAC is unreachable
//!   (`pod_mac_unknown`) until its first frame, then reachable.

mod netns;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netns::daemon::{Daemon, engine_sections, static_node_a};
use netns::{Netns, ping_until, root_or_skip, veth_between};
use weft_control::api::StatusReport;

const POD_A_MAC: &str = "02:00:00:2a:01:02";

fn stem() -> String {
    weft_testnet::unique_stem("wq")
}

/// A static host-gw node A (198.18.0.11, pods 198.19.1.0/24) with a route
/// to node B's pods, plus `extra` TOML (sections, pods).
fn config(stem: &str, dir: &Path, uplink: &str, queues: u32, xdp: &str, extra: &str) -> String {
    format!(
        "{}{}{extra}",
        static_node_a(&format!("{stem}a"), dir),
        engine_sections(uplink, xdp, queues, &dir.join("weft.sock"))
    )
}

/// The non-zero paths and drops, for failure messages.
fn nonzero(r: &StatusReport) -> String {
    format!(
        "paths {:?} drops {:?} workers {:?}",
        r.paths.iter().filter(|p| p.count > 0).map(|p| (&p.reason, p.count)).collect::<Vec<_>>(),
        r.drops.iter().filter(|d| d.count > 0).map(|d| (&d.reason, d.count)).collect::<Vec<_>>(),
        r.workers
    )
}

/// A pod namespace `{stem}{role}` whose veth (host end `{stem}{role}h`, in
/// `node`) is a weft pod port, with address `ip`/24, weft as its gateway and
/// checksums computed in software; `macs`: (host end, pod end).
fn pod_behind(node: &Netns, stem: &str, role: char, ip: &str, macs: (&str, &str)) -> Result<Netns> {
    let ns = Netns::new(&format!("{stem}{role}"))?;
    let (host, pod) = (format!("{stem}{role}h"), format!("{stem}{role}e"));
    veth_between(node, &host, macs.0, &ns, &pod, macs.1)?;
    ns.exec(&["ethtool", "-K", &pod, "tx", "off"])?;
    ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", &pod])?;
    ns.ip(&["route", "add", "default", "via", "198.19.1.1"])?;
    Ok(ns)
}

/// Node A (`a`), a pod behind weft on A (`p`, 198.19.1.5, host end `{stem}ph`)
/// and node B (`b`, 198.18.0.12) on A's uplink, B's kernel routing the pod
/// subnet to A (host-gw) and carrying pod `q` (198.19.2.5).
struct Lab {
    stem: String,
    a: Netns,
    /// Kept for its Drop (teardown).
    _b: Netns,
    pa: Netns,
    pb: Netns,
    uplink: String,
    pod_host: String,
}

impl Lab {
    /// The lab; the uplink veth has `queues` rx and tx queues on both ends.
    fn new(queues: u32) -> Result<Self> {
        let stem = stem();
        let a = Netns::new(&format!("{stem}a"))?;
        let b = Netns::new(&format!("{stem}b"))?;
        let pb = Netns::new(&format!("{stem}q"))?;
        let (up, up_b) = (format!("{stem}u"), format!("{stem}v"));
        let q = queues.to_string();
        a.ip(&[
            "link",
            "add",
            &up,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "address",
            "02:00:00:2a:00:01",
            "type",
            "veth",
            "peer",
            "name",
            &up_b,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "address",
            "02:00:00:2a:00:02",
            "netns",
            &b.name,
        ])?;
        a.ip(&["link", "set", &up, "up"])?;
        b.ip(&["link", "set", &up_b, "up"])?;
        a.ip(&["addr", "add", "198.18.0.11/24", "dev", &up])?;
        b.ip(&["addr", "add", "198.18.0.12/24", "dev", &up_b])?;
        // B's kernel computes the checksums a NIC would (AF_XDP cannot finish partial ones).
        b.exec(&["ethtool", "-K", &up_b, "tx", "off"])?;
        b.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        b.ip(&["route", "add", "198.19.1.0/24", "via", "198.18.0.11", "dev", &up_b])?;
        let host = format!("{stem}ph");
        let pa = pod_behind(&a, &stem, 'p', "198.19.1.5", ("02:00:00:2a:01:01", POD_A_MAC))?;
        let (kb, podb) = (format!("{stem}k"), format!("{stem}f"));
        veth_between(&b, &kb, "02:00:00:2a:02:01", &pb, &podb, "02:00:00:2a:02:02")?;
        b.ip(&["addr", "add", "198.19.2.1/24", "dev", &kb])?;
        pb.ip(&["addr", "add", "198.19.2.5/24", "dev", &podb])?;
        pb.ip(&["route", "add", "default", "via", "198.19.2.1"])?;
        Ok(Lab { stem, a, _b: b, pa, pb, uplink: up, pod_host: host })
    }

    /// Writes `cfg` and starts weft on node A; returns it and its socket.
    fn start(&self, dir: &Path, cfg: &str) -> Result<(Daemon, std::path::PathBuf)> {
        let path = dir.join("weft.toml");
        std::fs::write(&path, cfg)?;
        let sock = dir.join("weft.sock");
        let _ = std::fs::remove_file(&sock);
        let daemon = Daemon::start(&self.a, &path, &[], &dir.join("weft.log"))?;
        daemon.wait_ready(&sock)?;
        Ok((daemon, sock))
    }

    fn pod_a(&self, mac: bool) -> String {
        let mac = if mac { format!("mac = \"{POD_A_MAC}\"\n") } else { String::new() };
        format!("[[pods]]\ninterface = \"{}\"\nip = \"198.19.1.5\"\n{mac}", self.pod_host)
    }
}

#[test]
fn pods_reach_the_node_and_underlay_hosts_through_the_exception_port_and_not_without_it() -> Result<()> {
    if !root_or_skip("pods_reach_the_node_and_underlay_hosts_through_the_exception_port_and_not_without_it") {
        return Ok(());
    }
    let lab = Lab::new(1)?;
    let dir = tempfile::tempdir()?;

    // Without an exception port (no host link either): pod -> node address is a counted drop.
    let extra = format!("[host_link]\nenabled = false\n{}", lab.pod_a(true));
    let cfg = config(&lab.stem, dir.path(), &lab.uplink, 1, "generic", &extra);
    let (daemon, sock) = lab.start(dir.path(), &cfg)?;
    assert!(lab.pa.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "198.18.0.11"]).is_err());
    let r = Daemon::status(&sock)?;
    assert!(r.drop_count("no_exception_port") >= 2, "{}", nonzero(&r));
    assert_eq!(r.path_count("exception_out"), 0);
    daemon.sigterm()?;

    // The operator's setup (README "Running weft"): a veth in the node's
    // namespace, weft on one end, the kernel's route to the pod subnet on
    // the other, forwarding on.
    let (weft_end, kernel_end) = (format!("{}x", lab.stem), format!("{}y", lab.stem));
    weft_testnet::veth_pair(&lab.a, &weft_end, "02:00:00:2a:0e:01", &kernel_end, "02:00:00:2a:0e:02")?;
    lab.a.exec(&["ethtool", "-K", &kernel_end, "tx", "off"])?;
    lab.a.ip(&["route", "add", "198.19.1.0/24", "dev", &kernel_end])?;
    lab.a.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    let extra = format!("[exception]\ninterface = \"{weft_end}\"\n{}", lab.pod_a(true));
    let cfg = config(&lab.stem, dir.path(), &lab.uplink, 1, "generic", &extra);
    let (daemon, sock) = lab.start(dir.path(), &cfg)?;
    let r = Daemon::status(&sock)?;
    assert!(r.ports.iter().any(|p| p.role == "exception" && p.name.starts_with(&weft_end)), "{:?}", r.ports);

    // Pod -> the node's own uplink address: in through the exception port, the reply back out of it.
    let ok = ping_until(&lab.pa, "198.18.0.11", Duration::from_secs(10));
    let r = Daemon::status(&sock)?;
    assert!(ok, "pod never reached its node through the exception port: {}\n{}", nonzero(&r), daemon.log());
    let pings = lab.pa.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.0.11"])?;
    assert!(pings.contains("3 received"), "{pings}");
    // Pod -> node B's underlay address: the kernel forwards it out of the
    // uplink; B answers to the pod subnet via A, which the XDP filter gives
    // to weft (host-gw arrival).
    let pings =
        lab.pa.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.12"]).with_context(|| {
            format!("pod -> underlay host B: {}", nonzero(&Daemon::status(&sock).unwrap_or_default()))
        })?;
    assert!(pings.contains("3 received"), "{pings}");
    // The node's own kernel -> the pod: out through the exception veth (weft
    // answers the kernel's ARP for the pod), delivered by weft.
    let pings = lab.a.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.19.1.5"])?;
    assert!(pings.contains("3 received"), "{pings}");

    let r = Daemon::status(&sock)?;
    assert!(r.path_count("exception_out") >= 7, "{}", nonzero(&r));
    assert!(r.path_count("exception_in") >= 7, "{}", nonzero(&r));
    assert!(r.path_count("host_gw_arrival") >= 3, "B's replies came in on the uplink: {}", nonzero(&r));
    assert_eq!(r.drop_count("no_exception_port"), 0, "{}", nonzero(&r));
    let exc = r.ports.iter().find(|p| p.role == "exception").context("exception port")?;
    assert!(exc.rx_packets >= 7 && exc.tx_packets >= 7, "{exc:?}");
    daemon.sigterm()?;
    assert!(lab.a.xdp_gone(&weft_end)?, "the exception port's XDP program left with the daemon");
    Ok(())
}

/// Sends `per_port` UDP datagrams from each of `ports` source ports of pod
/// B to pod A:9000 and returns what pod A's receiver counted.
fn udp_flows(lab: &Lab, ports: u16, per_port: u16) -> Result<u64> {
    let recv = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("198.19.1.5", 9000))
print("ready", flush=True)
s.settimeout(10.0)
n = 0
try:
    s.recv(2048); n = 1
    s.settimeout(1.5)
    while True:
        s.recv(2048); n += 1
except socket.timeout:
    pass
print(n, flush=True)
"#;
    let send = format!(
        r#"
import socket, time
for p in range(41000, 41000 + {ports}):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("198.19.2.5", p))
    for i in range({per_port}):
        s.sendto(b"w" * 64, ("198.19.1.5", 9000))
    s.close()
    time.sleep(0.002)
"#
    );
    let mut rx = Command::new("ip")
        .args(["netns", "exec", &lab.pa.name, "python3", "-c", recv])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = std::io::BufReader::new(rx.stdout.take().context("stdout")?);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line)?;
    if line.trim() != "ready" {
        bail!("receiver: {line}");
    }
    lab.pb.exec(&["python3", "-c", &send])?;
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line)?;
    rx.wait()?;
    line.trim().parse().with_context(|| format!("receiver said {line:?}"))
}

#[test]
fn frames_for_pods_on_uplink_queue_1_are_handed_to_the_pod_worker_and_delivered() -> Result<()> {
    if !root_or_skip("frames_for_pods_on_uplink_queue_1_are_handed_to_the_pod_worker_and_delivered") {
        return Ok(());
    }
    let lab = Lab::new(2)?;
    let dir = tempfile::tempdir()?;
    // Native XDP on the veth: the kernel runs the program on the rx queue
    // the sending end's tx queue maps to, so B's flows spread over both.
    let cfg = config(&lab.stem, dir.path(), &lab.uplink, 2, "native", &lab.pod_a(true));
    let (daemon, sock) = lab.start(dir.path(), &cfg)?;
    let r = Daemon::status(&sock)?;
    assert_eq!(r.workers.len(), 2, "{:?}", r.workers);
    assert!(
        ping_until(&lab.pb, "198.19.1.5", Duration::from_secs(10)),
        "{}",
        nonzero(&Daemon::status(&sock)?)
    );

    let (ports, per_port) = (64, 10);
    let got = udp_flows(&lab, ports, per_port)?;
    let r = Daemon::status(&sock)?;
    let q0 = r.workers.iter().find(|w| w.name == "weft-q0").context("weft-q0")?;
    let q1 = r.workers.iter().find(|w| w.name == "weft-q1").context("weft-q1")?;
    let uplink_rx: Vec<u64> = r.ports.iter().filter(|p| p.role == "uplink").map(|p| p.rx_packets).collect();
    assert!(
        uplink_rx.iter().all(|&n| n > 0),
        "both uplink queues received B's flows: {uplink_rx:?} {:?}",
        r.ports
    );
    assert!(q1.handoff_out > 0, "queue 1 handed frames to the pod worker: {}", nonzero(&r));
    assert_eq!(q0.handoff_in, q1.handoff_out, "every handed-off frame arrived: {}", nonzero(&r));
    assert_eq!(q0.handoff_out, 0, "the pod worker hands nothing off: {}", nonzero(&r));
    assert_eq!(r.path_count("pod_handoff"), q1.handoff_out, "{}", nonzero(&r));
    for reason in ["handoff_full", "handoff_stale", "handoff_no_frame", "no_such_port"] {
        assert_eq!(r.drop_count(reason), 0, "{reason}: {}", nonzero(&r));
    }
    assert_eq!(got, u64::from(ports) * u64::from(per_port), "pod A got every datagram: {}", nonzero(&r));
    daemon.sigterm()?;
    Ok(())
}

#[test]
fn a_pod_attached_without_a_mac_is_reachable_once_its_first_frame_taught_weft_the_mac() -> Result<()> {
    if !root_or_skip("a_pod_attached_without_a_mac_is_reachable_once_its_first_frame_taught_weft_the_mac") {
        return Ok(());
    }
    let lab = Lab::new(1)?;
    let dir = tempfile::tempdir()?;
    let cfg = config(&lab.stem, dir.path(), &lab.uplink, 1, "generic", "");
    let (daemon, sock) = lab.start(dir.path(), &cfg)?;
    let sock_s = sock.to_str().context("socket path")?;
    let out = netns::daemon::cli(&[
        "pod",
        "add",
        "--iface",
        &lab.pod_host,
        "--ip",
        "198.19.1.5",
        "--socket",
        sock_s,
    ])?;
    assert!(out.status.success(), "pod add: {}", String::from_utf8_lossy(&out.stderr));
    let r = Daemon::status(&sock)?;
    assert_eq!(r.pods.len(), 1);
    assert_eq!(r.pods[0].mac, None, "no MAC given, none learned yet");

    // Before pod A sent anything, frames to it are named drops.
    assert!(lab.pb.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "198.19.1.5"]).is_err());
    let r = Daemon::status(&sock)?;
    assert!(r.drop_count("pod_mac_unknown") >= 2, "{}", nonzero(&r));
    assert_eq!(r.path_count("pod_mac_learned"), 0);

    // Pod A's first frame (its ARP request for the gateway) teaches weft its MAC.
    assert!(
        ping_until(&lab.pa, "198.19.2.5", Duration::from_secs(10)),
        "{}",
        nonzero(&Daemon::status(&sock)?)
    );
    let pings = lab.pb.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.19.1.5"])?;
    assert!(pings.contains("3 received"), "{pings}");
    let r = Daemon::status(&sock)?;
    assert_eq!(r.pods[0].mac.as_deref(), Some(POD_A_MAC), "{:?}", r.pods);
    assert_eq!(r.path_count("pod_mac_learned"), 1, "learned once: {}", nonzero(&r));
    assert!(daemon.log().contains("pod MAC learned"), "{}", daemon.log());

    // Another pod attached to the running pod worker leaves the learned MAC as it is.
    let _pc = pod_behind(&lab.a, &lab.stem, 'c', "198.19.1.6", ("02:00:00:2a:03:01", "02:00:00:2a:03:02"))?;
    let host = format!("{}ch", lab.stem);
    let out = netns::daemon::cli(&[
        "pod",
        "add",
        "--iface",
        &host,
        "--ip",
        "198.19.1.6",
        "--mac",
        "02:00:00:2a:03:02",
        "--socket",
        sock_s,
    ])?;
    assert!(out.status.success(), "pod add: {}", String::from_utf8_lossy(&out.stderr));
    let pings = lab.pb.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.19.1.5"])?;
    assert!(pings.contains("3 received"), "after another pod's attach: {pings}");
    daemon.sigterm()?;
    Ok(())
}
