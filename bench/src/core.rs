//! `weft-bench core`: the real forwarding pipeline on in-memory replay ports, one pinned core.
//!
//! Per path — host-gw, vxlan encap, vxlan decap, ipip encap, ipip decap, local — node A of
//! `weft_engine::pipeline::sample` gets 100k routes (the FIB benchmark's mix: 85 % /24, 10 %
//! /16../23, 5 % /25../32, random networks, pointing at 248 remote nodes 198.18.0.2..) and 16
//! local pods. A replay port cycles through 10k prebuilt flows (distinct UDP flows; for the
//! remote paths each to a random address inside a random one of the routes; for decap from a
//! random peer to a random pod): 64-byte frames on the wire (60 bytes + FCS; decap input is the
//! same frame with 50/20 bytes of outer headers). The timed loop is what a worker does with
//! one port: rx a batch of 64 (one memcpy per frame from the replay set into a pool frame),
//! `Pipeline::process_batch`, tx (frames return to the pool). The floor runs the same loop
//! with a touch-only processor (reads the destination MAC byte, writes one byte) instead of
//! the pipeline. Before timing, one pass checks that every frame of the path is forwarded
//! (no drops), so a misconfigured path cannot post a fast number.
//!
//! Network policy: `--policies N --cidrs M` runs every path with every pod isolated (ingress and
//! egress) by N policies' rules and M ipBlock CIDRs that allow the replayed traffic. `--sweep
//! 10,100,1000` then measures each path again with no policy and with each of those policy
//! counts plus `--sweep-cidrs` CIDRs, alternating the sets within each round so that drift of a
//! shared machine hits them alike. The replayed flows are established after the check pass, so
//! the timed packets take the connection table's path; a new connection's first packet (the
//! rule lookup) is not what these figures time.

use crate::options;
use crate::stats::median;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use weft_encap::Vni;
use weft_engine::fib::sample::{SplitMix64, mixed_prefixes};
use weft_engine::fib::{FibConfig, FibWriter, Ipv4Prefix};
use weft_engine::neighbour::NeighbourTable;
use weft_engine::pipeline::sample::{
    A_SUBNET, B_IP, B_VTEP, Backend, CLUSTER, GATEWAY_MAC, UPLINK, ipip_from_b, node_config, pipeline_config,
    pod, prefix, udp_frame, via, vxlan_from_b,
};
use weft_engine::pipeline::{LocalPod, Pipeline, RemoteRoute, RouteProgrammer, RouteUpdate};
use weft_engine::policy::{DirectionBuilder, PodPolicy, PolicySet, PortRange, Ports, proto};
use weft_engine::port::{Frame, FramePool, IoEvents, MemPort, Port};
use weft_engine::worker::{FrameProcessor, PortId, Verdict, WorkerId};

const USAGE: &str = "usage: weft-bench core [--secs 1.0] [--core 1] [--routes 100000] [--flows 10000]
                       [--paths host-gw,vxlan-encap,vxlan-decap,ipip-encap,ipip-decap,local]
                       [--floor true] [--policies 0] [--cidrs 0]
                       [--sweep 10,100,1000] [--sweep-cidrs 10000] [--sweep-secs 0.25] [--json FILE]
  --floor false skips the touch-only floor runs (for profiling the pipeline alone)
  --policies N isolates every pod (ingress and egress) with N policies' rules (N peer addresses
    each side) plus --cidrs M ipBlock prefixes, all allowing the replayed traffic: established
    flows then pass through the connection table
  --sweep L1,L2,.. measures every path again with no policy and with each Li policies plus
    --sweep-cidrs ipBlock prefixes, --sweep-secs per run (none by default)";
const BATCH: usize = 64;
const PODS: u8 = 16;
const NODES: u8 = 248;
const ROUNDS: usize = 3;
/// UDP payload of a 60-byte frame: 14 + 20 + 8 + 18.
const PAYLOAD: usize = 18;

