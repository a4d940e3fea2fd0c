//! Test support shared by weft's kernel-facing tests: per-run network namespaces
//! with Drop-guard teardown (also on panic), veth pairs, code run inside a
//! namespace, and loud skipping when not root (a failure where `CI` is set).
//!
//! Every suite names its namespaces from [`unique_stem`] with its own prefix
//! (engine `wx`, daemon `wd`, …): the prefix, the pid and a per-process counter in
//! base 36, leaving room for a role letter within the 15 characters of an
//! interface name, so parallel runs and parallel tests never collide.
#![forbid(unsafe_code)]

use std::fs::File;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};

/// Reports that `test` cannot run because of `why`. Where the environment variable `CI` is
/// set (CI runs everything, as root) this panics, failing the test with the reason; elsewhere
/// it prints a loud `SKIPPED` line and the caller returns early.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run and CI is set, so it fails instead of skipping: {why}");
    }
    // Straight to fd 2, not `eprintln!`: the test harness captures the macros' output of
    // passing tests, and a skip must be seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// True when the test runs as root; otherwise [`skip`]s `test` (a failure under `CI`).
pub fn root_or_skip(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        skip(
            test,
            "needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW) to create network namespaces, veth pairs, \
             XDP programs and AF_XDP sockets; run `make test` as root",
        );
    }
    root
}

fn to36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(char::from(digits[(n % 36) as usize]));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.iter().rev().collect()
}

/// The environment variable that, when set, replaces every test's own name prefix (for runs
/// that must keep their namespaces and links under one prefix of their own).
pub const PREFIX_ENV: &str = "WEFT_NETNS_PREFIX";

/// A fresh per-run name stem: `prefix` (or `$WEFT_NETNS_PREFIX`), the pid and a counter in
/// base 36 (`wx2bk1`).
pub fn unique_stem(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let prefix = std::env::var(PREFIX_ENV).unwrap_or_else(|_| prefix.to_owned());
    format!("{prefix}{}{}", to36(std::process::id()), to36(n))
}

/// Polls `cond` every millisecond until it holds; panics naming `what` once `timeout` passes
/// without it holding.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
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
    /// Creates `name` (a [`unique_stem`] plus a role) with loopback up and IPv6
    /// disabled (no router solicitations or MLD reports disturbing frame counts).
    pub fn new(name: &str) -> Result<Self> {
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

    /// Runs `f` on a new thread that has entered this namespace and waits for it;
    /// threads it spawns (workers) inherit the namespace. Sockets it creates stay in it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        self.spawn(f)?.join().map_err(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            anyhow::anyhow!("thread in {} panicked: {msg}", self.name)
        })
    }

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

    /// Whether a namespace called `name` exists.
    pub fn exists(name: &str) -> bool {
        std::path::Path::new(&format!("/run/netns/{name}")).exists()
    }

    /// Whether an XDP program is attached to `ifname`.
    pub fn has_xdp(&self, ifname: &str) -> Result<bool> {
        Ok(self.ip(&["-d", "link", "show", "dev", ifname])?.contains("prog/xdp"))
    }

    /// Waits (up to 5 s: the kernel releases BPF links asynchronously) until
    /// `ifname` has no XDP program; says whether it left.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_carry_the_prefix_are_unique_and_leave_room_for_a_role() {
        let a = unique_stem("wx");
        let b = unique_stem("wx");
        assert!(a.starts_with("wx") && b.starts_with("wx"));
        assert_ne!(a, b);
        assert!(a.len() <= 12, "{a}");
        assert_eq!(to36(0), "0");
        assert_eq!(to36(36 * 36 + 35), "10z");
    }
}
