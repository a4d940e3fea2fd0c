//! Commands from the control side to a running worker: ports come and go without stopping it.
//!
//! Each worker has one bounded lock-free queue (crossbeam `ArrayQueue`, used single-producer:
//! the control thread, single-consumer: the worker). The worker looks at it once per loop,
//! between batches, and runs what it finds there before its next batch; the sender rings the
//! worker's doorbell after the push, so a blocked worker wakes (`wake.rs`: no wakeup is lost).
//! A command carries closures the worker runs on its own thread with its own state: opening a
//! port needs the worker's frame pool, and only the worker may touch its processor. Each
//! command answers on its own one-slot channel, which the worker's send never blocks on.
//!
//! Ordering: the push and pop of `ArrayQueue` synchronise (release/acquire), so the worker
//! sees the command as written; the reply channel orders the worker's changes before the
//! sender's next step.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use super::counters::PortTotals;
use super::processor::PortId;
use crate::port::{FramePool, Port, PortError};

/// Commands one worker's queue holds.
pub const COMMAND_QUEUE: usize = 64;

/// Opens a port over the worker's frame pool (runs on the worker's thread).
pub type OpenPort = Box<dyn FnOnce(&mut FramePool) -> Result<Box<dyn Port>, PortError> + Send>;

/// Tells the worker's processor about a port that came or goes (runs on the worker's thread).
pub type PortChange<P> = Box<dyn FnOnce(&mut P, PortId) + Send>;

/// Why a command did not do what it asked.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The worker's queue is full (the worker is not taking commands).
    #[error("worker {0}: command queue full")]
    QueueFull(String),
    /// The worker did not answer in time, or its thread ended.
    #[error("worker {worker}: no answer to the command within {waited:?} (stopped or stuck)")]
    NoAnswer {
        /// The worker.
        worker: String,
        /// How long the caller waited.
        waited: Duration,
    },
    /// Every port slot of the worker is taken.
    #[error("worker {worker}: all {slots} port slots are taken")]
    NoFreeSlot {
        /// The worker.
        worker: String,
        /// Its slots.
        slots: usize,
    },
    /// Detach of a port the worker does not have.
    #[error("worker {worker}: no port {port}")]
    NoSuchPort {
        /// The worker.
        worker: String,
        /// The port asked for.
        port: u16,
    },
    /// Opening the port failed.
    #[error(transparent)]
    Open(#[from] PortError),
}

/// What a detached port leaves behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detached {
    /// Its final counters.
    pub totals: PortTotals,
    /// Frames still staged for it, dropped (`no_such_port`).
    pub dropped: u64,
    /// Frames the kernel still held when it closed (not back in the pool).
    pub frames_lost: u32,
}

/// One command (see the module docs).
pub(crate) enum Command<P> {
    /// Opens a port in a free slot, then tells the processor.
    Attach { open: OpenPort, then: PortChange<P>, reply: SyncSender<Result<PortId, CommandError>> },
    /// Tells the processor first, then sends what is staged for the port, gives its frames back
    /// to the pool and closes it.
    Detach { port: PortId, then: PortChange<P>, reply: SyncSender<Result<Detached, CommandError>> },
}

/// A worker's command queue (shared by its handle and the worker).
pub(crate) struct CommandQueue<P> {
    pub(crate) queue: ArrayQueue<Command<P>>,
}

impl<P> std::fmt::Debug for CommandQueue<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandQueue").field("queued", &self.queue.len()).finish()
    }
}

impl<P> Default for CommandQueue<P> {
    fn default() -> Self {
        CommandQueue { queue: ArrayQueue::new(COMMAND_QUEUE) }
    }
}

/// A reply channel: the worker's end and the caller's.
pub(crate) fn reply<T>() -> (SyncSender<T>, Receiver<T>) {
    sync_channel(1)
}

/// Waits up to `timeout` for the worker's answer.
pub(crate) fn answer<T>(
    rx: &Receiver<Result<T, CommandError>>,
    worker: &str,
    timeout: Duration,
) -> Result<T, CommandError> {
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
            Err(CommandError::NoAnswer { worker: worker.to_owned(), waited: timeout })
        }
    }
}
