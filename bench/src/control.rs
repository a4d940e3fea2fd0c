//! `weft-bench control`: the control plane against a real etcd.
//!
//! - initial sync: N flannel vxlan leases already in etcd; time from
//!   `Agent::start` (connect, config, one ranged list, acquire) until the
//!   sink holds all N routes in its first batch;
//! - convergence: with 1k peers synced, a peer's lease is changed with a
//!   put; time from issuing the put until the RouteDelta reaches the sink
//!   (includes etcd's write, its fsync and the watch delivery).
//!
//! etcd is started like the tests do (temp data dir, 127.0.0.1, random
//! ports); nothing leaves loopback.

#[allow(dead_code)]
#[path = "../../control/tests/common/etcd.rs"]
pub(crate) mod etcd;

use crate::options;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use etcd_client::{Client, Txn, TxnOp};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use weft_control::etcd::{Agent, AgentSettings};
use weft_control::flannel::MacAddr;
use weft_control::routes::{RouteDelta, RouteSink};

const PREFIX: &str = "/coreos.com/network";

/// Forwards every batch with its arrival time to the benchmark.
struct ChannelSink(mpsc::UnboundedSender<(Instant, Vec<RouteDelta>)>);

impl RouteSink for ChannelSink {
    fn apply(&mut self, batch: &[RouteDelta]) {
        let _ = self.0.send((Instant::now(), batch.to_vec()));
    }
}

fn peer_subnet(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap_or_default()
}

fn peer_value(i: u32, generation: u32) -> String {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i + generation * 20_000);
    let [_, _, a, b] = ip.octets();
    format!(
        r#"{{"PublicIP":"{ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{{"VNI":1,"VtepMAC":"0a:58:c6:12:{a:02x}:{b:02x}"}}}}"#
    )
}

fn key(subnet: Ipv4Net) -> String {
    format!("{PREFIX}/subnets/{}-{}", subnet.network(), subnet.prefix_len())
}

async fn populate(client: &mut Client, n: u32) -> anyhow::Result<()> {
    client
        .put(format!("{PREFIX}/config"), r#"{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}"#, None)
        .await?;
    let ids: Vec<u32> = (1..=n).collect();
    for chunk in ids.chunks(128) {
        let ops: Vec<TxnOp> =
            chunk.iter().map(|&i| TxnOp::put(key(peer_subnet(i)), peer_value(i, 0), None)).collect();
        client.txn(Txn::new().and_then(ops)).await?;
    }
    Ok(())
}

pub(crate) fn settings(etcd: &etcd::Etcd, dir: &std::path::Path) -> AgentSettings {
    AgentSettings {
        endpoints: vec![etcd.endpoint()],
        prefix: PREFIX.into(),
        lease_ttl: Duration::from_secs(600),
        public_ip: Ipv4Addr::new(198, 18, 255, 1),
        vtep_mac: MacAddr([0x0a, 0x58, 0xc6, 0x12, 0xff, 0x01]),
        wg_public_key: None,
        wg_key_dir: None,
        uplink_subnet: None,
        subnet_file: dir.join("subnet.env"),
        ipmasq: false,
        mtu: 1500,
        init_network: None,
        backoff_max: Duration::from_secs(1),
        rpc_timeout: Duration::from_secs(10),
        client: Default::default(),
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct SyncResult {
    leases: u32,
    start: Duration,
    synced: Duration,
}

struct Convergence {
    ack: Vec<Duration>,
    sink: Vec<Duration>,
}

async fn one_size(n: u32, iterations: u32) -> anyhow::Result<(SyncResult, Option<Convergence>)> {
    let etcd = etcd::Etcd::start();
    let dir = tempfile::tempdir()?;
    let mut client = Client::connect([etcd.endpoint()], None).await?;
    populate(&mut client, n).await?;

    let (tx, mut rx) = mpsc::unbounded_channel();
    let t0 = Instant::now();
    let agent = Agent::start(settings(&etcd, dir.path())).await?;
    let start = t0.elapsed();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut sink = ChannelSink(tx);
        agent
            .run(&mut sink, async {
                let _ = stop_rx.await;
            })
            .await
    });
    let (at, first) = rx.recv().await.context("agent stopped before its first batch")?;
    if first.len() != n as usize {
        bail!("first batch held {} routes, want {n}", first.len());
    }
    let sync = SyncResult { leases: n, start, synced: at - t0 };

    let convergence = if iterations > 0 {
        let mut ack = Vec::with_capacity(iterations as usize);
        let mut sink = Vec::with_capacity(iterations as usize);
        for it in 0..iterations {
            let i = 1 + it % n;
            let subnet = peer_subnet(i);
            // Alternate the PublicIP so every put is a real next-hop change.
            let value = peer_value(i, 1 + it / n % 2 + (it % 2));
            let t = Instant::now();
            client.put(key(subnet), value, None).await?;
            ack.push(t.elapsed());
            loop {
                let (at, batch) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                    .await
                    .context("no route delta within 5 s")?
                    .context("agent stopped")?;
                if batch.iter().any(|d| matches!(d, RouteDelta::Upsert(s) if s.subnet == subnet)) {
                    sink.push(at - t);
                    break;
                }
            }
        }
        Some(Convergence { ack, sink })
    } else {
        None
    };
    let _ = stop_tx.send(());
    task.await??;
    Ok((sync, convergence))
}

/// Initial sync of one table size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlSync {
    /// Leases in etcd before the agent starts.
    pub leases: u32,
    /// `Agent::start` (connect, config, list, acquire), ms.
    pub start_ms: f64,
    /// Until the sink held every route in its first batch, ms.
    pub synced_ms: f64,
}

