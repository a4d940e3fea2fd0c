//! Per-worker counters: written by the worker only, read by the control side
//! while the worker runs.
//!
//! Ordering: the worker accumulates into plain integers ([`LocalCounters`])
//! and publishes them once per loop with `Relaxed` stores of the running
//! totals. Each counter is a single writer's monotonic value, so a reader's
//! `Relaxed` load sees some recent total; counters are not a consistent
//! snapshot of each other (rx may be one loop ahead of tx), which is fine for
//! metrics. The struct is cache-line aligned and the per-port blocks padded so
//! that readers polling them do not share lines with other workers.

use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;

use super::drop_reason::DropReason;

/// Buckets of the rx batch-size histogram: 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64+.
pub const BATCH_BUCKETS: usize = 7;

/// The histogram bucket of a non-empty batch of `n` frames.
pub fn batch_bucket(n: usize) -> usize {
    (usize::BITS - 1 - n.max(1).leading_zeros()).min(BATCH_BUCKETS as u32 - 1) as usize
}

/// Packet and byte totals of one port.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortTotals {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames accepted for transmission.
    pub tx_packets: u64,
    /// Bytes accepted for transmission.
    pub tx_bytes: u64,
}

/// Worker-wide totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerTotals {
    /// Poll loop iterations.
    pub loops: u64,
    /// Iterations that received and sent nothing.
    pub idle_loops: u64,
    /// Wakeup system calls (need_wakeup kicks, AF_PACKET sends).
    pub wakeups: u64,
    /// Fill refills short of free frames.
    pub fill_starved: u64,
    /// Transmit attempts that found the ring full.
    pub tx_ring_full: u64,
    /// Failed transmit system calls.
    pub tx_errors: u64,
    /// Kernel descriptors outside the UMEM.
    pub invalid_descs: u64,
    /// Frames sent to other workers.
    pub handoff_out: u64,
    /// Frames received from other workers.
    pub handoff_in: u64,
    /// Frames copied into this worker's pool (AF_PACKET rx, handoff, memory ports).
    pub copies: u64,
    /// Times the idle worker blocked until its ports or its doorbell woke it.
    pub waits: u64,
}

/// The worker's private, non-atomic running totals.
#[derive(Debug, Clone)]
pub struct LocalCounters {
    /// Per port, in the worker's port order.
    pub ports: Vec<PortTotals>,
    /// Worker-wide totals.
    pub worker: WorkerTotals,
    /// Drops by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
    /// Non-empty rx batches by [`batch_bucket`].
    pub batches: [u64; BATCH_BUCKETS],
}

impl LocalCounters {
    /// Zeroed counters for `ports` ports.
    pub fn new(ports: usize) -> Self {
        LocalCounters {
            ports: vec![PortTotals::default(); ports],
            worker: WorkerTotals::default(),
            drops: [0; DropReason::COUNT],
            batches: [0; BATCH_BUCKETS],
        }
    }

    /// Counts `n` drops for `reason`.
    #[inline]
    pub fn drop(&mut self, reason: DropReason, n: u64) {
        self.drops[reason.index()] += n;
    }
}

#[derive(Debug, Default)]
struct AtomicPort {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
}

/// The shared, readable copy of a worker's counters (behind an `Arc`).
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerCounters {
    /// Port names by slot ("" for a free slot); replaced whole when a port comes or goes.
    names: ArcSwap<Vec<String>>,
    ports: Vec<CachePadded<AtomicPort>>,
    worker: [AtomicU64; WORKER_FIELDS],
    drops: [AtomicU64; DropReason::COUNT],
    batches: [AtomicU64; BATCH_BUCKETS],
}

/// A point-in-time copy of a worker's counters.
#[derive(Debug, Clone)]
pub struct CounterSnapshot {
    /// Port names, in port order.
    pub port_names: Vec<String>,
    /// Per port totals.
    pub ports: Vec<PortTotals>,
    /// Worker-wide totals.
    pub worker: WorkerTotals,
    /// Drops by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
    /// Non-empty rx batches by [`batch_bucket`].
    pub batches: [u64; BATCH_BUCKETS],
}

impl CounterSnapshot {
    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Totals of the port named `name`.
    pub fn port(&self, name: &str) -> Option<PortTotals> {
        self.port_names.iter().position(|n| n == name).map(|i| self.ports[i])
    }
}

/// Number of [`WorkerTotals`] fields.
const WORKER_FIELDS: usize = 11;

fn worker_array(w: &WorkerTotals) -> [u64; WORKER_FIELDS] {
    [
        w.loops,
        w.idle_loops,
        w.wakeups,
        w.fill_starved,
        w.tx_ring_full,
        w.tx_errors,
        w.invalid_descs,
        w.handoff_out,
        w.handoff_in,
        w.copies,
        w.waits,
    ]
}

