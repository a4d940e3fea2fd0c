//! Ports: where frames enter and leave a worker.
//!
//! Every port moves [`Frame`] tokens of the worker's [`FramePool`] in batches:
//! - [`AfXdpPort`] (the default): an AF_XDP socket on one interface queue; all
//!   AF_XDP ports of a worker share its UMEM, so forwarding between them copies
//!   nothing.
//! - [`AfPacketPort`]: AF_PACKET with a TPACKET_V3 ring, for machines without
//!   XDP; it copies into the pool on receive and out of it on send.
//! - [`MemPort`]: in-memory, for tests and the core benchmark.
//!
//! [`xdp_filter`] loads and attaches the XDP programs that steer traffic into
//! the AF_XDP sockets, [`pod_program`] the one program every pod veth shares;
//! [`open_uplink`] and [`open_pod_port`] open a queue the way the daemon does,
//! including the automatic AF_PACKET fallback.

mod afpacket;
pub mod afxdp;
pub mod error;
pub mod frame;
mod mem;
pub mod pod_program;
mod uplink;
pub mod xdp_filter;

pub use afpacket::AfPacketPort;
pub use afxdp::{AfXdpPort, BindMode, TpacketGeometry, XskConfig};
pub use error::PortError;
pub use frame::{
    FRAME_SIZE, Frame, FrameMut, FramePool, MAX_FRAME_LEN, MIN_HEADROOM, RX_HEADROOM, UmemShare,
};
pub use mem::{MemPort, MemPortHandle};
pub use uplink::{Backend, OpenedPort, PortConfig, open_pod_port, open_uplink};

use std::fmt;

/// Kernel-interaction events a port reports to its worker, which adds them to
/// its counters once per loop. Plain integers: the port and the worker run on
/// the same thread.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoEvents {
    /// Wakeup system calls made because the kernel set need_wakeup (or, for
    /// AF_PACKET, one per send).
    pub wakeups: u64,
    /// Refills that found fewer free frames than the fill ring wanted.
    pub fill_starved: u64,
    /// Transmit calls that found the tx ring (or socket buffer) full.
    pub tx_ring_full: u64,
    /// Transmit system calls that failed for a reason other than "busy".
    pub tx_errors: u64,
    /// Descriptors from the kernel that did not point into our UMEM.
    pub invalid_descs: u64,
}

/// Frames the kernel dropped before the port could see them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KernelDrops {
    /// Dropped for any reason on receive (AF_XDP `rx_dropped`).
    pub rx_dropped: u64,
    /// Dropped because the rx ring was full (the worker was too slow or descheduled).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub fill_ring_empty: u64,
    /// Invalid tx descriptors.
    pub tx_invalid: u64,
}

/// A batch-oriented frame port. All methods are called from the owning
/// worker's thread only, never block, never allocate (the output vectors have
/// capacity for a full batch) and never panic.
pub trait Port: Send + fmt::Debug {
    /// Name for counters and logs, e.g. `eth0/xdp0`.
    fn name(&self) -> &str;

    /// What kind of port this is, e.g. `af_xdp copy`.
    fn kind(&self) -> &'static str;

    /// Appends up to `max` received frames to `out`; returns how many.
    fn rx(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize, ev: &mut IoEvents) -> usize;

    /// Queues frames from the front of `frames` for transmission and makes them
    /// visible to the device (a wakeup syscall when the kernel asks for one).
    /// Accepted frames are removed from `frames`; the rest stay there, owned by
    /// the caller (ring full). Returns the number accepted.
    fn tx(&mut self, pool: &mut FramePool, frames: &mut Vec<Frame>, ev: &mut IoEvents) -> usize;

    /// Drops the kernel counted on this port's behalf (AF_XDP: `XDP_STATISTICS`).
    /// Read on the control path, not per packet. Ports without such counters
    /// return zeros.
    fn kernel_drops(&self) -> KernelDrops {
        KernelDrops::default()
    }

    /// A descriptor that polls readable (`POLLIN`) when `rx` has frames, so an idle worker can
    /// block until traffic arrives. `None` (the default) when the port cannot wake a worker:
    /// a worker with such a port naps instead of blocking.
    fn rx_wait_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }

    /// Housekeeping once per loop: reaps transmit completions into `pool`,
    /// refills the receive side from `pool` in chunks, repeats wakeups the
    /// kernel still asks for.
    fn service(&mut self, pool: &mut FramePool, ev: &mut IoEvents);

    /// Gives every frame the port still holds back to `pool`, before a worker that keeps
    /// running hands it back to be closed (a detached pod port); returns how many it could not recover (frames
    /// the kernel still holds). Call once its XDP program no longer redirects to it. The
    /// default: the port holds no pool frames.
    fn release(&mut self, _pool: &mut FramePool) -> u32 {
        0
    }
}
