//! Ports come and go on a running worker through its command queue: a port opened by the
//! caller is served from the next loop and its processor told, a detached one hands back its
//! final counters and its slot, which the next attach reuses with fresh counters, and is
//! dropped (closed) on the caller's thread, not the worker's; a full worker and an unknown
//! port are refused with errors that say so. The worker keeps serving its other port
//! throughout.

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use weft_testnet::wait_for;

use weft_engine::port::{Frame, FrameMut, FramePool, IoEvents, MemPort, MemPortHandle, Port};
use weft_engine::worker::{
    CommandError, FrameProcessor, PortId, Reflect, Verdict, Worker, WorkerConfig, WorkerHandle,
};

const WAIT: Duration = Duration::from_secs(5);

/// Reflects every frame and records the ports it was told about.
#[derive(Default)]
struct Recorder {
    events: Vec<(&'static str, PortId)>,
}

impl FrameProcessor for Recorder {
    fn process(&mut self, rx_port: PortId, frame: &mut FrameMut<'_>) -> Verdict {
        Reflect.process(rx_port, frame)
    }
}

fn frame() -> Vec<u8> {
    let mut f = vec![7u8; 60];
    f[12] = 0x88;
    f[13] = 0xb5;
    f
}

fn attach(w: &WorkerHandle<Recorder>, port: impl Port + 'static) -> Result<PortId, CommandError> {
    w.attach(Box::new(port), Box::new(|r: &mut Recorder, id| r.events.push(("attach", id))), WAIT)
}

fn mem(name: &str) -> (MemPort, MemPortHandle) {
    MemPort::queue(name, 64)
}

/// A port that records the thread it is dropped on.
#[derive(Debug)]
struct Tracked {
    inner: MemPort,
    dropped_on: Arc<Mutex<Option<ThreadId>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        *self.dropped_on.lock().unwrap() = Some(std::thread::current().id());
    }
}

impl Port for Tracked {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn rx(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize, ev: &mut IoEvents) -> usize {
        self.inner.rx(pool, out, max, ev)
    }
    fn tx(&mut self, pool: &mut FramePool, frames: &mut Vec<Frame>, ev: &mut IoEvents) -> usize {
        self.inner.tx(pool, frames, ev)
    }
    fn service(&mut self, pool: &mut FramePool, ev: &mut IoEvents) {
        self.inner.service(pool, ev)
    }
}

fn tracked(name: &str) -> (Tracked, MemPortHandle, Arc<Mutex<Option<ThreadId>>>) {
    let (inner, h) = mem(name);
    let dropped_on = Arc::new(Mutex::new(None));
    (Tracked { inner, dropped_on: dropped_on.clone() }, h, dropped_on)
}

#[test]
fn ports_attached_and_detached_on_a_running_worker_are_served_counted_and_their_slots_reused() {
    let (a, ha) = mem("a");
    let mut cfg = WorkerConfig::new("wx-cmd");
    cfg.spare_ports = 1;
    let pool = weft_engine::port::FramePool::new(256).unwrap();
    let w = Worker::new(cfg, pool, vec![Box::new(a) as Box<dyn Port>], Recorder::default())
        .unwrap()
        .spawn()
        .unwrap();

    // Attached: the worker serves the new port from its next loop.
    let (b, hb, b_dropped_on) = tracked("b");
    assert_eq!(attach(&w, b).unwrap(), PortId(1));
    for _ in 0..3 {
        assert!(hb.inject(&frame()));
    }
    wait_for("b's frames reflected", WAIT, || hb.sent() == 3);
    assert!(ha.inject(&frame()));
    wait_for("a served alongside", WAIT, || ha.sent() == 1);

    // No free slot left: refused, nothing changes.
    let (c, _, c_dropped_on) = tracked("c");
    match attach(&w, c) {
        Err(CommandError::NoFreeSlot { slots: 2, .. }) => {}
        other => panic!("a third port on a 2-slot worker: {other:?}"),
    }
    let here = Some(std::thread::current().id());
    assert_eq!(*c_dropped_on.lock().unwrap(), here, "a refused port is closed by the caller");

    // Detached: its final counters come back, the slot is free, a second detach is refused.
    let then = || Box::new(|r: &mut Recorder, id| r.events.push(("detach", id)));
    let gone = w.detach(PortId(1), then(), WAIT).unwrap();
    assert_eq!((gone.totals.rx_packets, gone.totals.tx_packets, gone.dropped), (3, 3, 0));
    assert_eq!(*b_dropped_on.lock().unwrap(), here, "a detached port is closed by the caller");
    assert_eq!(w.counters().snapshot().port_names, vec!["a".to_owned(), String::new()]);
    match w.detach(PortId(1), then(), WAIT) {
        Err(CommandError::NoSuchPort { port: 1, .. }) => {}
        other => panic!("detaching a free slot: {other:?}"),
    }
    assert!(hb.inject(&frame()));

    // The next attach takes the slot, with fresh counters.
    let (d, hd) = mem("d");
    assert_eq!(attach(&w, d).unwrap(), PortId(1));
    assert!(hd.inject(&frame()));
    wait_for("d's frame reflected", WAIT, || hd.sent() == 1);
    let worker = w.stop().unwrap();
    let s = worker.counters().snapshot();
    assert_eq!(s.port("d").map(|t| t.rx_packets), Some(1), "{s:?}");
    assert_eq!(hb.sent(), 3, "a detached port is not served");
    assert_eq!(
        worker.processor().events,
        vec![("attach", PortId(1)), ("detach", PortId(1)), ("attach", PortId(1))]
    );
}
