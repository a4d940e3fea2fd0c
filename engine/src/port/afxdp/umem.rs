//! UMEM: the packet memory every socket of one worker shares, split into
//! fixed-size chunks. A chunk is addressed by its index; the kernel sees it as
//! the byte offset `index * FRAME_SIZE`.
//!
//! The worker's [`Umem`] reads and writes the chunks. A [`UmemShare`], taken before the worker
//! starts, lets the control thread open more AF_XDP sockets over the same memory while the
//! worker runs (socket, rings, bind: the slow part of a pod attach, kept off the worker); it
//! never touches the bytes.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use super::sys::Mmap;
use crate::port::frame::FRAME_SIZE;

/// The mapping and the socket that registered it with the kernel, shared by the worker's
/// [`Umem`] and every [`UmemShare`]: the mapping stays until the last of them is dropped, so
/// no socket is ever registered over memory that was unmapped (and maybe reused).
#[derive(Debug)]
struct Region {
    map: Mmap,
    frames: u32,
    /// The socket that registered this memory (`XDP_UMEM_REG`); further sockets bind with
    /// `XDP_SHARED_UMEM` to it. A dup of the first AF_XDP socket opened over it, set once and
    /// kept as long as the memory.
    registered: OnceLock<OwnedFd>,
}

// SAFETY: `Region` is shared between the worker's `Umem` and the control side's `UmemShare`.
// The only access to the mapped bytes goes through `Umem::chunk`/`chunk_mut`, i.e. through
// the one `Umem`, which the worker owns; `UmemShare` reads only the address and length (to
// register the memory with the kernel) and the `OnceLock`, which is itself `Sync`.
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
        let region = Region { map: Mmap::anonymous(len)?, frames, registered: OnceLock::new() };
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

    /// The registering socket, if an AF_XDP port registered this memory.
    pub(crate) fn registered(&self) -> Option<BorrowedFd<'_>> {
        self.region.registered.get().map(|f| f.as_fd())
    }

    /// Records the socket that registered this memory (the first one wins; a later socket
    /// that registered it again keeps its own registration and is not recorded).
    pub(crate) fn set_registered(&self, fd: OwnedFd) {
        let _ = self.region.registered.set(fd);
    }
}
