//! The forwarding pipeline: what happens to each frame between rx and tx, for every data path
//! of flannel (vxlan, host-gw, ipip, DirectRouting) and Calico (IPIP, VXLAN, CrossSubnet).
//!
//! [`Pipeline`] is the worker's [`FrameProcessor`]. A batch goes through three stages (STYLE
//! habit 7), each a loop over the whole batch with one per-packet body:
//!
//! 1. **classify** (`pod_rx.rs`, `uplink_rx.rs`): by the rx port's role — pod, exception or
//!    uplink — validate the headers, answer ARP in place (`arp.rs`), check the pod's source
//!    address, decapsulate VXLAN/IPIP from known peers (`peers.rs`), and trim the frame to
//!    Ethernet + IPv4. Each frame ends either decided (a verdict) or waiting for a route.
//! 2. **resolve**: one [`FibReader::resolve_batch`] for every destination of the batch.
//! 3. **forward** (`forward.rs`): per packet, the next hop decides: TTL check and decrement with
//!    the incremental checksum, MTU check, MAC rewrite, VXLAN/IPIP encap by template, exception
//!    path; ICMP errors (`icmp.rs`, rate-limited per worker) are written in place and sent back
//!    out of the rx port.
//!
//! Nothing here allocates, locks, logs or panics per packet: the per-batch arrays are sized
//! once ([`MAX_BATCH`]), the FIB and the peer set are read lock-free once per batch, every drop
//! is a [`DropReason`] and every other event a [`PathCounter`], published once per batch.
//!
//! Each pod port is owned by one worker, and a pod's egress leaves through its owner's uplink
//! queue. A frame for a local pod whose port another worker owns (the pod's next hop names the
//! owner) is finished up to its destination MAC and handed to that worker
//! ([`PipelineConfig::worker`]), whose pipeline sets the pod port's source MAC in
//! [`FrameProcessor::handed_in`]. A pod attached without a MAC has it learned from its first
//! accepted frame (`learn.rs`, [`MacLearnQueue`]); until then frames to it are
//! `pod_mac_unknown` drops.
//!
//! The exception port is also the node's host link: the kernel's traffic to pods arrives there
//! (delivered to local pods, encapsulated to remote ones), traffic to the node's own address on
//! it (a /32 route to [`NextHop::Host`](crate::fib::NextHop::Host)) leaves there from any port,
//! and replies of flows the kernel forwarded to pods (a kube-proxy DNAT) go back there
//! (`host_flows.rs`) so that its conntrack reverses the translation. On the workers that do not
//! own the exception port such frames are handed to the one that does
//! ([`PipelineConfig::host_worker`]).
//!
//! Network policy (`crate::policy`) is checked where a frame from a pod is forwarded (the
//! source pod's egress) and where a frame is delivered to a pod by the worker that owns its port
//! (the destination pod's ingress, in stage 3 or in [`FrameProcessor::handed_in`]); the
//! connection table of that worker answers established flows first.
//!
//! Routes are programmed by the control thread through [`RouteProgrammer`]
//! (`programmer.rs`), which builds the encap templates and keeps the peer set and the next
//! hops' neighbour MACs current.

mod arp;
mod counters;
mod forward;
mod host_flows;
mod icmp;
mod learn;
mod peers;
mod pod_rx;
#[cfg(test)]
mod pod_worker_tests;
mod programmer;
#[cfg(any(test, feature = "test-support"))]
pub mod sample;
mod uplink_rx;

use std::net::Ipv4Addr;
use std::sync::Arc;

use weft_encap::{MacAddr, ParseError, Problem, VxlanDecapConfig};

pub use counters::{PathCounter, PathCounts, PipelineCounters};
pub use host_flows::HostFlows;
pub use icmp::IcmpRateLimit;
pub use learn::{LearnedMac, MacLearnQueue, UNLEARNED_MAC};
pub use peers::{PeerSet, SharedPeers};
pub use programmer::{
    LocalPod, NodeConfig, PipelineHandles, ProgramError, RemoteRoute, RouteProgrammer, RouteUpdate,
    TunnelOptions, Via,
};

use crate::fib::{FibReader, Ipv4Prefix, NextHop, NextHopId};
use crate::policy::{Enforcer, Packet, PolicySet, SharedPolicy};
use crate::port::{Frame, FrameMut, FramePool};
use crate::wireguard::{Opened, WgWorker};
use crate::worker::{DropReason, FrameProcessor, PortId, Verdict, WorkerId};

