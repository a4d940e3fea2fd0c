//! `weft-bench lab`: full-speed packet rates through weft and through the kernel's data path
//! in the same lab, the paths alternating inside every round, per frame size and flow count;
//! delivered pps at the receiving pod, loss, and weft/kernel ratios (min/median/max over
//! rounds).

use std::time::Instant;

use super::common::{COMMON_USAGE, Common, flows_label, kpps};
use super::result::{LabReport, PpsRecord, RatioSummary, VETH_NOTE, loadavg, median, ratios};
use super::run::{RunSpec, measure};
use crate::options;

fn usage() -> String {
    format!(
        "usage: weft-bench lab [options]

A 3-node netns lab (n1, n2 kernel flannel; n3 weft); a generator in one pod sends UDP to a
pod on another node at full speed: kernel (n1->n2), weft-encap (n3->n1), weft-decap (n1->n3).

  --sizes LIST                frame sizes with FCS (default 64,512,1450)
  --flows LIST                flow counts (default 1,10000)
{COMMON_USAGE}
defaults: --rounds 3 --secs 2"
    )
}

/// Runs the suite.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let usage = usage();
    let mut c = Common::new(&[64, 512, 1450], &[1, 10_000], 3, 2.0);
    for (flag, value) in options::pairs(args, &usage)? {
        if !c.take(flag, value, &usage)? {
            anyhow::bail!("unknown option {flag}\n{usage}");
        }
    }
    c.validate()?;
    let (started, load_before) = (Instant::now(), loadavg());
    let total = c.backends.len() * c.rounds as usize * c.sizes.len() * c.flows.len() * c.paths.len();
    let mut records = Vec::new();
    let mut statuses = Vec::new();
    let mut pinned = true;
    let mut n = 0;
    for &backend in &c.backends {
        let bed = c.testbed(backend)?;
        pinned &= bed.pinned;
        for round in 1..=c.rounds {
            for &frame_size in &c.sizes {
                for &flows in &c.flows {
                    for &path in &c.paths {
                        n += 1;
                        eprint!(
                            "[lab {n}/{total}] {} {} {frame_size}B {} flows round {round} … ",
                            backend.flannel_name(),
                            path.name(),
                            flows_label(flows)
                        );
                        let spec = RunSpec {
                            path,
                            frame_size,
                            flows,
                            duration: c.duration(),
                            rate: None,
                            latency: false,
                            tx: c.generator,
                        };
                        let o = measure(&bed, &spec)?;
                        eprintln!(
                            "delivered {}pps, generator {}pps, loss {:.1}%",
                            kpps(o.delivered_pps()),
                            kpps(o.generator.pps()),
                            o.loss() * 100.0
                        );
                        records.push(PpsRecord {
                            suite: "lab".into(),
                            backend: backend.flannel_name().into(),
                            path: path.name().into(),
                            engine: path.engine().into(),
                            frame_size,
                            flows,
                            round,
                            secs: o.generator.secs,
                            generator_pps: o.generator.pps(),
                            offered_pps: o.offered_pps(),
                            delivered_pps: o.delivered_pps(),
                            loss: o.loss(),
                            sent: o.generator.sent,
                            delivered: o.sink.delivered,
                            stray: o.sink.stray,
                            sink_drops: o.sink.sink_drops,
                        });
                    }
                }
            }
        }
        statuses.extend(bed.weft_status());
        eprintln!("[lab] {}: tearing the lab down", backend.flannel_name());
    }
    let ratios = ratios(&records);
    print_tables(&c, &records, &ratios);
    let report = LabReport {
        conditions: c.conditions(started, load_before, pinned),
        records,
        ratios,
        weft_status: statuses,
    };
    println!(
        "\n{} s, load {:?} -> {:?}",
        report.conditions.elapsed_secs.round(),
        report.conditions.load_before,
        report.conditions.load_after
    );
    c.write_json(&report)
}

fn print_tables(c: &Common, records: &[PpsRecord], ratios: &[RatioSummary]) {
    println!("\n{VETH_NOTE}\n");
    println!("Medians over {} rounds (kpps; loss = 1 - delivered/sent):\n", c.rounds);
    println!("| backend | path | frame | flows | generator kpps | offered kpps | delivered kpps | loss |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut seen = Vec::new();
    for r in records {
        let key = (&r.backend, &r.path, r.frame_size, r.flows);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let same: Vec<&PpsRecord> = records
            .iter()
            .filter(|o| {
                o.backend == r.backend
                    && o.path == r.path
                    && o.frame_size == r.frame_size
                    && o.flows == r.flows
            })
            .collect();
        let med = |f: fn(&PpsRecord) -> f64| median(&same.iter().map(|r| f(r)).collect::<Vec<_>>());
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1}% |",
            r.backend,
            r.path,
            r.frame_size,
            flows_label(r.flows),
            med(|r| r.generator_pps) / 1e3,
            med(|r| r.offered_pps) / 1e3,
            med(|r| r.delivered_pps) / 1e3,
            med(|r| r.loss) * 100.0
        );
    }
    println!("\nweft / kernel delivered pps (per round, same size and flows; goal >= 2x):\n");
    println!("| backend | path | frame | flows | weft kpps | kernel kpps | min | median | max |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for s in ratios {
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.2}x | {:.2}x | {:.2}x |",
            s.backend,
            s.path,
            s.frame_size,
            flows_label(s.flows),
            s.weft_delivered_pps / 1e3,
            s.kernel_delivered_pps / 1e3,
            s.min,
            s.median,
            s.max
        );
    }
    let sink_drops: u64 = records.iter().map(|r| r.sink_drops).sum();
    if sink_drops > 0 {
        println!(
            "\nnote: the sink socket itself dropped {sink_drops} frames in total: those runs' delivered pps are lower bounds"
        );
    }
}
