//! BGP mode against BIRD 2 (SPEC §11): one kernel node runs BIRD configured as Calico renders
//! its node mesh (the node takes a flannel lease for its pod block but installs no routes
//! itself), two weft nodes run `[bgp]` and find their peers in etcd's leases. Every node
//! learns every other node's block over BGP: pods talk both ways by ICMP and TCP, BIRD lists
//! each weft subnet with that weft node as next hop and installs it in the kernel, and a
//! block BIRD stops announcing leaves weft's routes. Graceful restart: BIRD or weft killed
//! with SIGKILL and restarted, the other side keeps its routes meanwhile; weft stopped with
//! SIGTERM ends its sessions with a Cease and BIRD withdraws its block at once. Route reflection:
//! weft nodes that peer only with a BIRD route reflector learn each other through it.

mod lab_common;

use std::net::Ipv4Addr;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

use lab_common::*;
use weft_bench::lab::bird::{Bird, POD_BLOCK_PROTOCOL};
use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeKind, NodeSpec, Plan, cmd};

/// A kernel node that takes its lease and leaves routing to BIRD.
fn bird_node() -> NodeSpec {
    let mut spec = NodeSpec::kernel(WEFT_LAB);
    if let Some(argv) = spec.start.as_mut() {
        argv.push("--no-routes".into());
    }
    spec
}

/// Appends `[bgp]` (defaults: AS 64512, the mesh from etcd) to weft node `i`'s config.
fn enable_bgp(lab: &Lab, i: usize) {
    enable_bgp_with(lab, i, "");
}

/// Appends `[bgp]` with `keys` to weft node `i`'s config.
fn enable_bgp_with(lab: &Lab, i: usize, keys: &str) {
    let path = lab.node(i).config.clone().expect("a weft node has a config");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("\n[bgp]\n{keys}"));
    std::fs::write(&path, text).unwrap();
}

fn sessions_up(lab: &Lab, i: usize, peers: &[Ipv4Addr]) -> Result<(), String> {
    let s = weft_status(lab, i)?;
    let bgp = s.bgp.ok_or("no bgp section in status")?;
    for p in peers {
        let line =
            bgp.sessions.iter().find(|l| l.peer == p.to_string()).ok_or(format!("no session with {p}"))?;
        if line.state != "Established" || line.prefixes_in != 1 || line.prefixes_out != 1 {
            return Err(format!("n{i} session with {p}: {line:?}"));
        }
    }
    Ok(())
}

fn lab_spec() -> LabSpec {
    LabSpec {
        prefix: prefix(),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend: Backend::HostGw,
        nodes: vec![bird_node(), NodeSpec::weft(None), NodeSpec::weft(None)],
        pods_per_node: 1,
        uplink_mtu: 1500,
    }
}

/// The lab of the module docs, returned once every BGP session is Established with one
/// prefix each way.
fn bgp_lab() -> (LabGuard, Bird) {
    let mut lab = LabGuard::new(Lab::up(&lab_spec()).unwrap_or_else(|e| panic!("lab up: {e}")));
    let (n1, n2, n3) = (lab.node(1).clone(), lab.node(2).clone(), lab.node(3).clone());
    assert_eq!(n1.kind, NodeKind::Kernel);
    let bird = Bird::start(&mut lab, 1, &[n2.public_ip, n3.public_ip], 64512).unwrap();
    for i in [2, 3] {
        enable_bgp(&lab, i);
        start_weft(&mut lab, i);
    }
    wait_weft_ready(&lab, 2);
    wait_weft_ready(&lab, 3);

    wait_sessions(&lab);
    (lab, bird)
}

/// Waits (up to 30 s) until both weft nodes have their two sessions Established.
fn wait_sessions(lab: &Lab) {
    let (n1, n2, n3) = (lab.node(1).public_ip, lab.node(2).public_ip, lab.node(3).public_ip);
    let mut last = String::new();
    let up = eventually(Duration::from_secs(30), || {
        match sessions_up(lab, 2, &[n1, n3]).and(sessions_up(lab, 3, &[n1, n2])) {
            Ok(()) => true,
            Err(e) => {
                last = e;
                false
            }
        }
    });
    assert!(up, "BGP sessions not all Established with one prefix each way: {last}");
}

/// SIGKILLs the last process the lab started under `name`.
fn kill_hard(lab: &Lab, name: &str) {
    let p = lab.state().processes.iter().rev().find(|p| p.name == name).expect(name);
    kill(Pid::from_raw(p.pid), Signal::SIGKILL).unwrap();
}

