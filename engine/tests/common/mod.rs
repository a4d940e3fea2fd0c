//! Shared helpers of the engine's kernel-facing tests: the namespaces, veths and
//! skips of `weft-testnet` under the `wx` prefix, plus test frames and an
//! AF_PACKET traffic endpoint.
#![allow(dead_code, unused_imports)] // each test binary uses a different part

use anyhow::{Context, Result, bail};

pub use weft_testnet::{Netns, root_or_skip, run, veth_between, veth_pair};

/// A fresh per-run name stem with the engine tests' prefix, e.g. `wx2bk1`.
pub fn unique_stem() -> String {
    weft_testnet::unique_stem("wx")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, p) in s.split(':').enumerate() {
        m[i] = u8::from_str_radix(p, 16).unwrap();
    }
    m
}

/// Local experimental EtherType used by test frames (IEEE 802 88B5).
pub const TEST_ETHERTYPE: u16 = 0x88b5;

/// A test frame: dst, src, EtherType 0x88b5, then `seq` (8 bytes BE) and padding to `len`.
pub fn test_frame(dst: [u8; 6], src: [u8; 6], seq: u64, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len.max(22));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(len.max(22), 0xa5);
    f
}

/// The sequence number of a test frame, if it is one.
pub fn test_seq(f: &[u8]) -> Option<u64> {
    if f.len() >= 22 && f[12..14] == TEST_ETHERTYPE.to_be_bytes() {
        Some(u64::from_be_bytes(f[14..22].try_into().unwrap()))
    } else {
        None
    }
}

use std::time::{Duration, Instant};
use weft_engine::port::{AfPacketPort, FramePool, IoEvents, Port, TpacketGeometry};

/// A traffic endpoint for tests: an AF_PACKET port plus its own pool.
#[derive(Debug)]
pub struct Endpoint {
    pub pool: FramePool,
    pub port: AfPacketPort,
    ev: IoEvents,
}

impl Endpoint {
    /// Opens an AF_PACKET endpoint on `ifname` (call inside the namespace).
    pub fn open(ifname: &str) -> Result<Self> {
        Ok(Endpoint {
            pool: FramePool::new(1024)?,
            port: AfPacketPort::open(ifname, TpacketGeometry::default())?,
            ev: IoEvents::default(),
        })
    }

    /// Sends every frame, retrying while the socket is full (up to 5 s).
    pub fn send(&mut self, frames: &[Vec<u8>]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut staged = Vec::with_capacity(64);
        for chunk in frames.chunks(64) {
            for f in chunk {
                staged.push(self.pool.copy_in(f).context("endpoint pool empty")?);
            }
            while !staged.is_empty() {
                self.port.tx(&mut self.pool, &mut staged, &mut self.ev);
                if Instant::now() > deadline {
                    bail!("could not send within 5 s");
                }
            }
        }
        Ok(())
    }

    /// Receives frames accepted by `keep` until `want` were kept or `timeout`.
    pub fn recv(&mut self, want: usize, timeout: Duration, keep: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut batch = Vec::with_capacity(64);
        while got.len() < want && Instant::now() < deadline {
            batch.clear();
            if self.port.rx(&mut self.pool, &mut batch, 64, &mut self.ev) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            for f in batch.drain(..) {
                let bytes = self.pool.data(&f);
                if keep(bytes) {
                    got.push(bytes.to_vec());
                }
                self.pool.free(f);
            }
        }
        got
    }
}

/// The RFC 791 header checksum of `hdr` (checksum field zero).
pub fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 =
        hdr.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A 20-byte IPv4 header (DF, TTL 64) with a valid checksum.
pub fn ipv4_header(src: [u8; 4], dst: [u8; 4], proto: u8, payload_len: usize) -> Vec<u8> {
    let total = (20 + payload_len) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = ipv4_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}
