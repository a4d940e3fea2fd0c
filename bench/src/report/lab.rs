//! The lab and latency sections of REPORT.md (weft vs the kernel data path) and their plots.

use std::fmt::Write;

use super::render::Plot;
use super::svg::{self, Series};
use crate::lab_bench::result::{LabReport, LatencyRecord, LatencyReport, PpsRecord};
use crate::stats::median;

/// The goal the lab reports against: weft delivers at least this many times the kernel's pps.
pub const LAB_GOAL_RATIO: f64 = 2.0;

fn flows_label(flows: u32) -> String {
    if flows >= 1000 && flows % 1000 == 0 {
        format!("{}k flows", flows / 1000)
    } else {
        format!("{flows} flow{}", if flows == 1 { "" } else { "s" })
    }
}

/// The (backend, frame size, flows) combinations in the order they ran.
fn cases<'a>(keys: impl Iterator<Item = (&'a str, usize, u32)>) -> Vec<(String, usize, u32)> {
    let mut out: Vec<(String, usize, u32)> = Vec::new();
    for (b, s, f) in keys {
        if !out.iter().any(|(ob, os, of)| ob == b && *os == s && *of == f) {
            out.push((b.to_owned(), s, f));
        }
    }
    out
}

fn paths<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

fn median_of<'a>(records: impl Iterator<Item = &'a PpsRecord>, f: fn(&PpsRecord) -> f64) -> Option<f64> {
    let v: Vec<f64> = records.map(f).filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| median(&v))
}

fn kpps(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.0}", v / 1e3))
}

/// Goal rows for the lab: weft ≥ 2x kernel VXLAN delivered pps.
pub fn lab_goals(lab: &LabReport, out: &mut String) {
    for r in &lab.ratios {
        let met = r.median >= LAB_GOAL_RATIO;
        let _ = writeln!(
            out,
            "| lab {} {} {} B {}: weft ≥ {LAB_GOAL_RATIO}x kernel delivered pps | {:.2}x median ({:.2}–{:.2}; {:.0} vs {:.0} kpps) | {} |",
            r.backend,
            r.path,
            r.frame_size,
            flows_label(r.flows),
            r.median,
            r.min,
            r.max,
            r.weft_delivered_pps / 1e3,
            r.kernel_delivered_pps / 1e3,
            if met {
                "yes".to_owned()
            } else {
                format!("no, {:.0} % short", (1.0 - r.median / LAB_GOAL_RATIO) * 100.0)
            }
        );
    }
}

/// Goal rows for latency: weft's p99 at most the kernel's, per path, size, flows and load.
pub fn latency_goals(lat: &LatencyReport, out: &mut String) {
    for (backend, size, flows) in
        cases(lat.records.iter().map(|r| (r.key.backend.as_str(), r.key.frame_size, r.key.flows)))
    {
        let of = |path: &str, load: f64| -> Option<f64> {
            let v: Vec<f64> = lat
                .records
                .iter()
                .filter(|r| r.key.backend == backend && r.key.frame_size == size && r.key.flows == flows)
                .filter(|r| r.key.path == path && r.load_percent == load)
                .map(|r| r.p99_ns as f64)
                .collect();
            (!v.is_empty()).then(|| median(&v))
        };
        let mut loads: Vec<f64> = lat.records.iter().map(|r| r.load_percent).collect();
        loads.sort_by(f64::total_cmp);
        loads.dedup();
        for path in paths(lat.records.iter().filter(|r| r.key.engine == "weft").map(|r| r.key.path.as_str()))
        {
            for &load in &loads {
                let (Some(w), Some(k)) = (of(&path, load), of("kernel", load)) else { continue };
                let _ = writeln!(
                    out,
                    "| latency {backend} {path} {size} B {} at {load:.0} %: p99 ≤ kernel's | {:.1} vs {:.1} µs | {} |",
                    flows_label(flows),
                    w / 1e3,
                    k / 1e3,
                    if w <= k {
                        "yes".to_owned()
                    } else {
                        format!("no, {:.0} % higher", (w / k - 1.0) * 100.0)
                    }
                );
            }
        }
    }
}

