//! `weft-bench all`: runs every suite (each in its own process, so pinning and memory of one
//! cannot touch the next), shows a progress line per step, and writes `REPORT.md`, SVG plots and
//! `results.json` (every raw figure plus the machine description) into the results directory.
//!
//! - [`model`]: what the JSON file holds;
//! - [`render`]: REPORT.md and the plots; [`lab`]: its weft-vs-kernel sections;
//! - [`svg`]: the plotting;
//! - [`criterion`]: the encap micro-benchmarks `cargo bench` left behind;
//! - [`profile`]: perf profiles of core paths that miss their goal.

pub mod criterion;
pub mod lab;
pub mod model;
pub mod profile;
pub mod render;
pub mod svg;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;

use crate::machine::{self, Machine};
use crate::options;
use model::{Report, SuiteRun};

const USAGE: &str = "usage: weft-bench all [--out bench/results] [--criterion target/criterion]
                     [--suites lpm,core,control,policy,bgp,lab,latency,idle,tools,pods] [--quick true] [--render-only true]
  Runs the suites one after another (each in its own process), then writes OUT/REPORT.md,
  OUT/*.svg and OUT/results.json. --quick runs tiny versions (seconds; to check the plumbing).
  --render-only re-renders REPORT.md and the plots from OUT/results.json.";

/// One suite: its name and its options for the full run and for `--quick`.
struct Plan {
    name: &'static str,
    full: &'static [&'static str],
    quick: &'static [&'static str],
}

/// In order; the full options keep `make bench` within its 15-minute budget on a 2-core box.
const PLANS: &[Plan] = &[
    Plan {
        name: "lpm",
        full: &[],
        quick: &["--prefixes", "1000", "--secs", "0.02", "--visibility-samples", "20"],
    },
    Plan {
        name: "core",
        full: &["--sweep", "10,100,1000", "--sweep-cidrs", "10000", "--sweep-secs", "0.25"],
        quick: &[
            "--secs",
            "0.05",
            "--routes",
            "1000",
            "--flows",
            "100",
            "--sweep",
            "10,100,1000",
            "--sweep-cidrs",
            "1000",
            "--sweep-secs",
            "0.02",
        ],
    },
    Plan {
        name: "control",
        full: &["--sizes", "1000,10000", "--iterations", "1000"],
        quick: &["--sizes", "1000", "--iterations", "20"],
    },
    Plan {
        name: "policy",
        full: &["--policies", "1000", "--endpoints", "1000", "--updates", "200"],
        quick: &["--policies", "100", "--endpoints", "300", "--updates", "20"],
    },
    Plan {
        name: "bgp",
        full: &["--sizes", "1000,10000,100000", "--iterations", "500"],
        quick: &["--sizes", "1000", "--iterations", "20"],
    },
    Plan {
        name: "lab",
        full: &[],
        quick: &["--sizes", "64", "--flows", "1", "--rounds", "1", "--secs", "0.5"],
    },
    Plan {
        name: "latency",
        full: &[],
        quick: &["--sizes", "64", "--flows", "1", "--rounds", "1", "--secs", "0.5"],
    },
    Plan { name: "idle", full: &[], quick: &["--modes", "adaptive", "--secs", "1"] },
    Plan { name: "tools", full: &[], quick: &["--rates", "1000", "--secs", "1"] },
    Plan {
        name: "pods",
        full: &[],
        quick: &["--attach-samples", "10", "--rounds", "1", "--secs", "0.5", "--idle-pods", "110"],
    },
];

struct Options {
    out: PathBuf,
    criterion: PathBuf,
    suites: Vec<String>,
    quick: bool,
    render_only: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        out: "bench/results".into(),
        criterion: "target/criterion".into(),
        suites: PLANS.iter().map(|p| p.name.to_owned()).collect(),
        quick: false,
        render_only: false,
    };
    for (flag, value) in options::pairs(args, USAGE)? {
        match flag {
            "--out" => o.out = value.into(),
            "--criterion" => o.criterion = value.into(),
            "--suites" => o.suites = options::list(flag, value, USAGE)?,
            "--quick" => o.quick = options::value(flag, value, USAGE)?,
            "--render-only" => o.render_only = options::value(flag, value, USAGE)?,
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if let Some(bad) = o.suites.iter().find(|s| !PLANS.iter().any(|p| p.name == s.as_str())) {
        bail!("--suites: unknown suite {bad:?}\n{USAGE}");
    }
    Ok(o)
}

fn clock(secs: f64) -> String {
    format!("{}:{:02}", secs as u64 / 60, secs as u64 % 60)
}

/// Runs `weft-bench <name> <args> --json <raw>/<name>.json`, its stdout into `<raw>/<name>.md`,
/// its stderr shown as progress lines `[step/steps mm:ss name] …`.
fn run_suite(
    name: &str,
    args: &[String],
    raw: &Path,
    step: (usize, usize),
    t0: Instant,
) -> anyhow::Result<PathBuf> {
    let json = raw.join(format!("{name}.json"));
    let _ = std::fs::remove_file(&json);
    let stdout = std::fs::File::create(raw.join(format!("{name}.md")))?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg(name)
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start weft-bench")?;
    let mut tail: Vec<String> = Vec::new();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("[{}/{} {} {name}] {line}", step.0, step.1, clock(t0.elapsed().as_secs_f64()));
            tail.push(line);
            if tail.len() > 3 {
                tail.remove(0);
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{status}: {}", tail.join(" / "));
    }
    Ok(json)
}

fn load<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("no results at {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
}

fn commit() -> Option<String> {
    let out = Command::new("git").args(["describe", "--always", "--dirty"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Profiles each core path in `missed` (pipeline only) and records the hotspots or why not.
fn profile_missed(o: &Options, missed: &[String], report: &mut Report, t0: Instant) {
    if let Err(why) = profile::available() {
        report.profiles_note = Some(why);
        return;
    }
    let plan = PLANS.iter().find(|p| p.name == "core").expect("core plan");
    let (secs, args) = if o.quick { (0.05, plan.quick) } else { (2.0, plan.full) };
    // The suite's routes and flows carry over; the profile has its own duration.
    let carry: Vec<&str> = args
        .chunks(2)
        .filter(|pair| matches!(pair, ["--routes" | "--flows", _]))
        .flatten()
        .copied()
        .collect();
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            report.profiles_note = Some(format!("cannot find weft-bench itself: {e}"));
            return;
        }
    };
    for path in missed {
        eprintln!("[profile {}] perf record of core {path} (goal missed)", clock(t0.elapsed().as_secs_f64()));
        match profile::profile_core(&exe, path, secs, &carry, &o.out.join("raw")) {
            Ok(p) => report.profiles.push(p),
            Err(e) => {
                report.profiles_note = Some(format!("{e:#}"));
                return;
            }
        }
    }
}

/// Entry point of `weft-bench all`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    if o.render_only {
        let report: Report = load(&o.out.join("results.json"))?;
        render::write(&o.out, &report)?;
        eprintln!("rendered {}", o.out.join("REPORT.md").display());
        return Ok(());
    }
    let raw = o.out.join("raw");
    std::fs::create_dir_all(&raw).with_context(|| format!("cannot create {}", raw.display()))?;
    let t0 = Instant::now();
    let started =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let encap = criterion::read_group(&o.criterion, "encap");
    let mut report = Report::new(commit(), started, Machine::describe(), encap);
    eprintln!(
        "weft-bench all: {} suites{} -> {}; {} encap micro-benchmarks found under {}",
        o.suites.len(),
        if o.quick { " (quick)" } else { "" },
        o.out.display(),
        report.encap.len(),
        o.criterion.display()
    );
    let steps = o.suites.len();
    for (i, name) in o.suites.iter().enumerate() {
        let plan = PLANS.iter().find(|p| p.name == name.as_str()).expect("checked in parse");
        let args: Vec<String> =
            (if o.quick { plan.quick } else { plan.full }).iter().map(|s| s.to_string()).collect();
        eprintln!(
            "[{}/{steps} {} {name}] starting: weft-bench {name} {}",
            i + 1,
            clock(t0.elapsed().as_secs_f64()),
            args.join(" ")
        );
        let t = Instant::now();
        let outcome = run_suite(name, &args, &raw, (i + 1, steps), t0).and_then(|json| match plan.name {
            "core" => load(&json).map(|r| report.core = Some(r)),
            "lpm" => load(&json).map(|r| report.lpm = Some(r)),
            "control" => load(&json).map(|r| report.control = Some(r)),
            "bgp" => load(&json).map(|r| report.bgp = Some(r)),
            "policy" => load(&json).map(|r| report.policy = Some(r)),
            "lab" => load(&json).map(|r| report.lab = Some(r)),
            "latency" => load(&json).map(|r| report.latency = Some(r)),
            "idle" => load(&json).map(|r| report.idle = Some(r)),
            "tools" => load(&json).map(|r| report.tools = Some(r)),
            "pods" => load(&json).map(|r| report.pods = Some(r)),
            other => bail!("no loader for suite {other}"),
        });
        let error = outcome.err().map(|e| format!("{e:#}"));
        if let Some(e) = &error {
            eprintln!("[{}/{steps} {} {name}] FAILED: {e}", i + 1, clock(t0.elapsed().as_secs_f64()));
        }
        report.suites.push(SuiteRun { name: name.clone(), args, secs: t.elapsed().as_secs_f64(), error });
    }
    if let Some(core) = &report.core {
        let missed: Vec<String> = core
            .paths
            .iter()
            .filter(|p| p.ratio() > render::CORE_GOAL_RATIO)
            .map(|p| p.path.clone())
            .collect();
        if !missed.is_empty() {
            profile_missed(&o, &missed, &mut report, t0);
        }
    }
    report.secs = t0.elapsed().as_secs_f64();
    report.load_end = machine::load();
    render::write(&o.out, &report)?;
    eprintln!("weft-bench all: wrote {} in {}", o.out.join("REPORT.md").display(), clock(report.secs));
    let failed: Vec<&str> =
        report.suites.iter().filter(|s| s.error.is_some()).map(|s| s.name.as_str()).collect();
    if !failed.is_empty() {
        bail!("suites failed: {} (see REPORT.md)", failed.join(", "));
    }
    Ok(())
}
