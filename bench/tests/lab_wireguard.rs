//! flannel's wireguard backend: a kernel node running wireguard-go configured exactly as
//! flanneld configures its `flannel-wg` device (`weft-lab kflannel`), and two weft nodes. Pods
//! talk every way by ICMP and TCP; the underlay carries nothing between the nodes but UDP on
//! the WireGuard port, and no pod address in any of it; a restarted weft node has sessions
//! again within seconds. Between two weft nodes, a TCP stream runs through the rekey.

mod lab_common;

use std::net::Ipv4Addr;
use std::time::Duration;

use lab_common::*;
use weft_bench::lab::capture::Capture;
use weft_bench::lab::topology::{DEFAULT_STATE_ROOT, POD_NETWORK};
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeSpec};

const WG_PORT: u16 = 51820;
const DISCARD_PORT: u16 = 9;

/// n1: kernel node (wireguard-go), n2 and n3: weft nodes; one pod each.
fn wireguard_lab() -> LabGuard {
    let mut nodes = vec![NodeSpec::kernel(WEFT_LAB)];
    nodes.extend(std::iter::repeat_n(NodeSpec::weft(Some(weft_run_cmd())), 2));
    let spec = LabSpec {
        prefix: prefix(),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend: Backend::WireGuard,
        nodes,
        pods_per_node: 1,
        uplink_mtu: 1500,
    };
    LabGuard::new(Lab::up(&spec).unwrap_or_else(|e| panic!("lab up: {e}")))
}

