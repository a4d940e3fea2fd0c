//! The API requests, answered from the shared state.

use std::sync::Arc;

use super::dataplane::lock;
use super::state::Shared;
use crate::api::{ApiHandler, Reply, Request};
use crate::config::{IfName, PodSpec};

/// Answers API requests for a running daemon.
#[derive(Debug)]
pub struct Handler {
    pub(crate) shared: Arc<Shared>,
}

fn pod_add(shared: &Shared, interface: &str, ip: &str, mac: Option<&str>) -> Result<Reply, String> {
    let spec = PodSpec::parse("pod", interface, ip, mac).map_err(|e| e.to_string())?;
    if let Some(subnet) = shared.subnet().filter(|s| !s.contains(&spec.ip)) {
        return Err(format!("pod.ip: {} is not in our pod subnet {subnet}", spec.ip));
    }
    if let Some(why) = shared.subnet().and_then(|s| crate::config::reserved_in_subnet(s, spec.ip)) {
        return Err(format!("pod.ip: {} is {why}", spec.ip));
    }
    let mut dp = lock(&shared.dataplane);
    let dp = dp.as_mut().ok_or_else(|| shared.not_running())?;
    let changed = dp.pod_add(spec).map_err(|e| e.to_string())?;
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
    let mut dp = lock(&shared.dataplane);
    let dp = dp.as_mut().ok_or_else(|| shared.not_running())?;
    let changed = dp.pod_del(interface, ip).map_err(|e| e.to_string())?;
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
            Request::PodAdd { interface, ip, mac } => pod_add(&shared, &interface, &ip, mac.as_deref()),
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
