//! Stage 3: what the next hop does to one routed packet. One body for every path:
//! TTL check -> (remote paths) MTU check -> TTL decrement with the incremental checksum ->
//! MAC rewrite or encap -> verdict. ICMP errors replace the frame in place and go back out of
//! the rx port. Before that, frames to and from the host link consult the [`HostFlows`] table:
//! what the kernel forwards to a pod is recorded, and its replies are handed back to the kernel.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use weft_encap::wire::ethernet::{EthernetFrame, HEADER_LEN};
use weft_encap::wire::icmpv4::IcmpError;
use weft_encap::wire::ipv4::Ipv4Packet;
use weft_encap::{MacAddr, Span};

use super::counters::PathCounter;
use super::host_flows::{FlowKey, HostFlows};
use super::{Origin, PipelineConfig, PortRole, Routed, State, UNLEARNED_MAC, icmp, is_node_address};
use crate::fib::next_hop::NeighbourSlot;
use crate::fib::{NextHop, WgNextHop};
use crate::neighbour::NeighbourTable;
use crate::policy::{Packet, PolicySet};
use crate::port::FrameMut;
use crate::wireguard::Sealed;
use crate::worker::{DropReason, PortId, Verdict, WorkerId};

/// Bytes of IPv4 each remote path adds in front of the inner IPv4 packet.
const VXLAN_OVERHEAD: u16 = weft_encap::tunnel::vxlan::OVERHEAD as u16;
const IPIP_OVERHEAD: u16 = weft_encap::tunnel::ipip::OVERHEAD as u16;
const WG_OVERHEAD: u16 = crate::wireguard::OVERHEAD;

/// Everything stage 3 reads, for one batch.
#[derive(Debug)]
pub(crate) struct Forwarder<'a> {
    pub cfg: &'a PipelineConfig,
    pub roles: &'a [PortRole],
    pub neighbours: &'a NeighbourTable,
    pub epoch: u32,
    pub rx_port: PortId,
    pub rx_role: PortRole,
    /// The clock, read at most once per batch (only when an ICMP error is wanted or the host
    /// flow table is used).
    pub now: Option<Instant>,
    /// The host flow table, when it has entries (checked once per batch).
    pub flows: Option<&'a HostFlows>,
    /// The network policy, when it isolates any pod (checked once per batch).
    pub policy: Option<&'a PolicySet>,
    /// The batch's policy checks were made before forwarding (stage 3a): `forward` skips them.
    pub policed: bool,
}

/// A packet the policy checks, and which of its ends this worker polices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policed {
    pub pkt: Packet,
    pub src_here: bool,
    pub dst_here: bool,
}

fn set_macs(f: &mut FrameMut<'_>, dst: MacAddr, src: MacAddr) {
    let mut eth = EthernetFrame::new_unchecked(&mut f.data_mut()[..HEADER_LEN]);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
}

fn decrement_ttl(f: &mut FrameMut<'_>) {
    // Stage 1 validated the header and stage 3 checked TTL > 1 before calling this.
    let _ = Ipv4Packet::new_unchecked(&mut f.data_mut()[HEADER_LEN..]).decrement_ttl();
}

/// Who sends a frame to a local pod: this worker (it owns the pod's port) or the worker that
/// owns it, which the frame is handed to.
enum PodDest {
    Here(super::PodPort),
    Owner(WorkerId),
}

/// What stage 3 reads for every batch, owned by the pipeline apart from its scratch state.
#[derive(Debug)]
pub(crate) struct ForwardTables {
    /// The worker's configuration.
    pub cfg: PipelineConfig,
    /// Each port's role, indexed by port id.
    pub roles: Vec<PortRole>,
    /// Resolved next-hop MACs.
    pub neighbours: Arc<NeighbourTable>,
    /// Flows the host link started, whose replies go back through it.
    pub flows: Arc<HostFlows>,
}

impl<'a> Forwarder<'a> {
    /// The forwarder of one batch received on `rx_port`.
    pub(crate) fn new(
        tables: &'a ForwardTables,
        policy: Option<&'a PolicySet>,
        rx_port: PortId,
        rx_role: PortRole,
    ) -> Self {
        let ForwardTables { cfg, roles, neighbours, flows } = tables;
        // Frames from the host link teach the table; others read it only once it has entries.
        let flows = (matches!(rx_role, PortRole::Exception(_)) || flows.live()).then_some(&**flows);
        Forwarder {
            cfg,
            roles,
            neighbours,
            epoch: neighbours.epoch(),
            rx_port,
            rx_role,
            now: None,
            flows,
            policy,
            policed: false,
        }
    }

