//! REPORT.md and its SVG plots from a [`Report`].

use std::fmt::Write;
use std::path::Path;

use super::lab;
use super::model::Report;
use super::svg::{self, Series};
use crate::core::{POLICY_FLAT_LOSS, POLICY_GOAL_LOSS, PolicySweep};

/// The goal the core benchmark reports against: pipeline within this factor of the floor.
pub const CORE_GOAL_RATIO: f64 = 3.0;

/// One picture of the report: its file name and contents.
pub struct Plot {
    /// File name inside the results directory.
    pub file: String,
    /// SVG text.
    pub svg: String,
}

fn core_plot(r: &Report) -> Option<Plot> {
    let core = r.core.as_ref()?;
    let cats: Vec<String> = core.paths.iter().map(|p| p.path.clone()).collect();
    let series = [
        Series { name: "weft pipeline".into(), values: core.paths.iter().map(|p| p.mpps()).collect() },
        Series {
            name: "touch-only floor".into(),
            values: core.paths.iter().map(|p| p.floor_mpps()).collect(),
        },
    ];
    Some(Plot {
        file: "core_mpps.svg".into(),
        svg: svg::bars("core: Mpps per path, one core, 64 B", "Mpps", &cats, &series),
    })
}

fn lpm_plot(r: &Report) -> Option<Plot> {
    let lpm = r.lpm.as_ref()?;
    let cats: Vec<String> = lpm.rows.iter().map(|row| format!("{} prefixes", row.prefixes)).collect();
    let m = |f: fn(&crate::lpm::LpmRow) -> f64| lpm.rows.iter().map(|row| f(row) / 1e6).collect();
    let series = [
        Series { name: "weft batch".into(), values: m(|row| row.weft_batch) },
        Series { name: "weft single".into(), values: m(|row| row.weft_single) },
        Series { name: "prefix-trie".into(), values: m(|row| row.trie) },
        Series { name: "weft batch, churn".into(), values: m(|row| row.churn_busy) },
    ];
    Some(Plot {
        file: "lpm_lookups.svg".into(),
        svg: svg::bars("lpm: M lookups/s, random addresses", "M lookups/s", &cats, &series),
    })
}

/// Every plot the report has data for.
pub fn plots(r: &Report) -> Vec<Plot> {
    let mut out: Vec<Plot> =
        [core_plot(r), lpm_plot(r), r.lab.as_ref().map(lab::lab_plot)].into_iter().flatten().collect();
    out.extend(r.latency.as_ref().map(lab::latency_plots).unwrap_or_default());
    out
}

fn goals(r: &Report, out: &mut String) {
    out.push_str("## Goals\n\n| goal | measured | met |\n|---|---|---|\n");
    if let Some(core) = &r.core {
        for p in &core.paths {
            let _ = writeln!(
                out,
                "| core {}: within {CORE_GOAL_RATIO}x of the touch-only floor | {:.2}x ({:.2} vs {:.2} Mpps) | {} |",
                p.path,
                p.ratio(),
                p.mpps(),
                p.floor_mpps(),
                if p.ratio() <= CORE_GOAL_RATIO {
                    "yes".to_owned()
                } else {
                    format!("no, {:.0} % over", (p.ratio() / CORE_GOAL_RATIO - 1.0) * 100.0)
                }
            );
        }
    }
    if let Some(sweep) = r.core.as_ref().and_then(|c| c.sweep.as_ref()) {
        policy_goals(sweep, out);
    }
    if let Some(l) = &r.lab {
        lab::lab_goals(l, out);
    }
    if let Some(l) = &r.latency {
        lab::latency_goals(l, out);
    }
    if let Some(idle) = &r.idle {
        use crate::lab_bench::idle::IDLE_GOAL_PERCENT;
        for w in idle.records.iter().filter(|w| !w.busy_poll) {
            let _ = writeln!(
                out,
                "| idle {} {}: worker under {IDLE_GOAL_PERCENT} % busy | {:.1} % | {} |",
                w.backend,
                w.worker,
                w.busy_percent,
                if w.busy_percent <= IDLE_GOAL_PERCENT { "yes" } else { "no" }
            );
        }
    }
    if let Some(bgp) = &r.bgp {
        use crate::bgp::LEARN_GOAL_MS;
        if let Some(s) = bgp.largest() {
            let _ = writeln!(
                out,
                "| bgp: a {}-prefix table from one peer in the FIB under {LEARN_GOAL_MS:.0} ms{} | {:.0} ms | {} |",
                s.prefixes,
                if s.prefixes < 100_000 { " (goal stated for 100k)" } else { "" },
                s.learn_ms,
                if s.learn_ms <= LEARN_GOAL_MS {
                    "yes".to_owned()
                } else {
                    format!("no, {:.0} % over", (s.learn_ms / LEARN_GOAL_MS - 1.0) * 100.0)
                }
            );
        }
    }
    if let Some(p) = &r.policy {
        use crate::policy::POLICY_GOAL_P99_MS;
        if let Some(g) = p.goal() {
            let _ = writeln!(
                out,
                "| policy: with {} policies stored, a policy put acknowledged by etcd -> enforced on the node, p99 under {POLICY_GOAL_P99_MS:.0} ms | p99 {:.2} ms (p50 {:.2} ms) | {} |",
                p.policies,
                g.p99_ms,
                g.p50_ms,
                if g.p99_ms <= POLICY_GOAL_P99_MS { "yes" } else { "no" }
            );
        }
    }
    if let Some(p) = &r.pods {
        use crate::pods::IDLE_GOAL;
        let ratio = p.idle_ratio();
        let _ = writeln!(
            out,
            "| pods: one flow with {} idle pods within {:.0} % of 1 idle pod | {:.1} % | {} |",
            p.idle_pods,
            IDLE_GOAL * 100.0,
            ratio * 100.0,
            if ratio >= 1.0 - IDLE_GOAL { "yes" } else { "no" }
        );
    }
    out.push('\n');
}

