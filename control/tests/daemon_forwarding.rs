//! `weft run` forwards with the real pipeline: a pod behind weft pings a pod
//! behind a kernel node, and the reply comes back through weft. Static mode,
//! all in namespaces this test creates (prefix `ww`): node A runs weft on a
//! veth uplink (generic XDP, AF_XDP) with one pod; node B is the Linux
//! kernel with one pod, routing host-gw, or running a VXLAN device
//! programmed exactly as flanneld programs `flannel.1` (VNI 1, port 8472,
//! nolearning, ARP/FDB/route for our lease).

mod netns;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use netns::daemon::{Daemon, engine_sections};
use netns::{Netns, root_or_skip, unique_stem, veth_between};

const A_VTEP: &str = "0e:00:00:00:01:00";
const B_VTEP: &str = "0e:00:00:00:02:00";
const POD_A_MAC: &str = "02:00:00:1f:01:02";

fn config(stem: &str, dir: &Path, backend: &str, uplink: &str, pod: &str) -> String {
    let vtep = if backend == "vxlan" { format!("vtep_mac = \"{B_VTEP}\"\n") } else { String::new() };
    format!(
        r#"mode = "static"
[node]
name = "{stem}a"
public_ip = "198.18.0.11"
uplink_subnet = "198.18.0.0/24"
vtep_mac = "{A_VTEP}"
subnet_file = "{dir}/subnet.env"
state_dir = "{dir}/state"
[network]
network = "198.19.0.0/16"
backend = "{backend}"
[static]
subnet = "198.19.1.0/24"
[[static.routes]]
subnet = "198.19.2.0/24"
via = "{backend}"
node_ip = "198.18.0.12"
{vtep}{engine}[[pods]]
interface = "{pod}"
ip = "198.19.1.5"
mac = "{POD_A_MAC}"
"#,
        dir = dir.display(),
        engine = engine_sections(uplink, "generic", 1, &dir.join("weft.sock"))
    )
}

/// Node B as the kernel runs it: pod B behind a veth, and the way back to
/// our subnet 198.19.1.0/24 over `backend`.
fn kernel_node(b: &Netns, uplink: &str, backend: &str) -> Result<()> {
    b.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    match backend {
        "host-gw" => {
            b.ip(&["route", "add", "198.19.1.0/24", "via", "198.18.0.11", "dev", uplink])?;
        }
        "vxlan" => {
            // What flanneld's vxlan backend programs for a remote lease.
            b.ip(&[
                "link",
                "add",
                "flannel.1",
                "address",
                B_VTEP,
                "type",
                "vxlan",
                "id",
                "1",
                "local",
                "198.18.0.12",
                "dev",
                uplink,
                "dstport",
                "8472",
                "nolearning",
            ])?;
            // The kernel leaves the outer UDP checksum to tx offload (only the
            // pseudo-header sum is in the frame); a NIC finishes it, a veth never
            // does, and weft rightly drops a wrong checksum. Make node B's
            // veth compute it in software, as a NIC would on the wire.
            b.exec(&["ethtool", "-K", uplink, "tx", "off"])?;
            b.ip(&["link", "set", "flannel.1", "up"])?;
            b.ip(&["addr", "add", "198.19.2.0/32", "dev", "flannel.1"])?;
            b.ip(&["neigh", "add", "198.19.1.0", "lladdr", A_VTEP, "dev", "flannel.1", "nud", "permanent"])?;
            b.exec(&["bridge", "fdb", "append", A_VTEP, "dev", "flannel.1", "dst", "198.18.0.11"])?;
            b.ip(&["route", "add", "198.19.1.0/24", "via", "198.19.1.0", "dev", "flannel.1", "onlink"])?;
        }
        other => anyhow::bail!("no kernel node for {other}"),
    }
    Ok(())
}

