//! `weft run` as an operator runs it: in a netns with a veth uplink, static
//! mode; metrics scraped and parsed, `weft status --json`, `weft pod
//! add|del`, SIGTERM -> exit 0 with every XDP program detached.

mod netns;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use netns::daemon::{Daemon, cli, static_node_a};
use netns::{Netns, root_or_skip, unique_stem, veth_between};
use weft_engine::worker::DropReason;

const METRICS: &str = "127.0.0.1:9464";

fn config(stem: &str, dir: &Path, uplink: &str) -> String {
    format!(
        r#"{head}[uplink]
interface = "{uplink}"
xdp_mode = "generic"
[workers]
frames = 1024
[metrics]
listen = "{METRICS}"
[api]
socket = "{dir}/weft.sock"
"#,
        head = static_node_a(stem, dir),
        dir = dir.display()
    )
}

fn status(sock: &str) -> Result<weft_control::api::StatusReport> {
    Daemon::status(Path::new(sock))
}

/// One scrape of the metrics endpoint, from inside the namespace.
fn scrape(ns: &Netns) -> Result<String> {
    ns.run(|| -> Result<String> {
        let mut s = TcpStream::connect(METRICS)?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: weft\r\n\r\n")?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        Ok(resp)
    })?
}

/// Parses Prometheus text into (name with labels, value); fails on a bad line.
fn parse_samples(body: &str) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for line in body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').with_context(|| format!("no value: {line}"))?;
        let name = series.split('{').next().unwrap_or_default();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("bad metric name in {line:?}");
        }
        if series.contains('{') && !series.ends_with('}') {
            bail!("unterminated labels in {line:?}");
        }
        out.push((series.to_owned(), value.parse().with_context(|| format!("bad value in {line:?}"))?));
    }
    Ok(out)
}