/// Largest batch processed in one pass (larger batches are processed in chunks).
pub const MAX_BATCH: usize = 256;

/// A pod behind one of the worker's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodPort {
    /// The pod's IP: the only source address accepted from this port.
    pub ip: Ipv4Addr,
    /// The pod interface's MAC; [`UNLEARNED_MAC`] when not given: the pipeline then learns it
    /// from the pod's first accepted frame (see [`MacLearnQueue`]).
    pub mac: MacAddr,
    /// The MAC weft answers the pod's ARP with (source MAC of frames delivered to the pod).
    pub gateway_mac: MacAddr,
}

/// The exception port: a veth (or any port) into the host's network stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionPort {
    /// Its worker port.
    pub port: PortId,
    /// Our MAC on it (source of frames we send the host; answers the host's ARP).
    pub our_mac: MacAddr,
    /// The host end's MAC (destination of frames we send the host).
    pub host_mac: MacAddr,
    /// The node's address on the host end (source of the node's own traffic to pods): flows
    /// from it are not recorded as kernel-forwarded (their replies are routed to the host).
    pub host_ip: Option<Ipv4Addr>,
}

/// What the pipeline of one worker needs to know about its node and ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// The uplink's worker port.
    pub uplink: PortId,
    /// The uplink's MAC.
    pub uplink_mac: MacAddr,
    /// Our PublicIP.
    pub public_ip: Ipv4Addr,
    /// The uplink's MTU (IPv4 bytes an outer packet may have).
    pub uplink_mtu: u16,
    /// This node's pod subnet (flannel's FLANNEL_SUBNET); its first address is the pods'
    /// gateway, and uplink IPv4 to it is a host-gw arrival.
    pub node_subnet: Ipv4Prefix,
    /// VXLAN accepted on the uplink (our PublicIP, port, VNI), if this node runs VXLAN.
    pub vxlan: Option<VxlanDecapConfig>,
    /// Whether IPIP to our PublicIP is accepted.
    pub ipip: bool,
    /// The WireGuard listen port, if this node runs flannel's wireguard backend: UDP to it at
    /// our PublicIP goes to the worker's [`WgWorker`] (which the pipeline's handles carry).
    pub wireguard: Option<u16>,
    /// The exception port, if any. On a worker with a `host_worker` it names that worker's
    /// exception port, which frames for the host are handed to.
    pub exception: Option<ExceptionPort>,
    /// The pods on this worker's ports.
    pub pods: Vec<(PortId, PodPort)>,
    /// This worker's id in the hand-off mesh (`WorkerId(0)` without one). A frame for a local
    /// pod whose next hop names another worker is finished here (TTL, destination MAC) and
    /// handed to that worker ([`Verdict::Handoff`]), which sets the pod port's source MAC and
    /// sends it ([`FrameProcessor::handed_in`]); one that names this worker but a port without
    /// a pod is a `no_such_port` drop.
    pub worker: WorkerId,
    /// The worker that owns the exception port, when this one does not: frames for the host
    /// are handed to it. `None`: the exception port (if any) is this worker's.
    pub host_worker: Option<WorkerId>,
    /// ICMP error rate limit.
    pub icmp: IcmpRateLimit,
}

impl PipelineConfig {
    /// The pods' gateway address: the node subnet's first address.
    pub fn gateway_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.node_subnet.bits().wrapping_add(1))
    }
}

/// What a worker port is to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortRole {
    None,
    Uplink,
    Pod(PodPort),
    Exception(ExceptionPort),
}

/// Where a routed packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Pod,
    Exception,
    /// Plain IPv4 from the uplink (host-gw arrival).
    UplinkPlain,
    /// Decapsulated VXLAN or IPIP: no ICMP errors are sent back (they would need encap).
    UplinkTunnel(PathCounter),
}

/// A packet waiting for its route: the frame is exactly Ethernet (14) + IPv4 (`ip_len`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Routed {
    pub origin: Origin,
    pub dst: u32,
    pub ip_len: u16,
    pub ttl: u8,
    pub dont_frag: bool,
}

/// The outcome of classification.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    Done(Verdict),
    Route(Routed),
}

impl From<DropReason> for Step {
    fn from(r: DropReason) -> Self {
        Step::Done(Verdict::Drop(r))
    }
}

