//! Pods on the running workers: `weft pod add|del` (and a CNI plugin through the API)
//! attach and detach pod ports through a worker's command queue, between two of its
//! batches, without stopping it: nobody's forwarding pauses.
//!
//! Each pod port is owned by one worker: an attach goes to the worker with the fewest pods
//! (the lowest queue among equals) that has a free slot; the node takes at most
//! `workers.pod_slots` pods. The pod's next hop names its owner, so the other workers hand
//! its frames there.
//!
//! Every system call of an attach or detach runs here, on the control thread, never on the
//! worker: the worker only takes a ready port object between two batches and later gives it
//! back. Every pod veth carries the same XDP program, loaded and verified once per node (at
//! the first pod), which steers each veth's frames by its interface index to the pod's socket
//! (`weft_engine::port::pod_program`). Attach: the program is attached to the veth, the
//! AF_XDP socket is opened over the owner's UMEM (socket, shared UMEM, rings, bind) and handed
//! to the worker, which puts it in a free port slot and gives its pipeline the pod (its fill
//! ring is filled from the worker's pool at its next loop); then the socket goes into the
//! program's maps under the pod's slot and the pod's route into the FIB. Detach is the
//! reverse: the route leaves the FIB, the program leaves the interface (nothing feeds the
//! socket any more), then the worker forgets the pod, gives the socket's frames back to its
//! pool and hands the socket back, which is closed here. The port's counters are kept under
//! its name, so totals never go backwards.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use weft_engine::pipeline::{LocalPod, RouteUpdate};
use weft_engine::port::pod_program::{PodLink, PodProgram};
use weft_engine::port::{AfPacketPort, AfXdpPort, Backend, Port, PortConfig, PortError, UmemShare};
use weft_engine::worker::{PortId, WorkerId};

use super::DaemonError;
use super::dataplane::{Forwarding, Processor};
use super::workers::{Dataplane, PortInfo};
use crate::api::PodLine;
use crate::config::{IfName, PodSpec};
use crate::flannel::MacAddr;

/// Ring entries of a pod port's AF_XDP rings; half of them are kept in its fill ring.
const POD_RING: u32 = 256;

/// Frames a worker's pool holds per pod slot: its fill ring and as many in flight.
pub(super) const POD_FRAMES: u32 = POD_RING;

/// How long a pod change waits for the worker's answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an attach retries while the kernel still holds the queue of a socket just closed.
const QUEUE_BUSY_WAIT: Duration = Duration::from_secs(2);

/// The first wait before such a retry; each further wait doubles, up to the next constant.
const QUEUE_BUSY_FIRST_STEP: Duration = Duration::from_millis(1);
const QUEUE_BUSY_MAX_STEP: Duration = Duration::from_millis(64);

/// A pod port's lasting state: its spec, the pod program's link on its veth and its slot in
/// the program's maps, its owner (index of the worker) and port there, and the MAC learned
/// from its traffic (when the spec has none).
#[derive(Debug)]
pub(super) struct PodPort {
    spec: PodSpec,
    xdp: Option<PodLink>,
    slot: u32,
    worker: usize,
    port: PortId,
    port_name: String,
    learned: Option<MacAddr>,
}

impl PodPort {
    fn mac(&self) -> Option<MacAddr> {
        self.spec.mac.or(self.learned)
    }

    fn owner(&self) -> WorkerId {
        WorkerId(u16::try_from(self.worker).unwrap_or(u16::MAX))
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
    /// Every pod slot of the node is taken.
    #[error(
        "pod {interface}: the node is full: all {slots} pod slots are taken (workers.pod_slots); \
         `weft pod del` a pod or raise workers.pod_slots"
    )]
    NodeFull {
        /// The interface.
        interface: IfName,
        /// The node's pod slots.
        slots: usize,
    },
    /// The worker did not take the port.
    #[error("pod {interface}: {source}")]
    Worker {
        /// The interface.
        interface: IfName,
        /// What the worker answered.
        #[source]
        source: weft_engine::worker::CommandError,
    },
    /// Opening the port failed.
    #[error(transparent)]
    Setup(#[from] DaemonError),
}

/// A pod port opened on the control thread, ready for its worker: the port, and for an
/// AF_XDP port the pod program's link on its veth and a dup of its socket, to put into the
/// program's maps once the worker serves it.
struct Prepared {
    port: Box<dyn Port>,
    xdp: Option<(PodLink, OwnedFd)>,
    fallback: Option<String>,
    /// Time spent attaching the XDP program.
    xdp_time: Duration,
}