struct Options {
    secs: f64,
    core: usize,
    routes: usize,
    flows: usize,
    paths: Vec<String>,
    floor: bool,
    policies: usize,
    cidrs: usize,
    sweep: Vec<usize>,
    sweep_cidrs: usize,
    sweep_secs: f64,
    json: Option<std::path::PathBuf>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        secs: 1.0,
        core: 1,
        routes: 100_000,
        flows: 10_000,
        paths: ["host-gw", "vxlan-encap", "vxlan-decap", "ipip-encap", "ipip-decap", "local"]
            .map(String::from)
            .to_vec(),
        floor: true,
        policies: 0,
        cidrs: 0,
        sweep: Vec::new(),
        sweep_cidrs: 10_000,
        sweep_secs: 0.25,
        json: None,
    };
    for (flag, value) in options::pairs(args, USAGE)? {
        match flag {
            "--secs" => o.secs = options::value(flag, value, USAGE)?,
            "--core" => o.core = options::value(flag, value, USAGE)?,
            "--routes" => o.routes = options::value(flag, value, USAGE)?,
            "--flows" => o.flows = options::value(flag, value, USAGE)?,
            "--paths" => o.paths = value.split(',').map(String::from).collect(),
            "--floor" => o.floor = options::value(flag, value, USAGE)?,
            "--policies" => o.policies = options::value(flag, value, USAGE)?,
            "--cidrs" => o.cidrs = options::value(flag, value, USAGE)?,
            "--sweep" => o.sweep = options::list(flag, value, USAGE)?,
            "--sweep-cidrs" => o.sweep_cidrs = options::value(flag, value, USAGE)?,
            "--sweep-secs" => o.sweep_secs = options::value(flag, value, USAGE)?,
            "--json" => o.json = Some(value.into()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    Ok(o)
}

/// The floor: touches each frame and sends it back out.
struct Touch;

impl FrameProcessor for Touch {
    fn process(&mut self, rx_port: PortId, frame: &mut weft_engine::port::FrameMut<'_>) -> Verdict {
        let d = frame.data_mut();
        d[0] = d[0].wrapping_add(black_box(1));
        Verdict::Tx(rx_port)
    }
}

fn node_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 2 + i)
}

/// Node A under `backend` with `routes` remote routes over `NODES` nodes and `PODS` pods.
/// Returns the programmer, the pipeline and the routes.
fn build(backend: Backend, routes: usize) -> anyhow::Result<(RouteProgrammer, Pipeline, Vec<Ipv4Prefix>)> {
    let fib = FibWriter::new(FibConfig::default());
    let neighbours = Arc::new(NeighbourTable::new(1024, 1024));
    let mut prog = RouteProgrammer::new(fib, node_config(false, prefix(CLUSTER, 16)), neighbours)?;
    let mut rng = SplitMix64(0x5eed_c0de);
    let avoid = [prefix(A_SUBNET, 24), prefix(CLUSTER, 16)].into_iter().collect();
    let prefixes: Vec<Ipv4Prefix> = mixed_prefixes(&mut rng, routes, &avoid)
        .into_iter()
        .filter(|p| !p.contains(u32::from(A_SUBNET)))
        .collect();
    let mut updates: Vec<RouteUpdate> = (0..PODS)
        .map(|i| {
            let (ip, mac, port) = pod(i);
            RouteUpdate::Pod(LocalPod { ip, worker: WorkerId(0), port, mac })
        })
        .collect();
    for (k, &p) in prefixes.iter().enumerate() {
        let n = (k % usize::from(NODES)) as u8;
        let vtep = weft_encap::MacAddr([0x0e, 0, 0, 0, 0x10, n]);
        updates.push(RouteUpdate::Remote(RemoteRoute { prefix: p, via: via(backend, node_ip(n), vtep) }));
    }
    prog.apply(&updates)?;
    for n in 0..NODES {
        prog.set_neighbour(node_ip(n), Some(weft_encap::MacAddr([2, 0, 0xc6, 0x12, 0, 2 + n])))?;
    }
    let pipe = Pipeline::new(pipeline_config(backend, PODS), prog.handles());
    Ok((prog, pipe, prefixes))
}

