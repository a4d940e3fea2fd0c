//! Faults against the real thing (SPEC §7): a lab of weft nodes and a kernel-flannel node
//! sharing one etcd, and what an operator would see when etcd stops for a while, when a node
//! is removed, and when weft restarts.
//!
//! Every lab here is n1 = kernel flannel (flannel.1 VXLAN), n2 and n3 = `weft run`, one pod
//! each, vxlan; pod k of node i is `198.19.<i>.2`.

mod lab_common;

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab_common::*;
use weft_bench::lab::topology::ETCD_PREFIX;
use weft_bench::lab::up::has_route;
use weft_bench::lab::weft_config::vtep_mac;
use weft_bench::lab::{Lab, LabGuard, cmd};

const ECHO_PORT: u16 = 7000;

fn pod_ip(node: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, node, 2)
}

fn subnet_key(subnet: &str) -> String {
    format!("{ETCD_PREFIX}/subnets/{}", subnet.replace('/', "-"))
}

/// Waits until weft nodes 2 and 3 both answer and route each other's and n1's subnet, and
/// pods reach each other across the three nodes (which also resolves underlay neighbours).
fn converged(lab: &Lab) {
    for (i, others) in [(2, ["198.19.1.0/24", "198.19.3.0/24"]), (3, ["198.19.1.0/24", "198.19.2.0/24"])] {
        wait_weft_ready(lab, i);
        let routed = eventually(Duration::from_secs(20), || {
            let routes = weft_routes(lab, i);
            others.iter().all(|o| routes.iter().any(|r| r == o))
        });
        assert!(routed, "n{i} routes {:?}, expected {others:?}", weft_routes(lab, i));
    }
    for (from, to) in [(2, 3), (3, 2), (1, 3), (2, 1)] {
        let ns = lab.pod(from, 1).ns.clone();
        assert!(
            eventually(Duration::from_secs(10), || ping(&ns, pod_ip(to), 1)),
            "n{from} pod -> n{to} pod before the fault"
        );
    }
}

/// Starts a TCP echo server in node `i`'s pod.
fn pod_echo_server(lab: &mut Lab, i: u8) {
    let ns = lab.pod(i.into(), 1).ns.clone();
    echo_server(lab, &ns, &format!("{}:{ECHO_PORT}", pod_ip(i)));
}

/// `weft-lab tcp-send --secs secs --mbit mbit` from node `from`'s pod to node `to`'s echo
/// server, running in the background.
fn stream(lab: &Lab, from: u8, to: u8, secs: u32, mbit: u32) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &lab.pod(from.into(), 1).ns, WEFT_LAB, "tcp-send", "--to"])
        .arg(format!("{}:{ECHO_PORT}", pod_ip(to)))
        .args(["--secs", &secs.to_string(), "--mbit", &mbit.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a stream; returns its longest stall, panicking with its output if it failed.
fn finished(child: Child, what: &str) -> Duration {
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what}: the stream broke: {text}");
    eprintln!("{what}: {}", text.trim());
    let ms = text
        .split("longest stall ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no longest stall in {text:?}"));
    Duration::from_millis(ms)
}

/// The lab every test here starts from, converged; `None` (skipped loudly) without root.
fn converged_lab(test: &str) -> Option<LabGuard> {
    if !have_root(test) {
        return None;
    }
    let lab = weft_lab(1, 2, 1);
    converged(&lab);
    Some(lab)
}

fn etcd_state(lab: &Lab, i: usize) -> weft_control::api::EtcdState {
    let status = weft_status(lab, i).unwrap_or_else(|e| panic!("{e}"));
    status.etcd.unwrap_or_else(|| panic!("n{i} runs in etcd mode and reports etcd state"))
}

#[test]
fn etcd_stopped_for_ten_seconds_breaks_no_tcp_stream_and_the_nodes_renew_their_leases_after() {
    let Some(mut lab) = converged_lab(
        "etcd_stopped_for_ten_seconds_breaks_no_tcp_stream_and_the_nodes_renew_their_leases_after",
    ) else {
        return;
    };
    pod_echo_server(&mut lab, 3);
    let before = [etcd_state(&lab, 2), etcd_state(&lab, 3)];
    assert!(before.iter().all(|s| s.connected), "{before:?}");

    // Two paced streams into n3's pod for 20 s: one from the other weft node, one from the
    // kernel node. etcd goes away 3 s in, for 10 s.
    let streams = [
        (stream(&lab, 2, 3, 20, 40), "weft n2 -> weft n3"),
        (stream(&lab, 1, 3, 20, 40), "kernel n1 -> weft n3"),
    ];
    std::thread::sleep(Duration::from_secs(3));
    assert!(lab.stop_etcd(), "etcd was running");
    let stopped = Instant::now();

    // Both weft nodes notice, and keep their routes.
    for i in [2, 3] {
        let noticed = eventually(Duration::from_secs(8), || {
            weft_status(&lab, i).is_ok_and(|s| s.etcd.is_some_and(|e| !e.connected))
        });
        assert!(noticed, "n{i} still reports etcd connected 8 s after etcd stopped");
        assert_eq!(weft_routes(&lab, i).len(), 2, "n{i} keeps both routes while etcd is down");
    }
    std::thread::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed()));
    lab.start_etcd().unwrap();

    // Back: each node re-lists, renews the lease it holds (same etcd lease, nothing
    // re-acquired) and says so.
    for (i, was) in [2, 3].into_iter().zip(&before) {
        let renewed = eventually(Duration::from_secs(20), || {
            weft_status(&lab, i).is_ok_and(|s| s.etcd.is_some_and(|e| e.connected && e.resyncs > was.resyncs))
        });
        let now = etcd_state(&lab, i);
        assert!(renewed, "n{i} did not reconnect and resync after etcd came back: {now:?}");
        assert_eq!((now.lease_id, now.reacquired), (was.lease_id, was.reacquired), "n{i} kept its lease");
        let ttl = lab.etcdctl(&["lease", "timetolive", &format!("{:x}", now.lease_id), "--keys"]).unwrap();
        let key = subnet_key(&weft_status(&lab, i).unwrap().subnet);
        assert!(ttl.contains(&key) && !ttl.contains("expired"), "n{i}'s lease holds {key}: {ttl}");
    }

    // The streams ran through it: every byte echoed intact, and never stalled for long (a
    // route withdrawn during the outage would stall them for the whole 10 s).
    for (child, what) in streams {
        let stall = finished(child, what);
        assert!(stall < Duration::from_secs(5), "{what} stalled for {stall:?} during the etcd outage");
    }
}

