//! A naive reference FIB for tests and benchmarks: a sorted map of routes, and a lookup that
//! scans every route and keeps the longest match. Obviously correct, hopelessly slow.

use std::collections::BTreeMap;

use super::next_hop::NextHopId;
use super::prefix::Ipv4Prefix;
use super::writer::RouteChange;

/// The reference model of [`crate::fib::FibWriter`]'s route set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceFib {
    routes: BTreeMap<Ipv4Prefix, NextHopId>,
}

impl ReferenceFib {
    /// An empty route set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies changes in order, with the writer's semantics (upsert replaces, removing an
    /// absent route does nothing).
    pub fn apply(&mut self, changes: &[RouteChange]) {
        for change in changes {
            self.apply_one(change);
        }
    }

    /// Applies one change.
    pub fn apply_one(&mut self, change: &RouteChange) {
        match *change {
            RouteChange::Upsert(prefix, hop) => {
                self.routes.insert(prefix, hop);
            }
            RouteChange::Remove(prefix) => {
                self.routes.remove(&prefix);
            }
        }
    }

    /// Longest-prefix match by scanning all routes.
    pub fn lookup(&self, dst: u32) -> Option<NextHopId> {
        self.routes
            .iter()
            .filter(|(prefix, _)| prefix.contains(dst))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, &hop)| hop)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there is no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The routes in prefix order.
    pub fn routes(&self) -> impl Iterator<Item = (Ipv4Prefix, NextHopId)> + '_ {
        self.routes.iter().map(|(&p, &h)| (p, h))
    }
}
