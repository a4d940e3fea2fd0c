//! The node's network policy loop against a real etcd: policies, endpoint records and namespace
//! labels under the weft prefix are compiled into the engine's per-pod set and republished on
//! every change (policy applied, deleted, a pod's labels changed, a namespace relabelled); the
//! loop writes and deletes endpoint records for the API, and survives a compaction.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Etcd, settings, wait_for};
use tokio::sync::{mpsc, oneshot};
use weft_control::api::PolicyState;
use weft_control::policy::{Endpoint, EndpointOp, EndpointRequest, PolicySync};
use weft_engine::policy::{PolicySet, SharedPolicy, shared_policy};

const PREFIX: &str = "/weft-test";
const XA: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);
const XB: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 3);
const YA: Ipv4Addr = Ipv4Addr::new(198, 19, 2, 2);

struct Loop {
    target: SharedPolicy,
    lease: tokio::sync::watch::Sender<i64>,
    status: tokio::sync::watch::Receiver<PolicyState>,
    requests: mpsc::Sender<EndpointRequest>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Loop {
    async fn start(etcd: &Etcd, dir: &std::path::Path) -> Self {
        Self::start_on_lease(etcd, dir, 0).await
    }

    /// A loop that puts its endpoint records on etcd lease `lease` (0: none).
    async fn start_on_lease(etcd: &Etcd, dir: &std::path::Path, lease: i64) -> Self {
        let target: SharedPolicy = shared_policy();
        let (lease_tx, lease_rx) = tokio::sync::watch::channel(lease);
        let sync = PolicySync::connect(
            settings(etcd, 1, dir),
            PREFIX,
            "198.19.1.0/24".parse().unwrap(),
            target.clone(),
            lease_rx,
        )
        .await
        .unwrap();
        let status = sync.status();
        let (requests, rx) = mpsc::channel(8);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(sync.run(rx, async move {
            let _ = stopped.await;
        }));
        Loop { target, lease: lease_tx, status, requests, stop: Some(stop), task }
    }

    fn set(&self) -> Arc<PolicySet> {
        self.target.load_full()
    }

    fn published(&self) -> u64 {
        self.status.borrow().published
    }

    async fn request(&self, op: EndpointOp) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.requests.send((op, tx)).await.unwrap();
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)).unwrap()).await.unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("the loop stops").unwrap();
    }
}