/// The per-packet counter of a parse error.
pub(crate) fn parse_drop(e: ParseError) -> DropReason {
    match e {
        ParseError::Truncated { .. } => DropReason::Truncated,
        ParseError::Malformed { problem, .. } => match problem {
            Problem::Ipv4Checksum => DropReason::Ipv4Checksum,
            Problem::VlanTagged | Problem::NestedVlan => DropReason::VlanTagged,
            Problem::VxlanNoVni | Problem::VxlanReserved => DropReason::VxlanBadFlags,
            Problem::Ipv4Fragment => DropReason::TunnelFragment,
            _ => DropReason::Malformed,
        },
    }
}

/// The IPv4 header of an untagged Ethernet frame, its length fields validated; `Ok(None)`
/// for another EtherType.
pub(crate) fn ipv4_header(d: &[u8]) -> Result<Option<weft_encap::wire::ipv4::Ipv4Packet<&[u8]>>, DropReason> {
    use weft_encap::wire::ethernet::{EtherType, EthernetFrame, HEADER_LEN, VlanPolicy};
    let l2 = EthernetFrame::new_checked(d).and_then(|e| e.header(VlanPolicy::Reject)).map_err(parse_drop)?;
    if l2.ethertype != EtherType::IPV4 {
        return Ok(None);
    }
    weft_encap::wire::ipv4::Ipv4Packet::new_checked(&d[HEADER_LEN..]).map(Some).map_err(parse_drop)
}

/// Validates the Ethernet + IPv4 headers of `f` (untagged, version, IHL, lengths, header
/// checksum) and trims the frame to exactly Ethernet + the IPv4 packet (dropping padding).
pub(crate) fn ipv4_frame(f: &mut FrameMut<'_>, origin: Origin) -> Step {
    use weft_encap::wire::ethernet::HEADER_LEN;
    let ip = match ipv4_header(f.data()) {
        Ok(Some(ip)) => ip,
        Ok(None) => return DropReason::UnsupportedEthertype.into(),
        Err(r) => return r.into(),
    };
    if !ip.verify_checksum() {
        return DropReason::Ipv4Checksum.into();
    }
    let r = Routed {
        origin,
        dst: u32::from(ip.dst_addr()),
        ip_len: ip.total_len(),
        ttl: ip.ttl(),
        dont_frag: ip.dont_frag(),
    };
    let off = f.offset();
    if !f.set_bounds(off, HEADER_LEN + usize::from(r.ip_len)) {
        return DropReason::Truncated.into();
    }
    Step::Route(r)
}

/// Mutable per-worker state the stages share.
#[derive(Debug)]
pub(crate) struct State {
    steps: Vec<Step>,
    dsts: Vec<u32>,
    which: Vec<u16>,
    hops: Vec<Option<NextHopId>>,
    pub totals: PathCounts,
    pub icmp: icmp::TokenBucket,
    pub ident: u16,
    /// Per rx port: a learn event for its pod's MAC is queued (sized with the roles, so the
    /// packet path never grows it).
    pub learn_sent: Vec<bool>,
    /// Recently requested neighbours `(ip, epoch)`, direct-mapped, so one worker asks for an
    /// address at most once per epoch per slot.
    pub recent: [(u32, u32); 16],
    /// The network policy's connection table and clock.
    pub enforcer: Enforcer,
    /// This worker's WireGuard side, if the node runs it.
    pub wg: Option<WgWorker>,
    /// Stage 3a, per routed packet (indexed like `which`): what the policy checks of it.
    pre: Vec<Option<forward::Policed>>,
    /// Stage 3a, per routed packet: the policy's verdict.
    policed: Vec<Result<(), DropReason>>,
}

/// The forwarding pipeline of one worker (see the module docs).
#[derive(Debug)]
pub struct Pipeline {
    tables: forward::ForwardTables,
    fib: FibReader,
    peers: SharedPeers,
    learned: Arc<MacLearnQueue>,
    policy: SharedPolicy,
    counters: Arc<PipelineCounters>,
    st: State,
}

