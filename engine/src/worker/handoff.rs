//! Cross-worker handoff: each worker owns one bounded lock-free inbox
//! (crossbeam `ArrayQueue`); any worker may push into any inbox. UMEMs are
//! per worker, so a handed-off frame is copied into the slot and copied again
//! into a frame of the receiving worker's pool, where its processor finishes it
//! ([`FrameProcessor::handed_in`](super::FrameProcessor::handed_in)) before it is
//! staged for transmission. A full inbox drops the frame (`handoff_full`), never
//! blocks.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::processor::{PortId, WorkerId};
use super::wake::Doorbell;
use crate::port::MAX_FRAME_LEN;

/// One frame in flight between workers.
#[derive(Debug)]
pub(crate) struct HandoffSlot {
    pub(crate) port: PortId,
    pub(crate) len: u16,
    pub(crate) bytes: [u8; MAX_FRAME_LEN],
}

/// A worker's side of the mesh: its own inbox and every worker's inbox, and every worker's
/// doorbell (rung after a push, so that a blocked receiver wakes).
#[derive(Debug, Clone)]
pub struct HandoffEndpoint {
    pub(crate) me: WorkerId,
    pub(crate) inboxes: Arc<[ArrayQueue<HandoffSlot>]>,
    pub(crate) doorbells: Arc<[Arc<Doorbell>]>,
}

impl HandoffEndpoint {
    /// This worker's id in the mesh.
    pub fn id(&self) -> WorkerId {
        self.me
    }

    pub(crate) fn inbox(&self) -> &ArrayQueue<HandoffSlot> {
        &self.inboxes[self.me.0 as usize]
    }

    /// This worker's doorbell.
    pub(crate) fn doorbell(&self) -> &Arc<Doorbell> {
        &self.doorbells[self.me.0 as usize]
    }
}

/// Creates the endpoints of `workers` workers, each inbox holding `capacity` frames.
pub fn handoff_mesh(workers: u16, capacity: usize) -> Vec<HandoffEndpoint> {
    let inboxes: Arc<[ArrayQueue<HandoffSlot>]> =
        (0..workers).map(|_| ArrayQueue::new(capacity.max(1))).collect();
    let doorbells: Arc<[Arc<Doorbell>]> = (0..workers).map(|_| Arc::default()).collect();
    (0..workers)
        .map(|i| HandoffEndpoint { me: WorkerId(i), inboxes: inboxes.clone(), doorbells: doorbells.clone() })
        .collect()
}