impl WorkerCounters {
    /// Counters for ports named `names`.
    pub fn new(names: Vec<String>) -> Self {
        let slots = names.len();
        Self::with_slots(names, slots)
    }

    /// Counters for ports named `names` and room for `slots` ports in all (ports attached
    /// while the worker runs take the free slots).
    pub fn with_slots(mut names: Vec<String>, slots: usize) -> Self {
        names.resize(slots.max(names.len()), String::new());
        WorkerCounters {
            ports: names.iter().map(|_| CachePadded::new(AtomicPort::default())).collect(),
            names: ArcSwap::from_pointee(names),
            worker: Default::default(),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            batches: Default::default(),
        }
    }

    /// Port slots (used and free).
    pub fn slots(&self) -> usize {
        self.ports.len()
    }

    /// Names port slot `slot` (`""`: free). Called by the owning worker when a port comes or
    /// goes (a command, not the packet path).
    pub fn set_name(&self, slot: usize, name: &str) {
        let mut names = Vec::clone(&self.names.load());
        if let Some(n) = names.get_mut(slot) {
            name.clone_into(n);
        }
        self.names.store(std::sync::Arc::new(names));
    }

    /// Publishes the worker's running totals. Called by the owning worker only.
    pub fn publish(&self, local: &LocalCounters) {
        for (a, l) in self.ports.iter().zip(&local.ports) {
            a.rx_packets.store(l.rx_packets, Ordering::Relaxed);
            a.rx_bytes.store(l.rx_bytes, Ordering::Relaxed);
            a.tx_packets.store(l.tx_packets, Ordering::Relaxed);
            a.tx_bytes.store(l.tx_bytes, Ordering::Relaxed);
        }
        for (a, v) in self.worker.iter().zip(worker_array(&local.worker)) {
            a.store(v, Ordering::Relaxed);
        }
        for (a, v) in self.drops.iter().zip(local.drops) {
            a.store(v, Ordering::Relaxed);
        }
        for (a, v) in self.batches.iter().zip(local.batches) {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// Reads every counter (any thread, without stopping the worker).
    pub fn snapshot(&self) -> CounterSnapshot {
        let w: [u64; WORKER_FIELDS] = std::array::from_fn(|i| self.worker[i].load(Ordering::Relaxed));
        CounterSnapshot {
            port_names: Vec::clone(&self.names.load()),
            ports: self
                .ports
                .iter()
                .map(|a| PortTotals {
                    rx_packets: a.rx_packets.load(Ordering::Relaxed),
                    rx_bytes: a.rx_bytes.load(Ordering::Relaxed),
                    tx_packets: a.tx_packets.load(Ordering::Relaxed),
                    tx_bytes: a.tx_bytes.load(Ordering::Relaxed),
                })
                .collect(),
            worker: WorkerTotals {
                loops: w[0],
                idle_loops: w[1],
                wakeups: w[2],
                fill_starved: w[3],
                tx_ring_full: w[4],
                tx_errors: w[5],
                invalid_descs: w[6],
                handoff_out: w[7],
                handoff_in: w[8],
                copies: w[9],
                waits: w[10],
            },
            drops: std::array::from_fn(|i| self.drops[i].load(Ordering::Relaxed)),
            batches: std::array::from_fn(|i| self.batches[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_fall_into_power_of_two_buckets() {
        assert_eq!(batch_bucket(1), 0);
        assert_eq!(batch_bucket(2), 1);
        assert_eq!(batch_bucket(3), 1);
        assert_eq!(batch_bucket(4), 2);
        assert_eq!(batch_bucket(63), 5);
        assert_eq!(batch_bucket(64), 6);
        assert_eq!(batch_bucket(1000), 6);
    }

    #[test]
    fn a_snapshot_reads_what_the_worker_published() {
        let c = WorkerCounters::new(vec!["a".into(), "b".into()]);
        let mut l = LocalCounters::new(2);
        l.ports[1].tx_packets = 7;
        l.worker.loops = 3;
        l.drop(DropReason::HandoffFull, 2);
        l.batches[batch_bucket(64)] += 1;
        c.publish(&l);
        let s = c.snapshot();
        assert_eq!(s.port("b").unwrap().tx_packets, 7);
        assert_eq!(s.port("a").unwrap(), PortTotals::default());
        assert_eq!(s.worker.loops, 3);
        assert_eq!(s.dropped(DropReason::HandoffFull), 2);
        assert_eq!(s.dropped_total(), 2);
        assert_eq!(s.batches[6], 1);
    }
}