impl Pipeline {
    /// A pipeline for one worker, reading the routes the [`RouteProgrammer`] publishes.
    pub fn new(cfg: PipelineConfig, handles: PipelineHandles) -> Self {
        let mut p = Pipeline {
            fib: handles.fib,
            peers: handles.peers,
            learned: handles.learned,
            policy: handles.policy,
            counters: PipelineCounters::new(),
            st: State {
                steps: Vec::with_capacity(MAX_BATCH),
                dsts: Vec::with_capacity(MAX_BATCH),
                which: Vec::with_capacity(MAX_BATCH),
                hops: vec![None; MAX_BATCH],
                totals: PathCounts::default(),
                icmp: icmp::TokenBucket::new(cfg.icmp),
                ident: 0,
                learn_sent: Vec::new(),
                recent: [(0, 0); 16],
                enforcer: Enforcer::default(),
                wg: handles.wireguard,
                pre: Vec::with_capacity(MAX_BATCH),
                policed: Vec::with_capacity(MAX_BATCH),
            },
            tables: forward::ForwardTables {
                cfg,
                roles: Vec::new(),
                neighbours: handles.neighbours,
                flows: handles.flows,
            },
        };
        p.rebuild_roles();
        p
    }

    /// Recomputes the role of every port in place: within the room [`Pipeline::reserve_ports`]
    /// made, a pod that comes or goes allocates nothing.
    fn rebuild_roles(&mut self) {
        let roles = &mut self.tables.roles;
        roles.clear();
        let mut set = |port: PortId, role: PortRole| {
            let i = usize::from(port.0);
            if roles.len() <= i {
                roles.resize(i + 1, PortRole::None);
            }
            roles[i] = role;
        };
        set(self.tables.cfg.uplink, PortRole::Uplink);
        if let Some(e) = self.tables.cfg.exception.filter(|_| self.tables.cfg.host_worker.is_none()) {
            set(e.port, PortRole::Exception(e));
        }
        for &(port, pod) in &self.tables.cfg.pods {
            set(port, PortRole::Pod(pod));
        }
        self.st.learn_sent.clear();
        self.st.learn_sent.resize(self.tables.roles.len(), false);
    }

    /// Makes room for `ports` ports in all, so that pods attached to them later (on the
    /// worker's thread, [`Pipeline::attach_pod`]) allocate nothing there.
    pub fn reserve_ports(&mut self, ports: usize) {
        let t = &mut self.tables;
        t.roles.reserve(ports.saturating_sub(t.roles.len()));
        self.st.learn_sent.reserve(ports.saturating_sub(self.st.learn_sent.len()));
        t.cfg.pods.reserve(ports.saturating_sub(t.cfg.pods.len()));
    }

    /// Takes pod `pod` on port `port` (a pod port attached while the worker runs: the
    /// worker's command, on its thread, between batches).
    pub fn attach_pod(&mut self, port: PortId, pod: PodPort) {
        self.tables.cfg.pods.retain(|(p, _)| *p != port);
        self.tables.cfg.pods.push((port, pod));
        self.rebuild_roles();
    }

    /// Forgets the pod on port `port` (detached while the worker runs); frames still routed
    /// to it are `no_such_port` drops, frames handed to it `handoff_stale`.
    pub fn detach_pod(&mut self, port: PortId) {
        self.tables.cfg.pods.retain(|(p, _)| *p != port);
        self.rebuild_roles();
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.tables.cfg
    }

    /// This pipeline's counters, readable from any thread.
    pub fn counters(&self) -> &Arc<PipelineCounters> {
        &self.counters
    }

