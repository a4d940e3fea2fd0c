//! The Kubernetes network model on a weft node (SPEC §8) with nothing set up by hand: weft
//! creates its host link (`weft0`), the kernel route for the cluster network and flannel's
//! masquerade rules (`[host_link]`, `node.ipmasq`, as the lab's generated config says), shows
//! them in `weft status`, and removes exactly those when it exits. Namespaces `wnd<pid>-*`.
//!
//! Lab: n1 kernel flannel, n2 and n3 weft, one pod each (`198.19.<i>.2`), vxlan; n3 is started
//! by the test after a snapshot of its namespace; "the internet" is a host on the underlay
//! (198.18.0.200) that no node routes pods to. Checked, collecting every failure:
//! - the weft node's own processes reach its pod and the pods of the other weft node and of
//!   the kernel node, ICMP and TCP; so does the kernel node to the weft nodes' pods;
//! - pods reach every node's addresses (PublicIPs, the nodes' addresses in the pod network);
//! - a pod's TCP to the internet arrives from the node's PublicIP (masqueraded), to pods on
//!   other nodes from the pod's own address (never masqueraded);
//! - a kube-proxy-style nftables DNAT in n3's kernel (a "Service" address to n2's pod) works
//!   from n3's pod and from n3 itself;
//! - after weft exits, n3's links, addresses, routes and nftables ruleset are as before.

mod lab_common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Command;

use lab_common::*;
use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeSpec, cmd};

/// Every pod's echo server port.
const ECHO: u16 = 7000;
/// Every node's echo server port (on all its addresses).
const NODE_ECHO: u16 = 7001;
/// "The internet": a host on the underlay that is no node.
const INTERNET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 200);
/// The Service address kube-proxy would DNAT. In the underlay's /24 so that the node's own
/// route lookup (before the output hook's DNAT) finds a route: lab nodes have no default route.
const SERVICE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 201);
const SERVICE_PORT: u16 = 80;
/// Bytes per TCP transfer (echoed back and checked).
const BYTES: usize = 1 << 20;

fn pod_ip(node: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, node, 2)
}

/// A node's address in the pod network (the subnet's .0: flannel.1's on the kernel node,
/// weft0's on a weft node).
fn node_pod_net_ip(node: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, node, 0)
}

fn public_ip(node: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, node)
}

/// Starts a TCP echo server in `ns` on `listen`, waits until it listens; returns its log.
fn echo(lab: &mut Lab, ns: &str, listen: SocketAddrV4) -> PathBuf {
    echo_server(lab, ns, &listen.to_string())
}

/// `tcp-send` of [`BYTES`] from `ns` to `to`; `Err` names what failed.
fn tcp(ns: &str, to: SocketAddrV4, what: &str) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, WEFT_LAB, "tcp-send", "--bytes", &BYTES.to_string()])
        .args(["--to", &to.to_string()])
        .output()
        .unwrap();
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "TCP {what} ({to}): {}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// The source addresses an echo server saw, from its log.
fn sources(log: &PathBuf) -> Vec<Ipv4Addr> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("connection from "))
        .filter_map(|a| a.parse::<SocketAddrV4>().ok())
        .map(|a| *a.ip())
        .collect()
}

/// TCP from `ns` to an echo server whose log is `log`, then the source it saw; `Err` if the
/// transfer failed or the server saw no new connection.
fn seen_source(ns: &str, to: SocketAddrV4, log: &PathBuf, what: &str) -> Result<Ipv4Addr, String> {
    let before = sources(log).len();
    tcp(ns, to, what)?;
    sources(log).get(before).copied().ok_or_else(|| format!("{what}: the server logged no connection"))
}

/// What weft could leave behind in a node: its links, addresses, routes (every table),
/// nftables ruleset and IPv4 forwarding settings.
fn snapshot(ns: &str) -> String {
    let links: Vec<String> = cmd::ip_in(ns, &["-o", "link", "show"])
        .unwrap()
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_owned()))
        .collect();
    format!(
        "links {links:?}\naddresses\n{}routes\n{}nftables\n{}forwarding\n{}",
        cmd::ip_in(ns, &["-4", "-o", "addr", "show"]).unwrap(),
        cmd::ip_in(ns, &["-4", "route", "show", "table", "all"]).unwrap(),
        cmd::exec_in(ns, "nft", &["list", "ruleset"]).unwrap(),
        cmd::exec_in(ns, "sysctl", &["-a", "--pattern", "net.ipv4.(ip_forward|conf.*.forwarding)"]).unwrap()
    )
}

