//! End to end through weft, flannel ipip: pods on three weft nodes reach each other by ICMP
//! and TCP in every direction, same node and across nodes. The underlay carries pod traffic
//! only as IP protocol 4 between the nodes' PublicIPs, and each weft node's own traffic
//! (etcd, pings) still flows through its kernel. (No kernel peer: this kernel has no ipip
//! module for the kernel-flannel node.)

mod lab_common;

use lab_common::*;
use weft_bench::lab::{Backend, NodeKind};

#[test]
fn pods_on_three_weft_nodes_talk_in_every_direction_over_ipip() {
    if !have_root("pods_on_three_weft_nodes_talk_in_every_direction_over_ipip") {
        return;
    }
    pods_talk_through_weft(Backend::Ipip, &[NodeKind::Weft; 3]);
}
