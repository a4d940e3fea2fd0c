//! The engine side of the daemon: uplink queues and pod ports, the workers
//! that poll them, and run-time pod changes.
//!
//! One worker per uplink RX queue (`weft-q<i>`, pinned to `workers.cores[i]`),
//! each running a [`Pipeline`](weft_engine::pipeline::Pipeline). The pipeline
//! sends a pod's frame out of the uplink with `Verdict::Tx` on the same
//! worker, so every pod port lives on the worker of queue 0, the pod worker:
//! port 0 is the uplink queue, port 1 the exception port when
//! `[exception] interface` is set, the pods follow. One worker does
//! everything in the common single-queue case.
//!
//! With `uplink.queues > 1` the workers of queues 1.. own only their uplink
//! queue. A frame for a local pod that arrives there is decapsulated,
//! TTL-decremented and addressed to the pod on that worker, then handed to
//! the pod worker through the engine's hand-off ring (one bounded lock-free
//! inbox per worker, [`HANDOFF_RING`] frames; a full ring is a counted
//! `handoff_full` drop), which sets its port's source MAC and sends it.
//! Status shows `handoff_out`/`handoff_in` per worker and the `pod_handoff`
//! path.
//!
//! The exception port is a veth whose other end stays in the node's kernel
//! stack: pod traffic to anywhere outside the cluster network is written to
//! it (to the kernel end's MAC, read from sysfs), the kernel routes it, and
//! what the kernel routes back to the pod subnet over that veth (replies,
//! and the node's own traffic to its pods) is delivered to the pods.
//!
//! The engine's `Worker` takes its ports at construction, so `pod add|del`
//! rebuilds the queue-0 worker: the new pod is opened first (a bad pod
//! changes nothing), then the old worker is stopped, the uplink queue and
//! the remaining pods' sockets are reopened on a fresh pool (their XDP
//! programs stay attached; the new socket replaces the old one in the
//! program's map), the pods' FIB routes are moved to their new port numbers
//! in one version, and a new worker starts. Traffic of queue 0 pauses for
//! that moment. Counters of a stopped worker are kept, so totals never go
//! backwards.
//! TODO: an engine-level "add port" command to the running worker would
//! avoid the pause.

use std::collections::BTreeMap;

use std::sync::Arc;
use weft_engine::port::xdp_filter::{FilterParams, XdpAttachment, XdpMode};
use weft_engine::port::{
    AfPacketPort, AfXdpPort, Backend, FramePool, OpenedPort, Port, PortConfig, PortError, open_pod_port,
    open_uplink,
};

use weft_engine::pipeline::{ExceptionPort, LocalPod, PathCounts, PipelineCounters, RouteUpdate};
use weft_engine::worker::{
    CounterSnapshot, DropReason, HandoffEndpoint, IdleStrategy, PortId, PortTotals, Worker, WorkerConfig,
    WorkerHandle, WorkerId, handoff_mesh,
};

use super::DaemonError;
use super::dataplane::{Forwarding, Processor, add_paths};
use super::underlay::{link_mac, veth_peer_mac};
use crate::api::{PodLine, PortLine, WorkerLine};
use crate::config::{
    ExceptionSection, IfName, PodSpec, PortBackend, UplinkSection, WorkersSection, XdpAttach,
};
use crate::flannel::MacAddr;

/// Frames a worker's pool holds per AF_XDP port: the socket's fill-ring
/// target (1024, `XskConfig::new`) and as many again for frames in flight.
const FRAMES_PER_PORT: u32 = 2048;

/// Frames each worker's hand-off inbox holds (uplink queues > 1 only).
pub const HANDOFF_RING: usize = 512;

/// The pod worker (queue 0's) in the hand-off mesh.
const POD_WORKER: WorkerId = WorkerId(0);

/// What status shows about one port.
#[derive(Debug, Clone)]
struct PortInfo {
    name: String,
    role: &'static str,
    kind: &'static str,
    xdp: Option<String>,
    fallback: Option<String>,
}

