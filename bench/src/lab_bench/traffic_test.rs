//! The generator and the sink against each other over a veth pair in a throwaway namespace
//! (root only; skips loudly otherwise): the sink counts exactly this run's frames, sets
//! another run's apart, and times every frame; the paced generator keeps its rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use weft_testnet::{Netns, root_or_skip, unique_stem, veth_pair};

use super::frame::{Endpoints, Template};
use super::generator::{self, GenConfig, GenReport, TxKind};
use super::sink::{self, SinkConfig, SinkReport};

const GEN_MAC: &str = "02:00:00:00:0b:01";
const SINK_MAC: &str = "02:00:00:00:0b:02";

fn ends() -> Endpoints {
    Endpoints {
        src_mac: [2, 0, 0, 0, 0x0b, 1],
        dst_mac: [2, 0, 0, 0, 0x0b, 2],
        src_ip: "198.19.1.2".parse().unwrap(),
        dst_ip: "198.19.2.2".parse().unwrap(),
    }
}

fn send(ns: &Netns, iface: &str, run: u32, rate: Option<f64>, secs: f64, tx: TxKind) -> GenReport {
    let cfg = GenConfig {
        iface: iface.into(),
        template: Template::new(&ends(), 64),
        flows: 100,
        run,
        duration: Duration::from_secs_f64(secs),
        rate,
        stamp_each: true,
        tx,
    };
    ns.run(move || generator::run(&cfg, || {})).unwrap().unwrap()
}

/// Starts a sink for `run` on `iface` in `ns`; returns its stop flag and handle.
fn start_sink(
    ns: &Netns,
    iface: &str,
    run: u32,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<anyhow::Result<SinkReport>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let cfg = SinkConfig { iface: iface.into(), pod_ip: ends().dst_ip, run, latency: true };
    let flag = stop.clone();
    let handle = ns
        .spawn(move || {
            sink::run(&cfg, &flag, move || {
                let _ = ready_tx.send(());
            })
        })
        .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("sink ready");
    (stop, handle)
}

fn stop_sink(stop: &AtomicBool, handle: std::thread::JoinHandle<anyhow::Result<SinkReport>>) -> SinkReport {
    std::thread::sleep(sink::DRAIN);
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("sink thread").unwrap()
}

/// A throwaway namespace (`wbl…`) with a veth pair: (namespace, generator end, sink end).
fn veth_namespace() -> (Netns, String, String) {
    let stem = unique_stem("wbl");
    let ns = Netns::new(&format!("{stem}n")).unwrap();
    let (gen_if, sink_if) = (format!("{stem}g"), format!("{stem}s"));
    veth_pair(&ns, &gen_if, GEN_MAC, &sink_if, SINK_MAC).unwrap();
    (ns, gen_if, sink_if)
}

#[test]
fn the_sink_counts_every_frame_of_its_run_and_sets_other_runs_apart() {
    if !root_or_skip("the_sink_counts_every_frame_of_its_run_and_sets_other_runs_apart") {
        return;
    }
    let (ns, gen_if, sink_if) = veth_namespace();
    let (stop, handle) = start_sink(&ns, &sink_if, 7);
    let earlier = send(&ns, &gen_if, 6, Some(10_000.0), 0.1, TxKind::AfXdp);
    let this = send(&ns, &gen_if, 7, Some(20_000.0), 0.25, TxKind::AfXdp);
    let report = stop_sink(&stop, handle);

    assert!(earlier.sent > 0 && this.sent > 0, "{earlier:?} {this:?}");
    assert_eq!(report.sink_drops, 0, "the sink kept up at 20 kpps");
    assert_eq!(report.delivered, this.sent, "every frame of run 7, nothing else");
    assert_eq!(report.stray, earlier.sent, "run 6's frames are counted apart");
    let h = report.latency.expect("latency asked for");
    assert_eq!(h.len(), this.sent, "one latency sample per frame");
    assert!(h.min() > 0 && h.max() < 1_000_000_000, "one-way latency {}..{} ns", h.min(), h.max());
    // Paced: 20 kpps for 0.25 s is 5000 frames; the pacer catches up in bursts of at most
    // one batch (64), so it never sends more than one batch ahead.
    let expected = 20_000.0 * this.secs;
    assert!(
        (this.sent as f64) <= expected + 64.0 && (this.sent as f64) >= expected * 0.9,
        "paced generator sent {} in {:.3} s",
        this.sent,
        this.secs
    );
}

#[test]
fn at_full_speed_both_generator_sockets_deliver_and_account_for_every_frame() {
    if !root_or_skip("at_full_speed_both_generator_sockets_deliver_and_account_for_every_frame") {
        return;
    }
    let (ns, gen_if, sink_if) = veth_namespace();
    for (run, tx) in [(1, TxKind::AfXdp), (2, TxKind::AfPacket)] {
        let (stop, handle) = start_sink(&ns, &sink_if, run);
        let sent = send(&ns, &gen_if, run, None, 0.2, tx);
        let report = stop_sink(&stop, handle);
        eprintln!("{tx:?}: sent {} ({:.0} pps), delivered {}", sent.sent, sent.pps(), report.delivered);
        assert!(sent.sent > 1000, "{tx:?} sent {sent:?}");
        assert_eq!(sent.unfinished, 0, "{tx:?}: the kernel completed every queued frame");
        assert!(report.delivered > 0 && report.delivered <= sent.sent, "{tx:?}: {report:?} of {sent:?}");
        assert_eq!(report.stray, 0);
    }
}
