//! Gateway ARP: weft answers, in place, a pod's (or the host's, on the exception port) ARP
//! requests for any address of the node's pod subnet other than the asker's own — the
//! gateway (the subnet's first address) and, proxy-style, the other pods, since a pod sees the
//! whole /24 as on-link. The reply is written into the request's frame and sent back out of
//! the port it came in on. Uplink ARP never reaches the engine (the XDP filter passes it to the
//! kernel).

use std::net::Ipv4Addr;

use weft_encap::MacAddr;
use weft_encap::wire::arp::{ArpOperation, ArpPacket, ArpRepr, PACKET_LEN};
use weft_encap::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr, HEADER_LEN};

use super::parse_drop;
use crate::fib::Ipv4Prefix;
use crate::port::FrameMut;
use crate::worker::DropReason;

/// Turns the ARP request in `f` into the reply from `our_mac`, if it asks for an address of
/// `subnet` other than the sender's own. `sender_must_be`: the only sender IP accepted (a pod's).
pub(crate) fn answer(
    f: &mut FrameMut<'_>,
    our_mac: MacAddr,
    subnet: Ipv4Prefix,
    sender_must_be: Option<Ipv4Addr>,
) -> Result<(), DropReason> {
    let d = f.data();
    let req = ArpPacket::new_checked(&d[HEADER_LEN.min(d.len())..])
        .and_then(|p| ArpRepr::parse(&p))
        .map_err(parse_drop)?;
    if sender_must_be.is_some_and(|ip| ip != req.sender_ip) {
        return Err(DropReason::PodSpoofedSource);
    }
    if req.operation != ArpOperation::Request
        || !subnet.contains(u32::from(req.target_ip))
        || req.target_ip == req.sender_ip
    {
        return Err(DropReason::ArpNotOurs);
    }
    let off = f.offset();
    if !f.set_bounds(off, HEADER_LEN + PACKET_LEN) {
        return Err(DropReason::Truncated);
    }
    let d = f.data_mut();
    EthernetRepr { src: our_mac, dst: req.sender_mac, ethertype: EtherType::ARP }
        .emit(&mut EthernetFrame::new_unchecked(&mut d[..HEADER_LEN]));
    req.reply(our_mac).emit(&mut ArpPacket::new_unchecked(&mut d[HEADER_LEN..]));
    Ok(())
}
