//! End-to-end checks through weft nodes: labs whose weft nodes run the real `weft`
//! daemon, pod traffic in every direction, the node's own traffic beside weft, and what the
//! underlay carried, recorded with tcpdump.
//!
//! A scenario collects every problem it finds (a failed ping, a transfer, a wrong frame on
//! the wire, a path counter) and fails once with the whole list, so a failure shows its
//! pattern (one direction, one node, one kind of frame) rather than the first symptom.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use weft_bench::lab::capture::{Capture, Seen};
use weft_bench::lab::supervise::wait_for;
use weft_bench::lab::topology::{DEFAULT_STATE_ROOT, ETCD_IP, ETCD_PORT, ETCD_PREFIX, POD_NETWORK};
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeKind, NodeSpec, NodeState, Plan, PodState};

use super::{WEFT_LAB, prefix};

/// The `weft` binary under test (control/src/bin/weft.rs, built under weft-bench as
/// `lab-weft`; see bench/Cargo.toml).
pub const WEFT: &str = env!("CARGO_BIN_EXE_lab-weft");

/// flannel's kernel VXLAN port, which the lab's network config names.
pub const VXLAN_PORT: u16 = 8472;

/// How long weft nodes get to route each other after `up`.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes per TCP transfer (echoed back and checked).
pub const TCP_BYTES: usize = 3 << 20;

/// The port every pod's echo server listens on.
const ECHO_PORT: u16 = 7000;

/// A subnet no lab node holds, for a lease the test writes to etcd itself.
const PROBE_SUBNET: &str = "198.19.200.0/24";
/// The PublicIP of that lease (no node answers there).
const PROBE_PUBLIC_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 200);

/// What pod traffic between nodes must look like on the underlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// VXLAN, UDP 8472, VNI 1, between the nodes' PublicIPs.
    Vxlan,
    /// IP protocol 4 between the nodes' PublicIPs.
    Ipip,
    /// The pods' own packets, unencapsulated (host-gw; DirectRouting on one L2 segment).
    Bare,
}

impl Wire {
    /// What `backend` puts on the lab's underlay, where every node shares one L2 segment.
    pub fn of(backend: Backend) -> Wire {
        match backend {
            Backend::Vxlan => Wire::Vxlan,
            Backend::Ipip => Wire::Ipip,
            Backend::HostGw | Backend::VxlanDirectRouting => Wire::Bare,
            Backend::WireGuard => panic!("WireGuard's wire is encrypted: lab_wireguard.rs checks it itself"),
        }
    }

    /// The pipeline path a weft node counts a pod packet it sends to a peer this way on.
    fn send_path(self) -> &'static str {
        match self {
            Wire::Vxlan => "vxlan_encap",
            Wire::Ipip => "ipip_encap",
            Wire::Bare => "direct",
        }
    }

    /// The pipeline path a weft node counts a pod packet arriving this way on.
    fn receive_path(self) -> &'static str {
        match self {
            Wire::Vxlan => "vxlan_decap",
            Wire::Ipip => "ipip_decap",
            Wire::Bare => "host_gw_arrival",
        }
    }
}

/// Every pipeline path between a pod and another node.
const REMOTE_PATHS: [&str; 6] =
    ["vxlan_encap", "vxlan_decap", "ipip_encap", "ipip_decap", "direct", "host_gw_arrival"];

/// What pod traffic from node `a` to node `b` (indices) must look like on the underlay.
pub type WireOf<'a> = &'a dyn Fn(usize, usize) -> Wire;

/// A weft node that runs the daemon under test with its generated config.
pub fn weft_node() -> NodeSpec {
    NodeSpec::weft(Some(vec![WEFT.into(), "run".into(), "--config".into(), "{config}".into()]))
}

/// A lab of `nodes`, `pods` pods each (no waiting for weft nodes).
pub fn lab_of(backend: Backend, nodes: Vec<NodeSpec>, pods: usize) -> LabGuard {
    let spec = LabSpec {
        prefix: prefix(),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend,
        nodes,
        pods_per_node: pods,
        uplink_mtu: 1500,
    };
    LabGuard::new(Lab::up(&spec).unwrap_or_else(|e| panic!("lab up: {e}")))
}

/// A lab with one node per entry of `kinds` (kernel-flannel agents and weft daemons), `pods`
/// pods each, returned once every node routes every other node's subnet.
pub fn e2e_lab(backend: Backend, kinds: &[NodeKind], pods: usize) -> LabGuard {
    let nodes = kinds
        .iter()
        .map(|k| match k {
            NodeKind::Kernel => NodeSpec::kernel(WEFT_LAB),
            NodeKind::Weft => weft_node(),
        })
        .collect();
    let lab = lab_of(backend, nodes, pods);
    wait_for_weft_routes(&lab);
    lab
}

