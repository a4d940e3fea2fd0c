//! Each peer's session as status and metrics show it; written by the speaker's tasks, read
//! by the API and the metrics endpoint.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// One peer's session.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    /// `Idle`, `Connect`, `OpenSent`, `OpenConfirm` or `Established`.
    pub state: &'static str,
    /// When the session reached Established (`None` while it is not).
    pub established_at: Option<Instant>,
    /// Prefixes the peer gave us (stale ones of a restarting peer included).
    pub prefixes_in: usize,
    /// Prefixes we announced to it.
    pub prefixes_out: usize,
    /// Sessions that ended after reaching Established or OpenConfirm.
    pub resets: u64,
    /// Sessions ended because a message from the peer was malformed.
    pub malformed: u64,
    /// UPDATEs with an attribute error the session survived (RFC 7606).
    pub attribute_errors: u64,
    /// Why the last session ended.
    pub last_error: Option<String>,
}

impl Default for PeerStatus {
    fn default() -> Self {
        PeerStatus {
            state: "Idle",
            established_at: None,
            prefixes_in: 0,
            prefixes_out: 0,
            resets: 0,
            malformed: 0,
            attribute_errors: 0,
            last_error: None,
        }
    }
}

/// Every configured peer's status, by address.
#[derive(Debug, Clone, Default)]
pub struct BgpStatus {
    inner: Arc<Mutex<BTreeMap<Ipv4Addr, PeerStatus>>>,
}

impl BgpStatus {
    /// Changes `peer`'s status (adding it if new).
    pub fn with<R>(&self, peer: Ipv4Addr, f: impl FnOnce(&mut PeerStatus) -> R) -> R {
        let mut m = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(m.entry(peer).or_default())
    }

    /// Forgets a peer that is no longer configured.
    pub fn remove(&self, peer: Ipv4Addr) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).remove(&peer);
    }

    /// A copy of every peer's status.
    pub fn snapshot(&self) -> BTreeMap<Ipv4Addr, PeerStatus> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}
