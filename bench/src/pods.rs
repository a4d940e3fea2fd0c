//! `weft-bench pods`: pods coming and going on a running weft node. One static host-gw weft
//! node in a network namespace (one uplink queue, its worker pinned to core 1 when there are
//! two cores), pods as veths into namespaces of their own, all attached through the API as
//! the CNI plugin does:
//!
//! - **attach latency**: a pod not yet attached sends a UDP datagram every 100 µs to another
//!   pod (the MACs it needs set statically, so no ARP retry timer is measured); from just
//!   before the API's pod add until the first datagram arrives at the other pod through the
//!   pod's own AF_XDP port. The datagrams leave with TTL 2: through weft (one hop) they arrive
//!   with TTL 1, while the node's kernel, which forwards the pod's frames before weft's socket
//!   takes them (no program yet, or the program's socket slot still empty), hands them to the
//!   host link with TTL 1 and weft drops them there (`ttl_expired`, counted and reported), so
//!   the kernel path cannot deliver one; before the first sample the bench checks that nothing
//!   arrives from the unattached pod. Then the pod is detached again, and the next sample
//!   taken;
//! - **churn**: one UDP flow between two attached pods at full speed (a sender thread in one
//!   pod, a counting receiver in the other, pinned to core 0), delivered pps without churn and
//!   while a third pod is attached and detached in a loop, alternating, rounds;
//! - **idle pods**: the same flow with 1 and with 110 (kubelet's default max-pods) idle pods
//!   attached to the same worker, alternating. Goal: within 10 %.
//!
//! Namespaces are named `wpd<pid>…` (`$WEFT_NETNS_PREFIX<pid>…` when that is set) and deleted on exit (also on error); the daemon is killed
//! by its PID.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use weft_control::api::{Reply, Request, StatusReport, request};

use crate::lab_bench::netns::{join, spawn_in};
use crate::lab_bench::testbed::sibling;
use crate::options;
use crate::stats::median;

const USAGE: &str = "usage: weft-bench pods [--attach-samples 100] [--rounds 3] [--secs 2] [--idle-pods 110]
  attach latency (API pod add -> first packet through the pod's port), a flow's pps with and without pod
  churn, and with 1 vs --idle-pods idle pods attached. Needs root.";

/// Goal: the flow with `idle_pods` idle pods attached is within this fraction of the flow
/// with one.
pub const IDLE_GOAL: f64 = 0.10;

const FLOW_PORT: u16 = 9000;
const ATTACH_PORT: u16 = 9001;
const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);
const SENDER: u8 = 2;
const RECEIVER: u8 = 3;
const CHURNED: u8 = 4;
const ATTACHED: u8 = 5;
/// TTL of the attach-latency datagrams: weft's hop leaves 1; the node kernel's hop before it
/// leaves 1 for weft, which drops them as expired.
const ATTACH_TTL: u32 = 2;

/// What `--json` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodsResult {
    /// Attach latency samples (API pod add issued -> first packet at the peer pod through the
    /// pod's own port), ms.
    pub attach_ms: Vec<f64>,
    /// Datagrams of the attaching pod the node kernel forwarded (before weft's socket took the
    /// pod's frames) and weft dropped as TTL-expired during the attach samples.
    #[serde(default)]
    pub attach_kernel_forwarded: u64,
    /// The API's own answer time for the same attaches, ms.
    pub api_ms: Vec<f64>,
    /// Seconds per flow measurement.
    pub secs: f64,
    /// Delivered pps of the flow without churn, one per round.
    pub quiet_pps: Vec<f64>,
    /// Delivered pps of the flow while a pod is attached and detached, one per round.
    pub churn_pps: Vec<f64>,
    /// What the sender offered (datagrams its socket took per second) in the quiet rounds.
    #[serde(default)]
    pub quiet_offered_pps: Vec<f64>,
    /// What the sender offered in the churn rounds.
    #[serde(default)]
    pub churn_offered_pps: Vec<f64>,
    /// What weft sent out of the receiving pod's port per second (`weft status`), quiet rounds.
    #[serde(default)]
    pub quiet_weft_pps: Vec<f64>,
    /// The same in the churn rounds.
    #[serde(default)]
    pub churn_weft_pps: Vec<f64>,
    /// Attach/detach cycles per second during the churn rounds.
    pub churn_cycles_per_sec: Vec<f64>,
    /// Idle pods in the second half of the idle comparison.
    pub idle_pods: usize,
    /// Delivered pps of the flow with one idle pod attached, one per round.
    pub one_idle_pps: Vec<f64>,
    /// Delivered pps of the flow with `idle_pods` idle pods attached, one per round.
    pub many_idle_pps: Vec<f64>,
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return 0.0;
    }
    s[(((s.len() - 1) as f64) * p).round() as usize]
}

