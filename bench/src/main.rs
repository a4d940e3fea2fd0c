//! `weft-bench`: weft's benchmark suite. One subcommand per suite; each suite lives in its own
//! file and parses its own options.
#![forbid(unsafe_code)]

mod bgp;
mod control;
mod core;
mod lab_bench;
mod lpm;
mod machine;
mod options;
mod pods;
mod policy;
mod report;
mod stats;

use std::process::ExitCode;

const USAGE: &str = "usage: weft-bench <suite> [options]

  all      every suite below, one after another, then bench/results/REPORT.md, SVG plots and
           results.json (what `make bench` runs; weft-bench all --help)

suites (each takes --json FILE to write its raw figures):
  core     the forwarding pipeline on in-memory replay ports, per path, against a touch-only
           floor (weft-bench core --help)
  policy   a NetworkPolicy put to a real etcd until the daemon's policy loop publishes the new
           set, with 1000 policies stored: p50/p99 (weft-bench policy --help)
  bgp      a BGP peer's routes into the FIB over loopback TCP: time to learn 1k/10k/100k
           prefixes from one peer, announce and withdraw -> FIB p50/p99 (weft-bench bgp --help)
  control  etcd lease sync time and lease-put -> route convergence against a real etcd
           (weft-bench control --help)
  idle     CPU of each weft worker on a node without traffic, default idle strategy vs
           busy polling (weft-bench idle --help)
  lab      packet rates through weft and the kernel's VXLAN/host-gw data path in a netns lab,
           alternating, with weft/kernel ratios (weft-bench lab --help)
  latency  one-way latency at 10/50/90 % of each path's capacity, weft vs kernel
           (weft-bench latency --help)
  tools    sockperf ping-pong and iperf3 between pods on two weft nodes and on two
           kernel-flannel nodes, same lab (weft-bench tools --help)
  lpm      FIB longest-prefix-match lookups vs the prefix-trie crate, under churn, update
           visibility, memory per prefix (weft-bench lpm --help)
  pods     pod attach latency (API pod add -> first packet forwarded), a flow's pps during pod
           churn vs without, and with 1 vs 110 idle pods attached (weft-bench pods --help)

micro-benchmarks of the wire formats: cargo bench -p weft-encap";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let suite = args.next();
    let rest: Vec<String> = args.collect();
    let result = match suite.as_deref() {
        Some("bgp") => bgp::run(&rest),
        Some("control") => control::run(&rest),
        Some("core") => core::run_suite(&rest),
        Some("idle") => lab_bench::idle::run(&rest),
        Some("lab") => lab_bench::pps::run(&rest),
        Some("latency") => lab_bench::latency::run(&rest),
        Some("lpm") => lpm::run(&rest),
        Some("pods") => pods::run(&rest),
        Some("policy") => policy::run(&rest),
        Some("tools") => lab_bench::tools::run(&rest),
        Some("all") => report::run(&rest),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown suite {other:?}\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("no suite given\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weft-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
