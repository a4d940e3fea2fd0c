//! End to end through weft, flannel host-gw: pods on three weft nodes reach each other by
//! ICMP and TCP in every direction, same node and across nodes; a kernel-flannel node (plain
//! routes via the peers' PublicIPs) and weft nodes do the same in one cluster. The underlay
//! carries the pods' own packets, unencapsulated (no UDP 8472, no IPIP), and each weft node's
//! own traffic (etcd, pings) still flows through its kernel.

mod lab_common;

use lab_common::*;
use weft_bench::lab::{Backend, NodeKind};

#[test]
fn pods_on_three_weft_nodes_talk_in_every_direction_over_host_gw() {
    if !have_root("pods_on_three_weft_nodes_talk_in_every_direction_over_host_gw") {
        return;
    }
    pods_talk_through_weft(Backend::HostGw, &[NodeKind::Weft; 3]);
}

#[test]
fn a_kernel_flannel_node_and_weft_nodes_talk_both_ways_over_host_gw() {
    if !have_root("a_kernel_flannel_node_and_weft_nodes_talk_both_ways_over_host_gw") {
        return;
    }
    pods_talk_through_weft(Backend::HostGw, &[NodeKind::Kernel, NodeKind::Weft, NodeKind::Weft]);
}
