//! Kernel-only lab, flannel vxlan: two kflannel nodes and etcd. Pods reach each other by
//! ICMP and TCP both ways, the underlay carries pod traffic only as VXLAN (UDP 8472, VNI 1)
//! between the nodes' PublicIPs; a changed VtepMAC moves the FDB entry, and a node leaving
//! (agent stopped, lease deleted) takes its neighbour, FDB entry and route off the other node.

mod lab_common;

use std::time::Duration;

use lab_common::*;
use weft_bench::lab::capture::{Capture, Seen};
use weft_bench::lab::topology::{ETCD_PREFIX, POD_NETWORK};
use weft_bench::lab::{Backend, Plan, cmd, up::has_route};

#[test]
fn kernel_flannel_nodes_talk_over_vxlan_8472_and_a_removed_lease_removes_its_routes() {
    if !have_root("kernel_flannel_nodes_talk_over_vxlan_8472_and_a_removed_lease_removes_its_routes") {
        return;
    }
    let mut lab = kernel_lab(Backend::Vxlan, 2, 2);
    let (a, a2, b) = (lab.pod(1, 1).clone(), lab.pod(1, 2).clone(), lab.pod(2, 1).clone());
    let n1 = lab.node(1).clone();
    let n2 = lab.node(2).clone();
    assert_eq!(n1.subnet, Plan::node_subnet(1), "node 1 leased the subnet its subnet.env named");
    assert_eq!(n2.subnet, Plan::node_subnet(2));

    let capture = Capture::start(&mut lab, "underlay").unwrap();
    assert!(ping(&a.ns, b.ip, 3), "pod {} -> {} across nodes", a.ip, b.ip);
    assert!(ping(&b.ns, a.ip, 3), "pod {} -> {} across nodes", b.ip, a.ip);
    assert!(ping(&a.ns, a2.ip, 2), "pod {} -> {} on the same node", a.ip, a2.ip);
    tcp_echo_works(&mut lab, &a.ns, &b.ns, b.ip, 7001, 1 << 20);
    tcp_echo_works(&mut lab, &b.ns, &a.ns, a.ip, 7002, 1 << 20);
    let seen = capture.finish(&[8472]).unwrap();

    let nodes = [n1.public_ip, n2.public_ip];
    let between_nodes: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.outer().is_some_and(|(x, y)| nodes.contains(&x) && nodes.contains(&y)))
        .collect();
    let vxlan = between_nodes
        .iter()
        .filter(|s| {
            matches!(s, Seen::Vxlan { port: 8472, vni: 1, inner: Some((x, y)), .. }
                if POD_NETWORK.contains(x) && POD_NETWORK.contains(y))
        })
        .count();
    assert_eq!(
        vxlan,
        between_nodes.len(),
        "node-to-node frames other than VXLAN 8472/VNI 1 with pod addresses inside: {between_nodes:?}"
    );
    // 6 echo requests + 6 replies, plus two 1 MiB TCP exchanges (tens of TSO-sized frames).
    assert!(vxlan >= 12 + 20, "only {vxlan} VXLAN frames between the nodes");
    let bare_pod = seen
        .iter()
        .filter(|s| s.outer().is_some_and(|(x, y)| POD_NETWORK.contains(&x) || POD_NETWORK.contains(&y)))
        .count();
    assert_eq!(bare_pod, 0, "pod addresses appeared unencapsulated on the underlay");

    // Node 2 leaves: its agent stops (the lease stays, as with flanneld), then the lease goes.
    let n2_mac =
        cmd::ip_in(&n1.ns, &["neigh", "show", "dev", "flannel.1", &n2.subnet.network().to_string()]).unwrap();
    let n2_mac = n2_mac
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no neighbour for n2 on n1: {n2_mac:?}"))
        .to_owned();
    assert_eq!(lab.stop_node(2), 1, "node 2's agent was running");
    assert!(has_route(&n1.ns, n2.subnet), "stopping an agent keeps its lease and so its routes");
    let key = format!("{ETCD_PREFIX}/subnets/{}-{}", n2.subnet.network(), n2.subnet.prefix_len());
    let fdb_of_n1 = || cmd::run("bridge", &["-n", &n1.ns, "fdb", "show", "dev", "flannel.1"]).unwrap();
    // A lease whose VtepMAC changes (the node came back with a new flannel.1): the old FDB
    // entry goes, the new one comes, the neighbour follows.
    let new_mac = "0a:58:c6:12:00:99";
    let changed = format!(
        r#"{{"PublicIP":"{}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{{"VNI":1,"VtepMAC":"{new_mac}"}}}}"#,
        n2.public_ip
    );
    lab.etcdctl(&["put", &key, &changed]).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || {
            let fdb = fdb_of_n1();
            fdb.contains(&format!("{new_mac} dst {} self permanent", n2.public_ip)) && !fdb.contains(&n2_mac)
        }),
        "n1's FDB did not follow the new VtepMAC: {}",
        fdb_of_n1()
    );
    let neigh = cmd::ip_in(&n1.ns, &["neigh", "show", "dev", "flannel.1"]).unwrap();
    assert!(neigh.contains(new_mac), "{neigh}");
    assert_eq!(lab.etcdctl(&["del", &key]).unwrap().trim(), "1", "deleted {key}");
    assert!(
        eventually(Duration::from_secs(10), || !has_route(&n1.ns, n2.subnet)),
        "n1 still routes {}",
        n2.subnet
    );
    let neigh = cmd::ip_in(&n1.ns, &["neigh", "show", "dev", "flannel.1"]).unwrap();
    assert!(!neigh.contains(&n2.subnet.network().to_string()), "n2's VTEP neighbour is left: {neigh}");
    let fdb = fdb_of_n1();
    assert!(!fdb.contains(new_mac), "n2's FDB entry {new_mac} is left: {fdb}");
    assert!(!ping(&a.ns, b.ip, 1), "pods of a node without a lease are unreachable");
}
