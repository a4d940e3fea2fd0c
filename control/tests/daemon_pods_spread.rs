//! Pods are spread over the workers: on a node whose uplink has two rx queues, pods attached
//! through the API land alternately on both workers (the least loaded takes each), every pod
//! reaches a pod on another node (its egress through its owner's uplink queue) and the pods of
//! the other worker (handed across), and a node whose `workers.pod_slots` are taken refuses
//! the next pod with an error naming the key. Static host-gw, native XDP on veths, all in
//! namespaces this test creates (prefix `wpd`).

mod netns;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netns::daemon::{Daemon, engine_sections, static_node_a};
use netns::{Netns, ping_until, root_or_skip, veth_between};
use weft_control::api::{Reply, Request, StatusReport, request};

/// Pods attached on node A (its `workers.pod_slots`).
const PODS: u8 = 4;

fn pod_ip(i: u8) -> String {
    format!("198.19.1.{}", 10 + i)
}

fn pod_mac(i: u8) -> String {
    format!("02:00:00:2d:{:02x}:02", 0x10 + i)
}

/// The non-zero paths and drops and the ports, for failure messages.
fn nonzero(r: &StatusReport) -> String {
    format!(
        "paths {:?} drops {:?} ports {:?}",
        r.paths.iter().filter(|p| p.count > 0).map(|p| (&p.reason, p.count)).collect::<Vec<_>>(),
        r.drops.iter().filter(|d| d.count > 0).map(|d| (&d.reason, d.count)).collect::<Vec<_>>(),
        r.ports.iter().map(|p| (&p.name, &p.role, &p.worker, p.rx_packets, p.tx_packets)).collect::<Vec<_>>()
    )
}

/// Node A (`a`) with a two-queue uplink to node B (`b`, 198.18.0.12), B's kernel routing A's
/// pod subnet to A and carrying pod `q` (198.19.2.5); `PODS + 1` pod namespaces behind A
/// (`{stem}0`.., host ends `{stem}h<i>`), not attached yet.
struct Lab {
    stem: String,
    a: Netns,
    _b: Netns,
    pb: Netns,
    pods: Vec<Netns>,
    uplink: String,
}

impl Lab {
    fn new() -> Result<Self> {
        let stem = weft_testnet::unique_stem("wpd");
        let a = Netns::new(&format!("{stem}a"))?;
        let b = Netns::new(&format!("{stem}b"))?;
        let pb = Netns::new(&format!("{stem}q"))?;
        let (up, up_b) = (format!("{stem}u"), format!("{stem}v"));
        #[rustfmt::skip]
        a.ip(&[
            "link", "add", &up, "numtxqueues", "2", "numrxqueues", "2", "address", "02:00:00:2d:00:01",
            "type", "veth", "peer", "name", &up_b, "numtxqueues", "2", "numrxqueues", "2",
            "address", "02:00:00:2d:00:02", "netns", &b.name,
        ])?;
        a.ip(&["link", "set", &up, "up"])?;
        b.ip(&["link", "set", &up_b, "up"])?;
        a.ip(&["addr", "add", "198.18.0.11/24", "dev", &up])?;
        b.ip(&["addr", "add", "198.18.0.12/24", "dev", &up_b])?;
        // B's kernel computes the checksums a NIC would (AF_XDP cannot finish partial ones).
        b.exec(&["ethtool", "-K", &up_b, "tx", "off"])?;
        b.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        b.ip(&["route", "add", "198.19.1.0/24", "via", "198.18.0.11", "dev", &up_b])?;
        let (kb, podb) = (format!("{stem}k"), format!("{stem}f"));
        veth_between(&b, &kb, "02:00:00:2d:02:01", &pb, &podb, "02:00:00:2d:02:02")?;
        b.ip(&["addr", "add", "198.19.2.1/24", "dev", &kb])?;
        pb.ip(&["addr", "add", "198.19.2.5/24", "dev", &podb])?;
        pb.ip(&["route", "add", "default", "via", "198.19.2.1"])?;
        let mut pods = Vec::new();
        for i in 0..=PODS {
            let ns = Netns::new(&format!("{stem}{i}"))?;
            let (host, dev) = (format!("{stem}h{i}"), format!("{stem}e{i}"));
            veth_between(&a, &host, &format!("02:00:00:2d:{:02x}:01", 0x10 + i), &ns, &dev, &pod_mac(i))?;
            ns.exec(&["ethtool", "-K", &dev, "tx", "off"])?;
            ns.ip(&["addr", "add", &format!("{}/24", pod_ip(i)), "dev", &dev])?;
            ns.ip(&["route", "add", "default", "via", "198.19.1.1"])?;
            pods.push(ns);
        }
        Ok(Lab { stem, a, _b: b, pb, pods, uplink: up })
    }

    fn add(&self, i: u8) -> Request {
        Request::PodAdd {
            interface: format!("{}h{i}", self.stem),
            ip: pod_ip(i),
            mac: Some(pod_mac(i)),
            namespace: None,
            name: None,
            labels: Default::default(),
        }
    }
}

fn api(sock: &Path, req: Request) -> Result<Reply> {
    request(sock, &req, Duration::from_secs(10)).with_context(|| format!("{req:?}"))
}