#[test]
fn weft_nodes_and_a_bird_node_exchange_pod_routes_over_bgp_and_pods_talk_both_ways() {
    if !have_root("weft_nodes_and_a_bird_node_exchange_pod_routes_over_bgp_and_pods_talk_both_ways") {
        return;
    }
    let (mut lab, bird) = bgp_lab();
    let (n1, n2, n3) = (lab.node(1).clone(), lab.node(2).clone(), lab.node(3).clone());

    // BIRD learned each weft node's block with that node as next hop, and put it in the kernel.
    for n in [&n2, &n3] {
        assert!(
            eventually(Duration::from_secs(10), || bird.next_hops(n.subnet) == vec![n.public_ip]),
            "birdc show route for {}: {:?}\n{}",
            n.subnet,
            bird.next_hops(n.subnet),
            bird.birdc(&["show", "route"]).unwrap_or_default()
        );
        let route = cmd::ip_in(&n1.ns, &["route", "show", "exact", &n.subnet.to_string()]).unwrap();
        assert!(
            route.contains(&format!("via {}", n.public_ip)) && route.contains("proto bird"),
            "n1's kernel route to {}: {route:?}",
            n.subnet
        );
    }
    // weft installed the BIRD node's block and the other weft node's as direct routes.
    let routes = weft_status(&lab, 2).unwrap().routes;
    for (subnet, via) in [(n1.subnet, n1.public_ip), (n3.subnet, n3.public_ip)] {
        let r =
            routes.iter().find(|r| r.subnet == subnet.to_string()).unwrap_or_else(|| panic!("{routes:?}"));
        assert_eq!((r.kind.as_str(), r.node_ip.clone()), ("host-gw", via.to_string()));
    }

    let (a, b, c) = (lab.pod(1, 1).clone(), lab.pod(2, 1).clone(), lab.pod(3, 1).clone());
    for (from, to) in [(&a, &b), (&b, &a), (&a, &c), (&c, &a), (&b, &c), (&c, &b)] {
        assert!(ping(&from.ns, to.ip, 3), "ping pod {} -> {}", from.ip, to.ip);
    }
    tcp_echo_works(&mut lab, &a.ns, &b.ns, b.ip, 7101, 1 << 20);
    tcp_echo_works(&mut lab, &b.ns, &a.ns, a.ip, 7102, 1 << 20);
    tcp_echo_works(&mut lab, &c.ns, &b.ns, b.ip, 7103, 1 << 20);

    // BIRD stops announcing its block: both weft nodes withdraw the route; back on, it returns.
    let n1_block = n1.subnet.to_string();
    let t0 = std::time::Instant::now();
    bird.birdc(&["disable", POD_BLOCK_PROTOCOL]).unwrap();
    for i in [2, 3] {
        assert!(
            eventually(Duration::from_secs(10), || !weft_routes(&lab, i).contains(&n1_block)),
            "n{i} still routes {n1_block} after BIRD withdrew it: {:?}",
            weft_routes(&lab, i)
        );
    }
    let withdrawn = t0.elapsed();
    assert!(!ping(&b.ns, a.ip, 1), "pod {} still reaches withdrawn {}", b.ip, a.ip);
    let t0 = std::time::Instant::now();
    bird.birdc(&["enable", POD_BLOCK_PROTOCOL]).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || weft_routes(&lab, 2).contains(&n1_block)),
        "n2 did not learn {n1_block} again"
    );
    // Seen through `weft status` polled every 100 ms: an upper bound, not a benchmark.
    eprintln!(
        "BIRD withdraw -> both weft FIBs without the route: {} ms; announce -> n2's FIB: {} ms",
        withdrawn.as_millis(),
        t0.elapsed().as_millis()
    );
    assert!(ping(&b.ns, a.ip, 3), "pod {} -> {} after the block came back", b.ip, a.ip);
}

