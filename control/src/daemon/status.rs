//! What `weft status` and the metrics show of the engine: ports, workers, drops and pipeline
//! paths, summed over the running workers and the ports detached since the start.

use std::collections::BTreeMap;

use weft_engine::pipeline::PathCounts;
use weft_engine::worker::{DropReason, PortTotals};

use super::dataplane::add_paths;
use super::workers::Dataplane;
use crate::api::{PortLine, WorkerLine};

/// Counters of ports that were detached, by port name (a pod attached again under the same
/// name continues from them).
#[derive(Debug, Default)]
pub(super) struct Retired {
    ports: BTreeMap<String, PortTotals>,
}

impl Retired {
    pub(super) fn add_port(&mut self, name: &str, t: &PortTotals) {
        let e = self.ports.entry(name.to_owned()).or_default();
        e.rx_packets += t.rx_packets;
        e.rx_bytes += t.rx_bytes;
        e.tx_packets += t.tx_packets;
        e.tx_bytes += t.tx_bytes;
    }
}

impl Dataplane {
    /// The workers whose thread ended while they should run (a panic).
    pub fn stopped_workers(&self) -> Vec<String> {
        self.uplink_workers.iter().filter(|r| r.handle.is_finished()).map(|r| r.name.clone()).collect()
    }

    /// Pipeline path counters summed over the workers.
    pub fn paths(&self) -> PathCounts {
        let mut total = PathCounts::default();
        for r in &self.uplink_workers {
            add_paths(&mut total, &r.paths.snapshot());
        }
        total
    }

    /// The network policy's connection tables summed over the workers: (flows, capacity).
    pub fn conntrack(&self) -> (u64, u64) {
        let entries = self.uplink_workers.iter().map(|r| r.paths.conntrack_entries()).sum();
        let capacity = (self.uplink_workers.len() * weft_engine::policy::CONNTRACK_CAPACITY) as u64;
        (entries, capacity)
    }

    /// Ports, workers and drops summed over the workers; a port's totals include those of
    /// ports of the same name detached before.
    pub fn counters(&self) -> (Vec<PortLine>, Vec<WorkerLine>, [u64; DropReason::COUNT]) {
        let mut ports = Vec::new();
        let mut workers = Vec::new();
        let mut drops = [0; DropReason::COUNT];
        for r in &self.uplink_workers {
            let s = r.handle.counters().snapshot();
            for (a, b) in drops.iter_mut().zip(s.drops) {
                *a += b;
            }
            workers.push(WorkerLine {
                name: r.name.clone(),
                core: r.core,
                loops: s.worker.loops,
                idle_loops: s.worker.idle_loops,
                waits: s.worker.waits,
                wakeups: s.worker.wakeups,
                fill_starved: s.worker.fill_starved,
                tx_ring_full: s.worker.tx_ring_full,
                handoff_in: s.worker.handoff_in,
                handoff_out: s.worker.handoff_out,
            });
            for info in &r.ports {
                let live = s.port(&info.name).unwrap_or_default();
                let old = self.retired.ports.get(&info.name).copied().unwrap_or_default();
                ports.push(PortLine {
                    name: info.name.clone(),
                    role: info.role.to_owned(),
                    kind: info.kind.to_owned(),
                    worker: r.name.clone(),
                    xdp: info.xdp.clone(),
                    fallback_reason: info.fallback.clone(),
                    rx_packets: live.rx_packets + old.rx_packets,
                    rx_bytes: live.rx_bytes + old.rx_bytes,
                    tx_packets: live.tx_packets + old.tx_packets,
                    tx_bytes: live.tx_bytes + old.tx_bytes,
                });
            }
        }
        (ports, workers, drops)
    }
}
