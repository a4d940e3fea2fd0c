//! Port benchmark (bench/README.md `## ports`): on one veth pair in a throwaway
//! namespace, measures rx-drop and l2-reflect packet rates of AF_XDP (native
//! and generic XDP) and AF_PACKET, beside an XDP_DROP baseline, in one run.
//!
//! The generator is our own AF_XDP sender on the other end of the veth (the
//! kernel's pktgen is not available here); its rate is reported per case so a
//! bottlenecked generator is visible. Needs root.
//!
//!   cargo run --release -p weft-engine --example port_bench -- [--seconds 3] [--size 64] [--ring 2048] [--rate PPS]
//!
//! Core 0 runs the generator, core 1 the worker (if the machine has them).

use std::fs::File;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};
use weft_engine::port::xdp_filter::{XdpAttachment, XdpMode, XdpProgram};
use weft_engine::port::{
    AfPacketPort, AfXdpPort, FramePool, IoEvents, Port, RX_HEADROOM, TpacketGeometry, XskConfig,
};
use weft_engine::worker::{
    Discard, FrameProcessor, IdleStrategy, Reflect, Worker, WorkerConfig, pin_current_thread,
};

fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip").args(args).output().context("running ip")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

struct Ns(String);
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

/// The AF_XDP generator: keeps the tx ring full of `size`-byte frames.
fn generator(
    ifname: String,
    size: usize,
    rate: f64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Result<()> {
    // Best effort: on a 1-core machine the generator shares the core.
    let _ = pin_current_thread(0);
    let mut pool = FramePool::new(4096)?;
    let mut frame = vec![0u8; size];
    frame[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0x0b, 0x02]);
    frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0x0b, 0x01]);
    frame[12..14].copy_from_slice(&[0x88, 0xb5]);
    // Fill every chunk once; afterwards frames are sent without copying.
    let mut all = Vec::new();
    while let Some(f) = pool.copy_in(&frame) {
        all.push(f);
    }
    for f in all {
        pool.free(f);
    }
    let mut cfg = XskConfig::new(&ifname, 0);
    cfg.fill_target = 64;
    let mut port = AfXdpPort::open(&mut pool, &cfg)?;
    let mut ev = IoEvents::default();
    let mut batch = Vec::with_capacity(64);
    let mut total = 0u64;
    let mut rx = Vec::with_capacity(64);
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if rate > 0.0 {
            let due = start + Duration::from_secs_f64(total as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        port.service(&mut pool, &mut ev);
        rx.clear();
        port.rx(&mut pool, &mut rx, 64, &mut ev);
        for f in rx.drain(..) {
            pool.free(f);
        }
        while batch.len() < 64 {
            let Some(mut f) = pool.alloc() else { break };
            if !pool.view(&mut f).set_bounds(RX_HEADROOM, size) {
                bail!("frame size {size} does not fit a chunk");
            }
            batch.push(f);
        }
        total += port.tx(&mut pool, &mut batch, &mut ev) as u64;
        sent.store(total, Ordering::Relaxed);
    }
    Ok(())
}

#[derive(Debug)]
struct Row {
    case: String,
    mode: String,
    gen_pps: f64,
    rx_pps: f64,
    tx_pps: f64,
}

fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<JoinHandle<T>> {
    let file = File::open(format!("/run/netns/{ns}"))?;
    Ok(std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    }))
}

fn xdp_drops(ns: &str, ifname: &str) -> u64 {
    let out = Command::new("ip").args(["netns", "exec", ns, "ethtool", "-S", ifname]).output();
    let Ok(out) = out else { return 0 };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("xdp_drops"))
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<u64>().ok())
        .sum()
}

enum Kind {
    XdpDrop,
    AfXdp(XdpMode),
    AfPacket,
}