fn put_endpoint(etcd: &Etcd, ns: &str, name: &str, ip: Ipv4Addr, labels: &str) {
    let value = format!(r#"{{"namespace":"{ns}","name":"{name}","ip":"{ip}","labels":{labels},"node":"n"}}"#);
    etcd.etcdctl(&["put", &format!("{PREFIX}/endpoints/{ns}/{name}"), &value]);
}

fn put_policy(etcd: &Etcd, ns: &str, name: &str, spec: &str) {
    let value = format!(
        r#"{{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":{spec}}}"#
    );
    etcd.etcdctl(&["put", &format!("{PREFIX}/policies/{ns}/{name}"), &value]);
}

fn ingress_allows(set: &PolicySet, pod: Ipv4Addr, peer: Ipv4Addr, port: u16) -> Option<bool> {
    let p = set.pod(u32::from(pod))?;
    Some(p.ingress.as_ref().is_none_or(|r| r.allows(u32::from(peer), 6, port)))
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn policies_endpoints_and_namespaces_are_compiled_and_republished_on_every_change() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    put_endpoint(&etcd, "x", "a", XA, r#"{"pod":"a"}"#);
    put_endpoint(&etcd, "x", "b", XB, r#"{"pod":"b"}"#);
    put_endpoint(&etcd, "y", "a", YA, r#"{"pod":"a"}"#);
    // Allow x/a from namespaces labelled team=y on TCP 80.
    put_policy(
        &etcd,
        "x",
        "allow-y",
        r#"{"podSelector":{"matchLabels":{"pod":"a"}},"ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"team":"y"}}}],"ports":[{"port":80}]}]}"#,
    );
    let l = Loop::start(&etcd, dir.path()).await;
    wait_for("the first set", WAIT, || l.published() >= 1).await;
    assert_eq!(ingress_allows(&l.set(), XA, YA, 80), Some(false), "namespace y has no team label yet");
    assert!(l.set().pod(u32::from(XB)).is_none(), "x/b is not selected");
    assert!(l.set().pod(u32::from(YA)).is_none(), "y/a is not on this node");

    // Namespace y gets its label: y/a may reach x/a on 80.
    etcd.etcdctl(&["put", &format!("{PREFIX}/namespaces/y"), r#"{"labels":{"team":"y"}}"#]);
    wait_for("namespace labels applied", WAIT, || ingress_allows(&l.set(), XA, YA, 80) == Some(true)).await;
    assert_eq!(ingress_allows(&l.set(), XA, YA, 81), Some(false));

    // x/b takes the label pod=a: now selected too.
    put_endpoint(&etcd, "x", "b", XB, r#"{"pod":"a"}"#);
    wait_for("relabelled pod selected", WAIT, || l.set().pod(u32::from(XB)).is_some()).await;

    // Deleting the policy lifts every isolation.
    let started = Instant::now();
    etcd.etcdctl(&["del", &format!("{PREFIX}/policies/x/allow-y")]);
    wait_for("policy removed", WAIT, || l.set().is_empty()).await;
    eprintln!("policy delete -> published set: {:?} (etcdctl included)", started.elapsed());

    // A bad record is skipped and counted, not fatal.
    etcd.etcdctl(&["put", &format!("{PREFIX}/endpoints/x/c"), "not json"]);
    wait_for("bad record counted", WAIT, || l.status.borrow().bad_records >= 1).await;
    assert!(l.status.borrow().connected);
    l.stop().await;
}

#[tokio::test]
async fn the_loop_writes_and_deletes_endpoint_records_and_sees_them_back() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    put_policy(&etcd, "x", "deny", r#"{"podSelector":{}}"#);
    let l = Loop::start(&etcd, dir.path()).await;
    wait_for("the first set", WAIT, || l.published() >= 1).await;
    assert!(l.set().is_empty(), "no endpoints yet");
    let e = Endpoint {
        namespace: "x".into(),
        name: "a".into(),
        labels: [("pod".to_owned(), "a".to_owned())].into(),
        ip: XA,
        node: "n1".into(),
    };
    l.request(EndpointOp::Put(e.clone())).await.unwrap();
    let stored = etcd.get(&format!("{PREFIX}/endpoints/x/a")).expect("record written");
    assert_eq!(serde_json::from_str::<Endpoint>(&stored).unwrap(), e);
    wait_for("the new pod isolated", WAIT, || l.set().pod(u32::from(XA)).is_some()).await;

    // A compaction does not disturb the loop.
    etcd.compact();
    l.request(EndpointOp::Delete { namespace: "x".into(), name: "a".into() }).await.unwrap();
    assert_eq!(etcd.get(&format!("{PREFIX}/endpoints/x/a")), None);
    wait_for("the pod's isolation gone", WAIT, || l.set().is_empty()).await;
    l.stop().await;
}

#[tokio::test]
async fn endpoint_records_live_on_the_nodes_lease_and_follow_it_when_it_changes() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let first = etcd.grant(60);
    let l = Loop::start_on_lease(&etcd, dir.path(), i64::from_str_radix(&first, 16).unwrap()).await;
    wait_for("the first set", WAIT, || l.published() >= 1).await;
    let e = |name: &str, ip| Endpoint {
        namespace: "x".into(),
        name: name.into(),
        labels: [("pod".to_owned(), name.to_owned())].into(),
        ip,
        node: "n1".into(),
    };
    l.request(EndpointOp::Put(e("a", XA))).await.unwrap();
    l.request(EndpointOp::Put(e("b", XB))).await.unwrap();
    let key = |name: &str| format!("{PREFIX}/endpoints/x/{name}");
    assert!(etcd.get(&key("a")).is_some() && etcd.get(&key("b")).is_some());

    // The lease agent re-acquired the subnet on another lease and revoked the first: the
    // records are put on the new lease before (or right after) the old one takes them away.
    let second = etcd.grant(60);
    l.lease.send(i64::from_str_radix(&second, 16).unwrap()).unwrap();
    let want = i64::from_str_radix(&second, 16).unwrap();
    let mut on_second = false;
    for _ in 0..50 {
        let snap = common::etcd::Snapshot::take(&etcd.endpoint()).await;
        on_second =
            [key("a"), key("b")].iter().all(|k| snap.keys.get(k).is_some_and(|(_, lease)| *lease == want));
        if on_second {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(on_second, "the records are put on the second lease");
    etcd.etcdctl(&["lease", "revoke", &first]);
    assert!(etcd.get(&key("a")).is_some(), "the first lease no longer holds the record");

    // The node dies: its lease is revoked (or expires) and its pods' records go with it.
    etcd.etcdctl(&["lease", "revoke", &second]);
    assert_eq!((etcd.get(&key("a")), etcd.get(&key("b"))), (None, None));
    wait_for("the dead node's pods forgotten", WAIT, || l.set().is_empty()).await;
    l.stop().await;
}