/// Attaches the pod program (loaded first, with maps for `slots` pods, if it is not yet) and
/// opens the pod's AF_XDP socket over `umem` (the owner worker's) or, where XDP is
/// unavailable and the backend is `auto`, opens an AF_PACKET port.
fn prepare(
    cfg: &PortConfig,
    umem: &UmemShare,
    program: &mut Option<PodProgram>,
    slots: u32,
) -> Result<Prepared, PortError> {
    let t0 = Instant::now();
    let packet = |reason: Option<String>| -> Result<Prepared, PortError> {
        let port = Box::new(AfPacketPort::open(&cfg.xsk.ifname, cfg.tpacket)?);
        Ok(Prepared { port, xdp: None, fallback: reason, xdp_time: Duration::ZERO })
    };
    let mut attach = || -> Result<PodLink, PortError> {
        let program = match program {
            Some(p) => p,
            None => program.insert(PodProgram::load(slots)?),
        };
        program.attach(&cfg.xsk.ifname, cfg.xdp_mode)
    };
    let xdp = match cfg.backend {
        Backend::AfPacket => return packet(None),
        Backend::AfXdp => attach()?,
        Backend::Auto => match attach() {
            Ok(x) => x,
            Err(e @ (PortError::Unsupported { .. } | PortError::Xdp { .. })) => {
                let reason = e.to_string();
                tracing::warn!(interface = %cfg.xsk.ifname, "AF_XDP unavailable, pod on AF_PACKET: {reason}");
                return packet(Some(reason));
            }
            Err(e) => return Err(e),
        },
    };
    let xdp_time = t0.elapsed();
    let port = AfXdpPort::open_shared(umem, &cfg.xsk)?;
    let fd = port.fd().try_clone_to_owned().map_err(|source| PortError::Io {
        what: "AF_XDP socket (dup for the XDP map)".to_owned(),
        ifname: cfg.xsk.ifname.clone(),
        source,
    })?;
    Ok(Prepared { port: Box::new(port), xdp: Some((xdp, fd)), fallback: None, xdp_time })
}

/// Whether opening failed because the kernel still holds the queue for a socket just closed.
fn queue_busy(e: &PortError) -> bool {
    matches!(e, PortError::Io { source, .. } if source.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32))
}

