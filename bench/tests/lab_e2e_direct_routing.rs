//! End to end through weft, flannel vxlan with `"DirectRouting": true`: every lab node shares
//! the underlay's L2 segment, so weft routes to every peer directly (host-gw) instead of
//! encapsulating. Pods on three weft nodes reach each other by ICMP and TCP in every
//! direction, same node and across nodes; the underlay carries the pods' own packets and no
//! UDP 8472, and each weft node's own traffic (etcd, pings) still flows through its kernel.

mod lab_common;

use lab_common::*;
use weft_bench::lab::{Backend, NodeKind};

#[test]
fn pods_on_three_weft_nodes_talk_directly_with_vxlan_direct_routing_on_one_l2_segment() {
    if !have_root("pods_on_three_weft_nodes_talk_directly_with_vxlan_direct_routing_on_one_l2_segment") {
        return;
    }
    pods_talk_through_weft(Backend::VxlanDirectRouting, &[NodeKind::Weft; 3]);
}
