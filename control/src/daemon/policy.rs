//! Network policy in the daemon (etcd mode): the policy loop ([`PolicySync`]) runs beside the
//! lease agent and publishes into the route programmer's policy handle; the API's pod add and
//! del write and delete this node's endpoint records through it, on the node's etcd lease.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ipnet::Ipv4Net;
use tokio::sync::{mpsc, watch};
use weft_engine::policy::SharedPolicy;

use crate::api::PolicyState;
use crate::etcd::{AgentSettings, AgentStatus};
use crate::policy::{Endpoint, EndpointOp, EndpointRequest, PolicySync};

/// Endpoint writes waiting for the loop at most.
const REQUESTS: usize = 64;

/// How long a pod add waits for its endpoint record to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The API's side of the policy loop.
#[derive(Debug)]
pub(crate) struct PolicyHandle {
    requests: mpsc::Sender<EndpointRequest>,
    pub(crate) status: watch::Receiver<PolicyState>,
    /// The endpoint record written for each pod interface: `(namespace, name)`.
    by_interface: Mutex<HashMap<String, (String, String)>>,
}

impl PolicyHandle {
    /// Sends `op` to the loop and waits for etcd's answer (call from a blocking thread).
    fn request(&self, op: EndpointOp) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.requests.blocking_send((op, tx)).map_err(|_| "the network policy loop stopped".to_owned())?;
        match rx.recv_timeout(WRITE_TIMEOUT) {
            Ok(r) => r,
            Err(_) => Err(format!("etcd did not take the endpoint record within {WRITE_TIMEOUT:?}")),
        }
    }

    /// Writes the endpoint record of the pod on `interface`.
    pub(crate) fn endpoint_added(&self, interface: &str, e: Endpoint) -> Result<(), String> {
        let id = (e.namespace.clone(), e.name.clone());
        self.request(EndpointOp::Put(e))?;
        let old = self
            .by_interface
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(interface.to_owned(), id.clone());
        if let Some((namespace, name)) = old.filter(|o| *o != id) {
            self.request(EndpointOp::Delete { namespace, name })?;
        }
        Ok(())
    }

    /// Deletes the endpoint record of the pod on `interface`, if one was written.
    pub(crate) fn endpoint_removed(&self, interface: &str) -> Result<(), String> {
        let old = self.by_interface.lock().unwrap_or_else(|p| p.into_inner()).remove(interface);
        match old {
            Some((namespace, name)) => self.request(EndpointOp::Delete { namespace, name }),
            None => Ok(()),
        }
    }
}

/// The node's etcd lease id as the lease agent's status changes it.
fn lease_ids(mut agent: watch::Receiver<AgentStatus>) -> watch::Receiver<i64> {
    let (tx, rx) = watch::channel(agent.borrow_and_update().lease_id);
    tokio::spawn(async move {
        while agent.changed().await.is_ok() {
            let id = agent.borrow_and_update().lease_id;
            tx.send_if_modified(|old| std::mem::replace(old, id) != id);
        }
    });
    rx
}

/// Starts the policy loop for the pods of `subnet`, publishing into `target` and putting the
/// node's endpoint records on the etcd lease the lease agent (`agent`) holds; returns the API's
/// handle and the task.
pub(crate) async fn start(
    settings: AgentSettings,
    weft_prefix: &str,
    subnet: Ipv4Net,
    target: SharedPolicy,
    agent: watch::Receiver<AgentStatus>,
    stop: watch::Receiver<bool>,
) -> Result<(PolicyHandle, tokio::task::JoinHandle<()>), crate::etcd::ControlError> {
    let sync = PolicySync::connect(settings, weft_prefix, subnet, target, lease_ids(agent)).await?;
    let (tx, rx) = mpsc::channel(REQUESTS);
    let handle = PolicyHandle { requests: tx, status: sync.status(), by_interface: Mutex::default() };
    let task = tokio::spawn(sync.run(rx, super::stopped(stop)));
    Ok((handle, task))
}
