//! `weft-bench latency`: one-way latency of timestamped frames at fixed rates — 10 %, 50 %
//! and 90 % of each path's capacity, measured first in the same run at full speed — through
//! weft and through the kernel, paths alternating; HdrHistogram p50/p99/p99.9/max and a
//! percentile curve per run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::common::{COMMON_USAGE, Common, flows_label, kpps};
use super::result::{CurvePoint, LatencyRecord, LatencyReport, VETH_NOTE};
use super::run::{RunSpec, measure};
use crate::options;

/// Percentiles of the curve each record carries.
pub const CURVE: [f64; 24] = [
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0, 97.5, 98.0, 99.0,
    99.5, 99.75, 99.9, 99.95, 99.99, 99.999, 100.0,
];

fn usage() -> String {
    format!(
        "usage: weft-bench latency [options]

The lab of `weft-bench lab`; per path its capacity (delivered pps at full speed) is measured
first, then timestamped frames are sent at fixed fractions of it; the receiving pod records
one-way latency (CLOCK_MONOTONIC, shared by all namespaces) into an HdrHistogram.

  --loads LIST                percent of capacity (default 10,50,90)
  --capacity-secs S           full-speed run that measures capacity (default 1)
  --sizes LIST                frame sizes with FCS (default 64)
  --flows LIST                flow counts (default 1)
{COMMON_USAGE}
defaults: --rounds 1 --secs 2"
    )
}

/// The summary of a histogram.
pub fn summarize(h: &Histogram<u64>) -> (u64, u64, u64, u64, u64, f64, Vec<CurvePoint>) {
    let curve = CURVE.iter().map(|&p| CurvePoint { percentile: p, ns: h.value_at_percentile(p) }).collect();
    (
        h.min(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        h.mean(),
        curve,
    )
}

/// Runs the suite.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let usage = usage();
    let mut c = Common::new(&[64], &[1], 1, 2.0);
    let mut loads = vec![10.0, 50.0, 90.0];
    let mut capacity_secs = 1.0;
    for (flag, value) in options::pairs(args, &usage)? {
        match flag {
            "--loads" => loads = options::list(flag, value, &usage)?,
            "--capacity-secs" => capacity_secs = options::value(flag, value, &usage)?,
            _ if c.take(flag, value, &usage)? => {}
            _ => anyhow::bail!("unknown option {flag}\n{usage}"),
        }
    }
    c.validate()?;
    anyhow::ensure!(loads.iter().all(|l| *l > 0.0 && *l <= 100.0), "--loads: percentages in (0, 100]");
    anyhow::ensure!(capacity_secs > 0.0 && capacity_secs <= 60.0, "--capacity-secs must be in (0, 60]");
    let (started, load_before) = (Instant::now(), crate::machine::load());
    let per_backend = c.sizes.len() * c.flows.len() * c.paths.len() * (1 + c.rounds as usize * loads.len());
    let total = c.backends.len() * per_backend;
    let (mut records, mut statuses, mut pinned, mut n) = (Vec::new(), Vec::new(), true, 0);
    for &backend in &c.backends {
        let bed = c.testbed(backend)?;
        pinned &= bed.pinned;
        let b = backend.flannel_name();
        for &frame_size in &c.sizes {
            for &flows in &c.flows {
                let mut capacity = HashMap::new();
                for &path in &c.paths {
                    n += 1;
                    eprint!(
                        "[latency {n}/{total}] {b} {} {frame_size}B {} flows capacity … ",
                        path.name(),
                        flows_label(flows)
                    );
                    let spec = RunSpec::full_speed(
                        path,
                        frame_size,
                        flows,
                        Duration::from_secs_f64(capacity_secs),
                        c.generator,
                    );
                    let o = measure(&bed, &spec)?;
                    eprintln!("{}pps delivered", kpps(o.delivered_pps()));
                    capacity.insert(path, o.delivered_pps());
                }
                for round in 1..=c.rounds {
                    for &load in &loads {
                        for &path in &c.paths {
                            n += 1;
                            let cap = capacity[&path];
                            let rate = (cap * load / 100.0).max(1.0);
                            eprint!(
                                "[latency {n}/{total}] {b} {} {frame_size}B {} flows {load}% ({}pps) round {round} … ",
                                path.name(),
                                flows_label(flows),
                                kpps(rate)
                            );
                            let spec = RunSpec {
                                path,
                                frame_size,
                                flows,
                                duration: c.duration(),
                                rate: Some(rate),
                                latency: true,
                                tx: c.generator,
                            };
                            let o = measure(&bed, &spec)?;
                            let Some(h) = o.sink.latency.as_ref() else { continue };
                            let (min_ns, p50_ns, p99_ns, p999_ns, max_ns, mean_ns, curve) = summarize(h);
                            eprintln!(
                                "p50 {:.1}µs p99 {:.1}µs p99.9 {:.1}µs max {:.1}µs, lost {}",
                                p50_ns as f64 / 1e3,
                                p99_ns as f64 / 1e3,
                                p999_ns as f64 / 1e3,
                                max_ns as f64 / 1e3,
                                o.generator.sent.saturating_sub(o.sink.delivered)
                            );
                            records.push(LatencyRecord {
                                key: spec.key("latency", backend, round),
                                load_percent: load,
                                capacity_pps: cap,
                                rate_pps: rate,
                                generator_pps: o.generator.pps(),
                                secs: o.generator.secs,
                                samples: h.len(),
                                lost: o.generator.sent.saturating_sub(o.sink.delivered),
                                min_ns,
                                p50_ns,
                                p99_ns,
                                p999_ns,
                                max_ns,
                                mean_ns,
                                curve,
                            });
                        }
                    }
                }
            }
        }
        statuses.extend(bed.weft_status());
        eprintln!("[latency] {b}: tearing the lab down");
    }
    print_table(&records);
    let conditions = c.conditions(started, load_before, pinned);
    let report = LatencyReport { conditions: conditions.clone(), records, weft_status: statuses };
    c.finish(&conditions, &report)
}

fn print_table(records: &[LatencyRecord]) {
    println!("\n{VETH_NOTE}\n");
    println!("One-way latency, pod to pod (µs; goal: weft p99 <= kernel p99 at the same load):\n");
    println!(
        "| backend | path | frame | flows | load | rate kpps | generator kpps | samples | lost | p50 | p99 | p99.9 | max |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in records {
        println!(
            "| {} | {} | {} | {} | {}% | {:.1} | {:.1} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.key.backend,
            r.key.path,
            r.key.frame_size,
            flows_label(r.key.flows),
            r.load_percent,
            r.rate_pps / 1e3,
            r.generator_pps / 1e3,
            r.samples,
            r.lost,
            r.p50_ns as f64 / 1e3,
            r.p99_ns as f64 / 1e3,
            r.p999_ns as f64 / 1e3,
            r.max_ns as f64 / 1e3
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reads_percentiles_from_the_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, super::super::sink::MAX_LATENCY_NS, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let (min, p50, p99, p999, max, mean, curve) = summarize(&h);
        assert_eq!(min, 1000);
        assert!((499_000..=501_000).contains(&p50), "{p50}");
        assert!((989_000..=991_000).contains(&p99), "{p99}");
        assert!((998_000..=1_001_000).contains(&p999), "{p999}");
        assert!((999_000..=1_001_000).contains(&max), "{max}");
        assert!((mean - 500_500.0).abs() < 1000.0, "{mean}");
        assert_eq!(curve.len(), CURVE.len());
        assert!(curve.windows(2).all(|w| w[0].ns <= w[1].ns), "the curve never falls");
    }
}
