//! An agent started before etcd (or before its network config) waits with backoff, as
//! flanneld does, and starts normally once etcd answers; shutdown ends the wait cleanly.
//! Against a real etcd started late on the port the agent was told about.

mod common;

use std::time::Duration;

use common::*;
use tokio::sync::oneshot;
use weft_control::etcd::{Agent, ControlError};

const VXLAN_NET: &str = r#"{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}"#;

/// Runs `Agent::start_when_ready` in a task that stops when the returned sender fires.
fn waiting_agent(
    settings: weft_control::etcd::AgentSettings,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<Option<Agent>, ControlError>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(Agent::start_when_ready(settings, async {
        let _ = stopped.await;
    }));
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_started_before_etcd_waits_then_acquires_and_routes_once_etcd_answers() {
    let mut etcd = Etcd::reserved();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&etcd, 11, dir.path());
    s.rpc_timeout = Duration::from_secs(1);
    let (_stop, task) = waiting_agent(s.clone());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!task.is_finished(), "start_when_ready gave up while etcd was not there");
    assert!(!s.subnet_file.exists(), "no subnet.env before a lease");

    // etcd comes up empty (the agent may see it without a network config for a moment:
    // it waits through that too), then the operator writes the config.
    tokio::task::block_in_place(|| etcd.start_now());
    put_network(&etcd, VXLAN_NET);
    let agent = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the agent starts within 20 s of etcd answering")
        .unwrap()
        .expect("no error")
        .expect("not shut down");
    let subnet = agent.subnet();
    assert!("198.19.0.0/16".parse::<ipnet::Ipv4Net>().unwrap().contains(&subnet), "{subnet}");
    let key = format!("{PREFIX}/subnets/{}-{}", subnet.network(), subnet.prefix_len());
    let lease = etcd.get(&key).expect("our lease is in etcd");
    assert!(lease.contains("\"PublicIP\":\"198.18.0.11\""), "{lease}");
    assert!(std::fs::read_to_string(&s.subnet_file).unwrap().contains("FLANNEL_SUBNET="));

    // And it runs as any agent does: a peer's lease becomes a route.
    let running = Running::from_agent(agent);
    put_peer(&etcd, "198.19.200.0-24", "198.18.0.200", "0a:58:c6:12:00:c8");
    let peer = "198.19.200.0/24".parse().unwrap();
    wait_for("the peer's route", Duration::from_secs(10), || running.table().contains_key(&peer)).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_waiting_for_etcd_stops_on_shutdown_without_an_error() {
    let etcd = Etcd::reserved();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&etcd, 12, dir.path());
    s.rpc_timeout = Duration::from_secs(1);
    let (stop, task) = waiting_agent(s);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!task.is_finished());
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(2), task).await.expect("stops at once").unwrap();
    assert!(matches!(result, Ok(None)), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_network_config_is_an_error_at_once_not_a_wait() {
    let (etcd, dir) = etcd_with_network(r#"{"Network":"198.19.0.0/16","Backend":{"Type":"udp"}}"#);
    let (_stop, task) = waiting_agent(settings(&etcd, 13, dir.path()));
    let result = tokio::time::timeout(Duration::from_secs(5), task).await.expect("no wait").unwrap();
    assert!(matches!(result, Err(ControlError::BadNetworkConfig { .. })), "{result:?}");
}
