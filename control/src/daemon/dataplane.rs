//! The seam between the daemon and the forwarding pipeline.
//!
//! [`Forwarding`] owns the engine's [`RouteProgrammer`] (behind a mutex only
//! the control side takes; workers read its FIB and peer set lock-free) and
//! the per-node part of every worker's [`PipelineConfig`]. The daemon builds
//! one [`Pipeline`] per worker from it, programs pods as
//! [`RouteUpdate::Pod`], pushes resolved underlay MACs with
//! [`NeighbourTableSink`], and hands compiled routes to the programmer
//! (through the [`ProgrammerSink`]) while keeping them for status, in
//! [`RouteTableSink`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use ipnet::Ipv4Net;
use weft_encap::{UdpChecksumPolicy, Vni, VxlanDecapConfig};
use weft_engine::fib::{FibConfig, FibStats, FibWriter, Ipv4Prefix};
use weft_engine::neighbour::NeighbourTable;
use weft_engine::pipeline::{
    ExceptionPort, IcmpRateLimit, MacLearnQueue, NodeConfig, PathCounts, Pipeline, PipelineConfig, PodPort,
    RouteProgrammer, RouteUpdate, TunnelOptions, UNLEARNED_MAC,
};
use weft_engine::wireguard::WgSettings;
use weft_engine::worker::{PortId, WorkerId};

use super::DaemonError;
use super::underlay::{link_info, link_mac, uplink_subnet};
use crate::config::{Config, PodSpec};
use crate::flannel::{BackendType, MacAddr, NetworkConfig};
use crate::neighbour::NeighbourSink;
pub use crate::routes::SharedProgrammer;
use crate::routes::{ProgrammerSink, RouteDelta, RouteSink, RouteTable};

/// The frame processor every worker runs.
pub type Processor = Pipeline;

/// The uplink's worker port on every worker.
pub const UPLINK_PORT: PortId = PortId(0);

/// Neighbour table capacity (underlay next hops) and its request queue.
const NEIGHBOURS: usize = 4096;

/// What every worker's pipeline is built from (see the module docs).
#[derive(Debug, Clone)]
pub struct Forwarding {
    programmer: SharedProgrammer,
    base: PipelineConfig,
}

fn prefix(net: Ipv4Net) -> Ipv4Prefix {
    Ipv4Prefix::covering(u32::from(net.network()), net.prefix_len())
}

fn vni(network: &NetworkConfig, key: &str) -> Result<Vni, DaemonError> {
    Vni::try_new(network.backend.vni).ok_or_else(|| DaemonError::Underlay {
        interface: key.to_owned(),
        what: format!("VNI {} is outside 0..={}", network.backend.vni, Vni::MAX),
    })
}

