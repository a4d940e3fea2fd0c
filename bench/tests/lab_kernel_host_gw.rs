//! Kernel-only lab, flannel host-gw: two kflannel nodes and etcd. Pods reach each other by
//! ICMP and TCP both ways with no encapsulation on the underlay, and a node leaving takes
//! its route off the other node.

mod lab_common;

use std::time::Duration;

use lab_common::*;
use weft_bench::lab::capture::{Capture, Seen};
use weft_bench::lab::topology::{ETCD_PREFIX, POD_NETWORK};
use weft_bench::lab::{Backend, cmd, up::has_route};

#[test]
fn kernel_flannel_nodes_talk_over_host_gw_unencapsulated_and_a_removed_lease_removes_its_route() {
    if !have_root(
        "kernel_flannel_nodes_talk_over_host_gw_unencapsulated_and_a_removed_lease_removes_its_route",
    ) {
        return;
    }
    let mut lab = kernel_lab(Backend::HostGw, 2, 1);
    let (a, b) = (lab.pod(1, 1).clone(), lab.pod(2, 1).clone());
    let (n1, n2) = (lab.node(1).clone(), lab.node(2).clone());
    let route = cmd::ip_in(&n1.ns, &["route", "show", "exact", &n2.subnet.to_string()]).unwrap();
    assert_eq!(
        route.trim(),
        format!("{} via {} dev uplink", n2.subnet, n2.public_ip),
        "flannel's host-gw route"
    );
    assert!(cmd::ip_in(&n1.ns, &["link", "show", "flannel.1"]).is_err(), "host-gw makes no VXLAN device");

    let capture = Capture::start(&mut lab, "underlay").unwrap();
    assert!(ping(&a.ns, b.ip, 3), "pod {} -> {}", a.ip, b.ip);
    assert!(ping(&b.ns, a.ip, 3), "pod {} -> {}", b.ip, a.ip);
    tcp_echo_works(&mut lab, &a.ns, &b.ns, b.ip, 7001, 1 << 20);
    tcp_echo_works(&mut lab, &b.ns, &a.ns, a.ip, 7002, 1 << 20);
    let seen = capture.finish(&[8472]).unwrap();

    let vxlan = seen.iter().filter(|s| matches!(s, Seen::Vxlan { .. })).count();
    assert_eq!(vxlan, 0, "host-gw must not encapsulate");
    let pod_frames: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.outer().is_some_and(|(x, y)| POD_NETWORK.contains(&x) && POD_NETWORK.contains(&y)))
        .collect();
    // veth segments TCP with TSO, so 1 MiB is tens of frames, not hundreds.
    let icmp = pod_frames.iter().filter(|s| matches!(s, Seen::Ipv4 { protocol: 1, .. })).count();
    let tcp = pod_frames.iter().filter(|s| matches!(s, Seen::Ipv4 { protocol: 6, .. })).count();
    assert!(icmp >= 12 && tcp >= 20, "only {icmp} ICMP and {tcp} TCP pod frames on the underlay");
    assert!(
        pod_frames.iter().all(|s| matches!(s, Seen::Ipv4 { protocol: 1 | 6, .. })),
        "pod traffic on the underlay is plain ICMP and TCP"
    );

    assert_eq!(lab.stop_node(2), 1);
    let key = format!("{ETCD_PREFIX}/subnets/{}-{}", n2.subnet.network(), n2.subnet.prefix_len());
    assert_eq!(lab.etcdctl(&["del", &key]).unwrap().trim(), "1");
    assert!(
        eventually(Duration::from_secs(10), || !has_route(&n1.ns, n2.subnet)),
        "n1 still routes {}",
        n2.subnet
    );
}
