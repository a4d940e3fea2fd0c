//! `networking.k8s.io/v1` NetworkPolicy exactly as written in YAML or JSON: serde types whose
//! unknown fields are errors. [`super::validate`] turns them into [`super::NetworkPolicy`].
//!
//! These are also the stored form: what `weft policy apply` writes to etcd is the JSON of a
//! [`RawPolicy`] (server-populated metadata such as `uid` or `managedFields` is accepted on input,
//! so `kubectl get -o yaml` output applies, and left out of the stored form).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One NetworkPolicy object.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPolicy {
    /// Must be `networking.k8s.io/v1`.
    pub api_version: Option<String>,
    /// Must be `NetworkPolicy`.
    pub kind: Option<String>,
    /// Name, namespace, labels.
    pub metadata: Option<RawMeta>,
    /// The policy.
    pub spec: Option<RawSpec>,
    /// Present in objects read back from an API server; ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

/// `metadata` (Kubernetes ObjectMeta). Only name, namespace, labels and annotations mean anything
/// here; the server-populated fields are accepted and dropped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawMeta {
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing)]
    pub generate_name: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub self_link: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub uid: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub resource_version: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub generation: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub creation_timestamp: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub deletion_timestamp: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub deletion_grace_period_seconds: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub owner_references: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub finalizers: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub managed_fields: Option<serde_json::Value>,
}

/// `spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<RawSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<RawIngressRule>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<RawEgressRule>>,
}

/// `spec.ingress[i]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawIngressRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<RawPeer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<RawPort>>,
}

/// `spec.egress[i]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawEgressRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<RawPeer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<RawPort>>,
}

/// One peer of `from` / `to`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawPeer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<RawSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<RawSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<RawIpBlock>,
}

/// `ipBlock`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawIpBlock {
    pub cidr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub except: Option<Vec<String>>,
}

/// One entry of `ports`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawPort {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i64>,
}

/// Kubernetes `IntOrString`: a port number or a named port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A name (a container port's name).
    String(String),
}

/// A `LabelSelector`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawSelector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<RawRequirement>>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawRequirement {
    pub key: Option<String>,
    pub operator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}
