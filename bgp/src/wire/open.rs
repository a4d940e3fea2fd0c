//! OPEN (RFC 4271 §4.2) with capabilities (RFC 5492): multiprotocol (RFC 4760), route
//! refresh (RFC 2918), graceful restart (RFC 4724), 4-octet AS (RFC 6793), enhanced route
//! refresh (RFC 7313); others are kept as [`Capability::Unknown`].
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Version    |     My Autonomous System      |   Hold Time ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  ... Hold Time  |                BGP Identifier                 ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  ...            | Opt Parm Len  | Optional Parameters (type 2: capabilities) ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::Ipv4Addr;

use super::reader::Reader;
use super::{ErrorCode, MessageError, Notification};

/// Version, AS, hold time, identifier and the parameter length.
pub(crate) const MIN_BODY: usize = 10;
/// The 2-octet AS an OPEN carries when the real one does not fit (RFC 6793).
pub const AS_TRANS: u16 = 23456;
/// Optional parameter type: capabilities.
const PARAM_CAPABILITIES: u8 = 2;

/// An address family (AFI, SAFI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressFamily {
    /// Address family identifier (1: IPv4).
    pub afi: u16,
    /// Subsequent address family identifier (1: unicast).
    pub safi: u8,
}

impl AddressFamily {
    /// IPv4 unicast.
    pub const IPV4_UNICAST: AddressFamily = AddressFamily { afi: 1, safi: 1 };
}

/// One capability of an OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Multiprotocol extensions for one family (code 1).
    Multiprotocol(AddressFamily),
    /// Route refresh (code 2).
    RouteRefresh,
    /// Graceful restart (code 64).
    GracefulRestart {
        /// R bit: the sender has restarted.
        restarting: bool,
        /// How long the peer keeps our routes after the session drops, in seconds (12 bits).
        restart_time: u16,
        /// Families whose forwarding state is kept, each with its F bit.
        families: Vec<(AddressFamily, bool)>,
    },
    /// 4-octet AS numbers (code 65), with the sender's AS.
    FourOctetAs(u32),
    /// Enhanced route refresh (code 70).
    EnhancedRouteRefresh,
    /// Anything else, kept as it came.
    Unknown {
        /// The capability code.
        code: u8,
        /// Its value.
        data: Vec<u8>,
    },
}