    /// The host flow table's clock, read once per batch.
    fn secs(&mut self, flows: &HostFlows) -> u32 {
        flows.secs(*self.now.get_or_insert_with(Instant::now))
    }

    /// For a packet on its way to a pod (here or remote): from the host link, records its reply
    /// flow (unless the node itself sent it: replies to the node's address are routed to the
    /// host anyway) and returns false; from anywhere else, whether it answers such a flow.
    #[inline]
    fn kernel_flow(&mut self, origin: Origin, f: &FrameMut<'_>) -> bool {
        let Some(flows) = self.flows else { return false };
        let Some(key) = FlowKey::of(f.data()) else { return false };
        let secs = self.secs(flows);
        if origin == Origin::Exception {
            let from_node =
                self.cfg.exception.and_then(|e| e.host_ip).is_some_and(|ip| u32::from(ip) == key.src());
            if !from_node {
                flows.learn(key.reversed(), secs);
            }
            return false;
        }
        flows.hit(key, secs)
    }

    /// The verdict for routed packet `r` whose route resolved to `hop`.
    #[inline]
    pub(crate) fn forward(
        &mut self,
        r: Routed,
        hop: Option<&NextHop>,
        f: &mut FrameMut<'_>,
        st: &mut State,
    ) -> Verdict {
        let Some(hop) = hop else { return Verdict::Drop(DropReason::NoRoute) };
        if let Some(set) = self.policy.filter(|_| !self.policed)
            && let Err(reason) = self.police(set, r, hop, f, st)
        {
            return Verdict::Drop(reason);
        }
        let remote = match hop {
            NextHop::LocalPod { worker, port, mac } => {
                if self.kernel_flow(r.origin, f) {
                    return self.deliver_to_host(f, st, PathCounter::ExceptionReply);
                }
                return self.deliver(r, WorkerId(*worker), PortId(*port), *mac, f, st);
            }
            NextHop::Exception => return self.hand_to_host(r, f, st),
            NextHop::Host => return self.deliver_to_host(f, st, PathCounter::ExceptionNode),
            NextHop::Blackhole => {
                let reason = if r.origin == Origin::Pod { DropReason::NoRoute } else { DropReason::NotLocal };
                return Verdict::Drop(reason);
            }
            remote => remote,
        };
        if !matches!(r.origin, Origin::Pod | Origin::Exception) {
            return Verdict::Drop(DropReason::NotLocal);
        }
        if self.kernel_flow(r.origin, f) {
            return self.deliver_to_host(f, st, PathCounter::ExceptionReply);
        }
        if r.ttl <= 1 {
            return self.icmp(r, IcmpError::TimeExceeded, DropReason::TtlExpired, f, st);
        }
        let (overhead, slot, path) = match remote {
            NextHop::Direct { slot, .. } => (0, *slot, PathCounter::Direct),
            NextHop::Vxlan(h) => (VXLAN_OVERHEAD, h.slot, PathCounter::VxlanEncap),
            NextHop::Ipip(h) => (IPIP_OVERHEAD, h.slot, PathCounter::IpipEncap),
            NextHop::WireGuard(h) => (WG_OVERHEAD, h.slot, PathCounter::WgEncrypt),
            NextHop::HostGw { node } => return self.unresolved(*node, st),
            _ => return Verdict::Drop(DropReason::NoRoute),
        };
        let mtu = self.cfg.uplink_mtu;
        if u32::from(r.ip_len) + u32::from(overhead) > u32::from(mtu) {
            if !r.dont_frag {
                return Verdict::Drop(DropReason::TooBig);
            }
            let next_hop_mtu = mtu.saturating_sub(overhead);
            return self.icmp(r, IcmpError::FragmentationNeeded { next_hop_mtu }, DropReason::TooBig, f, st);
        }
        match remote {
            NextHop::Vxlan(h) if !h.resolved => return self.unresolved(h.underlay, st),
            NextHop::Ipip(h) if !h.resolved => return self.unresolved(h.underlay, st),
            NextHop::WireGuard(h) if !h.resolved => return self.unresolved(h.underlay, st),
            _ => {}
        }
        self.touch(slot);
        decrement_ttl(f);
        if let NextHop::WireGuard(h) = remote {
            if r.origin == Origin::Exception {
                st.totals.bump(PathCounter::ExceptionToRemote);
            }
            if WorkerId(h.owner) != self.cfg.worker {
                st.totals.bump(PathCounter::WgHandoff);
                return Verdict::Handoff { worker: WorkerId(h.owner), port: crate::wireguard::SEAL_PORT };
            }
            return seal(self.cfg, h, f, st);
        }
        let span = Span::new(f.offset(), f.len());
        let out = match remote {
            NextHop::Direct { mac, .. } => {
                set_macs(f, *mac, self.cfg.uplink_mac);
                Ok(span)
            }
            NextHop::Vxlan(h) => {
                st.ident = st.ident.wrapping_add(1);
                h.template.encap(f.chunk_mut(), span, st.ident)
            }
            NextHop::Ipip(h) => {
                st.ident = st.ident.wrapping_add(1);
                h.template.encap(f.chunk_mut(), span, st.ident)
            }
            _ => return Verdict::Drop(DropReason::NoRoute),
        };
        match out {
            Ok(out) if f.set_bounds(out.start, out.len) => {
                st.totals.bump(path);
                if r.origin == Origin::Exception {
                    st.totals.bump(PathCounter::ExceptionToRemote);
                }
                Verdict::Tx(self.cfg.uplink)
            }
            _ => Verdict::Drop(DropReason::EncapFailed),
        }
    }

