//! The route programmer: the control thread's one handle on the data path's routes.
//!
//! It wraps the [`FibWriter`] and turns engine-level route specs — remote subnets via VXLAN,
//! IPIP or host-gw, and local pods — into FIB routes and next hops with their encapsulation
//! templates prebuilt (our uplink MAC, PublicIP, VtepMAC and the backend's parameters are in
//! [`NodeConfig`]). It also:
//! - applies DirectRouting / CrossSubnet: a VXLAN or IPIP route whose remote PublicIP is on
//!   our uplink's subnet becomes a direct (host-gw) route when `direct_routing` is set;
//! - picks each template's outer destination MAC: the remote node's MAC when it is on our
//!   uplink's subnet, else the underlay gateway's, from the [`NeighbourTable`]; when the
//!   control side learns or changes a MAC ([`RouteProgrammer::set_neighbour`]) it republishes
//!   every next hop that uses it, in one snapshot;
//! - publishes the [`PeerSet`] of remote PublicIPs tunnel traffic is accepted from;
//! - installs the two fixed routes: `0.0.0.0/0` to the exception path and the cluster network
//!   to a blackhole (a pod address with no lease and no pod is `no_route`), and, once set
//!   ([`RouteProgrammer::set_host_address`]), the node's own address on the host link as a /32
//!   to the host;
//! - owns the [`HostFlows`] table the workers share (replies of kernel-forwarded flows);
//! - publishes the network policy's [`PolicySet`] the workers enforce
//!   ([`RouteProgrammer::set_policy`]);
//! - with flannel's wireguard backend ([`RouteProgrammer::enable_wireguard`]), keeps the
//!   registry of WireGuard peers ([`WgControl`]): a peer is announced to the workers before a
//!   next hop names it and retired after the last route to it is gone.
//!
//! Next hops are shared: one per remote node (per distinct [`Via`]) and one per local pod,
//! reference-counted by the routes that use them and removed (after the FIB's grace period)
//! when the last route goes.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use weft_encap::{IpipParams, IpipTemplate, MacAddr, SourcePortRange, Vni, VxlanParams, VxlanTemplate};

use super::host_flows::HostFlows;
use super::learn::MacLearnQueue;
use super::peers::{PeerSet, SharedPeers};
use crate::fib::next_hop::NeighbourSlot;
use crate::fib::{
    FibError, FibReader, FibVersion, FibWriter, IpipNextHop, Ipv4Prefix, NextHop, NextHopId, RouteChange,
    VxlanNextHop, WgNextHop,
};
use crate::neighbour::{NeighbourError, NeighbourTable};
use crate::policy::{PolicySet, SharedPolicy};
use crate::wireguard::{WgControl, WgSettings, WgWorker};
use crate::worker::{PortId, WorkerId};

/// Outer-header policy of the tunnels this node sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelOptions {
    /// Outer IPv4 TTL (Linux: 64 unless the device sets one).
    pub ttl: u8,
    /// Outer DSCP/ECN byte.
    pub tos: u8,
    /// Set DF on the outer header.
    pub dont_frag: bool,
    /// Compute the VXLAN outer UDP checksum (RFC 7348 allows zero).
    pub udp_checksum: bool,
    /// VXLAN UDP source port range.
    pub src_ports: SourcePortRange,
}

impl Default for TunnelOptions {
    /// TTL 64, TOS 0, no DF, no UDP checksum, Linux's source port range.
    fn default() -> Self {
        TunnelOptions {
            ttl: 64,
            tos: 0,
            dont_frag: false,
            udp_checksum: false,
            src_ports: SourcePortRange::LINUX,
        }
    }
}

