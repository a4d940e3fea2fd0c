//! Frames: explicit ownership tokens for UMEM chunks, the per-worker pool that
//! hands them out, and the mutable view the processing code gets.
//!
//! A frame is in exactly one place at a time: the pool's free list, a port's
//! fill ring, an rx batch, a staged tx queue, a tx ring or a completion ring.
//! [`Frame`] is deliberately neither `Copy` nor `Clone`, so moving it is the
//! only way to move a chunk between those places.

use std::io;

pub use super::afxdp::{Umem, UmemShare};

/// Bytes per UMEM chunk (AF_XDP aligned mode: a power of two, 2048..=page size).
pub const FRAME_SIZE: usize = 2048;
/// Data offset of a received frame inside its chunk. AF_XDP puts received data
/// `XDP_PACKET_HEADROOM` (256) bytes into the chunk; the other ports do the same,
/// so every frame can grow at the front by at least [`MIN_HEADROOM`] bytes.
pub const RX_HEADROOM: usize = 256;
/// Headroom every port guarantees on receive (VXLAN encap needs 50, IPIP 20).
pub const MIN_HEADROOM: usize = 128;
/// Largest frame a chunk can hold after the receive headroom.
pub const MAX_FRAME_LEN: usize = FRAME_SIZE - RX_HEADROOM;

/// Ownership token of one UMEM chunk plus the bounds of the packet in it.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    chunk: u32,
    offset: u16,
    len: u16,
}

impl Frame {
    /// An empty frame on chunk `chunk`, data starting at [`RX_HEADROOM`].
    pub(crate) fn empty(chunk: u32) -> Self {
        Frame { chunk, offset: RX_HEADROOM as u16, len: 0 }
    }

    /// A frame from a kernel descriptor address (UMEM byte offset) and length.
    /// The caller validated `addr + len` against the UMEM size.
    pub(crate) fn from_desc(addr: u64, len: u32) -> Self {
        Frame {
            chunk: (addr / FRAME_SIZE as u64) as u32,
            offset: (addr % FRAME_SIZE as u64) as u16,
            len: len.min(FRAME_SIZE as u32) as u16,
        }
    }

    /// The UMEM byte offset of the first data byte (what a tx descriptor carries).
    pub fn addr(&self) -> u64 {
        self.chunk as u64 * FRAME_SIZE as u64 + self.offset as u64
    }

    /// The chunk index.
    pub fn chunk(&self) -> u32 {
        self.chunk
    }

    /// Offset of the data inside the chunk.
    pub fn offset(&self) -> usize {
        self.offset as usize
    }

    /// Data length.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the frame carries no data.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The processing code's view of one frame: the whole chunk, mutable, plus the
/// data bounds, so encapsulation can grow the frame at the front in place.
#[derive(Debug)]
pub struct FrameMut<'a> {
    chunk: &'a mut [u8],
    frame: &'a mut Frame,
}

impl<'a> FrameMut<'a> {
    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        let (o, l) = (self.frame.offset(), self.frame.len());
        &self.chunk[o..o + l]
    }

    /// The packet bytes, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (o, l) = (self.frame.offset(), self.frame.len());
        &mut self.chunk[o..o + l]
    }

    /// The whole chunk ([`FRAME_SIZE`] bytes), for code that rewrites bounds itself.
    pub fn chunk_mut(&mut self) -> &mut [u8] {
        self.chunk
    }

    /// Bytes free in front of the data.
    pub fn headroom(&self) -> usize {
        self.frame.offset()
    }

    /// Data offset inside the chunk.
    pub fn offset(&self) -> usize {
        self.frame.offset()
    }

    /// Data length.
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    /// Whether the frame carries no data.
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }

    /// Moves the data start `n` bytes towards the chunk start (encapsulation).
    /// Returns false, changing nothing, when the headroom is smaller than `n`.
    #[must_use]
    pub fn push_front(&mut self, n: usize) -> bool {
        if n > self.frame.offset() {
            return false;
        }
        self.frame.offset -= n as u16;
        self.frame.len += n as u16;
        true
    }

    /// Moves the data start `n` bytes forward (decapsulation). Returns false,
    /// changing nothing, when the frame is shorter than `n`.
    #[must_use]
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.frame.len() {
            return false;
        }
        self.frame.offset += n as u16;
        self.frame.len -= n as u16;
        true
    }

    /// Sets the data bounds inside the chunk. Returns false, changing nothing,
    /// when they do not fit.
    #[must_use]
    pub fn set_bounds(&mut self, offset: usize, len: usize) -> bool {
        if offset.checked_add(len).is_none_or(|end| end > FRAME_SIZE) {
            return false;
        }
        self.frame.offset = offset as u16;
        self.frame.len = len as u16;
        true
    }
}