fn measure<P: FrameProcessor + 'static>(
    ns: &str,
    rx_if: &str,
    kind: &Kind,
    processor: P,
    secs: f64,
    ring: u32,
    sent: &Arc<AtomicU64>,
) -> Result<(f64, f64, f64, String)> {
    let (ns2, rx_if2) = (ns.to_owned(), rx_if.to_owned());
    let kind_mode = match kind {
        Kind::XdpDrop => 0,
        Kind::AfXdp(XdpMode::Native) => 1,
        Kind::AfXdp(_) => 2,
        Kind::AfPacket => 3,
    };
    let sent = sent.clone();
    let h = in_ns(ns, move || -> Result<(f64, f64, f64, String)> {
        let dur = Duration::from_secs_f64(secs);
        let warm = Duration::from_millis(300);
        if kind_mode == 0 {
            let x = XdpAttachment::attach(&rx_if2, XdpProgram::Drop, XdpMode::Native)?;
            std::thread::sleep(warm);
            let (d0, s0, t0) = (xdp_drops(&ns2, &rx_if2), sent.load(Ordering::Relaxed), Instant::now());
            std::thread::sleep(dur);
            let (d1, s1, el) =
                (xdp_drops(&ns2, &rx_if2), sent.load(Ordering::Relaxed), t0.elapsed().as_secs_f64());
            drop(x);
            return Ok(((s1 - s0) as f64 / el, (d1 - d0) as f64 / el, 0.0, x_mode(true)));
        }
        let mut pool = FramePool::new(ring * 4)?;
        let (port, mode, _x): (Box<dyn Port>, String, Option<XdpAttachment>) = if kind_mode == 3 {
            (Box::new(AfPacketPort::open(&rx_if2, TpacketGeometry::default())?), "tpacket_v3".into(), None)
        } else {
            let m = if kind_mode == 1 { XdpMode::Native } else { XdpMode::Generic };
            let mut x = XdpAttachment::attach(&rx_if2, XdpProgram::All, m)?;
            let mut xc = XskConfig::new(&rx_if2, 0);
            xc.ring_size = ring;
            xc.fill_target = ring / 2;
            let p = AfXdpPort::open(&mut pool, &xc)?;
            x.register_socket(0, p.fd())?;
            let mode = format!("{} xdp, {}", x.mode_name(), p.kind());
            (Box::new(p), mode, Some(x))
        };
        let mut cfg = WorkerConfig::new("wx-bench");
        cfg.idle = IdleStrategy::BusyPoll;
        cfg.core = Some(1.min(std::thread::available_parallelism().map_or(1, |n| n.get()) - 1));
        let w = Worker::new(cfg, pool, vec![port], processor)?.spawn()?;
        std::thread::sleep(warm);
        let c0 = w.counters().snapshot();
        let pre0 = preemptions("wx-bench");
        let (s0, t0) = (sent.load(Ordering::Relaxed), Instant::now());
        std::thread::sleep(dur);
        let c1 = w.counters().snapshot();
        let pre = preemptions("wx-bench") - pre0;
        let (s1, el) = (sent.load(Ordering::Relaxed), t0.elapsed().as_secs_f64());
        if let Ok(w) = w.stop() {
            let k = w.ports()[0].as_ref().map(|p| p.kernel_drops()).unwrap_or_default();
            eprintln!(
                "  kernel drops: fill ring empty {}, rx ring full {}; worker: loops {}, idle {}, wakeups {}, fill starved {}, preempted {} times",
                k.fill_ring_empty,
                k.rx_ring_full,
                c1.worker.loops,
                c1.worker.idle_loops,
                c1.worker.wakeups,
                c1.worker.fill_starved,
                pre
            );
        }
        let rx = (c1.ports[0].rx_packets - c0.ports[0].rx_packets) as f64 / el;
        let tx = (c1.ports[0].tx_packets - c0.ports[0].tx_packets) as f64 / el;
        Ok(((s1 - s0) as f64 / el, rx, tx, mode))
    })?;
    h.join().map_err(|_| anyhow::anyhow!("measurement thread panicked"))?
}

/// Involuntary context switches of this process's thread named `name`
/// (how often the scheduler took the core away from the busy-polling worker).
fn preemptions(name: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    for t in dir.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            return status
                .lines()
                .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
        }
    }
    0
}

fn x_mode(native: bool) -> String {
    if native { "native xdp".into() } else { "generic xdp".into() }
}

