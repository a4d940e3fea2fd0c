//! Commands from the control side to a running worker: ports come and go without stopping it.
//!
//! The control side does everything slow before and after a command: it opens a port
//! (socket, UMEM sharing, rings, bind: [`crate::port::AfXdpPort::open_shared`]) and hands the
//! worker the ready object; the worker puts it in a free slot between two batches. A detached
//! port comes back the same way, and the control side closes it (close, unmap). The worker's
//! part of a command makes no system call, takes no lock and allocates nothing: it moves
//! boxes and vectors the control side made, and sends them all back in its answer, so they
//! are freed on the control side too.
//!
//! Each worker has two bounded lock-free queues (crossbeam `ArrayQueue`): commands (pushed by
//! the control thread, popped by the worker) and answers (the other way). The worker looks at
//! the command queue once per loop, between batches, and runs a command only while the answer
//! queue has room for its answer; the sender rings the worker's doorbell after the push, so a
//! blocked worker wakes (`wake.rs`: no wakeup is lost). The sender waits for the answer with
//! its command's sequence number; answers to earlier commands it gave up on are dropped (with
//! what they carry) on the way.
//!
//! Ordering: the push and pop of `ArrayQueue` synchronise (release/acquire), so the worker
//! sees the command as written and the sender sees the worker's changes once it has the answer.

use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::counters::PortTotals;
use super::processor::PortId;
use crate::port::{Frame, Port};

/// Commands one worker's queue holds (and answers its answer queue holds).
pub const COMMAND_QUEUE: usize = 64;

/// Tells the worker's processor about a port that came or goes (runs on the worker's thread,
/// once; it comes back in the answer, so the worker does not free it).
pub type PortChange<P> = Box<dyn FnMut(&mut P, PortId) + Send>;

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
}

/// What a detached port leaves behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detached {
    /// Its final counters.
    pub totals: PortTotals,
    /// Frames still staged for it, dropped (`no_such_port`).
    pub dropped: u64,
    /// Frames the kernel still held when it was released (not back in the pool).
    pub frames_lost: u32,
}

/// One command (see the module docs).
pub(crate) enum Command<P> {
    /// Puts `port` in a free slot with `stage` (empty, with room for the slot's staged
    /// frames) as its transmit staging queue, then tells the processor.
    Attach { seq: u64, port: Box<dyn Port>, stage: Vec<Frame>, then: PortChange<P> },
    /// Tells the processor first, then sends what is staged for the port, gives its frames back
    /// to the pool and returns it.
    Detach { seq: u64, port: PortId, then: PortChange<P> },
}

/// What a command did.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Attached(PortId),
    Detached(Detached),
    NoFreeSlot { slots: usize },
    NoSuchPort(PortId),
}

/// A worker's answer to command `seq`, with everything the command brought or freed, for
/// the control side to drop: the port detached (or refused), its staging queue, the closure.
pub(crate) struct Answer<P> {
    pub(crate) seq: u64,
    pub(crate) outcome: Outcome,
    pub(crate) port: Option<Box<dyn Port>>,
    pub(crate) stage: Vec<Frame>,
    pub(crate) then: PortChange<P>,
}

/// A worker's command and answer queues (shared by its handle and the worker).
pub(crate) struct CommandQueue<P> {
    pub(crate) queue: ArrayQueue<Command<P>>,
    pub(crate) answers: ArrayQueue<Answer<P>>,
}

impl<P> std::fmt::Debug for CommandQueue<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandQueue")
            .field("queued", &self.queue.len())
            .field("answers", &self.answers.len())
            .finish()
    }
}

impl<P> Default for CommandQueue<P> {
    fn default() -> Self {
        CommandQueue { queue: ArrayQueue::new(COMMAND_QUEUE), answers: ArrayQueue::new(COMMAND_QUEUE) }
    }
}

impl<P> CommandQueue<P> {
    /// Waits up to `timeout` for the answer to command `seq` (the control side), dropping
    /// answers to earlier commands on the way; `None` when it did not come in time or
    /// `finished` says the worker's thread ended. Spins briefly (a running worker answers
    /// within one loop), then sleeps in short steps.
    pub(crate) fn wait(&self, seq: u64, timeout: Duration, finished: impl Fn() -> bool) -> Option<Answer<P>> {
        let deadline = Instant::now() + timeout;
        let mut round = 0u32;
        loop {
            while let Some(a) = self.answers.pop() {
                if a.seq == seq {
                    return Some(a);
                }
            }
            if finished() || Instant::now() >= deadline {
                // One last look: the worker may have answered just before it ended.
                return std::iter::from_fn(|| self.answers.pop()).find(|a| a.seq == seq);
            }
            round += 1;
            if round < 64 {
                std::hint::spin_loop();
            } else if round < 128 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }
}
