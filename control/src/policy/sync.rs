//! The node's policy loop: lists and watches the policies, endpoint records and namespace
//! records under weft's prefix, compiles them into the engine's [`PolicySet`] for the pods of
//! this node and publishes it whole (one store the workers see at their next batch); it also
//! writes and deletes this node's endpoint records for the API.
//!
//! This node's endpoint records are put on the node's etcd lease (the one its subnet lease is
//! on): if the node dies, they vanish with its subnet lease, so a node that takes the subnet
//! later never inherits records carrying the dead node's pods' labels. When the lease agent
//! re-acquires the subnet on another etcd lease, the loop puts every record of its pods again
//! on the new one.
//!
//! ```text
//! loop { list <weft_prefix>/ -> records -> compile -> publish
//!        watch from the list's revision + 1
//!          one response -> records -> compile -> publish
//!          endpoint put/delete requests -> etcd (the watch brings them back)
//!          compaction, etcd error -> back off, re-list }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, EventType, KeyValue, PutOptions, WatchOptions};
use ipnet::Ipv4Net;
use tokio::sync::{mpsc, watch};
use weft_engine::policy::{PolicySet, SharedPolicy};

use super::endpoint::Endpoint;
use super::records::Records;
use crate::api::PolicyState;
use crate::etcd::rpc::{call, list_prefix};
use crate::etcd::{AgentSettings, ControlError};

/// A change to one of this node's endpoint records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointOp {
    /// Write the record (a pod attached).
    Put(Endpoint),
    /// Delete `<namespace>/<name>`'s record (its pod detached).
    Delete {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
}

/// One request to the loop and where its outcome goes.
pub type EndpointRequest = (EndpointOp, std::sync::mpsc::SyncSender<Result<(), String>>);

/// The loop's state (see the module docs).
pub struct PolicySync {
    settings: AgentSettings,
    client: Client,
    records: Records,
    /// Pods whose address is in it are this node's.
    local: Ipv4Net,
    target: SharedPolicy,
    revision: i64,
    status: watch::Sender<PolicyState>,
    /// The node's etcd lease id (0: none), from the lease agent.
    lease: watch::Receiver<i64>,
    /// The records this loop wrote (its node's pods), by key: put again when the lease changes.
    written: BTreeMap<String, Endpoint>,
    /// The lease changed and the records are not all on the new one yet.
    unmoved: bool,
}

impl std::fmt::Debug for PolicySync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySync").field("keys", self.records.keys()).field("local", &self.local).finish()
    }
}

