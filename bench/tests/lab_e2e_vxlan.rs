//! End to end through weft, flannel vxlan: pods on three weft nodes reach each other by ICMP
//! and TCP in every direction, same node and across nodes; a kernel-flannel node (flannel.1)
//! and weft nodes do the same in one cluster. The underlay carries pod traffic only as VXLAN
//! (UDP 8472, VNI 1) between the nodes' PublicIPs, and each weft node's own traffic (etcd,
//! pings) still flows through its kernel.

mod lab_common;

use lab_common::*;
use weft_bench::lab::{Backend, NodeKind};

#[test]
fn pods_on_three_weft_nodes_talk_in_every_direction_over_vxlan_8472() {
    if !have_root("pods_on_three_weft_nodes_talk_in_every_direction_over_vxlan_8472") {
        return;
    }
    pods_talk_through_weft(Backend::Vxlan, &[NodeKind::Weft; 3]);
}

#[test]
fn a_kernel_flannel_node_and_weft_nodes_talk_both_ways_over_vxlan() {
    if !have_root("a_kernel_flannel_node_and_weft_nodes_talk_both_ways_over_vxlan") {
        return;
    }
    pods_talk_through_weft(Backend::Vxlan, &[NodeKind::Kernel, NodeKind::Weft, NodeKind::Weft]);
}