/// Whether `wg` answers with a usable device (both Debian packages are needed).
fn have_wireguard_go(test: &str) -> bool {
    let found = ["wireguard-go", "wg"].iter().all(|tool| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !found {
        weft_testnet::skip(test, "needs wireguard-go and wg (Debian packages wireguard-go, wireguard-tools)");
    }
    found
}

/// An underlay frame's IPv4 source, destination, protocol and UDP ports.
type Ipv4Of = (Ipv4Addr, Ipv4Addr, u8, Option<(u16, u16)>);

/// The IPv4 source and destination, protocol and UDP ports of an Ethernet frame, if IPv4.
fn ipv4_of(f: &[u8]) -> Option<Ipv4Of> {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = |at: usize| Ipv4Addr::new(f[at], f[at + 1], f[at + 2], f[at + 3]);
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let ports = (f[23] == 17 && f.len() >= 14 + ihl + 4).then(|| {
        let u = 14 + ihl;
        (u16::from_be_bytes([f[u], f[u + 1]]), u16::from_be_bytes([f[u + 2], f[u + 3]]))
    });
    Some((ip(26), ip(30), f[23], ports))
}

/// The weft nodes' non-zero drops and paths, for failure messages.
fn counters(lab: &Lab) -> String {
    lab.state()
        .nodes
        .iter()
        .filter(|n| n.kind == weft_bench::lab::topology::NodeKind::Weft)
        .map(|n| n.index)
        .collect::<Vec<_>>()
        .iter()
        .map(|&i| match weft_status(lab, i) {
            Ok(s) => {
                let seen: Vec<String> = s
                    .drops
                    .iter()
                    .chain(&s.paths)
                    .filter(|d| d.count > 0)
                    .map(|d| format!("{} {}", d.reason, d.count))
                    .collect();
                format!("n{i}: {}", seen.join(", "))
            }
            Err(e) => e,
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn wireguard_go_and_weft_pods_talk_every_way_and_the_underlay_carries_only_wireguard() {
    let test = "wireguard_go_and_weft_pods_talk_every_way_and_the_underlay_carries_only_wireguard";
    if !have_root(test) || !have_wireguard_go(test) {
        return;
    }
    let mut lab = wireguard_lab();
    for i in [2, 3] {
        wait_weft_ready(&lab, i);
    }
    let (k, w2, w3) = (lab.pod(1, 1).clone(), lab.pod(2, 1).clone(), lab.pod(3, 1).clone());
    let nodes: Vec<Ipv4Addr> = (1..=3).map(|i| lab.node(i).public_ip).collect();
    let pods = [k.ip, w2.ip, w3.ip];

    let capture = Capture::start(&mut lab, "underlay").unwrap();
    // The first packets of a pair start the handshake (they are dropped, never sent in clear).
    for (from, to) in [(&k, &w2), (&w2, &k), (&w2, &w3), (&w3, &w2), (&k, &w3), (&w3, &k)] {
        assert!(
            eventually(Duration::from_secs(15), || ping(&from.ns, to.ip, 1)),
            "pod {} -> {}: no session came up; {}",
            from.ip,
            to.ip,
            counters(&lab)
        );
        assert!(ping(&from.ns, to.ip, 3), "pod {} -> {} once the session is up", from.ip, to.ip);
    }
    tcp_echo_works(&mut lab, &k.ns, &w2.ns, w2.ip, 7001, 1 << 20);
    tcp_echo_works(&mut lab, &w2.ns, &k.ns, k.ip, 7002, 1 << 20);
    tcp_echo_works(&mut lab, &w3.ns, &w2.ns, w2.ip, 7003, 1 << 20);
    let frames = capture.finish_raw().unwrap();

    let mut wireguard = 0;
    for f in &frames {
        let Some((src, dst, protocol, ports)) = ipv4_of(f) else { continue };
        assert!(
            !POD_NETWORK.contains(&src) && !POD_NETWORK.contains(&dst),
            "a pod address in an underlay IPv4 header: {src} -> {dst} (protocol {protocol})"
        );
        if !(nodes.contains(&src) && nodes.contains(&dst)) {
            continue;
        }
        // weft's neighbour resolver makes the kernel ARP with an empty datagram to the
        // discard port, which the peer's kernel may answer with port unreachable: the nodes'
        // own traffic, no pod's.
        let icmp_unreachable = protocol == 1 && f.get(34) == Some(&3);
        if (protocol == 17 && ports.is_some_and(|(_, d)| d == DISCARD_PORT)) || icmp_unreachable {
            continue;
        }
        assert!(
            protocol == 17 && ports.is_some_and(|(s, d)| s == WG_PORT && d == WG_PORT),
            "node-to-node traffic other than WireGuard UDP {WG_PORT}: {src} -> {dst} protocol {protocol} ports {ports:?}"
        );
        for pod in pods {
            assert!(
                !f[42..].windows(4).any(|w| w == pod.octets()),
                "pod address {pod} in the payload of an underlay datagram {src} -> {dst}"
            );
        }
        wireguard += 1;
    }
    // 36 echo requests and replies, three 1 MiB TCP exchanges, handshakes.
    assert!(wireguard >= 36 + 60, "only {wireguard} WireGuard datagrams between the nodes");

    for i in [2, 3] {
        let s = weft_status(&lab, i).unwrap();
        assert!(
            weft_counter(&s, "wg_encrypt") > 0 && weft_counter(&s, "wg_decrypt") > 0,
            "n{i}: {:?}",
            s.paths
        );
        for reason in ["wg_malformed", "wg_bad_mac", "wg_decrypt_failed", "wg_disallowed_source"] {
            assert_eq!(weft_counter(&s, reason), 0, "n{i} dropped {reason}");
        }
    }

    // A restarted weft node keeps its key (node.state_dir) and lease, and has sessions again
    // within seconds even when its peers talk first: it initiates to every peer at once, and
    // the peers' old sessions are refused as no session of the new process.
    assert_eq!(lab.stop_node(2), 1, "n2's weft was running");
    lab.start_node(2, &weft_run_cmd()).unwrap();
    wait_weft_ready(&lab, 2);
    let restarted = std::time::Instant::now();
    for from in [&k, &w3] {
        assert!(
            eventually(Duration::from_secs(5), || ping(&from.ns, w2.ip, 1)),
            "pod {} -> {} within 5 s of n2's restart; {}",
            from.ip,
            w2.ip,
            counters(&lab)
        );
    }
    eprintln!("sessions with the restarted n2 carried pings {:?} after it was ready", restarted.elapsed());
    tcp_echo_works(&mut lab, &k.ns, &w2.ns, w2.ip, 7004, 1 << 16);
}

/// `weft-lab tcp-send --secs secs --mbit mbit` from `client_ns` to the echo server at `to`:
/// its output (with the longest stall) once it ended, failing when the stream broke.
fn paced_stream(client_ns: &str, to: &str, secs: u32, mbit: u32) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", client_ns, WEFT_LAB, "tcp-send", "--to", to])
        .args(["--secs", &secs.to_string(), "--mbit", &mbit.to_string()])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the stream to {to} broke: {text}");
    text
}

/// WireGuard rekeys a session REKEY_AFTER_TIME (120 s) after its handshake; boringtun fixes
/// that time, so this stream runs past it (about 2.5 minutes).
#[test]
fn a_tcp_stream_between_weft_nodes_survives_the_rekey_after_two_minutes() {
    let test = "a_tcp_stream_between_weft_nodes_survives_the_rekey_after_two_minutes";
    if !have_root(test) {
        return;
    }
    let spec = LabSpec {
        prefix: prefix(),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend: Backend::WireGuard,
        nodes: vec![NodeSpec::weft(Some(weft_run_cmd())); 2],
        pods_per_node: 1,
        uplink_mtu: 1500,
    };
    let mut lab = LabGuard::new(Lab::up(&spec).unwrap_or_else(|e| panic!("lab up: {e}")));
    for i in [1, 2] {
        wait_weft_ready(&lab, i);
    }
    let (p1, p2) = (lab.pod(1, 1).clone(), lab.pod(2, 1).clone());
    assert!(eventually(Duration::from_secs(10), || ping(&p1.ns, p2.ip, 1)), "no session came up");
    let initiations = |lab: &Lab| -> u64 {
        [1, 2]
            .iter()
            .map(|&i| weft_status(lab, i).map_or(0, |s| weft_counter(&s, "wg_timer_initiation")))
            .sum()
    };
    let before = initiations(&lab);
    let listen = format!("{}:7010", p2.ip);
    echo_server(&mut lab, &p2.ns, &listen);
    let text = paced_stream(&p1.ns, &listen, 140, 20);
    let stall: u64 = text
        .split("longest stall ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no longest stall in {text:?}"));
    eprintln!("stream through the rekey: {}", text.trim());
    assert!(stall < 2000, "the stream stalled {stall} ms around the rekey");
    assert!(
        initiations(&lab) > before,
        "no handshake was initiated during the 140 s stream (no rekey); {}",
        counters(&lab)
    );
}
