//! Encapsulation and decapsulation in place, by prebuilt template.
//!
//! A frame lives in a larger buffer (an AF_XDP UMEM chunk, say): bytes
//! `start..start + len` are the frame, bytes before `start` are headroom. Encap
//! moves `start` back into the headroom and writes the outer headers there;
//! decap moves it forward. Nothing is allocated and nothing is copied but the
//! headers themselves.
//!
//! The control side builds one template per remote node ([`vxlan::VxlanTemplate`],
//! [`ipip::IpipTemplate`]) holding the finished outer headers and the partial
//! checksum sums of everything that does not change per packet; the data path
//! copies the template and patches the lengths, the IPv4 identification and the UDP
//! source port.

pub mod ecn;
pub mod flow_hash;
pub mod ipip;
pub mod vxlan;

use core::fmt;
use core::net::Ipv4Addr;

use crate::checksum;
use crate::error::{Layer, ParseError, Problem, malformed};
use crate::wire::ethernet::{self, EtherType, EthernetFrame, EthernetRepr, MacAddr, VlanPolicy};
use crate::wire::ipv4::{self, IpProtocol, Ipv4Packet, Ipv4Repr};
use crate::wire::put_u16;

/// Where a frame sits in its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the frame's first byte.
    pub start: usize,
    /// Frame length in bytes.
    pub len: usize,
}

impl Span {
    pub const fn new(start: usize, len: usize) -> Self {
        Span { start, len }
    }
    /// One past the frame's last byte.
    pub const fn end(&self) -> usize {
        self.start + self.len
    }
}

/// Why a frame could not be encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapError {
    /// Fewer than `need` bytes of headroom before the frame.
    NoHeadroom { need: usize, have: usize },
    /// The span does not lie within the buffer.
    OutOfBuffer,
    /// The frame to carry is not what this tunnel carries (too short, not IPv4 for IPIP).
    Inner(ParseError),
    /// The outer packet would exceed 65535 bytes.
    TooLong,
}

impl fmt::Display for EncapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncapError::NoHeadroom { need, have } => {
                write!(f, "encap: need {need} bytes of headroom, have {have}")
            }
            EncapError::OutOfBuffer => f.write_str("encap: frame lies outside its buffer"),
            EncapError::Inner(e) => write!(f, "encap: inner frame: {e}"),
            EncapError::TooLong => f.write_str("encap: outer packet would exceed 65535 bytes"),
        }
    }
}

impl core::error::Error for EncapError {}

/// Why a frame from the uplink was not decapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecapError {
    /// A header (outer or inner) is truncated or malformed.
    Parse(ParseError),
    /// Well-formed, but not this tunnel's traffic: another EtherType, protocol,
    /// destination address or UDP port. The XDP filter should not have sent it.
    NotTunnel,
    /// A VXLAN frame for another VNI.
    WrongVni { got: u32 },
}

impl From<ParseError> for DecapError {
    fn from(e: ParseError) -> Self {
        DecapError::Parse(e)
    }
}

impl fmt::Display for DecapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecapError::Parse(e) => write!(f, "decap: {e}"),
            DecapError::NotTunnel => f.write_str("decap: not tunnel traffic for this node"),
            DecapError::WrongVni { got } => write!(f, "decap: VNI {got} is not ours"),
        }
    }
}

impl core::error::Error for DecapError {}

/// Bounds-checks `span` against `buf` and the headroom the encap needs.
#[inline]
fn check_headroom(buf_len: usize, span: Span, need: usize) -> Result<(), EncapError> {
    if span.end() > buf_len {
        return Err(EncapError::OutOfBuffer);
    }
    if span.start < need {
        return Err(EncapError::NoHeadroom { need, have: span.start });
    }
    Ok(())
}

/// Offsets of the outer IPv4 fields a template patches per packet.
const IP_TOS: usize = ethernet::HEADER_LEN + 1;
const IP_TOTAL_LEN: usize = ethernet::HEADER_LEN + 2;
const IP_IDENT: usize = ethernet::HEADER_LEN + 4;
const IP_CHECKSUM: usize = ethernet::HEADER_LEN + 10;

/// The outer Ethernet + option-less IPv4 headers every tunnel template starts with. The
/// TOS byte's ECN bits are left zero: each packet's come from its inner packet ([`ecn`]).
#[derive(Debug, Clone, Copy)]
struct OuterHeaders {
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    protocol: IpProtocol,
    ttl: u8,
    tos: u8,
    dont_frag: bool,
}

impl OuterHeaders {
    /// Writes the headers into the first 34 bytes of `out` with total length,
    /// identification and checksum zero, and returns the sum of the IPv4 header's
    /// words: per packet, the checksum is `!fold(sum + total_len + ident)`.
    fn emit(&self, out: &mut [u8]) -> u32 {
        EthernetRepr { src: self.src_mac, dst: self.dst_mac, ethertype: EtherType::IPV4 }
            .emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        let ip = &mut out[ethernet::HEADER_LEN..ethernet::HEADER_LEN + ipv4::HEADER_LEN];
        Ipv4Repr {
            src: self.src_ip,
            dst: self.dst_ip,
            protocol: self.protocol,
            payload_len: 0,
            ttl: self.ttl,
            tos: self.tos & !ecn::MASK,
            ident: 0,
            dont_frag: self.dont_frag,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut ip[..]));
        put_u16(ip, 2, 0);
        put_u16(ip, 10, 0);
        checksum::sum(0, ip)
    }
}

/// Patches the per-packet outer IPv4 fields of a frame whose first 34 bytes are a
/// template's outer headers: total length, identification, the ECN bits (`ecn`, from
/// [`ecn::encapsulate`]; the template's are zero) and the checksum.
#[inline(always)]
fn patch_outer_ipv4(frame: &mut [u8], ip_sum: u32, total_len: u16, ident: u16, ecn: u8) {
    put_u16(frame, IP_TOTAL_LEN, total_len);
    put_u16(frame, IP_IDENT, ident);
    // TOS is the low byte of the header's first word, so ECN adds to the sum as is.
    frame[IP_TOS] |= ecn;
    put_u16(
        frame,
        IP_CHECKSUM,
        !checksum::fold(ip_sum + u32::from(total_len) + u32::from(ident) + u32::from(ecn)),
    );
}

/// The validated outer headers of a received tunnel frame.
struct OuterIpv4<'a> {
    /// Length of the outer Ethernet header.
    l2_len: usize,
    src_mac: MacAddr,
    ip: Ipv4Packet<&'a [u8]>,
}

/// Validates the outer headers every tunnel shares — untagged Ethernet carrying
/// IPv4 with a good header checksum, not a fragment, addressed to `local_ip` with
/// `protocol` — or says why the frame is not this tunnel's or is malformed.
#[inline]
fn outer_ipv4(frame: &[u8], local_ip: Ipv4Addr, protocol: IpProtocol) -> Result<OuterIpv4<'_>, DecapError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let l2 = eth.header(VlanPolicy::Reject)?;
    if l2.ethertype != EtherType::IPV4 {
        return Err(DecapError::NotTunnel);
    }
    let ip = Ipv4Packet::new_checked(&frame[l2.header_len..])?;
    ip.check_checksum()?;
    if ip.protocol() != protocol || ip.dst_addr() != local_ip {
        return Err(DecapError::NotTunnel);
    }
    if ip.is_fragment() {
        return Err(malformed(Layer::Ipv4, Problem::Ipv4Fragment).into());
    }
    Ok(OuterIpv4 { l2_len: l2.header_len, src_mac: eth.src_addr(), ip })
}
