//! Our lease lost and our subnet taken by another node: the agent leases another subnet,
//! says the first one is stale (pods and data plane are numbered in it), and routes the
//! taken subnet to the node that holds it now.

mod common;

use std::time::Duration;

use common::*;
use weft_control::routes::Via;

const VXLAN_NET: &str = r#"{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lost_to_another_node_moves_us_to_another_subnet_and_reports_the_first_as_stale() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let agent = Running::start(settings(&etcd, 11, dir.path())).await;
    let first = agent.subnet;
    assert_eq!(agent.status().moved_from(), None);

    let key = format!("{PREFIX}/subnets/{}-{}", first.network(), first.prefix_len());
    etcd.etcdctl(&["put", &key, &flannel_vxlan_lease("198.18.0.99", "0a:58:c6:12:00:63")]);
    wait_for("the agent to re-acquire", Duration::from_secs(10), || agent.status().reacquired == 1).await;
    let status = agent.status();
    assert_ne!(status.subnet, first, "the taken subnet is not ours any more");
    assert_eq!((status.first_subnet, status.moved_from()), (first, Some(first)));
    let env = std::fs::read_to_string(dir.path().join("node11/subnet.env")).unwrap();
    let gateway = std::net::Ipv4Addr::from(u32::from(status.subnet.network()) + 1);
    assert!(env.contains(&format!("FLANNEL_SUBNET={gateway}/24")), "{env}");
    // Routed with the re-acquire, not at some later re-list (3 s: far more than a batch).
    wait_for("a route for the taken subnet", Duration::from_secs(3), || agent.table().contains_key(&first))
        .await;
    let route = agent.table()[&first];
    assert!(matches!(route, Via::Vxlan { .. }) && route.node_ip().octets() == [198, 18, 0, 99], "{route}");
    agent.stop().await;
}