    /// What the policy checks of routed packet `r` resolved to `hop`: the egress of the local pod
    /// that sent it (from one of this worker's pod ports) and the ingress of the local pod this
    /// worker delivers it to (a frame for a pod on another worker is checked there, when handed
    /// in). `None` when no check applies: neither end policed here, traffic with the node
    /// itself, no IPv4 flow to read.
    #[inline]
    pub(crate) fn policed(&self, r: Routed, hop: &NextHop, f: &FrameMut<'_>) -> Option<Policed> {
        let src_here = r.origin == Origin::Pod;
        let dst_here = match hop {
            NextHop::LocalPod { worker, port, .. } => {
                WorkerId(*worker) == self.cfg.worker
                    && matches!(self.roles.get(usize::from(*port)), Some(PortRole::Pod(_)))
            }
            NextHop::Blackhole => return None,
            _ => false,
        };
        if !src_here && !dst_here {
            return None;
        }
        let pkt = Packet::of_frame(f.data())?;
        if is_node_address(self.cfg, pkt.flow.src) || is_node_address(self.cfg, pkt.flow.dst) {
            return None;
        }
        Some(Policed { pkt, src_here, dst_here })
    }

    /// The policy check of one packet outside a batch's stage 3a (a frame routed alone), with the
    /// connection table's per-batch tick.
    fn police(
        &mut self,
        set: &PolicySet,
        r: Routed,
        hop: &NextHop,
        f: &FrameMut<'_>,
        st: &mut State,
    ) -> Result<(), DropReason> {
        let Some(p) = self.policed(r, hop, f) else { return Ok(()) };
        let now = st.enforcer.secs(*self.now.get_or_insert_with(Instant::now));
        st.enforcer.tick(now);
        st.enforcer.check(set, &p.pkt, p.src_here, p.dst_here, now, &mut st.totals)
    }

    /// Delivery to a pod on this node, from a pod, the uplink or the exception port.
    fn deliver(
        &mut self,
        r: Routed,
        owner: WorkerId,
        port: PortId,
        mac: MacAddr,
        f: &mut FrameMut<'_>,
        st: &mut State,
    ) -> Verdict {
        if mac == UNLEARNED_MAC {
            return Verdict::Drop(DropReason::PodMacUnknown);
        }
        let to_pod = if owner != self.cfg.worker {
            PodDest::Owner(owner)
        } else {
            match self.roles.get(usize::from(port.0)).copied() {
                Some(PortRole::Pod(pod)) => PodDest::Here(pod),
                _ => return Verdict::Drop(DropReason::NoSuchPort),
            }
        };
        if r.ttl <= 1 {
            return self.icmp(r, IcmpError::TimeExceeded, DropReason::TtlExpired, f, st);
        }
        decrement_ttl(f);
        st.totals.bump(match r.origin {
            Origin::Pod => PathCounter::Local,
            Origin::Exception => PathCounter::ExceptionIn,
            Origin::UplinkPlain => PathCounter::HostGwArrival,
            Origin::UplinkTunnel(path) => path,
        });
        match to_pod {
            PodDest::Here(pod) => {
                set_macs(f, mac, pod.gateway_mac);
                Verdict::Tx(port)
            }
            // The owner sets the source MAC (its port's gateway MAC) in `handed_in`.
            PodDest::Owner(worker) => {
                set_macs(f, mac, self.cfg.uplink_mac);
                st.totals.bump(PathCounter::PodHandoff);
                Verdict::Handoff { worker, port }
            }
        }
    }

