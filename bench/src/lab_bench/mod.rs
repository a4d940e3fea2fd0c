//! The lab benchmarks, weft against the kernel's data path in one netns lab (SPEC §6):
//! `weft-bench lab` (full-speed packet rates, [`pps`]) and `weft-bench latency` (one-way
//! latency at fixed rates, [`latency`]) and `weft-bench idle` (CPU of an idle weft node's
//! workers, [`idle`]) and `weft-bench tools` (sockperf and iperf3 between pods, [`tools`]).
//!
//! - [`testbed`]: the lab (n1, n2 kernel flannel; n3 weft) and the three paths on it.
//! - [`frame`]: the tagged UDP test frame (run id, sequence, send time).
//! - [`generator`]: AF_XDP (or AF_PACKET) transmit in the sending pod, full speed or paced.
//! - [`sink`]: AF_XDP receive in the receiving pod: counts this run's frames, latencies.
//! - [`netns`]: generator and sink are threads that enter the pods' namespaces.
//! - [`run`]: one measured run (sink up, generator, drain, reports).
//! - [`result`]: the serde records `--json` writes, ratios and medians.
//! - [`common`]: flags both suites share.

pub mod common;
pub mod frame;
pub mod generator;
pub mod idle;
pub mod latency;
pub mod netns;
pub mod pps;
pub mod result;
pub mod run;
pub mod sink;
pub mod testbed;
pub mod tools;
#[cfg(test)]
mod traffic_test;
