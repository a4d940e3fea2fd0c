//! The flannel-compatible etcd lease manager (tokio, control threads only).
//!
//! - [`acquire`]: take this node's subnet lease as SPEC §3 says.
//! - [`LeaseTable`]: the last value of every lease, fed by one list and a watch.
//! - [`Agent`]: keeps our lease renewed, watches everyone else's, compiles
//!   routes and survives etcd restarts, compaction and lost keys.
//! - [`Agent::start_when_ready`] (`startup`): waits with backoff for an etcd that is not
//!   there yet (or holds no network config yet) before starting, as flanneld does.

mod acquire;
mod agent;
pub(crate) mod credentials;
mod error;
mod keys;
mod lease_table;
mod rollback;
pub(crate) mod rpc;
mod settings;
mod startup;

pub use acquire::{LeaseRequest, OwnLease, Replaced, acquire, list};
pub use agent::{Agent, AgentStatus};
pub use error::ControlError;
pub use keys::Keys;
pub use lease_table::{LeaseTable, ListedLease};
pub use settings::{AgentSettings, ClientOptions};
pub use startup::{STILL_WAITING_EVERY, StartProgress};
