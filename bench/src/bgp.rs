//! `weft-bench bgp`: routes a BGP peer announces, from its UPDATE to the FIB the workers read,
//! over loopback TCP. A peer played by the benchmark (127.0.0.2, the weft-bgp codec) talks to a
//! real `Speaker` (127.0.0.1) whose routes go through the daemon's own route sink
//! (`RouteTableSink`: the status table and the `RouteProgrammer`, one FIB version per batch);
//! a poller thread holding a `FibReader`, as a worker does, looks the prefix up until it
//! resolves.
//!
//! - learn: the peer sends N /24s packed 1000 to an UPDATE; time from the first byte written
//!   until the last prefix resolves in the FIB (routes are applied in the order they arrive, so
//!   then every prefix does; checked);
//! - announce: with N routes learned, the peer announces one more prefix; time from the write
//!   until it resolves in the FIB;
//! - withdraw: the peer then withdraws it; time until the FIB no longer has it.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use weft_bgp::session::{Session, SessionConfig};
use weft_bgp::wire::{self, Capability, Message, Open};
use weft_control::bgp::{BgpStatus, Local, Speaker, SpeakerSettings};
use weft_control::config::BgpSection;
use weft_control::daemon::RouteTableSink;
use weft_control::routes::SharedProgrammer;
use weft_encap::MacAddr;
use weft_engine::fib::{FibConfig, FibReader, FibWriter, Ipv4Prefix, NextHopId};
use weft_engine::neighbour::NeighbourTable;
use weft_engine::pipeline::{NodeConfig, RouteProgrammer, TunnelOptions};

use crate::options;

const US: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CTX: wire::Context = wire::Context { four_octet_as: true };
/// /24s per UPDATE: 4 octets each, well inside 4096 with the attributes.
pub const PER_UPDATE: usize = 1000;
/// The goal: a 100k-prefix table learned from one peer in under this.
pub const LEARN_GOAL_MS: f64 = 1000.0;
/// How long one route may take to reach the FIB before the run fails.
const TIMEOUT: Duration = Duration::from_secs(30);

fn prefix(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap_or_default()
}

/// An address inside `prefix(i)`, host order.
fn inside(i: u32) -> u32 {
    0x0a00_0000 + (i << 8) + 7
}

/// What the poller is asked: wait until `dst` resolves (`present`) or stops resolving to
/// anything but the default route.
struct Watch {
    dst: u32,
    present: bool,
}

/// A thread holding a FIB reader, as a worker does, spinning on lookups of one address until
/// its route appears or goes; answers the moment it saw it.
struct Poller {
    ask: std_mpsc::Sender<Watch>,
    seen: std_mpsc::Receiver<Option<Instant>>,
}

impl Poller {
    fn start(reader: FibReader, absent: Option<NextHopId>) -> Poller {
        let (ask, asked) = std_mpsc::channel::<Watch>();
        let (seen_tx, seen) = std_mpsc::channel();
        std::thread::spawn(move || {
            while let Ok(w) = asked.recv() {
                let t0 = Instant::now();
                let at = loop {
                    if (reader.lookup(w.dst) != absent) == w.present {
                        break Some(Instant::now());
                    }
                    if t0.elapsed() > TIMEOUT {
                        break None;
                    }
                    std::thread::yield_now();
                };
                if seen_tx.send(at).is_err() {
                    return;
                }
            }
        });
        Poller { ask, seen }
    }

    /// Starts watching; [`Poller::wait`] answers.
    fn watch(&self, dst: u32, present: bool) -> anyhow::Result<()> {
        self.ask.send(Watch { dst, present }).context("the FIB poller stopped")
    }

    /// When the watched change was seen.
    fn wait(&self, what: &str) -> anyhow::Result<Instant> {
        self.seen
            .recv()
            .context("the FIB poller stopped")?
            .with_context(|| format!("{what}: not in the FIB within {} s", TIMEOUT.as_secs()))
    }
}