/// The flows of one path, and the port they arrive on.
fn flows(path: &str, prefixes: &[Ipv4Prefix], n: usize) -> anyhow::Result<(Backend, PortId, Vec<Vec<u8>>)> {
    let mut rng = SplitMix64(0xf1_0000);
    let (pod_ip, pod_mac, pod_port) = pod(0);
    let remote = |rng: &mut SplitMix64, i: usize| {
        let p = prefixes[rng.below(prefixes.len() as u32) as usize];
        let (lo, hi) = p.range();
        let dst = Ipv4Addr::from(lo + rng.below(hi - lo + 1));
        udp_frame(pod_mac, GATEWAY_MAC, pod_ip, dst, 1024 + (i % 60000) as u16, 64, true, PAYLOAD)
    };
    let inbound = |rng: &mut SplitMix64, i: usize| {
        let to = pod(rng.below(u32::from(PODS)) as u8).0;
        udp_frame(
            B_VTEP,
            GATEWAY_MAC,
            Ipv4Addr::new(198, 19, 2, 7),
            to,
            1024 + (i % 60000) as u16,
            63,
            true,
            PAYLOAD,
        )
    };
    let (backend, port, frames): (Backend, PortId, Vec<Vec<u8>>) = match path {
        "host-gw" => (Backend::HostGw, pod_port, (0..n).map(|i| remote(&mut rng, i)).collect()),
        "vxlan-encap" => (Backend::FLANNEL_VXLAN, pod_port, (0..n).map(|i| remote(&mut rng, i)).collect()),
        "ipip-encap" => (Backend::Ipip, pod_port, (0..n).map(|i| remote(&mut rng, i)).collect()),
        "vxlan-decap" => (
            Backend::FLANNEL_VXLAN,
            UPLINK,
            (0..n)
                .map(|i| from_peer(&vxlan_from_b(&inbound(&mut rng, i), Vni::FLANNEL, 8472), &mut rng))
                .collect(),
        ),
        "ipip-decap" => (
            Backend::Ipip,
            UPLINK,
            (0..n).map(|i| from_peer(&ipip_from_b(&inbound(&mut rng, i)), &mut rng)).collect(),
        ),
        "local" => (
            Backend::HostGw,
            pod_port,
            (0..n)
                .map(|i| {
                    let to = pod(1 + rng.below(u32::from(PODS) - 1) as u8).0;
                    udp_frame(pod_mac, GATEWAY_MAC, pod_ip, to, 1024 + (i % 60000) as u16, 64, true, PAYLOAD)
                })
                .collect(),
        ),
        other => bail!("unknown path {other:?}\n{USAGE}"),
    };
    Ok((backend, port, frames))
}

/// Every pod isolated both ways by `policies` policies' worth of rules: each allows one peer
/// address (none of the replayed ones) on one port, plus `cidrs` ipBlock /24s elsewhere; one more
/// rule allows UDP 5201 from and to everywhere, which is what the replayed flows use.
fn policy_set(policies: usize, cidrs: usize) -> PolicySet {
    let mut rng = SplitMix64(0x9011_c1e5);
    let mut side = DirectionBuilder::default();
    for _ in 0..policies {
        let peer = Ipv4Addr::from(0x0a00_0000 | rng.below(1 << 24));
        side.peer(peer, &Ports::ranges([PortRange::one(proto::TCP, 1 + rng.below(1000) as u16)]));
    }
    for _ in 0..cidrs {
        let net = Ipv4Prefix::covering(0x6400_0000 | (rng.below(1 << 16) << 8), 24);
        side.block(net, &[], &Ports::ranges([PortRange::one(proto::TCP, 443)]));
    }
    side.block(Ipv4Prefix::DEFAULT, &[], &Ports::ranges([PortRange::one(proto::UDP, 5201)]));
    let rules = side.build();
    PolicySet::new(
        (0..PODS)
            .map(|i| (pod(i).0, PodPolicy { ingress: Some(rules.clone()), egress: Some(rules.clone()) })),
    )
}

/// Rewrites node B's sample outer frame as coming from a random one of the bench's nodes.
fn from_peer(frame: &[u8], rng: &mut SplitMix64) -> Vec<u8> {
    let mut f = frame.to_vec();
    let n = rng.below(u32::from(NODES)) as u8;
    let mut ip = weft_encap::wire::ipv4::Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.patch_src_addr(node_ip(n));
    f[6..12].copy_from_slice(&[2, 0, 0xc6, 0x12, 0, 2 + n]);
    f
}

