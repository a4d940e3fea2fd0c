//! The engine side of the daemon: the uplink queues, the exception port and the workers that
//! poll them. Pods come and go on the running workers (`pods.rs`); what status shows of all
//! of it is in `status.rs`.
//!
//! One worker per uplink RX queue (`weft-q<i>`, pinned to `workers.cores[i]`), each running a
//! [`Pipeline`](weft_engine::pipeline::Pipeline). Port 0 of every worker is its uplink queue;
//! queue 0's worker also owns the exception port (port 1) when `[exception] interface` is set.
//! Pod ports are spread over the workers (`pods.rs`: each attach goes to the worker with the
//! fewest pods), each worker holding `workers.pod_slots / uplink.queues` (rounded up) free
//! slots for them; a pod's egress leaves through its owner's uplink queue. One worker does
//! everything in the common single-queue case.
//!
//! With `uplink.queues > 1` a frame for a local pod that arrives on (or is sent by a pod of)
//! another worker is decapsulated, TTL-decremented and addressed to the pod there, then handed
//! to the pod's owner, which its next hop names, through the engine's hand-off ring (one
//! bounded lock-free inbox per worker, [`HANDOFF_RING`] frames; a full ring is a counted
//! `handoff_full` drop); the owner sets its port's source MAC and sends it. Frames for the
//! host link are handed to queue 0's worker the same way. Status shows
//! `handoff_out`/`handoff_in` per worker and the `pod_handoff` path.
//!
//! The exception port is a veth whose other end stays in the node's kernel stack: pod traffic
//! to anywhere outside the cluster network is written to it (to the kernel end's MAC, read
//! from sysfs), the kernel routes it, and what the kernel routes back to the pod subnet over
//! that veth (replies, and the node's own traffic to its pods) is delivered to the pods.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use weft_engine::pipeline::{ExceptionPort, PipelineCounters};
use weft_engine::port::pod_program::PodProgram;
use weft_engine::port::xdp_filter::{FilterParams, XdpAttachment, XdpMode};
use weft_engine::port::{
    AfXdpPort, Backend, FramePool, OpenedPort, Port, PortConfig, UmemShare, open_pod_port, open_uplink,
};
use weft_engine::worker::{
    HandoffEndpoint, IdleStrategy, PortId, Worker, WorkerConfig, WorkerHandle, WorkerId, handoff_mesh,
};

use super::DaemonError;
use super::dataplane::{Forwarding, Processor};
use super::pods::{POD_FRAMES, PodError, PodPort};
use super::status::Retired;
use super::underlay::{link_mac, veth_peer_mac};
use crate::config::{
    ExceptionSection, IfName, PodSpec, PortBackend, UplinkSection, WorkersSection, XdpAttach,
};

/// Frames a worker's pool holds per uplink or exception port: the socket's fill-ring target
/// (1024, `XskConfig::new`) and as many again for frames in flight.
const FRAMES_PER_PORT: u32 = 2048;

/// Frames each worker's hand-off inbox holds (uplink queues > 1 only).
pub const HANDOFF_RING: usize = 512;

/// The worker that owns the exception port (queue 0's) in the hand-off mesh.
const HOST_WORKER: WorkerId = WorkerId(0);

/// What status shows about one port.
#[derive(Debug, Clone)]
pub(super) struct PortInfo {
    pub(super) name: String,
    pub(super) role: &'static str,
    pub(super) kind: &'static str,
    pub(super) xdp: Option<String>,
    pub(super) fallback: Option<String>,
}

impl PortInfo {
    pub(super) fn of(
        port: &dyn Port,
        role: &'static str,
        xdp: Option<&XdpAttachment>,
        fallback: Option<String>,
    ) -> Self {
        PortInfo {
            name: port.name().to_owned(),
            role,
            kind: port.kind(),
            xdp: xdp.map(|x| x.mode_name().to_owned()),
            fallback,
        }
    }
}

/// A running worker and what it serves.
#[derive(Debug)]
pub(super) struct Running {
    pub(super) name: String,
    pub(super) core: Option<usize>,
    pub(super) handle: WorkerHandle<Processor>,
    pub(super) paths: Arc<PipelineCounters>,
    pub(super) ports: Vec<PortInfo>,
    /// Its free pod port slots when it started.
    pub(super) pod_slots: usize,
    /// Its pool's UMEM, over which pod sockets are opened here (`pods.rs`).
    pub(super) umem: UmemShare,
}

/// The exception port's lasting state.
#[derive(Debug)]
pub(super) struct Exception {
    pub(super) interface: String,
    /// Its XDP program (dropping it detaches).
    _xdp: Option<XdpAttachment>,
    /// What the pipeline needs (our MAC on it, the kernel end's MAC).
    pub(super) port: ExceptionPort,
}