/// The network policy goals of the core sweep: at the largest policy count within
/// [`POLICY_GOAL_LOSS`] of no policy, and flat (within [`POLICY_FLAT_LOSS`]) from the smallest
/// count to the largest, either way.
fn policy_goals(sweep: &PolicySweep, out: &mut String) {
    let (Some(&lo), Some(&hi)) = (sweep.levels.get(1), sweep.levels.last()) else {
        return;
    };
    for p in &sweep.paths {
        let loss = p.loss();
        let _ = writeln!(
            out,
            "| core {} with {hi} policies + {} CIDRs: within {:.0} % of no policy | {:.1} % {} ({:.2} vs {:.2} Mpps) | {} |",
            p.path,
            sweep.cidrs,
            POLICY_GOAL_LOSS * 100.0,
            loss.abs() * 100.0,
            if loss >= 0.0 { "slower" } else { "faster" },
            p.mpps(p.ns_per_packet.len() - 1),
            p.mpps(0),
            if loss <= POLICY_GOAL_LOSS { "yes" } else { "no" }
        );
        let flat = p.flat_loss();
        let _ = writeln!(
            out,
            "| core {}: flat from {lo} to {hi} policies (within {:.0} % either way) | {:.1} % {} at {hi} ({:.2} vs {:.2} Mpps) | {} |",
            p.path,
            POLICY_FLAT_LOSS * 100.0,
            flat.abs() * 100.0,
            if flat >= 0.0 { "slower" } else { "faster" },
            p.mpps(p.ns_per_packet.len() - 1),
            p.mpps(1),
            if flat.abs() <= POLICY_FLAT_LOSS { "yes" } else { "no" }
        );
    }
}

/// "Where the time goes" for the core paths that missed their goal.
fn profiles(r: &Report, out: &mut String) {
    if r.profiles.is_empty() && r.profiles_note.is_none() {
        return;
    }
    out.push_str("### Where the time goes (perf, paths that missed the goal)\n\n");
    if let Some(note) = &r.profiles_note {
        let _ = writeln!(out, "No profile: {note}.\n");
    }
    for p in &r.profiles {
        let _ = writeln!(
            out,
            "`{}` — the timed loop of the pipeline alone (no floor runs, setup not sampled), symbols with ≥ 1.5 % of samples; the pipeline's stages are inlined into `process_batch`, the replay port's rx/tx and memcpy are the harness:\n",
            p.command
        );
        out.push_str("| % | symbol |\n|---:|---|\n");
        for h in &p.hotspots {
            let _ = writeln!(out, "| {:.1} | `{}` |", h.percent, h.symbol.replace('|', "\\|"));
        }
        out.push('\n');
    }
}

