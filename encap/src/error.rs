//! Parse errors: which layer, and whether the bytes were too few or wrong.
//!
//! Every error is `Copy` and allocation-free so the packet path can turn it into a
//! drop counter without cost. [`ParseError::Truncated`] says how many bytes the layer
//! needed and how many there were; [`ParseError::Malformed`] names the field that was
//! wrong.

use core::fmt;

/// The protocol layer a parse error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet,
    /// An IEEE 802.1Q tag following the Ethernet addresses.
    Vlan,
    Arp,
    Ipv4,
    Udp,
    Icmpv4,
    Vxlan,
    /// The Ethernet header carried inside a VXLAN payload.
    InnerEthernet,
    /// The IPv4 header carried inside a tunnel (VXLAN or IPIP).
    InnerIpv4,
}

impl Layer {
    /// Lower-case name, stable for logs and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Udp => "udp",
            Layer::Icmpv4 => "icmpv4",
            Layer::Vxlan => "vxlan",
            Layer::InnerEthernet => "inner-ethernet",
            Layer::InnerIpv4 => "inner-ipv4",
        }
    }
}

/// What was wrong with the content of a header (as opposed to its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// A frame carries an 802.1Q tag and the caller asked for untagged frames only.
    VlanTagged,
    /// A second VLAN tag (QinQ, or 802.1ad) follows the first; weft accepts at most one.
    NestedVlan,
    /// The EtherType is not IPv4 where only IPv4 is carried (IPIP's inner frame).
    NotIpv4,
    /// ARP hardware type is not Ethernet (1) or its address length is not 6.
    ArpHardware,
    /// ARP protocol type is not IPv4 (0x0800) or its address length is not 4.
    ArpProtocol,
    /// ARP operation is neither request (1) nor reply (2).
    ArpOperation,
    /// The IP version nibble is not 4.
    IpVersion,
    /// IHL below 5 (20 bytes).
    Ipv4HeaderLength,
    /// Total length smaller than the header length.
    Ipv4TotalLength,
    /// The IPv4 header checksum does not verify.
    Ipv4Checksum,
    /// A fragment (MF set or a non-zero offset); weft does not reassemble.
    Ipv4Fragment,
    /// The IPv4 protocol is not the one this parser was asked for.
    Ipv4Protocol,
    /// UDP length below 8 or beyond the IP payload.
    UdpLength,
    /// A non-zero UDP checksum that does not verify, or a zero one where one is required.
    UdpChecksum,
    /// The ICMP checksum does not verify.
    Icmpv4Checksum,
    /// The VXLAN I flag (valid VNI) is clear.
    VxlanNoVni,
    /// Reserved VXLAN flag or VNI-word bits are set (Linux drops these too).
    VxlanReserved,
}

impl Problem {
    /// Short description for logs and error messages.
    pub const fn describe(self) -> &'static str {
        match self {
            Problem::VlanTagged => "802.1Q tag not accepted here",
            Problem::NestedVlan => "more than one VLAN tag",
            Problem::NotIpv4 => "EtherType is not IPv4",
            Problem::ArpHardware => "hardware type is not Ethernet/6",
            Problem::ArpProtocol => "protocol type is not IPv4/4",
            Problem::ArpOperation => "operation is neither request nor reply",
            Problem::IpVersion => "version is not 4",
            Problem::Ipv4HeaderLength => "header length below 20 bytes",
            Problem::Ipv4TotalLength => "total length below header length",
            Problem::Ipv4Checksum => "header checksum mismatch",
            Problem::Ipv4Fragment => "fragment (not reassembled)",
            Problem::Ipv4Protocol => "unexpected protocol",
            Problem::UdpLength => "length field out of range",
            Problem::UdpChecksum => "checksum mismatch",
            Problem::Icmpv4Checksum => "checksum mismatch",
            Problem::VxlanNoVni => "I flag (valid VNI) not set",
            Problem::VxlanReserved => "reserved bits set",
        }
    }
}

/// Why a frame could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The buffer (or a length field) ends before the layer's header or payload does.
    Truncated {
        layer: Layer,
        /// Bytes the layer needs, counted from its first byte.
        need: usize,
        /// Bytes available from the layer's first byte.
        have: usize,
    },
    /// The bytes are there but a field holds a value weft does not accept.
    Malformed { layer: Layer, problem: Problem },
}

impl ParseError {
    /// The layer at which parsing stopped.
    pub const fn layer(self) -> Layer {
        match self {
            ParseError::Truncated { layer, .. } | ParseError::Malformed { layer, .. } => layer,
        }
    }

    /// True when the error is about length rather than content.
    pub const fn is_truncated(self) -> bool {
        matches!(self, ParseError::Truncated { .. })
    }

    /// The same error attributed to another layer (e.g. an IPv4 error found while
    /// parsing a tunnel's inner packet is reported as `InnerIpv4`).
    pub const fn at(self, layer: Layer) -> Self {
        match self {
            ParseError::Truncated { need, have, .. } => ParseError::Truncated { layer, need, have },
            ParseError::Malformed { problem, .. } => ParseError::Malformed { layer, problem },
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::Truncated { layer, need, have } => {
                write!(f, "{}: truncated: need {need} bytes, have {have}", layer.name())
            }
            ParseError::Malformed { layer, problem } => {
                write!(f, "{}: malformed: {}", layer.name(), problem.describe())
            }
        }
    }
}

impl core::error::Error for ParseError {}

/// Shorthand used by the wire views: fail with `Truncated` unless `have >= need`.
#[inline(always)]
pub(crate) const fn need(layer: Layer, need: usize, have: usize) -> Result<(), ParseError> {
    if have < need { Err(ParseError::Truncated { layer, need, have }) } else { Ok(()) }
}

/// Shorthand for a content error.
#[inline(always)]
pub(crate) const fn malformed(layer: Layer, problem: Problem) -> ParseError {
    ParseError::Malformed { layer, problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn truncated_error_names_layer_and_sizes() {
        let e = ParseError::Truncated { layer: Layer::Udp, need: 8, have: 3 };
        assert_eq!(e.to_string(), "udp: truncated: need 8 bytes, have 3");
        assert!(e.is_truncated());
    }

    #[test]
    fn malformed_error_names_layer_and_problem() {
        let e = malformed(Layer::Ipv4, Problem::IpVersion);
        assert_eq!(e.to_string(), "ipv4: malformed: version is not 4");
        assert_eq!(e.at(Layer::InnerIpv4).layer(), Layer::InnerIpv4);
    }
}