/// The longest wait between two attempts after an etcd error.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl PolicySync {
    /// A loop for the pods in `local`, reading under `weft_prefix` and publishing into `target`;
    /// it puts the node's endpoint records on the etcd lease `lease` holds (0: on none).
    /// The client connects lazily: this succeeds while etcd is down.
    pub async fn connect(
        settings: AgentSettings,
        weft_prefix: &str,
        local: Ipv4Net,
        target: SharedPolicy,
        lease: watch::Receiver<i64>,
    ) -> Result<Self, ControlError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_keep_alive(settings.client.keepalive_interval, settings.client.keepalive_timeout)
            .with_keep_alive_while_idle(false);
        let options = crate::etcd::credentials::connect_options(options, &settings.client);
        let client =
            call(&settings, || "connect".into(), Client::connect(settings.endpoints.clone(), Some(options)))
                .await?;
        Ok(PolicySync {
            settings,
            client,
            records: Records::new(weft_prefix),
            local,
            target,
            revision: 0,
            status: watch::Sender::new(PolicyState::default()),
            lease,
            written: BTreeMap::new(),
            unmoved: false,
        })
    }

    /// The loop's status, updated after every step.
    pub fn status(&self) -> watch::Receiver<PolicyState> {
        self.status.subscribe()
    }

    /// Runs until `shutdown`, serving `requests` while the watch is up.
    pub async fn run(
        mut self,
        mut requests: mpsc::Receiver<EndpointRequest>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = match self.list().await {
                Ok(()) => self.watch(&mut requests, &mut shutdown).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(true) => return,
                Ok(false) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!("network policy: {e}; retrying in {backoff:?}");
                    self.status.send_modify(|s| s.connected = false);
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Reads every record afresh and publishes.
    async fn list(&mut self) -> Result<(), ControlError> {
        let resp = list_prefix(&mut self.client, &self.settings, &self.records.keys().all()).await?;
        self.revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        self.records.clear();
        for kv in resp.kvs() {
            self.put(kv);
        }
        self.publish();
        Ok(())
    }

    /// Watches from the listed revision; `Ok(true)` on shutdown, `Ok(false)` to re-list.
    async fn watch(
        &mut self,
        requests: &mut mpsc::Receiver<EndpointRequest>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<bool, ControlError> {
        let prefix = self.records.keys().all();
        let start = self.revision + 1;
        let options = WatchOptions::new().with_prefix().with_start_revision(start);
        let (mut watcher, mut stream) = call(
            &self.settings,
            || format!("watch {prefix} from revision {start}"),
            self.client.watch(prefix.clone(), Some(options)),
        )
        .await?;
        self.status.send_modify(|s| s.connected = true);
        if self.unmoved {
            self.move_records().await?;
        }
        let endpoints = self.settings.endpoints.join(",");
        let broken = |message: String| ControlError::Etcd {
            context: format!("watch {prefix}"),
            message,
            endpoints: endpoints.clone(),
        };
        loop {
            tokio::select! {
                _ = &mut *shutdown => {
                    let _ = watcher.cancel().await;
                    return Ok(true);
                }
                Some((op, reply)) = requests.recv() => {
                    let outcome = self.write(op).await.map_err(|e| e.to_string());
                    let _ = reply.try_send(outcome);
                }
                Ok(()) = self.lease.changed() => {
                    self.unmoved = true;
                    self.move_records().await?;
                }
                msg = stream.message() => {
                    let resp = match msg {
                        Ok(Some(resp)) => resp,
                        Ok(None) => return Err(broken("stream closed".into())),
                        Err(e) => return Err(broken(e.to_string())),
                    };
                    if resp.compact_revision() > 0 || resp.canceled() {
                        tracing::warn!(compacted = resp.compact_revision(), "policy watch cancelled ({}); re-listing", resp.cancel_reason());
                        return Ok(false);
                    }
                    let mut changed = false;
                    for event in resp.events() {
                        let Some(kv) = event.kv() else { continue };
                        self.revision = self.revision.max(kv.mod_revision());
                        changed |= match event.event_type() {
                            EventType::Put => self.put(kv),
                            EventType::Delete => self.delete(kv),
                        };
                    }
                    if changed {
                        self.publish();
                    }
                }
            }
        }
    }

    /// Puts every record this loop wrote again, on the node's current etcd lease.
    async fn move_records(&mut self) -> Result<(), ControlError> {
        let ours: Vec<Endpoint> = self.written.values().cloned().collect();
        for e in ours {
            self.write(EndpointOp::Put(e)).await?;
        }
        self.unmoved = false;
        let lease = *self.lease.borrow();
        tracing::info!(
            lease = format!("{lease:x}"),
            records = self.written.len(),
            "endpoint records put on the node's new etcd lease"
        );
        Ok(())
    }

    async fn write(&mut self, op: EndpointOp) -> Result<(), ControlError> {
        match op {
            EndpointOp::Put(e) => {
                let key = self.records.keys().endpoint(&e.namespace, &e.name);
                let lease = *self.lease.borrow();
                let options = (lease != 0).then(|| PutOptions::new().with_lease(lease));
                call(
                    &self.settings,
                    || format!("put {key}"),
                    self.client.put(key.clone(), e.to_json(), options.clone()),
                )
                .await?;
                self.written.insert(key, e);
            }
            EndpointOp::Delete { namespace, name } => {
                let key = self.records.keys().endpoint(&namespace, &name);
                call(&self.settings, || format!("delete {key}"), self.client.delete(key.clone(), None))
                    .await?;
                self.written.remove(&key);
            }
        }
        Ok(())
    }

    fn bad(&self, problem: String) {
        tracing::warn!("network policy: ignoring {problem}");
        self.status.send_modify(|s| s.bad_records += 1);
    }

    /// Takes one record in; whether anything the compiler reads changed.
    fn put(&mut self, kv: &KeyValue) -> bool {
        let outcome = self.records.put(&String::from_utf8_lossy(kv.key()), kv.value());
        if let Some(problem) = outcome.bad {
            self.bad(problem);
        }
        outcome.changed
    }

    fn delete(&mut self, kv: &KeyValue) -> bool {
        self.records.delete(&String::from_utf8_lossy(kv.key()))
    }

    /// Compiles the records and publishes the result.
    fn publish(&mut self) {
        let started = Instant::now();
        let inputs = self.records.inputs();
        let local = self.local;
        let set: PolicySet = inputs.compile(|ip| local.contains(&ip));
        let isolated = set.len();
        self.target.store(Arc::new(set));
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (policies, endpoints) = self.records.counts();
        self.status.send_modify(|s| {
            s.policies = policies;
            s.endpoints = endpoints;
            s.isolated_pods = isolated;
            s.published += 1;
            s.last_compile_us = took;
        });
        tracing::debug!(policies, endpoints, isolated, took_us = took, "network policy published");
    }
}