impl PortInfo {
    fn of(
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
struct Running {
    name: String,
    core: Option<usize>,
    handle: WorkerHandle<Processor>,
    paths: Arc<PipelineCounters>,
    ports: Vec<PortInfo>,
}

/// A pod port's lasting state: its spec, its XDP program, its port on the
/// pod worker and the MAC learned from its traffic (when the spec has none).
#[derive(Debug)]
struct PodPort {
    spec: PodSpec,
    xdp: Option<XdpAttachment>,
    fallback: Option<String>,
    port: PortId,
    learned: Option<MacAddr>,
}

impl PodPort {
    fn mac(&self) -> Option<MacAddr> {
        self.spec.mac.or(self.learned)
    }
}

/// The exception port's lasting state.
#[derive(Debug)]
struct Exception {
    interface: String,
    xdp: Option<XdpAttachment>,
    fallback: Option<String>,
    /// What the pipeline needs (our MAC on it, the kernel end's MAC).
    port: ExceptionPort,
}

/// Counters of workers that were stopped (queue-0 worker rebuilds).
#[derive(Debug, Default)]
struct Retired {
    ports: BTreeMap<String, PortTotals>,
    drops: [u64; DropReason::COUNT],
    loops: u64,
    idle_loops: u64,
    waits: u64,
    wakeups: u64,
    fill_starved: u64,
    tx_ring_full: u64,
    handoff_in: u64,
    handoff_out: u64,
    paths: PathCounts,
}

impl Retired {
    fn add(&mut self, s: &CounterSnapshot, paths: &PathCounts) {
        add_paths(&mut self.paths, paths);
        for (name, t) in s.port_names.iter().zip(&s.ports) {
            let e = self.ports.entry(name.clone()).or_default();
            e.rx_packets += t.rx_packets;
            e.rx_bytes += t.rx_bytes;
            e.tx_packets += t.tx_packets;
            e.tx_bytes += t.tx_bytes;
        }
        for (a, b) in self.drops.iter_mut().zip(s.drops) {
            *a += b;
        }
        self.loops += s.worker.loops;
        self.idle_loops += s.worker.idle_loops;
        self.waits += s.worker.waits;
        self.wakeups += s.worker.wakeups;
        self.fill_starved += s.worker.fill_starved;
        self.tx_ring_full += s.worker.tx_ring_full;
        self.handoff_in += s.worker.handoff_in;
        self.handoff_out += s.worker.handoff_out;
    }
}

/// Why a pod change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The interface already carries another pod.
    #[error("pod.interface: {interface} is attached with ip {ip}; `weft pod del` it first")]
    InterfaceTaken {
        /// The interface.
        interface: IfName,
        /// The IP it carries.
        ip: std::net::Ipv4Addr,
    },
    /// The IP belongs to another pod.
    #[error("pod.ip: {ip} belongs to the pod on {interface}")]
    IpTaken {
        /// The IP.
        ip: std::net::Ipv4Addr,
        /// The interface carrying it.
        interface: IfName,
    },
    /// `pod del --ip` does not match.
    #[error("pod.ip: {interface} carries {actual}, not {given}")]
    IpMismatch {
        /// The interface.
        interface: IfName,
        /// Its pod's IP.
        actual: std::net::Ipv4Addr,
        /// The IP given.
        given: std::net::Ipv4Addr,
    },
    /// Opening the port or starting the worker failed.
    #[error(transparent)]
    Setup(#[from] DaemonError),
}

/// The engine side of a running daemon. Dropping it (or
/// [`Dataplane::shutdown`]) stops and joins every worker, closes the
/// sockets, then detaches every XDP program.
#[derive(Debug)]
pub struct Dataplane {
    uplink: UplinkSection,
    workers_cfg: WorkersSection,
    fwd: Forwarding,
    uplink_workers: Vec<Running>,
    uplink_xdp: Option<XdpAttachment>,
    exception: Option<Exception>,
    pods: BTreeMap<IfName, PodPort>,
    /// Hand-off endpoints by queue (empty with one queue); the pod worker's
    /// is reused by every rebuild, so frames in its inbox survive it.
    mesh: Vec<HandoffEndpoint>,
    retired: Retired,
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
    fn port_config(&self, ifname: &str, queue: u32) -> PortConfig {
        let mut cfg = PortConfig::new(ifname, queue);
        cfg.backend = backend(self.uplink.backend);
        cfg.xdp_mode = xdp_mode(self.uplink.xdp_mode);
        cfg
    }

    /// A pool for a worker with `ports` AF_XDP ports: `workers.frames`, or
    /// more when that would not cover every port's fill ring (each keeps
    /// `FRAMES_PER_PORT / 2` frames there) plus as many in flight; a short
    /// pool starves the fill rings of the ports opened last.
    fn pool(&self, ports: usize) -> Result<FramePool, DaemonError> {
        let need = u32::try_from(ports).unwrap_or(u32::MAX).saturating_mul(FRAMES_PER_PORT);
        let frames = self.workers_cfg.frames.max(need);
        FramePool::new(frames).map_err(|source| DaemonError::Pool { frames, source })
    }

    fn worker_config(&self, name: &str, core: Option<usize>) -> WorkerConfig {
        let mut cfg = WorkerConfig::new(name);
        cfg.core = core;
        cfg.batch = self.workers_cfg.batch;
        if self.workers_cfg.busy_poll {
            cfg.idle = IdleStrategy::BusyPoll;
        }
        cfg
    }

    /// Starts the worker of uplink queue `queue` (`weft-q<queue>`, on its core).
    fn spawn(
        &self,
        queue: u32,
        pool: FramePool,
        ports: Vec<Box<dyn Port>>,
        info: Vec<PortInfo>,
        processor: Processor,
    ) -> Result<Running, DaemonError> {
        let name = &format!("weft-q{queue}");
        let core = self.workers_cfg.core_of(queue);
        let paths = processor.counters().clone();
        let mut worker = Worker::new(self.worker_config(name, core), pool, ports, processor)?;
        if let Some(endpoint) = self.mesh.get(queue as usize) {
            worker = worker.with_handoff(endpoint.clone());
        }
        let handle = worker.spawn()?;
        tracing::info!(worker = name, ?core, ports = ?info.iter().map(|p| &p.name).collect::<Vec<_>>(), "worker started");
        Ok(Running { name: name.to_owned(), core, handle, paths, ports: info })
    }

    /// Opens every uplink queue with the filter of `params` and the
    /// exception port when `exception` names one, starts one worker per queue
    /// with a pipeline built from `fwd` (queues 1.. hand frames for pods to
    /// queue 0's), then attaches `pods`.
    pub fn start(
        uplink: &UplinkSection,
        workers: &WorkersSection,
        exception: &ExceptionSection,
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
            mesh: if uplink.queues > 1 {
                handoff_mesh(u16::try_from(uplink.queues).unwrap_or(u16::MAX), HANDOFF_RING)
            } else {
                Vec::new()
            },
            retired: Retired::default(),
        };
        for queue in 0..uplink.queues {
            let mut pool = dp.pool(if queue == 0 && exception.interface.is_some() { 2 } else { 1 })?;
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
                let (port, info) = dp.open_exception(&mut pool, ifname, exception.host_ip)?;
                ports.push(port);
                infos.push(info);
            }
            let pipeline = if queue == 0 {
                dp.fwd.pipeline(dp.exception.as_ref().map(|e| e.port), Vec::new(), None)
            } else {
                // The exception port is the pod worker's: frames for the host are handed to it.
                dp.fwd.pipeline(dp.exception.as_ref().map(|e| e.port), Vec::new(), Some(POD_WORKER))
            };
            let running = dp.spawn(queue, pool, ports, infos, pipeline)?;
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

    /// Opens the exception port `ifname` (port 1 of the pod worker) with an
    /// XDP program that passes every frame to its socket.
    fn open_exception(
        &mut self,
        pool: &mut FramePool,
        ifname: &str,
        host_ip: Option<std::net::Ipv4Addr>,
    ) -> Result<(Box<dyn Port>, PortInfo), DaemonError> {
        let key = "exception.interface";
        if nix::net::if_::if_nametoindex(ifname).is_err() {
            return Err(DaemonError::NoSuchInterface { key: key.to_owned(), ifname: ifname.to_owned() });
        }
        let our_mac = link_mac(ifname)?;
        let host_mac = veth_peer_mac(key, ifname)?;
        let cfg = self.port_config(ifname, 0);
        let OpenedPort { port, xdp, fallback_reason } = open_pod_port(pool, &cfg)?;
        let info = PortInfo::of(port.as_ref(), "exception", xdp.as_ref(), fallback_reason.clone());
        tracing::info!(interface = ifname, %our_mac, %host_mac, "exception port attached");
        self.exception = Some(Exception {
            interface: ifname.to_owned(),
            xdp,
            fallback: fallback_reason,
            port: ExceptionPort { port: PortId(1), our_mac, host_mac, host_ip },
        });
        Ok((port, info))
    }

    /// The pod worker's first pod port (after the uplink and the exception port).
    fn first_pod_port(&self) -> usize {
        1 + usize::from(self.exception.is_some())
    }

    /// Opens `cfg`'s interface again for a rebuilt worker, keeping its XDP
    /// program `xdp` (AF_XDP) or its AF_PACKET backend (`None`). The kernel
    /// releases a closed AF_XDP socket's hold on the queue asynchronously,
    /// so a bind that finds the queue still busy (EBUSY) is retried for up
    /// to 2 s.
    fn reopen(
        pool: &mut FramePool,
        cfg: &PortConfig,
        xdp: Option<&mut XdpAttachment>,
    ) -> Result<Box<dyn Port>, PortError> {
        let Some(x) = xdp else {
            return Ok(Box::new(AfPacketPort::open(&cfg.xsk.ifname, cfg.tpacket)?));
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let port = loop {
            match AfXdpPort::open(pool, &cfg.xsk) {
                Ok(port) => break port,
                Err(PortError::Io { source, .. })
                    if source.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        };
        x.register_socket(cfg.xsk.queue, port.fd())?;
        Ok(Box::new(port))
    }

    /// Stops the queue-0 worker (keeping its counters) and starts a new
    /// one over the uplink's queue 0, the pods in the table and `new`
    /// (already opened on `pool`), with the pods' routes moved to their new
    /// port numbers and `removed` pods' routes withdrawn, in one FIB version.
    fn rebuild_q0(
        &mut self,
        mut pool: FramePool,
        new: Option<(IfName, Box<dyn Port>, PortInfo)>,
        removed: Option<std::net::Ipv4Addr>,
    ) -> Result<(), DaemonError> {
        if !self.uplink_workers.is_empty() {
            let old = self.uplink_workers.remove(0);
            let counters = old.handle.counters().clone();
            // Joining the thread: its last publish happened before it returned.
            let stopped = old.handle.stop();
            self.retired.add(&counters.snapshot(), &old.paths.snapshot());
            match stopped {
                // Dropping the worker closes its sockets, then unmaps its UMEM.
                Ok(worker) => drop(worker),
                Err(_) => tracing::error!(worker = %old.name, "worker panicked"),
            }
        }
        let cfg = self.port_config(&self.uplink.interface, 0);
        let uplink = Self::reopen(&mut pool, &cfg, self.uplink_xdp.as_mut())?;
        let mut info = vec![PortInfo::of(uplink.as_ref(), "uplink", self.uplink_xdp.as_ref(), None)];
        let mut ports: Vec<Box<dyn Port>> = vec![uplink];
        let exception_cfg = self.exception.as_ref().map(|e| self.port_config(&e.interface, 0));
        if let (Some(e), Some(cfg)) = (self.exception.as_mut(), exception_cfg) {
            let port = Self::reopen(&mut pool, &cfg, e.xdp.as_mut())?;
            info.push(PortInfo::of(port.as_ref(), "exception", e.xdp.as_ref(), e.fallback.clone()));
            ports.push(port);
        }
        let mut specs = Vec::new();
        let mut updates: Vec<RouteUpdate> = removed.into_iter().map(RouteUpdate::RemovePod).collect();
        let names: Vec<IfName> = self.pods.keys().copied().collect();
        for ifname in names {
            if new.as_ref().is_some_and(|(n, _, _)| *n == ifname) {
                continue;
            }
            let cfg = self.port_config(ifname.as_str(), 0);
            let Some(pod) = self.pods.get_mut(&ifname) else { continue };
            match Self::reopen(&mut pool, &cfg, pod.xdp.as_mut()) {
                Ok(port) => {
                    info.push(PortInfo::of(port.as_ref(), "pod", pod.xdp.as_ref(), pod.fallback.clone()));
                    ports.push(port);
                    specs.push(pod.spec);
                }
                Err(e) => {
                    tracing::error!(interface = %ifname, "pod port lost while rebuilding worker weft-q0: {e}");
                    updates.push(RouteUpdate::RemovePod(pod.spec.ip));
                    self.pods.remove(&ifname);
                }
            }
        }
        if let Some((ifname, port, i)) = new {
            ports.push(port);
            info.push(i);
            specs.extend(self.pods.get(&ifname).map(|p| p.spec));
        }
        let mut pods = Vec::with_capacity(specs.len());
        let first = self.first_pod_port();
        for (i, spec) in specs.iter().enumerate() {
            let port = PortId(u16::try_from(i + first).unwrap_or(u16::MAX));
            let entry = self.pods.get_mut(&spec.interface);
            let learned = entry.as_ref().and_then(|p| p.learned);
            if let Some(p) = entry {
                p.port = port;
            }
            let pod = Forwarding::pod_port(spec, learned)?;
            updates.push(RouteUpdate::Pod(LocalPod { ip: pod.ip, port, mac: pod.mac }));
            pods.push((port, pod));
        }
        self.fwd.program(&updates);
        let pipeline = self.fwd.pipeline(self.exception.as_ref().map(|e| e.port), pods, None);
        let running = self.spawn(0, pool, ports, info, pipeline)?;
        self.uplink_workers.insert(0, running);
        Ok(())
    }

    /// Attaches a pod port (idempotent). Returns whether anything changed.
    pub fn pod_add(&mut self, spec: PodSpec) -> Result<bool, PodError> {
        if let Some(p) = self.pods.get(&spec.interface) {
            if p.spec.ip == spec.ip && (spec.mac.is_none() || spec.mac == p.spec.mac) {
                return Ok(false);
            }
            return Err(PodError::InterfaceTaken { interface: spec.interface, ip: p.spec.ip });
        }
        if let Some(p) = self.pods.values().find(|p| p.spec.ip == spec.ip) {
            return Err(PodError::IpTaken { ip: spec.ip, interface: p.spec.interface });
        }
        // The uplink queue, the exception port, the pods and the new one.
        let mut pool = self.pool(self.first_pod_port() + self.pods.len() + 1)?;
        let cfg = self.port_config(spec.interface.as_str(), 0);
        let OpenedPort { port, xdp, fallback_reason } =
            open_pod_port(&mut pool, &cfg).map_err(DaemonError::from)?;
        // Fails before anything changed when the interface has no MAC.
        Forwarding::pod_port(&spec, None)?;
        let info = PortInfo::of(port.as_ref(), "pod", xdp.as_ref(), fallback_reason.clone());
        let pod = PodPort { spec, xdp, fallback: fallback_reason, port: PortId(0), learned: None };
        self.pods.insert(spec.interface, pod);
        if let Err(e) = self.rebuild_q0(pool, Some((spec.interface, port, info)), None) {
            self.pods.remove(&spec.interface);
            return Err(e.into());
        }
        tracing::info!(interface = %spec.interface, ip = %spec.ip, "pod attached");
        Ok(true)
    }

    /// Detaches a pod port (idempotent). Returns whether anything changed.
    pub fn pod_del(&mut self, interface: IfName, ip: Option<std::net::Ipv4Addr>) -> Result<bool, PodError> {
        let Some(p) = self.pods.get(&interface) else { return Ok(false) };
        if let Some(given) = ip.filter(|&g| g != p.spec.ip) {
            return Err(PodError::IpMismatch { interface, actual: p.spec.ip, given });
        }
        let removed = self.pods.remove(&interface);
        let pool = self.pool(self.first_pod_port() + self.pods.len())?;
        let ip = removed.as_ref().map(|p| p.spec.ip);
        self.rebuild_q0(pool, None, ip)?;
        // The program leaves the interface once its link is closed.
        drop(removed);
        tracing::info!(%interface, "pod detached");
        Ok(true)
    }

    /// The attached pods.
    pub fn pods(&self) -> Vec<PodLine> {
        self.pods
            .values()
            .map(|p| PodLine {
                interface: p.spec.interface.to_string(),
                ip: p.spec.ip.to_string(),
                mac: p.mac().map(|m| m.to_string()),
            })
            .collect()
    }

    /// Applies the pod MACs the workers learned since the last call: each
    /// MAC-less pod's next hop is republished with its MAC (one FIB version),
    /// and kept for rebuilds. Returns how many pods learned a MAC.
    pub fn apply_learned(&mut self) -> usize {
        let queue = self.fwd.learned();
        let mut updates = Vec::new();
        while let Some(ev) = queue.pop() {
            let mac = ev.mac;
            let Some(p) = self.pods.values_mut().find(|p| p.spec.ip == ev.ip) else { continue };
            if p.spec.mac.is_some() || p.learned == Some(mac) {
                continue;
            }
            p.learned = Some(mac);
            tracing::info!(interface = %p.spec.interface, ip = %p.spec.ip, %mac, "pod MAC learned");
            updates.push(RouteUpdate::Pod(LocalPod { ip: p.spec.ip, port: p.port, mac: ev.mac }));
        }
        self.fwd.program(&updates);
        updates.len()
    }

    /// The forwarding state (programmer, FIB).
    pub fn forwarding(&self) -> &Forwarding {
        &self.fwd
    }

    /// The workers whose thread ended while they should run (a panic).
    pub fn stopped_workers(&self) -> Vec<String> {
        self.uplink_workers.iter().filter(|r| r.handle.is_finished()).map(|r| r.name.clone()).collect()
    }

    /// Pipeline path counters summed over live and retired workers.
    pub fn paths(&self) -> PathCounts {
        let mut total = self.retired.paths;
        for r in &self.uplink_workers {
            add_paths(&mut total, &r.paths.snapshot());
        }
        total
    }

    /// Ports, workers and drops summed over live and retired workers.
    pub fn counters(&self) -> (Vec<PortLine>, Vec<WorkerLine>, [u64; DropReason::COUNT]) {
        let mut ports = Vec::new();
        let mut workers = Vec::new();
        let mut drops = self.retired.drops;
        for r in &self.uplink_workers {
            let s = r.handle.counters().snapshot();
            for (a, b) in drops.iter_mut().zip(s.drops) {
                *a += b;
            }
            let mut w = WorkerLine {
                name: r.name.clone(),
                core: r.core,
                loops: s.worker.loops,
                idle_loops: s.worker.idle_loops,
                waits: s.worker.waits,
                wakeups: s.worker.wakeups,
                fill_starved: s.worker.fill_starved,
                tx_ring_full: s.worker.tx_ring_full,
                handoff_in: s.worker.handoff_in,
                handoff_out: s.worker.handoff_out,
            };
            if r.name == "weft-q0" {
                w.loops += self.retired.loops;
                w.idle_loops += self.retired.idle_loops;
                w.waits += self.retired.waits;
                w.wakeups += self.retired.wakeups;
                w.fill_starved += self.retired.fill_starved;
                w.tx_ring_full += self.retired.tx_ring_full;
                w.handoff_in += self.retired.handoff_in;
                w.handoff_out += self.retired.handoff_out;
            }
            workers.push(w);
            for info in &r.ports {
                let live = s.port(&info.name).unwrap_or_default();
                let old = self.retired.ports.get(&info.name).copied().unwrap_or_default();
                ports.push(PortLine {
                    name: info.name.clone(),
                    role: info.role.to_owned(),
                    kind: info.kind.to_owned(),
                    worker: r.name.clone(),
                    xdp: info.xdp.clone(),
                    fallback_reason: info.fallback.clone(),
                    rx_packets: live.rx_packets + old.rx_packets,
                    rx_bytes: live.rx_bytes + old.rx_bytes,
                    tx_packets: live.tx_packets + old.tx_packets,
                    tx_bytes: live.tx_bytes + old.tx_bytes,
                });
            }
        }
        (ports, workers, drops)
    }

    /// Stops every worker (sockets closed, UMEM unmapped), then detaches
    /// every XDP program.
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
