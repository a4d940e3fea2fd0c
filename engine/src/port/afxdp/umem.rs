//! UMEM: the packet memory every socket of one worker shares, split into
//! fixed-size chunks. A chunk is addressed by its index; the kernel sees it as
//! the byte offset `index * FRAME_SIZE`.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use super::sys::Mmap;
use crate::port::frame::FRAME_SIZE;

/// The packet memory of one worker.
///
/// Ownership rule (what makes the slices sound): a chunk is accessed through
/// [`Umem::chunk_mut`] only while the worker holds the [`crate::port::Frame`]
/// token of that chunk, i.e. while the chunk is in none of the kernel rings
/// (fill, rx being written, tx, completion). The kernel never touches a chunk
/// outside those rings, so no reference handed out here aliases a kernel write.
#[derive(Debug)]
pub struct Umem {
    map: Mmap,
    frames: u32,
    /// The socket that registered this memory with the kernel (`XDP_UMEM_REG`);
    /// further sockets bind with `XDP_SHARED_UMEM` to it. A dup of the first
    /// AF_XDP port's socket, kept as long as the memory.
    registered: Option<OwnedFd>,
}

impl Umem {
    /// Maps `frames` chunks of [`FRAME_SIZE`] bytes.
    pub(crate) fn new(frames: u32) -> io::Result<Self> {
        let len = frames as usize * FRAME_SIZE;
        Ok(Umem { map: Mmap::anonymous(len)?, frames, registered: None })
    }

    /// Number of chunks.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Byte length of the region.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Start address, for `XDP_UMEM_REG`.
    pub(crate) fn addr(&self) -> u64 {
        self.map.as_ptr() as u64
    }

    /// The registering socket, if an AF_XDP port registered this memory.
    pub(crate) fn registered(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.registered.as_ref().map(|f| f.as_fd())
    }

    /// Records the socket that registered this memory.
    pub(crate) fn set_registered(&mut self, fd: OwnedFd) {
        self.registered = Some(fd);
    }

    /// Start offset of chunk `idx`, clamped into the region (indices come from
    /// frame tokens the pool issued or validated, so clamping never changes one).
    fn start(&self, idx: u32) -> usize {
        debug_assert!(idx < self.frames, "chunk {idx} outside UMEM of {}", self.frames);
        idx.min(self.frames - 1) as usize * FRAME_SIZE
    }

    /// The bytes of chunk `idx`.
    pub fn chunk(&self, idx: u32) -> &[u8] {
        let start = self.start(idx);
        // SAFETY: `start + FRAME_SIZE <= len` (clamped index); the mapping lives as
        // long as `self`; by the ownership rule above the kernel does not write this
        // chunk while the caller holds its frame token.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().wrapping_add(start), FRAME_SIZE) }
    }

    /// The bytes of chunk `idx`, mutable.
    pub fn chunk_mut(&mut self, idx: u32) -> &mut [u8] {
        let start = self.start(idx);
        // SAFETY: as in `chunk`; `&mut self` makes this the only reference we hand out.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr().wrapping_add(start), FRAME_SIZE) }
    }
}
