//! Every record policy enforcement reads (policies, endpoints, namespaces), by etcd key: the
//! daemon's watch keeps one up to date, `weft policy explain` reads one once.

use std::collections::BTreeMap;

use super::compile::PolicyInputs;
use super::endpoint::{Endpoint, RecordKey, RecordKeys, decode_endpoint, decode_namespace};
use super::model::NetworkPolicy;
use super::selector::Labels;
use super::store::decode;

/// The records under one weft prefix.
#[derive(Debug, Clone)]
pub struct Records {
    keys: RecordKeys,
    policies: BTreeMap<String, NetworkPolicy>,
    endpoints: BTreeMap<String, Endpoint>,
    namespaces: BTreeMap<String, Labels>,
}

/// What one put did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// Whether anything the compiler reads changed.
    pub changed: bool,
    /// The record could not be read (it is left out, and an older version of it dropped).
    pub bad: Option<String>,
}

impl Records {
    /// No records yet, for keys under `weft_prefix`.
    pub fn new(weft_prefix: &str) -> Self {
        Records {
            keys: RecordKeys::new(weft_prefix),
            policies: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            namespaces: BTreeMap::new(),
        }
    }

    /// The keys these records live under.
    pub fn keys(&self) -> &RecordKeys {
        &self.keys
    }

    /// Forgets every record (before a fresh list).
    pub fn clear(&mut self) {
        self.policies.clear();
        self.endpoints.clear();
        self.namespaces.clear();
    }

    /// Takes the record `key` = `value` in.
    pub fn put(&mut self, key: &str, value: &[u8]) -> PutOutcome {
        let (changed, bad) = match self.keys.classify(key) {
            RecordKey::Policy => match decode(key, value) {
                Ok(p) => {
                    self.policies.insert(key.to_owned(), p);
                    (true, None)
                }
                Err(e) => (self.policies.remove(key).is_some(), Some(e.to_string())),
            },
            RecordKey::Endpoint => match decode_endpoint(key, value) {
                Ok(e) => {
                    self.endpoints.insert(key.to_owned(), e);
                    (true, None)
                }
                Err(e) => (self.endpoints.remove(key).is_some(), Some(e)),
            },
            RecordKey::Namespace(ns) => match decode_namespace(key, value) {
                Ok(r) => {
                    self.namespaces.insert(ns.to_owned(), r.labels);
                    (true, None)
                }
                Err(e) => (self.namespaces.remove(ns).is_some(), Some(e)),
            },
            RecordKey::Other => (false, None),
        };
        PutOutcome { changed, bad }
    }

    /// Drops the record `key`; whether anything the compiler reads changed.
    pub fn delete(&mut self, key: &str) -> bool {
        match self.keys.classify(key) {
            RecordKey::Policy => self.policies.remove(key).is_some(),
            RecordKey::Endpoint => self.endpoints.remove(key).is_some(),
            RecordKey::Namespace(ns) => self.namespaces.remove(ns).is_some(),
            RecordKey::Other => false,
        }
    }

    /// How many policies and endpoints are held.
    pub fn counts(&self) -> (usize, usize) {
        (self.policies.len(), self.endpoints.len())
    }

    /// The compiler's inputs: every record held.
    pub fn inputs(&self) -> PolicyInputs {
        PolicyInputs {
            policies: self.policies.values().cloned().collect(),
            endpoints: self.endpoints.values().cloned().collect(),
            namespaces: self.namespaces.clone(),
        }
    }
}
