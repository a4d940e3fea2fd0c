//! `weft-bench bgp`: the BGP speaker's control path over loopback TCP. A peer played by the
//! benchmark (127.0.0.2, the weft-bgp codec) talks to a real `Speaker` (127.0.0.1) whose
//! route sink timestamps every batch.
//!
//! - learn: the peer sends N /24s packed ~1000 to an UPDATE; time from the first byte sent
//!   until the sink holds all N routes;
//! - convergence: with N routes learned, the peer announces one more prefix (then withdraws
//!   it); time from the write until its RouteDelta reaches the sink. The FIB programmer is
//!   not in the loop (see `weft-bench control` and `lpm` for what follows the sink).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ipnet::Ipv4Net;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use weft_bgp::session::{Session, SessionConfig};
use weft_bgp::wire::{self, Capability, Message, Open};
use weft_control::bgp::{BgpStatus, Local, Speaker, SpeakerSettings};
use weft_control::config::BgpSection;
use weft_control::routes::{RouteDelta, RouteSink};

use crate::options;

const US: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CTX: wire::Context = wire::Context { four_octet_as: true };
/// /24s per UPDATE: 4 octets each, well inside 4096 with the attributes.
const PER_UPDATE: usize = 1000;

struct ChannelSink(mpsc::UnboundedSender<(Instant, Vec<RouteDelta>)>);

impl RouteSink for ChannelSink {
    fn apply(&mut self, batch: &[RouteDelta]) {
        let _ = self.0.send((Instant::now(), batch.to_vec()));
    }
}

fn prefix(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap_or_default()
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

/// Waits until the sink has seen `want` more upserts (or removes, `upserts` false).
async fn until(
    rx: &mut mpsc::UnboundedReceiver<(Instant, Vec<RouteDelta>)>,
    want: usize,
    upserts: bool,
) -> Instant {
    let mut seen = 0;
    loop {
        let Some((t, batch)) = rx.recv().await else { return Instant::now() };
        seen += batch.iter().filter(|d| matches!(d, RouteDelta::Upsert(_)) == upserts).count();
        if seen >= want {
            return t;
        }
    }
}

struct Sample {
    learn: Duration,
    convergence: Vec<Duration>,
}

async fn one_size(n: u32, iterations: u32) -> anyhow::Result<Sample> {
    let port = std::net::TcpListener::bind((US, 0))?.local_addr()?.port();
    let section =
        BgpSection { asn: 64512, peer_as: 64512, peers: vec![PEER], hold_time: 90, restart_time: 0, port };
    let local =
        Local { address: US, subnet: "198.19.1.0/24".parse()?, uplink_subnet: "127.0.0.0/8".parse()? };
    let settings = SpeakerSettings { section, local };
    let speaker = Speaker::bind(settings, BgpStatus::default())?;
    let (_peers_tx, peers_rx) = watch::channel(BTreeSet::from([PEER]));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(speaker.run(peers_rx, ChannelSink(tx), std::future::pending()));

    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((PEER, 0)))?;
    let mut s = socket.connect(SocketAddr::from((US, port))).await.context("connecting to the speaker")?;
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
    let t0 = Instant::now();
    s.write_all(&bytes).await?;
    let done = until(&mut rx, n as usize, true).await;
    let learn = done - t0;

    let mut convergence = Vec::new();
    for i in 0..iterations {
        let p = prefix(n + 1 + i % 1000);
        let t0 = Instant::now();
        s.write_all(&session.announcement(vec![p], PEER).to_bytes(CTX)).await?;
        convergence.push(until(&mut rx, 1, true).await - t0);
        s.write_all(&Session::withdrawal(vec![p]).to_bytes(CTX)).await?;
        until(&mut rx, 1, false).await;
    }
    task.abort();
    Ok(Sample { learn, convergence })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs the suite; prints a markdown table.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut sizes = vec![1000u32, 10_000, 100_000];
    let mut iterations = 500u32;
    const USAGE: &str = "usage: weft-bench bgp [--sizes 1000,10000,100000] [--iterations 500]";
    for (flag, value) in options::pairs(args, USAGE)? {
        match flag {
            "--sizes" => sizes = options::list(flag, value, USAGE)?,
            "--iterations" => iterations = options::value(flag, value, USAGE)?,
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| prefixes | learn the table (ms) | convergence p50 (ms) | p99 (ms) | max (ms) | samples |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        let mut s = rt.block_on(one_size(n, iterations))?;
        s.convergence.sort();
        println!(
            "| {n} | {:.1} | {:.3} | {:.3} | {:.3} | {} |",
            ms(s.learn),
            ms(percentile(&s.convergence, 0.5)),
            ms(percentile(&s.convergence, 0.99)),
            ms(s.convergence.last().copied().unwrap_or_default()),
            s.convergence.len()
        );
    }
    Ok(())
}
