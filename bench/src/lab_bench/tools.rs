//! `weft-bench tools`: real tools from Debian between pods, weft against the kernel in one
//! lab: n1, n2 run the kernel's data path as flanneld programs it, n3, n4 run weft; pod n1 ↔
//! pod n2 is the kernel pair, pod n3 ↔ pod n4 the weft pair, measured alternately.
//!
//! - sockperf ping-pong (64-byte UDP messages) at fixed message rates and at full rate: the
//!   latency sockperf reports (half the round trip), p50/p99/p99.9;
//! - iperf3 TCP throughput, and iperf3 UDP with 18-byte payloads (64-byte frames): packets per
//!   second received.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeSpec, cmd};

use super::result::RunConditions;
use crate::options;

/// One sockperf ping-pong run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingPong {
    /// `kernel` or `weft`.
    pub data_path: String,
    /// Messages per second asked for (`None`: full rate).
    pub mps: Option<u32>,
    /// Observations sockperf made.
    pub observations: u64,
    /// Latency percentiles, µs (sockperf: half the round trip).
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Mean, µs.
    pub avg_us: f64,
}

/// One iperf3 run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    /// `kernel` or `weft`.
    pub data_path: String,
    /// `tcp` or `udp64`.
    pub test: String,
    /// Received bits per second.
    pub bits_per_second: f64,
    /// Received packets per second (UDP only).
    pub packets_per_second: Option<f64>,
    /// Lost datagrams, percent (UDP only).
    pub lost_percent: Option<f64>,
}

/// What `--json` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolsReport {
    /// Machine and conditions.
    pub conditions: RunConditions,
    /// The flannel backend of the lab.
    pub backend: String,
    /// sockperf runs.
    pub ping_pong: Vec<PingPong>,
    /// iperf3 runs.
    pub throughput: Vec<Throughput>,
}

const USAGE: &str = "usage: weft-bench tools [options]

A lab of two kernel-flannel and two weft nodes; pods on the kernel pair and on the weft pair run
sockperf ping-pong and iperf3 against each other, alternately.

  --backend vxlan|host-gw     the lab's flannel backend (default vxlan)
  --rates LIST                sockperf messages per second; 0 = full rate (default 1000,10000,0)
  --secs S                    seconds per run (default 5)
  --json FILE                 write every figure as JSON";

const SOCKPERF_PORT: &str = "11111";

/// A server started in a pod's namespace, killed (by PID) when dropped.
struct Server(Child);