    /// Pod traffic to outside the cluster network: to the host kernel, unchanged but for the
    /// MACs (the kernel routes it and decrements TTL itself).
    fn hand_to_host(&mut self, r: Routed, f: &mut FrameMut<'_>, st: &mut State) -> Verdict {
        if r.origin != Origin::Pod {
            return Verdict::Drop(DropReason::NotLocal);
        }
        self.deliver_to_host(f, st, PathCounter::ExceptionOut)
    }

    /// To the host kernel from any origin, unchanged but for the MACs: out of the exception
    /// port, or handed to the worker that owns it.
    fn deliver_to_host(&mut self, f: &mut FrameMut<'_>, st: &mut State, path: PathCounter) -> Verdict {
        let Some(e) = self.cfg.exception else { return Verdict::Drop(DropReason::NoExceptionPort) };
        set_macs(f, e.host_mac, e.our_mac);
        st.totals.bump(path);
        match self.cfg.host_worker {
            None => Verdict::Tx(e.port),
            Some(worker) => {
                st.totals.bump(PathCounter::PodHandoff);
                Verdict::Handoff { worker, port: e.port }
            }
        }
    }

    fn touch(&self, slot: NeighbourSlot) {
        self.neighbours.touch(slot, self.epoch);
    }

    /// Asks the control side to resolve `ip` (at most once per epoch per cache slot) and drops.
    fn unresolved(&mut self, ip: Ipv4Addr, st: &mut State) -> Verdict {
        let ip = u32::from(ip);
        let slot = &mut st.recent[(ip.wrapping_mul(0x9e37_79b1) >> 28) as usize];
        if *slot != (ip, self.epoch) {
            *slot = (ip, self.epoch);
            if self.neighbours.request(Ipv4Addr::from(ip)) {
                st.totals.bump(PathCounter::ResolveRequests);
            }
        }
        Verdict::Drop(DropReason::NeighbourUnresolved)
    }

    /// Replaces the frame by `error` back to its sender, rate-limited; `reason` when not sent.
    fn icmp(
        &mut self,
        r: Routed,
        error: IcmpError,
        reason: DropReason,
        f: &mut FrameMut<'_>,
        st: &mut State,
    ) -> Verdict {
        let our_mac = match (r.origin, self.rx_role) {
            (Origin::UplinkTunnel(_), _) => return Verdict::Drop(reason),
            (_, PortRole::Pod(p)) => p.gateway_mac,
            (_, PortRole::Exception(e)) => e.our_mac,
            (_, PortRole::Uplink) => self.cfg.uplink_mac,
            (_, PortRole::None) => return Verdict::Drop(reason),
        };
        let now = *self.now.get_or_insert_with(Instant::now);
        if !st.icmp.take(now) {
            st.totals.bump(PathCounter::IcmpRateLimited);
            return Verdict::Drop(reason);
        }
        if !icmp::emit(f, error, self.cfg.gateway_ip(), our_mac) {
            return Verdict::Drop(reason);
        }
        st.totals.bump(match error {
            IcmpError::TimeExceeded => PathCounter::IcmpTimeExceeded,
            IcmpError::FragmentationNeeded { .. } => PathCounter::IcmpFragNeeded,
        });
        Verdict::Tx(self.rx_port)
    }
}

/// Encrypts the routed (TTL already decremented) frame `f` for the WireGuard peer of `h`, whose
/// session this worker owns, and sends it on the uplink.
pub(crate) fn seal(cfg: &PipelineConfig, h: &WgNextHop, f: &mut FrameMut<'_>, st: &mut State) -> Verdict {
    let Some(wg) = st.wg.as_mut() else { return Verdict::Drop(DropReason::EncapFailed) };
    st.ident = st.ident.wrapping_add(1);
    match wg.seal(h, f, (cfg.uplink_mac, cfg.public_ip), st.ident) {
        Ok(Sealed::Transport) => {
            st.totals.bump(PathCounter::WgEncrypt);
            Verdict::Tx(cfg.uplink)
        }
        Ok(Sealed::Initiation) => {
            st.totals.bump(PathCounter::WgInitiation);
            Verdict::Tx(cfg.uplink)
        }
        Err(reason) => Verdict::Drop(reason),
    }
}