impl Forwarding {
    /// Reads the uplink's MAC and prefix and the underlay default gateway,
    /// and builds the programmer (fixed routes installed) and the pipeline
    /// base for our pod `subnet` under `network`, with our VtepMAC `vtep_mac` (`None`: the
    /// uplink's MAC).
    pub fn new(
        config: &Config,
        network: &NetworkConfig,
        subnet: Ipv4Net,
        vtep_mac: Option<MacAddr>,
        wg: Option<&crate::wg_key::WgKeyPair>,
    ) -> Result<Self, DaemonError> {
        let uplink = config.uplink.as_ref().ok_or(DaemonError::NoUplink)?;
        let ifname = uplink.interface.as_str();
        let link = link_info(ifname)?;
        let uplink_mac = link_mac(ifname)?;
        let public_ip = config.node.public_ip;
        let underlay_gateway = crate::neighbour::default_gateway(ifname).unwrap_or_else(|e| {
            tracing::warn!(interface = ifname, "no underlay gateway (routing table unreadable): {e}");
            None
        });
        let backend = &network.backend;
        let tunnel_vni = match backend.backend_type {
            BackendType::Vxlan => Some(vni(network, "network.backend.vni")?),
            _ => None,
        };
        let node = NodeConfig {
            uplink_mac,
            public_ip,
            uplink_subnet: prefix(uplink_subnet(config.node.uplink_subnet, &link, public_ip)),
            underlay_gateway,
            vtep_mac: vtep_mac.unwrap_or(uplink_mac),
            direct_routing: backend.direct_routing,
            cluster: prefix(network.network),
            tunnel: TunnelOptions::default(),
        };
        tracing::info!(
            %uplink_mac,
            uplink_subnet = %node.uplink_subnet,
            underlay_gateway = ?underlay_gateway,
            direct_routing = node.direct_routing,
            "route programmer"
        );
        let fib = FibWriter::new(FibConfig::default());
        let mut programmer =
            RouteProgrammer::new(fib, node, Arc::new(NeighbourTable::new(NEIGHBOURS, NEIGHBOURS)))?;
        let wireguard = match (&backend.backend_type, wg) {
            (BackendType::WireGuard, Some(pair)) => {
                let opts = &backend.wireguard;
                programmer.enable_wireguard(WgSettings {
                    private_key: pair.private.to_bytes(),
                    listen_port: opts.listen_port,
                    psk: opts.psk.map(|p| p.0.0),
                    persistent_keepalive: opts.persistent_keepalive,
                    workers: u16::try_from(uplink.queues).unwrap_or(1),
                });
                tracing::info!(listen_port = opts.listen_port, public_key = %pair.public, "wireguard backend");
                Some(opts.listen_port)
            }
            (BackendType::WireGuard, None) => {
                return Err(DaemonError::Preflight {
                    what: "the wireguard backend needs the node's WireGuard key".into(),
                });
            }
            _ => None,
        };
        let base = PipelineConfig {
            uplink: UPLINK_PORT,
            uplink_mac,
            public_ip,
            uplink_mtu: u16::try_from(config.node.mtu).unwrap_or(u16::MAX),
            node_subnet: prefix(subnet),
            vxlan: tunnel_vni.map(|vni| VxlanDecapConfig {
                local_ip: public_ip,
                port: backend.port,
                vni,
                udp_checksum: UdpChecksumPolicy::VerifyIfPresent,
            }),
            // BGP mode sends off-subnet routes over IP-in-IP, so it takes IP-in-IP in too.
            ipip: backend.backend_type == BackendType::Ipip || config.bgp.is_some(),
            wireguard,
            exception: None,
            pods: Vec::new(),
            worker: WorkerId(0),
            host_worker: None,
            icmp: IcmpRateLimit::default(),
        };
        Ok(Forwarding { programmer: Arc::new(Mutex::new(programmer)), base })
    }

    /// The shared programmer.
    pub fn programmer(&self) -> &SharedProgrammer {
        &self.programmer
    }

    /// A pipeline for `worker` (its uplink queue on port 0, pods attached
    /// later): frames for pods other workers own are handed to them, and
    /// frames for the host to `host_worker` when another worker owns the
    /// `exception` port.
    pub fn pipeline(
        &self,
        worker: WorkerId,
        exception: Option<ExceptionPort>,
        host_worker: Option<WorkerId>,
    ) -> Pipeline {
        let programmer = lock(&self.programmer);
        let mut handles = programmer.handles();
        handles.wireguard = programmer.wireguard_worker(worker);
        drop(programmer);
        let mut cfg = self.base.clone();
        cfg.exception = exception;
        cfg.worker = worker;
        cfg.host_worker = host_worker;
        Pipeline::new(cfg, handles)
    }

    /// The pipeline's view of a pod: its IP, its MAC (`spec.mac`, else the
    /// one `learned` from its traffic, else [`UNLEARNED_MAC`]: the pipeline
    /// learns it from the pod's first frame and frames to the pod are
    /// `pod_mac_unknown` drops until then), and the MAC of the host end of its
    /// veth, which weft answers the pod's gateway ARP with.
    pub fn pod_port(spec: &PodSpec, learned: Option<MacAddr>) -> Result<PodPort, DaemonError> {
        let gateway_mac = link_mac(spec.interface.as_str())?;
        let mac = spec.mac.or(learned).unwrap_or(UNLEARNED_MAC);
        Ok(PodPort { ip: spec.ip, mac, gateway_mac })
    }

    /// The queue of pod MACs the workers learned (drained by
    /// [`Dataplane::apply_learned`](super::Dataplane::apply_learned)).
    pub fn learned(&self) -> Arc<MacLearnQueue> {
        lock(&self.programmer).learned().clone()
    }

