//! End to end through weft, flannel vxlan with `"DirectRouting": true`: weft routes directly
//! (host-gw) to peers on its uplink's subnet and encapsulates to the others. Pods on three
//! weft nodes reach each other by ICMP and TCP in every direction, same node and across
//! nodes, first with every node on one subnet (the pods' own packets on the underlay, no UDP
//! 8472), then with one node on a subnet of its own (VXLAN to and from it, direct between the
//! other two); each weft node's own traffic (etcd, pings) still flows through its kernel.

mod lab_common;

use std::time::Instant;

use ipnet::Ipv4Net;
use lab_common::*;
use weft_bench::lab::topology::{UNDERLAY, UPLINK};
use weft_bench::lab::{Backend, NodeKind, NodeSpec, Plan, cmd};

#[test]
fn pods_on_three_weft_nodes_talk_directly_with_vxlan_direct_routing_on_one_l2_segment() {
    if !have_root("pods_on_three_weft_nodes_talk_directly_with_vxlan_direct_routing_on_one_l2_segment") {
        return;
    }
    pods_talk_through_weft(Backend::VxlanDirectRouting, &[NodeKind::Weft; 3]);
}

/// Node i's uplink address on the two-subnet underlay.
fn two_subnet_address(i: usize) -> Ipv4Net {
    Ipv4Net::new(Plan::node_ip(i), 31).unwrap()
}

#[test]
fn with_direct_routing_weft_routes_directly_on_its_subnet_and_encapsulates_to_other_subnets() {
    if !have_root("with_direct_routing_weft_routes_directly_on_its_subnet_and_encapsulates_to_other_subnets")
    {
        return;
    }
    // Two IP subnets on the one underlay bridge: n1 = 198.18.0.1/31, n2 and n3 in
    // 198.18.0.2/31, every node reaching the rest of the underlay (etcd included) through an
    // on-link route. flannel decides DirectRouting by the uplink address's subnet; so does
    // weft, which is left to read it from the interface (the generated `uplink_subnet` line
    // is removed). n2 <-> n3 must go direct, n1 <-> n2 and n1 <-> n3 over VXLAN.
    let started = Instant::now();
    let mut lab = lab_of(Backend::VxlanDirectRouting, vec![NodeSpec::weft(None); 3], 2);
    for i in 1..=3 {
        let node = lab.node(i).clone();
        let ns = node.ns.as_str();
        cmd::ip_in(
            ns,
            &["addr", "del", &format!("{}/{}", node.public_ip, UNDERLAY.prefix_len()), "dev", UPLINK],
        )
        .unwrap();
        cmd::ip_in(ns, &["addr", "add", &two_subnet_address(i).to_string(), "dev", UPLINK]).unwrap();
        cmd::ip_in(ns, &["route", "add", &UNDERLAY.to_string(), "dev", UPLINK]).unwrap();
        let path = node.config.clone().unwrap();
        let config = std::fs::read_to_string(&path).unwrap();
        let without: String =
            config.lines().filter(|l| !l.starts_with("uplink_subnet")).map(|l| format!("{l}\n")).collect();
        assert_ne!(config, without, "the generated config names uplink_subnet");
        std::fs::write(&path, without).unwrap();
        start_weft(&mut lab, i);
    }
    wait_for_weft_routes(&lab);
    let same_subnet = |a: usize, b: usize| two_subnet_address(a).trunc() == two_subnet_address(b).trunc();
    pods_talk_in_every_direction(lab, "vxlan-direct-routing on two subnets", started, &|a, b| {
        if same_subnet(a, b) { Wire::Bare } else { Wire::Vxlan }
    });
}
