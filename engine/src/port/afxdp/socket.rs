//! An AF_XDP socket on one interface queue as a [`Port`]: its four rings over
//! the worker's shared UMEM, need_wakeup-driven syscalls, explicit frame
//! accounting (how many frames sit in the fill and tx rings).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use super::ring::{CompletionRing, FillRing, RingSize, RxRing, TxRing};
use super::sys;
use super::umem::UmemShare;
use crate::port::error::{NEEDS_AF_XDP, PortError};
use crate::port::frame::{FRAME_SIZE, Frame, FramePool};
use crate::port::{IoEvents, KernelDrops, Port};

/// How the socket binds to the queue (driver zero-copy or kernel copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Let the kernel choose: zero-copy when the driver supports it, else copy.
    #[default]
    Auto,
    /// Force copy mode.
    Copy,
    /// Require driver zero-copy; fails on drivers without it (veth).
    ZeroCopy,
}

/// Settings of one AF_XDP port.
#[derive(Debug, Clone)]
pub struct XskConfig {
    /// Interface name.
    pub ifname: String,
    /// RX/TX queue index.
    pub queue: u32,
    /// Entries in each of the four rings (power of two).
    pub ring_size: u32,
    /// Frames kept in the fill ring, at most half of `ring_size`: the kernel
    /// publishes its fill-ring consumer index only after using up everything it
    /// read at its last look, so the other half is what lets us refill in time.
    pub fill_target: u32,
    /// Copy / zero-copy choice.
    pub bind: BindMode,
}

impl XskConfig {
    /// Defaults for `ifname` queue `queue`: 2048-entry rings, 1024 frames in the fill ring.
    pub fn new(ifname: &str, queue: u32) -> Self {
        XskConfig {
            ifname: ifname.to_owned(),
            queue,
            ring_size: 2048,
            fill_target: 1024,
            bind: BindMode::Auto,
        }
    }
}

/// Frames are given to the fill ring in chunks of at least this many.
const REFILL_CHUNK: u32 = 16;

/// An AF_XDP socket bound to one interface queue.
#[derive(Debug)]
pub struct AfXdpPort {
    name: String,
    /// The socket. Its [`UmemShare`] observes it (to bind later sockets to its UMEM) but only
    /// the port keeps it open: dropping the port closes it.
    fd: Arc<OwnedFd>,
    rx: RxRing,
    tx: TxRing,
    fill: FillRing,
    comp: CompletionRing,
    /// Frames we put in the fill ring that have not come back through rx.
    in_fill: u32,
    /// Frames we put in the tx ring that have not come back through completion.
    in_tx: u32,
    fill_target: u32,
    zero_copy: bool,
    shared_umem: bool,
}

impl AfXdpPort {
    /// Opens a socket on `cfg.ifname` queue `cfg.queue` over `pool`'s UMEM. The
    /// first AF_XDP port of a pool registers the UMEM; later ones share it
    /// (`XDP_SHARED_UMEM`, own fill and completion rings) with any socket still open
    /// over it, so frames move between them without copies; when none is left open,
    /// the next one registers it again. Fills the fill ring from `pool`.
    pub fn open(pool: &mut FramePool, cfg: &XskConfig) -> Result<Self, PortError> {
        let mut port = Self::open_shared(&pool.umem_share(), cfg)?;
        let mut ev = IoEvents::default();
        port.refill(pool, &mut ev);
        Ok(port)
    }

