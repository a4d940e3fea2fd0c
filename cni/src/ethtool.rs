//! Transmit checksum offload, through the legacy ethtool ioctl: off inside each pod (here) and
//! on the node's host link (the daemon).
//!
//! A pod's kernel leaves TCP/UDP checksums to the veth's "hardware" (CHECKSUM_PARTIAL); the
//! kernel completes them only if the frame crosses into another kernel stack, which a frame
//! taken by weft's AF_XDP/AF_PACKET socket never does. With offload off the pod's stack
//! writes every checksum itself. `ETHTOOL_STXCSUM` on an `AF_INET` datagram socket is what
//! `ethtool -K <if> tx off` sends; the socket must be opened inside the pod's netns.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

/// From `linux/ethtool.h`: get / set transmit checksum offload.
const ETHTOOL_GTXCSUM: u32 = 0x0000_0016;
const ETHTOOL_STXCSUM: u32 = 0x0000_0017;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// A socket to send ethtool requests for the netns it was opened in.
#[derive(Debug)]
pub struct Ethtool {
    sock: OwnedFd,
}

impl Ethtool {
    /// Opens the socket in the calling thread's current netns.
    pub fn new() -> std::io::Result<Self> {
        let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
        Ok(Ethtool { sock })
    }

    fn ioctl(&self, ifname: &str, value: &mut EthtoolValue) -> std::io::Result<()> {
        if ifname.len() >= libc::IFNAMSIZ {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: ifreq is plain old data (a name array and a union of integers/pointers);
        // all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
            *dst = src as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (value as *mut EthtoolValue).cast();
        // SAFETY: SIOCETHTOOL reads `req` (a NUL-terminated name, checked shorter than
        // IFNAMSIZ above, and a pointer to `value`) and reads/writes `value`, an
        // `ethtool_value` that outlives the call; the fd is an open socket we own.
        let rc = unsafe { libc::ioctl(self.sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req) };
        if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
    }

    /// Turns transmit checksum offload of `ifname` off.
    pub fn tx_checksum_off(&self, ifname: &str) -> std::io::Result<()> {
        self.ioctl(ifname, &mut EthtoolValue { cmd: ETHTOOL_STXCSUM, data: 0 })
    }

    /// Whether transmit checksum offload of `ifname` is on.
    pub fn tx_checksum(&self, ifname: &str) -> std::io::Result<bool> {
        let mut v = EthtoolValue { cmd: ETHTOOL_GTXCSUM, data: 0 };
        self.ioctl(ifname, &mut v)?;
        Ok(v.data != 0)
    }
}
