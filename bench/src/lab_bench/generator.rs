//! The traffic generator: AF_XDP transmit on a pod's `pod0` (copy mode on veth, one
//! `sendto` wakeup per batch the kernel asks for), at full speed or at a fixed rate, and its
//! own account of what it sent, so a bottlenecked generator shows in the results.
//!
//! Why AF_XDP: the engine's AF_PACKET port sends one `send` per frame, AF_XDP hands the
//! kernel a whole ring of descriptors per wakeup (the kernel's generic transmit takes up to
//! 32 per call). `weft-bench lab --generator af-packet` runs the same loop over the AF_PACKET
//! port for comparison (README: measured rates of both).
//!
//! Per packet the loop copies the template into a UMEM frame and patches the flow (UDP
//! source port), run id, sequence number and, when stamping, the send time. No allocation in
//! the loop: frames come from the generator's own pool and return through the completion
//! ring.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use weft_engine::port::{
    AfPacketPort, AfXdpPort, Frame, FramePool, IoEvents, Port, RX_HEADROOM, TpacketGeometry, XskConfig,
};

use super::frame::{Template, now_ns};

/// Which socket the generator transmits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxKind {
    /// AF_XDP (copy mode on veth).
    AfXdp,
    /// AF_PACKET, one `send` per frame (the engine's fallback port).
    AfPacket,
}

impl TxKind {
    /// Parses `af-xdp` or `af-packet`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "af-xdp" => Ok(TxKind::AfXdp),
            "af-packet" => Ok(TxKind::AfPacket),
            _ => anyhow::bail!("generator {s:?} is not one of af-xdp, af-packet"),
        }
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// The pod interface to send on (inside the thread's namespace).
    pub iface: String,
    /// The frame.
    pub template: Template,
    /// Distinct flows (source ports), cycled per packet.
    pub flows: u32,
    /// The run id written into every frame.
    pub run: u32,
    /// How long to send.
    pub duration: Duration,
    /// Frames per second; `None`: as fast as the socket takes them.
    pub rate: Option<f64>,
    /// Write a send time into every frame (latency runs); otherwise one per batch.
    pub stamp_each: bool,
    /// The socket kind.
    pub tx: TxKind,
}

/// What the generator did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GenReport {
    /// Frames the kernel took (transmit completed).
    pub sent: u64,
    /// Seconds from the first to the last send.
    pub secs: f64,
    /// Times the tx ring (or socket buffer) was full.
    pub tx_ring_full: u64,
    /// Wakeup system calls.
    pub wakeups: u64,
    /// Frames still queued when the run ended (not counted as sent).
    pub unfinished: u64,
}

impl GenReport {
    /// The generator's achieved rate.
    pub fn pps(&self) -> f64 {
        if self.secs > 0.0 { self.sent as f64 / self.secs } else { 0.0 }
    }
}

const POOL_FRAMES: u32 = 4096;
const BATCH: usize = 64;
/// Frames parked in the (unused) fill ring of a transmit-only AF_XDP socket.
const FILL: u32 = 16;

/// Opens the socket and sends; call it on a thread inside the pod's namespace. `ready` is
/// called once the socket is open, just before the first frame.
pub fn run(cfg: &GenConfig, ready: impl FnOnce()) -> anyhow::Result<GenReport> {
    let mut pool = FramePool::new(POOL_FRAMES).context("generator frame pool")?;
    let mut port: Box<dyn Port> = match cfg.tx {
        TxKind::AfXdp => {
            let xsk = XskConfig { ring_size: 2048, fill_target: FILL, ..XskConfig::new(&cfg.iface, 0) };
            Box::new(
                AfXdpPort::open(&mut pool, &xsk)
                    .with_context(|| format!("generator AF_XDP on {}", cfg.iface))?,
            )
        }
        TxKind::AfPacket => Box::new(
            AfPacketPort::open(&cfg.iface, TpacketGeometry::default())
                .with_context(|| format!("generator AF_PACKET on {}", cfg.iface))?,
        ),
    };
    let parked = POOL_FRAMES as usize - pool.free_frames();
    ready();
    let mut ev = IoEvents::default();
    let mut frames: Vec<Frame> = Vec::with_capacity(BATCH);
    let flows = cfg.flows.max(1);
    let len = cfg.template.len();
    let (mut seq, mut accepted) = (0u32, 0u64);
    let start = Instant::now();
    let end = start + cfg.duration;
    let mut last_send = start;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        port.service(&mut pool, &mut ev);
        let want = match cfg.rate {
            None => BATCH,
            Some(rate) => {
                let due = ((now - start).as_secs_f64() * rate) as u64;
                let n = due.saturating_sub(u64::from(seq)).min(BATCH as u64) as usize;
                if n == 0 {
                    let next = start + Duration::from_secs_f64((u64::from(seq) + 1) as f64 / rate);
                    let gap = next.saturating_duration_since(now);
                    // Sleep only when the gap is well above the timer slack; spin otherwise.
                    if gap > Duration::from_micros(150) {
                        std::thread::sleep(gap - Duration::from_micros(100));
                    } else {
                        std::hint::spin_loop();
                    }
                    continue;
                }
                n
            }
        };
        let batch_ns = now_ns();
        for _ in 0..want {
            let Some(mut f) = pool.alloc() else { break };
            let mut view = pool.view(&mut f);
            if view.set_bounds(RX_HEADROOM, len) {
                let t = if cfg.stamp_each { now_ns() } else { batch_ns };
                cfg.template.stamp(view.data_mut(), (seq % flows) as u16, cfg.run, seq, t);
                seq = seq.wrapping_add(1);
                frames.push(f);
            } else {
                pool.free(f);
                break;
            }
        }
        let n = port.tx(&mut pool, &mut frames, &mut ev);
        accepted += n as u64;
        if n > 0 {
            last_send = Instant::now();
        }
        // What the ring did not take goes back; its sequence numbers are reused.
        seq = seq.wrapping_sub(frames.len() as u32);
        for f in frames.drain(..) {
            pool.free(f);
        }
    }
    // Let the kernel finish what is queued (copy mode sends on our wakeups).
    let drain_until = Instant::now() + Duration::from_millis(200);
    let in_flight = |pool: &FramePool| (POOL_FRAMES as usize - pool.free_frames()).saturating_sub(parked);
    while in_flight(&pool) > 0 && Instant::now() < drain_until {
        port.service(&mut pool, &mut ev);
        std::thread::sleep(Duration::from_micros(50));
    }
    let unfinished = in_flight(&pool) as u64;
    Ok(GenReport {
        sent: accepted - unfinished,
        secs: (last_send - start).as_secs_f64(),
        tx_ring_full: ev.tx_ring_full,
        wakeups: ev.wakeups,
        unfinished,
    })
}
