//! The kernel side of the AF_PACKET fallback port: a `TPACKET_V3` receive ring
//! (blocks of packets handed over as a whole) and non-blocking `send` for
//! transmit. Kept here because reading the mapped ring needs `unsafe`.
//!
//! Synchronisation edge: a block belongs to us once its `block_status` has
//! `TP_STATUS_USER` (read with Acquire, pairing with the kernel's release after
//! it filled the block); we give it back with a Release store of
//! `TP_STATUS_KERNEL` after the last read of its packets.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::sys::{self, Mmap};
use crate::port::error::{NEEDS_AF_PACKET, PortError};

/// `PACKET_IGNORE_OUTGOING` (linux/if_packet.h, 4.20+): do not loop our own
/// transmissions back into the receive ring.
const PACKET_IGNORE_OUTGOING: i32 = 23;
/// Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then `tpacket_hdr_v1`).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
/// Offsets in `struct tpacket3_hdr`.
const PKT_NEXT: usize = 0;
const PKT_SNAPLEN: usize = 12;
const PKT_MAC: usize = 24;

/// Geometry of the receive ring.
#[derive(Debug, Clone, Copy)]
pub struct TpacketGeometry {
    /// Bytes per block (power of two, multiple of the page size).
    pub block_size: u32,
    /// Number of blocks.
    pub blocks: u32,
    /// A partly filled block is handed over after this many milliseconds.
    pub retire_ms: u32,
}

impl Default for TpacketGeometry {
    fn default() -> Self {
        TpacketGeometry { block_size: 1 << 18, blocks: 16, retire_ms: 1 }
    }
}

/// An AF_PACKET socket with a TPACKET_V3 receive ring, bound to one interface.
#[derive(Debug)]
pub(crate) struct Tpacket {
    fd: OwnedFd,
    ring: Mmap,
    geo: TpacketGeometry,
    block: u32,
    /// Packets left in the current block (0: not owned yet).
    left: u32,
    /// Ring offset of the next packet header in the current block.
    next: usize,
}

impl Tpacket {
    pub(crate) fn open(ifname: &str, geo: TpacketGeometry) -> Result<Self, PortError> {
        let os = |step: &str, e| {
            PortError::from_os(format!("AF_PACKET socket ({step})"), ifname, NEEDS_AF_PACKET, e)
        };
        let ifindex = sys::if_index(ifname).map_err(|_| PortError::NoSuchInterface {
            what: "AF_PACKET socket",
            ifname: ifname.to_owned(),
        })?;
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32).map_err(|e| os("socket", e))?;
        let s = fd.as_fd();
        sys::setsockopt(
            s,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V3 as i32),
        )
        .map_err(|e| os("TPACKET_V3", e))?;
        let frame_size = 2048u32;
        let req = libc::tpacket_req3 {
            tp_block_size: geo.block_size,
            tp_block_nr: geo.blocks,
            tp_frame_size: frame_size,
            tp_frame_nr: geo.block_size / frame_size * geo.blocks,
            tp_retire_blk_tov: geo.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::setsockopt(s, libc::SOL_PACKET, libc::PACKET_RX_RING, &req).map_err(|e| os("rx ring", e))?;
        let ring = Mmap::shared(s, geo.block_size as usize * geo.blocks as usize, 0)
            .map_err(|e| os("mmap rx ring", e))?;
        // Best effort: older kernels lack these; the port still works without them.
        let _ = sys::setsockopt(s, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32);
        let _ = sys::setsockopt(s, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1i32);
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid starting value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        sys::bind(s, &sll).map_err(|e| os("bind", e))?;
        Ok(Tpacket { fd, ring, geo, block: 0, left: 0, next: 0 })
    }

    fn atomic_u32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= self.ring.len() && off % 4 == 0);
        // SAFETY: `off` is a 4-byte aligned offset inside the mapping (block headers
        // sit at block starts); the kernel accesses the status word atomically.
        unsafe { &*self.ring.as_ptr().wrapping_add(off).cast::<AtomicU32>() }
    }

    /// Reads a plain integer at ring offset `off` (0 when out of bounds).
    fn read<T: Copy + Default>(&self, off: usize) -> T {
        if off + size_of::<T>() > self.ring.len() {
            return T::default();
        }
        let p = self.ring.as_ptr().wrapping_add(off).cast::<T>();
        // SAFETY: in bounds (checked); only called on blocks we own (status USER);
        // `T` is an integer, valid for any bit pattern, read unaligned.
        unsafe { p.read_unaligned() }
    }

    /// Calls `f` with up to `max` received frames, in order; stops early when
    /// `f` returns false (the frame is then delivered again next time).
    /// Returns the number of frames consumed.
    pub(crate) fn recv(&mut self, max: usize, mut f: impl FnMut(&[u8]) -> bool) -> usize {
        let bs = self.geo.block_size as usize;
        let mut n = 0;
        while n < max {
            let base = self.block as usize * bs;
            if self.left == 0 {
                // Acquire: pairs with the kernel's release of a filled block.
                let status = self.atomic_u32(base + BLOCK_STATUS).load(Ordering::Acquire);
                if status & libc::TP_STATUS_USER == 0 {
                    break;
                }
                self.left = self.read::<u32>(base + BLOCK_NUM_PKTS);
                self.next = base + self.read::<u32>(base + BLOCK_FIRST_PKT) as usize;
                if self.left == 0 {
                    self.release_block();
                    continue;
                }
            }
            let hdr = self.next;
            let mac = self.read::<u16>(hdr + PKT_MAC) as usize;
            let snap = self.read::<u32>(hdr + PKT_SNAPLEN) as usize;
            let start = hdr + mac;
            let end = (start + snap).min(base + bs);
            let data = if start < end {
                // SAFETY: `start..end` lies inside the current block, which we own
                // (status USER) until `release_block`.
                unsafe { std::slice::from_raw_parts(self.ring.as_ptr().wrapping_add(start), end - start) }
            } else {
                &[]
            };
            if !f(data) {
                break;
            }
            n += 1;
            self.next = hdr + self.read::<u32>(hdr + PKT_NEXT) as usize;
            self.left -= 1;
            if self.left == 0 {
                self.release_block();
            }
        }
        n
    }

    fn release_block(&mut self) {
        let base = self.block as usize * self.geo.block_size as usize;
        // Release: all our reads of the block happen before the kernel refills it.
        self.atomic_u32(base + BLOCK_STATUS).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block = (self.block + 1) % self.geo.blocks;
        self.left = 0;
    }

    /// Sends one frame without blocking; `Ok(false)` when the socket is full.
    pub(crate) fn send(&self, frame: &[u8]) -> std::io::Result<bool> {
        sys::send(self.fd.as_fd(), frame)
    }
}
