//! What `weft-bench lab` and `weft-bench latency` measure, as serde types: `--json FILE`
//! writes a [`LabReport`] or a [`LatencyReport`]; the report renderer reads them back.
//!
//! Rates are frames per second. `frame_size` is the Ethernet frame with FCS (a 64-byte
//! frame is 60 bytes on the veth). Every record names its `path` (`kernel`, `weft-encap`,
//! `weft-decap`) and `engine` (`kernel` or `weft`: whether a weft node is on the path).

use serde::{Deserialize, Serialize};

use crate::stats::median;

/// Said in every report: how to read delivered against offered on veths.
pub const VETH_NOTE: &str = "On veth the kernel data path runs in the sender's softirq (the \
    generator's core does the encap, the underlay bridge, the decap and the delivery), so the \
    generator's rate is throttled by the path itself: delivered pps at the receiving pod is what \
    is compared. 2 cores: the generator is pinned to core 0 and weft's worker to core 1; one \
    weft node at a time is measured against a kernel peer.";

/// The machine and run conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConditions {
    /// `nproc`.
    pub cores: usize,
    /// `/proc/loadavg`'s 1/5/15-minute load before the suite.
    pub load_before: [f64; 3],
    /// The same after.
    pub load_after: [f64; 3],
    /// Seconds the suite took, lab up and down included.
    pub elapsed_secs: f64,
    /// The generator's socket (`af-xdp` or `af-packet`).
    pub generator: String,
    /// weft's `workers.busy_poll`.
    pub weft_busy_poll: bool,
    /// Generator and weft worker pinned to cores 0 and 1.
    pub pinned: bool,
    /// [`VETH_NOTE`].
    pub note: String,
}

/// What names a run: suite, backend, path, engine, frame size, flows, round. Records carry
/// it flattened (its fields sit beside the record's own in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    /// `"lab"` or `"latency"`.
    pub suite: String,
    /// `vxlan` or `host-gw`.
    pub backend: String,
    /// `kernel`, `weft-encap` or `weft-decap`.
    pub path: String,
    /// `kernel` or `weft`.
    pub engine: String,
    /// Ethernet frame size with FCS.
    pub frame_size: usize,
    /// Distinct flows (UDP source ports).
    pub flows: u32,
    /// Round (1-based); paths alternate within a round.
    pub round: u32,
}

/// One run of one path at full speed (`weft-bench lab`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpsRecord {
    /// Which run.
    #[serde(flatten)]
    pub key: RunKey,
    /// Seconds the generator sent.
    pub secs: f64,
    /// The generator's own rate (frames its socket completed per second).
    pub generator_pps: f64,
    /// Frames per second that entered the path (generator minus the pod veth's drops).
    pub offered_pps: f64,
    /// Frames per second the receiving pod got.
    pub delivered_pps: f64,
    /// 1 − delivered / sent.
    pub loss: f64,
    /// Frames sent.
    pub sent: u64,
    /// Frames delivered.
    pub delivered: u64,
    /// Frames of earlier runs seen by the sink during this one (not counted).
    pub stray: u64,
    /// Drops at the sink socket itself (non-zero: the sink was the bottleneck).
    pub sink_drops: u64,
    /// Frames of this run that arrived with a lower sequence number than the one before.
    #[serde(default)]
    pub reordered: u64,
    /// weft paths: frames weft's engine received on the path's ingress port during the run
    /// (`sent - weft_rx` were lost before weft, in the kernel's XDP/AF_XDP receive).
    #[serde(default)]
    pub weft_rx: Option<u64>,
    /// weft paths: frames the engine sent on the egress port.
    #[serde(default)]
    pub weft_tx: Option<u64>,
}

/// weft's delivered pps over the kernel path's, same frame size, flows and round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioSummary {
    /// Backend.
    pub backend: String,
    /// The weft path (`weft-encap` or `weft-decap`).
    pub path: String,
    /// Frame size.
    pub frame_size: usize,
    /// Flows.
    pub flows: u32,
    /// Rounds that had both paths.
    pub rounds: usize,
    /// Smallest per-round ratio.
    pub min: f64,
    /// Median per-round ratio.
    pub median: f64,
    /// Largest per-round ratio.
    pub max: f64,
    /// Median delivered pps of the weft path.
    pub weft_delivered_pps: f64,
    /// Median delivered pps of the kernel path.
    pub kernel_delivered_pps: f64,
}

/// `weft-bench lab --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabReport {
    /// Machine and conditions.
    pub conditions: RunConditions,
    /// Every run.
    pub records: Vec<PpsRecord>,
    /// weft/kernel per weft path, frame size and flows.
    pub ratios: Vec<RatioSummary>,
    /// `weft status --json` of the weft node after the runs, per backend (drops by reason).
    pub weft_status: Vec<serde_json::Value>,
}

/// One point of a latency percentile curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Percentile, 0..=100.
    pub percentile: f64,
    /// One-way latency at it, ns.
    pub ns: u64,
}

/// One run of one path at a fixed rate (`weft-bench latency`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyRecord {
    /// Which run.
    #[serde(flatten)]
    pub key: RunKey,
    /// Percent of the path's measured capacity.
    pub load_percent: f64,
    /// The path's capacity (delivered pps at full speed, measured first in this run).
    pub capacity_pps: f64,
    /// The target rate.
    pub rate_pps: f64,
    /// The generator's achieved rate.
    pub generator_pps: f64,
    /// Seconds sent.
    pub secs: f64,
    /// Latency samples (frames delivered).
    pub samples: u64,
    /// Frames sent but not delivered.
    pub lost: u64,
    /// Smallest one-way latency, ns.
    pub min_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Percentile curve for plots.
    pub curve: Vec<CurvePoint>,
}

