//! Endpoint and namespace records in etcd, beside the policies, as Calico's etcd datastore keeps
//! them:
//! - `<weft_prefix>/endpoints/<namespace>/<name>`: one pod's namespace, name, labels, address
//!   and node (JSON), written by the node that attached the pod, deleted when it detaches it;
//! - `<weft_prefix>/namespaces/<name>`: a namespace's labels (`{"labels": {...}}`).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::selector::Labels;
use super::validate::{check_name, check_namespace};

/// One pod as the policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: Labels,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// The node that attached it.
    #[serde(default)]
    pub node: String,
}

impl Endpoint {
    /// Checks the namespace, name and labels as Kubernetes would.
    pub fn check(&self) -> Result<(), String> {
        check_namespace(&self.namespace).map_err(|e| format!("pod namespace: {e}"))?;
        check_name(&self.name).map_err(|e| format!("pod name: {e}"))?;
        for (k, v) in &self.labels {
            super::selector::check_label_key(k).map_err(|e| format!("pod labels: {e}"))?;
            super::selector::check_label_value(v).map_err(|e| format!("pod labels: {e}"))?;
        }
        Ok(())
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an endpoint always serialises")
    }
}

#[cfg(test)]
impl Endpoint {
    /// Pod `ns/name` at `ip` with `labels`, on no particular node.
    pub(crate) fn sample(ns: &str, name: &str, ip: [u8; 4], labels: &[(&str, &str)]) -> Self {
        Endpoint {
            namespace: ns.into(),
            name: name.into(),
            labels: labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            ip: Ipv4Addr::from(ip),
            node: String::new(),
        }
    }
}

/// A namespace record's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceRecord {
    /// The namespace's labels.
    #[serde(default)]
    pub labels: Labels,
}

/// The record keys under one weft prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKeys {
    prefix: String,
}

/// What a key under the weft prefix holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey<'a> {
    /// A policy.
    Policy,
    /// An endpoint.
    Endpoint,
    /// A namespace's labels (its name).
    Namespace(&'a str),
    /// Something else.
    Other,
}

impl RecordKeys {
    /// Keys under `weft_prefix` (trailing slashes ignored).
    pub fn new(weft_prefix: &str) -> Self {
        RecordKeys { prefix: weft_prefix.trim_end_matches('/').to_owned() }
    }

    /// `<weft_prefix>/`: the list and watch prefix of everything policy enforcement reads.
    pub fn all(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// `<weft_prefix>/endpoints/<namespace>/<name>`.
    pub fn endpoint(&self, namespace: &str, name: &str) -> String {
        format!("{}/endpoints/{namespace}/{name}", self.prefix)
    }

    /// `<weft_prefix>/namespaces/<name>`.
    pub fn namespace(&self, name: &str) -> String {
        format!("{}/namespaces/{name}", self.prefix)
    }

    /// What `key` holds.
    pub fn classify<'a>(&self, key: &'a str) -> RecordKey<'a> {
        let Some(rest) = key.strip_prefix(self.prefix.as_str()).and_then(|r| r.strip_prefix('/')) else {
            return RecordKey::Other;
        };
        if rest.starts_with("policies/") {
            RecordKey::Policy
        } else if rest.starts_with("endpoints/") {
            RecordKey::Endpoint
        } else if let Some(ns) =
            rest.strip_prefix("namespaces/").filter(|n| !n.is_empty() && !n.contains('/'))
        {
            RecordKey::Namespace(ns)
        } else {
            RecordKey::Other
        }
    }
}

/// An endpoint record's value back (the key names it in errors).
pub fn decode_endpoint(key: &str, value: &[u8]) -> Result<Endpoint, String> {
    let e: Endpoint =
        serde_json::from_slice(value).map_err(|e| format!("{key}: not an endpoint record: {e}"))?;
    e.check().map_err(|m| format!("{key}: {m}"))?;
    Ok(e)
}

/// A namespace record's value back.
pub fn decode_namespace(key: &str, value: &[u8]) -> Result<NamespaceRecord, String> {
    serde_json::from_slice(value).map_err(|e| format!("{key}: not a namespace record: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified_by_their_kind() {
        let k = RecordKeys::new("/weft/");
        assert_eq!(k.endpoint("x", "a"), "/weft/endpoints/x/a");
        assert_eq!(k.classify("/weft/endpoints/x/a"), RecordKey::Endpoint);
        assert_eq!(k.classify("/weft/policies/x/p"), RecordKey::Policy);
        assert_eq!(k.classify(&k.namespace("x")), RecordKey::Namespace("x"));
        assert_eq!(k.classify("/weftx/policies/x/p"), RecordKey::Other);
        assert_eq!(k.classify("/weft/namespaces/"), RecordKey::Other);
    }

    #[test]
    fn an_endpoint_round_trips_and_bad_labels_are_refused() {
        let mut e = Endpoint {
            namespace: "x".into(),
            name: "a".into(),
            labels: [("pod".to_owned(), "a".to_owned())].into(),
            ip: Ipv4Addr::new(198, 19, 1, 2),
            node: "n1".into(),
        };
        assert_eq!(decode_endpoint("k", e.to_json().as_bytes()), Ok(e.clone()));
        e.labels.insert("-bad".into(), "v".into());
        assert!(decode_endpoint("k", e.to_json().as_bytes()).unwrap_err().contains("-bad"));
        assert!(decode_endpoint("k", b"{}").unwrap_err().starts_with("k: not an endpoint record"));
    }
}
