//! Classification of frames from pods and from the exception port: ARP requests are answered
//! in place; IPv4 is validated (from a pod, its source must be the pod's IP) and waits for its
//! route; anything else is dropped with its reason.

use std::net::Ipv4Addr;

use weft_encap::MacAddr;
use weft_encap::wire::ethernet::{EtherType, EthernetFrame, HEADER_LEN};

use super::counters::{PathCounter, PathCounts};
use super::{Origin, PipelineConfig, PortRole, Step, arp, ipv4_frame};
use crate::port::FrameMut;
use crate::worker::{DropReason, PortId, Verdict};

/// What classification needs to know about a pod or exception port, taken from its role once
/// per batch (not per packet).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodSide {
    origin: Origin,
    answer_mac: MacAddr,
    /// The only source address accepted (pods), `0.0.0.0` for the exception port.
    pod_ip: Option<Ipv4Addr>,
}

impl PodSide {
    /// `None` for the uplink and ports without a role.
    pub(crate) fn of(role: PortRole) -> Option<Self> {
        match role {
            PortRole::Pod(p) => {
                Some(PodSide { origin: Origin::Pod, answer_mac: p.gateway_mac, pod_ip: Some(p.ip) })
            }
            PortRole::Exception(e) => {
                Some(PodSide { origin: Origin::Exception, answer_mac: e.our_mac, pod_ip: None })
            }
            PortRole::Uplink | PortRole::None => None,
        }
    }
}

/// Classifies one frame received on a pod or exception port.
#[inline]
pub(crate) fn classify(
    cfg: &PipelineConfig,
    side: PodSide,
    rx_port: PortId,
    f: &mut FrameMut<'_>,
    totals: &mut PathCounts,
) -> Step {
    let PodSide { origin, answer_mac, pod_ip } = side;
    if f.len() < HEADER_LEN {
        return DropReason::Truncated.into();
    }
    if EthernetFrame::new_unchecked(f.data()).ethertype() == EtherType::ARP {
        return match arp::answer(f, answer_mac, cfg.node_subnet, pod_ip) {
            Ok(()) => {
                totals.bump(PathCounter::ArpReply);
                Step::Done(Verdict::Tx(rx_port))
            }
            Err(r) => r.into(),
        };
    }
    let step = ipv4_frame(f, origin);
    if let (Step::Route(_), Some(ip)) = (step, pod_ip) {
        // ipv4_frame validated the header: the source address is at 14 + 12.
        let d = f.data();
        let src = Ipv4Addr::new(d[26], d[27], d[28], d[29]);
        if src != ip {
            return DropReason::PodSpoofedSource.into();
        }
    }
    step
}