/// The engine side of a running daemon. Dropping it (or [`Dataplane::shutdown`]) stops and
/// joins every worker, closes the sockets, then detaches every XDP program.
#[derive(Debug)]
pub struct Dataplane {
    pub(super) uplink: UplinkSection,
    pub(super) workers_cfg: WorkersSection,
    pub(super) fwd: Forwarding,
    pub(super) uplink_workers: Vec<Running>,
    pub(super) uplink_xdp: Option<XdpAttachment>,
    pub(super) exception: Option<Exception>,
    pub(super) pods: BTreeMap<IfName, PodPort>,
    /// The XDP program every pod veth shares, loaded at the first AF_XDP pod.
    pub(super) pod_program: Option<PodProgram>,
    /// Hand-off endpoints by queue (empty with one queue).
    mesh: Vec<HandoffEndpoint>,
    pub(super) retired: Retired,
}

fn backend(b: PortBackend) -> Backend {
    match b {
        PortBackend::Auto => Backend::Auto,
        PortBackend::AfXdp => Backend::AfXdp,
        PortBackend::AfPacket => Backend::AfPacket,
    }
}

fn xdp_mode(m: XdpAttach) -> XdpMode {
    match m {
        XdpAttach::Auto => XdpMode::Auto,
        XdpAttach::Native => XdpMode::Native,
        XdpAttach::Generic => XdpMode::Generic,
    }
}

impl Dataplane {
    pub(super) fn port_config(&self, ifname: &str, queue: u32) -> PortConfig {
        let mut cfg = PortConfig::new(ifname, queue);
        cfg.backend = backend(self.uplink.backend);
        cfg.xdp_mode = xdp_mode(self.uplink.xdp_mode);
        cfg
    }

    /// A pool for a worker with `ports` uplink/exception ports and `pod_slots` pod slots:
    /// `workers.frames`, or more when that would not cover every port's fill ring plus as many
    /// frames in flight; a short pool starves the fill rings of the ports opened last.
    fn pool(&self, ports: usize, pod_slots: usize) -> Result<FramePool, DaemonError> {
        let need = u32::try_from(ports)
            .unwrap_or(u32::MAX)
            .saturating_mul(FRAMES_PER_PORT)
            .saturating_add(u32::try_from(pod_slots).unwrap_or(u32::MAX).saturating_mul(POD_FRAMES));
        let frames = self.workers_cfg.frames.max(need);
        FramePool::new(frames).map_err(|source| DaemonError::Pool { frames, source })
    }

    fn worker_config(&self, name: &str, core: Option<usize>, spare_ports: usize) -> WorkerConfig {
        let mut cfg = WorkerConfig::new(name);
        cfg.core = core;
        cfg.batch = self.workers_cfg.batch;
        cfg.spare_ports = spare_ports;
        if self.workers_cfg.busy_poll {
            cfg.idle = IdleStrategy::BusyPoll;
        }
        cfg
    }

    /// Starts the worker of uplink queue `queue` (`weft-q<queue>`, on its core) with room for
    /// `spare_ports` ports attached later.
    fn spawn(
        &self,
        queue: u32,
        pool: FramePool,
        ports: Vec<Box<dyn Port>>,
        info: Vec<PortInfo>,
        mut processor: Processor,
        pod_slots: usize,
    ) -> Result<Running, DaemonError> {
        let name = &format!("weft-q{queue}");
        let core = self.workers_cfg.core_of(queue);
        let paths = processor.counters().clone();
        let cfg = self.worker_config(name, core, pod_slots);
        processor.reserve_ports(ports.len() + pod_slots);
        let umem = pool.umem_share();
        let mut worker = Worker::new(cfg, pool, ports, processor)?;
        if let Some(endpoint) = self.mesh.get(queue as usize) {
            worker = worker.with_handoff(endpoint.clone());
        }
        let handle = worker.spawn()?;
        tracing::info!(worker = name, ?core, ports = ?info.iter().map(|p| &p.name).collect::<Vec<_>>(), "worker started");
        Ok(Running { name: name.to_owned(), core, handle, paths, ports: info, pod_slots, umem })
    }

    /// Pod port slots of each worker: `workers.pod_slots` over the queues, rounded up.
    fn pod_slots_per_worker(&self) -> usize {
        self.workers_cfg.pod_slots.div_ceil(self.uplink.queues.max(1) as usize)
    }