    fn process_chunk(
        &mut self,
        rx_port: PortId,
        pool: &mut FramePool,
        frames: &mut [Frame],
        verdicts: &mut Vec<Verdict>,
    ) {
        let role = self.tables.roles.get(usize::from(rx_port.0)).copied().unwrap_or(PortRole::None);
        let st = &mut self.st;
        st.steps.clear();
        st.dsts.clear();
        st.which.clear();

        // Stage 1: classify.
        let peers = (role == PortRole::Uplink).then(|| self.peers.load());
        let side = RxSide::of(role, peers.as_ref().map(|g| &***g));
        let learn = Learn::of(role, rx_port, st);
        if let Some(wg) = st.wg.as_mut() {
            wg.refresh();
        }
        for f in frames.iter_mut() {
            let f = &mut pool.view(f);
            let step = if is_wireguard(&self.tables.cfg, side, f.data()) {
                open_step(&self.tables.cfg, f, st)
            } else {
                classify_learning(&self.tables.cfg, side, rx_port, f, st, learn, &self.learned)
            };
            st.steps.push(step);
        }
        drop(peers);

        // Stage 2: one batched FIB lookup for every routed packet.
        for (i, s) in st.steps.iter().enumerate() {
            if let Step::Route(r) = s {
                st.dsts.push(r.dst);
                st.which.push(i as u16);
            }
        }
        let n = st.dsts.len();
        let snapshot = self.fib.resolve_batch(&st.dsts, &mut st.hops[..n]);

        // Stage 3a, with a policy in force: the batch's policy checks. The connection-table
        // line of every packet a check reads is loaded first, together, so that the cache misses
        // overlap; then each packet is checked.
        let policy = self.policy.load();
        let mut fw = forward::Forwarder::new(&self.tables, enforced(&policy), rx_port, role);
        st.pre.clear();
        st.policed.clear();
        if let Some(set) = fw.policy
            && n > 0
        {
            let now = std::time::Instant::now();
            fw.now = Some(now);
            fw.policed = true;
            let secs = st.enforcer.secs(now);
            st.enforcer.tick(secs);
            let mut folded = 0u32;
            for (k, &i) in st.which.iter().enumerate() {
                let (i, hop) = (usize::from(i), st.hops[k].and_then(|id| snapshot.get(id)));
                let pre = match (&st.steps[i], hop, frames.get_mut(i)) {
                    (Step::Route(r), Some(hop), Some(f)) => fw.policed(*r, hop, &pool.view(f)),
                    _ => None,
                };
                if let Some(p) = &pre {
                    folded ^= st.enforcer.touch(set, &p.pkt);
                }
                st.pre.push(pre);
            }
            std::hint::black_box(folded);
            for p in &st.pre {
                let v = match p {
                    Some(p) => st.enforcer.check(set, &p.pkt, p.src_here, p.dst_here, secs, &mut st.totals),
                    None => Ok(()),
                };
                st.policed.push(v);
            }
        }

        // Stage 3: forward.
        let mut k = 0;
        for (i, f) in frames.iter_mut().enumerate() {
            let v = match st.steps[i] {
                Step::Done(v) => v,
                Step::Route(r) => {
                    debug_assert_eq!(usize::from(st.which[k]), i);
                    let hop = st.hops[k].and_then(|id| snapshot.get(id));
                    let policed = st.policed.get(k).copied().unwrap_or(Ok(()));
                    k += 1;
                    match policed {
                        Err(reason) => Verdict::Drop(reason),
                        Ok(()) => fw.forward(r, hop, &mut pool.view(f), st),
                    }
                }
            };
            verdicts.push(v);
        }
        drop(snapshot);
        drop(policy);
        self.counters.publish(&st.totals);
        self.counters.publish_conntrack(st.enforcer.table().entries());
    }
}

/// The policy set to enforce, `None` when it isolates no pod (every check is skipped).
#[inline]
fn enforced(set: &Arc<PolicySet>) -> Option<&PolicySet> {
    (!set.is_empty()).then_some(&**set)
}

/// Whether `addr` is one of the node's own addresses (the host link's, the PublicIP): traffic
/// between a pod and its node is never policed.
#[inline]
pub(crate) fn is_node_address(cfg: &PipelineConfig, addr: u32) -> bool {
    addr == u32::from(cfg.public_ip)
        || cfg.exception.and_then(|e| e.host_ip).is_some_and(|h| u32::from(h) == addr)
}

/// Whether a frame from the uplink is UDP to our WireGuard listen port at our PublicIP.
#[inline]
fn is_wireguard(cfg: &PipelineConfig, side: RxSide<'_>, d: &[u8]) -> bool {
    let Some(port) = cfg.wireguard else { return false };
    matches!(side, RxSide::Uplink(_))
        && d.get(12..14) == Some(&[0x08, 0x00][..])
        && d.get(30..34) == Some(&cfg.public_ip.octets()[..])
        && crate::wireguard::udp_dst_port(d) == Some(port)
}

