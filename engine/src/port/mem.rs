//! In-memory ports for tests and the core benchmark.
//!
//! Two flavours:
//! - [`MemPort::queue`]: frames injected through a [`MemPortHandle`] from any
//!   thread are received; transmitted frames are copied out to the handle. Test
//!   use only: injection and capture allocate (outside the worker's pools).
//! - [`MemPort::replay`]: receive replays a fixed set of template frames round
//!   robin (one small `memcpy` per frame into a free pool frame), transmit
//!   returns frames straight to the pool. Nothing allocates; this is what the
//!   core benchmark drives so that it measures the pipeline, not the port.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use super::frame::{Frame, FramePool};
use super::{IoEvents, Port};

#[derive(Debug)]
struct Shared {
    inbox: ArrayQueue<Box<[u8]>>,
    outbox: ArrayQueue<Box<[u8]>>,
    /// Frames transmitted (also those the capture queue had no room for).
    sent: AtomicU64,
}

/// The test side of a [`MemPort`]: inject frames, collect transmitted ones.
#[derive(Debug, Clone)]
pub struct MemPortHandle(Arc<Shared>);

impl MemPortHandle {
    /// Queues `frame` for the port to receive; false when the inbox is full.
    pub fn inject(&self, frame: &[u8]) -> bool {
        self.0.inbox.push(frame.into()).is_ok()
    }

    /// Takes the oldest transmitted frame, if any (queue ports only).
    pub fn take_sent(&self) -> Option<Box<[u8]>> {
        self.0.outbox.pop()
    }

    /// Frames the port transmitted so far.
    pub fn sent(&self) -> u64 {
        self.0.sent.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
enum Source {
    Queue,
    Replay { templates: Vec<Vec<u8>>, next: usize, remaining: u64 },
}

/// An in-memory port (see the module docs for the two flavours).
#[derive(Debug)]
pub struct MemPort {
    name: String,
    source: Source,
    shared: Arc<Shared>,
    capture: bool,
}

impl MemPort {
    /// A port fed and drained through the returned handle; `capacity` frames
    /// each way.
    pub fn queue(name: &str, capacity: usize) -> (Self, MemPortHandle) {
        Self::build(name, Source::Queue, capacity.max(1), true)
    }

    /// A port that receives `count` frames (`u64::MAX`: forever) cycling through
    /// `templates`, and discards what it transmits.
    pub fn replay(name: &str, templates: Vec<Vec<u8>>, count: u64) -> (Self, MemPortHandle) {
        let remaining = if templates.is_empty() { 0 } else { count };
        Self::build(name, Source::Replay { templates, next: 0, remaining }, 1, false)
    }

    fn build(name: &str, source: Source, capacity: usize, capture: bool) -> (Self, MemPortHandle) {
        let shared = Arc::new(Shared {
            inbox: ArrayQueue::new(capacity),
            outbox: ArrayQueue::new(capacity),
            sent: AtomicU64::new(0),
        });
        let port = MemPort { name: name.to_owned(), source, shared: shared.clone(), capture };
        (port, MemPortHandle(shared))
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn rx(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize, ev: &mut IoEvents) -> usize {
        let mut n = 0;
        match &mut self.source {
            Source::Queue => {
                while n < max {
                    if pool.free_frames() == 0 {
                        ev.fill_starved += 1;
                        break;
                    }
                    let Some(bytes) = self.shared.inbox.pop() else {
                        break;
                    };
                    if let Some(f) = pool.copy_in(&bytes) {
                        out.push(f);
                        n += 1;
                    }
                }
            }
            Source::Replay { templates, next, remaining } => {
                while n < max && *remaining > 0 {
                    let Some(f) = pool.copy_in(&templates[*next]) else {
                        ev.fill_starved += 1;
                        break;
                    };
                    out.push(f);
                    n += 1;
                    *remaining -= 1;
                    *next += 1;
                    if *next == templates.len() {
                        *next = 0;
                    }
                }
            }
        }
        n
    }

    fn tx(&mut self, pool: &mut FramePool, frames: &mut Vec<Frame>, _ev: &mut IoEvents) -> usize {
        let n = frames.len();
        for f in frames.drain(..) {
            if self.capture {
                // A full capture queue loses the copy, not the count.
                let _ = self.shared.outbox.push(pool.data(&f).into());
            }
            pool.free(f);
        }
        self.shared.sent.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    fn service(&mut self, _pool: &mut FramePool, _ev: &mut IoEvents) {}
}
