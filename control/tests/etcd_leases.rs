//! The lease manager against a real etcd: flannel compatibility, racing,
//! expiry, lost keys, etcd restarts, compaction and agent restarts.

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::{
    Etcd, PREFIX, Running, etcd_with_network, flannel_vxlan_lease, put_network, put_peer, settings, wait_for,
};
use ipnet::Ipv4Net;
use weft_control::etcd::{Agent, ControlError, LeaseRequest, acquire, list};
use weft_control::flannel::NetworkConfig;
use weft_control::routes::{RouteDelta, Via};

/// Agents lease from 198.19.1.0..198.19.63.0, so the fixed peer subnets the tests put
/// (198.19.90.0 and up) can never be the one an agent picked at random.
const VXLAN_NET: &str = r#"{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.63.0","Backend":{"Type":"vxlan"}}"#;
const WAIT: Duration = Duration::from_secs(10);

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name))
        .unwrap()
}

fn key(subnet: Ipv4Net) -> String {
    format!("{PREFIX}/subnets/{}-{}", subnet.network(), subnet.prefix_len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_lease_is_byte_identical_to_flannels() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let agent = Running::start(settings(&etcd, 11, dir.path())).await;
    assert_eq!(etcd.get(&key(agent.subnet)).unwrap(), golden("lease-vxlan.json"));

    let (etcd2, dir2) = etcd_with_network(
        r#"{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.63.0","Backend":{"Type":"host-gw"}}"#,
    );
    let hostgw = Running::start(settings(&etcd2, 11, dir2.path())).await;
    assert_eq!(etcd2.get(&key(hostgw.subnet)).unwrap(), golden("lease-host-gw.json"));
    // and subnet.env says what flannel's CNI plugin expects
    let env = std::fs::read_to_string(dir2.path().join("node11/subnet.env")).unwrap();
    let first_host = Ipv4Addr::from(u32::from(hostgw.subnet.network()) + 1);
    assert_eq!(
        env,
        format!(
            "FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET={first_host}/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_put_by_flannel_become_the_right_routes() {
    let (etcd, dir) = etcd_with_network(
        r#"{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.63.0","Backend":{"Type":"vxlan","DirectRouting":true}}"#,
    );
    let agent = Running::start(settings(&etcd, 11, dir.path())).await;

    // Off our L2 subnet: VXLAN. On it (DirectRouting): host-gw. Another backend: ignored.
    put_peer(&etcd, "198.19.200.0-24", "198.18.7.20", "0a:58:c6:13:c8:00");
    put_peer(&etcd, "198.19.201.0-24", "198.18.0.21", "0a:58:c6:13:c9:00");
    etcd.etcdctl(&[
        "put",
        &format!("{PREFIX}/subnets/198.19.202.0-24"),
        r#"{"PublicIP":"198.18.0.22","PublicIPv6":null,"BackendType":"host-gw"}"#,
    ]);
    wait_for("two routes", WAIT, || agent.table().len() == 2).await;
    let table = agent.table();
    assert_eq!(
        table[&net("198.19.200.0/24")],
        Via::Vxlan {
            remote: Ipv4Addr::new(198, 18, 7, 20),
            vtep_mac: "0a:58:c6:13:c8:00".parse().unwrap(),
            vni: 1,
            port: 8472
        }
    );
    assert_eq!(table[&net("198.19.201.0/24")], Via::HostGw { gateway: Ipv4Addr::new(198, 18, 0, 21) });
    assert!(!table.contains_key(&net("198.19.202.0/24")), "a host-gw lease on a vxlan network is ignored");
    assert!(!table.contains_key(&agent.subnet), "never a route to our own subnet");

    // A changed lease replaces the next hop; a deleted one removes the route.
    put_peer(&etcd, "198.19.200.0-24", "198.18.7.30", "0a:58:c6:13:c8:01");
    etcd.etcdctl(&["del", &format!("{PREFIX}/subnets/198.19.201.0-24")]);
    wait_for("update and removal", WAIT, || {
        let t = agent.table();
        t.len() == 1 && t[&net("198.19.200.0/24")].node_ip() == Ipv4Addr::new(198, 18, 7, 30)
    })
    .await;
    assert_eq!(agent.status().leases, 3, "ours, one vxlan peer and the ignored host-gw one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_racing_get_distinct_subnets() {
    // A /22 holds three leasable /24s: a real chance of picking the same one.
    let (etcd, dir) = etcd_with_network(r#"{"Network":"198.19.0.0/22","Backend":{"Type":"host-gw"}}"#);
    for round in 0..5u8 {
        let (a, b) = tokio::join!(
            Agent::start(settings(&etcd, 2 * round + 1, dir.path())),
            Agent::start(settings(&etcd, 2 * round + 2, dir.path()))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_ne!(a.subnet(), b.subnet(), "round {round}");
        etcd.etcdctl(&["del", "--prefix", &format!("{PREFIX}/subnets/")]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_agents_fill_a_slash_20_without_collisions_and_the_rest_are_told_it_is_full() {
    let (etcd, dir) =
        etcd_with_network(r#"{"Network":"198.19.0.0/20","SubnetLen":24,"Backend":{"Type":"host-gw"}}"#);
    let network =
        NetworkConfig::parse(br#"{"Network":"198.19.0.0/20","SubnetLen":24,"Backend":{"Type":"host-gw"}}"#)
            .unwrap();
    let client = etcd_client::Client::connect([etcd.endpoint()], None).await.unwrap();
    let tasks: Vec<_> = (1..=50u8)
        .map(|host| {
            let mut client = client.clone();
            let settings = settings(&etcd, host, dir.path());
            let network = network.clone();
            tokio::spawn(async move {
                let keys = weft_control::etcd::Keys::new(PREFIX);
                let mut table = list(&mut client, &settings, &keys).await?;
                let attrs = weft_control::flannel::LeaseAttrs {
                    public_ip: settings.public_ip,
                    public_ipv6: None,
                    backend_type: network.backend.backend_type.clone(),
                    vxlan: None,
                    wireguard: None,
                };
                let request = LeaseRequest { network: &network, attrs: &attrs, prefer: &[] };
                acquire(&mut client, &settings, request, &mut table).await
            })
        })
        .collect();
    let mut won = BTreeSet::new();
    let mut full = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(own) => assert!(won.insert(own.subnet), "{} leased twice", own.subnet),
            Err(e @ ControlError::OutOfSubnets { .. }) => {
                assert!(e.to_string().starts_with("out of subnets: all 15 subnets of 198.19.0.0/20"), "{e}");
                full += 1;
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    let all: BTreeSet<Ipv4Net> = network.subnets().collect();
    assert_eq!(won, all, "SubnetMin..SubnetMax filled exactly");
    assert_eq!(full, 35);
    assert_eq!(etcd.keys(&format!("{PREFIX}/subnets/")).len(), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_peer_lease_removes_its_route() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let agent = Running::start(settings(&etcd, 11, dir.path())).await;
    // Long enough that a loaded CI box still sees the put before the expiry.
    let lease = etcd.grant(4);
    etcd.etcdctl(&[
        "put",
        "--lease",
        &lease,
        &format!("{PREFIX}/subnets/198.19.99.0-24"),
        &flannel_vxlan_lease("198.18.9.9", "0a:58:c6:13:63:00"),
    ]);
    wait_for("the peer's route", WAIT, || agent.table().contains_key(&net("198.19.99.0/24"))).await;
    wait_for("expiry to remove the route", WAIT, || agent.table().is_empty()).await;
    let last = agent.sink.batches().last().unwrap().1.clone();
    assert_eq!(last, vec![RouteDelta::Remove(net("198.19.99.0/24"))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_key_deleted_by_hand_is_reacquired_while_routes_stay() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let agent = Running::start(settings(&etcd, 11, dir.path())).await;
    put_peer(&etcd, "198.19.99.0-24", "198.18.9.9", "0a:58:c6:13:63:00");
    wait_for("the peer's route", WAIT, || agent.table().len() == 1).await;
    let batches = agent.sink.batch_count();

    etcd.etcdctl(&["del", &key(agent.subnet)]);
    wait_for("re-acquisition", WAIT, || agent.status().reacquired == 1).await;
    assert_eq!(
        etcd.get(&key(agent.subnet)).unwrap(),
        golden("lease-vxlan.json"),
        "the same subnet, the same value"
    );
    assert_eq!(agent.status().subnet, agent.subnet);
    assert_eq!(agent.sink.batch_count(), batches, "no route was touched");
    assert_eq!(agent.table().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_killed_and_restarted_keeps_routes_then_reconciles() {
    let (mut etcd, dir) = etcd_with_network(VXLAN_NET);
    let agent = Running::start(settings(&etcd, 11, dir.path())).await;
    put_peer(&etcd, "198.19.98.0-24", "198.18.9.8", "0a:58:c6:13:62:00");
    wait_for("the first peer", WAIT, || agent.table().len() == 1).await;
    let before = agent.table();

    etcd.kill();
    wait_for("the agent to notice", WAIT, || !agent.status().connected).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(agent.table(), before, "routes stay while etcd is down");

    etcd.restart();
    // Changes made as soon as etcd is back, before or during the agent's re-list.
    put_peer(&etcd, "198.19.97.0-24", "198.18.9.7", "0a:58:c6:13:61:00");
    etcd.etcdctl(&["del", &format!("{PREFIX}/subnets/198.19.98.0-24")]);
    wait_for("reconciliation", WAIT, || {
        let t = agent.table();
        t.len() == 1 && t.contains_key(&net("198.19.97.0/24"))
    })
    .await;
    wait_for("reconnection", WAIT, || agent.status().connected).await;
    assert!(agent.status().resyncs >= 1);
    assert_eq!(agent.status().reacquired, 0, "our lease survived the restart");
    assert!(etcd.get(&key(agent.subnet)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_before_the_watch_starts_is_survived_by_relisting() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    put_peer(&etcd, "198.19.96.0-24", "198.18.9.6", "0a:58:c6:13:60:00");
    // The agent lists now; the watch will start from that revision + 1 ...
    let agent = Agent::start(settings(&etcd, 11, dir.path())).await.unwrap();
    // ... which changes and is compacted away before the watch begins.
    put_peer(&etcd, "198.19.95.0-24", "198.18.9.5", "0a:58:c6:13:5f:00");
    etcd.etcdctl(&["del", &format!("{PREFIX}/subnets/198.19.96.0-24")]);
    etcd.etcdctl(&["put", "/unrelated", "x"]);
    etcd.compact();

    let agent = Running::from_agent(agent);
    wait_for("reconciliation after compaction", WAIT, || {
        let t = agent.table();
        t.len() == 1 && t.contains_key(&net("198.19.95.0/24"))
    })
    .await;
    assert!(agent.status().resyncs >= 1, "the compacted watch forced a re-list");
    let resyncs = agent.status().resyncs;
    // A compaction while the watch is live and current does not disturb it.
    put_peer(&etcd, "198.19.94.0-24", "198.18.9.4", "0a:58:c6:13:5e:00");
    etcd.compact();
    etcd.etcdctl(&["del", &format!("{PREFIX}/subnets/198.19.95.0-24")]);
    wait_for("changes after a live compaction", WAIT, || {
        agent.table().keys().copied().collect::<Vec<_>>() == [net("198.19.94.0/24")]
    })
    .await;
    assert_eq!(agent.status().resyncs, resyncs, "no re-list needed for a live watch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_keeps_its_subnet_via_etcd_and_via_subnet_env() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let first = Running::start(settings(&etcd, 11, dir.path())).await;
    let subnet = first.subnet;
    first.stop().await;

    // Via etcd: our PublicIP still holds a lease; subnet.env is gone.
    std::fs::remove_file(dir.path().join("node11/subnet.env")).unwrap();
    let second = Agent::start(settings(&etcd, 11, dir.path())).await.unwrap();
    assert_eq!(second.subnet(), subnet);
    drop(second);

    // Via subnet.env: the etcd lease is gone (expired or deleted).
    etcd.etcdctl(&["del", &key(subnet)]);
    let third = Agent::start(settings(&etcd, 11, dir.path())).await.unwrap();
    assert_eq!(third.subnet(), subnet);
    assert_eq!(etcd.keys(&format!("{PREFIX}/subnets/")), vec![key(subnet)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_network_config_is_an_error_and_init_network_writes_it() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let err = Agent::start(settings(&etcd, 11, dir.path())).await.unwrap_err();
    assert!(matches!(err, ControlError::NoNetworkConfig { .. }), "{err}");
    assert!(err.to_string().contains(&format!("{PREFIX}/config")), "{err}");

    put_network(&etcd, r#"{"Network":"198.19.0.0/16","SubnetLen":33}"#);
    let err = Agent::start(settings(&etcd, 11, dir.path())).await.unwrap_err();
    assert!(err.to_string().contains("SubnetLen"), "{err}");

    etcd.etcdctl(&["del", &format!("{PREFIX}/config")]);
    let mut s = settings(&etcd, 11, dir.path());
    s.init_network =
        Some(NetworkConfig::parse(br#"{"Network":"198.19.0.0/16","Backend":{"Type":"ipip"}}"#).unwrap());
    let agent = Agent::start(s).await.unwrap();
    assert_eq!(agent.network().network, net("198.19.0.0/16"));
    let stored = NetworkConfig::parse(etcd.get(&format!("{PREFIX}/config")).unwrap().as_bytes()).unwrap();
    assert_eq!(&stored, agent.network());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_lease_is_renewed_before_it_expires() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let mut s = settings(&etcd, 11, dir.path());
    s.lease_ttl = Duration::from_secs(3);
    let agent = Running::start(s).await;
    let lease_id = agent.status().lease_id;
    // Three TTLs later the key is still there, on the same etcd lease.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(etcd.get(&key(agent.subnet)).unwrap(), golden("lease-vxlan.json"));
    let ttl = etcd.etcdctl(&["lease", "timetolive", &format!("{lease_id:x}")]);
    assert!(!ttl.contains("already expired"), "{ttl}");
    assert_eq!(agent.status().reacquired, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_etcd_at_start_is_an_error_naming_the_endpoint() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let mut s = settings(&etcd, 11, dir.path());
    drop(etcd);
    s.rpc_timeout = Duration::from_secs(1);
    let endpoint = s.endpoints[0].clone();
    let err = Agent::start(s).await.unwrap_err();
    assert!(matches!(err, ControlError::Etcd { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&endpoint) && text.contains("is etcd running"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_etcd_is_unreachable_routes_stay_and_changes_made_meanwhile_arrive_on_return() {
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let proxy = common::proxy::Proxy::start(&etcd.endpoint()).await;
    let mut s = settings(&etcd, 11, dir.path());
    s.endpoints = vec![proxy.endpoint()];
    let agent = Running::start(s).await;
    put_peer(&etcd, "198.19.90.0-24", "198.18.9.90", "0a:58:c6:13:5a:00");
    put_peer(&etcd, "198.19.91.0-24", "198.18.9.91", "0a:58:c6:13:5b:00");
    wait_for("two peers", WAIT, || agent.table().len() == 2).await;
    let before = agent.table();

    proxy.cut();
    wait_for("the agent to notice", WAIT, || !agent.status().connected).await;
    // etcd itself is fine: a peer joins, one leaves, one moves.
    put_peer(&etcd, "198.19.92.0-24", "198.18.9.92", "0a:58:c6:13:5c:00");
    etcd.etcdctl(&["del", &format!("{PREFIX}/subnets/198.19.90.0-24")]);
    put_peer(&etcd, "198.19.91.0-24", "198.18.9.191", "0a:58:c6:13:5b:01");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(agent.table(), before, "routes stay while etcd is unreachable");
    assert!(!agent.status().connected, "still cut off");

    proxy.restore();
    wait_for("reconciliation", WAIT, || {
        let t = agent.table();
        t.len() == 2
            && t.contains_key(&net("198.19.92.0/24"))
            && t.get(&net("198.19.91.0/24")).map(Via::node_ip) == Some(Ipv4Addr::new(198, 18, 9, 191))
    })
    .await;
    wait_for("reconnection", WAIT, || agent.status().connected).await;
    assert!(agent.status().resyncs >= 1);
    assert_eq!(agent.status().reacquired, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_lease_still_occupies_its_subnet_and_is_never_routed() {
    // Three leasable subnets; two hold values no node could have written.
    let (etcd, dir) = etcd_with_network(r#"{"Network":"198.19.0.0/22","Backend":{"Type":"vxlan"}}"#);
    etcd.etcdctl(&["put", &format!("{PREFIX}/subnets/198.19.1.0-24"), "not json"]);
    etcd.etcdctl(&[
        "put",
        &format!("{PREFIX}/subnets/198.19.2.0-24"),
        r#"{"PublicIP":"198.18.9.2","BackendType":"vxlan"}"#,
    ]);
    let agent = Running::start(settings(&etcd, 11, dir.path())).await;
    assert_eq!(agent.subnet, net("198.19.3.0/24"));
    wait_for("the first sync", WAIT, || agent.status().leases == 3).await;
    assert!(agent.table().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_spanning_several_pages_arrives_whole_in_the_first_batch() {
    // 5000 leases: more than one 4096-key page of the paginated list.
    let (etcd, dir) =
        etcd_with_network(r#"{"Network":"198.19.0.0/16","SubnetLen":29,"Backend":{"Type":"host-gw"}}"#);
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None).await.unwrap();
    let peers: Vec<u32> = (1..=5000).collect();
    for chunk in peers.chunks(128) {
        let ops: Vec<etcd_client::TxnOp> = chunk
            .iter()
            .map(|&i| {
                let subnet = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + i * 8);
                let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 32, 0)) + i);
                etcd_client::TxnOp::put(
                    format!("{PREFIX}/subnets/{subnet}-29"),
                    format!(r#"{{"PublicIP":"{ip}","PublicIPv6":null,"BackendType":"host-gw"}}"#),
                    None,
                )
            })
            .collect();
        client.txn(etcd_client::Txn::new().and_then(ops)).await.unwrap();
    }
    let agent = Running::start(settings(&etcd, 11, dir.path())).await;
    wait_for("the first batch", WAIT, || agent.sink.batch_count() >= 1).await;
    assert_eq!(agent.sink.batches()[0].1.len(), 5000);
    assert_eq!(agent.table().len(), 5000);
    assert_eq!(
        agent.table()[&net("198.19.156.64/29")],
        Via::HostGw { gateway: Ipv4Addr::new(198, 18, 51, 136) }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wireguard_node_makes_its_key_once_and_publishes_it_as_flannel_does() {
    let (etcd, dir) = etcd_with_network(
        r#"{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.63.0","Backend":{"Type":"wireguard"}}"#,
    );
    let state = dir.path().join("state");
    let with_key_dir = || weft_control::etcd::AgentSettings {
        wg_key_dir: Some(state.clone()),
        ..settings(&etcd, 11, dir.path())
    };
    let agent = Running::start(with_key_dir()).await;
    let pair = weft_control::wg_key::load(&state).unwrap().expect("the agent made the key");
    assert_eq!(
        etcd.get(&key(agent.subnet)).unwrap(),
        format!(
            r#"{{"PublicIP":"198.18.0.11","PublicIPv6":null,"BackendType":"wireguard","BackendData":{{"PublicKey":"{}","Port":51820}}}}"#,
            pair.public
        )
    );
    let subnet = agent.subnet;
    agent.stop().await;
    let again = Running::start(with_key_dir()).await;
    assert_eq!(again.subnet, subnet);
    assert_eq!(weft_control::wg_key::load(&state).unwrap().unwrap().public, pair.public, "the same key");

    // Another backend's node makes none.
    let (etcd2, dir2) = etcd_with_network(VXLAN_NET);
    let vx_state = dir2.path().join("state");
    let _vx = Running::start(weft_control::etcd::AgentSettings {
        wg_key_dir: Some(vx_state.clone()),
        ..settings(&etcd2, 12, dir2.path())
    })
    .await;
    assert!(!vx_state.join(weft_control::wg_key::FILE).exists());
}
