//! Workers on in-memory ports: verdict routing, counters readable while the
//! worker runs, the handoff ring between workers (and its drop counter when
//! full), pinning, and a clean stop.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use weft_testnet::wait_for;

use weft_engine::port::{FrameMut, FramePool, MemPort, Port};
use weft_engine::worker::{
    DropReason, Forward, FrameProcessor, HandoffEndpoint, IdleStrategy, PortId, Verdict, Worker,
    WorkerConfig, WorkerError, WorkerHandle, WorkerId, batch_bucket, handoff_mesh,
};

fn frame(i: u8, len: usize) -> Vec<u8> {
    let mut f = vec![i; len];
    f[12] = 0x88;
    f[13] = 0xb5;
    f
}

/// A worker over the single port `port` with a pool of `frames` frames.
fn build<P: FrameProcessor + 'static>(
    cfg: WorkerConfig,
    frames: u32,
    port: MemPort,
    processor: P,
) -> Worker<P> {
    Worker::new(cfg, FramePool::new(frames).unwrap(), vec![Box::new(port) as Box<dyn Port>], processor)
        .unwrap()
}

/// Starts a busy-polling worker over `port` with a pool of `frames` frames.
fn start<P: FrameProcessor + 'static>(
    name: &str,
    frames: u32,
    port: MemPort,
    processor: P,
    handoff: Option<HandoffEndpoint>,
) -> WorkerHandle<P> {
    let w = build(busy(name), frames, port, processor);
    match handoff {
        Some(h) => w.with_handoff(h),
        None => w,
    }
    .spawn()
    .unwrap()
}

fn busy(name: &str) -> WorkerConfig {
    let mut c = WorkerConfig::new(name);
    c.idle = IdleStrategy::BusyPoll;
    c
}

#[test]
fn forwarding_between_memory_ports_counts_packets_bytes_and_batches_while_running() {
    let (a, ha) = MemPort::queue("a", 1024);
    let (b, hb) = MemPort::queue("b", 1024);
    let ports: Vec<Box<dyn Port>> = vec![Box::new(a), Box::new(b)];
    let w = Worker::new(
        busy("wx-mem"),
        FramePool::new(512).unwrap(),
        ports,
        Forward::new(vec![PortId(1), PortId(0)]),
    )
    .unwrap()
    .spawn()
    .unwrap();
    for i in 0..100u8 {
        assert!(ha.inject(&frame(i, 60 + i as usize)));
    }
    // Counters are read from this thread while the worker keeps running.
    wait_for("100 frames out of b", Duration::from_secs(5), || {
        w.counters().snapshot().port("b").unwrap().tx_packets == 100
    });
    let running = w.counters().snapshot();
    let expected_bytes: u64 = (0..100u64).map(|i| 60 + i).sum();
    assert_eq!(running.port("a").unwrap().rx_packets, 100);
    assert_eq!(running.port("a").unwrap().rx_bytes, expected_bytes);
    assert_eq!(running.port("b").unwrap().tx_bytes, expected_bytes);
    assert!(running.worker.loops > 0);
    assert!(running.batches.iter().sum::<u64>() > 0);
    let mut got = Vec::new();
    while let Some(f) = hb.take_sent() {
        got.push(f);
    }
    assert_eq!(got.len(), 100);
    assert!(
        got.iter().enumerate().all(|(i, f)| f[0] == i as u8 && f.len() == 60 + i),
        "order and contents kept"
    );
    let done = w.stop().unwrap();
    assert_eq!(done.pool().free_frames(), 512, "every frame is back in the pool after stop");
}

/// Sends every frame of port 0 to worker 1's port 0.
struct ToOtherWorker;
impl FrameProcessor for ToOtherWorker {
    fn process(&mut self, _rx: PortId, _f: &mut FrameMut<'_>) -> Verdict {
        Verdict::Handoff { worker: WorkerId(1), port: PortId(0) }
    }
}

#[test]
fn handed_off_frames_leave_through_the_other_workers_port() {
    let mut mesh = handoff_mesh(2, 64).into_iter();
    let (src, h_src) = MemPort::queue("src", 256);
    let (dst, h_dst) = MemPort::queue("dst", 256);
    let w0 = start("wx-h0", 256, src, ToOtherWorker, mesh.next());
    let w1 = start("wx-h1", 256, dst, Forward::new(vec![PortId(0)]), mesh.next());
    for i in 0..50u8 {
        assert!(h_src.inject(&frame(i, 100)));
    }
    wait_for("50 frames out of dst", Duration::from_secs(5), || h_dst.sent() == 50);
    let (c0, c1) = (w0.stop().unwrap().counters().snapshot(), w1.stop().unwrap().counters().snapshot());
    assert_eq!(c0.worker.handoff_out, 50);
    assert_eq!(c1.worker.handoff_in, 50);
    assert_eq!(c1.ports[0].tx_packets, 50);
    assert_eq!(c0.dropped_total() + c1.dropped_total(), 0);
    let mut n = 0;
    while let Some(f) = h_dst.take_sent() {
        assert_eq!(f[0], n as u8);
        n += 1;
    }
    assert_eq!(n, 50);
}