async fn read_msg(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Message> {
    loop {
        if let Some(len) = wire::frame_len(buf)? {
            if buf.len() >= len {
                let m = Message::parse(&buf[..len], CTX)?;
                buf.drain(..len);
                return Ok(m);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("the speaker closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn programmer() -> anyhow::Result<RouteProgrammer> {
    let node = NodeConfig {
        uplink_mac: MacAddr([2, 0, 0x7f, 0, 0, 1]),
        public_ip: US,
        uplink_subnet: Ipv4Prefix::new(Ipv4Addr::new(127, 0, 0, 0), 8)?,
        underlay_gateway: None,
        vtep_mac: MacAddr([2, 0, 0x7f, 0, 0, 1]),
        direct_routing: false,
        cluster: Ipv4Prefix::new(Ipv4Addr::new(198, 19, 0, 0), 16)?,
        tunnel: TunnelOptions::default(),
    };
    Ok(RouteProgrammer::new(
        FibWriter::new(FibConfig::default()),
        node,
        Arc::new(NeighbourTable::new(64, 64)),
    )?)
}

struct Sample {
    learn: Duration,
    announce: Vec<Duration>,
    withdraw: Vec<Duration>,
}

async fn one_size(n: u32, iterations: u32) -> anyhow::Result<Sample> {
    let programmer = programmer()?;
    let reader = programmer.handles().fib;
    let absent = reader.lookup(inside(n + 5000));
    let programmer: SharedProgrammer = Arc::new(Mutex::new(programmer));
    let poller = Poller::start(reader, absent);
    let sink = RouteTableSink::new(Default::default(), programmer.clone());

    let port = std::net::TcpListener::bind((US, 0))?.local_addr()?.port();
    let section =
        BgpSection { asn: 64512, peer_as: 64512, peers: vec![PEER], hold_time: 90, restart_time: 0, port };
    let local =
        Local { address: US, subnet: "198.19.1.0/24".parse()?, uplink_subnet: "127.0.0.0/8".parse()? };
    let speaker = Speaker::bind(SpeakerSettings { section, local }, BgpStatus::default())?;
    let (_peers_tx, peers_rx) = watch::channel(BTreeSet::from([PEER]));
    let task = tokio::spawn(speaker.run(peers_rx, sink, std::future::pending()));

    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((PEER, 0)))?;
    let mut s = socket.connect(SocketAddr::from((US, port))).await.context("connecting to the speaker")?;
    s.set_nodelay(true)?;
    let mut buf = Vec::new();
    read_msg(&mut s, &mut buf).await?;
    let open = Open::new(64512, 90, PEER, vec![Capability::FourOctetAs(64512)]);
    s.write_all(&Message::Open(open).to_bytes(CTX)).await?;
    read_msg(&mut s, &mut buf).await?;
    s.write_all(&Message::Keepalive.to_bytes(CTX)).await?;
    let cfg =
        SessionConfig { local_as: 64512, peer_as: 64512, bgp_id: PEER, hold_time: 90, restart_time: None };
    let session = Session::new(cfg, Instant::now()).0;

    let all: Vec<Ipv4Net> = (0..n).map(prefix).collect();
    let mut bytes = Vec::new();
    for chunk in all.chunks(PER_UPDATE) {
        session.announcement(chunk.to_vec(), PEER).emit(&mut bytes, CTX);
    }
    poller.watch(inside(n - 1), true)?;
    let t0 = Instant::now();
    s.write_all(&bytes).await?;
    let learn = poller.wait("the table's last prefix")? - t0;
    {
        let p = programmer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let have = p.remotes().count();
        if have != n as usize {
            bail!("the FIB holds {have} peer routes after the table's last one resolved, want {n}");
        }
    }

    let (mut announce, mut withdraw) = (Vec::new(), Vec::new());
    for i in 0..iterations {
        let k = n + 1 + i % 1000;
        poller.watch(inside(k), true)?;
        let t0 = Instant::now();
        s.write_all(&session.announcement(vec![prefix(k)], PEER).to_bytes(CTX)).await?;
        announce.push(poller.wait("an announced prefix")? - t0);
        poller.watch(inside(k), false)?;
        let t0 = Instant::now();
        s.write_all(&Session::withdrawal(vec![prefix(k)]).to_bytes(CTX)).await?;
        withdraw.push(poller.wait("a withdrawn prefix")? - t0);
    }
    task.abort();
    Ok(Sample { learn, announce, withdraw })
}

/// Percentiles of one measure, ms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BgpLatency {
    /// Samples.
    pub samples: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl BgpLatency {
    fn of(mut v: Vec<Duration>) -> BgpLatency {
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let at = |p: f64| {
            if v.is_empty() {
                return 0.0;
            }
            let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
            ms(v[idx.min(v.len() - 1)])
        };
        BgpLatency {
            samples: v.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: v.last().copied().map_or(0.0, ms),
        }
    }
}

/// One table size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BgpSize {
    /// Prefixes the peer announced before the convergence samples.
    pub prefixes: u32,
    /// From the first byte of the table written to its last prefix resolving in the FIB, ms.
    pub learn_ms: f64,
    /// One more prefix announced -> it resolves in the FIB.
    pub announce: BgpLatency,
    /// That prefix withdrawn -> the FIB no longer has it.
    pub withdraw: BgpLatency,
}

/// What `weft-bench bgp` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BgpResult {
    /// /24s per UPDATE while learning the table.
    pub per_update: usize,
    /// Per table size, smallest first.
    pub sizes: Vec<BgpSize>,
}

impl BgpResult {
    /// The largest table learned, if any.
    pub fn largest(&self) -> Option<&BgpSize> {
        self.sizes.iter().max_by_key(|s| s.prefixes)
    }

    /// The result as a markdown table.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "One peer (the weft-bgp codec) -> weft's Speaker -> the daemon's route sink -> RouteProgrammer -> FIB, \
             over 127.0.0.1; a FIB reader polls until the prefix resolves. Tables sent {} /24s to an UPDATE.\n\n",
            self.per_update
        );
        out.push_str(
            "| prefixes | learn the table ms | announce p50 ms | p99 ms | max ms | withdraw p50 ms | p99 ms | samples |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for s in &self.sizes {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
                s.prefixes,
                s.learn_ms,
                s.announce.p50_ms,
                s.announce.p99_ms,
                s.announce.max_ms,
                s.withdraw.p50_ms,
                s.withdraw.p99_ms,
                s.announce.samples
            );
        }
        out
    }
}