impl Capability {
    fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => 1,
            Capability::RouteRefresh => 2,
            Capability::GracefulRestart { .. } => 64,
            Capability::FourOctetAs(_) => 65,
            Capability::EnhancedRouteRefresh => 70,
            Capability::Unknown { code, .. } => *code,
        }
    }

    fn parse(code: u8, value: &[u8]) -> Result<Capability, MessageError> {
        let bad = || {
            MessageError::new(
                "OPEN capability",
                "value has the wrong length",
                Notification::new(ErrorCode::OPEN, 0),
            )
        };
        let mut r = Reader::new(value);
        Ok(match code {
            1 => {
                if value.len() != 4 {
                    return Err(bad());
                }
                let afi = r.u16().ok_or_else(bad)?;
                let _reserved = r.u8();
                Capability::Multiprotocol(AddressFamily { afi, safi: r.u8().ok_or_else(bad)? })
            }
            2 | 70 if !value.is_empty() => return Err(bad()),
            2 => Capability::RouteRefresh,
            70 => Capability::EnhancedRouteRefresh,
            64 => {
                if value.len() < 2 || (value.len() - 2) % 4 != 0 {
                    return Err(bad());
                }
                let head = r.u16().ok_or_else(bad)?;
                let mut families = Vec::new();
                while !r.is_empty() {
                    let afi = r.u16().ok_or_else(bad)?;
                    let safi = r.u8().ok_or_else(bad)?;
                    let flags = r.u8().ok_or_else(bad)?;
                    families.push((AddressFamily { afi, safi }, flags & 0x80 != 0));
                }
                Capability::GracefulRestart {
                    restarting: head & 0x8000 != 0,
                    restart_time: head & 0x0fff,
                    families,
                }
            }
            65 => {
                if value.len() != 4 {
                    return Err(bad());
                }
                Capability::FourOctetAs(r.u32().ok_or_else(bad)?)
            }
            code => Capability::Unknown { code, data: value.to_vec() },
        })
    }

    fn emit_value(&self, out: &mut Vec<u8>) {
        match self {
            Capability::Multiprotocol(f) => {
                out.extend_from_slice(&f.afi.to_be_bytes());
                out.push(0);
                out.push(f.safi);
            }
            Capability::RouteRefresh | Capability::EnhancedRouteRefresh => {}
            Capability::GracefulRestart { restarting, restart_time, families } => {
                let head = (u16::from(*restarting) << 15) | (restart_time & 0x0fff);
                out.extend_from_slice(&head.to_be_bytes());
                for (f, forwarding) in families {
                    out.extend_from_slice(&f.afi.to_be_bytes());
                    out.push(f.safi);
                    out.push(if *forwarding { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => out.extend_from_slice(&asn.to_be_bytes()),
            Capability::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }
}

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// BGP version (4).
    pub version: u8,
    /// The 2-octet AS field ([`AS_TRANS`] when the AS needs 4 octets).
    pub my_as: u16,
    /// Proposed hold time in seconds (0, or at least 3).
    pub hold_time: u16,
    /// The sender's BGP identifier.
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in the order sent.
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for `asn` with the 2-octet field filled as RFC 6793 says.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Self {
        let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
        Open { version: 4, my_as, hold_time, bgp_id, capabilities }
    }

    /// The sender's AS: the 4-octet capability's when present, else the 2-octet field.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    /// Whether a capability with `code`'s kind is present.
    pub fn has(&self, pred: impl Fn(&Capability) -> bool) -> bool {
        self.capabilities.iter().any(pred)
    }

    /// The graceful-restart capability's restart time, if announced.
    pub fn restart_time(&self) -> Option<u16> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart { restart_time, .. } => Some(*restart_time),
            _ => None,
        })
    }

    /// The graceful-restart capability's restart time and F bit (forwarding state kept across
    /// the sender's restart) for `family`, if the capability lists that family (RFC 4724: routes
    /// are kept across a peer's restart only for the families it lists).
    pub fn restart_family(&self, family: AddressFamily) -> Option<(u16, bool)> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart { restart_time, families, .. } => families
                .iter()
                .find(|(f, _)| *f == family)
                .map(|&(_, forwarding)| (*restart_time, forwarding)),
            _ => None,
        })
    }

    pub(crate) fn parse(body: &[u8]) -> Result<Open, MessageError> {
        let short = || MessageError::truncated("OPEN", Notification::new(ErrorCode::OPEN, 0));
        let mut r = Reader::new(body);
        let version = r.u8().ok_or_else(short)?;
        if version != 4 {
            return Err(MessageError::new(
                "OPEN",
                "unsupported version (weft speaks 4)",
                Notification::with_data(ErrorCode::OPEN, 1, vec![0, 4]),
            ));
        }
        let my_as = r.u16().ok_or_else(short)?;
        let hold_time = r.u16().ok_or_else(short)?;
        if hold_time == 1 || hold_time == 2 {
            return Err(MessageError::new(
                "OPEN",
                "hold time of 1 or 2 s",
                Notification::new(ErrorCode::OPEN, 6),
            ));
        }
        let bgp_id = r.ipv4().ok_or_else(short)?;
        if bgp_id.is_unspecified() {
            return Err(MessageError::new(
                "OPEN",
                "BGP identifier 0.0.0.0",
                Notification::new(ErrorCode::OPEN, 3),
            ));
        }
        let params_len = usize::from(r.u8().ok_or_else(short)?);
        if params_len != r.remaining() {
            return Err(MessageError::new(
                "OPEN",
                "optional parameters length differs from the message",
                Notification::new(ErrorCode::OPEN, 0),
            ));
        }
        let mut capabilities = Vec::new();
        while !r.is_empty() {
            let ty = r.u8().ok_or_else(short)?;
            let len = usize::from(r.u8().ok_or_else(short)?);
            let value = r.take(len).ok_or_else(short)?;
            if ty != PARAM_CAPABILITIES {
                return Err(MessageError::new(
                    "OPEN",
                    "unsupported optional parameter",
                    Notification::new(ErrorCode::OPEN, 4),
                ));
            }
            let mut c = Reader::new(value);
            while !c.is_empty() {
                let code = c.u8().ok_or_else(short)?;
                let len = usize::from(c.u8().ok_or_else(short)?);
                let value = c.take(len).ok_or_else(short)?;
                capabilities.push(Capability::parse(code, value)?);
            }
        }
        Ok(Open { version, my_as, hold_time, bgp_id, capabilities })
    }

    /// Writes the body; every capability goes in one optional parameter.
    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let params_at = out.len();
        out.extend_from_slice(&[0, PARAM_CAPABILITIES, 0]);
        for c in &self.capabilities {
            out.push(c.code());
            let len_at = out.len();
            out.push(0);
            c.emit_value(out);
            out[len_at] = u8::try_from(out.len() - len_at - 1).unwrap_or(u8::MAX);
        }
        let caps_len = out.len() - params_at - 3;
        if caps_len == 0 {
            out.truncate(params_at + 1);
        } else {
            out[params_at] = u8::try_from(caps_len + 2).unwrap_or(u8::MAX);
            out[params_at + 2] = u8::try_from(caps_len).unwrap_or(u8::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Context, Message};

    /// BIRD 2.0.12's OPEN with Calico's bgp_template (AS 64512, hold 240, graceful restart
    /// 120 s, ADD-PATH, enhanced refresh, long-lived GR), captured from a lab session with
    /// router id 198.18.7.1.
    const BIRD_OPEN: &[u8] = &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, //
        0x00, 0x3f, 0x01, 0x04, 0xfc, 0x00, 0x00, 0xf0, 0xc6, 0x12, 0x07, 0x01, 0x22, 0x02, 0x20, 0x01, 0x04,
        0x00, 0x01, 0x00, 0x01, 0x02, 0x00, 0x40, 0x06, 0x00, 0x78, 0x00, 0x01, 0x01, 0x00, 0x41, 0x04, 0x00,
        0x00, 0xfc, 0x00, 0x45, 0x04, 0x00, 0x01, 0x01, 0x03, 0x46, 0x00, 0x47, 0x00,
    ];

    fn weft_open() -> Open {
        Open::new(
            64512,
            90,
            Ipv4Addr::new(198, 18, 0, 3),
            vec![
                Capability::Multiprotocol(AddressFamily::IPV4_UNICAST),
                Capability::RouteRefresh,
                Capability::GracefulRestart {
                    restarting: true,
                    restart_time: 120,
                    families: vec![(AddressFamily::IPV4_UNICAST, true)],
                },
                Capability::FourOctetAs(64512),
                Capability::EnhancedRouteRefresh,
            ],
        )
    }

    #[test]
    fn birds_open_parses_with_every_capability() {
        let Message::Open(o) = Message::parse(BIRD_OPEN, Context::default()).unwrap() else {
            panic!("not an OPEN")
        };
        assert_eq!(o.asn(), 64512);
        assert_eq!(o.hold_time, 240);
        assert_eq!(o.bgp_id, Ipv4Addr::new(198, 18, 7, 1));
        assert_eq!(o.restart_time(), Some(120));
        assert!(o.has(|c| *c == Capability::Multiprotocol(AddressFamily::IPV4_UNICAST)));
        assert!(o.has(|c| *c == Capability::RouteRefresh));
        assert!(o.has(|c| matches!(c, Capability::Unknown { code: 69, .. })), "ADD-PATH kept: {o:?}");
        assert!(o.has(|c| matches!(c, Capability::Unknown { code: 71, .. })), "LLGR kept: {o:?}");
        assert_eq!(Message::Open(o).to_bytes(Context::default()), BIRD_OPEN, "emits the same bytes back");
    }

    #[test]
    fn our_open_round_trips() {
        let m = Message::Open(weft_open());
        assert_eq!(Message::parse(&m.to_bytes(Context::default()), Context::default()), Ok(m));
    }

    #[test]
    fn an_open_without_capabilities_round_trips() {
        let m = Message::Open(Open::new(65000, 0, Ipv4Addr::new(1, 2, 3, 4), vec![]));
        let b = m.to_bytes(Context::default());
        assert_eq!(b.len(), 29);
        assert_eq!(Message::parse(&b, Context::default()), Ok(m));
    }

    #[test]
    fn a_large_as_goes_in_the_capability_with_as_trans_in_the_field() {
        let o = Open::new(
            4_200_000_000,
            90,
            Ipv4Addr::new(1, 2, 3, 4),
            vec![Capability::FourOctetAs(4_200_000_000)],
        );
        assert_eq!(o.my_as, AS_TRANS);
        assert_eq!(o.asn(), 4_200_000_000);
    }

    #[test]
    fn bad_versions_hold_times_and_identifiers_name_their_subcodes() {
        let mut b = Message::Open(weft_open()).to_bytes(Context::default());
        b[19] = 3;
        let e = Message::parse(&b, Context::default()).unwrap_err();
        assert_eq!(e.notification, Notification::with_data(ErrorCode::OPEN, 1, vec![0, 4]));
        let mut b = Message::Open(weft_open()).to_bytes(Context::default());
        b[22..24].copy_from_slice(&[0, 2]);
        assert_eq!(Message::parse(&b, Context::default()).unwrap_err().notification.subcode, 6);
        let mut b = Message::Open(weft_open()).to_bytes(Context::default());
        b[24..28].fill(0);
        assert_eq!(Message::parse(&b, Context::default()).unwrap_err().notification.subcode, 3);
    }

    #[test]
    fn a_truncated_capability_is_an_error_not_a_panic() {
        let b = Message::Open(weft_open()).to_bytes(Context::default());
        for cut in 29..b.len() {
            let mut short = b[..cut].to_vec();
            short[16..18].copy_from_slice(&(cut as u16).to_be_bytes());
            assert!(Message::parse(&short, Context::default()).is_err(), "cut at {cut}");
        }
    }
}
