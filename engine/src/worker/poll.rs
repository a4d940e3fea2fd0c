//! The worker itself: its owned context and the poll loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::command::{Answer, Command, CommandError, CommandQueue, Detached, Outcome, PortChange};
use super::counters::{LocalCounters, PortTotals, WorkerCounters, batch_bucket};
use super::drop_reason::DropReason;
use super::handoff::{HandoffEndpoint, HandoffSlot};
use super::idle::{Idle, Idler};
use super::processor::{FrameProcessor, PortId, Verdict};
use super::wake::Doorbell;
use super::{WorkerConfig, WorkerError};
use crate::port::afxdp::sys::PollSet;
use crate::port::{Frame, FramePool, IoEvents, MAX_FRAME_LEN, Port};

/// While idle and spinning, counters are published once per this many loops.
const IDLE_PUBLISH_EVERY: u64 = 256;

/// Timer slack of worker threads, ns: idle naps end within this of their deadline.
pub const WORKER_TIMER_SLACK_NS: u64 = 1_000;
/// A worker's whole context: its frame pool, its ports, its processor and its
/// counters. Built on the control thread, then moved into the worker thread;
/// nothing in it is shared except the counters (read-only for others), the
/// handoff inboxes and the command queue (lock-free).
///
/// Ports sit in slots: port `i` is [`PortId`]`(i)`. A port detached while the worker runs
/// leaves its slot free (the other ports keep their ids) for the next attach.
#[derive(Debug)]
pub struct Worker<P> {
    cfg: WorkerConfig,
    // Field order is drop order: sockets close before their UMEM is unmapped.
    ports: Vec<Option<Box<dyn Port>>>,
    pool: FramePool,
    processor: P,
    counters: Arc<WorkerCounters>,
    handoff: Option<HandoffEndpoint>,
    /// Wakes this worker when it blocks (its handoff endpoint's, when it has one).
    doorbell: Arc<Doorbell>,
    commands: Arc<CommandQueue<P>>,
}

/// A running worker thread.
#[derive(Debug)]
pub struct WorkerHandle<P> {
    stop: Arc<AtomicBool>,
    counters: Arc<WorkerCounters>,
    doorbell: Arc<Doorbell>,
    commands: Arc<CommandQueue<P>>,
    /// Sequence number of the last command sent.
    seq: AtomicU64,
    /// Capacity of a port's transmit staging queue (made here for each attached port).
    stage_cap: usize,
    name: String,
    thread: JoinHandle<Worker<P>>,
}

impl<P> WorkerHandle<P> {
    /// The worker's counters, readable while it runs.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// True once the worker's thread ended (stopped, or panicked).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Raises the stop flag (the worker finishes its loop, flushes, and exits), waking it
    /// if it blocks.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.doorbell.ring();
    }

    /// Stops the worker and returns its context (pool and ports, for inspection).
    pub fn stop(self) -> std::thread::Result<Worker<P>> {
        self.request_stop();
        self.thread.join()
    }

    fn send(&self, cmd: impl FnOnce(u64) -> Command<P>) -> Result<u64, CommandError> {
        if self.thread.is_finished() {
            return Err(CommandError::NoAnswer { worker: self.name.clone(), waited: Duration::ZERO });
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.commands.queue.push(cmd(seq)).map_err(|_| CommandError::QueueFull(self.name.clone()))?;
        self.doorbell.ring();
        Ok(seq)
    }

    /// Waits for the answer to command `seq`; what it carries back is dropped here.
    fn answer(&self, seq: u64, timeout: Duration) -> Result<Outcome, CommandError> {
        let Some(Answer { outcome, port, stage, then, .. }) =
            self.commands.wait(seq, timeout, || self.thread.is_finished())
        else {
            return Err(CommandError::NoAnswer { worker: self.name.clone(), waited: timeout });
        };
        // A detached port closes here (close, unmap of its rings), not on the worker.
        drop((port, stage, then));
        Ok(outcome)
    }

    /// Attaches `port` (opened on the caller's thread, e.g. by
    /// [`AfXdpPort::open_shared`](crate::port::AfXdpPort::open_shared)) to the running
    /// worker: between two batches it puts the port in a free slot, then runs `then` with its
    /// processor and the new port's id. Waits up to `timeout` for the answer; a refused port
    /// is closed here.
    pub fn attach(
        &self,
        port: Box<dyn Port>,
        then: PortChange<P>,
        timeout: Duration,
    ) -> Result<PortId, CommandError> {
        let name = port.name().to_owned();
        let stage = Vec::with_capacity(self.stage_cap);
        let seq = self.send(|seq| Command::Attach { seq, port, stage, then })?;
        match self.answer(seq, timeout)? {
            Outcome::Attached(id) => {
                self.counters.set_name(usize::from(id.0), &name);
                Ok(id)
            }
            Outcome::NoFreeSlot { slots } => {
                Err(CommandError::NoFreeSlot { worker: self.name.clone(), slots })
            }
            other => unreachable_outcome(&self.name, other),
        }
    }

    /// Detaches port `port` from the running worker: between two batches it runs `then` with
    /// its processor, sends what is staged for the port, gives the port's frames back to its
    /// pool and returns it; the port is closed here. Detach a port only once nothing (its XDP
    /// program) feeds it.
    pub fn detach(
        &self,
        port: PortId,
        then: PortChange<P>,
        timeout: Duration,
    ) -> Result<Detached, CommandError> {
        let seq = self.send(|seq| Command::Detach { seq, port, then })?;
        match self.answer(seq, timeout)? {
            Outcome::Detached(d) => {
                self.counters.set_name(usize::from(port.0), "");
                Ok(d)
            }
            Outcome::NoSuchPort(p) => Err(CommandError::NoSuchPort { worker: self.name.clone(), port: p.0 }),
            other => unreachable_outcome(&self.name, other),
        }
    }
}