/// What the programmer knows about this node's underlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeConfig {
    /// Our uplink's MAC (outer source MAC).
    pub uplink_mac: MacAddr,
    /// Our PublicIP (outer source address).
    pub public_ip: Ipv4Addr,
    /// The uplink's L2 subnet: remotes inside it are reached directly, others via the gateway.
    pub uplink_subnet: Ipv4Prefix,
    /// The underlay gateway for remotes off our subnet (`None`: none, such remotes stay
    /// unresolved).
    pub underlay_gateway: Option<Ipv4Addr>,
    /// Our VtepMAC (inner source MAC of VXLAN frames).
    pub vtep_mac: MacAddr,
    /// flannel DirectRouting / Calico CrossSubnet: no encap to remotes on our subnet.
    pub direct_routing: bool,
    /// The cluster network (flannel's `Network`).
    pub cluster: Ipv4Prefix,
    /// Outer-header policy.
    pub tunnel: TunnelOptions,
}

/// How a remote subnet is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    /// VXLAN to the remote node's VTEP.
    Vxlan {
        /// The remote PublicIP.
        remote: Ipv4Addr,
        /// The remote VtepMAC (inner destination MAC).
        vtep_mac: MacAddr,
        /// The VNI (flannel 1, Calico 4096).
        vni: Vni,
        /// The UDP destination port (flannel 8472, Calico 4789).
        port: u16,
    },
    /// IP-in-IP to the remote PublicIP.
    Ipip {
        /// The remote PublicIP.
        remote: Ipv4Addr,
    },
    /// Unencapsulated via the remote node on our L2 segment.
    HostGw {
        /// The remote node's underlay address.
        node: Ipv4Addr,
    },
    /// A WireGuard transport message to the remote node's endpoint.
    WireGuard {
        /// The remote PublicIP.
        remote: Ipv4Addr,
        /// Its listen port.
        port: u16,
        /// Its public key.
        public_key: [u8; 32],
    },
}

/// A remote node's pod subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteRoute {
    /// The subnet (e.g. 198.19.2.0/24).
    pub prefix: Ipv4Prefix,
    /// How to reach it.
    pub via: Via,
}

/// A pod on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPod {
    /// The pod's IP (a /32 route).
    pub ip: Ipv4Addr,
    /// The worker that owns its veth's port.
    pub worker: WorkerId,
    /// The port of its veth on that worker.
    pub port: PortId,
    /// The pod interface's MAC ([`UNLEARNED_MAC`](super::UNLEARNED_MAC) until learned: frames
    /// to the pod are then dropped as `pod_mac_unknown`).
    pub mac: MacAddr,
}

/// One change of a batch given to [`RouteProgrammer::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteUpdate {
    /// Add or replace a remote subnet's route.
    Remote(RemoteRoute),
    /// Remove a remote subnet's route (absent: no-op).
    RemoveRemote(Ipv4Prefix),
    /// Add or replace a local pod.
    Pod(LocalPod),
    /// Remove a local pod (absent: no-op).
    RemovePod(Ipv4Addr),
}