    /// Opens a socket like [`AfXdpPort::open`] over the UMEM of a pool that a running worker
    /// owns, from any thread: every system call of the socket's setup (socket, UMEM
    /// registration or sharing, ring setup and mmap, bind) happens here. Its fill ring starts
    /// empty: the worker that takes the port fills it from its pool at its next
    /// [`Port::service`]. Dropping the port (close, unmap of its rings) may happen on any
    /// thread too.
    pub fn open_shared(umem: &UmemShare, cfg: &XskConfig) -> Result<Self, PortError> {
        let ifname = cfg.ifname.as_str();
        let what = |step: &str| format!("AF_XDP socket queue {} ({step})", cfg.queue);
        let Some(size) = RingSize::new(cfg.ring_size).filter(|s| s.get() >= 64) else {
            return Err(PortError::Config(format!(
                "AF_XDP ring size {} on {ifname}: must be a power of two >= 64",
                cfg.ring_size
            )));
        };
        if cfg.fill_target == 0 || cfg.fill_target > cfg.ring_size / 2 {
            return Err(PortError::Config(format!(
                "AF_XDP fill target {} on {ifname}: must be 1..={} (half the ring size)",
                cfg.fill_target,
                cfg.ring_size / 2
            )));
        }
        let ifindex = sys::if_index(ifname)
            .map_err(|_| PortError::NoSuchInterface { what: "AF_XDP socket", ifname: ifname.to_owned() })?;
        let fd = sys::socket(libc::AF_XDP, libc::SOCK_RAW, 0)
            .map_err(|e| PortError::from_os(what("socket"), ifname, NEEDS_AF_XDP, e))?;
        let sock = fd.as_fd();
        let os = |step: &str, e| PortError::from_os(what(step), ifname, NEEDS_AF_XDP, e);

        // Held open until the bind below, so the kernel's registration cannot go away between.
        let shared_with = umem.open_socket();
        if shared_with.is_none() {
            let reg = libc::xdp_umem_reg {
                addr: umem.addr(),
                len: umem.len() as u64,
                chunk_size: FRAME_SIZE as u32,
                headroom: 0,
                flags: 0,
                tx_metadata_len: 0,
            };
            sys::setsockopt(sock, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
                .map_err(|e| os("register UMEM", e))?;
        }
        let n = size.get();
        for (opt, step) in [
            (libc::XDP_UMEM_FILL_RING, "fill ring"),
            (libc::XDP_UMEM_COMPLETION_RING, "completion ring"),
            (libc::XDP_RX_RING, "rx ring"),
            (libc::XDP_TX_RING, "tx ring"),
        ] {
            sys::setsockopt(sock, libc::SOL_XDP, opt, &n).map_err(|e| os(step, e))?;
        }
        let off: libc::xdp_mmap_offsets = sys::getsockopt(sock, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)
            .map_err(|e| os("ring offsets", e))?;
        let rx = RxRing::map(sock, &off.rx, size).map_err(|e| os("mmap rx ring", e))?;
        let tx = TxRing::map(sock, &off.tx, size).map_err(|e| os("mmap tx ring", e))?;
        let fill = FillRing::map(sock, &off.fr, size).map_err(|e| os("mmap fill ring", e))?;
        let comp = CompletionRing::map(sock, &off.cr, size).map_err(|e| os("mmap completion ring", e))?;

        let mut addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: 0,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: cfg.queue,
            sxdp_shared_umem_fd: 0,
        };
        if let Some(owner) = &shared_with {
            use std::os::fd::AsRawFd;
            // Shared sockets inherit copy/zero-copy and need_wakeup from the owner.
            addr.sxdp_flags = libc::XDP_SHARED_UMEM;
            addr.sxdp_shared_umem_fd = owner.as_raw_fd() as u32;
        } else {
            addr.sxdp_flags = libc::XDP_USE_NEED_WAKEUP
                | match cfg.bind {
                    BindMode::Auto => 0,
                    BindMode::Copy => libc::XDP_COPY,
                    BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
                };
        }
        sys::bind(sock, &addr).map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => PortError::Io {
                what: what("bind: queue already has an AF_XDP socket"),
                ifname: ifname.to_owned(),
                source: e,
            },
            Some(libc::EINVAL) => PortError::Io {
                what: what("bind: queue does not exist or mode not supported"),
                ifname: ifname.to_owned(),
                source: e,
            },
            _ => os("bind", e),
        })?;
        let opts: libc::xdp_options =
            sys::getsockopt(sock, libc::SOL_XDP, libc::XDP_OPTIONS).map_err(|e| os("options", e))?;
        let fd = Arc::new(fd);
        umem.add_socket(&fd);
        Ok(AfXdpPort {
            name: format!("{ifname}/xdp{}", cfg.queue),
            fd,
            rx,
            tx,
            fill,
            comp,
            in_fill: 0,
            in_tx: 0,
            fill_target: cfg.fill_target,
            zero_copy: opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0,
            shared_umem: shared_with.is_some(),
        })
    }

    /// The socket, to be inserted into the XDP program's XSKMAP.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether the driver runs this socket in zero-copy mode (false: copy mode).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Whether this socket shares the UMEM registered by another socket.
    pub fn shares_umem(&self) -> bool {
        self.shared_umem
    }

    /// Frames currently lent to the kernel (fill ring plus unfinished tx).
    pub fn frames_in_kernel(&self) -> u32 {
        self.in_fill + self.in_tx
    }

    /// The kernel's drop statistics for this socket (`XDP_STATISTICS`).
    pub fn kernel_stats(&self) -> std::io::Result<libc::xdp_statistics> {
        sys::getsockopt(self.fd.as_fd(), libc::SOL_XDP, libc::XDP_STATISTICS)
    }

    fn refill(&mut self, pool: &mut FramePool, ev: &mut IoEvents) {
        let want = self.fill_target.saturating_sub(self.in_fill);
        if want == 0 || (want < REFILL_CHUNK && self.in_fill > 0) {
            return;
        }
        let free = pool.free_frames() as u32;
        if free < want {
            ev.fill_starved += 1;
        }
        let n = want.min(free).min(self.fill.free_slots(want));
        if n > 0 {
            self.in_fill += self.fill.fill(n, |_| {
                // `n <= free frames`, so alloc cannot fail; an empty pool would only
                // shorten the batch, never panic.
                pool.alloc().map_or(0, |f| f.chunk() as u64 * FRAME_SIZE as u64)
            });
        }
        if self.fill.needs_wakeup() {
            sys::kick_rx(self.fd.as_fd());
            ev.wakeups += 1;
        }
    }

    fn kick_tx(&mut self, ev: &mut IoEvents) {
        if self.tx.needs_wakeup() {
            ev.wakeups += 1;
            if sys::kick_tx(self.fd.as_fd()).is_err() {
                ev.tx_errors += 1;
            }
        }
    }
}