#[test]
fn weft_run_serves_status_metrics_and_pods_then_stops_cleanly_on_sigterm() -> Result<()> {
    if !root_or_skip("weft_run_serves_status_metrics_and_pods_then_stops_cleanly_on_sigterm") {
        return Ok(());
    }
    let stem = unique_stem();
    let node = Netns::new(&format!("{stem}n"))?;
    let peer = Netns::new(&format!("{stem}w"))?;
    let (up, up_peer) = (format!("{stem}u"), format!("{stem}v"));
    let (pod, pod_peer) = (format!("{stem}p"), format!("{stem}q"));
    veth_between(&node, &up, "02:00:00:0e:00:01", &peer, &up_peer, "02:00:00:0e:00:02")?;
    veth_between(&node, &pod, "02:00:00:0e:01:01", &peer, &pod_peer, "02:00:00:0e:01:02")?;
    let (pod2, pod2_peer) = (format!("{stem}r"), format!("{stem}s"));
    veth_between(&node, &pod2, "02:00:00:0e:02:01", &peer, &pod2_peer, "02:00:00:0e:02:02")?;
    peer.ip(&["addr", "add", "198.19.1.5/24", "dev", &pod_peer])?;
    // The static route's next hop 198.18.0.12 lives in the peer namespace.
    node.ip(&["addr", "add", "198.18.0.11/24", "dev", &up])?;
    peer.ip(&["addr", "add", "198.18.0.12/24", "dev", &up_peer])?;
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("weft.toml");
    std::fs::write(&cfg, config(&stem, dir.path(), &up))?;
    let sock = dir.path().join("weft.sock");
    let sock = sock.to_str().context("socket path")?;
    let daemon = Daemon::start(&node, &cfg, &[], &dir.path().join("weft.log"))?;
    let log_text = || daemon.log();
    let report = daemon.wait_ready(Path::new(sock))?;
    assert_eq!((report.mode.as_str(), report.subnet.as_str()), ("static", "198.19.1.0/24"));
    assert_eq!(report.routes.len(), 1, "{:?}", report.routes);
    assert_eq!(report.routes[0].subnet, "198.19.2.0/24");
    assert_eq!(report.leases.iter().filter(|l| l.own).count(), 1);
    let uplink_ports: Vec<_> = report.ports.iter().filter(|p| p.role == "uplink").collect();
    assert_eq!(uplink_ports.len(), 1, "{:?}", report.ports);
    assert!(uplink_ports[0].xdp.is_some(), "uplink runs AF_XDP with the filter: {:?}", uplink_ports[0]);
    assert_eq!(report.workers.len(), 1);
    assert_eq!(report.drops.len(), DropReason::ALL.len(), "every drop reason is listed");
    assert!(node.has_xdp(&up)?, "the filter is attached to the uplink while running");

    // The host-gw next hop's MAC, resolved by the kernel (ARP passes the filter).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = status(sock)?.neighbours;
        if n.iter().any(|n| n.ip == "198.18.0.12" && n.mac == "02:00:00:0e:00:02") {
            break;
        }
        assert!(Instant::now() < deadline, "next hop never resolved: {n:?}\n{}", log_text());
        std::thread::sleep(Duration::from_millis(100));
    }

    let body = scrape(&node)?;
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    let text = body.split_once("\r\n\r\n").context("http body")?.1;
    let samples = parse_samples(text)?;
    let get = |series: &str| samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v);
    assert_eq!(get("weft_fib_routes"), Some(1));
    assert_eq!(get("weft_routes"), Some(1));
    assert_eq!(get("weft_lease_held{subnet=\"198.19.1.0/24\"}"), Some(1));
    for r in DropReason::ALL {
        assert!(get(&format!("weft_drops_total{{reason=\"{}\"}}", r.name())).is_some(), "{}", r.name());
    }
    assert!(samples.iter().any(|(s, _)| s.starts_with("weft_port_rx_packets_total{port=")));
    assert!(samples.iter().any(|(s, _)| s.starts_with("weft_worker_loops_total{worker=\"weft-q0\"}")));

    // Pods at run time: validated, idempotent, attached and detached.
    let out = cli(&["pod", "add", "--iface", &pod, "--ip", "198.19.1.5", "--socket", sock])?;
    assert!(out.status.success(), "pod add: {}\n{}", String::from_utf8_lossy(&out.stderr), log_text());
    let again = cli(&["pod", "add", "--iface", &pod, "--ip", "198.19.1.5", "--socket", sock])?;
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already attached"));
    let outside = cli(&["pod", "add", "--iface", &pod_peer, "--ip", "10.1.1.5", "--socket", sock])?;
    assert!(!outside.status.success());
    let err = String::from_utf8_lossy(&outside.stderr);
    assert!(
        err.starts_with("weft: pod.ip: 10.1.1.5 is not in our pod subnet") && err.lines().count() == 1,
        "{err}"
    );
    let missing =
        cli(&["pod", "add", "--iface", &format!("{stem}z"), "--ip", "198.19.1.6", "--socket", sock])?;
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no such interface") && err.lines().count() == 1, "{err}");
    let report = status(sock)?;
    assert_eq!(report.pods.len(), 1, "{:?}", report.pods);
    assert_eq!((report.pods[0].interface.as_str(), report.pods[0].ip.as_str()), (pod.as_str(), "198.19.1.5"));
    assert_eq!(report.pods[0].worker, "weft-q0", "the pod's owner is listed: {:?}", report.pods);
    let text = cli(&["status", "--socket", sock])?;
    let text = String::from_utf8_lossy(&text.stdout);
    let pods = text.split_once("\nPODS\n").context("a PODS section")?.1;
    let mut lines = pods.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.split_whitespace().eq(["INTERFACE", "IP", "MAC", "WORKER"]), "{header}");
    let line = lines.next().unwrap_or_default();
    assert!(
        line.starts_with(pod.as_str()) && line.ends_with(" weft-q0"),
        "the pod's line names its worker: {line}"
    );
    assert_eq!(report.ports.iter().filter(|p| p.role == "pod").count(), 1, "{:?}", report.ports);
    assert_eq!(report.workers.len(), 1, "pods share the uplink's queue-0 worker");
    assert!(report.fib.prefixes >= 4, "default, cluster, remote subnet, pod /32: {:?}", report.fib);
    assert!(node.has_xdp(&pod)?, "the pod port is attached");

    // Frames from the pod reach its port and the pipeline answers its ARP
    // for the gateway; a second pod restarts the queue-0 worker and the
    // first pod's counters carry over.
    let _ = peer.exec(&["ping", "-c", "5", "-i", "0.2", "-W", "1", "198.19.1.1"]);
    let rx_of = |r: &weft_control::api::StatusReport, name: &str| {
        r.ports.iter().find(|p| p.name.starts_with(name)).map(|p| p.rx_packets)
    };
    let before = status(sock)?;
    let rx_before = rx_of(&before, &pod).context("pod port listed")?;
    assert!(rx_before > 0, "the pod's frames reached its port: {:?}", before.ports);
    let arp_replies = |r: &weft_control::api::StatusReport| {
        r.paths.iter().find(|d| d.reason == "arp_reply").map_or(0, |d| d.count)
    };
    assert!(arp_replies(&before) >= 1, "the pipeline answered the pod's ARP: {:?}", before.paths);
    let out = cli(&["pod", "add", "--iface", &pod2, "--ip", "198.19.1.6", "--socket", sock])?;
    assert!(out.status.success(), "second pod: {}", String::from_utf8_lossy(&out.stderr));
    let after = status(sock)?;
    assert_eq!(after.pods.len(), 2, "{:?}\n{}", after.pods, log_text());
    assert!(rx_of(&after, &pod).context("first pod still listed")? >= rx_before, "{:?}", after.ports);
    assert!(arp_replies(&after) >= arp_replies(&before), "path counters carry over another pod's attach");
    let out = cli(&["pod", "del", "--iface", &pod2, "--ip", "198.19.1.6", "--socket", sock])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wrong_ip = cli(&["pod", "del", "--iface", &pod, "--ip", "198.19.1.9", "--socket", sock])?;
    assert!(!wrong_ip.status.success(), "del with another pod's ip is refused");

    let del = cli(&["pod", "del", "--iface", &pod, "--socket", sock])?;
    assert!(del.status.success(), "{}", String::from_utf8_lossy(&del.stderr));
    let del_again = cli(&["pod", "del", "--iface", &pod, "--socket", sock])?;
    assert!(del_again.status.success());
    assert!(String::from_utf8_lossy(&del_again.stdout).contains("was not attached"));
    assert!(status(sock)?.pods.is_empty());
    assert!(node.xdp_gone(&pod)?, "the pod's program left with the pod");

    // SIGTERM: clean stop, exit 0, the filter detached, the socket removed.
    let log_path = dir.path().join("weft.log");
    daemon.sigterm()?;
    assert!(node.xdp_gone(&up)?, "no XDP program left on the uplink");
    assert!(!Path::new(sock).exists(), "api socket removed");
    let log = std::fs::read_to_string(log_path)?;
    assert!(log.contains("SIGTERM: stopping") && log.contains("stopped"), "{log}");
    Ok(())
}