/// REPORT.md's text; `plots` are the pictures written next to it.
pub fn markdown(r: &Report, plots: &[Plot]) -> String {
    let mut out = String::from("# weft benchmark report\n\n");
    let _ = writeln!(
        out,
        "weft {}{}, written by `make bench` (`weft-bench all`) in {:.0} s. Every figure below was measured \
         in this run; the raw numbers are in `results.json`.\n",
        r.version,
        r.commit.as_ref().map_or(String::new(), |c| format!(" ({c})")),
        r.secs
    );
    let _ = writeln!(out, "**Machine:** {}.\n", r.machine.markdown());
    let _ = writeln!(
        out,
        "Load average at the end: {:.2} / {:.2} / {:.2}. On a shared or small machine the absolute rates \
         are pessimistic and noisy; ratios measured in the same run (weft vs floor, weft vs kernel, weft \
         vs prefix-trie) are the meaningful figures.\n",
        r.load_end[0], r.load_end[1], r.load_end[2]
    );
    out.push_str("| suite | options | wall s | status |\n|---|---|---:|---|\n");
    for s in &r.suites {
        let _ = writeln!(
            out,
            "| {} | `{}` | {:.0} | {} |",
            s.name,
            s.args.join(" "),
            s.secs,
            s.error
                .as_ref()
                .map_or("ok".to_owned(), |e| format!("FAILED: {}", e.replace('\n', " ").replace('|', "/")))
        );
    }
    out.push('\n');
    goals(r, &mut out);
    let pic = |out: &mut String, file: &str| {
        if plots.iter().any(|p| p.file == file) {
            let _ = writeln!(out, "![{file}]({file})\n");
        }
    };
    if let Some(l) = &r.lab {
        out.push_str("## lab: packet rate through weft vs the kernel data path\n\n");
        out.push_str(&lab::lab_markdown(l));
        out.push('\n');
        pic(&mut out, "lab_pps.svg");
    }
    if let Some(l) = &r.latency {
        out.push_str("## latency: weft vs the kernel data path\n\n");
        out.push_str(&lab::latency_markdown(l));
        out.push('\n');
        for p in plots.iter().filter(|p| p.file.starts_with("latency_")) {
            let _ = writeln!(out, "![{}]({})\n", p.file, p.file);
        }
    }
    if let Some(tools) = &r.tools {
        out.push_str("## tools: sockperf and iperf3 between pods, weft nodes vs kernel-flannel nodes\n");
        out.push_str(&crate::lab_bench::tools::markdown(tools));
        out.push('\n');
    }
    if let Some(idle) = &r.idle {
        out.push_str("## idle: CPU of a weft node without traffic\n\n");
        out.push_str(&crate::lab_bench::idle::table(&idle.records));
        out.push('\n');
    }
    if let Some(p) = &r.pods {
        out.push_str("## pods: attach latency, churn and idle pods on a running node\n\n");
        out.push_str(
            "One weft node, one worker; pods attached through the API; a UDP flow (18-byte payloads) between two pods, sender and receiver on the other core. See bench/README.md.\n\n",
        );
        out.push_str(&p.table());
        out.push('\n');
    }
    if let Some(core) = &r.core {
        out.push_str("## core: the forwarding pipeline on one core\n\n");
        out.push_str(&core.markdown());
        out.push('\n');
        pic(&mut out, "core_mpps.svg");
        profiles(r, &mut out);
    }
    if let Some(lpm) = &r.lpm {
        out.push_str("## lpm: FIB lookups against prefix-trie\n\n");
        out.push_str(&lpm.markdown());
        out.push('\n');
        pic(&mut out, "lpm_lookups.svg");
    }
    if let Some(control) = &r.control {
        out.push_str("## control: etcd sync and convergence\n\n");
        out.push_str(&control.markdown());
        out.push('\n');
    }
    if let Some(p) = &r.policy {
        out.push_str("## policy: a NetworkPolicy written to etcd until the node enforces it\n\n");
        out.push_str(&p.markdown());
        out.push('\n');
    }
    if let Some(bgp) = &r.bgp {
        out.push_str("## bgp: a peer's routes into the FIB\n\n");
        out.push_str(&bgp.markdown());
        out.push('\n');
    }
    if !r.encap.is_empty() {
        out.push_str(
            "## encap micro-benchmarks (`cargo bench -p weft-encap`, criterion, mean per packet)\n\n",
        );
        out.push_str("| benchmark | ns/packet | 95 % CI |\n|---|---:|---|\n");
        for b in &r.encap {
            let _ =
                writeln!(out, "| {} | {:.1} | {:.1}–{:.1} |", b.id, b.ns_per_packet, b.ci_ns[0], b.ci_ns[1]);
        }
        out.push('\n');
    }
    out
}

