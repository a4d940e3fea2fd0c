//! weft's API socket, spoken directly: one JSON request line, one JSON reply line
//! (`control/src/api`): `pod_add`, `pod_del`, `status`.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// How long to wait for weft (a pod add opens sockets and may restart a worker).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request did not succeed.
#[derive(Debug)]
pub enum ApiError {
    /// Nothing answers on the socket: weft is not running (or another socket is configured).
    Unreachable(String),
    /// weft answered with an error or an unreadable reply.
    Refused(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unreachable(m) | ApiError::Refused(m) => f.write_str(m),
        }
    }
}

/// A pod weft has attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// Host-side interface.
    pub interface: String,
    /// Its IP.
    pub ip: String,
}

fn call(socket: &Path, req: &Value) -> Result<Value, ApiError> {
    let at = |e: std::io::Error| format!("weft API {}: {e}", socket.display());
    let stream = UnixStream::connect(socket).map_err(|e| {
        ApiError::Unreachable(format!(
            "cannot reach weft at {} (is `weft run` running?): {e}",
            socket.display()
        ))
    })?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| ApiError::Refused(at(e)))?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| ApiError::Refused(at(e)))?;
    let mut line = req.to_string();
    line.push('\n');
    (&stream).write_all(line.as_bytes()).map_err(|e| ApiError::Refused(at(e)))?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(|e| ApiError::Refused(at(e)))?;
    let v: Value = serde_json::from_str(&reply).map_err(|e| {
        ApiError::Refused(format!("weft API {}: unreadable reply {reply:?}: {e}", socket.display()))
    })?;
    if v.get("reply").and_then(Value::as_str) == Some("error") {
        let msg = v.get("message").and_then(Value::as_str).unwrap_or("(no message)");
        return Err(ApiError::Refused(format!("weft refused: {msg}")));
    }
    Ok(v)
}

/// Attaches the pod behind host interface `interface`; with `pod` (namespace, name) weft also
/// records it, with `labels`, for network policy.
pub fn pod_add(
    socket: &Path,
    interface: &str,
    ip: Ipv4Addr,
    mac: &str,
    pod: Option<(String, String)>,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let mut req = json!({ "op": "pod_add", "interface": interface, "ip": ip.to_string(), "mac": mac });
    if let Some((namespace, name)) = pod {
        req["namespace"] = json!(namespace);
        req["name"] = json!(name);
        req["labels"] = json!(labels);
    }
    call(socket, &req).map(drop)
}

/// Detaches it (weft: idempotent). Returns whether weft had it.
pub fn pod_del(socket: &Path, interface: &str) -> Result<bool, ApiError> {
    let v = call(socket, &json!({ "op": "pod_del", "interface": interface }))?;
    Ok(v.get("changed").and_then(Value::as_bool).unwrap_or(false))
}

/// The pods weft has attached.
pub fn pods(socket: &Path) -> Result<Vec<Pod>, ApiError> {
    let v = call(socket, &json!({ "op": "status" }))?;
    let list = v.pointer("/report/pods").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(list
        .iter()
        .map(|p| Pod {
            interface: p.get("interface").and_then(Value::as_str).unwrap_or_default().to_owned(),
            ip: p.get("ip").and_then(Value::as_str).unwrap_or_default().to_owned(),
        })
        .collect())
}

/// Whether weft runs (its status says `running`).
pub fn running(socket: &Path) -> Result<bool, ApiError> {
    let v = call(socket, &json!({ "op": "status" }))?;
    Ok(v.pointer("/report/phase").and_then(Value::as_str) == Some("running"))
}