/// Stage 1 for a WireGuard datagram: decrypted and classified as a tunnel arrival, answered in
/// place, or handed to the worker that owns its peer.
fn open_step(cfg: &PipelineConfig, f: &mut FrameMut<'_>, st: &mut State) -> Step {
    match ipv4_header(f.data()) {
        Ok(Some(ip)) if ip.verify_checksum() => {}
        Ok(Some(_)) => return DropReason::Ipv4Checksum.into(),
        Ok(None) => return DropReason::NotForUs.into(),
        Err(r) => return r.into(),
    }
    let Some(wg) = st.wg.as_mut() else { return DropReason::NotForUs.into() };
    match wg.open(f) {
        Ok(Opened::Plain) => ipv4_frame(f, Origin::UplinkTunnel(PathCounter::WgDecrypt)),
        Ok(Opened::Reply) => {
            st.totals.bump(PathCounter::WgReply);
            Step::Done(Verdict::Tx(cfg.uplink))
        }
        Ok(Opened::Owner(worker)) => {
            st.totals.bump(PathCounter::WgHandoff);
            Step::Done(Verdict::Handoff { worker, port: crate::wireguard::OPEN_PORT })
        }
        Ok(Opened::Consumed) => DropReason::WgProtocol.into(),
        Err(r) => r.into(),
    }
}

/// What stage 1 needs about the rx port, resolved once per batch.
#[derive(Debug, Clone, Copy)]
enum RxSide<'a> {
    Uplink(&'a PeerSet),
    Pod(pod_rx::PodSide),
    None,
}

impl<'a> RxSide<'a> {
    fn of(role: PortRole, peers: Option<&'a PeerSet>) -> Self {
        match (role, peers) {
            (PortRole::Uplink, Some(peers)) => RxSide::Uplink(peers),
            _ => pod_rx::PodSide::of(role).map_or(RxSide::None, RxSide::Pod),
        }
    }
}

/// Stage 1 for one frame.
#[inline]
fn classify(
    cfg: &PipelineConfig,
    side: RxSide<'_>,
    rx_port: PortId,
    f: &mut FrameMut<'_>,
    totals: &mut PathCounts,
) -> Step {
    match side {
        RxSide::Uplink(peers) => uplink_rx::classify(cfg, peers, f),
        RxSide::Pod(side) => pod_rx::classify(cfg, side, rx_port, f, totals),
        RxSide::None => DropReason::UnknownPort.into(),
    }
}

/// Whether frames of this batch may teach us the rx pod's MAC: `Some(pod ip)` while its pod has
/// no MAC and no learn event is queued yet. Decided once per batch.
#[derive(Debug, Clone, Copy)]
struct Learn(Option<Ipv4Addr>);

impl Learn {
    fn of(role: PortRole, rx_port: PortId, st: &State) -> Self {
        match role {
            PortRole::Pod(p) if p.mac == UNLEARNED_MAC => {
                let sent = st.learn_sent.get(usize::from(rx_port.0)).copied().unwrap_or(true);
                Learn((!sent).then_some(p.ip))
            }
            _ => Learn(None),
        }
    }
}

/// Stage 1 for one frame, plus MAC learning: while `learn` asks for it, the source MAC of a
/// frame the pod check accepted (its gateway ARP, or IPv4 from the pod's IP) is queued for the
/// control side, once (again with a later frame if the queue was full).
#[inline]
fn classify_learning(
    cfg: &PipelineConfig,
    side: RxSide<'_>,
    rx_port: PortId,
    f: &mut FrameMut<'_>,
    st: &mut State,
    learn: Learn,
    queue: &MacLearnQueue,
) -> Step {
    let Learn(Some(ip)) = learn else {
        return classify(cfg, side, rx_port, f, &mut st.totals);
    };
    // Read before classification: an answered ARP request is rewritten into our reply.
    let mut src = [0u8; 6];
    if let Some(s) = f.data().get(6..12) {
        src.copy_from_slice(s);
    }
    let step = classify(cfg, side, rx_port, f, &mut st.totals);
    let accepted = matches!(step, Step::Route(_) | Step::Done(Verdict::Tx(_)));
    let sent = st.learn_sent.get_mut(usize::from(rx_port.0));
    if let Some(s) = sent.filter(|s| !**s && accepted && learn::learnable(src))
        && queue.push(LearnedMac { ip, mac: MacAddr(src) })
    {
        *s = true;
        st.totals.bump(PathCounter::PodMacLearned);
    }
    step
}