/// The lab section: delivered pps per path (medians over rounds), ratios, conditions.
pub fn lab_markdown(lab: &LabReport) -> String {
    let mut out = String::new();
    let c = &lab.conditions;
    let _ = writeln!(
        out,
        "{} Generator: {}; weft busy-poll: {}; pinned: {}; {} s with lab up/down; load {:.2} before, {:.2} after.\n",
        c.note,
        c.generator,
        c.weft_busy_poll,
        c.pinned,
        c.elapsed_secs.round(),
        c.load_before[0],
        c.load_after[0]
    );
    let names = paths(lab.records.iter().map(|r| r.key.path.as_str()));
    let _ = write!(out, "| backend | frame | flows |");
    for p in &names {
        let _ = write!(out, " {p} delivered kpps | {p} generator kpps | {p} loss |");
    }
    out.push('\n');
    out.push_str(&format!("|---|---:|---:|{}\n", "---:|---:|---:|".repeat(names.len())));
    for (backend, size, flows) in
        cases(lab.records.iter().map(|r| (r.key.backend.as_str(), r.key.frame_size, r.key.flows)))
    {
        let _ = write!(out, "| {backend} | {size} B | {} |", flows_label(flows));
        for p in &names {
            let backend = &backend;
            let runs = || {
                lab.records.iter().filter(move |r| {
                    &r.key.backend == backend
                        && r.key.frame_size == size
                        && r.key.flows == flows
                        && &r.key.path == p
                })
            };
            let loss = median_of(runs(), |r| r.loss);
            let _ = write!(
                out,
                " {} | {} | {} |",
                kpps(median_of(runs(), |r| r.delivered_pps)),
                kpps(median_of(runs(), |r| r.generator_pps)),
                loss.map_or("–".into(), |l| format!("{:.1} %", l * 100.0))
            );
        }
        out.push('\n');
    }
    out.push_str(
        "\nMedians over rounds. weft / kernel delivered pps, per round (same run, alternating):\n\n",
    );
    out.push_str("| backend | weft path | frame | flows | rounds | min | median | max |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for r in &lab.ratios {
        let _ = writeln!(
            out,
            "| {} | {} | {} B | {} | {} | {:.2}x | {:.2}x | {:.2}x |",
            r.backend,
            r.path,
            r.frame_size,
            flows_label(r.flows),
            r.rounds,
            r.min,
            r.median,
            r.max
        );
    }
    loss_breakdown(lab, &mut out);
    out
}