/// Pod A (behind weft) pings pod B (behind the kernel node) until a reply
/// comes back, then checks which pipeline paths carried the traffic.
fn a_pod_behind_weft_pings_a_pod_behind_a_kernel_node(backend: &str, out: &str, back: &str) -> Result<()> {
    let stem = format!("ww{}", &unique_stem()[2..]);
    let a = Netns::new(&format!("{stem}a"))?;
    let b = Netns::new(&format!("{stem}b"))?;
    let pa = Netns::new(&format!("{stem}p"))?;
    let pb = Netns::new(&format!("{stem}q"))?;
    let (up, up_b) = (format!("{stem}u"), format!("{stem}v"));
    veth_between(&a, &up, "02:00:00:1f:00:01", &b, &up_b, "02:00:00:1f:00:02")?;
    a.ip(&["addr", "add", "198.18.0.11/24", "dev", &up])?;
    b.ip(&["addr", "add", "198.18.0.12/24", "dev", &up_b])?;
    // Pod A: its veth's host end is weft's pod port; weft is its gateway.
    let (host, pod) = (format!("{stem}h"), format!("{stem}e"));
    veth_between(&a, &host, "02:00:00:1f:01:01", &pa, &pod, POD_A_MAC)?;
    pa.ip(&["addr", "add", "198.19.1.5/24", "dev", &pod])?;
    pa.ip(&["route", "add", "default", "via", "198.19.1.1"])?;
    // Pod B behind the kernel node.
    let (kb, podb) = (format!("{stem}k"), format!("{stem}f"));
    veth_between(&b, &kb, "02:00:00:1f:02:01", &pb, &podb, "02:00:00:1f:02:02")?;
    b.ip(&["addr", "add", "198.19.2.1/24", "dev", &kb])?;
    pb.ip(&["addr", "add", "198.19.2.5/24", "dev", &podb])?;
    pb.ip(&["route", "add", "default", "via", "198.19.2.1"])?;
    kernel_node(&b, &up_b, backend)?;

    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("weft.toml");
    std::fs::write(&cfg, config(&stem, dir.path(), backend, &up, &host))?;
    let sock = dir.path().join("weft.sock");
    let daemon = Daemon::start(&a, &cfg, &[], &dir.path().join("weft.log"))?;
    let report = daemon.wait_ready(&sock)?;
    assert_eq!(report.workers.len(), 1, "uplink and pod on one worker: {:?}", report.workers);
    assert!(report.fib.prefixes >= 4, "default, cluster, remote subnet, pod: {:?}", report.fib);

    // The first pings may find the next hop's MAC still unresolved (the
    // neighbour loop runs once a second): retry for a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    let replied = loop {
        if pa.exec(&["ping", "-c", "1", "-W", "1", "198.19.2.5"]).is_ok() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    let report = Daemon::status(&sock)?;
    assert!(
        replied,
        "pod A never got a reply from pod B over {backend}\nstatus: {:?}\n{:?}\n{}",
        report.paths.iter().filter(|p| p.count > 0).collect::<Vec<_>>(),
        report.drops.iter().filter(|d| d.count > 0).collect::<Vec<_>>(),
        daemon.log()
    );
    // A few more, all answered, now that everything is resolved.
    let pings =
        pa.exec(&["ping", "-c", "5", "-i", "0.2", "-W", "1", "198.19.2.5"]).context("steady pings")?;
    assert!(pings.contains("5 received"), "{pings}");
    let report = Daemon::status(&sock)?;
    assert!(report.path_count(out) >= 6, "pod -> remote went {out}: {:?}", report.paths);
    assert!(report.path_count(back) >= 6, "remote -> pod came {back}: {:?}", report.paths);
    assert!(report.path_count("arp_reply") >= 1, "weft answered the pod's gateway ARP: {:?}", report.paths);
    assert!(
        report.neighbours.iter().any(|n| n.ip == "198.18.0.12" && n.mac == "02:00:00:1f:00:02"),
        "{:?}",
        report.neighbours
    );
    if backend == "host-gw" {
        a_pod_added_at_run_time_is_reachable_from_both_sides(&stem, &a, &pa, &pb, &sock)?;
    }
    if backend == "vxlan" {
        a_tagged_inner_frame_is_dropped_not_delivered(&b, &pa, &pod, &sock)?;
    }
    daemon.sigterm()?;
    Ok(())
}

/// Node B sends VXLAN datagrams to weft (a UDP socket, so its kernel builds the outer headers)
/// whose inner frames are UDP to pod A: untagged ones reach pod A, 802.1Q-tagged ones are each
/// dropped as `vlan_tagged` and pod A receives none of them.
fn a_tagged_inner_frame_is_dropped_not_delivered(
    b: &Netns,
    pa: &Netns,
    pod: &str,
    sock: &Path,
) -> Result<()> {
    let rx_path = format!("/sys/class/net/{pod}/statistics/rx_packets");
    let rx = |ns: &Netns| -> Result<u64> { Ok(ns.exec(&["cat", &rx_path])?.trim().parse()?) };
    let send = |tag: Option<u16>| -> Result<()> {
        let datagram = vxlan_to_pod_a(tag);
        b.run(move || -> std::io::Result<()> {
            let s = std::net::UdpSocket::bind("198.18.0.12:0")?;
            for _ in 0..5 {
                s.send_to(&datagram, "198.18.0.11:8472")?;
            }
            Ok(())
        })??;
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    };
    let before = rx(pa)?;
    send(None)?;
    assert_eq!(rx(pa)? - before, 5, "the untagged control frames reach pod A");
    let (before, tagged) = (rx(pa)?, Daemon::status(sock)?.drop_count("vlan_tagged"));
    send(Some(5))?;
    let report = Daemon::status(sock)?;
    assert_eq!(report.drop_count("vlan_tagged") - tagged, 5, "{:?}", report.drops);
    assert_eq!(rx(pa)?, before, "pod A received a tagged frame");
    Ok(())
}

