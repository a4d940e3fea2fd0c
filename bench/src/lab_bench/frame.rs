//! The benchmark's test frame: Ethernet + IPv4 + UDP from one pod to another, with a tag in
//! the payload that the sink reads back.
//!
//! ```text
//!  0      14        34      42       44          48        52             60 (+ padding)
//!  | eth  | ipv4    | udp   | magic  | run id    | seq     | send time ns  |
//!  |      | DF, ttl | cksum | "WF"   | u32 BE    | u32 BE  | u64 BE        |
//!  |      | 64      | 0     |        |           |         | CLOCK_MONOTONIC
//! ```
//!
//! Frame sizes are Ethernet frames *with* the 4-byte FCS, as benchmarks count them: a "64-byte"
//! frame is 60 bytes on the veth. The UDP checksum is 0 (legal for IPv4), so only the IPv4
//! header checksum is computed, once per template: per packet the generator patches the UDP
//! source port (the flow) and the tag, which the IPv4 checksum does not cover.

use std::net::Ipv4Addr;

use weft_encap::checksum;

/// Ethernet + IPv4 + UDP header bytes.
pub const HEADERS: usize = 14 + 20 + 8;
/// Bytes of the tag after the headers.
pub const TAG_LEN: usize = 2 + 4 + 4 + 8;
/// The smallest frame size (with FCS) that holds the tag.
pub const MIN_FRAME_SIZE: usize = HEADERS + TAG_LEN + 4;
/// The largest frame size (with FCS) the lab's pod MTU (1450) carries.
pub const MAX_FRAME_SIZE: usize = 1450 + 14 + 4;
/// The tag's first bytes: "WF".
pub const MAGIC: u16 = 0x5746;
/// UDP destination port of every test frame.
pub const DST_PORT: u16 = 9;
/// UDP source port of flow 0; flow `i` uses `BASE_SRC_PORT + i`.
pub const BASE_SRC_PORT: u16 = 20000;
/// Most flows a run can have (source ports 20000..=65535).
pub const MAX_FLOWS: u32 = (u16::MAX - BASE_SRC_PORT) as u32 + 1;

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 34..36;
    pub const MAGIC: Range<usize> = 42..44;
    pub const RUN: Range<usize> = 44..48;
    pub const SEQ: Range<usize> = 48..52;
    pub const TIME: Range<usize> = 52..60;
}

/// Who sends to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// The sending pod's MAC.
    pub src_mac: [u8; 6],
    /// The next hop's MAC (the pod's gateway).
    pub dst_mac: [u8; 6],
    /// The sending pod's address.
    pub src_ip: Ipv4Addr,
    /// The receiving pod's address.
    pub dst_ip: Ipv4Addr,
}

/// A ready frame of one size; [`Template::stamp`] writes the per-packet fields into a copy.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
}