impl Dataplane {
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
        // Fails before anything changed when the interface is missing or has no MAC.
        if nix::net::if_::if_nametoindex(spec.interface.as_str()).is_err() {
            let ifname = spec.interface.to_string();
            return Err(DaemonError::from(PortError::NoSuchInterface { what: "pod port", ifname }).into());
        }
        let pod = Forwarding::pod_port(&spec, None)?;
        let mut cfg = self.port_config(spec.interface.as_str(), 0);
        cfg.xsk.ring_size = POD_RING;
        cfg.xsk.fill_target = POD_RING / 2;
        let worker_err = |source| PodError::Worker { interface: spec.interface, source };
        let Some(owner) = self.least_loaded() else {
            return Err(PodError::NodeFull { interface: spec.interface, slots: self.workers_cfg.pod_slots });
        };
        let slots = u32::try_from(self.workers_cfg.pod_slots).unwrap_or(u32::MAX);
        let slot = (0..slots).find(|s| self.pods.values().all(|p| p.slot != *s)).unwrap_or(0);
        let worker = &mut self.uplink_workers[owner];
        // The kernel releases a closed AF_XDP socket's hold on its queue asynchronously: a
        // pod attached right after its detach may find the queue still busy (EBUSY) for a
        // moment; the open is retried for up to QUEUE_BUSY_WAIT, at growing intervals: every
        // try costs the kernel a pool over the whole UMEM (allocated, zeroed, freed), the
        // largest part of an attach, so a tight retry loop would cost more than the wait.
        let t0 = Instant::now();
        let deadline = t0 + QUEUE_BUSY_WAIT;
        let (mut backoff, mut retries) = (QUEUE_BUSY_FIRST_STEP, 0u32);
        let Prepared { port, xdp, fallback, xdp_time } = loop {
            match prepare(&cfg, &worker.umem, &mut self.pod_program, slots) {
                Ok(p) => break p,
                Err(e) if queue_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(QUEUE_BUSY_MAX_STEP);
                    retries += 1;
                }
                Err(e) => return Err(DaemonError::from(e).into()),
            }
        };
        let kind = port.kind();
        let then = Box::new(move |p: &mut Processor, id| p.attach_pod(id, pod));
        let opened = t0.elapsed();
        let port = worker.handle.attach(port, then, COMMAND_TIMEOUT).map_err(worker_err)?;
        let taken = t0.elapsed();
        // The worker serves the socket (and fills its fill ring) from its next loop; from
        // here the program steers the pod's frames into it.
        let xdp = match (xdp, self.pod_program.as_mut()) {
            (Some((link, fd)), Some(program)) => {
                if let Err(e) = program.register(&link, slot, std::os::fd::AsFd::as_fd(&fd)) {
                    program.detach(link);
                    let then = Box::new(|p: &mut Processor, id| p.detach_pod(id));
                    let _ = worker.handle.detach(port, then, COMMAND_TIMEOUT);
                    return Err(DaemonError::from(e).into());
                }
                Some(link)
            }
            (link, _) => link.map(|(l, _)| l),
        };
        let port_name = worker
            .handle
            .counters()
            .snapshot()
            .port_names
            .get(usize::from(port.0))
            .cloned()
            .unwrap_or_else(|| spec.interface.to_string());
        worker.ports.push(PortInfo {
            name: port_name.clone(),
            role: "pod",
            kind,
            xdp: xdp.as_ref().map(|x| x.mode_name().to_owned()),
            fallback,
        });
        let p = PodPort { spec, xdp, slot, worker: owner, port, port_name, learned: None };
        let registered = t0.elapsed();
        self.fwd.program(&[RouteUpdate::Pod(LocalPod { ip: pod.ip, worker: p.owner(), port, mac: pod.mac })]);
        // Where an attach spends its time, for `WEFT_LOG=debug`: XDP program, socket, the
        // worker taking the port, the program's map, the FIB version.
        let us = |d: Duration| d.as_micros();
        tracing::debug!(
            interface = %spec.interface,
            xdp_us = us(xdp_time),
            socket_us = us(opened.saturating_sub(xdp_time)),
            busy_retries = retries,
            worker_us = us(taken - opened),
            map_us = us(registered - taken),
            fib_us = us(t0.elapsed() - registered),
            "pod attach steps"
        );
        tracing::info!(interface = %spec.interface, ip = %spec.ip, worker = %worker.name, port = port.0, "pod attached");
        self.pods.insert(spec.interface, p);
        Ok(true)
    }

    /// The worker a new pod goes to: the one with the fewest pods that has a free slot (the
    /// lowest queue among equals); `None` when the node's `workers.pod_slots` are taken.
    fn least_loaded(&self) -> Option<usize> {
        if self.pods.len() >= self.workers_cfg.pod_slots {
            return None;
        }
        let load = |i: usize| self.pods.values().filter(|p| p.worker == i).count();
        (0..self.uplink_workers.len())
            .map(|i| (load(i), i))
            .filter(|&(n, i)| n < self.uplink_workers[i].pod_slots)
            .min()
            .map(|(_, i)| i)
    }

    /// Detaches a pod port (idempotent). Returns whether anything changed.
    pub fn pod_del(&mut self, interface: IfName, ip: Option<std::net::Ipv4Addr>) -> Result<bool, PodError> {
        let Some(p) = self.pods.get(&interface) else { return Ok(false) };
        if let Some(given) = ip.filter(|&g| g != p.spec.ip) {
            return Err(PodError::IpMismatch { interface, actual: p.spec.ip, given });
        }
        let Some(mut removed) = self.pods.remove(&interface) else { return Ok(false) };
        let t0 = Instant::now();
        self.fwd.program(&[RouteUpdate::RemovePod(removed.spec.ip)]);
        let unrouted = t0.elapsed();
        // The program leaves the interface: nothing feeds the socket from here on.
        if let (Some(link), Some(program)) = (removed.xdp.take(), self.pod_program.as_mut()) {
            program.detach(link);
        }
        let unhooked = t0.elapsed();
        let Some(worker) = self.uplink_workers.get_mut(removed.worker) else { return Ok(true) };
        worker.ports.retain(|i| i.name != removed.port_name);
        let then = Box::new(|p: &mut Processor, id| p.detach_pod(id));
        match worker.handle.detach(removed.port, then, COMMAND_TIMEOUT) {
            Ok(d) => {
                self.retired.add_port(&removed.port_name, &d.totals);
                if d.frames_lost > 0 {
                    tracing::warn!(%interface, frames = d.frames_lost, "pod port closed with frames still in the kernel");
                }
            }
            Err(source) => return Err(PodError::Worker { interface, source }),
        }
        let us = |d: Duration| d.as_micros();
        tracing::debug!(
            %interface,
            fib_us = us(unrouted),
            xdp_us = us(unhooked - unrouted),
            worker_and_close_us = us(t0.elapsed() - unhooked),
            "pod detach steps"
        );
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
                worker: self.uplink_workers.get(p.worker).map(|w| w.name.clone()).unwrap_or_default(),
            })
            .collect()
    }

    /// Applies the pod MACs the workers learned since the last call: each MAC-less pod's next
    /// hop is republished with its MAC (one FIB version). Returns how many pods learned a MAC.
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
            updates.push(RouteUpdate::Pod(LocalPod { ip: p.spec.ip, worker: p.owner(), port: p.port, mac }));
        }
        self.fwd.program(&updates);
        updates.len()
    }
}