impl Pipeline {
    /// The ingress check of a frame another worker handed to one of our pods.
    fn police_handed_in(&mut self, frame: &FrameMut<'_>) -> Result<(), DropReason> {
        let policy = self.policy.load();
        let Some(set) = enforced(&policy) else { return Ok(()) };
        let Some(pkt) = Packet::of_frame(frame.data()) else { return Ok(()) };
        if is_node_address(&self.tables.cfg, pkt.flow.src) {
            return Ok(());
        }
        let now = self.st.enforcer.secs(std::time::Instant::now());
        self.st.enforcer.tick(now);
        self.st.enforcer.check(set, &pkt, false, true, now, &mut self.st.totals)
    }
}

impl Pipeline {
    /// Routes one frame as stage 2 and 3 do, as if received on `rx_port` with `role`.
    fn route_one(&mut self, r: Routed, rx_port: PortId, role: PortRole, frame: &mut FrameMut<'_>) -> Verdict {
        let mut hop = [None];
        let snapshot = self.fib.resolve_batch(&[r.dst], &mut hop);
        let policy = self.policy.load();
        let mut fw = forward::Forwarder::new(&self.tables, enforced(&policy), rx_port, role);
        fw.forward(r, hop[0].and_then(|id| snapshot.get(id)), frame, &mut self.st)
    }

    /// A packet another worker routed to a WireGuard peer this worker owns: encrypted here.
    fn seal_handed_in(&mut self, frame: &mut FrameMut<'_>) -> Verdict {
        let Some(dst) = frame.data().get(30..34).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
            return Verdict::Drop(DropReason::HandoffStale);
        };
        let mut hop = [None];
        let snapshot = self.fib.resolve_batch(&[dst], &mut hop);
        let v = match hop[0].and_then(|id| snapshot.get(id)) {
            Some(NextHop::WireGuard(h)) if WorkerId(h.owner) == self.tables.cfg.worker && h.resolved => {
                forward::seal(&self.tables.cfg, h, frame, &mut self.st)
            }
            _ => Verdict::Drop(DropReason::HandoffStale),
        };
        drop(snapshot);
        self.counters.publish(&self.st.totals);
        v
    }

    /// A datagram for a WireGuard peer this worker owns, received by another worker.
    fn open_handed_in(&mut self, frame: &mut FrameMut<'_>) -> Verdict {
        let v = match open_step(&self.tables.cfg, frame, &mut self.st) {
            Step::Done(Verdict::Handoff { .. }) => Verdict::Drop(DropReason::HandoffStale),
            Step::Done(v) => v,
            Step::Route(r) => {
                let uplink = self.tables.cfg.uplink;
                self.route_one(r, uplink, PortRole::Uplink, frame)
            }
        };
        self.counters.publish(&self.st.totals);
        v
    }

    /// Runs the WireGuard timers of the peers this worker owns.
    fn wireguard_tick(&mut self, pool: &mut FramePool, out: &mut Vec<(PortId, Frame)>) {
        let Some(wg) = self.st.wg.as_mut() else { return };
        let cfg = &self.tables.cfg;
        let fib = &self.fib;
        let outer_for = |info: &crate::wireguard::PeerInfo| {
            let mut hop = [None];
            let snapshot = fib.resolve_batch(&[info.allowed.bits()], &mut hop);
            match hop[0].and_then(|id| snapshot.get(id)) {
                Some(NextHop::WireGuard(h)) if h.resolved => Some(crate::wireguard::Outer {
                    src_mac: cfg.uplink_mac,
                    dst_mac: h.dst_mac,
                    src_ip: cfg.public_ip,
                    dst_ip: info.endpoint.0,
                    src_port: wg_port(cfg),
                    dst_port: info.endpoint.1,
                }),
                _ => None,
            }
        };
        let send = |bytes: &[u8]| match (out.len() < out.capacity()).then(|| pool.copy_in(bytes)).flatten() {
            Some(f) => {
                out.push((cfg.uplink, f));
                true
            }
            None => false,
        };
        let (initiations, others) = wg.tick(outer_for, send, &mut self.st.ident);
        self.st.totals.0[PathCounter::WgTimerInitiation as usize] += initiations as u64;
        self.st.totals.0[PathCounter::WgTimer as usize] += others as u64;
        self.counters.publish(&self.st.totals);
    }
}

/// Our WireGuard listen port (0 when the node runs none).
fn wg_port(cfg: &PipelineConfig) -> u16 {
    cfg.wireguard.unwrap_or(0)
}