#[test]
fn a_full_handoff_ring_counts_drops_instead_of_blocking() {
    // Worker 1 exists in the mesh but never runs: its inbox (8 slots) fills up.
    let mut mesh = handoff_mesh(2, 8).into_iter();
    let (src, h_src) = MemPort::queue("src", 256);
    let w0 = start("wx-hf", 256, src, ToOtherWorker, mesh.next());
    for i in 0..30u8 {
        assert!(h_src.inject(&frame(i, 64)));
    }
    wait_for("30 frames received", Duration::from_secs(5), || {
        w0.counters().snapshot().ports[0].rx_packets == 30
    });
    let c = w0.stop().unwrap().counters().snapshot();
    assert_eq!(c.worker.handoff_out, 8);
    assert_eq!(c.dropped(DropReason::HandoffFull), 22);
}

/// Grows every frame into its headroom by 100 bytes (as an encapsulation would), then hands
/// it to worker 1's port 0.
struct GrowThenHandOff;
impl FrameProcessor for GrowThenHandOff {
    fn process(&mut self, _rx: PortId, f: &mut FrameMut<'_>) -> Verdict {
        assert!(f.push_front(100), "rx headroom holds 100 bytes");
        Verdict::Handoff { worker: WorkerId(1), port: PortId(0) }
    }
}

#[test]
fn a_frame_longer_than_a_handoff_slot_is_a_counted_drop_and_no_panic() {
    let mut mesh = handoff_mesh(2, 64).into_iter();
    let (src, h_src) = MemPort::queue("src", 256);
    let (dst, h_dst) = MemPort::queue("dst", 256);
    let w0 = start("wx-hl0", 256, src, GrowThenHandOff, mesh.next());
    let w1 = start("wx-hl1", 256, dst, Forward::new(vec![PortId(0)]), mesh.next());
    // Full-size frames become longer than a slot; short ones still fit after growing.
    let long = weft_engine::port::MAX_FRAME_LEN;
    for i in 0..10u8 {
        assert!(h_src.inject(&frame(i, long)));
        assert!(h_src.inject(&frame(i, 200)));
    }
    wait_for("10 short frames out of dst", Duration::from_secs(5), || h_dst.sent() == 10);
    wait_for("20 frames received", Duration::from_secs(5), || {
        w0.counters().snapshot().ports[0].rx_packets == 20
    });
    // Both workers still run: stop() returns them (a panicked worker returns an error).
    let (c0, c1) = (w0.stop().unwrap().counters().snapshot(), w1.stop().unwrap().counters().snapshot());
    assert_eq!(c0.dropped(DropReason::HandoffTooLong), 10);
    assert_eq!(c0.worker.handoff_out, 10);
    assert_eq!(c1.worker.handoff_in, 10);
    while let Some(f) = h_dst.take_sent() {
        assert_eq!(f.len(), 300, "a handed-off frame arrives whole");
    }
}

#[test]
fn verdicts_naming_missing_ports_or_workers_are_counted_drops() {
    struct Bad(u32);
    impl FrameProcessor for Bad {
        fn process(&mut self, _rx: PortId, _f: &mut FrameMut<'_>) -> Verdict {
            self.0 += 1;
            if self.0 % 2 == 0 {
                Verdict::Tx(PortId(9))
            } else {
                Verdict::Handoff { worker: WorkerId(3), port: PortId(0) }
            }
        }
    }
    let (p, h) = MemPort::queue("p", 64);
    for i in 0..10u8 {
        h.inject(&frame(i, 64));
    }
    let mut w = build(busy("wx-bad"), 64, p, Bad(0));
    // Drive `run` directly (no spawn) on a helper thread with our own stop flag.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let counters = w.counters().clone();
    let s2 = stop.clone();
    let t = std::thread::spawn(move || {
        w.run(&s2);
        w
    });
    wait_for("10 drops", Duration::from_secs(5), || counters.snapshot().dropped_total() == 10);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let w = t.join().unwrap();
    let c = w.counters().snapshot();
    assert_eq!(c.dropped(DropReason::NoSuchPort), 5);
    assert_eq!(c.dropped(DropReason::NoSuchWorker), 5);
    assert_eq!(w.pool().free_frames(), 64, "dropped frames return to the pool");
}