/// Where the frames of the weft paths are lost: sent by the generator, received by weft's
/// engine, sent by weft, delivered (sums over rounds, as shares of the sent frames).
fn loss_breakdown(lab: &LabReport, out: &mut String) {
    let weft: Vec<&PpsRecord> = lab.records.iter().filter(|r| r.weft_rx.is_some()).collect();
    if weft.is_empty() {
        return;
    }
    out.push_str(
        "\nWhere weft-path frames go (sums over rounds, share of the frames the generator sent): \
         what weft's engine never received was lost in the kernel's hand-off into its AF_XDP \
         receive ring, while the worker was not running.\n\n",
    );
    out.push_str("| backend | weft path | frame | flows | sent | weft rx | weft tx | delivered |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (backend, size, flows) in
        cases(weft.iter().map(|r| (r.key.backend.as_str(), r.key.frame_size, r.key.flows)))
    {
        for path in paths(weft.iter().map(|r| r.key.path.as_str())) {
            let runs: Vec<&&PpsRecord> = weft
                .iter()
                .filter(|r| {
                    r.key.backend == backend
                        && r.key.frame_size == size
                        && r.key.flows == flows
                        && r.key.path == path
                })
                .collect();
            let sent: u64 = runs.iter().map(|r| r.sent).sum();
            if sent == 0 {
                continue;
            }
            let share = |n: u64| format!("{:.1} %", n as f64 * 100.0 / sent as f64);
            let _ = writeln!(
                out,
                "| {backend} | {path} | {size} B | {} | {sent} | {} | {} | {} |",
                flows_label(flows),
                share(runs.iter().filter_map(|r| r.weft_rx).sum()),
                share(runs.iter().filter_map(|r| r.weft_tx).sum()),
                share(runs.iter().map(|r| r.delivered).sum()),
            );
        }
    }
}

/// Delivered kpps per case, one bar per path.
pub fn lab_plot(lab: &LabReport) -> Plot {
    let keys = cases(lab.records.iter().map(|r| (r.key.backend.as_str(), r.key.frame_size, r.key.flows)));
    let cats: Vec<String> = keys
        .iter()
        .map(|(b, s, f)| format!("{b} {s}B {}", flows_label(*f).replace(" flows", "").replace(" flow", "f")))
        .collect();
    let series: Vec<Series<f64>> = paths(lab.records.iter().map(|r| r.key.path.as_str()))
        .into_iter()
        .map(|p| Series {
            values: keys
                .iter()
                .map(|(b, s, f)| {
                    median_of(
                        lab.records.iter().filter(|r| {
                            &r.key.backend == b
                                && r.key.frame_size == *s
                                && r.key.flows == *f
                                && r.key.path == p
                        }),
                        |r| r.delivered_pps,
                    )
                    .map_or(f64::NAN, |v| v / 1e3)
                })
                .collect(),
            name: p,
        })
        .collect();
    Plot {
        file: "lab_pps.svg".into(),
        svg: svg::bars("lab: delivered kpps at the receiving pod", "kpps", &cats, &series),
    }
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

/// The latency section: one row per path and load (the median-p99 round).
pub fn latency_markdown(lat: &LatencyReport) -> String {
    let mut out = String::new();
    let c = &lat.conditions;
    let _ = writeln!(
        out,
        "One-way latency (send timestamp in the payload, CLOCK_MONOTONIC shared by every namespace) at fixed \
         rates relative to each path's capacity measured first in the same run. Generator: {}; {} s; load {:.2} before, {:.2} after. \
         Where weft's time goes on this lab (copy-mode AF_XDP transmit on a veth runs the receiving side's stack \
         in weft's context; a worker on a shared core waits for whole scheduler slices): bench/README.md, \
         \"lab and latency\".\n",
        c.generator,
        c.elapsed_secs.round(),
        c.load_before[0],
        c.load_after[0]
    );
    out.push_str("| backend | path | frame | flows | load | rate kpps | generator kpps | samples | lost | p50 µs | p99 µs | p99.9 µs | max µs |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &lat.records {
        let _ = writeln!(
            out,
            "| {} | {} | {} B | {} | {:.0} % (round {}) | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} |",
            r.key.backend,
            r.key.path,
            r.key.frame_size,
            flows_label(r.key.flows),
            r.load_percent,
            r.key.round,
            r.rate_pps / 1e3,
            r.generator_pps / 1e3,
            r.samples,
            r.lost,
            us(r.p50_ns),
            us(r.p99_ns),
            us(r.p999_ns),
            us(r.max_ns)
        );
    }
    out
}

/// One percentile-curve plot per load level (first round, first size/flows case).
pub fn latency_plots(lat: &LatencyReport) -> Vec<Plot> {
    let mut loads: Vec<f64> = lat.records.iter().map(|r| r.load_percent).collect();
    loads.sort_by(f64::total_cmp);
    loads.dedup();
    let Some((backend, size, flows)) =
        cases(lat.records.iter().map(|r| (r.key.backend.as_str(), r.key.frame_size, r.key.flows)))
            .into_iter()
            .next()
    else {
        return Vec::new();
    };
    loads
        .into_iter()
        .map(|load| {
            let pick: Vec<&LatencyRecord> = lat
                .records
                .iter()
                .filter(|r| {
                    r.key.backend == backend
                        && r.key.frame_size == size
                        && r.key.flows == flows
                        && r.load_percent == load
                })
                .collect();
            let series = paths(pick.iter().map(|r| r.key.path.as_str()))
                .into_iter()
                .filter_map(|p| {
                    let r = pick.iter().find(|r| r.key.path == p)?;
                    Some(Series {
                        name: p,
                        values: r.curve.iter().map(|c| (c.percentile, c.ns as f64 / 1e3)).collect(),
                    })
                })
                .collect::<Vec<_>>();
            Plot {
                file: format!("latency_{load:.0}pct.svg"),
                svg: svg::percentile_curves(
                    &format!("latency at {load:.0} % of capacity: {backend} {size} B {}", flows_label(flows)),
                    &series,
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab_bench::result::samples::{conditions, key};
    use crate::lab_bench::result::{CurvePoint, ratios};

    fn pps(path: &str, round: u32, delivered_pps: f64) -> PpsRecord {
        crate::lab_bench::result::samples::pps(path, 10_000, round, delivered_pps, delivered_pps * 1.25)
    }

    fn lat(path: &str, load: f64, p99_ns: u64) -> LatencyRecord {
        LatencyRecord {
            key: key("latency", path, 1, 1),
            load_percent: load,
            capacity_pps: 100_000.0,
            rate_pps: 1000.0 * load,
            generator_pps: 1000.0 * load,
            secs: 1.0,
            samples: 1000,
            lost: 0,
            min_ns: 1000,
            p50_ns: p99_ns / 2,
            p99_ns,
            p999_ns: p99_ns * 2,
            max_ns: p99_ns * 3,
            mean_ns: p99_ns as f64 / 2.0,
            curve: vec![
                CurvePoint { percentile: 50.0, ns: p99_ns / 2 },
                CurvePoint { percentile: 99.0, ns: p99_ns },
            ],
        }
    }

    #[test]
    fn lab_goals_compare_weft_with_the_kernel_per_round_and_say_how_far_off() {
        let records = vec![
            pps("kernel", 1, 100_000.0),
            pps("weft-encap", 1, 150_000.0),
            pps("kernel", 2, 100_000.0),
            pps("weft-encap", 2, 170_000.0),
        ];
        let lab =
            LabReport { conditions: conditions(), ratios: ratios(&records), records, weft_status: vec![] };
        let mut goals = String::new();
        lab_goals(&lab, &mut goals);
        assert!(goals.contains("| lab vxlan weft-encap 64 B 10k flows: weft ≥ 2x kernel delivered pps | 1.60x median (1.50–1.70; 160 vs 100 kpps) | no, 20 % short |"), "{goals}");
        let table = lab_markdown(&lab);
        assert!(
            table.contains("| vxlan | 64 B | 10k flows | 100 | 125 | 20.0 % | 160 | 200 | 20.0 % |"),
            "{table}"
        );
        let plot = lab_plot(&lab);
        assert_eq!(plot.svg.matches("<title>").count(), 2, "one bar per path: {}", plot.svg);
    }

    #[test]
    fn latency_goals_hold_weft_p99_against_the_kernel_at_each_load() {
        let l = LatencyReport {
            conditions: conditions(),
            records: vec![
                lat("kernel", 10.0, 40_000),
                lat("weft-decap", 10.0, 30_000),
                lat("kernel", 90.0, 40_000),
                lat("weft-decap", 90.0, 50_000),
            ],
            weft_status: vec![],
        };
        let mut goals = String::new();
        latency_goals(&l, &mut goals);
        assert!(
            goals.contains("weft-decap 64 B 1 flow at 10 %: p99 ≤ kernel's | 30.0 vs 40.0 µs | yes |"),
            "{goals}"
        );
        assert!(goals.contains("at 90 %: p99 ≤ kernel's | 50.0 vs 40.0 µs | no, 25 % higher |"), "{goals}");
        let plots = latency_plots(&l);
        assert_eq!(
            plots.iter().map(|p| p.file.as_str()).collect::<Vec<_>>(),
            ["latency_10pct.svg", "latency_90pct.svg"]
        );
        assert_eq!(plots[0].svg.matches("<polyline").count(), 2);
        assert!(latency_markdown(&l).contains("| vxlan | weft-decap | 64 B | 1 flow | 90 % (round 1) | 90 | 90 | 1000 | 0 | 25.0 | 50.0 | 100.0 | 150.0 |"));
    }
}
