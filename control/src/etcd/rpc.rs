//! One place that turns etcd-client calls into [`ControlError`]s with a deadline.

use std::future::Future;

use etcd_client::{Client, GetOptions, GetResponse};

use super::credentials::diagnose;
use super::{AgentSettings, ControlError};

/// Runs one etcd call with the settings' deadline, naming `context` on failure; a
/// failure only the operator can fix (certificate, user) names the `[etcd]` key at fault.
pub(crate) async fn call<T>(
    settings: &AgentSettings,
    context: impl FnOnce() -> String,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, ControlError> {
    let endpoints = settings.endpoints.join(",");
    let timeout = settings.rpc_timeout;
    let message = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => match diagnose(&e, settings).await {
            Some(diagnosed) => return Err(diagnosed),
            None => e.to_string(),
        },
        Err(_) => format!("no answer within {timeout:?}"),
    };
    Err(ControlError::Etcd { context: context(), message, endpoints })
}

/// Every key under `prefix` in one read (a consistent snapshot: its header carries the
/// revision to watch from).
pub(crate) async fn list_prefix(
    client: &mut Client,
    settings: &AgentSettings,
    prefix: &str,
) -> Result<GetResponse, ControlError> {
    call(settings, || format!("list {prefix}"), client.get(prefix, Some(GetOptions::new().with_prefix())))
        .await
}
