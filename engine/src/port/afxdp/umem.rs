//! UMEM: the packet memory every socket of one worker shares, split into
//! fixed-size chunks. A chunk is addressed by its index; the kernel sees it as
//! the byte offset `index * FRAME_SIZE`.
//!
//! The worker's [`Umem`] reads and writes the chunks. A [`UmemShare`], taken before the worker
//! starts, lets the control thread open more AF_XDP sockets over the same memory while the
//! worker runs (socket, rings, bind: the slow part of a pod attach, kept off the worker); it
//! never touches the bytes.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Weak};

use super::sys::Mmap;
use crate::port::frame::FRAME_SIZE;

/// The mapping and the AF_XDP sockets over it, shared by the worker's [`Umem`] and every
/// [`UmemShare`]: the mapping stays until the last of them is dropped, so no socket is ever
/// registered over memory that was unmapped (and maybe reused).
///
/// Kernel side: the first socket opened over the memory registers it (`XDP_UMEM_REG`); every
/// later one binds with `XDP_SHARED_UMEM` to any socket still using that registration, and the
/// kernel keeps the registration while one of them is open. The region only *observes* the
/// sockets (weak references): each socket belongs to its port and closes with it, so a closed
/// pod's socket never stays bound to its interface queue on the region's behalf. When every
/// socket is closed the kernel drops the registration, and the next socket registers the
/// memory again.
#[derive(Debug)]
struct Region {
    map: Mmap,
    frames: u32,
    /// The sockets opened over this memory, oldest first (dead entries pruned at each open).
    sockets: Mutex<Vec<Weak<OwnedFd>>>,
}

// SAFETY: `Region` is shared between the worker's `Umem` and the control side's `UmemShare`.
// The only access to the mapped bytes goes through `Umem::chunk`/`chunk_mut`, i.e. through
// the one `Umem`, which the worker owns; `UmemShare` reads only the address and length (to
// register the memory with the kernel) and the socket list, behind its `Mutex`.
unsafe impl Sync for Region {}

/// The packet memory of one worker.
///
/// Ownership rule (what makes the slices sound): a chunk is accessed through
/// [`Umem::chunk_mut`] only while the worker holds the [`crate::port::Frame`]
/// token of that chunk, i.e. while the chunk is in none of the kernel rings
/// (fill, rx being written, tx, completion). The kernel never touches a chunk
/// outside those rings, so no reference handed out here aliases a kernel write.
/// There is one `Umem` per region (it is not `Clone`); [`UmemShare`]s hand out no references.
#[derive(Debug)]
pub struct Umem {
    region: Arc<Region>,
}

/// A handle on a worker's UMEM for opening AF_XDP sockets over it from another thread
/// ([`crate::port::AfXdpPort::open_shared`]). It keeps the mapping alive but gives no access
/// to the bytes.
#[derive(Debug, Clone)]
pub struct UmemShare {
    region: Arc<Region>,
}

impl Umem {
    /// Maps `frames` chunks of [`FRAME_SIZE`] bytes.
    pub(crate) fn new(frames: u32) -> io::Result<Self> {
        let len = frames as usize * FRAME_SIZE;
        let region = Region { map: Mmap::anonymous(len)?, frames, sockets: Mutex::new(Vec::new()) };
        Ok(Umem { region: Arc::new(region) })
    }

    /// Number of chunks.
    pub fn frames(&self) -> u32 {
        self.region.frames
    }

    /// A handle for opening sockets over this memory from another thread.
    pub fn share(&self) -> UmemShare {
        UmemShare { region: self.region.clone() }
    }

    /// Start offset of chunk `idx`, clamped into the region (indices come from
    /// frame tokens the pool issued or validated, so clamping never changes one).
    fn start(&self, idx: u32) -> usize {
        let frames = self.region.frames;
        debug_assert!(idx < frames, "chunk {idx} outside UMEM of {frames}");
        idx.min(frames - 1) as usize * FRAME_SIZE
    }

    /// The bytes of chunk `idx`.
    pub fn chunk(&self, idx: u32) -> &[u8] {
        let start = self.start(idx);
        // SAFETY: `start + FRAME_SIZE <= len` (clamped index); the mapping lives as
        // long as `self` (it holds the region); by the ownership rule above the kernel
        // does not write this chunk while the caller holds its frame token.
        unsafe { std::slice::from_raw_parts(self.region.map.as_ptr().wrapping_add(start), FRAME_SIZE) }
    }

    /// The bytes of chunk `idx`, mutable.
    pub fn chunk_mut(&mut self, idx: u32) -> &mut [u8] {
        let start = self.start(idx);
        // SAFETY: as in `chunk`; `&mut self` on the region's only `Umem` makes this the only
        // reference into the chunk we hand out (`UmemShare` hands out none).
        unsafe { std::slice::from_raw_parts_mut(self.region.map.as_ptr().wrapping_add(start), FRAME_SIZE) }
    }
}

impl UmemShare {
    /// Number of chunks.
    pub fn frames(&self) -> u32 {
        self.region.frames
    }

    /// Byte length of the region.
    pub(crate) fn len(&self) -> usize {
        self.region.map.len()
    }

    /// Start address, for `XDP_UMEM_REG`.
    pub(crate) fn addr(&self) -> u64 {
        self.region.map.as_ptr() as u64
    }

    /// The oldest socket still open over this memory, to bind the next one to with
    /// `XDP_SHARED_UMEM`; `None` when there is none (the next socket registers the memory).
    /// The caller holds the socket open only while it binds.
    pub(crate) fn open_socket(&self) -> Option<Arc<OwnedFd>> {
        let mut sockets = self.region.sockets.lock().unwrap_or_else(|p| p.into_inner());
        sockets.retain(|s| s.strong_count() > 0);
        sockets.iter().find_map(Weak::upgrade)
    }

    /// Records a socket bound over this memory (observed, not kept open).
    pub(crate) fn add_socket(&self, fd: &Arc<OwnedFd>) {
        let mut sockets = self.region.sockets.lock().unwrap_or_else(|p| p.into_inner());
        sockets.push(Arc::downgrade(fd));
    }
}