/// `weft-bench bgp [--sizes 1000,10000,100000] [--iterations 500] [--json FILE]`
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut sizes = vec![1000u32, 10_000, 100_000];
    let mut iterations = 500u32;
    let mut json: Option<std::path::PathBuf> = None;
    const USAGE: &str = "usage: weft-bench bgp [--sizes 1000,10000,100000] [--iterations 500] [--json FILE]";
    for (flag, value) in options::pairs(args, USAGE)? {
        match flag {
            "--sizes" => sizes = options::list(flag, value, USAGE)?,
            "--iterations" => iterations = options::value(flag, value, USAGE)?,
            "--json" => json = Some(value.into()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if let Some(bad) = sizes.iter().find(|&&n| n == 0 || n > 1_000_000) {
        bail!("--sizes: {bad} prefixes: want 1 to 1000000 (/24s from 10.0.0.0 up)\n{USAGE}");
    }
    // The daemon's log setup (info, formatted) with the lines thrown away: what weft logs per
    // route is part of the cost, its terminal or journal is not.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(std::io::sink)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut result = BgpResult { per_update: PER_UPDATE, sizes: Vec::new() };
    for &n in &sizes {
        eprintln!("bgp: {n} prefixes, then {iterations} announce/withdraw samples");
        let s = rt.block_on(one_size(n, iterations))?;
        result.sizes.push(BgpSize {
            prefixes: n,
            learn_ms: s.learn.as_secs_f64() * 1e3,
            announce: BgpLatency::of(s.announce),
            withdraw: BgpLatency::of(s.withdraw),
        });
    }
    print!("{}", result.markdown());
    if let Some(path) = json {
        options::write_json(&path, &result)?;
    }
    Ok(())
}
