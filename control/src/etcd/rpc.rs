//! One place that turns etcd-client calls into [`ControlError`]s with a deadline.

use std::future::Future;
use std::time::Duration;

use super::ControlError;

/// Runs one unary etcd call with a deadline, naming `context` on failure.
pub(crate) async fn call<T>(
    endpoints: &[String],
    timeout: Duration,
    context: impl FnOnce() -> String,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, ControlError> {
    let err = |message: String, context: String| ControlError::Etcd {
        context,
        message,
        endpoints: endpoints.join(","),
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(err(e.to_string(), context())),
        Err(_) => Err(err(format!("no answer within {timeout:?}"), context())),
    }
}