/// Percentiles of one convergence measure, ms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlLatency {
    /// What was timed.
    pub measure: String,
    /// Samples.
    pub samples: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

/// What `weft-bench control` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlResult {
    /// `etcd --version`.
    pub etcd: String,
    /// Initial sync per table size.
    pub sync: Vec<ControlSync>,
    /// Peers present while convergence was measured.
    pub convergence_peers: u32,
    /// Lease put → etcd ack and → RouteDelta at the sink.
    pub convergence: Vec<ControlLatency>,
}

impl ControlResult {
    /// The result as markdown tables.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let mut out = format!("etcd {}, 127.0.0.1\n\n", self.etcd);
        out.push_str(
            "| leases | Agent::start (list + acquire) ms | first batch at sink ms |\n|---:|---:|---:|\n",
        );
        for s in &self.sync {
            let _ = writeln!(out, "| {} | {:.2} | {:.2} |", s.leases, s.start_ms, s.synced_ms);
        }
        if let Some(first) = self.convergence.first() {
            let _ = writeln!(
                out,
                "\nconvergence, {} peers, {} lease puts (put issued -> RouteDelta at sink):\n",
                self.convergence_peers, first.samples
            );
            out.push_str("| measure | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|\n");
            for c in &self.convergence {
                let _ =
                    writeln!(out, "| {} | {:.2} | {:.2} | {:.2} |", c.measure, c.p50_ms, c.p99_ms, c.max_ms);
            }
        }
        out
    }
}

/// `weft-bench control [--sizes 1000,10000] [--iterations 2000] [--json FILE]`
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut sizes = vec![1000u32, 10_000];
    let mut iterations = 2000u32;
    let mut json: Option<std::path::PathBuf> = None;
    const USAGE: &str = "usage: weft-bench control [--sizes 1000,10000] [--iterations 2000] [--json FILE]";
    for (flag, value) in options::pairs(args, USAGE)? {
        match flag {
            "--sizes" => sizes = options::list(flag, value, USAGE)?,
            "--iterations" => iterations = options::value(flag, value, USAGE)?,
            "--json" => json = Some(value.into()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut result = ControlResult {
        etcd: etcd_version(),
        sync: Vec::new(),
        convergence_peers: 1000,
        convergence: Vec::new(),
    };
    for &n in &sizes {
        // Convergence is measured with the 1k-lease table.
        let iters = if n == 1000 { iterations } else { 0 };
        eprintln!("control: {n} leases{}", if iters > 0 { ", then convergence" } else { "" });
        let (sync, c) = rt.block_on(one_size(n, iters))?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        result.sync.push(ControlSync {
            leases: sync.leases,
            start_ms: ms(sync.start),
            synced_ms: ms(sync.synced),
        });
        if let Some(mut c) = c {
            c.ack.sort();
            c.sink.sort();
            for (name, v) in [("put acknowledged by etcd", &c.ack), ("RouteDelta at the sink", &c.sink)] {
                result.convergence.push(ControlLatency {
                    measure: name.into(),
                    samples: v.len(),
                    p50_ms: ms(percentile(v, 0.5)),
                    p99_ms: ms(percentile(v, 0.99)),
                    max_ms: ms(*v.last().unwrap_or(&Duration::ZERO)),
                });
            }
        }
    }
    print!("{}", result.markdown());
    if let Some(path) = &json {
        options::write_json(path, &result)?;
    }
    Ok(())
}

pub(crate) fn etcd_version() -> String {
    std::process::Command::new("/usr/bin/etcd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(|l| l.trim_start_matches("etcd Version: ").to_owned()))
        .unwrap_or_else(|| "?".into())
}
