//! The contract between a worker and the code that decides what happens to
//! each frame ([`FrameProcessor`]), plus the simple processors tests and port
//! benchmarks use. The forwarding pipeline implements the trait.

use crate::port::{Frame, FrameMut, FramePool};

use super::drop_reason::DropReason;

/// Index of a port in its worker's port list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

/// Index of a worker in the handoff mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkerId(pub u16);

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit on this worker's port.
    Tx(PortId),
    /// Drop and count under the reason.
    Drop(DropReason),
    /// Copy to another worker, which transmits it on its port `port`.
    Handoff {
        /// Target worker.
        worker: WorkerId,
        /// Port of the target worker.
        port: PortId,
    },
}

/// Decides, per frame, in place: rewrite the bytes (the whole chunk is
/// available, with headroom in front for encapsulation), then return a
/// [`Verdict`]. Runs on the worker's thread: must not block, allocate, lock,
/// log per packet or panic.
pub trait FrameProcessor: Send {
    /// Processes one frame received on `rx_port`.
    fn process(&mut self, rx_port: PortId, frame: &mut FrameMut<'_>) -> Verdict;

    /// Finishes a frame another worker handed to this one for its port `port`
    /// ([`Verdict::Handoff`]), already copied into this worker's pool. Returns where it goes
    /// (normally `Tx(port)`, the default) or why it is dropped; a processor that knows things
    /// only the owning worker knows (a pod port's MAC, whether the port still carries the
    /// frame's destination) completes the rewrite here.
    fn handed_in(&mut self, port: PortId, _frame: &mut FrameMut<'_>) -> Verdict {
        Verdict::Tx(port)
    }

    /// How often the worker should call [`FrameProcessor::tick`] (`None`: never).
    fn tick_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Periodic work of the processor (protocol timers), between batches: frames it wants sent
    /// are taken from `pool` and pushed onto `out` with their port (at most `out`'s spare
    /// capacity).
    fn tick(&mut self, _pool: &mut FramePool, _out: &mut Vec<(PortId, Frame)>) {}

    /// Processes a batch received on `rx_port`, pushing one verdict per frame
    /// onto `verdicts` (cleared by the caller, with capacity for the batch).
    /// The default calls [`FrameProcessor::process`] per frame; pipelines may
    /// override it to work stage by stage over the whole batch.
    fn process_batch(
        &mut self,
        rx_port: PortId,
        pool: &mut FramePool,
        frames: &mut [Frame],
        verdicts: &mut Vec<Verdict>,
    ) {
        for f in frames.iter_mut() {
            let v = self.process(rx_port, &mut pool.view(f));
            verdicts.push(v);
        }
    }
}

/// Sends every frame received on port `i` out of port `peer[i]` unchanged
/// (pairs of ports forwarding to each other: `peer = [1, 0]`).
#[derive(Debug, Clone)]
pub struct Forward {
    peer: Vec<PortId>,
}

impl Forward {
    /// `peer[i]` is the tx port for frames received on port `i`.
    pub fn new(peer: Vec<PortId>) -> Self {
        Forward { peer }
    }
}

impl FrameProcessor for Forward {
    fn process(&mut self, rx_port: PortId, _frame: &mut FrameMut<'_>) -> Verdict {
        match self.peer.get(rx_port.0 as usize) {
            Some(&p) => Verdict::Tx(p),
            None => Verdict::Drop(DropReason::NoSuchPort),
        }
    }
}

/// L2 reflector: swaps source and destination MAC and sends the frame back
/// out of the port it came in on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reflect;

impl FrameProcessor for Reflect {
    fn process(&mut self, rx_port: PortId, frame: &mut FrameMut<'_>) -> Verdict {
        let d = frame.data_mut();
        if d.len() < 14 {
            return Verdict::Drop(DropReason::Runt);
        }
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&d[0..6]);
        d.copy_within(6..12, 0);
        d[6..12].copy_from_slice(&dst);
        Verdict::Tx(rx_port)
    }
}

/// Drops everything (rx-drop benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl FrameProcessor for Discard {
    fn process(&mut self, _rx_port: PortId, _frame: &mut FrameMut<'_>) -> Verdict {
        Verdict::Drop(DropReason::Discard)
    }
}
