//! The API requests, answered from the shared state.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::dataplane::lock;
use super::pod_store::PodRecord;
use super::state::Shared;
use crate::api::{ApiHandler, Reply, Request};
use crate::config::{IfName, PodSpec};
use crate::policy::Endpoint;

/// Answers API requests for a running daemon.
#[derive(Debug)]
pub struct Handler {
    pub(crate) shared: Arc<Shared>,
}

/// A pod's Kubernetes identity, as the API's pod add carries it.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodIdentity {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl PodIdentity {
    /// The pod's endpoint record, when it has a namespace and a name (checked as Kubernetes
    /// checks them).
    fn endpoint(&self, shared: &Shared, ip: std::net::Ipv4Addr) -> Result<Option<Endpoint>, String> {
        let (namespace, name) = match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => (ns.clone(), n.clone()),
            (None, None) if self.labels.is_empty() => return Ok(None),
            _ => return Err("pod: namespace and name go together (labels need both)".into()),
        };
        let e = Endpoint { namespace, name, labels: self.labels.clone(), ip, node: shared.node.clone() };
        e.check()?;
        Ok(Some(e))
    }
}

fn pod_add(
    shared: &Shared,
    interface: &str,
    ip: &str,
    mac: Option<&str>,
    who: &PodIdentity,
) -> Result<Reply, String> {
    let spec = PodSpec::parse("pod", interface, ip, mac).map_err(|e| e.to_string())?;
    let endpoint = who.endpoint(shared, spec.ip)?;
    if let Some(subnet) = shared.subnet().filter(|s| !s.contains(&spec.ip)) {
        return Err(format!("pod.ip: {} is not in our pod subnet {subnet}", spec.ip));
    }
    if let Some(why) = shared.subnet().and_then(|s| crate::config::reserved_in_subnet(s, spec.ip)) {
        return Err(format!("pod.ip: {} is {why}", spec.ip));
    }
    let changed = {
        let mut dp = lock(&shared.dataplane);
        let dp = dp.as_mut().ok_or_else(|| shared.not_running())?;
        dp.pod_add(spec).map_err(|e| e.to_string())?
    };
    let undo = || {
        if changed && let Some(dp) = lock(&shared.dataplane).as_mut() {
            let _ = dp.pod_del(spec.interface, Some(spec.ip));
        }
    };
    // A pod weft could not record would not come back after a restart: refuse it whole.
    let record = PodRecord::of(&spec, who.namespace.clone(), who.name.clone());
    if let Err(e) = shared.pod_store.put(&record) {
        undo();
        return Err(e.to_string());
    }
    // The endpoint record goes to etcd after the port is up; if it cannot, the attach is undone.
    if let (Some(e), Some(policy)) = (endpoint, shared.policy.get())
        && let Err(why) = policy.endpoint_added(spec.interface.as_str(), e)
    {
        undo();
        if changed {
            let _ = shared.pod_store.remove(spec.interface.as_str());
        }
        return Err(format!("pod {}: endpoint record: {why}", spec.interface));
    }
    let message = if changed {
        format!("pod {} {} attached", spec.interface, spec.ip)
    } else {
        format!("pod {} {} was already attached", spec.interface, spec.ip)
    };
    Ok(Reply::Done { changed, message })
}

fn pod_del(shared: &Shared, interface: &str, ip: Option<&str>) -> Result<Reply, String> {
    let interface = IfName::parse_at("pod.interface", interface).map_err(|e| e.to_string())?;
    let ip =
        ip.map(|s| s.parse().map_err(|_| format!("pod.ip: {s:?} is not an IPv4 address"))).transpose()?;
    let changed = {
        let mut dp = lock(&shared.dataplane);
        let dp = dp.as_mut().ok_or_else(|| shared.not_running())?;
        dp.pod_del(interface, ip).map_err(|e| e.to_string())?
    };
    shared.pod_store.remove(interface.as_str()).map_err(|e| e.to_string())?;
    if let Some(policy) = shared.policy.get() {
        policy
            .endpoint_removed(interface.as_str())
            .map_err(|e| format!("pod {interface}: endpoint record: {e}"))?;
    }
    let message = if changed {
        format!("pod {interface} detached")
    } else {
        format!("pod {interface} was not attached")
    };
    Ok(Reply::Done { changed, message })
}

impl ApiHandler for Handler {
    async fn handle(&self, req: Request) -> Reply {
        let shared = self.shared.clone();
        // Opening ports and restarting a worker block: keep them off the event loop.
        let result = tokio::task::spawn_blocking(move || match req {
            Request::Status => Ok(Reply::Status { report: Box::new(shared.report()) }),
            Request::PodAdd { interface, ip, mac, namespace, name, labels } => {
                let who = PodIdentity { namespace, name, labels };
                pod_add(&shared, &interface, &ip, mac.as_deref(), &who)
            }
            Request::PodDel { interface, ip } => pod_del(&shared, &interface, ip.as_deref()),
        })
        .await;
        match result {
            Ok(Ok(reply)) => reply,
            Ok(Err(message)) => {
                tracing::warn!("api request refused: {message}");
                Reply::Error { message }
            }
            Err(e) => Reply::Error { message: format!("internal error: {e}") },
        }
    }
}