/// Runs `proc` over frames replayed on `port` for `secs`; returns (packets, seconds) and the
/// number of frames not transmitted.
fn run<P: FrameProcessor>(
    proc: &mut P,
    rx_port: PortId,
    frames: &[Vec<u8>],
    secs: f64,
    budget: Option<u64>,
) -> (u64, f64, u64) {
    let mut pool = FramePool::new(4 * BATCH as u32).expect("frame pool");
    let (mut port, _h) = MemPort::replay("replay", frames.to_vec(), u64::MAX);
    let mut rx: Vec<Frame> = Vec::with_capacity(BATCH);
    let mut tx: Vec<Frame> = Vec::with_capacity(BATCH);
    let mut verdicts = Vec::with_capacity(BATCH);
    let mut ev = IoEvents::default();
    let (mut packets, mut dropped) = (0u64, 0u64);
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            port.rx(&mut pool, &mut rx, BATCH, &mut ev);
            verdicts.clear();
            proc.process_batch(rx_port, &mut pool, &mut rx, &mut verdicts);
            for (f, v) in rx.drain(..).zip(verdicts.drain(..)) {
                match v {
                    Verdict::Tx(_) => tx.push(f),
                    _ => {
                        dropped += 1;
                        pool.free(f);
                    }
                }
            }
            port.tx(&mut pool, &mut tx, &mut ev);
            packets += BATCH as u64;
        }
        if budget.is_some_and(|b| packets >= b) || (budget.is_none() && start.elapsed().as_secs_f64() >= secs)
        {
            break;
        }
    }
    (packets, start.elapsed().as_secs_f64(), dropped)
}

/// Under `weft-bench all`'s profiler (`perf record -D -1 --control fifo:…`), starts the
/// measurement now, after the setup, so the profile holds the timed loop only.
fn perf_enable() {
    if let Some(ctl) = std::env::var_os("WEFT_BENCH_PERF_CTL") {
        if let Err(e) = std::fs::write(&ctl, "enable\n") {
            eprintln!("core: cannot enable perf through {ctl:?}: {e}");
        }
    }
}

/// What `weft-bench core` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoreResult {
    /// Routes in the FIB.
    pub routes: usize,
    /// Distinct flows replayed.
    pub flows: usize,
    /// Frames per batch.
    pub batch: usize,
    /// Frame size on the wire (with FCS).
    pub frame_bytes: usize,
    /// The core the loop was pinned to.
    pub core: usize,
    /// Seconds per timed run.
    pub secs: f64,
    /// Alternating pipeline/floor rounds per path (medians are reported).
    pub rounds: usize,
    /// The CPU's nominal clock (`cpu MHz` of /proc/cpuinfo), for cycles per packet.
    pub cpu_mhz: Option<f64>,
    /// One entry per path.
    pub paths: Vec<CorePath>,
    /// Network policies isolating every pod in `paths` (0: none).
    #[serde(default)]
    pub policies: usize,
    /// ipBlock prefixes in those policies.
    #[serde(default)]
    pub cidrs: usize,
    /// The policy sweep (`--sweep`), if run.
    #[serde(default)]
    pub sweep: Option<PolicySweep>,
}

/// Every path with no policy and with increasing policy counts, same pipeline, same flows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicySweep {
    /// Policy counts measured; 0 (no pod isolated) first.
    pub levels: Vec<usize>,
    /// ipBlock prefixes added to every level above 0.
    pub cidrs: usize,
    /// Seconds per timed run.
    pub secs: f64,
    /// Rounds; each runs every level once (medians are reported).
    pub rounds: usize,
    /// One entry per path.
    pub paths: Vec<SweepPath>,
}

/// One path of the policy sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepPath {
    /// `host-gw`, `vxlan-encap`, …
    pub path: String,
    /// Median ns per packet at each level.
    pub ns_per_packet: Vec<f64>,
    /// Every round's ns per packet at each level (`[level][round]`).
    pub rounds_ns: Vec<Vec<f64>>,
}

/// The policy goal: at the largest level, at most this much slower than without policy.
pub const POLICY_GOAL_LOSS: f64 = 0.15;
/// "Flat": the largest level within this fraction of the smallest one above 0, either way.
pub const POLICY_FLAT_LOSS: f64 = 0.10;

impl SweepPath {
    /// Million packets per second at level index `i`.
    pub fn mpps(&self, i: usize) -> f64 {
        1e3 / self.ns_per_packet[i]
    }

    /// Fraction of the no-policy rate lost at the largest level.
    pub fn loss(&self) -> f64 {
        1.0 - self.mpps(self.ns_per_packet.len() - 1) / self.mpps(0)
    }

