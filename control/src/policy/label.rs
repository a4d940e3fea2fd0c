//! `weft label`: a pod's or a namespace's labels changed in its etcd record, as `kubectl label`
//! changes them: `key=value` sets a label, `key-` removes it. The write is a compare-and-swap on
//! the record's revision, so a node rewriting the record at the same time is not overwritten.

use std::str::FromStr;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use super::endpoint::{NamespaceRecord, RecordKeys, decode_endpoint, decode_namespace};
use super::selector::{Labels, check_label_key, check_label_value};
use super::store::PolicyStore;
use crate::etcd::ControlError;
use crate::etcd::rpc::call;

/// One change to a label set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelChange {
    /// `key=value`.
    Set(String, String),
    /// `key-`.
    Remove(String),
}

impl FromStr for LabelChange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let change = match (s.split_once('='), s.strip_suffix('-')) {
            (Some((k, v)), _) => {
                check_label_value(v)?;
                LabelChange::Set(k.to_owned(), v.to_owned())
            }
            (None, Some(k)) => LabelChange::Remove(k.to_owned()),
            (None, None) => return Err(format!("{s:?} is neither KEY=VALUE nor KEY-")),
        };
        let (LabelChange::Set(k, _) | LabelChange::Remove(k)) = &change;
        check_label_key(k)?;
        Ok(change)
    }
}

/// `labels` with `changes` applied in order.
pub fn changed(mut labels: Labels, changes: &[LabelChange]) -> Labels {
    for c in changes {
        match c {
            LabelChange::Set(k, v) => {
                labels.insert(k.clone(), v.clone());
            }
            LabelChange::Remove(k) => {
                labels.remove(k);
            }
        }
    }
    labels
}

/// How often a label change is retried when the record changed between read and write.
const ATTEMPTS: usize = 5;

impl PolicyStore {
    /// Changes the labels of pod `namespace/name` in its endpoint record; `None` when the pod
    /// has no record (it is not attached, or was attached without its namespace and name).
    pub async fn label_pod(
        &mut self,
        namespace: &str,
        name: &str,
        changes: &[LabelChange],
    ) -> Result<Option<Labels>, ControlError> {
        let key = RecordKeys::new(&self.weft_prefix).endpoint(namespace, name);
        self.swap(&key, |value| {
            let mut endpoint = decode_endpoint(&key, value?).ok()?;
            endpoint.labels = changed(std::mem::take(&mut endpoint.labels), changes);
            Some((endpoint.to_json(), endpoint.labels))
        })
        .await
    }

    /// Changes the labels of namespace `namespace` (a namespace without a record has none).
    pub async fn label_namespace(
        &mut self,
        namespace: &str,
        changes: &[LabelChange],
    ) -> Result<Labels, ControlError> {
        let key = RecordKeys::new(&self.weft_prefix).namespace(namespace);
        let labels = self
            .swap(&key, |value| {
                // An unreadable record is replaced by one with only the new labels.
                let old = value.and_then(|v| decode_namespace(&key, v).ok()).unwrap_or_default();
                let record = NamespaceRecord { labels: changed(old.labels, changes) };
                let json = serde_json::to_string(&record).expect("a namespace record always serialises");
                Some((json, record.labels))
            })
            .await?;
        Ok(labels.unwrap_or_default())
    }

    /// Reads `key`, computes its new value with `update` (given the current value, `None` when
    /// absent; `None` back: leave it alone) and writes it if the key has not changed since.
    async fn swap<T>(
        &mut self,
        key: &str,
        update: impl Fn(Option<&[u8]>) -> Option<(String, T)>,
    ) -> Result<Option<T>, ControlError> {
        for _ in 0..ATTEMPTS {
            let resp = call(&self.settings, || format!("get {key}"), self.client.get(key, None)).await?;
            let current = resp.kvs().first();
            let Some((value, out)) = update(current.map(|kv| kv.value())) else {
                return Ok(None);
            };
            // mod_revision 0 compares as "the key does not exist".
            let revision = current.map_or(0, |kv| kv.mod_revision());
            let txn = Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, revision)])
                .and_then([TxnOp::put(key, value, None)]);
            let resp = call(&self.settings, || format!("put {key}"), self.client.txn(txn)).await?;
            if resp.succeeded() {
                return Ok(Some(out));
            }
        }
        Err(ControlError::Etcd {
            context: format!("label {key}"),
            message: format!("the record changed under every one of {ATTEMPTS} attempts"),
            endpoints: self.settings.endpoints.join(","),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_as_kubectl_label_takes_them_and_apply_in_order() {
        let changes: Vec<LabelChange> =
            ["app=web", "tier-", "app=api"].iter().map(|s| s.parse().unwrap()).collect();
        let labels: Labels =
            [("tier".to_owned(), "front".to_owned()), ("x".to_owned(), "1".to_owned())].into();
        let got = changed(labels, &changes);
        assert_eq!(got, [("app".to_owned(), "api".to_owned()), ("x".to_owned(), "1".to_owned())].into());
        assert!("app".parse::<LabelChange>().unwrap_err().contains("neither KEY=VALUE nor KEY-"));
        assert!("-bad=1".parse::<LabelChange>().is_err());
        assert!("app=-bad".parse::<LabelChange>().is_err());
    }
}