#[test]
fn replay_ports_fill_full_batches_and_the_histogram_shows_them() {
    let templates = vec![frame(1, 64), frame(2, 64)];
    let (p, _) = MemPort::replay("replay", templates, 64 * 100);
    let (sink, hs) = MemPort::replay("sink", Vec::new(), 0);
    let ports: Vec<Box<dyn Port>> = vec![Box::new(p), Box::new(sink)];
    let w = Worker::new(
        busy("wx-rep"),
        FramePool::new(1024).unwrap(),
        ports,
        Forward::new(vec![PortId(1), PortId(0)]),
    )
    .unwrap()
    .spawn()
    .unwrap();
    wait_for("6400 frames to the sink", Duration::from_secs(5), || hs.sent() == 6400);
    let c = w.stop().unwrap().counters().snapshot();
    assert_eq!(c.batches[batch_bucket(64)], 100, "every batch was full: {:?}", c.batches);
    assert_eq!(c.ports[0].rx_packets, 6400);
}

#[test]
fn a_worker_pins_to_an_online_core_and_reports_an_impossible_one() {
    let (p, _) = MemPort::queue("p", 4);
    let mut cfg = busy("wx-pin");
    cfg.core = Some(0);
    let w = build(cfg, 8, p, Forward::new(vec![PortId(0)])).spawn().expect("core 0 is online");
    w.stop().unwrap();

    let (p, _) = MemPort::queue("p", 4);
    let mut cfg = busy("wx-pin2");
    cfg.core = Some(100_000);
    let e = build(cfg, 8, p, Forward::new(vec![PortId(0)])).spawn().unwrap_err();
    assert!(matches!(e, WorkerError::Pin { core: 100_000, .. }), "{e}");
    assert!(e.to_string().contains("core 100000"), "{e}");
}

#[test]
fn an_adaptive_sleeping_worker_still_stops_promptly_and_counts_idle_loops() {
    let (p, _) = MemPort::queue("p", 4);
    let mut cfg = WorkerConfig::new("wx-idle");
    cfg.idle = IdleStrategy::AdaptiveSleep { spin_loops: 10, max_sleep: Duration::from_millis(1) };
    let w = build(cfg, 8, p, Forward::new(vec![PortId(0)])).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    let c = w.stop().unwrap().counters().snapshot();
    assert!(t.elapsed() < Duration::from_millis(500), "stop took {:?}", t.elapsed());
    assert!(c.worker.idle_loops > 10 && c.worker.idle_loops == c.worker.loops, "{:?}", c.worker);
    // Sleeping, not spinning: far fewer loops than 50 ms of busy polling would make.
    assert!(c.worker.loops < 20_000, "{} loops in 50 ms", c.worker.loops);
}

#[test]
fn tx_is_staged_until_a_batch_fills_or_the_flush_timer_fires() {
    // A flush timer that never fires and no flush on quiet input: frames wait until a whole
    // batch is staged.
    let (a, ha) = MemPort::queue("a", 64);
    let mut cfg = busy("wx-stage");
    cfg.batch = 8;
    cfg.tx_flush = Duration::from_secs(3600);
    cfg.tx_flush_when_quiet = false;
    let w = build(cfg, 64, a, Forward::new(vec![PortId(0)])).spawn().unwrap();
    for i in 0..3u8 {
        ha.inject(&frame(i, 64));
    }
    wait_for("3 frames received", Duration::from_secs(5), || {
        w.counters().snapshot().ports[0].rx_packets == 3
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(ha.sent(), 0, "3 < batch: still staged");
    for i in 3..8u8 {
        ha.inject(&frame(i, 64));
    }
    wait_for("a full batch sent", Duration::from_secs(5), || ha.sent() == 8);
    ha.inject(&frame(8, 64));
    wait_for("frame 9 received", Duration::from_secs(5), || w.counters().snapshot().ports[0].rx_packets == 9);
    let c = w.stop().unwrap().counters().snapshot();
    assert_eq!(ha.sent(), 9, "stopping flushes what is staged");
    assert_eq!(c.dropped(DropReason::Shutdown), 0);

    // The default 100 µs timer sends a lone frame without waiting for a batch.
    let (b, hb) = MemPort::queue("b", 64);
    let mut cfg = busy("wx-timer");
    cfg.tx_flush_when_quiet = false;
    let w = build(cfg, 64, b, Forward::new(vec![PortId(0)])).spawn().unwrap();
    hb.inject(&frame(1, 64));
    wait_for("the lone frame sent by the timer", Duration::from_secs(5), || hb.sent() == 1);
    w.stop().unwrap();
}

#[test]
fn a_lone_frame_leaves_as_soon_as_input_goes_quiet_without_waiting_for_the_timer() {
    let (a, ha) = MemPort::queue("a", 64);
    let mut cfg = busy("wx-quiet");
    cfg.batch = 8;
    cfg.tx_flush = Duration::from_secs(3600);
    assert!(cfg.tx_flush_when_quiet, "the default");
    let w = build(cfg, 64, a, Forward::new(vec![PortId(0)])).spawn().unwrap();
    for i in 0..3u8 {
        ha.inject(&frame(i, 64));
    }
    // The timer never fires and 3 < batch: only the quiet-input flush can send them.
    wait_for("3 frames sent", Duration::from_secs(5), || ha.sent() == 3);
    w.stop().unwrap();
}