    /// Fraction of the smallest level's rate lost at the largest level.
    pub fn flat_loss(&self) -> f64 {
        1.0 - self.mpps(self.ns_per_packet.len() - 1) / self.mpps(1.min(self.ns_per_packet.len() - 1))
    }
}

impl PolicySweep {
    /// The sweep as a markdown table with its settings line.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "Mpps per path with no policy and with every pod isolated both ways by N policies' rules \
             plus {} ipBlock CIDRs allowing the traffic; established flows (connection table hits), \
             {} s x {} rounds, levels alternating within each round (median)\n\n",
            self.cidrs, self.secs, self.rounds
        );
        out.push_str("| path |");
        for &l in &self.levels {
            if l == 0 {
                out.push_str(" no policy |");
            } else {
                let _ = write!(out, " {l} policies |");
            }
        }
        out.push_str(" loss at the largest |\n|---|");
        for _ in &self.levels {
            out.push_str("---:|");
        }
        out.push_str("---:|\n");
        for p in &self.paths {
            let _ = write!(out, "| {} |", p.path);
            for i in 0..p.ns_per_packet.len() {
                let _ = write!(out, " {:.2} |", p.mpps(i));
            }
            let _ = writeln!(out, " {:.1} % |", p.loss() * 100.0);
        }
        out
    }
}

/// One path of the core benchmark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorePath {
    /// `host-gw`, `vxlan-encap`, …
    pub path: String,
    /// Median ns per packet through the pipeline.
    pub ns_per_packet: f64,
    /// Median ns per packet of the touch-only floor.
    pub floor_ns_per_packet: f64,
    /// Every round's pipeline ns/packet.
    pub rounds_ns: Vec<f64>,
    /// Every round's floor ns/packet.
    pub floor_rounds_ns: Vec<f64>,
}

impl CorePath {
    /// Million packets per second through the pipeline.
    pub fn mpps(&self) -> f64 {
        1e3 / self.ns_per_packet
    }

    /// Million packets per second of the floor.
    pub fn floor_mpps(&self) -> f64 {
        1e3 / self.floor_ns_per_packet
    }

    /// Pipeline time over floor time.
    pub fn ratio(&self) -> f64 {
        self.ns_per_packet / self.floor_ns_per_packet
    }
}

impl CoreResult {
    /// The result as a markdown table with its settings line.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let policy = if self.policies > 0 || self.cidrs > 0 {
            format!(", every pod isolated by {} policies and {} ipBlock CIDRs", self.policies, self.cidrs)
        } else {
            String::new()
        };
        let mut out = format!(
            "{} routes, {} flows{policy}, batch {}, {}-byte frames, pinned to core {}, {} s x {} rounds (median); \
             cycles at the nominal {}\n\n",
            self.routes,
            self.flows,
            self.batch,
            self.frame_bytes,
            self.core,
            self.secs,
            self.rounds,
            self.cpu_mhz.map_or("clock (unknown here)".into(), |m| format!("{m:.0} MHz")),
        );
        out.push_str(
            "| path | Mpps | ns/packet | cycles/packet | floor Mpps | floor ns/packet | ratio to floor |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        for p in &self.paths {
            let cycles = self.cpu_mhz.map_or("?".into(), |m| format!("{:.0}", p.ns_per_packet * m / 1e3));
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.1} | {cycles} | {:.2} | {:.1} | {:.2} |",
                p.path,
                p.mpps(),
                p.ns_per_packet,
                p.floor_mpps(),
                p.floor_ns_per_packet,
                p.ratio()
            );
        }
        if let Some(sweep) = &self.sweep {
            out.push('\n');
            out.push_str(&sweep.markdown());
        }
        out
    }
}

/// Entry point.
pub fn run_suite(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let result = measure(&o)?;
    print!("{}", result.markdown());
    if let Some(path) = &o.json {
        options::write_json(path, &result)?;
    }
    Ok(())
}