/// Writes REPORT.md, the plots and results.json into `dir`.
pub fn write(dir: &Path, r: &Report) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let plots = plots(r);
    for p in &plots {
        std::fs::write(dir.join(&p.file), &p.svg).with_context(|| format!("cannot write {}", p.file))?;
    }
    std::fs::write(dir.join("REPORT.md"), markdown(r, &plots)).context("cannot write REPORT.md")?;
    crate::options::write_json(&dir.join("results.json"), r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{CorePath, CoreResult};
    use crate::machine::Machine;
    use crate::report::model::SuiteRun;

    fn report() -> Report {
        let path = |name: &str, ns: f64, floor: f64| CorePath {
            path: name.into(),
            ns_per_packet: ns,
            floor_ns_per_packet: floor,
            rounds_ns: vec![ns],
            floor_rounds_ns: vec![floor],
        };
        Report {
            secs: 42.0,
            load_end: [1.0, 2.0, 3.0],
            suites: vec![
                SuiteRun { name: "core".into(), args: vec![], secs: 40.0, error: None },
                SuiteRun {
                    name: "lpm".into(),
                    args: vec![],
                    secs: 2.0,
                    error: Some("exit status: 1: boom".into()),
                },
            ],
            core: Some(CoreResult {
                routes: 100_000,
                flows: 10_000,
                batch: 64,
                frame_bytes: 64,
                core: 1,
                secs: 1.0,
                rounds: 3,
                cpu_mhz: Some(2000.0),
                paths: vec![path("host-gw", 50.0, 20.0), path("vxlan-encap", 80.0, 20.0)],
                policies: 0,
                cidrs: 0,
                sweep: None,
            }),
            ..Report::new(Some("abc123".into()), 0, Machine::describe(), Vec::new())
        }
    }

    #[test]
    fn the_report_states_goals_met_and_missed_by_how_much() {
        let r = report();
        let text = markdown(&r, &plots(&r));
        assert!(
            text.contains(
                "| core host-gw: within 3x of the touch-only floor | 2.50x (20.00 vs 50.00 Mpps) | yes |"
            ),
            "{text}"
        );
        assert!(text.contains("| core vxlan-encap: within 3x of the touch-only floor | 4.00x (12.50 vs 50.00 Mpps) | no, 33 % over |"), "{text}");
        // cycles at the nominal clock: 50 ns * 2 GHz.
        assert!(text.contains("| host-gw | 20.00 | 50.0 | 100 |"), "{text}");
    }

    #[test]
    fn a_failed_suite_is_reported_and_missing_results_have_no_section_or_plot() {
        let r = report();
        let plots = plots(&r);
        assert_eq!(plots.iter().map(|p| p.file.as_str()).collect::<Vec<_>>(), ["core_mpps.svg"]);
        let text = markdown(&r, &plots);
        assert!(text.contains("| lpm | `` | 2 | FAILED: exit status: 1: boom |"), "{text}");
        assert!(text.contains("![core_mpps.svg](core_mpps.svg)"));
        assert!(!text.contains("## lpm") && !text.contains("lpm_lookups.svg"));
        assert!(text.contains(&r.machine.kernel), "the machine is described");
    }

    #[test]
    fn the_bgp_goal_is_judged_on_the_largest_table() {
        use crate::bgp::{BgpLatency, BgpResult, BgpSize};
        let lat = BgpLatency { samples: 500, p50_ms: 0.03, p99_ms: 0.5, max_ms: 4.0 };
        let size =
            |prefixes, learn_ms| BgpSize { prefixes, learn_ms, announce: lat.clone(), withdraw: lat.clone() };
        let mut r = report();
        r.bgp = Some(BgpResult { per_update: 1000, sizes: vec![size(1000, 1.2), size(100_000, 1500.0)] });
        let text = markdown(&r, &plots(&r));
        assert!(
            text.contains("| bgp: a 100000-prefix table from one peer in the FIB under 1000 ms | 1500 ms | no, 50 % over |"),
            "{text}"
        );
        assert!(text.contains("## bgp: a peer's routes into the FIB"));
        assert!(text.contains("| 1000 | 1.2 | 0.030 | 0.500 | 4.000 | 0.030 | 0.500 | 500 |"), "{text}");
    }

    #[test]
    fn write_puts_report_plots_and_json_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let r = report();
        write(dir.path(), &r).unwrap();
        for f in ["REPORT.md", "core_mpps.svg", "results.json"] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
        let back: Report =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap()).unwrap();
        assert_eq!(back.core.unwrap().paths[1].ns_per_packet, 80.0);
    }
}
