//! `weft-bench idle`: what an idle weft node costs. The lab's weft node runs with no traffic;
//! over a window, each worker thread's CPU time (utime + stime from
//! `/proc/<weft>/task/<tid>/stat`) is read at both ends: busy % = CPU time / window. Run with
//! weft's default idle strategy (adaptive waiting) and with `workers.busy_poll` for contrast.
//! Goal: each worker under 2 % busy with the default.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::common::{COMMON_USAGE, Common};
use super::result::RunConditions;
use crate::options;

/// Goal: an idle worker's core is busier than this, in percent, at most.
pub const IDLE_GOAL_PERCENT: f64 = 2.0;

/// One worker thread over one window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleRecord {
    /// `vxlan`, `host-gw`.
    pub backend: String,
    /// weft's `workers.busy_poll` in this run.
    pub busy_poll: bool,
    /// The worker thread's name (`weft-q0`).
    pub worker: String,
    /// The window, seconds.
    pub secs: f64,
    /// CPU time the thread used in the window, seconds.
    pub cpu_secs: f64,
    /// `cpu_secs / secs`, percent of one core.
    pub busy_percent: f64,
}

/// What `--json` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleReport {
    /// Machine and conditions.
    pub conditions: RunConditions,
    /// Per backend, mode and worker.
    pub records: Vec<IdleRecord>,
}

fn usage() -> String {
    format!(
        "usage: weft-bench idle [options]

The lab of `weft-bench lab` without traffic: each weft worker thread's CPU time over --secs
(default 10), with weft's default idle strategy and with workers.busy_poll.

  --modes LIST                adaptive,busy-poll (default both)
{COMMON_USAGE}
defaults: --backends vxlan --secs 10 (--paths, --sizes, --flows, --rounds, --generator unused)"
    )
}

/// Clock ticks per second of `/proc` times (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// `(thread name, utime + stime in ticks)` of every thread of `pid` named `weft-q*`.
fn worker_ticks(pid: i32) -> anyhow::Result<Vec<(String, u64)>> {
    let dir = format!("/proc/{pid}/task");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let task = entry?.path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default().trim().to_owned();
        if !comm.starts_with("weft-q") {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat"))?;
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        out.push((comm, ticks(14) + ticks(15)));
    }
    anyhow::ensure!(!out.is_empty(), "no weft-q* worker threads under {dir}");
    out.sort();
    Ok(out)
}

/// Runs the suite.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let usage = usage();
    let mut c = Common::new(&[64], &[1], 1, 10.0);
    c.backends = vec![weft_bench::lab::Backend::Vxlan];
    let mut modes = vec!["adaptive".to_owned(), "busy-poll".to_owned()];
    for (flag, value) in options::pairs(args, &usage)? {
        match flag {
            "--modes" => modes = options::list(flag, value, &usage)?,
            _ if c.take(flag, value, &usage)? => {}
            _ => anyhow::bail!("unknown option {flag}\n{usage}"),
        }
    }
    c.validate()?;
    if let Some(bad) = modes.iter().find(|m| !matches!(m.as_str(), "adaptive" | "busy-poll")) {
        anyhow::bail!("--modes: unknown mode {bad:?} (adaptive, busy-poll)");
    }
    let (started, load_before) = (Instant::now(), crate::machine::load());
    let (mut records, mut pinned) = (Vec::new(), true);
    for &backend in &c.backends {
        for mode in &modes {
            let mut run = c.clone();
            run.weft_busy_poll = mode == "busy-poll";
            let bed = run.testbed(backend)?;
            pinned &= bed.pinned;
            let pid = bed.weft_pid().context("the weft node's daemon is not running")?;
            // Let the pings that proved the paths, and the workers' spinning after them, pass.
            std::thread::sleep(Duration::from_secs(2));
            eprint!("[idle] {} {mode}: {:.0} s without traffic … ", backend.flannel_name(), c.secs);
            let (t0, before) = (Instant::now(), worker_ticks(pid)?);
            std::thread::sleep(c.duration());
            let (secs, after) = (t0.elapsed().as_secs_f64(), worker_ticks(pid)?);
            for (name, end) in &after {
                let start = before.iter().find(|(n, _)| n == name).map_or(0, |(_, t)| *t);
                let cpu_secs = end.saturating_sub(start) as f64 / CLK_TCK;
                let busy_percent = 100.0 * cpu_secs / secs;
                eprint!("{name} {busy_percent:.1}% ");
                records.push(IdleRecord {
                    backend: backend.flannel_name().into(),
                    busy_poll: run.weft_busy_poll,
                    worker: name.clone(),
                    secs,
                    cpu_secs,
                    busy_percent,
                });
            }
            eprintln!();
            eprintln!("[idle] {}: tearing the lab down", backend.flannel_name());
        }
    }
    print_table(&records);
    let conditions = c.conditions(started, load_before, pinned);
    c.finish(&conditions, &IdleReport { conditions: conditions.clone(), records })
}

/// The markdown table of `records` (also REPORT.md's).
pub fn table(records: &[IdleRecord]) -> String {
    let mut s = format!(
        "| backend | idle strategy | worker | window s | CPU s | busy % of a core | goal <= {IDLE_GOAL_PERCENT} % |\n|---|---|---|---:|---:|---:|---|\n"
    );
    for r in records {
        let mode = if r.busy_poll { "busy_poll" } else { "adaptive waiting (default)" };
        let verdict = match (r.busy_poll, r.busy_percent <= IDLE_GOAL_PERCENT) {
            (true, _) => "(contrast)",
            (false, true) => "met",
            (false, false) => "MISSED",
        };
        s.push_str(&format!(
            "| {} | {mode} | {} | {:.1} | {:.2} | {:.1} | {verdict} |\n",
            r.backend, r.worker, r.secs, r.cpu_secs, r.busy_percent
        ));
    }
    s
}

fn print_table(records: &[IdleRecord]) {
    println!("\nCPU of each weft worker thread on an idle node (no traffic):\n");
    print!("{}", table(records));
}