fn measure(o: &Options) -> anyhow::Result<CoreResult> {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: o.core }) {
        bail!("cannot pin to core {} (is it online and in this process's cpuset?)", o.core);
    }
    eprintln!(
        "core: {} routes, {} flows, batch {BATCH}, pinned to core {}, {} s x {ROUNDS} rounds",
        o.routes, o.flows, o.core, o.secs
    );
    let mut result = CoreResult {
        routes: o.routes,
        flows: o.flows,
        batch: BATCH,
        frame_bytes: 64,
        core: o.core,
        secs: o.secs,
        rounds: ROUNDS,
        cpu_mhz: crate::machine::cpu_mhz(),
        paths: Vec::new(),
        policies: o.policies,
        cidrs: o.cidrs,
        sweep: None,
    };
    let mut levels = vec![0];
    levels.extend(o.sweep.iter().copied().filter(|&l| l > 0));
    let sets: Vec<PolicySet> = if o.sweep.is_empty() {
        Vec::new()
    } else {
        eprintln!("core: policy sets for levels {levels:?} with {} CIDRs", o.sweep_cidrs);
        levels
            .iter()
            .map(|&l| if l == 0 { PolicySet::default() } else { policy_set(l, o.sweep_cidrs) })
            .collect()
    };
    let mut sweep =
        PolicySweep { levels, cidrs: o.sweep_cidrs, secs: o.sweep_secs, rounds: ROUNDS, paths: Vec::new() };
    for path in &o.paths {
        eprintln!("core: {path}");
        let (backend, _, _) = flows(path, &[prefix(B_IP, 32)], 1)?;
        let (prog, mut pipe, prefixes) = build(backend, o.routes)?;
        let (_, port, frames) = flows(path, &prefixes, o.flows)?;
        if o.policies > 0 || o.cidrs > 0 {
            prog.set_policy(policy_set(o.policies, o.cidrs));
        }
        // Check pass: every flow forwarded.
        let (n, _, dropped) = run(&mut pipe, port, &frames, 0.0, Some(frames.len() as u64 * 2));
        if dropped > 0 {
            bail!(
                "{path}: {dropped} of {n} frames dropped in the check pass: {:?}",
                pipe.counters().snapshot()
            );
        }
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        perf_enable();
        for _ in 0..ROUNDS {
            let (p, s, _) = run(&mut pipe, port, &frames, o.secs, None);
            ours.push(s * 1e9 / p as f64);
            if o.floor {
                let (p, s, _) = run(&mut Touch, port, &frames, o.secs, None);
                floor.push(s * 1e9 / p as f64);
            }
        }
        if !o.floor {
            eprintln!("core: {path}: {:.1} ns/packet (no floor run)", median(&ours));
        } else {
            result.paths.push(CorePath {
                path: path.clone(),
                ns_per_packet: median(&ours),
                floor_ns_per_packet: median(&floor),
                rounds_ns: ours,
                floor_rounds_ns: floor,
            });
        }
        if !sets.is_empty() {
            sweep.paths.push(sweep_path(path, &prog, &mut pipe, port, &frames, &sets, o.sweep_secs)?);
        }
    }
    if !sets.is_empty() {
        result.sweep = Some(sweep);
    }
    Ok(result)
}

/// One path of the policy sweep: each round publishes every set in turn, replays every flow once
/// (the check: none dropped; the flows are then tracked) and times `secs`.
fn sweep_path(
    path: &str,
    prog: &RouteProgrammer,
    pipe: &mut Pipeline,
    port: PortId,
    frames: &[Vec<u8>],
    sets: &[PolicySet],
    secs: f64,
) -> anyhow::Result<SweepPath> {
    let mut rounds = vec![Vec::with_capacity(ROUNDS); sets.len()];
    for _ in 0..ROUNDS {
        for (k, set) in sets.iter().enumerate() {
            prog.set_policy(set.clone());
            let (n, _, dropped) = run(pipe, port, frames, 0.0, Some(frames.len() as u64));
            if dropped > 0 {
                bail!(
                    "{path}: {dropped} of {n} frames dropped under policy set {k}: {:?}",
                    pipe.counters().snapshot()
                );
            }
            let (p, s, _) = run(pipe, port, frames, secs, None);
            rounds[k].push(s * 1e9 / p as f64);
        }
    }
    let ns_per_packet: Vec<f64> = rounds.iter().map(|r| median(r)).collect();
    eprintln!(
        "core: {path} policy sweep: {}",
        ns_per_packet.iter().map(|ns| format!("{:.2} Mpps", 1e3 / ns)).collect::<Vec<_>>().join(", ")
    );
    Ok(SweepPath { path: path.into(), ns_per_packet, rounds_ns: rounds })
}
