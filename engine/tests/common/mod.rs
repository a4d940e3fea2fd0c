//! Shared helpers of the engine's kernel-facing tests: per-run network
//! namespaces with Drop-guard teardown (also on panic), veth pairs inside
//! them, running code inside a namespace, and loud skipping when not root.
//!
//! Names: `wx` + pid (base 36) + a per-process counter + a role letter, at
//! most 15 characters, so parallel test runs and parallel tests never collide.
#![allow(dead_code)]

use std::fs::File;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};

/// True when the test runs as root; otherwise prints why `test` is skipped.
pub fn root_or_skip(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        // Straight to fd 2, not `eprintln!`: the test harness captures the
        // macros' output of passing tests, and a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW) to create network namespaces, \
             veth pairs, XDP programs and AF_XDP sockets; run `make test` as root (CI does)"
        );
    }
    root
}

fn to36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

/// A fresh per-run name stem, e.g. `wx2bk1`.
pub fn unique_stem() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("wx{}{}", to36(std::process::id()), to36(n))
}

/// Runs `cmd args`, failing with its stderr when it exits non-zero.
pub fn run(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd).args(args).output().with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace this test created; deleted on drop (also on panic).
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `name` with loopback up and IPv6 disabled (no router
    /// solicitations or MLD reports disturbing frame counts).
    pub fn new(name: &str) -> Result<Self> {
        assert!(name.starts_with("wx"), "test namespaces carry the wx prefix");
        run("ip", &["netns", "add", name])?;
        let ns = Netns { name: name.to_owned() };
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n <ns> args`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// `ip netns exec <ns> args`.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        let mut a = vec!["netns", "exec", self.name.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Runs `f` on a new thread that has entered this namespace; threads it
    /// spawns (workers) inherit the namespace. Sockets it creates stay in it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).with_context(|| format!("opening {path}"))?;
        let h = std::thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns into the test namespace");
            f()
        });
        h.join().map_err(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            anyhow::anyhow!("thread in {} panicked: {msg}", self.name)
        })
    }

    /// Whether a namespace called `name` exists.
    pub fn exists(name: &str) -> bool {
        std::path::Path::new(&format!("/run/netns/{name}")).exists()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace removes the veths in it (and their peers).
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Creates a veth pair `a`/`b` inside `ns` (both ends), with fixed MACs, up.
pub fn veth_pair(ns: &Netns, a: &str, mac_a: &str, b: &str, mac_b: &str) -> Result<()> {
    ns.ip(&["link", "add", a, "address", mac_a, "type", "veth", "peer", "name", b, "address", mac_b])?;
    ns.ip(&["link", "set", a, "up"])?;
    ns.ip(&["link", "set", b, "up"])?;
    Ok(())
}

/// Creates a veth pair with end `a` in `ns_a` and end `b` in `ns_b`, up.
pub fn veth_between(ns_a: &Netns, a: &str, mac_a: &str, ns_b: &Netns, b: &str, mac_b: &str) -> Result<()> {
    ns_a.ip(&[
        "link", "add", a, "address", mac_a, "type", "veth", "peer", "name", b, "address", mac_b, "netns",
        &ns_b.name,
    ])?;
    ns_a.ip(&["link", "set", a, "up"])?;
    ns_b.ip(&["link", "set", b, "up"])?;
    Ok(())
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

impl Netns {
    /// Like [`Netns::run`] but returns at once with the thread's handle.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<std::thread::JoinHandle<T>> {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).with_context(|| format!("opening {path}"))?;
        Ok(std::thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns into the test namespace");
            f()
        }))
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
