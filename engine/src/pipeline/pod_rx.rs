//! Classification of frames from pods and from the exception port: ARP requests are answered
//! in place; IPv4 is validated (from a pod, its source must be the pod's IP) and waits for its
//! route; anything else is dropped with its reason.

use weft_encap::wire::ethernet::{EtherType, EthernetFrame, HEADER_LEN};

use super::counters::{PathCounter, PathCounts};
use super::{Origin, PipelineConfig, PortRole, Step, arp, ipv4_frame};
use crate::port::FrameMut;
use crate::worker::{DropReason, PortId, Verdict};

/// Classifies one frame received on a pod or exception port.
#[inline]
pub(crate) fn classify(
    cfg: &PipelineConfig,
    role: PortRole,
    rx_port: PortId,
    f: &mut FrameMut<'_>,
    totals: &mut PathCounts,
) -> Step {
    let (origin, answer_mac, pod_ip) = match role {
        PortRole::Pod(p) => (Origin::Pod, p.gateway_mac, Some(p.ip)),
        PortRole::Exception(e) => (Origin::Exception, e.our_mac, None),
        PortRole::Uplink | PortRole::None => return DropReason::UnknownPort.into(),
    };
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
        let src = std::net::Ipv4Addr::new(d[26], d[27], d[28], d[29]);
        if src != ip {
            return DropReason::PodSpoofedSource.into();
        }
    }
    step
}
