//! The API's messages. Field names are the wire format: keep them stable.

use serde::{Deserialize, Serialize};

use super::StatusReport;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The daemon's status report.
    Status,
    /// Attach a pod port (idempotent: the same pod again changes nothing).
    PodAdd {
        /// Host-side interface of the pod's veth.
        interface: String,
        /// The pod's IPv4 address, in our pod subnet.
        ip: String,
        /// The pod's MAC, when the caller knows it.
        #[serde(default)]
        mac: Option<String>,
        /// The pod's Kubernetes namespace: with `name`, the daemon writes the pod's endpoint
        /// record (etcd mode), which network policies select it by.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// The pod's Kubernetes name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The pod's labels.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        labels: std::collections::BTreeMap<String, String>,
    },
    /// Detach a pod port (idempotent: an unknown pod changes nothing).
    PodDel {
        /// Host-side interface of the pod's veth.
        interface: String,
        /// When given, must match the attached pod's IP.
        #[serde(default)]
        ip: Option<String>,
    },
}

/// One reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The answer to [`Request::Status`].
    Status {
        /// The report.
        report: Box<StatusReport>,
    },
    /// A change request succeeded.
    Done {
        /// Whether anything changed (false: it was already so).
        changed: bool,
        /// One line for the operator.
        message: String,
    },
    /// The request was refused or failed; nothing changed.
    Error {
        /// One line naming the field or step and the problem.
        message: String,
    },
}