#[test]
fn graceful_restart_keeps_routes_on_both_sides_while_bird_or_weft_is_killed_and_restarted() {
    if !have_root("graceful_restart_keeps_routes_on_both_sides_while_bird_or_weft_is_killed_and_restarted") {
        return;
    }
    let (mut lab, _) = bgp_lab();
    let (n1, n2, n3) = (lab.node(1).clone(), lab.node(2).clone(), lab.node(3).clone());
    let (a, b) = (lab.pod(1, 1).clone(), lab.pod(2, 1).clone());
    let n1_block = n1.subnet.to_string();

    // BIRD dies: weft keeps BIRD's block (BIRD announced a 120 s restart time) and BIRD's
    // kernel routes persist, so pods keep talking both ways while no BIRD runs.
    kill_hard(&lab, "n1 bird");
    assert!(
        eventually(Duration::from_secs(10), || sessions_up(&lab, 2, &[n1.public_ip]).is_err()),
        "n2's session with the killed BIRD stays up"
    );
    assert!(weft_routes(&lab, 2).contains(&n1_block), "n2 dropped {n1_block} while BIRD restarts");
    assert!(ping(&b.ns, a.ip, 3) && ping(&a.ns, b.ip, 3), "pods {} <-> {} during BIRD's restart", a.ip, b.ip);
    let bird = Bird::start(&mut lab, 1, &[n2.public_ip, n3.public_ip], 64512).unwrap();
    wait_sessions(&lab);
    assert!(weft_routes(&lab, 2).contains(&n1_block));

    // weft dies: BIRD keeps weft's block as stale (weft announced graceful restart) instead
    // of withdrawing it; after the restart the session and the pods' path come back.
    kill_hard(&lab, &Plan::node_process(2, NodeKind::Weft));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        bird.next_hops(n2.subnet),
        vec![n2.public_ip],
        "BIRD withdrew {} within the restart time",
        n2.subnet
    );
    let route = cmd::ip_in(&n1.ns, &["route", "show", "exact", &n2.subnet.to_string()]).unwrap();
    assert!(route.contains(&format!("via {}", n2.public_ip)), "n1's kernel lost {}: {route:?}", n2.subnet);
    start_weft(&mut lab, 2);
    wait_weft_ready(&lab, 2);
    wait_sessions(&lab);
    assert!(ping(&a.ns, b.ip, 3) && ping(&b.ns, a.ip, 3), "pods {} <-> {} after weft's restart", a.ip, b.ip);

    // weft stops (SIGTERM): it ends its sessions with a Cease (Administrative Shutdown), so
    // BIRD withdraws its block at once rather than keeping it for the restart time.
    let p =
        lab.state().processes.iter().rev().find(|p| p.name == Plan::node_process(2, NodeKind::Weft)).cloned();
    kill(Pid::from_raw(p.expect("n2's weft").pid), Signal::SIGTERM).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || bird.next_hops(n2.subnet).is_empty()),
        "BIRD kept {} after weft stopped: {:?}",
        n2.subnet,
        bird.next_hops(n2.subnet)
    );
    let protocols = bird.birdc(&["show", "protocols", "all"]).unwrap_or_default();
    assert!(
        protocols.contains("Administrative shutdown"),
        "BIRD does not show the Cease it received:\n{protocols}"
    );
}

#[test]
fn weft_nodes_peering_only_with_a_bird_route_reflector_learn_each_other_through_it() {
    if !have_root("weft_nodes_peering_only_with_a_bird_route_reflector_learn_each_other_through_it") {
        return;
    }
    let mut lab = LabGuard::new(Lab::up(&lab_spec()).unwrap_or_else(|e| panic!("lab up: {e}")));
    let (n1, n2, n3) = (lab.node(1).clone(), lab.node(2).clone(), lab.node(3).clone());
    let rr = Bird::start_reflector(&mut lab, 1, &[n2.public_ip, n3.public_ip], 64512).unwrap();
    for i in [2, 3] {
        enable_bgp_with(&lab, i, &format!("peers = [\"{}\"]\n", n1.public_ip));
        start_weft(&mut lab, i);
    }
    for (i, other) in [(2, &n3), (3, &n2)] {
        wait_weft_ready(&lab, i);
        let mut last = String::new();
        let learned = eventually(Duration::from_secs(30), || {
            let Ok(s) = weft_status(&lab, i) else { return false };
            let sessions = s.bgp.map(|b| b.sessions).unwrap_or_default();
            last = format!("{sessions:?} {:?}", s.routes);
            let only_rr = sessions.len() == 1 && sessions[0].peer == n1.public_ip.to_string();
            let up = only_rr && sessions[0].state == "Established" && sessions[0].prefixes_in == 2;
            // The reflector leaves the next hop alone: the route goes straight to the node.
            up && s.routes.iter().any(|r| {
                r.subnet == other.subnet.to_string()
                    && r.kind == "host-gw"
                    && r.node_ip == other.public_ip.to_string()
            })
        });
        assert!(
            learned,
            "n{i} did not learn {} via the reflector: {last}\n{}\n{}",
            other.subnet,
            rr.birdc(&["show", "route", "all"]).unwrap_or_default(),
            rr.birdc(&["show", "protocols", "all"]).unwrap_or_default()
        );
    }
    let (a, b, c) = (lab.pod(1, 1).clone(), lab.pod(2, 1).clone(), lab.pod(3, 1).clone());
    for (from, to) in [(&b, &c), (&c, &b), (&a, &b), (&b, &a)] {
        assert!(ping(&from.ns, to.ip, 3), "ping pod {} -> {}", from.ip, to.ip);
    }
    tcp_echo_works(&mut lab, &b.ns, &c.ns, c.ip, 7201, 1 << 20);
}
