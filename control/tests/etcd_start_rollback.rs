//! A start that fails after it changed etcd gives the change back: etcd ends exactly as the
//! start found it (same keys, values and etcd leases), against a real etcd.

mod common;

use std::time::Duration;

use common::etcd::Snapshot;
use common::{Etcd, PREFIX, Running, etcd_with_network, flannel_vxlan_lease, put_peer, settings, wait_for};
use weft_control::etcd::Agent;
use weft_control::flannel::NetworkConfig;

const VXLAN_NET: &str = r#"{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.63.0","Backend":{"Type":"vxlan"}}"#;
/// Where the lease of ours an earlier run left sits.
const EARLIER: &str = "198.19.5.0-24";

/// A lease with node 11's PublicIP (an earlier run of it) on a lease of its own, with a VtepMAC
/// the agent would not write, so a restore that rewrites the value shows.
fn earlier_lease_of_node_11(etcd: &Etcd) -> String {
    let id = etcd.grant(600);
    let key = format!("{PREFIX}/subnets/{EARLIER}");
    etcd.etcdctl(&["put", "--lease", &id, &key, &flannel_vxlan_lease("198.18.0.11", "0a:58:c6:12:00:ee")]);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_cannot_write_subnet_env_leaves_etcd_exactly_as_it_was() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    put_peer(&etcd, "198.19.90.0-24", "198.18.0.90", "0a:58:c6:12:00:5a");
    let before = Snapshot::take(&etcd.endpoint()).await;
    let mut s = settings(&etcd, 11, dir.path());
    std::fs::write(dir.path().join("afile"), "").unwrap();
    s.subnet_file = dir.path().join("afile/subnet.env");
    let err = Agent::start(s).await.unwrap_err();
    assert!(err.to_string().contains("afile"), "{err}");
    assert_eq!(Snapshot::take(&etcd.endpoint()).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_cannot_write_subnet_env_puts_back_the_earlier_lease_it_took_over() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    earlier_lease_of_node_11(&etcd);
    let before = Snapshot::take(&etcd.endpoint()).await;
    let mut s = settings(&etcd, 11, dir.path());
    std::fs::write(dir.path().join("afile"), "").unwrap();
    s.subnet_file = dir.path().join("afile/subnet.env");
    Agent::start(s).await.unwrap_err();
    assert_eq!(Snapshot::take(&etcd.endpoint()).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_start_that_took_over_our_earlier_lease_puts_it_back_on_its_lease() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    put_peer(&etcd, "198.19.90.0-24", "198.18.0.90", "0a:58:c6:12:00:5a");
    let earlier = earlier_lease_of_node_11(&etcd);
    let before = Snapshot::take(&etcd.endpoint()).await;
    let agent = Agent::start(settings(&etcd, 11, dir.path())).await.unwrap();
    assert_eq!(agent.subnet().to_string(), EARLIER.replace('-', "/"), "the earlier lease is taken over");
    let during = Snapshot::take(&etcd.endpoint()).await;
    assert_ne!(during, before, "the takeover changed the value and the lease");
    assert!(during.leases.contains_key(&i64::from_str_radix(&earlier, 16).unwrap()), "not revoked yet");
    agent.abandon().await;
    assert_eq!(Snapshot::take(&etcd.endpoint()).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_runs_revokes_the_earlier_lease_it_took_our_key_from() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let earlier = i64::from_str_radix(&earlier_lease_of_node_11(&etcd), 16).unwrap();
    let agent = Running::start(settings(&etcd, 11, dir.path())).await;
    let endpoint = etcd.endpoint();
    let mut gone = false;
    for _ in 0..100 {
        let now = Snapshot::take(&endpoint).await;
        if !now.leases.contains_key(&earlier) {
            gone = true;
            let key = format!("{PREFIX}/subnets/{EARLIER}");
            assert_eq!(now.keys[&key].1, agent.status().lease_id, "our key is on our new lease");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the earlier run's lease is revoked once the start is committed");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_start_with_init_network_deletes_the_config_it_wrote() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    put_peer(&etcd, "198.19.90.0-24", "198.18.0.90", "0a:58:c6:12:00:5a");
    let before = Snapshot::take(&etcd.endpoint()).await;
    let mut s = settings(&etcd, 11, dir.path());
    s.init_network = Some(NetworkConfig::parse(VXLAN_NET.as_bytes()).unwrap());
    let agent = Agent::start(s).await.unwrap();
    wait_for("the config written", Duration::from_secs(1), || {
        etcd.get(&format!("{PREFIX}/config")).is_some()
    })
    .await;
    agent.abandon().await;
    assert_eq!(Snapshot::take(&etcd.endpoint()).await, before);
}