#[test]
fn two_uplink_queues_run_one_worker_each_and_share_one_filter() -> Result<()> {
    if !root_or_skip("two_uplink_queues_run_one_worker_each_and_share_one_filter") {
        return Ok(());
    }
    let stem = unique_stem();
    let node = Netns::new(&format!("{stem}n"))?;
    let (up, peer) = (format!("{stem}u"), format!("{stem}v"));
    node.ip(&[
        "link",
        "add",
        &up,
        "numrxqueues",
        "2",
        "numtxqueues",
        "2",
        "type",
        "veth",
        "peer",
        "name",
        &peer,
        "numrxqueues",
        "2",
        "numtxqueues",
        "2",
    ])?;
    node.ip(&["link", "set", &up, "up"])?;
    node.ip(&["link", "set", &peer, "up"])?;
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("weft.toml");
    let text = config(&stem, dir.path(), &up).replace("xdp_mode = \"generic\"", "queues = 2");
    std::fs::write(&cfg, text)?;
    let sock = dir.path().join("weft.sock");
    let daemon = Daemon::start(&node, &cfg, &[], &dir.path().join("weft.log"))?;
    let report = daemon.wait_ready(&sock)?;
    let names: Vec<&str> =
        report.ports.iter().filter(|p| p.role == "uplink").map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec![format!("{up}/xdp0"), format!("{up}/xdp1")], "{:?}", report.ports);
    // The host link's engine end is the pod worker's (queue 0's).
    let exception: Vec<(&str, &str)> = report
        .ports
        .iter()
        .filter(|p| p.role == "exception")
        .map(|p| (p.name.as_str(), p.worker.as_str()))
        .collect();
    assert_eq!(exception, [("weft0e/xdp0", "weft-q0")], "{:?}", report.ports);
    let workers: Vec<&str> = report.workers.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(workers, vec!["weft-q0", "weft-q1"]);
    assert!(report.ports.iter().all(|p| p.xdp.is_some()), "both queues on AF_XDP: {:?}", report.ports);
    daemon.sigterm()?;
    assert!(node.xdp_gone(&up)?, "no XDP program left on the uplink");
    Ok(())
}