/// An answer of the wrong kind for its command (the worker answers each command with its own
/// kind, so this does not happen): reported as no answer rather than a panic.
fn unreachable_outcome<T>(worker: &str, _outcome: Outcome) -> Result<T, CommandError> {
    Err(CommandError::NoAnswer { worker: worker.to_owned(), waited: Duration::ZERO })
}

impl<P: FrameProcessor + 'static> Worker<P> {
    /// A worker over `ports` (port `i` is [`PortId`]`(i)`), taking frames from `pool`.
    pub fn new(
        cfg: WorkerConfig,
        pool: FramePool,
        ports: Vec<Box<dyn Port>>,
        processor: P,
    ) -> Result<Self, WorkerError> {
        if cfg.batch == 0 || cfg.batch > 256 {
            return Err(WorkerError::Config {
                name: cfg.name,
                problem: format!("batch size {} must be 1..=256", cfg.batch),
            });
        }
        if ports.is_empty() || ports.len() > u16::MAX as usize {
            return Err(WorkerError::Config {
                name: cfg.name,
                problem: format!("{} ports: a worker needs 1..=65535", ports.len()),
            });
        }
        let names = ports.iter().map(|p| p.name().to_owned()).collect();
        let slots = (ports.len() + cfg.spare_ports).min(u16::MAX as usize);
        let counters = Arc::new(WorkerCounters::with_slots(names, slots));
        // Room for every slot up front: an attach while running does not allocate.
        let mut slotted = Vec::with_capacity(slots);
        slotted.extend(ports.into_iter().map(Some));
        Ok(Worker {
            cfg,
            ports: slotted,
            pool,
            processor,
            counters,
            handoff: None,
            doorbell: Arc::default(),
            commands: Arc::default(),
        })
    }

    /// Joins the handoff mesh with `endpoint` (and takes its doorbell, which the other
    /// workers ring).
    pub fn with_handoff(mut self, endpoint: HandoffEndpoint) -> Self {
        self.doorbell = endpoint.doorbell().clone();
        self.handoff = Some(endpoint);
        self
    }

    /// The counters, readable from any thread while the worker runs.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// The frame pool (inspect free frames and copies after a run).
    pub fn pool(&self) -> &FramePool {
        &self.pool
    }

    /// The ports, by slot (`None`: a free slot).
    pub fn ports(&self) -> &[Option<Box<dyn Port>>] {
        &self.ports
    }

    /// The processor.
    pub fn processor(&self) -> &P {
        &self.processor
    }

    /// Starts the worker on its own thread, pinned to `cfg.core` if set, with a
    /// [`WORKER_TIMER_SLACK_NS`] timer slack.
    /// Returns once the thread runs (and is pinned), or with the pinning error.
    pub fn spawn(self) -> Result<WorkerHandle<P>, WorkerError> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = self.counters.clone();
        let doorbell = self.doorbell.clone();
        let commands = self.commands.clone();
        let name = self.cfg.name.clone();
        let core = self.cfg.core;
        let stage_cap = self.stage_cap();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let mut me = self;
                // Best effort: a worker that cannot shorten its slack only naps longer.
                let _ = crate::port::afxdp::sys::set_timer_slack(WORKER_TIMER_SLACK_NS);
                if let Some(core) = core {
                    if let Err(e) = crate::port::afxdp::sys::pin_current_thread(core) {
                        let _ = ready_tx.send(Err(e));
                        return me;
                    }
                }
                let _ = ready_tx.send(Ok(()));
                me.run(&flag);
                me
            })
            .map_err(|source| WorkerError::Spawn { name: name.clone(), source })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(WorkerHandle {
                stop,
                counters,
                doorbell,
                commands,
                seq: AtomicU64::new(0),
                stage_cap,
                name,
                thread,
            }),
            Ok(Err(source)) => {
                let _ = thread.join();
                Err(WorkerError::Pin { name, core: core.unwrap_or(0), source })
            }
            Err(_) => Err(WorkerError::Spawn {
                name,
                source: std::io::Error::other("worker thread exited before starting"),
            }),
        }
    }

    /// Runs the poll loop on the calling thread until `stop` is raised, then
    /// flushes what is staged and publishes the final counters.
    pub fn run(&mut self, stop: &AtomicBool) {
        let slots = self.counters.slots();
        let batch = self.cfg.batch;
        let stage_cap = self.stage_cap();
        let mut rx: Vec<Frame> = Vec::with_capacity(batch);
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(batch);
        let mut staged: Vec<Vec<Frame>> = (0..slots)
            .map(|i| if i < self.ports.len() { Vec::with_capacity(stage_cap) } else { Vec::new() })
            .collect();
        let mut local = LocalCounters::new(slots);
        let mut idler = Idler::new(self.cfg.idle);
        let mut last_flush = Instant::now();
        let mut ev = IoEvents::default();
        let mut waits = None;
        self.refresh_poll_set(&mut waits);
        // Processors with timers (WireGuard) are ticked between batches; the clock is read
        // once per loop only for them.
        let tick_every = self.processor.tick_interval();
        let mut last_tick = Instant::now();
        let mut ticked: Vec<(PortId, Frame)> =
            Vec::with_capacity(if tick_every.is_some() { batch } else { 0 });

        while !stop.load(Ordering::Relaxed) {
            // Between batches: ports that come or go (one queue check per loop).
            if !self.commands.queue.is_empty() {
                self.run_commands(&mut staged, &mut local, &mut ev);
                self.refresh_poll_set(&mut waits);
            }
            let mut work = 0usize;
            for p in 0..self.ports.len() {
                work += self.rx_one(p, &mut rx, &mut verdicts, &mut staged, &mut local, &mut ev);
            }
            work += self.drain_inbox(&mut staged, &mut local);
            if let Some(every) = tick_every {
                let now = Instant::now();
                if now.duration_since(last_tick) >= every {
                    last_tick = now;
                    self.processor.tick(&mut self.pool, &mut ticked);
                    for (port, f) in ticked.drain(..) {
                        match staged
                            .get_mut(usize::from(port.0))
                            .filter(|_| usize::from(port.0) < self.ports.len())
                        {
                            Some(s) => {
                                s.push(f);
                                work += 1;
                            }
                            None => {
                                local.drop(DropReason::NoSuchPort, 1);
                                self.pool.free(f);
                            }
                        }
                    }
                }
            }

            // Input went quiet (nothing received this loop): nothing will fill the batch soon,
            // so send what is staged now instead of holding it for the timer. The clock is
            // read only while frames are staged and input keeps coming.
            let pending = staged.iter().any(|s| !s.is_empty());
            let quiet = work == 0 && self.cfg.tx_flush_when_quiet;
            let flush_due = pending
                && (quiet || {
                    let now = Instant::now();
                    let due = now.duration_since(last_flush) >= self.cfg.tx_flush;
                    if due {
                        last_flush = now;
                    }
                    due
                });
            for (q, s) in staged.iter_mut().enumerate() {
                if s.len() >= batch || (flush_due && !s.is_empty()) {
                    work += self.tx_one(q, s, &mut local, &mut ev);
                }
            }
            for port in self.ports.iter_mut().flatten() {
                port.service(&mut self.pool, &mut ev);
            }

            local.worker.loops += 1;
            if work == 0 {
                local.worker.idle_loops += 1;
            }
            self.fold(&mut local, &mut ev);

            // Staged frames keep the worker awake until the flush timer sends them. Counters
            // are published after every loop with work, and while idle only before a nap or
            // every IDLE_PUBLISH_EVERY loops: an idle spin does not rewrite them each time.
            if work > 0 || staged.iter().any(|s| !s.is_empty()) {
                idler.busy();
                self.counters.publish(&local);
                continue;
            }
            match idler.idle(waits.is_some()) {
                Idle::Spin => {
                    if local.worker.idle_loops % IDLE_PUBLISH_EVERY == 0 {
                        self.counters.publish(&local);
                    }
                }
                Idle::Nap(d) => {
                    self.counters.publish(&local);
                    std::thread::sleep(d);
                }
                Idle::Block(max) => match waits.as_mut() {
                    Some(w) => self.block(w, max, stop, &mut local),
                    None => self.counters.publish(&local),
                },
            }
        }
        self.shutdown(&mut staged, &mut local, &mut ev);
    }

    /// Frames a port's staging queue holds before its backlog is trimmed, for every slot.
    fn stage_cap(&self) -> usize {
        self.cfg.tx_backlog + (self.counters.slots() + 1) * self.cfg.batch
    }

    /// Makes `waits` what an idle worker blocks on: every port's descriptor and the doorbell;
    /// `None` (nap instead) when a port has no descriptor or there is no doorbell. Reuses the
    /// set's room (one entry per slot and the doorbell), so a port change allocates nothing.
    fn refresh_poll_set(&self, waits: &mut Option<PollSet>) {
        let Some(bell) = self.doorbell.fd() else {
            *waits = None;
            return;
        };
        let mut set = waits.take().unwrap_or_else(|| PollSet::with_capacity(self.counters.slots() + 1));
        let ports = self.ports.iter().flatten().map(|p| p.rx_wait_fd());
        if set.replace(ports.chain([Some(bell)])) {
            *waits = Some(set);
        }
    }

    /// Runs the queued commands (see `command.rs`) while the answer queue has room, and
    /// answers each.
    fn run_commands(&mut self, staged: &mut [Vec<Frame>], local: &mut LocalCounters, ev: &mut IoEvents) {
        while !self.commands.answers.is_full() {
            let Some(cmd) = self.commands.queue.pop() else { break };
            let answer = match cmd {
                Command::Attach { seq, port, stage, then } => {
                    self.attach_port(seq, port, stage, then, staged, local)
                }
                Command::Detach { seq, port, then } => self.detach_port(seq, port, then, staged, local, ev),
            };
            // Room checked above, and only this worker pushes answers.
            let _ = self.commands.answers.push(answer);
            self.counters.publish(local);
        }
    }

    fn attach_port(
        &mut self,
        seq: u64,
        port: Box<dyn Port>,
        mut stage: Vec<Frame>,
        mut then: PortChange<P>,
        staged: &mut [Vec<Frame>],
        local: &mut LocalCounters,
    ) -> Answer<P> {
        let slots = self.counters.slots();
        let slot = match self.ports.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.ports.len() < slots => self.ports.len(),
            None => {
                let outcome = Outcome::NoFreeSlot { slots };
                return Answer { seq, outcome, port: Some(port), stage, then };
            }
        };
        if slot == self.ports.len() {
            self.ports.push(None);
        }
        local.ports[slot] = PortTotals::default();
        // The slot's old staging queue (empty: its port's detach drained it) goes back with
        // the answer.
        std::mem::swap(&mut staged[slot], &mut stage);
        self.ports[slot] = Some(port);
        let id = PortId(slot as u16);
        then(&mut self.processor, id);
        Answer { seq, outcome: Outcome::Attached(id), port: None, stage, then }
    }

    fn detach_port(
        &mut self,
        seq: u64,
        id: PortId,
        mut then: PortChange<P>,
        staged: &mut [Vec<Frame>],
        local: &mut LocalCounters,
        ev: &mut IoEvents,
    ) -> Answer<P> {
        let slot = usize::from(id.0);
        if self.ports.get(slot).is_none_or(Option::is_none) {
            return Answer { seq, outcome: Outcome::NoSuchPort(id), port: None, stage: Vec::new(), then };
        }
        then(&mut self.processor, id);
        if !staged[slot].is_empty() {
            self.tx_one(slot, &mut staged[slot], local, ev);
        }
        let Some(mut port) = self.ports[slot].take() else {
            return Answer { seq, outcome: Outcome::NoSuchPort(id), port: None, stage: Vec::new(), then };
        };
        port.service(&mut self.pool, ev);
        let dropped = staged[slot].len() as u64;
        local.drop(DropReason::NoSuchPort, dropped);
        for f in staged[slot].drain(..) {
            self.pool.free(f);
        }
        let frames_lost = port.release(&mut self.pool);
        while self.ports.last().is_some_and(Option::is_none) {
            self.ports.pop();
        }
        let totals = std::mem::take(&mut local.ports[slot]);
        let stage = std::mem::take(&mut staged[slot]);
        let outcome = Outcome::Detached(Detached { totals, dropped, frames_lost });
        Answer { seq, outcome, port: Some(port), stage, then }
    }

    /// Blocks until a port has frames, the doorbell rings (a handed-over frame, a stop
    /// request) or `max` passes; first announces the sleep and looks for such work once more
    /// (see `wake.rs`: no wakeup is lost).
    fn block(
        &self,
        waits: &mut PollSet,
        max: std::time::Duration,
        stop: &AtomicBool,
        local: &mut LocalCounters,
    ) {
        self.doorbell.going_to_sleep();
        let handed_over = self.handoff.as_ref().is_some_and(|h| !h.inbox().is_empty());
        let commanded = !self.commands.queue.is_empty();
        if !handed_over && !commanded && !stop.load(Ordering::Relaxed) {
            local.worker.waits += 1;
            self.counters.publish(local);
            let ms = i32::try_from(max.as_millis()).unwrap_or(i32::MAX).max(1);
            waits.wait(ms);
        } else {
            self.counters.publish(local);
        }
        self.doorbell.awake();
    }

    /// Receives one batch on port `p`, runs the processor, and routes each frame
    /// by its verdict. Returns the number of frames received.
    fn rx_one(
        &mut self,
        p: usize,
        rx: &mut Vec<Frame>,
        verdicts: &mut Vec<Verdict>,
        staged: &mut [Vec<Frame>],
        local: &mut LocalCounters,
        ev: &mut IoEvents,
    ) -> usize {
        rx.clear();
        let Some(port) = self.ports[p].as_mut() else { return 0 };
        let n = port.rx(&mut self.pool, rx, self.cfg.batch, ev);
        if n == 0 {
            return 0;
        }
        let bytes: usize = rx.iter().map(Frame::len).sum();
        local.ports[p].rx_packets += n as u64;
        local.ports[p].rx_bytes += bytes as u64;
        local.batches[batch_bucket(n)] += 1;

        verdicts.clear();
        self.processor.process_batch(PortId(p as u16), &mut self.pool, rx, verdicts);
        // A processor that returns too few verdicts gets the rest discarded.
        verdicts.resize(rx.len(), Verdict::Drop(DropReason::Discard));
        for (frame, verdict) in rx.drain(..).zip(verdicts.drain(..)) {
            match verdict {
                Verdict::Tx(q) => match staged.get_mut(q.0 as usize) {
                    Some(s) => s.push(frame),
                    None => {
                        local.drop(DropReason::NoSuchPort, 1);
                        self.pool.free(frame);
                    }
                },
                Verdict::Drop(reason) => {
                    local.drop(reason, 1);
                    self.pool.free(frame);
                }
                Verdict::Handoff { worker, port } => {
                    self.hand_off(worker.0 as usize, port, &frame, local);
                    self.pool.free(frame);
                }
            }
        }
        n
    }

    fn hand_off(&mut self, worker: usize, port: PortId, frame: &Frame, local: &mut LocalCounters) {
        let Some(inbox) = self.handoff.as_ref().and_then(|h| h.inboxes.get(worker)) else {
            local.drop(DropReason::NoSuchWorker, 1);
            return;
        };
        let data = self.pool.data(frame);
        // A frame that grew into its headroom (encapsulation) can be longer than a slot:
        // it cannot be carried whole, so it is a counted drop rather than a truncated frame.
        if data.len() > MAX_FRAME_LEN {
            local.drop(DropReason::HandoffTooLong, 1);
            return;
        }
        let mut slot = HandoffSlot { port, len: data.len() as u16, bytes: [0; MAX_FRAME_LEN] };
        slot.bytes[..data.len()].copy_from_slice(data);
        match inbox.push(slot) {
            Ok(()) => {
                local.worker.handoff_out += 1;
                if let Some(bell) = self.handoff.as_ref().and_then(|h| h.doorbells.get(worker)) {
                    bell.ring();
                }
            }
            Err(_) => local.drop(DropReason::HandoffFull, 1),
        }
    }

    /// Copies up to one batch of handed-off frames into this worker's pool, lets the
    /// processor finish each ([`FrameProcessor::handed_in`]) and stages them on their ports.
    fn drain_inbox(&mut self, staged: &mut [Vec<Frame>], local: &mut LocalCounters) -> usize {
        let Some(h) = self.handoff.as_ref() else {
            return 0;
        };
        let mut n = 0;
        while n < self.cfg.batch {
            let Some(slot) = h.inbox().pop() else { break };
            n += 1;
            local.worker.handoff_in += 1;
            let Some(mut f) = self.pool.copy_in(&slot.bytes[..usize::from(slot.len).min(MAX_FRAME_LEN)])
            else {
                local.drop(DropReason::HandoffNoFrame, 1);
                continue;
            };
            let verdict = self.processor.handed_in(slot.port, &mut self.pool.view(&mut f));
            match verdict {
                Verdict::Tx(q) if (q.0 as usize) < staged.len() => staged[q.0 as usize].push(f),
                Verdict::Drop(reason) => {
                    local.drop(reason, 1);
                    self.pool.free(f);
                }
                // No second hop: a handed-in frame leaves through one of this worker's ports.
                Verdict::Tx(_) | Verdict::Handoff { .. } => {
                    local.drop(DropReason::NoSuchPort, 1);
                    self.pool.free(f);
                }
            }
        }
        n
    }

    /// Transmits what is staged for port `q`; trims the backlog when the ring
    /// stays full. Returns the number of frames accepted.
    fn tx_one(
        &mut self,
        q: usize,
        s: &mut Vec<Frame>,
        local: &mut LocalCounters,
        ev: &mut IoEvents,
    ) -> usize {
        let Some(port) = self.ports.get_mut(q).and_then(Option::as_mut) else {
            local.drop(DropReason::NoSuchPort, s.len() as u64);
            for f in s.drain(..) {
                self.pool.free(f);
            }
            return 0;
        };
        let before: usize = s.iter().map(Frame::len).sum();
        let sent = port.tx(&mut self.pool, s, ev);
        let after: usize = s.iter().map(Frame::len).sum();
        local.ports[q].tx_packets += sent as u64;
        local.ports[q].tx_bytes += (before - after) as u64;
        if s.len() > self.cfg.tx_backlog {
            let excess = s.len() - self.cfg.tx_backlog;
            for f in s.drain(..excess) {
                self.pool.free(f);
            }
            local.drop(DropReason::TxBacklog, excess as u64);
        }
        sent
    }

    fn fold(&self, local: &mut LocalCounters, ev: &mut IoEvents) {
        let w = &mut local.worker;
        w.wakeups += ev.wakeups;
        w.fill_starved += ev.fill_starved;
        w.tx_ring_full += ev.tx_ring_full;
        w.tx_errors += ev.tx_errors;
        w.invalid_descs += ev.invalid_descs;
        w.copies = self.pool.copies();
        *ev = IoEvents::default();
    }

    /// Flushes staged frames (a few attempts), reaps completions, counts what
    /// could not be sent as `shutdown` drops, publishes the final counters.
    fn shutdown(&mut self, staged: &mut [Vec<Frame>], local: &mut LocalCounters, ev: &mut IoEvents) {
        for _ in 0..8 {
            for (q, s) in staged.iter_mut().enumerate() {
                if !s.is_empty() {
                    self.tx_one(q, s, local, ev);
                }
            }
            for port in self.ports.iter_mut().flatten() {
                port.service(&mut self.pool, ev);
            }
            if staged.iter().all(Vec::is_empty) {
                break;
            }
        }
        for s in staged.iter_mut() {
            local.drop(DropReason::Shutdown, s.len() as u64);
            for f in s.drain(..) {
                self.pool.free(f);
            }
        }
        self.fold(local, ev);
        self.counters.publish(local);
    }
}
