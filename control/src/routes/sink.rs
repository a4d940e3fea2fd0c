//! Where compiled routes go: the FIB writer in the daemon, a recorder in tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use ipnet::Ipv4Net;

use super::{RouteDelta, Via};

/// Receives route changes as whole batches.
///
/// Contract: the control plane calls `apply` from one task at a time (the
/// single FIB writer); a batch is one consistent step — an implementation
/// should publish it as one FIB version so workers never see half of it.
/// Within a batch a subnet appears at most once. `apply` must not block for
/// long: it runs on the control plane's event loop.
pub trait RouteSink: Send {
    /// Applies one batch of changes.
    fn apply(&mut self, batch: &[RouteDelta]);
}

/// The routes currently installed, as a sink sees them.
pub type RouteTable = BTreeMap<Ipv4Net, Via>;

#[derive(Debug, Default)]
struct Recorded {
    table: RouteTable,
    batches: Vec<(Instant, Vec<RouteDelta>)>,
}

/// A sink that keeps the resulting table and every batch with its arrival
/// time. Clones share the same record, so a test keeps one clone and hands
/// the other to the control plane.
#[derive(Debug, Clone, Default)]
pub struct RecordingSink {
    inner: Arc<Mutex<Recorded>>,
}

impl RecordingSink {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Recorded) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A copy of the current table.
    pub fn table(&self) -> RouteTable {
        self.with(|r| r.table.clone())
    }

    /// How many batches arrived so far.
    pub fn batch_count(&self) -> usize {
        self.with(|r| r.batches.len())
    }

    /// A copy of every batch so far, with arrival times.
    pub fn batches(&self) -> Vec<(Instant, Vec<RouteDelta>)> {
        self.with(|r| r.batches.clone())
    }

    /// Forgets the recorded batches (the table stays).
    pub fn clear_batches(&self) {
        self.with(|r| r.batches.clear());
    }
}

impl RouteSink for RecordingSink {
    fn apply(&mut self, batch: &[RouteDelta]) {
        let now = Instant::now();
        self.with(|r| {
            for delta in batch {
                match *delta {
                    RouteDelta::Upsert(spec) => {
                        r.table.insert(spec.subnet, spec.via);
                    }
                    RouteDelta::Remove(subnet) => {
                        r.table.remove(&subnet);
                    }
                }
            }
            r.batches.push((now, batch.to_vec()));
        });
    }
}
