//! What `lab` and `latency` share: their common flags, the testbed per backend, the
//! conditions record and writing `--json`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use weft_bench::lab::Backend;

use super::generator::TxKind;
use super::result::{RunConditions, VETH_NOTE};
use super::testbed::{PathKind, Testbed, TestbedOptions};
use crate::options;

/// Flags both suites take.
#[derive(Debug, Clone)]
pub struct Common {
    /// `--backends vxlan[,host-gw]`.
    pub backends: Vec<Backend>,
    /// `--paths kernel,weft-encap,weft-decap`.
    pub paths: Vec<PathKind>,
    /// `--sizes 64,512,1450`.
    pub sizes: Vec<usize>,
    /// `--flows 1,10000`.
    pub flows: Vec<u32>,
    /// `--rounds N`.
    pub rounds: u32,
    /// `--secs S` per run.
    pub secs: f64,
    /// `--generator af-xdp|af-packet`.
    pub generator: TxKind,
    /// `--weft-busy-poll true|false`.
    pub weft_busy_poll: bool,
    /// `--json FILE`.
    pub json: Option<PathBuf>,
}

/// The help text of the common flags.
pub const COMMON_USAGE: &str =
    "  --backends vxlan[,host-gw]  flannel backends, one lab each (default vxlan,host-gw)
  --paths LIST                kernel,weft-encap,weft-decap (default all three)
  --rounds N                  rounds; paths alternate inside each round
  --secs S                    seconds per run
  --generator af-xdp|af-packet  the generator's socket (default af-xdp)
  --weft-busy-poll BOOL       weft's workers.busy_poll (default false: weft's adaptive idle)
  --json FILE                 write every figure as JSON";

impl Common {
    /// Defaults with the suite's own sizes, flows, rounds and seconds.
    pub fn new(sizes: &[usize], flows: &[u32], rounds: u32, secs: f64) -> Self {
        Common {
            backends: vec![Backend::Vxlan, Backend::HostGw],
            paths: PathKind::ALL.to_vec(),
            sizes: sizes.to_vec(),
            flows: flows.to_vec(),
            rounds,
            secs,
            generator: TxKind::AfXdp,
            weft_busy_poll: false,
            json: None,
        }
    }

    /// Takes `flag value` if it is a common flag; `Ok(false)` if it is not.
    pub fn take(&mut self, flag: &str, value: &str, usage: &str) -> anyhow::Result<bool> {
        match flag {
            "--backends" => {
                self.backends = value
                    .split(',')
                    .map(|b| Backend::parse(b).map_err(anyhow::Error::from))
                    .collect::<Result<_, _>>()?;
            }
            "--paths" => self.paths = value.split(',').map(PathKind::parse).collect::<Result<_, _>>()?,
            "--sizes" => self.sizes = options::list(flag, value, usage)?,
            "--flows" => self.flows = options::list(flag, value, usage)?,
            "--rounds" => self.rounds = options::value(flag, value, usage)?,
            "--secs" => self.secs = options::value(flag, value, usage)?,
            "--generator" => self.generator = TxKind::parse(value)?,
            "--weft-busy-poll" => self.weft_busy_poll = options::value(flag, value, usage)?,
            "--json" => self.json = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        use super::frame::{MAX_FLOWS, MAX_FRAME_SIZE, MIN_FRAME_SIZE};
        anyhow::ensure!(self.rounds >= 1, "--rounds must be at least 1");
        anyhow::ensure!(self.secs > 0.0 && self.secs <= 600.0, "--secs must be in (0, 600]");
        for &s in &self.sizes {
            anyhow::ensure!(
                (MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&s),
                "--sizes: {s} is outside {MIN_FRAME_SIZE}..={MAX_FRAME_SIZE} (frame with FCS; pod MTU 1450)"
            );
        }
        for &f in &self.flows {
            anyhow::ensure!((1..=MAX_FLOWS).contains(&f), "--flows: {f} is outside 1..={MAX_FLOWS}");
        }
        for b in &self.backends {
            anyhow::ensure!(
                *b != Backend::Ipip,
                "--backends: ipip has no kernel node here (no ipip module), nothing to compare with"
            );
        }
        Ok(())
    }

    /// Builds the testbed for `backend`.
    pub fn testbed(&self, backend: Backend) -> anyhow::Result<Testbed> {
        eprintln!(
            "[lab] {}: building the lab (2 kernel-flannel nodes, 1 weft node) …",
            backend.flannel_name()
        );
        Testbed::up(&TestbedOptions { backend, weft_busy_poll: self.weft_busy_poll })
    }

    /// The conditions record of a suite that started at `started` with `load_before`.
    pub fn conditions(&self, started: Instant, load_before: [f64; 3], pinned: bool) -> RunConditions {
        RunConditions {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_before,
            load_after: crate::machine::load(),
            elapsed_secs: started.elapsed().as_secs_f64(),
            generator: match self.generator {
                TxKind::AfXdp => "af-xdp",
                TxKind::AfPacket => "af-packet",
            }
            .into(),
            weft_busy_poll: self.weft_busy_poll,
            pinned,
            note: VETH_NOTE.into(),
        }
    }

    /// The run duration.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.secs)
    }

    /// Prints the suite's time and load, then writes `report` to `--json FILE` if given.
    pub fn finish(&self, conditions: &RunConditions, report: &impl Serialize) -> anyhow::Result<()> {
        println!(
            "\n{:.0} s (lab up and down included), load {:?} -> {:?}",
            conditions.elapsed_secs, conditions.load_before, conditions.load_after
        );
        if let Some(path) = &self.json {
            let text = serde_json::to_string_pretty(report).context("encoding the report")?;
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("[lab] wrote {}", path.display());
        }
        Ok(())
    }
}

/// `10k` for 10000, `1` for 1.
pub fn flows_label(flows: u32) -> String {
    if flows >= 1000 && flows % 1000 == 0 { format!("{}k", flows / 1000) } else { flows.to_string() }
}

/// `812.3k` style rate.
pub fn kpps(pps: f64) -> String {
    format!("{:.1}k", pps / 1000.0)
}