impl Server {
    fn start(ns: &str, program: &str, args: &[&str]) -> anyhow::Result<Server> {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {program} in {ns}"))?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(Server(child))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value after `key` on the first sockperf line that contains it (`percentile 99.000 =
/// 38.2`); the observation count is read as `Total N observations`.
fn sockperf_value(out: &str, key: &str) -> anyhow::Result<f64> {
    let line = out
        .lines()
        .find(|l| l.contains(key) && (key != "Total" || l.contains("observations")))
        .with_context(|| format!("sockperf printed no {key:?}"))?;
    let after = &line[line.find(key).unwrap_or(0) + key.len()..];
    let num: String = after
        .trim_start_matches(|c: char| c == '=' || c.is_whitespace())
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().with_context(|| format!("sockperf {key:?}: cannot read {after:?}"))
}

fn ping_pong(
    data_path: &str,
    ns: &str,
    server: Ipv4Addr,
    mps: Option<u32>,
    secs: f64,
) -> anyhow::Result<PingPong> {
    let (server, t) = (server.to_string(), format!("{}", secs.ceil() as u64));
    let rate = mps.map_or("max".to_owned(), |m| m.to_string());
    let out = cmd::exec_in(
        ns,
        "sockperf",
        &["ping-pong", "-i", &server, "-p", SOCKPERF_PORT, "-t", &t, "--mps", &rate, "-m", "64"],
    )?;
    let observations = sockperf_value(&out, "Total")? as u64;
    Ok(PingPong {
        data_path: data_path.into(),
        mps,
        observations,
        p50_us: sockperf_value(&out, "percentile 50.000")?,
        p99_us: sockperf_value(&out, "percentile 99.000")?,
        p999_us: sockperf_value(&out, "percentile 99.900")?,
        avg_us: sockperf_value(&out, "avg-latency")?,
    })
}

fn iperf3(data_path: &str, ns: &str, server: Ipv4Addr, udp: bool, secs: f64) -> anyhow::Result<Throughput> {
    let (server, t) = (server.to_string(), format!("{}", secs.ceil() as u64));
    let mut args = vec!["-c", server.as_str(), "-t", t.as_str(), "-J"];
    if udp {
        // 18 bytes of payload: 64-byte frames with FCS.
        args.extend(["-u", "-b", "0", "-l", "18"]);
    }
    let out = cmd::exec_in(ns, "iperf3", &args)?;
    let v: serde_json::Value = serde_json::from_str(&out).context("iperf3 -J printed no JSON")?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        bail!("iperf3: {e}");
    }
    let end = &v["end"];
    if udp {
        let sum = &end["sum"];
        let secs = sum["seconds"].as_f64().unwrap_or(secs);
        let packets = sum["packets"].as_f64().unwrap_or(0.0);
        let lost = sum["lost_packets"].as_f64().unwrap_or(0.0);
        Ok(Throughput {
            data_path: data_path.into(),
            test: "udp64".into(),
            bits_per_second: sum["bits_per_second"].as_f64().unwrap_or(0.0),
            packets_per_second: Some((packets - lost) / secs.max(1e-9)),
            lost_percent: sum["lost_percent"].as_f64(),
        })
    } else {
        Ok(Throughput {
            data_path: data_path.into(),
            test: "tcp".into(),
            bits_per_second: end["sum_received"]["bits_per_second"].as_f64().unwrap_or(0.0),
            packets_per_second: None,
            lost_percent: None,
        })
    }
}

fn wait_for_ping(lab: &Lab, from: usize, to: usize) -> anyhow::Result<()> {
    let (ns, ip) = (lab.pod(from, 1).ns.clone(), lab.pod(to, 1).ip.to_string());
    let deadline = Instant::now() + Duration::from_secs(30);
    while cmd::exec_in(&ns, "ping", &["-n", "-q", "-c", "1", "-W", "1", &ip]).is_err() {
        if Instant::now() > deadline {
            bail!("pod n{from} cannot ping pod n{to} ({ip}) after 30 s; logs:\n{}", lab.log_tails(2000));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Runs the suite.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (mut backend, mut rates, mut secs, mut json) =
        (Backend::Vxlan, vec![1000u32, 10000, 0], 5.0f64, None);
    for (flag, value) in options::pairs(args, USAGE)? {
        match flag {
            "--backend" => backend = Backend::parse(value)?,
            "--rates" => rates = options::list(flag, value, USAGE)?,
            "--secs" => secs = options::value(flag, value, USAGE)?,
            "--json" => json = Some(std::path::PathBuf::from(value)),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    anyhow::ensure!((1.0..=600.0).contains(&secs), "--secs must be in [1, 600]");
    for tool in ["sockperf", "iperf3"] {
        if cmd::run("which", &[tool]).is_err() {
            bail!("{tool} is not installed: `apt-get install {tool}` (scripts/setup.sh bench does)");
        }
    }
    let (started, load_before) = (Instant::now(), crate::machine::load());
    let (weft, weft_lab) = (super::testbed::sibling("weft")?, super::testbed::sibling("weft-lab")?);
    let (weft, weft_lab) = (weft.display().to_string(), weft_lab.display().to_string());
    let weft_node =
        || NodeSpec::weft(Some(vec![weft.clone(), "run".into(), "--config".into(), "{config}".into()]));
    let spec = LabSpec {
        prefix: format!("wbt{}", std::process::id()),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend,
        nodes: vec![NodeSpec::kernel(&weft_lab), NodeSpec::kernel(&weft_lab), weft_node(), weft_node()],
        pods_per_node: 1,
        uplink_mtu: 1500,
    };
    eprintln!(
        "[tools] {}: building the lab (2 kernel-flannel nodes, 2 weft nodes) …",
        backend.flannel_name()
    );
    let lab = LabGuard::new(Lab::up(&spec).context("lab up")?);
    let pairs = [("kernel", 1usize, 2usize), ("weft", 3, 4)];
    for &(_, a, b) in &pairs {
        wait_for_ping(&lab, a, b)?;
    }
    let (mut ping_pongs, mut throughput) = (Vec::new(), Vec::new());
    for &rate in &rates {
        let mps = (rate > 0).then_some(rate);
        for &(name, a, b) in &pairs {
            let (client, server) = (lab.pod(a, 1).ns.clone(), lab.pod(b, 1));
            let _srv = Server::start(
                &server.ns,
                "sockperf",
                &["server", "-i", &server.ip.to_string(), "-p", SOCKPERF_PORT],
            )?;
            let r = ping_pong(name, &client, server.ip, mps, secs)?;
            eprintln!(
                "[tools] sockperf {name} {}: p50 {:.1} µs p99 {:.1} µs p99.9 {:.1} µs ({} observations)",
                mps.map_or("full rate".to_owned(), |m| format!("{m}/s")),
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.observations
            );
            ping_pongs.push(r);
        }
    }
    for udp in [false, true] {
        for &(name, a, b) in &pairs {
            let (client, server) = (lab.pod(a, 1).ns.clone(), lab.pod(b, 1));
            let _srv = Server::start(&server.ns, "iperf3", &["-s", "-B", &server.ip.to_string()])?;
            let r = iperf3(name, &client, server.ip, udp, secs)?;
            eprintln!(
                "[tools] iperf3 {name} {}: {:.1} Mbit/s{}",
                r.test,
                r.bits_per_second / 1e6,
                r.packets_per_second.map_or(String::new(), |p| format!(", {:.1} kpps received", p / 1e3))
            );
            throughput.push(r);
        }
    }
    eprintln!("[tools] {}: tearing the lab down", backend.flannel_name());
    drop(lab);
    let report = ToolsReport {
        conditions: RunConditions {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_before,
            load_after: crate::machine::load(),
            elapsed_secs: started.elapsed().as_secs_f64(),
            generator: "sockperf, iperf3".into(),
            weft_busy_poll: false,
            pinned: false,
            note: super::result::VETH_NOTE.into(),
        },
        backend: backend.flannel_name().into(),
        ping_pong: ping_pongs,
        throughput,
    };
    print!("{}", markdown(&report));
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("[tools] wrote {}", path.display());
    }
    Ok(())
}

/// The report's tables (also REPORT.md's section).
pub fn markdown(r: &ToolsReport) -> String {
    let mut s = format!(
        "\nsockperf ping-pong between pods, {} lab (µs, half the round trip; goal: weft <= kernel):\n\n\
         | rate | data path | observations | avg | p50 | p99 | p99.9 |\n|---|---|---:|---:|---:|---:|---:|\n",
        r.backend
    );
    for p in &r.ping_pong {
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            p.mps.map_or("full".to_owned(), |m| format!("{m}/s")),
            p.data_path,
            p.observations,
            p.avg_us,
            p.p50_us,
            p.p99_us,
            p.p999_us
        ));
    }
    s.push_str("\niperf3 between pods (goal: weft >= kernel):\n\n| test | data path | Mbit/s | kpps received | lost % |\n|---|---|---:|---:|---:|\n");
    for t in &r.throughput {
        s.push_str(&format!(
            "| {} | {} | {:.1} | {} | {} |\n",
            t.test,
            t.data_path,
            t.bits_per_second / 1e6,
            t.packets_per_second.map_or("-".to_owned(), |p| format!("{:.1}", p / 1e3)),
            t.lost_percent.map_or("-".to_owned(), |l| format!("{l:.1}"))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockperf_lines_are_read_by_key() {
        let out = "sockperf: [Total Run] RunTime=3.000 sec; SentMessages=3001\n\
                   sockperf: \u{1b}[2;35m====> avg-latency=344.456 (std-dev=862.671)\u{1b}[0m\n\
                   sockperf: \u{1b}[2;35mTotal 551 observations\u{1b}[0m; each percentile contains 5.51 observations\n\
                   sockperf: ---> percentile 99.900 = 5266.612\n\
                   sockperf: ---> percentile 50.000 =    6.769\n";
        assert_eq!(sockperf_value(out, "avg-latency").unwrap(), 344.456);
        assert_eq!(sockperf_value(out, "Total").unwrap(), 551.0);
        assert_eq!(sockperf_value(out, "percentile 99.900").unwrap(), 5266.612);
        assert_eq!(sockperf_value(out, "percentile 50.000").unwrap(), 6.769);
        assert!(sockperf_value(out, "percentile 99.000").is_err());
    }
}
