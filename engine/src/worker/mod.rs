//! Poll-mode workers: one per uplink RX queue plus the pod ports it owns,
//! pinned to a core, run to completion:
//!
//! rx batch (64) per port → [`FrameProcessor`] verdicts → staged tx per port →
//! tx flushed when a batch is full, when input goes quiet, or every `tx_flush` (~100 µs) → completions
//! reaped and fill rings refilled in chunks → counters published → idle strategy (by default:
//! spin a little, then block in `poll(2)` until a frame or a handed-over frame arrives).
//!
//! System calls happen only when the kernel sets need_wakeup, and are counted.
//! Ports come and go while it runs through its command queue (`command.rs`), between batches.
//! A worker stops cleanly when its stop flag is raised.

mod command;
mod counters;
mod drop_reason;
mod handoff;
mod idle;
mod lossy_queue;
mod poll;
mod processor;
mod wake;

pub use command::{COMMAND_QUEUE, CommandError, Detached, PortChange};
pub use counters::{
    BATCH_BUCKETS, CounterSnapshot, LocalCounters, PortTotals, WorkerCounters, WorkerTotals, batch_bucket,
};
pub use drop_reason::DropReason;
pub use handoff::{HandoffEndpoint, handoff_mesh};
pub use idle::{FALLBACK_MAX_NAP, IdleStrategy};
pub use lossy_queue::LossyQueue;
pub use poll::{Worker, WorkerHandle};
pub use processor::{Discard, Forward, FrameProcessor, PortId, Reflect, Verdict, WorkerId};
pub use wake::Doorbell;

use std::time::Duration;

/// Settings of one worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Thread name, e.g. `weft-w0`.
    pub name: String,
    /// CPU to pin the thread to (`None`: not pinned).
    pub core: Option<usize>,
    /// Frames per rx batch (1..=256).
    pub batch: usize,
    /// Longest time a staged frame waits before the tx flush.
    pub tx_flush: Duration,
    /// Also flush as soon as a loop receives nothing (input went quiet): batches form while
    /// frames keep arriving, and a lone frame does not wait for the timer (default: true).
    pub tx_flush_when_quiet: bool,
    /// Frames kept staged per port while its tx ring is full; beyond that they
    /// are dropped as `tx_backlog`.
    pub tx_backlog: usize,
    /// What to do in loops without work.
    pub idle: IdleStrategy,
    /// Port slots beyond the ports given at construction, for ports attached while the
    /// worker runs ([`WorkerHandle::attach`]).
    pub spare_ports: usize,
}

impl WorkerConfig {
    /// Defaults: batch 64, tx flushed when input goes quiet or after 100 µs, backlog of 4
    /// batches, adaptive waiting, not pinned.
    pub fn new(name: &str) -> Self {
        WorkerConfig {
            name: name.to_owned(),
            core: None,
            batch: 64,
            tx_flush: Duration::from_micros(100),
            tx_flush_when_quiet: true,
            tx_backlog: 256,
            idle: IdleStrategy::default(),
            spare_ports: 0,
        }
    }
}

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Invalid configuration.
    #[error("worker {name}: {problem}")]
    Config {
        /// Worker name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The thread could not be created or pinned.
    #[error(
        "worker {name}: cannot pin to core {core}: {source} (is the core online and in this process's cpuset?)"
    )]
    Pin {
        /// Worker name.
        name: String,
        /// Requested core.
        core: usize,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Spawning the thread failed.
    #[error("worker {name}: cannot start thread: {source}")]
    Spawn {
        /// Worker name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Pins the calling thread to CPU `core` (workers do this themselves when
/// `WorkerConfig::core` is set; generators and control threads may use it).
pub fn pin_current_thread(core: usize) -> std::io::Result<()> {
    crate::port::afxdp::sys::pin_current_thread(core)
}