#[test]
fn a_missing_uplink_interface_exits_non_zero_with_one_line() -> Result<()> {
    if !root_or_skip("a_missing_uplink_interface_exits_non_zero_with_one_line") {
        return Ok(());
    }
    let stem = unique_stem();
    let node = Netns::new(&format!("{stem}n"))?;
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("weft.toml");
    let missing = format!("{stem}x");
    std::fs::write(&cfg, config(&stem, dir.path(), &missing))?;
    let out = Command::new("ip")
        .args(["netns", "exec", &node.name, env!("CARGO_BIN_EXE_weft"), "run", "--config"])
        .arg(&cfg)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("weft: uplink.interface: interface {missing} does not exist")), "{err}");
    Ok(())
}

#[test]
fn without_privileges_weft_run_names_the_missing_capabilities() -> Result<()> {
    if !root_or_skip("without_privileges_weft_run_names_the_missing_capabilities") {
        return Ok(());
    }
    if run_ok("setpriv", &["--version"]).is_err() {
        weft_testnet::skip(
            "without_privileges_weft_run_names_the_missing_capabilities",
            "setpriv (util-linux) is not installed",
        );
        return Ok(());
    }
    let stem = unique_stem();
    let node = Netns::new(&format!("{stem}n"))?;
    let peer = Netns::new(&format!("{stem}w"))?;
    let up = format!("{stem}u");
    veth_between(&node, &up, "02:00:00:10:00:01", &peer, &format!("{stem}v"), "02:00:00:10:00:02")?;
    // Everything the unprivileged daemon reads or writes lives in a directory it may use.
    let dir = tempfile::tempdir()?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
    let cfg = dir.path().join("weft.toml");
    std::fs::write(&cfg, config(&stem, dir.path(), &up))?;
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644))?;
    let exe = dir.path().join("weft");
    std::fs::copy(env!("CARGO_BIN_EXE_weft"), &exe)?;
    let out = Command::new("ip")
        .args(["netns", "exec", &node.name, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("WEFT_LOG", "off")
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("missing capabilities: CAP_NET_ADMIN") && err.contains("CAP_NET_RAW"), "{err}");
    Ok(())
}

fn run_ok(cmd: &str, args: &[&str]) -> Result<()> {
    netns::run(cmd, args).map(|_| ())
}
