//! The seam between the daemon and the forwarding pipeline (issue 5).
//!
//! TODO(issue 5): the pipeline brings a `FrameProcessor` (`Pipeline`), a
//! `RouteProgrammer` that owns the `FibWriter`, and a neighbour table. When it
//! lands, this module is the only place to change:
//! - [`Processor`], [`uplink_processor`], [`pod_processor`]: build the pipeline
//!   (sharing the FIB reader and the neighbour table) instead of `Discard`;
//! - [`RouteTableSink`]: forward each batch to the `RouteProgrammer` as well;
//! - [`NeighbourTableSink`]: push learned MACs into the engine's table.
//!
//! Until then workers own the real ports and count every frame the XDP
//! filter steers to them as a `discard` drop: nothing is forwarded.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use weft_engine::worker::Discard;

use crate::flannel::MacAddr;
use crate::neighbour::NeighbourSink;
use crate::routes::{RouteDelta, RouteSink, RouteTable};

/// The frame processor every worker runs.
pub type Processor = Discard;

/// The processor of an uplink queue's worker.
pub fn uplink_processor() -> Processor {
    Discard
}

/// The processor of the pod-port worker (`ports` pod ports).
pub fn pod_processor(_ports: usize) -> Processor {
    Discard
}

/// The compiled route table as the data plane was given it, and its version
/// (one per batch). Read by status and metrics; written by the one sink.
#[derive(Debug, Default)]
pub struct RouteState {
    /// The routes.
    pub table: RouteTable,
    /// Batches applied.
    pub version: u64,
}

/// Shared handle on the [`RouteState`].
pub type SharedRoutes = Arc<Mutex<RouteState>>;

/// Locks a control-side mutex, ignoring poisoning (the data is plain values).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The daemon's route sink: keeps the table for status and metrics.
/// TODO(issue 5): also hand each batch to the engine's `RouteProgrammer`.
#[derive(Debug, Clone, Default)]
pub struct RouteTableSink {
    state: SharedRoutes,
}

impl RouteTableSink {
    /// A sink over `state`.
    pub fn new(state: SharedRoutes) -> Self {
        RouteTableSink { state }
    }
}

impl RouteSink for RouteTableSink {
    fn apply(&mut self, batch: &[RouteDelta]) {
        let mut s = lock(&self.state);
        for delta in batch {
            match *delta {
                RouteDelta::Upsert(spec) => {
                    tracing::info!(route = %spec, "route installed");
                    s.table.insert(spec.subnet, spec.via);
                }
                RouteDelta::Remove(subnet) => {
                    tracing::info!(%subnet, "route removed");
                    s.table.remove(&subnet);
                }
            }
        }
        s.version += 1;
    }
}

/// Resolved underlay next hops, shared with status.
pub type SharedNeighbours = Arc<Mutex<BTreeMap<Ipv4Addr, MacAddr>>>;

/// The daemon's neighbour sink: keeps the MACs for status and logs changes.
/// TODO(issue 5): also store them in the engine's neighbour table.
#[derive(Debug, Clone, Default)]
pub struct NeighbourTableSink {
    table: SharedNeighbours,
}

impl NeighbourTableSink {
    /// A sink over `table`.
    pub fn new(table: SharedNeighbours) -> Self {
        NeighbourTableSink { table }
    }
}

impl NeighbourSink for NeighbourTableSink {
    fn neighbour_changed(&mut self, ip: Ipv4Addr, mac: Option<MacAddr>) {
        let mut t = lock(&self.table);
        match mac {
            Some(mac) => {
                tracing::info!(%ip, %mac, "underlay neighbour resolved");
                t.insert(ip, mac);
            }
            None => {
                tracing::info!(%ip, "underlay neighbour lost");
                t.remove(&ip);
            }
        }
    }
}