impl Template {
    /// The frame for `ends` of `frame_size` bytes including FCS
    /// ([`MIN_FRAME_SIZE`]..=[`MAX_FRAME_SIZE`], clamped).
    pub fn new(ends: &Endpoints, frame_size: usize) -> Self {
        let len = frame_size.clamp(MIN_FRAME_SIZE, MAX_FRAME_SIZE) - 4;
        let mut b = vec![0u8; len];
        b[0..6].copy_from_slice(&ends.dst_mac);
        b[6..12].copy_from_slice(&ends.src_mac);
        b[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip_len = (len - 14) as u16;
        b[14] = 0x45;
        b[16..18].copy_from_slice(&ip_len.to_be_bytes());
        b[20..22].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
        b[22] = 64;
        b[23] = 17;
        b[26..30].copy_from_slice(&ends.src_ip.octets());
        b[30..34].copy_from_slice(&ends.dst_ip.octets());
        let sum = checksum::checksum(&b[14..34]);
        b[24..26].copy_from_slice(&sum.to_be_bytes());
        b[field::SRC_PORT].copy_from_slice(&BASE_SRC_PORT.to_be_bytes());
        b[36..38].copy_from_slice(&DST_PORT.to_be_bytes());
        b[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
        b[field::MAGIC].copy_from_slice(&MAGIC.to_be_bytes());
        Template { bytes: b }
    }

    /// Frame length on the wire without FCS.
    #[allow(clippy::len_without_is_empty)] // never empty: the constructor clamps
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Copies the template into `out` (exactly [`Template::len`] bytes) with flow `flow`, run
    /// `run`, sequence `seq` and send time `time_ns`.
    pub fn stamp(&self, out: &mut [u8], flow: u16, run: u32, seq: u32, time_ns: u64) {
        out.copy_from_slice(&self.bytes);
        out[field::SRC_PORT].copy_from_slice(&BASE_SRC_PORT.wrapping_add(flow).to_be_bytes());
        out[field::RUN].copy_from_slice(&run.to_be_bytes());
        out[field::SEQ].copy_from_slice(&seq.to_be_bytes());
        out[field::TIME].copy_from_slice(&time_ns.to_be_bytes());
    }
}

/// The tag read back from a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Run id.
    pub run: u32,
    /// Sequence number in the run.
    pub seq: u32,
    /// Send time, CLOCK_MONOTONIC ns.
    pub time_ns: u64,
}

/// The tag of `frame` if it is one of ours (IPv4, UDP to [`DST_PORT`], magic present).
pub fn read_tag(frame: &[u8]) -> Option<Tag> {
    if frame.len() < HEADERS + TAG_LEN
        || frame[12..14] != [0x08, 0x00]
        || frame[14] != 0x45
        || frame[23] != 17
        || frame[36..38] != DST_PORT.to_be_bytes()
        || frame[field::MAGIC] != MAGIC.to_be_bytes()
    {
        return None;
    }
    let u32_at = |r: std::ops::Range<usize>| u32::from_be_bytes(frame[r].try_into().unwrap_or_default());
    Some(Tag {
        run: u32_at(field::RUN),
        seq: u32_at(field::SEQ),
        time_ns: u64::from_be_bytes(frame[field::TIME].try_into().unwrap_or_default()),
    })
}

/// CLOCK_MONOTONIC in ns: the same clock in every namespace of the machine, so a send time
/// written in one pod is comparable with a receive time read in another.
pub fn now_ns() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends() -> Endpoints {
        Endpoints {
            src_mac: [2, 0, 0xc6, 0x13, 1, 1],
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_ip: Ipv4Addr::new(198, 19, 1, 2),
            dst_ip: Ipv4Addr::new(198, 19, 2, 2),
        }
    }

    #[test]
    fn a_stamped_frame_reads_back_its_tag_and_has_a_valid_ipv4_checksum() {
        for size in [64, 512, 1450] {
            let t = Template::new(&ends(), size);
            assert_eq!(t.len(), size - 4);
            let mut out = vec![0; t.len()];
            t.stamp(&mut out, 9999, 7, 123_456, 0x0102_0304_0506_0708);
            assert_eq!(read_tag(&out), Some(Tag { run: 7, seq: 123_456, time_ns: 0x0102_0304_0506_0708 }));
            assert_eq!(checksum::checksum(&out[14..34]), 0, "IPv4 header checksum verifies");
            assert_eq!(u16::from_be_bytes([out[16], out[17]]) as usize, size - 4 - 14, "IPv4 total length");
            assert_eq!(u16::from_be_bytes([out[38], out[39]]) as usize, size - 4 - 34, "UDP length");
            assert_eq!(u16::from_be_bytes([out[34], out[35]]), BASE_SRC_PORT + 9999, "flow = source port");
        }
    }

    #[test]
    fn frames_that_are_not_ours_have_no_tag() {
        let t = Template::new(&ends(), 64);
        let mut out = vec![0; t.len()];
        t.stamp(&mut out, 0, 1, 1, 1);
        let mut other_port = out.clone();
        other_port[37] ^= 1;
        let mut arp = out.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut no_magic = out.clone();
        no_magic[42] ^= 0xff;
        for f in [&other_port[..], &arp[..], &no_magic[..], &out[..HEADERS + TAG_LEN - 1]] {
            assert_eq!(read_tag(f), None);
        }
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = now_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = now_ns();
        assert!(b >= a + 2_000_000, "{a} -> {b}");
    }
}
