//! What one start changed in etcd, so that a start that fails leaves etcd as it found it.
//!
//! ```text
//! --init-network wrote <prefix>/config  -> delete it (if nobody changed it since)
//! acquire granted our etcd lease        -> revoke it (etcd deletes our key with it)
//! acquire took over an earlier lease    -> put the key's old value back on its old lease
//!                                          (if nobody changed the key since), before the revoke
//! ```
//! A start that succeeds commits instead: the earlier run's lease, which no longer holds
//! any key, is revoked. Until then it is left alone so it can be put back.

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};

use super::acquire::{Replaced, put_if, revoke};
use super::rpc::call;
use super::{AgentSettings, ControlError};

/// The etcd changes of a start that has not committed yet.
#[derive(Debug, Default)]
pub(crate) struct Rollback {
    /// `<prefix>/config` as written by `--init-network`, and the revision of that put.
    pub config: Option<(String, i64)>,
    /// The etcd lease granted to this start (our key is attached to it).
    pub lease: Option<i64>,
    /// Our key's value before this start took it over.
    pub replaced: Option<Replaced>,
}

impl Rollback {
    /// Has this start changed anything in etcd?
    pub fn is_empty(&self) -> bool {
        self.config.is_none() && self.lease.is_none() && self.replaced.is_none()
    }

    /// The start succeeded: the lease our key was taken from goes away now.
    pub async fn commit(self, client: &mut Client, settings: &AgentSettings) {
        if let Some(old) = self.replaced.filter(|r| r.lease_id != 0 && Some(r.lease_id) != self.lease) {
            revoke(client, settings, old.lease_id).await;
        }
    }

    /// The start failed: undoes every change, logging one line for the whole rollback.
    pub async fn undo(self, client: &mut Client, settings: &AgentSettings) {
        if self.is_empty() {
            return;
        }
        match self.try_undo(client, settings).await {
            Ok(()) => tracing::info!("start failed: etcd is as this start found it (our changes undone)"),
            Err(e) => tracing::error!(
                "start failed and etcd could not be restored: {e}; a lease this start took expires after {}s",
                settings.lease_ttl.as_secs()
            ),
        }
    }

    async fn try_undo(self, client: &mut Client, settings: &AgentSettings) -> Result<(), ControlError> {
        let mut first_error = None;
        if let Some(r) = &self.replaced {
            let unchanged = Compare::mod_revision(r.key.clone(), CompareOp::Equal, r.our_revision);
            match put_if(client, settings, unchanged, &r.key, r.value.clone(), Some(r.lease_id)).await {
                Ok(Some(_)) => tracing::debug!(key = %r.key, "our earlier lease put back"),
                Ok(None) => tracing::debug!(key = %r.key, "changed since we took it over: left as it is"),
                // Its lease expired meanwhile: without us etcd would have deleted the key, as
                // revoking ours does.
                Err(e) => tracing::debug!(key = %r.key, "earlier lease not put back: {e}"),
            }
        }
        if let Some(id) = self.lease {
            let revoked = call(settings, || format!("revoke lease {id:x}"), client.lease_revoke(id)).await;
            if let Err(e) = revoked {
                first_error.get_or_insert(e);
            }
        }
        if let Some((key, revision)) = &self.config {
            let unchanged = Compare::mod_revision(key.clone(), CompareOp::Equal, *revision);
            let txn = Txn::new().when([unchanged]).and_then([TxnOp::delete(key.clone(), None)]);
            let deleted = call(settings, || format!("delete {key}"), client.txn(txn)).await;
            if let Err(e) = deleted {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