impl PodsResult {
    /// Attach latency p50, ms.
    pub fn attach_p50(&self) -> f64 {
        percentile(&self.attach_ms, 0.5)
    }

    /// Attach latency p99, ms.
    pub fn attach_p99(&self) -> f64 {
        percentile(&self.attach_ms, 0.99)
    }

    /// Median pps with many idle pods over median pps with one.
    pub fn idle_ratio(&self) -> f64 {
        let one = median(&self.one_idle_pps);
        if one > 0.0 { median(&self.many_idle_pps) / one } else { 0.0 }
    }

    /// Median pps during churn over median pps without.
    pub fn churn_ratio(&self) -> f64 {
        let quiet = median(&self.quiet_pps);
        if quiet > 0.0 { median(&self.churn_pps) / quiet } else { 0.0 }
    }

    /// The markdown table REPORT.md and stdout show.
    pub fn table(&self) -> String {
        let api = percentile(&self.api_ms, 0.5);
        let mut s = String::from("| figure | value |\n|---|---:|\n");
        s += &format!(
            "| attach latency p50 / p99 (pod add issued -> first packet through the pod's port), {} samples | {:.2} / {:.2} ms |\n",
            self.attach_ms.len(),
            self.attach_p50(),
            self.attach_p99()
        );
        s += &format!("| API pod add answer p50 | {api:.2} ms |\n");
        s += &format!(
            "| the attaching pod's datagrams the node kernel forwarded meanwhile (dropped, TTL) | {} |\n",
            self.attach_kernel_forwarded
        );
        s += &format!(
            "| one flow, no churn (median of {}) | {:.0} pps |\n",
            self.quiet_pps.len(),
            median(&self.quiet_pps)
        );
        s += &format!(
            "| one flow, a third pod attached and detached in a loop ({:.0} cycles/s) | {:.0} pps ({:.1} % of quiet) |\n",
            median(&self.churn_cycles_per_sec),
            median(&self.churn_pps),
            self.churn_ratio() * 100.0
        );
        s += &format!(
            "| the sender's offered rate, quiet / churn | {:.0} / {:.0} pps |\n",
            median(&self.quiet_offered_pps),
            median(&self.churn_offered_pps)
        );
        s += &format!(
            "| weft's transmit to the receiving pod, quiet / churn | {:.0} / {:.0} pps |\n",
            median(&self.quiet_weft_pps),
            median(&self.churn_weft_pps)
        );
        s += &format!("| one flow, 1 idle pod attached | {:.0} pps |\n", median(&self.one_idle_pps));
        s += &format!(
            "| one flow, {} idle pods attached | {:.0} pps ({:.1} % of 1 idle pod; goal >= {:.0} %) |\n",
            self.idle_pods,
            median(&self.many_idle_pps),
            self.idle_ratio() * 100.0,
            (1.0 - IDLE_GOAL) * 100.0
        );
        s
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn in_ns(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(["netns", "exec", ns]).args(args).output().context("ip netns exec")?;
    if !out.status.success() {
        bail!("{ns}: {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn pod_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, 1, i)
}

fn pod_mac(i: u8) -> String {
    format!("02:00:00:3d:01:{i:02x}")
}

fn host_mac(i: u8) -> String {
    format!("02:00:00:3d:02:{i:02x}")
}

/// The node, its pods' namespaces and the daemon; everything is removed on drop.
struct Bench {
    stem: String,
    namespaces: Vec<String>,
    daemon: Option<Child>,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

impl Bench {
    fn node(&self) -> String {
        format!("{}a", self.stem)
    }

    fn ns(&mut self, role: &str) -> anyhow::Result<String> {
        let name = format!("{}{role}", self.stem);
        self.namespaces.push(name.clone());
        ip(&["netns", "add", &name])?;
        in_ns(&name, &["ip", "link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// Pod `i` in namespace `{stem}p<i>`, host end `{stem}h<i>` in the node; not attached.
    /// The MACs of its gateway and of the receiving pod (on-link in the pod's /24, so the pod
    /// would ARP for it; weft answers with the gateway's MAC) are static: a pod that sent
    /// before its attach would otherwise wait for its ARP retry timer (1 s) after it.
    fn pod(&mut self, i: u8) -> anyhow::Result<String> {
        let ns = self.ns(&format!("p{i}"))?;
        let node = self.node();
        let (host, dev) = (format!("{}h{i}", self.stem), format!("{}e{i}", self.stem));
        let (hm, pm) = (host_mac(i), pod_mac(i));
        #[rustfmt::skip]
        ip(&["-n", &node, "link", "add", &host, "address", &hm, "type", "veth", "peer", "name", &dev,
             "address", &pm, "netns", &ns])?;
        ip(&["-n", &node, "link", "set", &host, "up"])?;
        in_ns(&ns, &["ip", "link", "set", &dev, "up"])?;
        in_ns(&ns, &["ethtool", "-K", &dev, "tx", "off"])?;
        in_ns(&ns, &["ip", "addr", "add", &format!("{}/24", pod_ip(i)), "dev", &dev])?;
        in_ns(&ns, &["ip", "route", "add", "default", "via", &GATEWAY.to_string()])?;
        #[rustfmt::skip]
        in_ns(&ns, &["ip", "neigh", "replace", &GATEWAY.to_string(), "lladdr", &hm, "dev", &dev, "nud", "permanent"])?;
        if i != RECEIVER {
            #[rustfmt::skip]
            in_ns(&ns, &["ip", "neigh", "replace", &pod_ip(RECEIVER).to_string(), "lladdr", &hm, "dev", &dev, "nud", "permanent"])?;
        }
        Ok(ns)
    }

    fn start(pinned: bool) -> anyhow::Result<Bench> {
        let weft = sibling("weft")?;
        let dir = tempfile::tempdir()?;
        let prefix = std::env::var("WEFT_NETNS_PREFIX").unwrap_or_else(|_| "wpd".to_owned());
        let stem = format!("{prefix}{}", std::process::id());
        let mut b = Bench {
            stem,
            namespaces: Vec::new(),
            daemon: None,
            sock: dir.path().join("weft.sock"),
            _dir: dir,
        };
        let node = b.ns("a")?;
        let peer = b.ns("b")?;
        let (up, up_b) = (format!("{}u", b.stem), format!("{}v", b.stem));
        #[rustfmt::skip]
        ip(&["-n", &node, "link", "add", &up, "address", "02:00:00:3d:00:01", "type", "veth", "peer", "name", &up_b,
             "address", "02:00:00:3d:00:02", "netns", &peer])?;
        ip(&["-n", &node, "link", "set", &up, "up"])?;
        ip(&["-n", &peer, "link", "set", &up_b, "up"])?;
        ip(&["-n", &node, "addr", "add", "198.18.0.11/24", "dev", &up])?;
        let d = b._dir.path();
        let cores = if pinned { "cores = [1]\n" } else { "" };
        let cfg = format!(
            "mode = \"static\"\n[node]\nname = \"{stem}\"\npublic_ip = \"198.18.0.11\"\nuplink_subnet = \"198.18.0.0/24\"\n\
             subnet_file = \"{dir}/subnet.env\"\nstate_dir = \"{dir}/state\"\n[network]\nnetwork = \"198.19.0.0/16\"\n\
             backend = \"host-gw\"\n[static]\nsubnet = \"198.19.1.0/24\"\n[uplink]\ninterface = \"{up}\"\n\
             xdp_mode = \"generic\"\n[workers]\n{cores}[metrics]\nenabled = false\n[api]\nsocket = \"{sock}\"\n",
            stem = b.stem,
            dir = d.display(),
            sock = b.sock.display()
        );
        std::fs::write(d.join("weft.toml"), cfg)?;
        let log = std::fs::File::create(d.join("weft.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &node])
            .arg(&weft)
            .args(["run", "--config"])
            .arg(d.join("weft.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting weft")?;
        b.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Reply::Status { report }) = request(&b.sock, &Request::Status, Duration::from_secs(2)) {
                if report.phase == "running" {
                    break;
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(d.join("weft.log")).unwrap_or_default();
                bail!("weft never ran:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(b)
    }

    fn api(&self, req: Request) -> anyhow::Result<()> {
        match request(&self.sock, &req, Duration::from_secs(10))? {
            Reply::Done { .. } => Ok(()),
            other => bail!("{req:?}: {other:?}"),
        }
    }

    fn add(&self, iface: &str, ip: Ipv4Addr, mac: Option<String>) -> anyhow::Result<()> {
        self.api(Request::PodAdd {
            interface: iface.to_owned(),
            ip: ip.to_string(),
            mac,
            namespace: None,
            name: None,
            labels: Default::default(),
        })
    }

    fn del(&self, iface: &str) -> anyhow::Result<()> {
        self.api(Request::PodDel { interface: iface.to_owned(), ip: None })
    }

    fn add_pod(&self, i: u8) -> anyhow::Result<()> {
        self.add(&format!("{}h{i}", self.stem), pod_ip(i), Some(pod_mac(i)))
    }

    fn del_pod(&self, i: u8) -> anyhow::Result<()> {
        self.del(&format!("{}h{i}", self.stem))
    }

    fn status(&self) -> anyhow::Result<StatusReport> {
        match request(&self.sock, &Request::Status, Duration::from_secs(5))? {
            Reply::Status { report } => Ok(*report),
            other => bail!("status: {other:?}"),
        }
    }

    /// Idle pod `k`: a veth pair inside the node (nothing behind it sends), attached.
    fn idle_pod(&self, k: usize) -> anyhow::Result<String> {
        let node = self.node();
        let (a, b) = (format!("{}i{k}", self.stem), format!("{}j{k}", self.stem));
        ip(&["-n", &node, "link", "add", &a, "type", "veth", "peer", "name", &b])?;
        ip(&["-n", &node, "link", "set", &a, "up"])?;
        ip(&["-n", &node, "link", "set", &b, "up"])?;
        Ok(a)
    }
}

/// One flow measurement, packets per second.
#[derive(Debug, Clone, Copy)]
struct Flow {
    /// Counted by the receiver.
    delivered: f64,
    /// Taken by the sender's socket.
    offered: f64,
    /// Sent by weft out of the receiving pod's port.
    weft_tx: f64,
}

/// weft's transmit counter of the receiving pod's port, and when it was read.
fn weft_tx(b: &Bench) -> anyhow::Result<(u64, Instant)> {
    let host = format!("{}h{RECEIVER}", b.stem);
    let r = b.status()?;
    let port = r.ports.iter().find(|p| p.role == "pod" && p.name.starts_with(&host));
    Ok((port.map_or(0, |p| p.tx_packets), Instant::now()))
}

/// One full-speed UDP flow from pod SENDER to pod RECEIVER over `secs`.
fn flow(b: &Bench, secs: f64, cores: (Option<usize>, Option<usize>)) -> anyhow::Result<Flow> {
    let before = weft_tx(b)?;
    let (tx_ns, rx_ns) = (format!("{}p{SENDER}", b.stem), format!("{}p{RECEIVER}", b.stem));
    let (ready_tx, ready_rx) = mpsc::channel();
    let window = Duration::from_secs_f64(secs);
    let rx = spawn_in(&rx_ns, "pods-rx", cores.1, move || {
        let s = UdpSocket::bind(SocketAddrV4::new(pod_ip(RECEIVER), FLOW_PORT))?;
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        let _ = ready_tx.send(());
        let mut buf = [0u8; 2048];
        // Counting starts with the first datagram and lasts `window`.
        let first = loop {
            if s.recv(&mut buf).is_ok() {
                break Instant::now();
            }
        };
        let mut n = 1u64;
        while first.elapsed() < window {
            if s.recv(&mut buf).is_ok() {
                n += 1;
            }
        }
        Ok(n as f64 / window.as_secs_f64())
    })?;
    ready_rx.recv_timeout(Duration::from_secs(5)).context("receiver never bound")?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let tx = spawn_in(&tx_ns, "pods-tx", cores.0, move || {
        let s = UdpSocket::bind(SocketAddrV4::new(pod_ip(SENDER), 40000))?;
        let to = SocketAddrV4::new(pod_ip(RECEIVER), FLOW_PORT);
        let payload = [0x77u8; 18];
        let (t0, mut sent) = (Instant::now(), 0u64);
        while !flag.load(Ordering::Relaxed) {
            sent += u64::from(s.send_to(&payload, to).is_ok());
        }
        Ok(sent as f64 / t0.elapsed().as_secs_f64())
    })?;
    let pps = join(rx, "receiver");
    stop.store(true, Ordering::Relaxed);
    let offered = join(tx, "sender")?;
    let after = weft_tx(b)?;
    let weft_tx = (after.0 - before.0) as f64 / (after.1 - before.1).as_secs_f64();
    Ok(Flow { delivered: pps?, offered, weft_tx })
}

/// Attach latency samples (ms): pod ATTACHED sends to pod RECEIVER every 100 µs while it is
/// attached and detached `samples` times.
fn attach_latency(b: &Bench, samples: usize) -> anyhow::Result<Attach> {
    let (tx_ns, rx_ns) = (format!("{}p{ATTACHED}", b.stem), format!("{}p{RECEIVER}", b.stem));
    let stop = Arc::new(AtomicBool::new(false));
    let (arrivals_tx, arrivals) = mpsc::channel::<Instant>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let flag = stop.clone();
    let rx = spawn_in(&rx_ns, "attach-rx", None, move || {
        let s = UdpSocket::bind(SocketAddrV4::new(pod_ip(RECEIVER), ATTACH_PORT))?;
        s.set_read_timeout(Some(Duration::from_millis(20)))?;
        let _ = ready_tx.send(());
        let mut buf = [0u8; 64];
        while !flag.load(Ordering::Relaxed) {
            if s.recv(&mut buf).is_ok() {
                let _ = arrivals_tx.send(Instant::now());
            }
        }
        Ok(())
    })?;
    ready_rx.recv_timeout(Duration::from_secs(5)).context("receiver never bound")?;
    let flag = stop.clone();
    let tx = spawn_in(&tx_ns, "attach-tx", None, move || {
        let s = UdpSocket::bind(SocketAddrV4::new(pod_ip(ATTACHED), 40001))?;
        s.set_ttl(ATTACH_TTL)?;
        let to = SocketAddrV4::new(pod_ip(RECEIVER), ATTACH_PORT);
        while !flag.load(Ordering::Relaxed) {
            let _ = s.send_to(b"attach", to);
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(())
    })?;
    let mut out = Attach { ms: Vec::new(), api_ms: Vec::new(), kernel_forwarded: 0 };
    let expired_before = ttl_expired(b)?;
    let result = (|| -> anyhow::Result<()> {
        // Nothing may arrive from the pod before its first attach: the kernel path is cut.
        std::thread::sleep(Duration::from_millis(200));
        if arrivals.try_recv().is_ok() {
            bail!("a datagram of the unattached pod arrived: the node kernel delivered it");
        }
        for i in 0..samples {
            while arrivals.try_recv().is_ok() {}
            let t0 = Instant::now();
            b.add_pod(ATTACHED)?;
            let api = t0.elapsed();
            let first = loop {
                match arrivals.recv_timeout(Duration::from_secs(5)) {
                    Ok(t) if t >= t0 => break t,
                    Ok(_) => {}
                    Err(_) => bail!("attach {i}: no packet forwarded within 5 s"),
                }
            };
            out.ms.push((first - t0).as_secs_f64() * 1e3);
            out.api_ms.push(api.as_secs_f64() * 1e3);
            b.del_pod(ATTACHED)?;
            // Datagrams the detach left in flight arrive, then the next sample starts clean.
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    join(tx, "attach sender")?;
    join(rx, "attach receiver")?;
    result?;
    out.kernel_forwarded = ttl_expired(b)?.saturating_sub(expired_before);
    Ok(out)
}

/// What the attach-latency samples measured.
struct Attach {
    /// Pod add issued -> first datagram through the pod's port, ms.
    ms: Vec<f64>,
    /// The API's answer time, ms.
    api_ms: Vec<f64>,
    /// Datagrams the node kernel forwarded meanwhile (weft's `ttl_expired` drops).
    kernel_forwarded: u64,
}

/// weft's `ttl_expired` drops so far.
fn ttl_expired(b: &Bench) -> anyhow::Result<u64> {
    Ok(b.status()?.drops.iter().filter(|d| d.reason == "ttl_expired").map(|d| d.count).sum())
}

/// The flow while pod CHURNED is attached and detached in a loop; and cycles/s.
fn flow_with_churn(
    b: &Bench,
    secs: f64,
    cores: (Option<usize>, Option<usize>),
) -> anyhow::Result<(Flow, f64)> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let churn = scope.spawn(|| -> anyhow::Result<f64> {
            let t0 = Instant::now();
            let mut cycles = 0u64;
            while !stop.load(Ordering::Relaxed) {
                b.add_pod(CHURNED)?;
                b.del_pod(CHURNED)?;
                cycles += 1;
            }
            Ok(cycles as f64 / t0.elapsed().as_secs_f64())
        });
        let pps = flow(b, secs, cores);
        stop.store(true, Ordering::Relaxed);
        let rate = churn.join().map_err(|_| anyhow::anyhow!("churn thread panicked"))??;
        Ok((pps?, rate))
    })
}

/// Runs the suite; prints a markdown table.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (mut samples, mut rounds, mut secs, mut idle_pods) = (100usize, 3usize, 2.0f64, 110usize);
    let mut json: Option<PathBuf> = None;
    for (flag, value) in options::pairs(args, USAGE)? {
        match flag {
            "--attach-samples" => samples = options::value(flag, value, USAGE)?,
            "--rounds" => rounds = options::value(flag, value, USAGE)?,
            "--secs" => secs = options::value(flag, value, USAGE)?,
            "--idle-pods" => idle_pods = options::value(flag, value, USAGE)?,
            "--json" => json = Some(value.into()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("weft-bench pods needs root (network namespaces, XDP)");
    }
    let pinned = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let cores = if pinned { (Some(0), Some(0)) } else { (None, None) };
    let mut b = Bench::start(pinned)?;
    for i in [SENDER, RECEIVER, CHURNED, ATTACHED] {
        b.pod(i)?;
    }
    b.add_pod(SENDER)?;
    b.add_pod(RECEIVER)?;
    eprintln!("node up; attach latency, {samples} samples");
    let attach = attach_latency(&b, samples)?;

    let mut r = PodsResult {
        attach_ms: attach.ms,
        api_ms: attach.api_ms,
        attach_kernel_forwarded: attach.kernel_forwarded,
        secs,
        quiet_pps: Vec::new(),
        churn_pps: Vec::new(),
        quiet_offered_pps: Vec::new(),
        churn_offered_pps: Vec::new(),
        quiet_weft_pps: Vec::new(),
        churn_weft_pps: Vec::new(),
        churn_cycles_per_sec: Vec::new(),
        idle_pods,
        one_idle_pps: Vec::new(),
        many_idle_pps: Vec::new(),
    };
    for round in 0..rounds {
        let quiet = flow(&b, secs, cores)?;
        r.quiet_pps.push(quiet.delivered);
        r.quiet_offered_pps.push(quiet.offered);
        r.quiet_weft_pps.push(quiet.weft_tx);
        let (churn, rate) = flow_with_churn(&b, secs, cores)?;
        let pps = churn.delivered;
        r.churn_pps.push(pps);
        r.churn_offered_pps.push(churn.offered);
        r.churn_weft_pps.push(churn.weft_tx);
        r.churn_cycles_per_sec.push(rate);
        eprintln!(
            "churn round {}/{rounds}: quiet {:.0} pps, churn {:.0} pps at {rate:.0} cycles/s",
            round + 1,
            r.quiet_pps[round],
            pps
        );
    }

    let idle: Vec<String> = (0..idle_pods).map(|k| b.idle_pod(k)).collect::<anyhow::Result<_>>()?;
    let idle_ip = |k: usize| Ipv4Addr::new(198, 19, 1, 10 + k as u8);
    b.add(&idle[0], idle_ip(0), None)?;
    for round in 0..rounds {
        r.one_idle_pps.push(flow(&b, secs, cores)?.delivered);
        let t = Instant::now();
        for (k, iface) in idle.iter().enumerate().skip(1) {
            b.add(iface, idle_ip(k), None)?;
        }
        let attached = b.status()?.pods.len();
        if attached != idle_pods + 2 {
            bail!("{attached} pods attached, expected {}", idle_pods + 2);
        }
        let took = t.elapsed();
        r.many_idle_pps.push(flow(&b, secs, cores)?.delivered);
        eprintln!(
            "idle round {}/{rounds}: 1 idle pod {:.0} pps, {idle_pods} idle pods {:.0} pps (attached {} in {took:.1?})",
            round + 1,
            r.one_idle_pps[round],
            r.many_idle_pps[round],
            idle_pods - 1
        );
        for iface in idle.iter().skip(1) {
            b.del(iface)?;
        }
    }
    drop(b);
    println!("\nPods on a running weft node (one worker; UDP flow between two pods, 18-byte payloads):\n");
    print!("{}", r.table());
    if let Some(path) = json {
        options::write_json(&path, &r)?;
    }
    Ok(())
}