impl FrameProcessor for Pipeline {
    fn tick_interval(&self) -> Option<std::time::Duration> {
        self.st.wg.as_ref().map(|_| crate::wireguard::TICK)
    }

    fn tick(&mut self, pool: &mut FramePool, out: &mut Vec<(PortId, Frame)>) {
        self.wireguard_tick(pool, out);
    }

    /// A frame another worker routed to one of our pods or to the host: only this worker knows
    /// the pod port's gateway MAC, so it sets the source MAC here. A port that no longer carries
    /// the frame's destination (its pod detached, or its slot given to another pod, while the
    /// frame was in flight) is `handoff_stale`.
    fn handed_in(&mut self, port: PortId, frame: &mut FrameMut<'_>) -> Verdict {
        use weft_encap::wire::ethernet::{EthernetFrame, HEADER_LEN};
        if let Some(wg) = self.st.wg.as_mut().filter(|_| port.0 >= crate::wireguard::OPEN_PORT.0) {
            wg.refresh();
        }
        if port == crate::wireguard::SEAL_PORT {
            return self.seal_handed_in(frame);
        }
        if port == crate::wireguard::OPEN_PORT {
            return self.open_handed_in(frame);
        }
        let pod = match self.tables.roles.get(usize::from(port.0)).copied() {
            Some(PortRole::Pod(pod)) => pod,
            Some(PortRole::Exception(e)) => {
                let d = frame.data_mut();
                if d.len() < HEADER_LEN {
                    return Verdict::Drop(DropReason::HandoffStale);
                }
                EthernetFrame::new_unchecked(&mut d[..HEADER_LEN]).set_src_addr(e.our_mac);
                return Verdict::Tx(port);
            }
            _ => return Verdict::Drop(DropReason::HandoffStale),
        };
        // The sender validated and rewrote Ethernet + IPv4; the destination address is at 14 + 16.
        if frame.data().get(HEADER_LEN + 16..HEADER_LEN + 20) == Some(&pod.ip.octets()[..])
            && let Err(reason) = self.police_handed_in(frame)
        {
            return Verdict::Drop(reason);
        }
        let d = frame.data_mut();
        match d.get(HEADER_LEN + 16..HEADER_LEN + 20) {
            Some(dst) if dst == pod.ip.octets() => {
                EthernetFrame::new_unchecked(&mut d[..HEADER_LEN]).set_src_addr(pod.gateway_mac);
                Verdict::Tx(port)
            }
            _ => Verdict::Drop(DropReason::HandoffStale),
        }
    }

    /// One frame through the same three stages (a batch of one). The worker calls
    /// [`FrameProcessor::process_batch`]; this is for callers that hold a single frame.
    fn process(&mut self, rx_port: PortId, frame: &mut FrameMut<'_>) -> Verdict {
        let role = self.tables.roles.get(usize::from(rx_port.0)).copied().unwrap_or(PortRole::None);
        let peers = (role == PortRole::Uplink).then(|| self.peers.load());
        let side = RxSide::of(role, peers.as_ref().map(|g| &***g));
        let learn = Learn::of(role, rx_port, &self.st);
        if let Some(wg) = self.st.wg.as_mut() {
            wg.refresh();
        }
        let step = if is_wireguard(&self.tables.cfg, side, frame.data()) {
            open_step(&self.tables.cfg, frame, &mut self.st)
        } else {
            classify_learning(&self.tables.cfg, side, rx_port, frame, &mut self.st, learn, &self.learned)
        };
        drop(peers);
        let v = match step {
            Step::Done(v) => v,
            Step::Route(r) => {
                let mut hop = [None];
                let snapshot = self.fib.resolve_batch(&[r.dst], &mut hop);
                let policy = self.policy.load();
                let mut fw = forward::Forwarder::new(&self.tables, enforced(&policy), rx_port, role);
                fw.forward(r, hop[0].and_then(|id| snapshot.get(id)), frame, &mut self.st)
            }
        };
        self.counters.publish(&self.st.totals);
        self.counters.publish_conntrack(self.st.enforcer.table().entries());
        v
    }

    fn process_batch(
        &mut self,
        rx_port: PortId,
        pool: &mut FramePool,
        frames: &mut [Frame],
        verdicts: &mut Vec<Verdict>,
    ) {
        for chunk in frames.chunks_mut(MAX_BATCH) {
            self.process_chunk(rx_port, pool, chunk, verdicts);
        }
    }
}
