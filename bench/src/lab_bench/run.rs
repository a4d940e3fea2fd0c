//! One measured run: a sink on the receiving pod, then the generator on the sending pod for
//! the run's duration, then a short drain, then both reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

use super::frame::Template;
use super::generator::{self, GenConfig, GenReport, TxKind};
use super::netns;
use super::sink::{self, SinkConfig, SinkReport};
use super::testbed::{GENERATOR_CORE, PathKind, Testbed};

/// What to send in one run.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec {
    /// The path.
    pub path: PathKind,
    /// Frame size with FCS.
    pub frame_size: usize,
    /// Distinct flows.
    pub flows: u32,
    /// Sending time.
    pub duration: Duration,
    /// Fixed rate, or full speed.
    pub rate: Option<f64>,
    /// Record latencies (and stamp every frame).
    pub latency: bool,
    /// The generator's socket.
    pub tx: TxKind,
}

/// Both sides' reports.
#[derive(Debug)]
pub struct RunOutcome {
    /// The generator's account.
    pub generator: GenReport,
    /// The sink's account.
    pub sink: SinkReport,
    /// Frames the sending pod's veth dropped (its peer's queue was full).
    pub veth_tx_dropped: u64,
}

impl RunOutcome {
    /// Frames per second that entered the path (sent minus the pod veth's drops).
    pub fn offered_pps(&self) -> f64 {
        let g = &self.generator;
        if g.secs > 0.0 { g.sent.saturating_sub(self.veth_tx_dropped) as f64 / g.secs } else { 0.0 }
    }

    /// Frames per second the receiving pod got, over the generator's sending time.
    pub fn delivered_pps(&self) -> f64 {
        let g = &self.generator;
        if g.secs > 0.0 { self.sink.delivered as f64 / g.secs } else { 0.0 }
    }

    /// Fraction of the frames sent that did not arrive.
    pub fn loss(&self) -> f64 {
        let sent = self.generator.sent;
        if sent == 0 { 0.0 } else { sent.saturating_sub(self.sink.delivered) as f64 / sent as f64 }
    }
}

/// A run id unique in this process (frames carry it; the sink counts only its own run's).
fn next_run_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Mixed with the PID so two benchmark processes' frames never match either.
    (std::process::id() << 16) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `spec` on `bed`.
pub fn measure(bed: &Testbed, spec: &RunSpec) -> anyhow::Result<RunOutcome> {
    let (from, to) = spec.path.nodes();
    let ends = bed.endpoints(spec.path)?;
    let run = next_run_id();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let sink_cfg = SinkConfig { iface: "pod0".into(), pod_ip: bed.pod(to).ip, run, latency: spec.latency };
    let sink_stop = stop.clone();
    let sink = netns::spawn_in(&bed.pod(to).ns, "wb-sink", None, move || {
        sink::run(&sink_cfg, &sink_stop, move || {
            let _ = ready_tx.send(());
        })
    })?;
    if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        stop.store(true, Ordering::Relaxed);
        return Err(netns::join(sink, "sink")
            .err()
            .unwrap_or_else(|| anyhow::anyhow!("sink not ready in 10 s")));
    }
    let dropped_before = bed.pod_tx_dropped(from);
    let gen_cfg = GenConfig {
        iface: "pod0".into(),
        template: Template::new(&ends, spec.frame_size),
        flows: spec.flows,
        run,
        duration: spec.duration,
        rate: spec.rate,
        stamp_each: spec.latency,
        tx: spec.tx,
    };
    let core = bed.pinned.then_some(GENERATOR_CORE);
    let generator =
        netns::spawn_in(&bed.pod(from).ns, "wb-gen", core, move || generator::run(&gen_cfg, || {}));
    let generator = generator.and_then(|g| netns::join(g, "generator"));
    std::thread::sleep(sink::DRAIN);
    stop.store(true, Ordering::Relaxed);
    let sink = netns::join(sink, "sink").context("sink")?;
    let generator = generator.context("generator")?;
    let veth_tx_dropped = bed.pod_tx_dropped(from).saturating_sub(dropped_before);
    Ok(RunOutcome { generator, sink, veth_tx_dropped })
}