/// Why the programmer refused or failed a change.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The FIB refused a change (tbl8 groups exhausted, grace timeout...).
    #[error("route programming: {0}")]
    Fib(#[from] FibError),
    /// The neighbour table is full.
    #[error("route programming: {0}")]
    Neighbour(#[from] NeighbourError),
    /// Every next-hop id is in use.
    #[error("route programming: all {max} next-hop ids are in use")]
    NextHopsExhausted {
        /// The id space.
        max: u32,
    },
    /// A WireGuard route without the wireguard backend enabled, or more peers than slots.
    #[error("route programming: wireguard: {0}")]
    WireGuard(&'static str),
}

/// Everything a worker's pipeline reads, cloned once per worker.
#[derive(Debug)]
pub struct PipelineHandles {
    /// The worker's FIB reader.
    pub fib: FibReader,
    /// The published peer set.
    pub peers: SharedPeers,
    /// The neighbour table (stamps and resolve requests).
    pub neighbours: Arc<NeighbourTable>,
    /// Where pods' learned MACs go (see `learn.rs`).
    pub learned: Arc<MacLearnQueue>,
    /// The flows the node's kernel forwarded to pods (see `host_flows.rs`).
    pub flows: Arc<HostFlows>,
    /// The published network policy (see [`crate::policy`]).
    pub policy: SharedPolicy,
    /// The worker's WireGuard side, when the node runs it
    /// ([`RouteProgrammer::wireguard_worker`]).
    pub wireguard: Option<WgWorker>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HopKey {
    Remote(Via),
    Pod { worker: WorkerId, port: PortId, mac: MacAddr },
}

#[derive(Debug, Clone, Copy)]
struct HopEntry {
    id: NextHopId,
    refs: u32,
}

/// Learn events queued at most (one per MAC-less pod is enough; a full queue is retried).
const LEARN_QUEUE: usize = 256;

const EXCEPTION: NextHopId = NextHopId(0);
const BLACKHOLE: NextHopId = NextHopId(1);
const HOST: NextHopId = NextHopId(2);

/// The control thread's route programmer (see the module docs).
#[derive(Debug)]
pub struct RouteProgrammer {
    fib: FibWriter,
    node: NodeConfig,
    neighbours: Arc<NeighbourTable>,
    peers: SharedPeers,
    learned: Arc<MacLearnQueue>,
    flows: Arc<HostFlows>,
    policy: SharedPolicy,
    host: Option<Ipv4Addr>,
    wg: Option<WgControl>,
    remotes: HashMap<Ipv4Prefix, Via>,
    pods: HashMap<Ipv4Addr, LocalPod>,
    hops: HashMap<HopKey, HopEntry>,
    free_ids: Vec<u32>,
    next_id: u32,
}

impl RouteProgrammer {
    /// Takes over `fib` (expected empty) and installs the fixed routes.
    pub fn new(
        mut fib: FibWriter,
        node: NodeConfig,
        neighbours: Arc<NeighbourTable>,
    ) -> Result<Self, ProgramError> {
        fib.set_next_hops(&[
            (EXCEPTION, NextHop::Exception),
            (BLACKHOLE, NextHop::Blackhole),
            (HOST, NextHop::Host),
        ])?;
        fib.apply(&[
            RouteChange::Upsert(Ipv4Prefix::DEFAULT, EXCEPTION),
            RouteChange::Upsert(node.cluster, BLACKHOLE),
        ])?;
        Ok(RouteProgrammer {
            fib,
            node,
            neighbours,
            peers: Arc::new(ArcSwap::from_pointee(PeerSet::default())),
            learned: Arc::new(MacLearnQueue::new(LEARN_QUEUE)),
            flows: Arc::new(HostFlows::default()),
            policy: crate::policy::shared_policy(),
            host: None,
            wg: None,
            remotes: HashMap::new(),
            pods: HashMap::new(),
            hops: HashMap::new(),
            free_ids: Vec::new(),
            next_id: 3,
        })
    }

    /// The handles one worker's pipeline needs (a new FIB reader each call).
    pub fn handles(&self) -> PipelineHandles {
        PipelineHandles {
            fib: self.fib.reader(),
            peers: self.peers.clone(),
            neighbours: self.neighbours.clone(),
            learned: self.learned.clone(),
            flows: self.flows.clone(),
            policy: self.policy.clone(),
            wireguard: None,
        }
    }

    /// Runs flannel's wireguard backend: WireGuard routes are accepted from now on.
    pub fn enable_wireguard(&mut self, settings: WgSettings) {
        self.wg = Some(WgControl::new(settings));
    }

    /// The WireGuard peer registry, when enabled.
    pub fn wireguard(&self) -> Option<&WgControl> {
        self.wg.as_ref()
    }

    /// Worker `worker`'s WireGuard side (once per worker), when enabled.
    pub fn wireguard_worker(&self, worker: WorkerId) -> Option<WgWorker> {
        self.wg.as_ref().and_then(|wg| WgWorker::new(wg, worker))
    }

    /// Publishes `set` as the network policy every worker enforces from its next batch on (one
    /// store: a batch sees the old set or the new one, whole).
    pub fn set_policy(&self, set: PolicySet) {
        self.policy.store(Arc::new(set));
    }

    /// The published network policy.
    pub fn policy(&self) -> &SharedPolicy {
        &self.policy
    }

    /// Routes the node's own address on the host link (a /32 in the node's pod subnet, e.g.
    /// the subnet's .0 as flannel gives flannel.1) to the host, from pods and from the uplink
    /// alike: replies to the node's traffic to remote pods come back to it. `None` removes it.
    pub fn set_host_address(&mut self, ip: Option<Ipv4Addr>) -> Result<FibVersion, ProgramError> {
        let mut changes = Vec::with_capacity(2);
        if let Some(old) = self.host.filter(|&old| Some(old) != ip) {
            changes.push(RouteChange::Remove(Ipv4Prefix::covering(u32::from(old), 32)));
        }
        changes.extend(ip.map(|ip| RouteChange::Upsert(Ipv4Prefix::covering(u32::from(ip), 32), HOST)));
        let version = self.fib.apply(&changes)?;
        self.host = ip;
        Ok(version)
    }

    /// The node's address on the host link, if routed.
    pub fn host_address(&self) -> Option<Ipv4Addr> {
        self.host
    }

    /// The queue of pod MACs the workers learned, for the control side to drain and program
    /// (as [`RouteUpdate::Pod`] with the MAC).
    pub fn learned(&self) -> &Arc<MacLearnQueue> {
        &self.learned
    }

    /// The node configuration.
    pub fn node(&self) -> &NodeConfig {
        &self.node
    }

    /// The FIB writer (stats, routes).
    pub fn fib(&self) -> &FibWriter {
        &self.fib
    }

    /// The neighbour table.
    pub fn neighbours(&self) -> &Arc<NeighbourTable> {
        &self.neighbours
    }

    /// The current remote routes.
    pub fn remotes(&self) -> impl Iterator<Item = RemoteRoute> + '_ {
        self.remotes.iter().map(|(&prefix, &via)| RemoteRoute { prefix, via })
    }

    /// The current local pods.
    pub fn pods(&self) -> impl Iterator<Item = LocalPod> + '_ {
        self.pods.values().copied()
    }

    /// Applies a batch of updates: next hops first (one snapshot), then the routes (one FIB
    /// version), then next hops no route uses any more are removed after a grace period. On
    /// error the updates before the failing one stay applied.
    pub fn apply(&mut self, updates: &[RouteUpdate]) -> Result<FibVersion, ProgramError> {
        let mut new_hops = Vec::new();
        let mut changes = Vec::with_capacity(updates.len());
        let mut released = Vec::new();
        let mut result = Ok(());
        self.announce_peers(updates)?;
        for u in updates {
            let step = match *u {
                RouteUpdate::Remote(r) => {
                    let old = self.remotes.insert(r.prefix, r.via);
                    released.extend(old.map(HopKey::Remote));
                    self.acquire(HopKey::Remote(r.via), &mut new_hops)
                        .map(|id| RouteChange::Upsert(r.prefix, id))
                }
                RouteUpdate::RemoveRemote(prefix) => {
                    released.extend(self.remotes.remove(&prefix).map(HopKey::Remote));
                    Ok(RouteChange::Remove(prefix))
                }
                RouteUpdate::Pod(p) => {
                    let old = self.pods.insert(p.ip, p);
                    released.extend(old.map(|o| HopKey::Pod { worker: o.worker, port: o.port, mac: o.mac }));
                    let prefix = Ipv4Prefix::covering(u32::from(p.ip), 32);
                    self.acquire(HopKey::Pod { worker: p.worker, port: p.port, mac: p.mac }, &mut new_hops)
                        .map(|id| RouteChange::Upsert(prefix, id))
                }
                RouteUpdate::RemovePod(ip) => {
                    let old = self.pods.remove(&ip);
                    released.extend(old.map(|o| HopKey::Pod { worker: o.worker, port: o.port, mac: o.mac }));
                    Ok(RouteChange::Remove(Ipv4Prefix::covering(u32::from(ip), 32)))
                }
            };
            match step {
                Ok(c) => changes.push(c),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if !new_hops.is_empty() {
            self.fib.set_next_hops(&new_hops)?;
        }
        let version = self.fib.apply(&changes)?;
        let mut peers_changed = !new_hops.is_empty();
        for key in released {
            peers_changed |= self.release(key)?;
        }
        if peers_changed {
            self.publish_peers();
        }
        if let Some(wg) = self.wg.as_mut() {
            let remotes = &self.remotes;
            wg.retain(|key| {
                remotes.values().any(|v| matches!(v, Via::WireGuard { public_key, .. } if public_key == key))
            });
        }
        result.map(|()| version)
    }

    /// Registers (or updates) the WireGuard peer of every WireGuard route of `updates` with the
    /// workers, before any next hop names it.
    fn announce_peers(&mut self, updates: &[RouteUpdate]) -> Result<(), ProgramError> {
        for u in updates {
            if let RouteUpdate::Remote(RemoteRoute {
                prefix,
                via: Via::WireGuard { remote, port, public_key },
            }) = *u
            {
                let wg = self
                    .wg
                    .as_mut()
                    .ok_or(ProgramError::WireGuard("the wireguard backend is not enabled"))?;
                wg.upsert(public_key, prefix, (remote, port))
                    .ok_or(ProgramError::WireGuard("every peer slot is taken"))?;
            }
        }
        Ok(())
    }

    /// Records the MAC of underlay neighbour `ip` (`None`: forget it) and republishes, in one
    /// snapshot, every next hop that sends to it.
    pub fn set_neighbour(&mut self, ip: Ipv4Addr, mac: Option<MacAddr>) -> Result<(), ProgramError> {
        if self.neighbours.lookup(ip) == mac && self.neighbours.last_used(ip).is_some() {
            return Ok(());
        }
        self.neighbours.publish(ip, mac)?;
        let mut rebuilt = Vec::new();
        for (key, entry) in &self.hops {
            if self.underlay_of(*key) == Some(ip) {
                rebuilt.push((entry.id, self.build(*key)?));
            }
        }
        if !rebuilt.is_empty() {
            self.fib.set_next_hops(&rebuilt)?;
        }
        Ok(())
    }

    /// Underlay neighbours that next hops need and whose MAC is unknown (for the control
    /// side's resolver, besides the workers' requests).
    pub fn unresolved(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self
            .hops
            .keys()
            .filter_map(|k| self.underlay_of(*k))
            .filter(|ip| self.neighbours.lookup(*ip).is_none())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The underlay address whose MAC a next hop needs, if any.
    fn underlay_of(&self, key: HopKey) -> Option<Ipv4Addr> {
        match key {
            HopKey::Pod { .. } => None,
            HopKey::Remote(Via::HostGw { node }) => Some(node),
            HopKey::Remote(
                Via::Vxlan { remote, .. } | Via::Ipip { remote } | Via::WireGuard { remote, .. },
            ) => {
                if self.node.uplink_subnet.contains(u32::from(remote)) {
                    Some(remote)
                } else {
                    Some(self.node.underlay_gateway.unwrap_or(remote))
                }
            }
        }
    }

    fn acquire(
        &mut self,
        key: HopKey,
        new_hops: &mut Vec<(NextHopId, NextHop)>,
    ) -> Result<NextHopId, ProgramError> {
        if let Some(e) = self.hops.get_mut(&key) {
            e.refs += 1;
            return Ok(e.id);
        }
        let id = match self.free_ids.pop() {
            Some(id) => id,
            None if self.next_id <= NextHopId::MAX => {
                self.next_id += 1;
                self.next_id - 1
            }
            None => return Err(ProgramError::NextHopsExhausted { max: NextHopId::MAX }),
        };
        let hop = self.build(key)?;
        new_hops.push((NextHopId(id), hop));
        self.hops.insert(key, HopEntry { id: NextHopId(id), refs: 1 });
        Ok(NextHopId(id))
    }

    /// Drops one reference; removes the next hop when it was the last. Returns whether a next
    /// hop was removed.
    fn release(&mut self, key: HopKey) -> Result<bool, ProgramError> {
        let Some(e) = self.hops.get_mut(&key) else { return Ok(false) };
        e.refs -= 1;
        if e.refs > 0 {
            return Ok(false);
        }
        let id = e.id;
        self.hops.remove(&key);
        self.fib.remove_next_hop(id)?;
        self.free_ids.push(id.0);
        Ok(true)
    }

    fn publish_peers(&self) {
        let peers = self.hops.keys().filter_map(|k| match k {
            HopKey::Remote(Via::Vxlan { remote, .. } | Via::Ipip { remote }) => Some(*remote),
            _ => None,
        });
        self.peers.store(Arc::new(PeerSet::new(peers)));
    }

    /// The next hop for `key` as of the neighbour table now.
    fn build(&self, key: HopKey) -> Result<NextHop, ProgramError> {
        let n = &self.node;
        let via = match key {
            HopKey::Pod { worker, port, mac } => {
                return Ok(NextHop::LocalPod { worker: worker.0, port: port.0, mac });
            }
            HopKey::Remote(via) => via,
        };
        let direct = |node: Ipv4Addr| -> Result<NextHop, ProgramError> {
            let slot = self.neighbours.slot_of(node)?;
            Ok(match self.neighbours.lookup(node) {
                Some(mac) => NextHop::Direct { node, mac, slot },
                None => NextHop::HostGw { node },
            })
        };
        let on_subnet = |ip: Ipv4Addr| n.uplink_subnet.contains(u32::from(ip));
        let underlay = self.underlay_of(key).unwrap_or(Ipv4Addr::UNSPECIFIED);
        let resolve = || -> Result<(NeighbourSlot, Option<MacAddr>), ProgramError> {
            Ok((self.neighbours.slot_of(underlay)?, self.neighbours.lookup(underlay)))
        };
        match via {
            Via::HostGw { node } => direct(node),
            Via::Vxlan { remote, .. } | Via::Ipip { remote } if n.direct_routing && on_subnet(remote) => {
                direct(remote)
            }
            Via::Vxlan { remote, vtep_mac, vni, port } => {
                let (slot, mac) = resolve()?;
                let t = &n.tunnel;
                let template = VxlanTemplate::new(VxlanParams {
                    outer_src_mac: n.uplink_mac,
                    outer_dst_mac: mac.unwrap_or(MacAddr::ZERO),
                    src_ip: n.public_ip,
                    dst_ip: remote,
                    dst_port: port,
                    vni,
                    inner_src_mac: n.vtep_mac,
                    inner_dst_mac: vtep_mac,
                    ttl: t.ttl,
                    tos: t.tos,
                    dont_frag: t.dont_frag,
                    udp_checksum: t.udp_checksum,
                    src_ports: t.src_ports,
                });
                Ok(NextHop::Vxlan(VxlanNextHop { template, underlay, slot, resolved: mac.is_some() }))
            }
            Via::Ipip { remote } => {
                let (slot, mac) = resolve()?;
                let t = &n.tunnel;
                let template = IpipTemplate::new(IpipParams {
                    outer_src_mac: n.uplink_mac,
                    outer_dst_mac: mac.unwrap_or(MacAddr::ZERO),
                    src_ip: n.public_ip,
                    dst_ip: remote,
                    ttl: t.ttl,
                    tos: t.tos,
                    dont_frag: t.dont_frag,
                });
                Ok(NextHop::Ipip(IpipNextHop { template, underlay, slot, resolved: mac.is_some() }))
            }
            Via::WireGuard { public_key, .. } => {
                let wg = self
                    .wg
                    .as_ref()
                    .ok_or(ProgramError::WireGuard("the wireguard backend is not enabled"))?;
                let (peer, owner) =
                    wg.slot_of(&public_key).ok_or(ProgramError::WireGuard("peer not registered"))?;
                let (slot, mac) = resolve()?;
                Ok(NextHop::WireGuard(WgNextHop {
                    peer,
                    owner: owner.0,
                    dst_mac: mac.unwrap_or(MacAddr::ZERO),
                    underlay,
                    slot,
                    resolved: mac.is_some(),
                }))
            }
        }
    }
}