    /// Applies `updates` as one FIB version; a refusal is logged (the
    /// previous routes stay).
    pub fn program(&self, updates: &[RouteUpdate]) {
        if updates.is_empty() {
            return;
        }
        if let Err(e) = lock(&self.programmer).apply(updates) {
            tracing::error!("{e}");
        }
    }

    /// The FIB's version, size and memory.
    pub fn fib_stats(&self) -> FibStats {
        lock(&self.programmer).fib().stats()
    }
}

/// Path counters summed over pipelines.
pub fn add_paths(total: &mut PathCounts, more: &PathCounts) {
    for (a, b) in total.0.iter_mut().zip(more.0) {
        *a += b;
    }
}

/// The compiled route table as the data plane was given it, and its version
/// (one per batch). Read by status and metrics; written by the one sink.
#[derive(Debug, Default)]
pub struct RouteState {
    /// The routes.
    pub table: RouteTable,
    /// Batches applied.
    pub version: u64,
}

/// Shared handle on the [`RouteState`].
pub type SharedRoutes = Arc<Mutex<RouteState>>;

/// Locks a control-side mutex, ignoring poisoning (the data is plain values).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Batches up to this size log one line per route; larger ones (a BGP peer's
/// whole table, an etcd re-list of a big cluster) one line with the counts.
const LOG_EACH_ROUTE: usize = 64;

/// The daemon's route sink: each batch goes to the engine's route
/// programmer (one FIB version) and into the table kept for status and
/// metrics.
#[derive(Debug)]
pub struct RouteTableSink {
    state: SharedRoutes,
    programmer: ProgrammerSink,
}

impl RouteTableSink {
    /// A sink over `state` feeding `programmer`.
    pub fn new(state: SharedRoutes, programmer: SharedProgrammer) -> Self {
        RouteTableSink { state, programmer: ProgrammerSink::new(programmer) }
    }
}

impl RouteSink for RouteTableSink {
    fn apply(&mut self, batch: &[RouteDelta]) {
        self.programmer.apply(batch);
        let each = batch.len() <= LOG_EACH_ROUTE;
        let mut s = lock(&self.state);
        for delta in batch {
            match *delta {
                RouteDelta::Upsert(spec) => {
                    if each {
                        tracing::info!(route = %spec, "route installed");
                    }
                    s.table.insert(spec.subnet, spec.via);
                }
                RouteDelta::Remove(subnet) => {
                    if each {
                        tracing::info!(%subnet, "route removed");
                    }
                    s.table.remove(&subnet);
                }
            }
        }
        s.version += 1;
        if !each {
            let installed = batch.iter().filter(|d| matches!(d, RouteDelta::Upsert(_))).count();
            tracing::info!(
                installed,
                removed = batch.len() - installed,
                routes = s.table.len(),
                "route batch applied"
            );
        }
    }
}

/// Resolved underlay next hops, shared with status.
pub type SharedNeighbours = Arc<Mutex<BTreeMap<Ipv4Addr, MacAddr>>>;

/// The daemon's neighbour sink: keeps the MACs for status and stores them in
/// the engine's neighbour table through the programmer (which republishes
/// every next hop that sends to them).
#[derive(Debug, Clone)]
pub struct NeighbourTableSink {
    table: SharedNeighbours,
    programmer: SharedProgrammer,
}

impl NeighbourTableSink {
    /// A sink over `table` and `programmer`.
    pub fn new(table: SharedNeighbours, programmer: SharedProgrammer) -> Self {
        NeighbourTableSink { table, programmer }
    }
}

impl NeighbourSink for NeighbourTableSink {
    fn neighbour_changed(&mut self, ip: Ipv4Addr, mac: Option<MacAddr>) {
        {
            let mut t = lock(&self.table);
            match mac {
                Some(mac) => {
                    tracing::info!(%ip, %mac, "underlay neighbour resolved");
                    t.insert(ip, mac);
                }
                None => {
                    tracing::info!(%ip, "underlay neighbour lost");
                    t.remove(&ip);
                }
            }
        }
        if let Err(e) = lock(&self.programmer).set_neighbour(ip, mac) {
            tracing::error!(%ip, "neighbour: {e}");
        }
    }
}