    /// Opens every uplink queue with the filter of `params` and the exception port when
    /// `exception` names one (`host_ip`: the node's address on its kernel end), starts one
    /// worker per queue with a pipeline built from `fwd` and room for its share of the pod
    /// slots, then attaches `pods`.
    pub fn start(
        uplink: &UplinkSection,
        workers: &WorkersSection,
        exception: &ExceptionSection,
        host_ip: Option<Ipv4Addr>,
        params: FilterParams,
        fwd: Forwarding,
        pods: &[PodSpec],
    ) -> Result<Self, DaemonError> {
        let mut dp = Dataplane {
            uplink: uplink.clone(),
            workers_cfg: workers.clone(),
            fwd,
            uplink_workers: Vec::new(),
            uplink_xdp: None,
            exception: None,
            pods: BTreeMap::new(),
            pod_program: None,
            mesh: if uplink.queues > 1 {
                handoff_mesh(u16::try_from(uplink.queues).unwrap_or(u16::MAX), HANDOFF_RING)
            } else {
                Vec::new()
            },
            retired: Retired::default(),
        };
        for queue in 0..uplink.queues {
            let pod_slots = dp.pod_slots_per_worker();
            let fixed = if queue == 0 && exception.interface.is_some() { 2 } else { 1 };
            let mut pool = dp.pool(fixed, pod_slots)?;
            let cfg = dp.port_config(&uplink.interface, queue);
            let (port, info) = if queue == 0 {
                let OpenedPort { port, xdp, fallback_reason } = open_uplink(&mut pool, &cfg, params)?;
                if let Some(reason) = &fallback_reason {
                    if uplink.queues > 1 {
                        return Err(DaemonError::MultiQueueFallback {
                            queues: uplink.queues,
                            reason: reason.clone(),
                        });
                    }
                }
                let info = PortInfo::of(port.as_ref(), "uplink", xdp.as_ref(), fallback_reason);
                dp.uplink_xdp = xdp;
                (port, info)
            } else {
                // One XDP program serves every queue: open the socket and
                // register it in the program of queue 0.
                let port = AfXdpPort::open(&mut pool, &cfg.xsk)?;
                if let Some(x) = dp.uplink_xdp.as_mut() {
                    x.register_socket(queue, port.fd())?;
                }
                let info = PortInfo::of(&port, "uplink", dp.uplink_xdp.as_ref(), None);
                (Box::new(port) as Box<dyn Port>, info)
            };
            if let Some(why) = &info.fallback {
                tracing::warn!(interface = %uplink.interface, "uplink on AF_PACKET: {why}");
            }
            let mut ports = vec![port];
            let mut infos = vec![info];
            if let (0, Some(ifname)) = (queue, exception.interface.as_deref()) {
                let (port, info) = dp.open_exception(&mut pool, ifname, host_ip)?;
                ports.push(port);
                infos.push(info);
            }
            // The exception port is queue 0's worker's: the others hand frames for the host to it.
            let me = WorkerId(u16::try_from(queue).unwrap_or(u16::MAX));
            let host_worker = (queue != 0).then_some(HOST_WORKER);
            let pipeline = dp.fwd.pipeline(me, dp.exception.as_ref().map(|e| e.port), host_worker);
            let running = dp.spawn(queue, pool, ports, infos, pipeline, pod_slots)?;
            dp.uplink_workers.push(running);
        }
        tracing::info!(
            interface = %uplink.interface,
            queues = uplink.queues,
            xdp = dp.uplink_xdp.as_ref().map_or("none", |x| x.mode_name()),
            "uplink attached"
        );
        for pod in pods {
            dp.pod_add(*pod).map_err(|e| match e {
                PodError::Setup(d) => d,
                other => DaemonError::Runtime(std::io::Error::other(other.to_string())),
            })?;
        }
        Ok(dp)
    }

    /// Opens the exception port `ifname` (port 1 of queue 0's worker) with an XDP program that
    /// passes every frame to its socket.
    fn open_exception(
        &mut self,
        pool: &mut FramePool,
        ifname: &str,
        host_ip: Option<Ipv4Addr>,
    ) -> Result<(Box<dyn Port>, PortInfo), DaemonError> {
        let key = "exception.interface";
        if nix::net::if_::if_nametoindex(ifname).is_err() {
            return Err(DaemonError::NoSuchInterface { key: key.to_owned(), ifname: ifname.to_owned() });
        }
        let our_mac = link_mac(ifname)?;
        let host_mac = veth_peer_mac(key, ifname)?;
        let cfg = self.port_config(ifname, 0);
        let OpenedPort { port, xdp, fallback_reason } = open_pod_port(pool, &cfg)?;
        let info = PortInfo::of(port.as_ref(), "exception", xdp.as_ref(), fallback_reason);
        tracing::info!(interface = ifname, %our_mac, %host_mac, "exception port attached");
        self.exception = Some(Exception {
            interface: ifname.to_owned(),
            _xdp: xdp,
            port: ExceptionPort { port: PortId(1), our_mac, host_mac, host_ip },
        });
        Ok((port, info))
    }

    /// The forwarding state (programmer, FIB).
    pub fn forwarding(&self) -> &Forwarding {
        &self.fwd
    }

    /// Stops every worker (sockets closed, UMEM unmapped), then detaches every XDP program.
    pub fn shutdown(self) {
        drop(self);
    }

    fn stop_all(&mut self) {
        for r in self.uplink_workers.drain(..) {
            match r.handle.stop() {
                Ok(worker) => drop(worker),
                Err(_) => tracing::error!(worker = %r.name, "worker panicked"),
            }
            tracing::info!(worker = %r.name, "worker stopped");
        }
        if self.uplink_xdp.take().is_some() {
            tracing::info!(interface = %self.uplink.interface, "uplink XDP program detached");
        }
        if let Some(e) = self.exception.take() {
            tracing::info!(interface = %e.interface, "exception port detached");
        }
        let pods = std::mem::take(&mut self.pods);
        if !pods.is_empty() {
            tracing::info!(pods = pods.len(), "pod ports detached");
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.stop_all();
    }
}
