//! Adaptive waiting: an idle worker blocks in poll(2) instead of spinning or napping, and
//! what gives it work wakes it at once: a frame arriving on its AF_XDP socket, a frame
//! handed over by another worker (its doorbell), a stop request. Each wait below allows the
//! worker 30 s, far longer than any check waits, so only a real wakeup passes.

mod common;

use std::time::{Duration, Instant};

use weft_testnet::wait_for;

use anyhow::Result;
use common::{Endpoint, Netns, mac, root_or_skip, test_frame, test_seq, unique_stem, veth_pair};
use weft_engine::port::xdp_filter::{XdpAttachment, XdpMode, XdpProgram};
use weft_engine::port::{AfXdpPort, FrameMut, FramePool, MemPort, Port, XskConfig};
use weft_engine::worker::{
    FrameProcessor, IdleStrategy, PortId, Reflect, Verdict, Worker, WorkerConfig, WorkerCounters, WorkerId,
    handoff_mesh,
};

const LONG_WAIT: Duration = Duration::from_secs(30);

fn waiting(name: &str) -> WorkerConfig {
    let mut cfg = WorkerConfig::new(name);
    cfg.idle = IdleStrategy::AdaptiveWait { spin_loops: 100, max_wait: LONG_WAIT };
    cfg
}

/// Waits until the worker blocks, then checks that it stays blocked: a spinning or napping
/// worker would run thousands of loops in 300 ms.
fn assert_blocked(c: &WorkerCounters) {
    wait_for("the idle worker to block", Duration::from_secs(5), || c.snapshot().worker.waits >= 1);
    let before = c.snapshot().worker;
    std::thread::sleep(Duration::from_millis(300));
    let after = c.snapshot().worker;
    assert!(after.loops - before.loops <= 2, "the worker kept looping while idle: {before:?} -> {after:?}");
}

/// An AF_XDP port on veth `xdp_if` (generic XDP, everything to the socket).
fn af_xdp(xdp_if: &str, pool: &mut FramePool) -> Result<(XdpAttachment, AfXdpPort)> {
    let mut xdp = XdpAttachment::attach(xdp_if, XdpProgram::All, XdpMode::Generic)?;
    let port = AfXdpPort::open(pool, &XskConfig::new(xdp_if, 0))?;
    xdp.register_socket(0, port.fd())?;
    Ok((xdp, port))
}

#[test]
fn an_idle_worker_blocks_and_an_arriving_frame_or_a_stop_wakes_it() -> Result<()> {
    if !root_or_skip("an_idle_worker_blocks_and_an_arriving_frame_or_a_stop_wakes_it") {
        return Ok(());
    }
    let stem = unique_stem();
    let ns = Netns::new(&format!("{stem}n"))?;
    let (gen_if, xdp_if) = (format!("{stem}g"), format!("{stem}x"));
    let (gen_mac, xdp_mac) = ("02:00:00:00:02:01", "02:00:00:00:02:02");
    veth_pair(&ns, &gen_if, gen_mac, &xdp_if, xdp_mac)?;
    ns.run(move || -> Result<()> {
        let mut pool = FramePool::new(4096)?;
        let (_xdp, port) = af_xdp(&xdp_if, &mut pool)?;
        let worker = Worker::new(waiting("wx-wait"), pool, vec![Box::new(port)], Reflect)?.spawn()?;
        let mut generator = Endpoint::open(&gen_if)?;
        for seq in 0..3 {
            assert_blocked(worker.counters());
            generator.send(&[test_frame(mac(xdp_mac), mac(gen_mac), seq, 64)])?;
            let back = generator.recv(1, Duration::from_secs(5), |f| test_seq(f) == Some(seq));
            assert_eq!(back.len(), 1, "frame {seq} was not reflected by the blocked worker");
        }
        assert_blocked(worker.counters());
        let asked = Instant::now();
        let w = worker.stop().expect("worker thread");
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "stop waited {:?} for the wait to end",
            asked.elapsed()
        );
        let c = w.counters().snapshot();
        assert_eq!((c.ports[0].rx_packets, c.ports[0].tx_packets), (3, 3));
        assert!(c.worker.waits >= 4, "{:?}", c.worker);
        Ok(())
    })??;
    Ok(())
}

/// Sends every frame of port 0 to worker 1's port 0.
struct ToWorker1;
impl FrameProcessor for ToWorker1 {
    fn process(&mut self, _rx: PortId, _f: &mut FrameMut<'_>) -> Verdict {
        Verdict::Handoff { worker: WorkerId(1), port: PortId(0) }
    }
}

#[test]
fn a_blocked_worker_wakes_for_a_frame_another_worker_hands_over() -> Result<()> {
    if !root_or_skip("a_blocked_worker_wakes_for_a_frame_another_worker_hands_over") {
        return Ok(());
    }
    let stem = unique_stem();
    let ns = Netns::new(&format!("{stem}n"))?;
    let (gen_if, xdp_if) = (format!("{stem}g"), format!("{stem}x"));
    let (gen_mac, xdp_mac) = ("02:00:00:00:03:01", "02:00:00:00:03:02");
    veth_pair(&ns, &gen_if, gen_mac, &xdp_if, xdp_mac)?;
    ns.run(move || -> Result<()> {
        let mut mesh = handoff_mesh(2, 64).into_iter();
        // Worker 0 reads a memory port: it cannot block, so it naps and never waits.
        let (src, h_src) = MemPort::queue("src", 64);
        let w0 = Worker::new(
            waiting("wx-w0"),
            FramePool::new(256)?,
            vec![Box::new(src) as Box<dyn Port>],
            ToWorker1,
        )?
        .with_handoff(mesh.next().unwrap())
        .spawn()?;
        // Worker 1 owns the AF_XDP port and blocks.
        let mut pool = FramePool::new(4096)?;
        let (_xdp, port) = af_xdp(&xdp_if, &mut pool)?;
        let w1 = Worker::new(waiting("wx-w1"), pool, vec![Box::new(port) as Box<dyn Port>], Reflect)?
            .with_handoff(mesh.next().unwrap())
            .spawn()?;
        let mut sink = Endpoint::open(&gen_if)?;
        for seq in 0..3 {
            assert_blocked(w1.counters());
            assert!(h_src.inject(&test_frame(mac(gen_mac), mac(xdp_mac), seq, 64)));
            let got = sink.recv(1, Duration::from_secs(5), |f| test_seq(f) == Some(seq));
            assert_eq!(got.len(), 1, "handed-over frame {seq} did not leave the blocked worker");
        }
        let (c0, c1) =
            (w0.stop().expect("w0").counters().snapshot(), w1.stop().expect("w1").counters().snapshot());
        assert_eq!(c0.worker.waits, 0, "a worker with a memory port never blocks");
        assert_eq!((c0.worker.handoff_out, c1.worker.handoff_in), (3, 3));
        Ok(())
    })??;
    Ok(())
}
