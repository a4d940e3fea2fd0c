//! Policies in etcd, under weft's own prefix: `<weft_prefix>/policies/<namespace>/<name>` holds
//! the policy's stored form (compact JSON of the object, see [`NetworkPolicy::to_json`]), as
//! Calico's etcd datastore keeps its policies. What `weft policy apply|delete|list` use; every
//! node watches the same keys.

use etcd_client::{Client, ConnectOptions, Txn, TxnOp};

use super::error::PolicyError;
use super::model::{NetworkPolicy, PolicyId};
use super::parse::parse_documents;
use super::records::Records;
use crate::etcd::rpc::{call, list_prefix};
use crate::etcd::{AgentSettings, ControlError};

/// etcd's default `--max-txn-ops`: an apply of more policies is split into transactions of
/// this many puts (all validated before the first is sent).
pub const MAX_TXN_OPS: usize = 128;

/// The policy keys under one weft prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyKeys {
    prefix: String,
}

impl PolicyKeys {
    /// Keys under `weft_prefix` (`/weft` by default; trailing slashes ignored).
    pub fn new(weft_prefix: &str) -> Self {
        PolicyKeys { prefix: weft_prefix.trim_end_matches('/').to_owned() }
    }

    /// `<weft_prefix>/policies/`, the list and watch prefix.
    pub fn all(&self) -> String {
        format!("{}/policies/", self.prefix)
    }

    /// `<weft_prefix>/policies/<namespace>/<name>`.
    pub fn policy(&self, id: &PolicyId) -> String {
        format!("{}{}/{}", self.all(), id.namespace, id.name)
    }
}

/// What an apply did to one policy (kubectl's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The key did not exist.
    Created,
    /// The key held another value.
    Configured,
    /// The key already held this value: not written.
    Unchanged,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        })
    }
}

/// One stored policy as listed: its key and the policy, or why its value is not one.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The etcd key.
    pub key: String,
    /// The policy, or the validation error of the stored value.
    pub policy: Result<NetworkPolicy, PolicyError>,
}

/// A connection to etcd for policy reads and writes.
pub struct PolicyStore {
    pub(super) client: Client,
    pub(super) weft_prefix: String,
    keys: PolicyKeys,
    pub(super) settings: AgentSettings,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("keys", &self.keys)
            .field("endpoints", &self.settings.endpoints)
            .finish()
    }
}

impl PolicyStore {
    /// Connects as `settings` say (endpoints, TLS, user); every call then has
    /// `settings.rpc_timeout`.
    pub async fn connect(settings: AgentSettings, weft_prefix: &str) -> Result<Self, ControlError> {
        let options = ConnectOptions::new().with_connect_timeout(settings.rpc_timeout);
        let options = crate::etcd::credentials::connect_options(options, &settings.client);
        let client =
            call(&settings, || "connect".into(), Client::connect(settings.endpoints.clone(), Some(options)))
                .await?;
        Ok(PolicyStore {
            client,
            weft_prefix: weft_prefix.to_owned(),
            keys: PolicyKeys::new(weft_prefix),
            settings,
        })
    }

    /// The keys used.
    pub fn keys(&self) -> &PolicyKeys {
        &self.keys
    }

    /// Every record enforcement reads (policies, endpoints, namespaces), in one read, and the
    /// problems of the records that could not be read (left out).
    pub async fn records(&mut self) -> Result<(Records, Vec<String>), ControlError> {
        let mut records = Records::new(&self.weft_prefix);
        let resp = list_prefix(&mut self.client, &self.settings, &records.keys().all()).await?;
        let bad = resp
            .kvs()
            .iter()
            .filter_map(|kv| records.put(&String::from_utf8_lossy(kv.key()), kv.value()).bad)
            .collect();
        Ok((records, bad))
    }

    /// Every stored policy, sorted by key, with the revision of the read.
    pub async fn list(&mut self) -> Result<(Vec<Listed>, i64), ControlError> {
        let resp = list_prefix(&mut self.client, &self.settings, &self.keys.all()).await?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        let listed = resp
            .kvs()
            .iter()
            .map(|kv| {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                let policy = decode(&key, kv.value());
                Listed { key, policy }
            })
            .collect();
        Ok((listed, revision))
    }

    /// Stores `policies` (already validated: parse the whole input first, store nothing if any
    /// document is bad). Writes only what changed, in transactions of at most [`MAX_TXN_OPS`].
    pub async fn apply(
        &mut self,
        policies: &[NetworkPolicy],
    ) -> Result<Vec<(PolicyId, Applied)>, ControlError> {
        let mut outcome = Vec::with_capacity(policies.len());
        let mut puts = Vec::new();
        for p in policies {
            let key = self.keys.policy(&p.id());
            let value = p.to_json();
            let resp =
                call(&self.settings, || format!("get {key}"), self.client.get(key.clone(), None)).await?;
            let applied = match resp.kvs().first() {
                None => Applied::Created,
                Some(kv) if kv.value() == value.as_bytes() => Applied::Unchanged,
                Some(_) => Applied::Configured,
            };
            if applied != Applied::Unchanged {
                puts.push(TxnOp::put(key, value, None));
            }
            outcome.push((p.id(), applied));
        }
        let mut rest = puts;
        while !rest.is_empty() {
            let chunk: Vec<TxnOp> = rest.drain(..rest.len().min(MAX_TXN_OPS)).collect();
            let count = chunk.len();
            call(
                &self.settings,
                || format!("put {count} policies under {}", self.keys.all()),
                self.client.txn(Txn::new().and_then(chunk)),
            )
            .await?;
        }
        Ok(outcome)
    }

    /// Deletes one policy; `false` when there was none.
    pub async fn delete(&mut self, id: &PolicyId) -> Result<bool, ControlError> {
        let key = self.keys.policy(id);
        let resp =
            call(&self.settings, || format!("delete {key}"), self.client.delete(key.clone(), None)).await?;
        Ok(resp.deleted() > 0)
    }
}

/// A stored value back into a policy; the key names it in errors, and must match the policy's
/// own namespace and name.
pub fn decode(key: &str, value: &[u8]) -> Result<NetworkPolicy, PolicyError> {
    let fail = |problem: String| PolicyError {
        file: key.to_owned(),
        document: 1,
        policy: None,
        path: "(document)".into(),
        problem,
    };
    let text = std::str::from_utf8(value).map_err(|e| fail(format!("not UTF-8: {e}")))?;
    let mut policies = parse_documents(text, key)?;
    if policies.len() != 1 {
        return Err(fail(format!("holds {} policies, not one", policies.len())));
    }
    let policy = policies.remove(0);
    let id = policy.id();
    if !key.ends_with(&format!("/{}/{}", id.namespace, id.name)) {
        return Err(fail(format!("holds policy {id}, which belongs under another key")));
    }
    Ok(policy)
}
