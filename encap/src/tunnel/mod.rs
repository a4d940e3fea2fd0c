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

pub mod flow_hash;
pub mod ipip;
pub mod vxlan;

use core::fmt;

use crate::error::ParseError;

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