/// kube-proxy's part of a Service `SERVICE:SERVICE_PORT` backed by `backend`: DNAT for
/// traffic routed through the node (pods) and for the node's own.
fn install_service(ns: &str, backend: SocketAddrV4) {
    let rules = format!(
        "table ip kubeproxy {{\n\
           chain prerouting {{ type nat hook prerouting priority dstnat; ip daddr {SERVICE} tcp dport {SERVICE_PORT} dnat to {backend}; }}\n\
           chain output {{ type nat hook output priority -100; ip daddr {SERVICE} tcp dport {SERVICE_PORT} dnat to {backend}; }}\n\
         }}\n"
    );
    cmd::run_with_input("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(&rules)).unwrap();
}

/// n1 kernel flannel, n2 weft (running), n3 weft (prepared, not started), one pod each, vxlan.
fn lab() -> LabGuard {
    let spec = LabSpec {
        prefix: format!("wnd{}", std::process::id()),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend: Backend::Vxlan,
        nodes: vec![NodeSpec::kernel(WEFT_LAB), weft_node(), NodeSpec::weft(None)],
        pods_per_node: 1,
        uplink_mtu: 1500,
    };
    LabGuard::new(Lab::up(&spec).unwrap_or_else(|e| panic!("lab up: {e}")))
}

#[test]
fn a_weft_node_makes_its_host_link_routes_and_masquerade_itself_and_removes_them_on_exit() {
    if !have_root("a_weft_node_makes_its_host_link_routes_and_masquerade_itself_and_removes_them_on_exit") {
        return;
    }
    let mut lab = lab();
    let n3 = lab.node(3).ns.clone();
    install_service(&n3, SocketAddrV4::new(pod_ip(2), ECHO));
    let before = snapshot(&n3);
    start_weft(&mut lab, 3);
    wait_for_weft_routes(&lab);

    // What weft made, as status shows it and as the kernel has it.
    let status = wait_weft_ready(&lab, 3);
    let h = status.host_link.clone().expect("weft status shows the host link");
    assert_eq!(
        (h.interface.as_str(), h.engine_interface.as_str(), h.address.as_str(), h.mtu),
        ("weft0", "weft0e", "198.19.3.0/32", 1450),
        "{h:?}"
    );
    assert_eq!(h.routes, ["198.19.0.0/16 via 198.19.3.1 dev weft0 onlink src 198.19.3.0"], "{h:?}");
    assert!(h.masquerade, "{h:?}");
    let rules = h.rules.join("\n");
    for want in [
        "ip saddr 198.19.0.0/16 ip daddr 198.19.0.0/16 return",
        "ip saddr 198.19.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
    ] {
        assert!(rules.contains(want), "weft status of n3 lacks {want:?}:\n{rules}");
    }
    let during = snapshot(&n3);
    for want in ["weft0", "weft0e", "198.19.0.0/16 via 198.19.3.1 dev weft0", "table ip weft"] {
        assert!(during.contains(want), "n3 lacks {want:?} while weft runs:\n{during}");
    }

    let inet = lab.add_underlay_host("inet", INTERNET).unwrap();
    let internet_log = echo(&mut lab, &inet, SocketAddrV4::new(INTERNET, ECHO));
    let mut pod_logs = Vec::new();
    for i in 1..=3u8 {
        let pod = lab.pod(i.into(), 1).ns.clone();
        pod_logs.push(echo(&mut lab, &pod, SocketAddrV4::new(pod_ip(i), ECHO)));
        let node = lab.node(i.into()).ns.clone();
        echo(&mut lab, &node, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, NODE_ECHO));
    }

    let node_ns = |i: u8| lab.node(i.into()).ns.clone();
    let pod_ns = |i: u8| lab.pod(i.into(), 1).ns.clone();
    let mut pings = Vec::new();
    let mut problems = Vec::new();
    for w in [2u8, 3] {
        for i in 1..=3u8 {
            pings.push((node_ns(w), pod_ip(i), format!("node n{w} -> pod of n{i}")));
            let to = SocketAddrV4::new(pod_ip(i), ECHO);
            problems.extend(tcp(&node_ns(w), to, &format!("node n{w} -> pod of n{i}")).err());
            for addr in [public_ip(i), node_pod_net_ip(i)] {
                pings.push((pod_ns(w), addr, format!("pod of n{w} -> node n{i} {addr}")));
                let to = SocketAddrV4::new(addr, NODE_ECHO);
                problems.extend(tcp(&pod_ns(w), to, &format!("pod of n{w} -> node n{i}")).err());
            }
        }
        pings.push((node_ns(1), pod_ip(w), format!("kernel node n1 -> pod of n{w}")));
        pings.push((node_ns(1), node_pod_net_ip(w), format!("kernel node n1 -> n{w}'s weft0")));
        let to = SocketAddrV4::new(pod_ip(w), ECHO);
        problems.extend(tcp(&node_ns(1), to, &format!("kernel node n1 -> pod of n{w}")).err());
    }
    problems.extend(ping_all(&pings));

    // Masquerade: to the internet from the node's PublicIP, to pods from the pod itself.
    let to_internet = SocketAddrV4::new(INTERNET, ECHO);
    match seen_source(&pod_ns(3), to_internet, &internet_log, "pod of n3 -> internet") {
        Ok(src) if src == public_ip(3) => {}
        Ok(src) => {
            problems.push(format!("pod of n3 -> internet arrived from {src}, not n3's {}", public_ip(3)))
        }
        Err(e) => problems.push(e),
    }
    for i in [1u8, 2] {
        let to = SocketAddrV4::new(pod_ip(i), ECHO);
        match seen_source(&pod_ns(3), to, &pod_logs[usize::from(i - 1)], &format!("pod of n3 -> pod of n{i}"))
        {
            Ok(src) if src == pod_ip(3) => {}
            Ok(src) => problems.push(format!("pod of n3 -> pod of n{i} arrived from {src} (masqueraded)")),
            Err(e) => problems.push(e),
        }
    }

    // kube-proxy's DNAT in n3's kernel to n2's pod, from n3's pod and from n3 itself.
    let service = SocketAddrV4::new(SERVICE, SERVICE_PORT);
    problems.extend(tcp(&pod_ns(3), service, "pod of n3 -> Service (DNAT to the pod of n2)").err());
    problems.extend(tcp(&node_ns(3), service, "node n3 -> Service (DNAT to the pod of n2)").err());

    assert!(
        problems.is_empty(),
        "{} problems on weft node n3:\n  {}\nn3's status: {:#?}\nn3 now:\n{}",
        problems.len(),
        problems.join("\n  "),
        weft_status(&lab, 3),
        snapshot(&n3)
    );

    // Exit: n3's namespace is as weft found it.
    assert_eq!(lab.stop_node(3), 1, "weft ran on n3");
    let after = snapshot(&n3);
    assert_eq!(after, before, "weft left something in n3's namespace (before, then after)");
}
