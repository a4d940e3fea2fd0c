//! `weft-bench policy`: a network policy written to etcd until the node enforces it.
//!
//! A real etcd holds `--policies` NetworkPolicies (each selects pods by label in one of ten
//! namespaces and allows ingress from pods of another label and from one ipBlock /24 on one TCP
//! port) and `--endpoints` endpoint records (the first `LOCAL_PODS` on this node). The daemon's
//! own [`PolicySync`] lists and watches them and publishes the compiled set into a
//! [`SharedPolicy`], as the workers read it. Then `--updates` times, one after another, a put
//! that changes one policy's port: from the put issued and from etcd's acknowledgement until the
//! published set is a new one (the loop's status wakes the benchmark; the set's pointer decides).
//! Every new set is checked: a local pod the policy selects now allows the new port from the
//! policy's ipBlock. etcd is started like the tests do (temp data dir, 127.0.0.1, random ports).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use etcd_client::{Client, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use weft_control::policy::PolicySync;
use weft_engine::policy::{SharedPolicy, proto, shared_policy};

use crate::control::{ControlLatency, etcd, etcd_version, percentile, settings};
use crate::options;

const USAGE: &str =
    "usage: weft-bench policy [--policies 1000] [--endpoints 1000] [--updates 200] [--json FILE]";
const PREFIX: &str = "/weft-bench";
/// Endpoints 0.. on this node (in `LOCAL`).
const LOCAL_PODS: u32 = 200;
const LOCAL: &str = "198.19.0.0/24";
const NAMESPACES: u32 = 10;
const LABELS: u32 = 50;
/// The goal: put acknowledged -> new set published, p99.
pub const POLICY_GOAL_P99_MS: f64 = 50.0;

fn pod_ip(i: u32) -> Ipv4Addr {
    if i < LOCAL_PODS {
        Ipv4Addr::new(198, 19, 0, 1 + i as u8)
    } else {
        let r = i - LOCAL_PODS;
        Ipv4Addr::new(198, 19, 1 + (r / 250) as u8, 1 + (r % 250) as u8)
    }
}

fn endpoint(i: u32) -> (String, String) {
    let ns = i % NAMESPACES;
    (
        format!("{PREFIX}/endpoints/ns{ns}/p{i}"),
        format!(
            r#"{{"namespace":"ns{ns}","name":"p{i}","ip":"{}","labels":{{"app":"a{}"}},"node":"n{}"}}"#,
            pod_ip(i),
            i % LABELS,
            u32::from(i >= LOCAL_PODS)
        ),
    )
}

/// Policy `j`'s ipBlock.
fn block(j: u32) -> Ipv4Addr {
    Ipv4Addr::new(100, 64 + (j / 256) as u8, (j % 256) as u8, 0)
}

/// Policy `j` in namespace ns(j % 10): pods app=a(j % 50) accept pods app=a((j + 7) % 50) and
/// `block(j)`/24 on TCP `port`.
fn policy(j: u32, port: u16) -> (String, String) {
    let ns = j % NAMESPACES;
    (
        format!("{PREFIX}/policies/ns{ns}/pol{j}"),
        format!(
            r#"{{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{{"name":"pol{j}","namespace":"ns{ns}"}},"spec":{{"podSelector":{{"matchLabels":{{"app":"a{}"}}}},"ingress":[{{"from":[{{"podSelector":{{"matchLabels":{{"app":"a{}"}}}}}},{{"ipBlock":{{"cidr":"{}/24"}}}}],"ports":[{{"protocol":"TCP","port":{port}}}]}}]}}}}"#,
            j % LABELS,
            (j + 7) % LABELS,
            block(j)
        ),
    )
}

async fn put_all(client: &mut Client, kvs: Vec<(String, String)>) -> anyhow::Result<()> {
    for chunk in kvs.chunks(128) {
        let ops: Vec<TxnOp> = chunk.iter().map(|(k, v)| TxnOp::put(k.clone(), v.clone(), None)).collect();
        client.txn(Txn::new().and_then(ops)).await?;
    }
    Ok(())
}

/// Whether `set` lets policy `j`'s ipBlock reach a local pod it selects on TCP `port`.
fn enforced(target: &SharedPolicy, j: u32, port: u16) -> bool {
    // Pod j % 50 is local, labelled a(j % 50), in namespace ns(j % 10): policy j selects it.
    let pod = u32::from(pod_ip(j % LABELS));
    let peer = u32::from(block(j)) + 5;
    target.load().pod(pod).and_then(|p| p.ingress.as_ref()).is_some_and(|r| r.allows(peer, proto::TCP, port))
}

struct Samples {
    first: Duration,
    isolated: usize,
    ack: Vec<Duration>,
    issued: Vec<Duration>,
    acked: Vec<Duration>,
    compile_us: Vec<u64>,
}

