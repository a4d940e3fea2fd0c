//! Everything one `weft-bench all` run measured: the JSON file next to REPORT.md.

use serde::{Deserialize, Serialize};

use super::criterion::MicroBench;
use super::profile::PathProfile;
use crate::bgp::BgpResult;
use crate::control::ControlResult;
use crate::core::CoreResult;
use crate::lab_bench::idle::IdleReport;
use crate::lab_bench::result::{LabReport, LatencyReport};
use crate::lab_bench::tools::ToolsReport;
use crate::lpm::LpmResult;
use crate::machine::Machine;
use crate::pods::PodsResult;
use crate::policy::PolicyResult;

/// How one suite went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteRun {
    /// The suite's name (`weft-bench <name>`).
    pub name: String,
    /// The options it ran with.
    pub args: Vec<String>,
    /// Wall time, seconds.
    pub secs: f64,
    /// Why it failed, if it did (its last stderr lines).
    pub error: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// weft's version.
    pub version: String,
    /// `git describe --always --dirty` of the tree, when available.
    pub commit: Option<String>,
    /// Start, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Wall time of the whole run, seconds.
    pub secs: f64,
    /// The machine, described at the start.
    pub machine: Machine,
    /// Load averages at the end.
    pub load_end: [f64; 3],
    /// The suites in the order they ran.
    pub suites: Vec<SuiteRun>,
    /// `cargo bench -p weft-encap` results found under target/criterion.
    pub encap: Vec<MicroBench>,
    /// `weft-bench core`.
    pub core: Option<CoreResult>,
    /// `weft-bench lpm`.
    pub lpm: Option<LpmResult>,
    /// `weft-bench control`.
    pub control: Option<ControlResult>,
    /// perf profiles of the core paths that missed their goal.
    #[serde(default)]
    pub profiles: Vec<PathProfile>,
    /// Why there are no profiles, when there are none and some path missed its goal.
    #[serde(default)]
    pub profiles_note: Option<String>,
    /// `weft-bench lab`.
    pub lab: Option<LabReport>,
    /// `weft-bench latency`.
    pub latency: Option<LatencyReport>,
    /// `weft-bench idle`.
    #[serde(default)]
    pub idle: Option<IdleReport>,
    /// `weft-bench tools`.
    #[serde(default)]
    pub tools: Option<ToolsReport>,
    /// `weft-bench pods`.
    #[serde(default)]
    pub pods: Option<PodsResult>,
    /// `weft-bench bgp`.
    #[serde(default)]
    pub bgp: Option<BgpResult>,
    /// `weft-bench policy`.
    #[serde(default)]
    pub policy: Option<PolicyResult>,
}

impl Report {
    /// A report with no suite results yet.
    pub fn new(
        commit: Option<String>,
        started_unix: u64,
        machine: Machine,
        encap: Vec<MicroBench>,
    ) -> Report {
        Report {
            version: env!("CARGO_PKG_VERSION").into(),
            commit,
            started_unix,
            secs: 0.0,
            machine,
            load_end: [0.0; 3],
            suites: Vec::new(),
            encap,
            core: None,
            lpm: None,
            control: None,
            profiles: Vec::new(),
            profiles_note: None,
            lab: None,
            latency: None,
            idle: None,
            tools: None,
            pods: None,
            bgp: None,
            policy: None,
        }
    }
}