/// Waits until every weft node routes every other node (panics naming the node otherwise).
pub fn wait_for_weft_routes(lab: &Lab) {
    if let Err(e) = lab.wait_weft_routes(CONVERGE_TIMEOUT) {
        panic!("{e}");
    }
}

/// Starts the weft daemon on prepared weft node `i` with its generated config.
pub fn start_weft(lab: &mut Lab, i: usize) {
    let node = lab.node(i).clone();
    let config = node.config.expect("a weft node has a config").display().to_string();
    let argv = [WEFT.to_owned(), "run".into(), "--config".into(), config];
    lab.spawn(&node.ns, &Plan::node_process(i, NodeKind::Weft), &argv).unwrap();
}

/// Every pod of the lab with its node's index.
fn pods(lab: &Lab) -> Vec<(usize, PodState)> {
    lab.state().nodes.iter().flat_map(|n| n.pods.iter().map(|p| (n.index, p.clone()))).collect()
}

/// Pings `to` from namespace `ns` for every `(ns, to, what)` at once; returns what failed.
/// A ping succeeds when 3 echoes come back within 8 s (ping keeps sending until then, so a
/// first packet lost to neighbour resolution is made up for).
pub fn ping_all(targets: &[(String, Ipv4Addr, String)]) -> Vec<String> {
    let children: Vec<_> = targets
        .iter()
        .map(|(ns, to, what)| {
            let child = Command::new("ip")
                .args(["netns", "exec", ns, "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-w", "8"])
                .arg(to.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("starting ping for {what}: {e}"));
            (child, what)
        })
        .collect();
    let mut failed = Vec::new();
    for (child, what) in children {
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("waiting for ping ({what}): {e}"));
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            let summary = text.lines().find(|l| l.contains("transmitted")).unwrap_or("no summary");
            failed.push(format!("ICMP {what}: {summary} {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
    }
    failed
}

/// ICMP between every ordered pair of pods (same node and across nodes), all at once.
pub fn ping_every_pod_pair(lab: &Lab) -> Vec<String> {
    let pods = pods(lab);
    let mut targets = Vec::new();
    for (i, a) in &pods {
        for (j, b) in pods.iter().filter(|(_, b)| b.ip != a.ip) {
            targets.push((a.ns.clone(), b.ip, format!("pod {} (n{i}) -> pod {} (n{j})", a.ip, b.ip)));
        }
    }
    ping_all(&targets)
}

/// The TCP transfers that cover every direction: every ordered pair of nodes once, and both
/// ways between pods 1 and 2 of every node. Pairs of (node, pod) indices, sender first. Node
/// i talks to the node `d` places after it (cyclically) from its pod `d` and to that node's
/// pod `d` (modulo the pods), so with 3 nodes of 2 pods every pod sends once and receives
/// once across nodes.
pub fn tcp_covering_set(nodes: usize, pods: usize) -> Vec<((usize, usize), (usize, usize))> {
    let mut pairs = Vec::new();
    for i in 1..=nodes {
        for j in (1..=nodes).filter(|&j| j != i) {
            let pod = 1 + ((j + nodes - i) % nodes - 1) % pods;
            pairs.push(((i, pod), (j, pod)));
        }
        if pods >= 2 {
            pairs.push(((i, 1), (i, 2)));
            pairs.push(((i, 2), (i, 1)));
        }
    }
    pairs
}

/// Starts an echo server in every pod, then runs [`tcp_covering_set`]: each transfer sends
/// `bytes` and checks the echo. Returns the transfers that failed.
pub fn tcp_in_every_direction(lab: &mut Lab, bytes: usize) -> Vec<String> {
    for (_, pod) in pods(lab) {
        let listen = format!("{}:{ECHO_PORT}", pod.ip);
        super::echo_server(lab, &pod.ns, &listen);
    }
    let pods_per_node = lab.node(1).pods.len();
    let mut failed = Vec::new();
    for ((i, k), (j, l)) in tcp_covering_set(lab.state().nodes.len(), pods_per_node) {
        let (from, to) = (lab.pod(i, k), lab.pod(j, l));
        let out = Command::new("ip")
            .args(["netns", "exec", &from.ns, WEFT_LAB, "tcp-send", "--bytes", &bytes.to_string()])
            .args(["--to", &format!("{}:{ECHO_PORT}", to.ip)])
            .output()
            .unwrap();
        if !out.status.success() {
            failed.push(format!(
                "TCP pod {} (n{i}) -> pod {} (n{j}): {}{}",
                from.ip,
                to.ip,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    failed
}

/// The node's own traffic goes through the kernel beside weft: every weft node pings etcd
/// and the next node's PublicIP, and is pinged by it.
pub fn node_traffic_beside_weft(lab: &Lab) -> Vec<String> {
    let nodes = &lab.state().nodes;
    let mut targets = Vec::new();
    for (at, node) in nodes.iter().enumerate().filter(|(_, n)| n.kind == NodeKind::Weft) {
        let next = &nodes[(at + 1) % nodes.len()];
        let me = format!("n{} {:?}", node.index, node.kind);
        let peer = format!("n{} {:?}", next.index, next.kind);
        targets.push((node.ns.clone(), ETCD_IP, format!("node {me} -> etcd {ETCD_IP}")));
        targets.push((
            node.ns.clone(),
            next.public_ip,
            format!("node {me} -> node {peer} {}", next.public_ip),
        ));
        targets.push((
            next.ns.clone(),
            node.public_ip,
            format!("node {peer} -> node {me} {}", node.public_ip),
        ));
    }
    ping_all(&targets)
}

/// Writes a lease for [`PROBE_SUBNET`] to etcd, waits until every weft node routes it, deletes
/// it and waits until every weft node dropped the route: the daemons' etcd watch (TCP to
/// etcd through the kernel, beside weft) works while weft is attached.
pub fn a_lease_reaches_every_weft_node_and_leaves(lab: &Lab) -> Vec<String> {
    let subnet: Ipv4Net = PROBE_SUBNET.parse().unwrap();
    let key = format!("{ETCD_PREFIX}/subnets/{}-{}", subnet.network(), subnet.prefix_len());
    let backend = lab.state().backend;
    let data = match backend {
        Backend::Vxlan | Backend::VxlanDirectRouting => {
            r#","BackendData":{"VNI":1,"VtepMAC":"0a:58:c6:12:00:c8"}"#
        }
        Backend::HostGw | Backend::Ipip => "",
        Backend::WireGuard => {
            r#","BackendData":{"PublicKey":"GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=","Port":51820}"#
        }
    };
    let lease = format!(
        r#"{{"PublicIP":"{PROBE_PUBLIC_IP}","PublicIPv6":null,"BackendType":"{}"{data}}}"#,
        backend.flannel_name()
    );
    let weft: Vec<usize> =
        lab.state().nodes.iter().filter(|n| n.kind == NodeKind::Weft).map(|n| n.index).collect();
    let routes =
        |i: usize| lab.weft_status(i).is_ok_and(|s| s.routes.iter().any(|r| r.subnet == subnet.to_string()));
    let mut failed = Vec::new();
    lab.etcdctl(&["put", &key, &lease]).unwrap();
    for &i in &weft {
        if wait_for("the probe lease's route", Duration::from_secs(10), || routes(i)).is_err() {
            failed.push(format!("weft node n{i} did not route the lease {key} put in etcd"));
        }
    }
    lab.etcdctl(&["del", &key]).unwrap();
    for &i in &weft {
        if wait_for("the probe lease's route to go", Duration::from_secs(10), || !routes(i)).is_err() {
            failed.push(format!("weft node n{i} still routes {subnet} after its lease was deleted"));
        }
    }
    failed
}

/// Which node holds `ip` (a pod address) or has it as PublicIP.
fn node_of(nodes: &[NodeState], ip: Ipv4Addr) -> Option<&NodeState> {
    nodes.iter().find(|n| n.subnet.contains(&ip) || n.public_ip == ip)
}

/// The (sender, receiver) node indices of an encapsulated pod frame, if its outer addresses
/// are the PublicIPs of the nodes that hold its inner source and destination.
fn encapsulated_between(
    nodes: &[NodeState],
    outer: (Ipv4Addr, Ipv4Addr),
    inner: (Ipv4Addr, Ipv4Addr),
) -> Option<(usize, usize)> {
    let (from, to) = (node_of(nodes, inner.0)?, node_of(nodes, inner.1)?);
    ((from.public_ip, to.public_ip) == outer).then_some((from.index, to.index))
}

/// Checks the underlay capture: pod traffic from node a to node b only in the form
/// `wire_of(a, b)` (encapsulated between the PublicIPs of the nodes that hold the inner
/// addresses), every ordered pair of nodes seen, and every weft node's TCP with etcd in both
/// directions. Returns the problems, identical ones counted; `summary` gets what was seen.
pub fn check_underlay(seen: &[Seen], lab: &Lab, wire_of: WireOf<'_>, summary: &mut String) -> Vec<String> {
    let nodes = &lab.state().nodes;
    let pod = |ip: &Ipv4Addr| POD_NETWORK.contains(ip);
    let mut problems: BTreeMap<String, usize> = BTreeMap::new();
    let mut problem = |p: String| *problems.entry(p).or_default() += 1;
    // (sender node, receiver node) -> pod frames between them in the expected form.
    let mut pairs: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in seen {
        // The form and the nodes of a pod frame, or what is wrong with it.
        let observed: Result<(Wire, usize, usize), String> = match *s {
            Seen::Vxlan { outer_src, outer_dst, port, vni, inner } => {
                *counts.entry("vxlan").or_default() += 1;
                match inner {
                    Some(inner) if port == VXLAN_PORT && vni == 1 => encapsulated_between(
                        nodes,
                        (outer_src, outer_dst),
                        inner,
                    )
                    .map(|(f, t)| (Wire::Vxlan, f, t))
                    .ok_or_else(|| {
                        format!(
                            "VXLAN {outer_src} -> {outer_dst} carrying {} -> {} (not between their nodes)",
                            inner.0, inner.1
                        )
                    }),
                    _ => Err(format!(
                        "VXLAN {outer_src} -> {outer_dst} port {port} VNI {vni} inner {inner:?} (want 8472, VNI 1, IPv4 inside)"
                    )),
                }
            }
            Seen::Ipip { outer_src, outer_dst, inner } => {
                *counts.entry("ipip").or_default() += 1;
                match inner {
                    Some(inner) => encapsulated_between(nodes, (outer_src, outer_dst), inner)
                        .map(|(f, t)| (Wire::Ipip, f, t))
                        .ok_or_else(|| {
                            format!(
                                "IPIP {outer_src} -> {outer_dst} carrying {} -> {} (not between their nodes)",
                                inner.0, inner.1
                            )
                        }),
                    None => Err(format!("IPIP {outer_src} -> {outer_dst} without IPv4 inside")),
                }
            }
            Seen::Ipv4 { src, dst, udp_port: Some(VXLAN_PORT), .. } => {
                Err(format!("UDP {VXLAN_PORT} {src} -> {dst} that is not VXLAN"))
            }
            Seen::Ipv4 { src, dst, protocol, .. } if pod(&src) || pod(&dst) => {
                *counts.entry("bare pod").or_default() += 1;
                match (node_of(nodes, src), node_of(nodes, dst)) {
                    (Some(f), Some(t)) if pod(&src) && pod(&dst) => Ok((Wire::Bare, f.index, t.index)),
                    _ => Err(format!("bare pod packet {src} -> {dst} protocol {protocol}")),
                }
            }
            Seen::Ipv4 { .. } => {
                *counts.entry("other IPv4").or_default() += 1;
                continue;
            }
            Seen::Arp => {
                *counts.entry("arp").or_default() += 1;
                continue;
            }
            Seen::Other(_) => {
                *counts.entry("other").or_default() += 1;
                continue;
            }
        };
        match observed {
            Ok((_, f, t)) if f == t => problem(format!("pod traffic within n{f} on the underlay")),
            Ok((w, f, t)) if w != wire_of(f, t) => {
                problem(format!("{w:?} pod traffic from n{f} to n{t} (want {:?})", wire_of(f, t)))
            }
            Ok((_, f, t)) => *pairs.entry((f, t)).or_default() += 1,
            Err(p) => problem(p),
        }
    }
    for a in nodes {
        for b in nodes.iter().filter(|b| b.index != a.index) {
            if !pairs.contains_key(&(a.index, b.index)) {
                let want = wire_of(a.index, b.index);
                problem(format!("no {want:?} pod traffic from n{} to n{} on the underlay", a.index, b.index));
            }
        }
    }
    // TCP from `x` to `y` with destination port `to` (0: any) and source port `from` (0: any).
    let tcp = |x: Ipv4Addr, y: Ipv4Addr, from: u16, to: u16| {
        seen.iter().any(|s| {
            matches!(*s, Seen::Ipv4 { src, dst, tcp_ports: Some((sp, dp)), .. }
                if src == x && dst == y && (from == 0 || sp == from) && (to == 0 || dp == to))
        })
    };
    for n in nodes.iter().filter(|n| n.kind == NodeKind::Weft) {
        if !tcp(n.public_ip, ETCD_IP, 0, ETCD_PORT) || !tcp(ETCD_IP, n.public_ip, ETCD_PORT, 0) {
            problem(format!(
                "no TCP both ways between weft node n{} and etcd ({ETCD_IP}:{ETCD_PORT}) on the underlay",
                n.index
            ));
        }
    }
    *summary = format!("{} frames: {counts:?}; pod frames per node pair: {pairs:?}", seen.len());
    problems.into_iter().map(|(p, n)| if n > 1 { format!("{p} (x{n})") } else { p }).collect()
}

/// Every weft node used the pipeline paths its peers need (`wire_of` both ways, and
/// `local`) and no other remote path.
pub fn check_paths(lab: &Lab, wire_of: WireOf<'_>) -> Vec<String> {
    let nodes = &lab.state().nodes;
    let mut problems = Vec::new();
    for n in nodes.iter().filter(|n| n.kind == NodeKind::Weft) {
        let status = match lab.weft_status(n.index) {
            Ok(s) => s,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let mut used = vec!["local"];
        for peer in nodes.iter().filter(|p| p.index != n.index) {
            used.push(wire_of(n.index, peer.index).send_path());
            used.push(wire_of(peer.index, n.index).receive_path());
        }
        let count = |name: &str| status.paths.iter().find(|p| p.reason == name).map(|p| p.count);
        for name in &used {
            if count(name).unwrap_or(0) == 0 {
                problems.push(format!("weft node n{}: path {name} unused ({:?})", n.index, count(name)));
            }
        }
        for name in REMOTE_PATHS.iter().filter(|p| !used.contains(p)) {
            if count(name).is_some_and(|c| c > 0) {
                problems.push(format!("weft node n{}: path {name} used {:?} times", n.index, count(name)));
            }
        }
    }
    problems
}

/// The whole end-to-end scenario on a lab of `kinds` nodes with 2 pods each, every pair of
/// nodes talking `backend`'s wire format: see [`pods_talk_in_every_direction`].
pub fn pods_talk_through_weft(backend: Backend, kinds: &[NodeKind]) {
    let started = Instant::now();
    let lab = e2e_lab(backend, kinds, 2);
    let what = format!("{} {kinds:?}", backend.lab_name());
    pods_talk_in_every_direction(lab, &what, started, &|_, _| Wire::of(backend));
}

/// ICMP between every pair of pods, TCP in every direction, the weft nodes' own traffic beside
/// weft and their etcd watch, all while tcpdump records the underlay; then the capture and
/// every weft node's path counters are checked against `wire_of`. Panics with every problem
/// found.
pub fn pods_talk_in_every_direction(mut lab: LabGuard, what: &str, started: Instant, wire_of: WireOf<'_>) {
    let up = started.elapsed();
    let capture = Capture::start(&mut lab, "underlay").unwrap();
    let mut problems = ping_every_pod_pair(&lab);
    problems.extend(tcp_in_every_direction(&mut lab, TCP_BYTES));
    problems.extend(node_traffic_beside_weft(&lab));
    problems.extend(a_lease_reaches_every_weft_node_and_leaves(&lab));
    let seen = capture.finish(&[VXLAN_PORT]).unwrap();
    let mut summary = String::new();
    problems.extend(check_underlay(&seen, &lab, wire_of, &mut summary));
    // The same capture must fail a check for one other format everywhere, or it shows nothing.
    for other in [Wire::Vxlan, Wire::Ipip, Wire::Bare] {
        let n = lab.state().nodes.len();
        let all_pairs_are = |w: Wire| (1..=n).all(|a| (1..=n).all(|b| a == b || wire_of(a, b) == w));
        if !all_pairs_are(other) && check_underlay(&seen, &lab, &|_, _| other, &mut String::new()).is_empty()
        {
            problems
                .push(format!("the underlay capture passes as {other:?} everywhere too: it shows nothing"));
        }
    }
    problems.extend(check_paths(&lab, wire_of));
    eprintln!("{what}: lab up in {up:.1?}, whole scenario {:.1?}; underlay: {summary}", started.elapsed());
    if !problems.is_empty() {
        let first_weft = lab.state().nodes.iter().find(|n| n.kind == NodeKind::Weft).map_or(1, |n| n.index);
        let status = lab.weft_status(first_weft);
        panic!(
            "{} problems through weft ({what}):\n  {}\nweft node n{first_weft}'s status: {status:#?}",
            problems.len(),
            problems.join("\n  ")
        );
    }
}