/// A worker's packet memory and its free list. Every port of the worker takes
/// frames from and returns frames to this pool; AF_XDP ports share its UMEM,
/// so a frame received on one port is sent on another without a copy.
#[derive(Debug)]
pub struct FramePool {
    umem: Umem,
    /// Free chunk indices; capacity = number of chunks, so pushes never allocate.
    free: Vec<u32>,
    /// Frames copied into this pool (AF_PACKET rx, handoff, in-memory injection).
    copies: u64,
}

impl FramePool {
    /// Maps `frames` chunks, all free.
    pub fn new(frames: u32) -> io::Result<Self> {
        if frames == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a frame pool needs at least one frame"));
        }
        let umem = Umem::new(frames)?;
        let free = (0..frames).rev().collect();
        Ok(FramePool { umem, free, copies: 0 })
    }

    /// Number of chunks in the pool.
    pub fn capacity(&self) -> u32 {
        self.umem.frames()
    }

    /// Number of free chunks.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Frames copied into the pool since creation (zero on a pure AF_XDP path).
    pub fn copies(&self) -> u64 {
        self.copies
    }

    /// Takes a free frame (empty, data at [`RX_HEADROOM`]).
    pub fn alloc(&mut self) -> Option<Frame> {
        self.free.pop().map(Frame::empty)
    }

    /// Returns a frame to the free list.
    pub fn free(&mut self, frame: Frame) {
        debug_assert!(self.free.len() < self.free.capacity());
        self.free.push(frame.chunk);
    }

    /// Returns a chunk (from a completion ring) to the free list.
    pub(crate) fn free_chunk(&mut self, chunk: u32) {
        self.free.push(chunk);
    }

    /// Takes a free frame and copies `bytes` into it at [`RX_HEADROOM`]
    /// (truncated to [`MAX_FRAME_LEN`]). Counts one copy.
    pub fn copy_in(&mut self, bytes: &[u8]) -> Option<Frame> {
        let mut f = self.alloc()?;
        let n = bytes.len().min(MAX_FRAME_LEN);
        self.umem.chunk_mut(f.chunk)[RX_HEADROOM..RX_HEADROOM + n].copy_from_slice(&bytes[..n]);
        f.len = n as u16;
        self.copies += 1;
        Some(f)
    }

    /// The packet bytes of `frame`.
    pub fn data(&self, frame: &Frame) -> &[u8] {
        &self.umem.chunk(frame.chunk)[frame.offset()..frame.offset() + frame.len()]
    }

    /// The mutable view of `frame` for processing.
    pub fn view<'a>(&'a mut self, frame: &'a mut Frame) -> FrameMut<'a> {
        FrameMut { chunk: self.umem.chunk_mut(frame.chunk), frame }
    }

    /// Whether `addr..addr+len` (a kernel descriptor) lies inside one chunk of this pool.
    pub(crate) fn desc_in_bounds(&self, addr: u64, len: u32) -> bool {
        let chunk = addr / FRAME_SIZE as u64;
        chunk < self.umem.frames() as u64 && (addr % FRAME_SIZE as u64) + len as u64 <= FRAME_SIZE as u64
    }

    /// A handle on this pool's UMEM for opening AF_XDP sockets over it from another thread
    /// once the pool moved into its worker ([`crate::port::AfXdpPort::open_shared`]).
    pub fn umem_share(&self) -> UmemShare {
        self.umem.share()
    }
}