/// `weft-bench latency --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    /// Machine and conditions.
    pub conditions: RunConditions,
    /// Every run.
    pub records: Vec<LatencyRecord>,
    /// `weft status --json` of the weft node after the runs, per backend.
    pub weft_status: Vec<serde_json::Value>,
}

/// Per weft path, size and flows: the per-round ratios of delivered pps to the kernel path.
pub fn ratios(records: &[PpsRecord]) -> Vec<RatioSummary> {
    let mut out = Vec::new();
    let mut keys: Vec<(String, String, usize, u32)> = records
        .iter()
        .filter(|r| r.key.engine == "weft")
        .map(|r| (r.key.backend.clone(), r.key.path.clone(), r.key.frame_size, r.key.flows))
        .collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    for (backend, path, frame_size, flows) in keys {
        let of = |p: &str| -> Vec<&PpsRecord> {
            records
                .iter()
                .filter(|r| {
                    r.key.backend == backend
                        && r.key.path == p
                        && r.key.frame_size == frame_size
                        && r.key.flows == flows
                })
                .collect()
        };
        let mut per_round = Vec::new();
        let (weft_runs, kernel_runs) = (of(&path), of("kernel"));
        for w in &weft_runs {
            if let Some(k) = kernel_runs.iter().find(|k| k.key.round == w.key.round)
                && k.delivered_pps > 0.0
            {
                per_round.push(w.delivered_pps / k.delivered_pps);
            }
        }
        if per_round.is_empty() {
            continue;
        }
        let weft: Vec<f64> = weft_runs.iter().map(|r| r.delivered_pps).collect();
        let kernel: Vec<f64> = kernel_runs.iter().map(|r| r.delivered_pps).collect();
        out.push(RatioSummary {
            backend: backend.clone(),
            path: path.clone(),
            frame_size,
            flows,
            rounds: per_round.len(),
            min: per_round.iter().copied().fold(f64::INFINITY, f64::min),
            median: median(&per_round),
            max: per_round.iter().copied().fold(0.0, f64::max),
            weft_delivered_pps: median(&weft),
            kernel_delivered_pps: median(&kernel),
        });
    }
    out
}

/// Records for tests of the suites and of the report.
#[cfg(test)]
pub(crate) mod samples {
    use super::*;

    /// The key of a 64-byte vxlan run of `path` (engine from the path's name).
    pub fn key(suite: &str, path: &str, flows: u32, round: u32) -> RunKey {
        RunKey {
            suite: suite.into(),
            backend: "vxlan".into(),
            path: path.into(),
            engine: if path == "kernel" { "kernel" } else { "weft" }.into(),
            frame_size: 64,
            flows,
            round,
        }
    }

    /// A lab run that delivered `delivered_pps` of `generator_pps` for 2 s.
    pub fn pps(path: &str, flows: u32, round: u32, delivered_pps: f64, generator_pps: f64) -> PpsRecord {
        PpsRecord {
            key: key("lab", path, flows, round),
            secs: 2.0,
            generator_pps,
            offered_pps: generator_pps,
            delivered_pps,
            loss: 1.0 - delivered_pps / generator_pps,
            sent: (generator_pps * 2.0) as u64,
            delivered: (delivered_pps * 2.0) as u64,
            stray: 0,
            sink_drops: 0,
            reordered: 0,
            weft_rx: None,
            weft_tx: None,
        }
    }

    /// Conditions of a pinned 2-core run.
    pub fn conditions() -> RunConditions {
        RunConditions {
            cores: 2,
            load_before: [0.5, 0.5, 0.5],
            load_after: [1.0, 1.0, 1.0],
            elapsed_secs: 60.0,
            generator: "af-xdp".into(),
            weft_busy_poll: false,
            pinned: true,
            note: "note.".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::samples::{conditions, pps};
    use super::*;

    fn rec(path: &str, round: u32, delivered_pps: f64) -> PpsRecord {
        pps(path, 1, round, delivered_pps, delivered_pps)
    }

    #[test]
    fn ratios_pair_each_weft_run_with_the_kernel_run_of_its_round() {
        let records = vec![
            rec("kernel", 1, 100.0),
            rec("weft-encap", 1, 300.0),
            rec("kernel", 2, 200.0),
            rec("weft-encap", 2, 200.0),
            rec("kernel", 3, 100.0),
            rec("weft-encap", 3, 200.0),
            rec("weft-decap", 1, 50.0),
        ];
        let r = ratios(&records);
        assert_eq!(r.len(), 2);
        let encap = r.iter().find(|s| s.path == "weft-encap").unwrap();
        assert_eq!((encap.rounds, encap.min, encap.median, encap.max), (3, 1.0, 2.0, 3.0));
        assert_eq!((encap.weft_delivered_pps, encap.kernel_delivered_pps), (200.0, 100.0));
        let decap = r.iter().find(|s| s.path == "weft-decap").unwrap();
        assert_eq!((decap.rounds, decap.median), (1, 0.5));
    }

    #[test]
    fn a_report_survives_a_json_round_trip() {
        let report = LabReport {
            conditions: RunConditions { note: VETH_NOTE.into(), ..conditions() },
            records: vec![rec("kernel", 1, 100.0), rec("weft-decap", 1, 150.0)],
            ratios: ratios(&[rec("kernel", 1, 100.0), rec("weft-decap", 1, 150.0)]),
            weft_status: vec![serde_json::json!({"drops": {"fill_ring_empty": 3}})],
        };
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<LabReport>(&text).unwrap(), report);
    }
}