#[test]
fn a_removed_node_loses_its_routes_on_every_other_node_and_its_pods_become_unreachable() {
    let Some(mut lab) =
        converged_lab("a_removed_node_loses_its_routes_on_every_other_node_and_its_pods_become_unreachable")
    else {
        return;
    };
    let n1 = lab.node(1).ns.clone();
    let n3_subnet = lab.node(3).subnet;
    let gone_mac = vtep_mac(3);
    let kernel_has = |what: &str| -> bool {
        match what {
            "route" => has_route(&n1, n3_subnet),
            "fdb" => cmd::run("bridge", &["-n", &n1, "fdb", "show", "dev", "flannel.1"])
                .unwrap()
                .contains(&gone_mac),
            _ => cmd::ip_in(&n1, &["neigh", "show", "dev", "flannel.1"]).unwrap().contains(&gone_mac),
        }
    };
    for what in ["route", "fdb", "neigh"] {
        assert!(kernel_has(what), "before: kernel n1 has n3's {what}");
    }

    // The operator removes n3: weft stopped, its lease deleted.
    assert_eq!(lab.stop_node(3), 1);
    let key = subnet_key(&n3_subnet.to_string());
    let deleted = lab.etcdctl(&["del", &key]).unwrap();
    assert_eq!(deleted.trim(), "1", "n3's lease {key} was in etcd");

    let n3 = n3_subnet.to_string();
    assert!(
        eventually(Duration::from_secs(10), || !weft_routes(&lab, 2).contains(&n3)),
        "weft n2 still routes {n3}: {:?}",
        weft_routes(&lab, 2)
    );
    for what in ["route", "fdb", "neigh"] {
        assert!(eventually(Duration::from_secs(10), || !kernel_has(what)), "kernel n1 still has n3's {what}");
    }

    // n3's pod is unreachable, and on weft n2 because there is no route any more (the
    // pipeline drops it as `no_route` instead of encapsulating it to n3).
    let no_route = weft_counter(&weft_status(&lab, 2).unwrap(), "no_route");
    assert!(!ping(&lab.pod(2, 1).ns, pod_ip(3), 2), "n2 pod still reaches n3's pod");
    let after = weft_counter(&weft_status(&lab, 2).unwrap(), "no_route");
    assert!(after >= no_route + 2, "n2 dropped pings to the removed node as no_route: {no_route} -> {after}");
    assert!(!ping(&lab.pod(1, 1).ns, pod_ip(3), 1), "n1 pod still reaches n3's pod");
    // The rest of the cluster is untouched.
    assert!(ping(&lab.pod(2, 1).ns, pod_ip(1), 2), "n2 pod -> n1 pod after n3 left");
    assert!(ping(&lab.pod(1, 1).ns, pod_ip(2), 2), "n1 pod -> n2 pod after n3 left");
}

#[test]
fn a_restarted_weft_node_gets_its_subnet_back_by_public_ip_and_its_pods_are_reachable_again() {
    let Some(mut lab) = converged_lab(
        "a_restarted_weft_node_gets_its_subnet_back_by_public_ip_and_its_pods_are_reachable_again",
    ) else {
        return;
    };
    let first = weft_status(&lab, 3).unwrap();
    let key = subnet_key(&first.subnet);

    assert_eq!(lab.stop_node(3), 1, "weft ran on n3");
    let log = std::fs::read_to_string(lab.state().dir.join("n3.log")).unwrap();
    assert!(log.contains("SIGTERM: stopping") && log.trim_end().ends_with("stopped"), "a clean stop:\n{log}");
    let kept = lab.etcdctl(&["get", "--print-value-only", &key]).unwrap();
    assert!(kept.contains("\"PublicIP\":\"198.18.0.3\""), "SIGTERM keeps the lease: {kept:?}");
    assert!(!ping(&lab.pod(2, 1).ns, pod_ip(3), 1), "n3's pod is unreachable while weft is stopped");
    // Without subnet.env only etcd knows which subnet was ours: the lease is found by
    // PublicIP (flannel's rule), not by luck among 249 free subnets.
    let subnet_file = lab.node(3).subnet_file.clone();
    std::fs::remove_file(&subnet_file).unwrap();

    lab.start_node(3, &weft_run_cmd()).unwrap();
    let second = wait_weft_ready(&lab, 3);
    assert_eq!(second.subnet, first.subnet, "the restarted node has its subnet back");
    let env = std::fs::read_to_string(&subnet_file).unwrap();
    assert!(env.contains("FLANNEL_SUBNET=198.19.3.1/24"), "{env}");
    converged(&lab);
    let (server, ip) = (lab.pod(3, 1).ns.clone(), pod_ip(3));
    for (from, port) in [(1, ECHO_PORT), (2, ECHO_PORT + 1)] {
        let client = lab.pod(from, 1).ns.clone();
        tcp_echo_works(&mut lab, &client, &server, ip, port, 4_000_000);
    }
}
