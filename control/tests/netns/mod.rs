//! Network namespaces for the daemon tests: per-run `wd` names, Drop
//! teardown (also on panic), code run inside a namespace, loud skips.
#![allow(dead_code)]

pub mod daemon;

use std::fs::File;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};

/// True when root; otherwise prints (to fd 2, past the capture) why `test` is skipped.
pub fn root_or_skip(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW) for network namespaces, \
             veths, XDP and AF_XDP; run `make test` as root (CI does)"
        );
    }
    root
}

/// A fresh name stem: `wd` + pid and a counter in base 36 (leaves room for a role letter).
pub fn unique_stem() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let to36 = |mut v: u32| {
        let d = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut s = Vec::new();
        loop {
            s.push(d[(v % 36) as usize]);
            v /= 36;
            if v == 0 {
                break;
            }
        }
        s.reverse();
        String::from_utf8(s).unwrap_or_default()
    };
    format!("wd{}{}", to36(std::process::id()), to36(n))
}

/// Runs `cmd args`, failing with its stderr on a non-zero exit.
pub fn run(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd).args(args).output().with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A namespace this test created; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `name` (must carry the `wd` or `ww` prefix) with loopback up and IPv6 off.
    pub fn new(name: &str) -> Result<Self> {
        assert!(
            name.starts_with("wd") || name.starts_with("ww"),
            "daemon test namespaces carry the wd (or, forwarding tests, ww) prefix"
        );
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

    /// Runs `f` on a thread inside this namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).with_context(|| format!("opening {path}"))?;
        std::thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns into the test namespace");
            f()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in {} panicked", self.name))
    }

    /// Whether an XDP program is attached to `ifname`.
    pub fn has_xdp(&self, ifname: &str) -> Result<bool> {
        Ok(self.ip(&["-d", "link", "show", "dev", ifname])?.contains("prog/xdp"))
    }

    /// Waits (up to 5 s: the kernel releases BPF links asynchronously)
    /// until `ifname` has no XDP program; says whether it left.
    pub fn xdp_gone(&self, ifname: &str) -> Result<bool> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.has_xdp(ifname)? {
            if Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(true)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// A veth pair with end `a` in `ns_a` and end `b` in `ns_b`, both up.
pub fn veth_between(ns_a: &Netns, a: &str, mac_a: &str, ns_b: &Netns, b: &str, mac_b: &str) -> Result<()> {
    ns_a.ip(&[
        "link", "add", a, "address", mac_a, "type", "veth", "peer", "name", b, "address", mac_b, "netns",
        &ns_b.name,
    ])?;
    ns_a.ip(&["link", "set", a, "up"])?;
    ns_b.ip(&["link", "set", b, "up"])?;
    Ok(())
}