/// A VXLAN payload (VNI 1) carrying UDP from pod B to pod A, with an 802.1Q tag when asked.
fn vxlan_to_pod_a(tag: Option<u16>) -> Vec<u8> {
    let mac = |s: &str| s.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect::<Vec<_>>();
    let mut f = vec![0x08, 0, 0, 0, 0, 0, 1, 0]; // flags: VNI valid; VNI 1
    f.extend(mac(A_VTEP));
    f.extend(mac(B_VTEP));
    if let Some(vid) = tag {
        f.extend([0x81, 0x00]);
        f.extend(vid.to_be_bytes());
    }
    f.extend([0x08, 0x00]);
    let payload = b"weft vlan test";
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 0, 0x40, 0, 63, 17, 0, 0, 198, 19, 2, 5, 198, 19, 1, 5]);
    let mut sum = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let sum = !(sum as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend(ip);
    f.extend(5000u16.to_be_bytes());
    f.extend(5001u16.to_be_bytes());
    f.extend((8 + payload.len() as u16).to_be_bytes());
    f.extend([0, 0]); // no UDP checksum
    f.extend(payload);
    f
}

/// `weft pod add` attaches the pod to the running pod worker: the new pod
/// answers pod A (same node, `local`) and pod B (across the kernel node), and
/// pod A still reaches pod B.
fn a_pod_added_at_run_time_is_reachable_from_both_sides(
    stem: &str,
    a: &Netns,
    pa: &Netns,
    pb: &Netns,
    sock: &Path,
) -> Result<()> {
    let pc = Netns::new(&format!("{stem}c"))?;
    let (host, pod) = (format!("{stem}i"), format!("{stem}g"));
    veth_between(a, &host, "02:00:00:1f:03:01", &pc, &pod, "02:00:00:1f:03:02")?;
    pc.ip(&["addr", "add", "198.19.1.6/24", "dev", &pod])?;
    pc.ip(&["route", "add", "default", "via", "198.19.1.1"])?;
    let sock_s = sock.to_str().context("socket path")?;
    let out = netns::daemon::cli(&[
        "pod",
        "add",
        "--iface",
        &host,
        "--ip",
        "198.19.1.6",
        "--mac",
        "02:00:00:1f:03:02",
        "--socket",
        sock_s,
    ])?;
    assert!(out.status.success(), "pod add: {}", String::from_utf8_lossy(&out.stderr));
    let local_before = Daemon::status(sock)?.path_count("local");
    for (from, to) in [(pa, "198.19.1.6"), (pb, "198.19.1.6"), (pa, "198.19.2.5")] {
        let pings = from.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", to]).with_context(|| {
            let r = Daemon::status(sock).unwrap_or_default();
            format!(
                "ping {to} from {}: paths {:?} drops {:?} ports {:?} workers {:?}",
                from.name,
                r.paths.iter().filter(|p| p.count > 0).map(|p| (&p.reason, p.count)).collect::<Vec<_>>(),
                r.drops.iter().filter(|d| d.count > 0).map(|d| (&d.reason, d.count)).collect::<Vec<_>>(),
                r.ports,
                r.workers
            )
        })?;
        assert!(pings.contains("3 received"), "{} -> {to}: {pings}", from.name);
    }
    let report = Daemon::status(sock)?;
    assert_eq!(report.pods.len(), 2, "{:?}", report.pods);
    assert!(report.path_count("local") >= local_before + 6, "pod A <-> new pod is local: {:?}", report.paths);
    Ok(())
}

#[test]
fn a_pod_behind_weft_pings_a_pod_behind_a_kernel_host_gw_node_and_gets_the_reply() -> Result<()> {
    if !root_or_skip("a_pod_behind_weft_pings_a_pod_behind_a_kernel_host_gw_node_and_gets_the_reply") {
        return Ok(());
    }
    a_pod_behind_weft_pings_a_pod_behind_a_kernel_node("host-gw", "direct", "host_gw_arrival")
}

#[test]
fn a_pod_behind_weft_pings_a_pod_behind_kernel_flannel_vxlan_and_gets_the_reply() -> Result<()> {
    if !root_or_skip("a_pod_behind_weft_pings_a_pod_behind_kernel_flannel_vxlan_and_gets_the_reply") {
        return Ok(());
    }
    a_pod_behind_weft_pings_a_pod_behind_a_kernel_node("vxlan", "vxlan_encap", "vxlan_decap")
}
