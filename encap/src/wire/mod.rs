//! Zero-copy typed views of the protocols weft reads and writes, one per file.
//!
//! Every view wraps a buffer `T: AsRef<[u8]>` (read) or `AsRef + AsMut` (write):
//! `new_checked` validates the lengths (and the fields lengths depend on) so the
//! accessors cannot go out of bounds; `new_unchecked` is for buffers the caller
//! sized itself, when emitting. Byte ranges are declared once per file in a private
//! `field` module.

pub mod arp;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod udp;
pub mod vxlan;

/// A byte range within a header.
pub(crate) type Field = core::ops::Range<usize>;

/// Reads a big-endian u16 at `at`. Callers guarantee `at + 2 <= b.len()` by a length check.
#[inline(always)]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Writes a big-endian u16 at `at`.
#[inline(always)]
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Reads four bytes at `at` as an IPv4 address.
#[inline(always)]
pub(crate) fn get_ipv4(b: &[u8], at: usize) -> core::net::Ipv4Addr {
    core::net::Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Reads six bytes at `at` as a MAC address.
#[inline(always)]
pub(crate) fn get_mac(b: &[u8], at: usize) -> ethernet::MacAddr {
    ethernet::MacAddr([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]])
}