impl Port for AfXdpPort {
    fn name(&self) -> &str {
        &self.name
    }

    /// The socket: it polls readable when the rx ring holds descriptors.
    fn rx_wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    fn kind(&self) -> &'static str {
        if self.zero_copy { "af_xdp zero-copy" } else { "af_xdp copy" }
    }

    fn rx(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize, ev: &mut IoEvents) -> usize {
        let mut got = 0;
        let n = self.rx.receive(max as u32, |d| {
            if pool.desc_in_bounds(d.addr, d.len) {
                out.push(Frame::from_desc(d.addr, d.len));
                got += 1;
            } else {
                // A descriptor outside our UMEM cannot be returned to any list.
                ev.invalid_descs += 1;
            }
        });
        self.in_fill -= n.min(self.in_fill);
        got
    }

    fn tx(&mut self, _pool: &mut FramePool, frames: &mut Vec<Frame>, ev: &mut IoEvents) -> usize {
        if frames.is_empty() {
            return 0;
        }
        let want = frames.len() as u32;
        let n = self.tx.send(want, |i| {
            let f = &frames[i as usize];
            libc::xdp_desc { addr: f.addr(), len: f.len() as u32, options: 0 }
        });
        if n < want {
            ev.tx_ring_full += 1;
        }
        // The tokens' chunks now live in the tx ring; they come back through the
        // completion ring.
        frames.drain(..n as usize);
        self.in_tx += n;
        self.kick_tx(ev);
        n as usize
    }

    fn kernel_drops(&self) -> KernelDrops {
        match self.kernel_stats() {
            Ok(s) => KernelDrops {
                rx_dropped: s.rx_dropped,
                rx_ring_full: s.rx_ring_full,
                fill_ring_empty: s.rx_fill_ring_empty_descs,
                tx_invalid: s.tx_invalid_descs,
            },
            Err(_) => KernelDrops::default(),
        }
    }

    fn service(&mut self, pool: &mut FramePool, ev: &mut IoEvents) {
        let n = self.comp.complete(|addr| pool.free_chunk((addr / FRAME_SIZE as u64) as u32));
        self.in_tx -= n.min(self.in_tx);
        // Copy mode sends at most 32 frames per kick: keep kicking while the
        // kernel has not consumed everything we queued.
        if self.in_tx > 0 && self.tx.pending() > 0 {
            self.kick_tx(ev);
        }
        self.refill(pool, ev);
    }

    /// Completions, then what sits in the rx ring, then the fill entries the kernel never took
    /// (the last `in_fill`: it takes them in order and every frame it took is in the rx ring
    /// once received), then the tx descriptors it never took (copy mode takes them in our
    /// own `sendto`, so its consumer index is current). Frames of sends still in flight in the
    /// kernel (or held by a zero-copy driver) are not recovered.
    fn release(&mut self, pool: &mut FramePool) -> u32 {
        let chunk = |addr: u64| (addr / FRAME_SIZE as u64) as u32;
        let n = self.comp.complete(|addr| pool.free_chunk(chunk(addr)));
        self.in_tx -= n.min(self.in_tx);
        let n = self.rx.receive(u32::MAX, |d| {
            if pool.desc_in_bounds(d.addr, d.len) {
                pool.free_chunk(chunk(d.addr));
            }
        });
        self.in_fill -= n.min(self.in_fill);
        self.fill.last(self.in_fill, |addr| pool.free_chunk(chunk(addr)));
        self.in_fill = 0;
        let unsent = self.tx.pending().min(self.in_tx);
        self.tx.last(unsent, |d| pool.free_chunk(chunk(d.addr)));
        self.in_tx -= unsent;
        self.in_tx
    }
}