fn main() -> Result<()> {
    let mut secs = 3.0;
    let mut size = 64usize;
    let mut ring = 2048u32;
    let mut rate = 0.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => secs = args.next().context("--seconds N")?.parse()?,
            "--size" => size = args.next().context("--size BYTES")?.parse()?,
            "--ring" => ring = args.next().context("--ring ENTRIES")?.parse()?,
            "--rate" => rate = args.next().context("--rate PPS")?.parse()?,
            other => bail!(
                "unknown argument {other}; usage: port_bench [--seconds N] [--size BYTES] [--ring ENTRIES]"
            ),
        }
    }
    let ns = Ns(format!("wxb{}", std::process::id()));
    ip(&["netns", "add", &ns.0])?;
    let n = ns.0.as_str();
    let (g, r) =
        (format!("wxb{}g", std::process::id() % 100_000), format!("wxb{}r", std::process::id() % 100_000));
    ip(&["-n", n, "link", "set", "lo", "up"])?;
    for knob in ["all", "default"] {
        let key = format!("net.ipv6.conf.{knob}.disable_ipv6=1");
        Command::new("ip").args(["netns", "exec", n, "sysctl", "-qw", &key]).status()?;
    }
    ip(&[
        "-n",
        n,
        "link",
        "add",
        &g,
        "address",
        "02:00:00:00:0b:01",
        "type",
        "veth",
        "peer",
        "name",
        &r,
        "address",
        "02:00:00:00:0b:02",
    ])?;
    ip(&["-n", n, "link", "set", &g, "up"])?;
    ip(&["-n", n, "link", "set", &r, "up"])?;

    // The generator end drops reflected frames in XDP and needs an XDP program
    // for native-mode redirects into it anyway.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (g2, g3, stop2, sent2) = (g.clone(), g.clone(), stop.clone(), sent.clone());
    let gen_xdp = in_ns(n, move || -> Result<XdpAttachment> {
        Ok(XdpAttachment::attach(&g2, XdpProgram::Drop, XdpMode::Native)?)
    })?
    .join()
    .map_err(|_| anyhow::anyhow!("attach thread panicked"))??;
    let sender = in_ns(n, move || generator(g3, size, rate, stop2, sent2))?;

    let mut rows = Vec::new();
    let cases: [(&str, Kind, bool); 7] = [
        ("XDP_DROP baseline", Kind::XdpDrop, false),
        ("AF_XDP native rx-drop", Kind::AfXdp(XdpMode::Native), false),
        ("AF_XDP native l2-reflect", Kind::AfXdp(XdpMode::Native), true),
        ("AF_XDP generic rx-drop", Kind::AfXdp(XdpMode::Generic), false),
        ("AF_XDP generic l2-reflect", Kind::AfXdp(XdpMode::Generic), true),
        ("AF_PACKET rx-drop", Kind::AfPacket, false),
        ("AF_PACKET l2-reflect", Kind::AfPacket, true),
    ];
    for (name, kind, reflect) in &cases {
        eprintln!("{name} ...");
        let (gen_pps, rx_pps, tx_pps, mode) = if *reflect {
            measure(n, &r, kind, Reflect, secs, ring, &sent)?
        } else {
            measure(n, &r, kind, Discard, secs, ring, &sent)?
        };
        eprintln!("  = gen {gen_pps:.0} pps, rx {rx_pps:.0} pps, tx {tx_pps:.0} pps ({mode})");
        rows.push(Row { case: name.to_string(), mode, gen_pps, rx_pps, tx_pps });
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().map_err(|_| anyhow::anyhow!("generator panicked"))??;
    drop(gen_xdp);

    println!("| case | mode | generator Mpps | rx Mpps | tx (reflected) Mpps |");
    println!("|---|---|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.3} | {:.3} | {} |",
            r.case,
            r.mode,
            r.gen_pps / 1e6,
            r.rx_pps / 1e6,
            if r.tx_pps > 0.0 { format!("{:.3}", r.tx_pps / 1e6) } else { "-".into() }
        );
    }
    Ok(())
}
