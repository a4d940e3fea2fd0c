//! weft's wire formats: zero-copy typed views, checksums, and encapsulation by
//! template. No I/O, no allocation, no unsafe; `no_std`.
//!
//! - [`wire`]: one view per protocol — Ethernet II (one 802.1Q tag skipped or
//!   rejected), ARP, IPv4 (options allowed), UDP, ICMPv4, VXLAN — in smoltcp's
//!   style: `new_checked` validates, accessors cannot then go out of bounds,
//!   `Repr::emit` cannot fail.
//! - [`checksum`]: RFC 1071 sums and RFC 1624 incremental updates.
//! - [`tunnel`]: VXLAN (RFC 7348) and IPIP (RFC 2003) encapsulation in place from
//!   prebuilt per-node templates, and decapsulation that validates every outer field.
//! - [`parse`]: the whole chain from frame bytes to dispatch fields.
//!
//! Every failure is a `Copy` value: [`ParseError`] says which [`Layer`] and whether
//! it was length (`Truncated`) or content (`Malformed` with a [`Problem`]);
//! [`EncapError`] and [`DecapError`] wrap it for the tunnel operations.
#![forbid(unsafe_code)]
#![no_std]

pub mod checksum;
pub mod error;
pub mod parse;
pub mod tunnel;
pub mod wire;

pub use error::{Layer, ParseError, Problem};
pub use tunnel::flow_hash::SourcePortRange;
pub use tunnel::ipip::{IpipDecapConfig, IpipDecapped, IpipParams, IpipTemplate};
pub use tunnel::vxlan::{VxlanDecapConfig, VxlanDecapped, VxlanParams, VxlanTemplate};
pub use tunnel::{DecapError, EncapError, Span};
pub use wire::ethernet::{EtherType, MacAddr, VlanId, VlanPolicy};
pub use wire::ipv4::IpProtocol;
pub use wire::udp::UdpChecksumPolicy;
pub use wire::vxlan::Vni;