#[test]
fn pods_attached_to_a_two_queue_node_land_on_both_workers_and_all_forward() -> Result<()> {
    if !root_or_skip("pods_attached_to_a_two_queue_node_land_on_both_workers_and_all_forward") {
        return Ok(());
    }
    let lab = Lab::new()?;
    let dir = tempfile::tempdir()?;
    let sock = dir.path().join("weft.sock");
    let cfg = format!(
        "{}{}",
        static_node_a(&format!("{}n", lab.stem), dir.path()),
        engine_sections(&lab.uplink, "native", 2, &sock)
            .replace("frames = 1024\n", &format!("frames = 1024\npod_slots = {PODS}\n"))
    );
    let cfg_path = dir.path().join("weft.toml");
    std::fs::write(&cfg_path, cfg)?;
    let daemon = Daemon::start(&lab.a, &cfg_path, &[], &dir.path().join("weft.log"))?;
    daemon.wait_ready(&sock)?;

    for i in 0..PODS {
        match api(&sock, lab.add(i))? {
            Reply::Done { changed: true, .. } => {}
            other => bail!("attach pod {i}: {other:?}\n{}", daemon.log()),
        }
    }
    let r = Daemon::status(&sock)?;
    let owner = |i: u8| {
        let host = format!("{}h{i}", lab.stem);
        r.ports.iter().find(|p| p.role == "pod" && p.name.starts_with(&host)).map(|p| p.worker.clone())
    };
    let owners: Vec<Option<String>> = (0..PODS).map(owner).collect();
    let expected: Vec<Option<String>> = (0..PODS).map(|i| Some(format!("weft-q{}", i % 2))).collect();
    assert_eq!(owners, expected, "each pod on the least loaded worker: {}", nonzero(&r));
    let listed = |i: u8| r.pods.iter().find(|p| p.ip == pod_ip(i)).map(|p| p.worker.clone());
    let listed: Vec<Option<String>> = (0..PODS).map(listed).collect();
    assert_eq!(listed, expected, "the pod listing names each pod's worker: {:?}", r.pods);

    // The node is full: the next pod is refused, naming the key, and nothing changed.
    match api(&sock, lab.add(PODS))? {
        Reply::Error { message } => {
            assert!(message.contains("full") && message.contains("workers.pod_slots"), "{message}")
        }
        other => bail!("a pod beyond workers.pod_slots: {other:?}"),
    }
    assert_eq!(Daemon::status(&sock)?.pods.len(), usize::from(PODS));

    // Every pod reaches node B's pod (host-gw) out of its owner's uplink queue, and the
    // pods of the other worker.
    for (i, ns) in lab.pods.iter().take(usize::from(PODS)).enumerate() {
        assert!(
            ping_until(ns, "198.19.2.5", Duration::from_secs(10)),
            "pod {i} -> B's pod: {}\n{}",
            nonzero(&Daemon::status(&sock)?),
            daemon.log()
        );
        let out = ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.19.2.5"])?;
        assert!(out.contains("3 received"), "pod {i} -> B's pod: {out}");
        let peer = pod_ip((i as u8 + 1) % PODS);
        let out = ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", &peer])?;
        assert!(out.contains("3 received"), "pod {i} -> {peer} on the other worker: {out}");
    }
    let out = lab.pb.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", &pod_ip(1)])?;
    assert!(out.contains("3 received"), "B's pod -> pod 1 (queue 1's worker): {out}");

    let r = Daemon::status(&sock)?;
    let uplink_tx: Vec<u64> = r.ports.iter().filter(|p| p.role == "uplink").map(|p| p.tx_packets).collect();
    assert_eq!(uplink_tx.len(), 2);
    assert!(
        uplink_tx.iter().all(|&n| n >= 6),
        "both workers' pods left through their own queue: {}",
        nonzero(&r)
    );
    let (q0, q1) = (&r.workers[0], &r.workers[1]);
    assert!(q0.handoff_out > 0 && q1.handoff_out > 0, "pod <-> pod crossed both ways: {:?}", r.workers);
    assert_eq!(q0.handoff_in + q1.handoff_in, q0.handoff_out + q1.handoff_out, "{:?}", r.workers);
    for reason in ["handoff_full", "handoff_stale", "handoff_no_frame", "no_such_port", "no_such_worker"] {
        assert_eq!(r.drop_count(reason), 0, "{reason}: {}", nonzero(&r));
    }

    // A detached pod frees its worker's slot: the next pod goes there.
    match api(&sock, Request::PodDel { interface: format!("{}h1", lab.stem), ip: None })? {
        Reply::Done { changed: true, .. } => {}
        other => bail!("detach pod 1: {other:?}"),
    }
    match api(&sock, lab.add(PODS))? {
        Reply::Done { changed: true, .. } => {}
        other => bail!("attach pod {PODS} after a detach: {other:?}"),
    }
    let r = Daemon::status(&sock)?;
    let host = format!("{}h{PODS}", lab.stem);
    let port =
        r.ports.iter().find(|p| p.role == "pod" && p.name.starts_with(&host)).context("new pod port")?;
    assert_eq!(port.worker, "weft-q1", "{}", nonzero(&r));
    let out = lab.pods[usize::from(PODS)].exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", &pod_ip(0)])?;
    assert!(out.contains("3 received"), "the new pod on queue 1's worker -> pod 0: {out}");
    daemon.sigterm()?;
    Ok(())
}
