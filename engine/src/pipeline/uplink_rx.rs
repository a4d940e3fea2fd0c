//! Classification of frames from the uplink. The XDP filter sends the engine only what it
//! owns; this checks it again, fully:
//! - VXLAN: UDP to our PublicIP and port, VNI ours, flags valid, outer source a peer that holds
//!   a lease -> the inner frame (50 bytes stripped);
//! - IPIP: protocol 4 to our PublicIP from a peer -> the inner packet (20 bytes stripped);
//! - plain IPv4 to our pod subnet (host-gw arrival);
//! - decapsulated packets take the outer ECN mark as RFC 6040 says (`weft_encap::tunnel::ecn`);
//! - anything else is `not_for_us`.

use weft_encap::tunnel::ecn;
use weft_encap::wire::ipv4::IpProtocol;
use weft_encap::{DecapError, IpipDecapConfig, Span};

use super::counters::PathCounter;
use super::peers::PeerSet;
use super::{Origin, PipelineConfig, Step, ipv4_frame, ipv4_header, parse_drop};
use crate::port::FrameMut;
use crate::worker::DropReason;

fn decap_drop(e: DecapError) -> DropReason {
    match e {
        DecapError::Parse(p) => parse_drop(p),
        DecapError::NotTunnel => DropReason::NotForUs,
        DecapError::WrongVni { .. } => DropReason::VxlanWrongVni,
    }
}

/// Classifies one frame received on the uplink.
#[inline]
pub(crate) fn classify(cfg: &PipelineConfig, peers: &PeerSet, f: &mut FrameMut<'_>) -> Step {
    let ip = match ipv4_header(f.data()) {
        Ok(Some(ip)) => ip,
        Ok(None) => return DropReason::NotForUs.into(),
        Err(r) => return r.into(),
    };
    let (dst, proto) = (ip.dst_addr(), ip.protocol());
    if dst != cfg.public_ip {
        return if cfg.node_subnet.contains(u32::from(dst)) {
            ipv4_frame(f, Origin::UplinkPlain)
        } else {
            DropReason::NotForUs.into()
        };
    }
    let span = Span::new(f.offset(), f.len());
    let (inner, src, outer_tos, path) = match (proto, cfg.vxlan) {
        (IpProtocol::UDP, Some(vx)) => match vx.decap(f.chunk_mut(), span) {
            Ok(v) => (v.inner, v.outer_src, v.outer_tos, PathCounter::VxlanDecap),
            Err(e) => return decap_drop(e).into(),
        },
        (IpProtocol::IPIP, _) if cfg.ipip => {
            match (IpipDecapConfig { local_ip: cfg.public_ip }).decap(f.chunk_mut(), span) {
                Ok(v) => (v.frame, v.outer_src, v.outer_tos, PathCounter::IpipDecap),
                Err(e) => return decap_drop(e).into(),
            }
        }
        _ => return DropReason::NotForUs.into(),
    };
    if !peers.contains(src) {
        return DropReason::TunnelUnknownPeer.into();
    }
    if !f.set_bounds(inner.start, inner.len) {
        return DropReason::Truncated.into();
    }
    if ecn::decapsulate_in_place(outer_tos, f.data_mut()).is_err() {
        return DropReason::EcnCeNotEct.into();
    }
    ipv4_frame(f, Origin::UplinkTunnel(path))
}
