//! `weft-bench lab`: full-speed packet rates through weft and through the kernel's data path
//! in the same lab, the paths alternating inside every round, per frame size and flow count;
//! delivered pps at the receiving pod, loss, and weft/kernel ratios (min/median/max over
//! rounds).

use std::time::Instant;

use super::common::{COMMON_USAGE, Common, flows_label, kpps};
use super::result::{LabReport, PpsRecord, RatioSummary, RunKey, VETH_NOTE, ratios};
use super::run::{RunSpec, measure};
use crate::options;
use crate::stats::median;

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
    let (started, load_before) = (Instant::now(), crate::machine::load());
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
                        let spec = RunSpec::full_speed(path, frame_size, flows, c.duration(), c.generator);
                        let o = measure(&bed, &spec)?;
                        let weft = o.weft_rx_tx.map_or(String::new(), |(rx, tx)| {
                            format!(
                                ", weft rx {}pps tx {}pps",
                                kpps(rx as f64 / o.generator.secs),
                                kpps(tx as f64 / o.generator.secs)
                            )
                        });
                        eprintln!(
                            "delivered {}pps, generator {}pps, loss {:.1}%{weft}",
                            kpps(o.delivered_pps()),
                            kpps(o.generator.pps()),
                            o.loss() * 100.0
                        );
                        records.push(PpsRecord {
                            key: spec.key("lab", backend, round),
                            secs: o.generator.secs,
                            generator_pps: o.generator.pps(),
                            offered_pps: o.offered_pps(),
                            delivered_pps: o.delivered_pps(),
                            loss: o.loss(),
                            sent: o.generator.sent,
                            delivered: o.sink.delivered,
                            stray: o.sink.stray,
                            sink_drops: o.sink.sink_drops,
                            reordered: o.sink.reordered,
                            weft_rx: o.weft_rx_tx.map(|(rx, _)| rx),
                            weft_tx: o.weft_rx_tx.map(|(_, tx)| tx),
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
    let conditions = c.conditions(started, load_before, pinned);
    let report = LabReport { conditions: conditions.clone(), records, ratios, weft_status: statuses };
    c.finish(&conditions, &report)
}

fn print_tables(c: &Common, records: &[PpsRecord], ratios: &[RatioSummary]) {
    println!("\n{VETH_NOTE}\n");
    println!("Medians over {} rounds (kpps; loss = 1 - delivered/sent):\n", c.rounds);
    println!("| backend | path | frame | flows | generator kpps | offered kpps | delivered kpps | loss |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut seen = Vec::new();
    for r in records {
        let key = (&r.key.backend, &r.key.path, r.key.frame_size, r.key.flows);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let same: Vec<&PpsRecord> =
            records.iter().filter(|o| RunKey { round: r.key.round, ..o.key.clone() } == r.key).collect();
        let med = |f: fn(&PpsRecord) -> f64| median(&same.iter().map(|r| f(r)).collect::<Vec<_>>());
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1}% |",
            r.key.backend,
            r.key.path,
            r.key.frame_size,
            flows_label(r.key.flows),
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