async fn measure(policies: u32, endpoints: u32, updates: u32) -> anyhow::Result<Samples> {
    if policies == 0 || endpoints < LOCAL_PODS {
        bail!("--policies must be at least 1 and --endpoints at least {LOCAL_PODS}\n{USAGE}");
    }
    let etcd = etcd::Etcd::start();
    let dir = tempfile::tempdir()?;
    let mut client = Client::connect([etcd.endpoint()], None).await?;
    put_all(&mut client, (0..endpoints).map(endpoint).collect()).await?;
    put_all(&mut client, (0..policies).map(|j| policy(j, 1000 + (j % 1000) as u16)).collect()).await?;

    let target = shared_policy();
    let t0 = Instant::now();
    let sync = PolicySync::connect(
        settings(&etcd, dir.path()),
        PREFIX,
        LOCAL.parse()?,
        target.clone(),
        tokio::sync::watch::channel(0).1,
    )
    .await?;
    let mut status = sync.status();
    let (_requests, rx) = mpsc::channel(1);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(sync.run(rx, async move {
        let _ = stop_rx.await;
    }));
    let wait = Duration::from_secs(10);
    tokio::time::timeout(
        wait,
        status.wait_for(|s| s.policies == policies as usize && s.endpoints == endpoints as usize),
    )
    .await
    .context("the policy loop did not publish the preloaded set within 10 s")??;
    let first = t0.elapsed();
    let isolated = status.borrow().isolated_pods;

    let mut s = Samples {
        first,
        isolated,
        ack: Vec::new(),
        issued: Vec::new(),
        acked: Vec::new(),
        compile_us: Vec::new(),
    };
    for it in 0..updates {
        let j = it * 7 % policies;
        let port = 20_000 + it as u16;
        let (key, value) = policy(j, port);
        let old = target.load_full();
        status.borrow_and_update();
        let t = Instant::now();
        client.put(key, value, None).await?;
        let ack = Instant::now();
        loop {
            tokio::time::timeout(wait, status.changed())
                .await
                .with_context(|| format!("update {it}: no new set within 10 s"))?
                .context("the policy loop stopped")?;
            if !Arc::ptr_eq(&target.load_full(), &old) {
                break;
            }
        }
        let seen = Instant::now();
        if !enforced(&target, j, port) {
            bail!("update {it}: the new set does not allow policy {j}'s ipBlock on TCP {port}");
        }
        s.ack.push(ack - t);
        s.issued.push(seen - t);
        s.acked.push(seen.saturating_duration_since(ack));
        s.compile_us.push(status.borrow().last_compile_us);
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), task).await.context("the policy loop did not stop")??;
    Ok(s)
}

/// What `weft-bench policy` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyResult {
    /// `etcd --version`.
    pub etcd: String,
    /// Policies in etcd.
    pub policies: u32,
    /// Endpoint records in etcd.
    pub endpoints: u32,
    /// Of which on this node.
    pub local_pods: u32,
    /// Local pods the preloaded policies isolate.
    pub isolated_pods: usize,
    /// Connect, list, compile and publish of the preloaded records, ms.
    pub first_publish_ms: f64,
    /// Policy puts timed.
    pub updates: u32,
    /// put → etcd ack, put → new set published, ack → new set published.
    pub latency: Vec<ControlLatency>,
    /// The loop's compile + publish time per update (its status), median and largest, ms.
    pub compile_p50_ms: f64,
    /// Largest compile + publish, ms.
    pub compile_max_ms: f64,
}

/// The measure the goal is stated for.
pub const GOAL_MEASURE: &str = "put acknowledged by etcd -> new set published";

impl PolicyResult {
    /// The goal's row.
    pub fn goal(&self) -> Option<&ControlLatency> {
        self.latency.iter().find(|l| l.measure == GOAL_MEASURE)
    }

    /// The result as markdown.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "etcd {}, 127.0.0.1; {} policies and {} endpoint records ({} on this node, {} of them isolated) \
             compiled by the daemon's policy loop into the set the workers read; first list + publish {:.1} ms; \
             {} single-policy updates one after another; compile + publish per update p50 {:.2} ms, max {:.2} ms\n\n",
            self.etcd,
            self.policies,
            self.endpoints,
            self.local_pods,
            self.isolated_pods,
            self.first_publish_ms,
            self.updates,
            self.compile_p50_ms,
            self.compile_max_ms
        );
        out.push_str("| measure | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|\n");
        for c in &self.latency {
            let _ = writeln!(out, "| {} | {:.2} | {:.2} | {:.2} |", c.measure, c.p50_ms, c.p99_ms, c.max_ms);
        }
        out
    }
}

/// Entry point.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (mut policies, mut endpoints, mut updates) = (1000u32, 1000u32, 200u32);
    let mut json: Option<std::path::PathBuf> = None;
    for (flag, value) in options::pairs(args, USAGE)? {
        match flag {
            "--policies" => policies = options::value(flag, value, USAGE)?,
            "--endpoints" => endpoints = options::value(flag, value, USAGE)?,
            "--updates" => updates = options::value(flag, value, USAGE)?,
            "--json" => json = Some(value.into()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if updates == 0 {
        bail!("--updates must be at least 1\n{USAGE}");
    }
    eprintln!("policy: {policies} policies, {endpoints} endpoints, {updates} updates");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut s = rt.block_on(measure(policies, endpoints, updates))?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut latency = Vec::new();
    for (name, v) in [
        ("put acknowledged by etcd", &mut s.ack),
        ("put issued -> new set published", &mut s.issued),
        (GOAL_MEASURE, &mut s.acked),
    ] {
        v.sort();
        latency.push(ControlLatency {
            measure: name.into(),
            samples: v.len(),
            p50_ms: ms(percentile(v, 0.5)),
            p99_ms: ms(percentile(v, 0.99)),
            max_ms: ms(*v.last().unwrap_or(&Duration::ZERO)),
        });
    }
    s.compile_us.sort_unstable();
    let result = PolicyResult {
        etcd: etcd_version(),
        policies,
        endpoints,
        local_pods: LOCAL_PODS,
        isolated_pods: s.isolated,
        first_publish_ms: ms(s.first),
        updates,
        latency,
        compile_p50_ms: s.compile_us[s.compile_us.len() / 2] as f64 / 1e3,
        compile_max_ms: *s.compile_us.last().unwrap_or(&0) as f64 / 1e3,
    };
    print!("{}", result.markdown());
    if let Some(path) = &json {
        options::write_json(path, &result)?;
    }
    Ok(())
}
