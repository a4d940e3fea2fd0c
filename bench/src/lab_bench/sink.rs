//! The sink: an AF_XDP socket on the receiving pod's `pod0` behind the engine's filter
//! program set to "IPv4 to this pod's address" (ARP and everything else still reach the pod's
//! kernel, so its neighbours stay resolved). It counts the frames tagged with the current run
//! id — frames of an earlier run that arrive late are counted apart as stray — and, for
//! latency, records now − send time of every frame into an HdrHistogram. All namespaces share
//! CLOCK_MONOTONIC, so that difference is the exact one-way latency.
//!
//! The frames never enter the pod's IP stack: what is measured is the path up to the pod's
//! interface, not the pod's socket layer (the same for weft and the kernel).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use weft_engine::port::xdp_filter::{FilterParams, XdpAttachment, XdpMode, XdpProgram};
use weft_engine::port::{AfXdpPort, FramePool, IoEvents, Port, XskConfig};

use super::frame::{now_ns, read_tag};

/// Largest one-way latency the histogram holds (10 s); larger values are clamped.
pub const MAX_LATENCY_NS: u64 = 10_000_000_000;

/// What to receive.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The pod interface (inside the thread's namespace).
    pub iface: String,
    /// The pod's address: IPv4 to it goes to the sink.
    pub pod_ip: Ipv4Addr,
    /// The run whose frames count.
    pub run: u32,
    /// Record one-way latencies.
    pub latency: bool,
}

/// What the sink saw.
#[derive(Debug, Clone)]
pub struct SinkReport {
    /// Frames of this run.
    pub delivered: u64,
    /// Tagged frames of other runs (late arrivals).
    pub stray: u64,
    /// Frames of this run whose sequence number was below the previous one.
    pub reordered: u64,
    /// Kernel drops on the sink socket (rx ring full, fill ring empty): if not zero, the sink
    /// was too slow and the delivered count is a lower bound.
    pub sink_drops: u64,
    /// One-way latencies (ns) of this run's frames, when asked for.
    pub latency: Option<Histogram<u64>>,
}

/// Runs the sink until `stop` is set; call on a thread inside the pod's namespace. `ready`
/// is called once frames are being received.
pub fn run(cfg: &SinkConfig, stop: &Arc<AtomicBool>, ready: impl FnOnce()) -> anyhow::Result<SinkReport> {
    // The filter sends VXLAN/IPIP to `public_ip` and IPv4 to `pod_subnet` to the socket: no
    // public address (0.0.0.0 is never a destination), the pod's /32 as the subnet.
    let params = FilterParams {
        public_ip: Ipv4Addr::UNSPECIFIED,
        vxlan_port: None,
        pod_subnet: Some((cfg.pod_ip, 32)),
    };
    let mut xdp = XdpAttachment::attach(&cfg.iface, XdpProgram::Filter(params), XdpMode::Native)
        .with_context(|| format!("sink XDP program on {}", cfg.iface))?;
    let mut pool = FramePool::new(8192).context("sink frame pool")?;
    let xsk = XskConfig { ring_size: 4096, fill_target: 2048, ..XskConfig::new(&cfg.iface, 0) };
    let mut port =
        AfXdpPort::open(&mut pool, &xsk).with_context(|| format!("sink AF_XDP on {}", cfg.iface))?;
    xdp.register_socket(0, port.fd()).with_context(|| format!("sink socket on {}", cfg.iface))?;
    let mut latency = if cfg.latency {
        Some(Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3).context("latency histogram")?)
    } else {
        None
    };
    ready();
    let mut report = SinkReport { delivered: 0, stray: 0, reordered: 0, sink_drops: 0, latency: None };
    let mut ev = IoEvents::default();
    let mut frames = Vec::with_capacity(64);
    let mut last_seq = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let n = port.rx(&mut pool, &mut frames, 64, &mut ev);
        let now = if latency.is_some() && n > 0 { now_ns() } else { 0 };
        for f in frames.drain(..) {
            if let Some(tag) = read_tag(pool.data(&f)) {
                if tag.run != cfg.run {
                    report.stray += 1;
                } else {
                    report.delivered += 1;
                    if tag.seq < last_seq {
                        report.reordered += 1;
                    }
                    last_seq = tag.seq;
                    if let Some(h) = latency.as_mut() {
                        h.saturating_record(now.saturating_sub(tag.time_ns).max(1));
                    }
                }
            }
            pool.free(f);
        }
        port.service(&mut pool, &mut ev);
        if n == 0 {
            // Idle: sleep in poll() rather than spin, the two cores are busy with the path.
            let mut fds = [PollFd::new(port.fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(1u8));
        }
    }
    let k = port.kernel_drops();
    report.sink_drops = k.rx_dropped + k.rx_ring_full;
    report.latency = latency;
    Ok(report)
}

/// How long the sink keeps counting after the generator stopped: frames still in flight
/// (queues of veths, the engine's rings) arrive within this.
pub const DRAIN: Duration = Duration::from_millis(150);
