//! UPDATE (RFC 4271 §4.3) with IPv4 unicast in the classic fields and in MP_REACH_NLRI /
//! MP_UNREACH_NLRI (RFC 4760), 2- or 4-octet AS_PATH (RFC 6793), and RFC 7606 error
//! handling — all of it here, in [`Update::parse`].
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! |   Withdrawn Routes (variable)                       |
//! |   Total Path Attribute Length (2 octets)            |
//! |   Path Attributes (variable)                        |
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! each attribute: flags (1), type (1), length (1, or 2 with the extended-length flag), value
//! each prefix:    length in bits (1), then just enough octets of the address
//! ```
//!
//! RFC 7606 in this file:
//! - session reset (a [`MessageError`]): withdrawn or attribute lengths that do not fit the
//!   message, a malformed prefix anywhere, MP_REACH_NLRI or MP_UNREACH_NLRI twice or
//!   unparsable, an unrecognised well-known attribute;
//! - treat-as-withdraw ([`AttrErrorAction::TreatAsWithdraw`]: the UPDATE's announcements are
//!   withdrawals): a malformed ORIGIN, AS_PATH, NEXT_HOP, MED or LOCAL_PREF, wrong flags on a
//!   known attribute, an attribute running past the attribute field, a missing mandatory
//!   attribute;
//! - attribute-discard: a malformed ATOMIC_AGGREGATE or AGGREGATOR, the repeats of an
//!   attribute seen twice.

use core::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::reader::Reader;
use super::{AddressFamily, Context, ErrorCode, MessageError, Notification};

/// Withdrawn routes length and total path attribute length.
pub(crate) const MIN_BODY: usize = 4;

mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const MP_REACH: u8 = 14;
    pub const MP_UNREACH: u8 = 15;
}

/// UPDATE Message Error subcodes (RFC 4271 §6.3).
mod subcode {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
}

/// ORIGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// IGP (0).
    Igp,
    /// EGP (1).
    Egp,
    /// INCOMPLETE (2).
    Incomplete,
}

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsSegment {
    /// Segment type: 1 AS_SET, 2 AS_SEQUENCE, 3 AS_CONFED_SEQUENCE, 4 AS_CONFED_SET.
    pub kind: u8,
    /// The AS numbers.
    pub asns: Vec<u32>,
}

/// IPv4 unicast reachability carried in MP_REACH_NLRI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    /// The next hop.
    pub next_hop: Ipv4Addr,
    /// The prefixes.
    pub nlri: Vec<Ipv4Net>,
}

/// An attribute weft does not interpret, kept as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttribute {
    /// Flags (extended-length bit cleared; emit sets it when needed).
    pub flags: u8,
    /// Type code.
    pub code: u8,
    /// Value.
    pub value: Vec<u8>,
}

impl RawAttribute {
    /// An attribute carried through unread, as received (its length form is emit's choice).
    fn kept(flags: u8, code: u8, value: &[u8]) -> Self {
        RawAttribute { flags: flags & !flag::EXTENDED_LENGTH, code, value: value.to_vec() }
    }
}

/// The path attributes of an UPDATE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathAttributes {
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// AS_PATH segments (`Some(vec![])`: present and empty, as iBGP sends).
    pub as_path: Option<Vec<AsSegment>>,
    /// NEXT_HOP.
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// MP_REACH_NLRI for IPv4 unicast.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI for IPv4 unicast.
    pub mp_unreach: Vec<Ipv4Net>,
    /// Everything else (communities, other families' MP attributes, ...).
    pub other: Vec<RawAttribute>,
}

/// What RFC 7606 says to do about a malformed attribute the session survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrErrorAction {
    /// The attribute was dropped; the routes stand.
    AttributeDiscard,
    /// The UPDATE's announcements are handled as withdrawals.
    TreatAsWithdraw,
}

/// A malformed attribute the session survives (RFC 7606).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrError {
    /// What to do.
    pub action: AttrErrorAction,
    /// The attribute's name.
    pub attribute: &'static str,
    /// What was wrong.
    pub what: &'static str,
}

/// An UPDATE message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Withdrawn routes (classic field).
    pub withdrawn: Vec<Ipv4Net>,
    /// Path attributes.
    pub attributes: PathAttributes,
    /// Announced routes (classic field).
    pub nlri: Vec<Ipv4Net>,
    /// The most severe RFC 7606 error found (treat-as-withdraw wins over attribute-discard).
    /// Never emitted.
    pub attr_error: Option<AttrError>,
}

/// A multiprotocol attribute too short for what it announces: the session resets.
fn malformed_mp(attribute: &'static str) -> MessageError {
    session_reset(attribute, "malformed", subcode::MALFORMED_ATTRIBUTE_LIST)
}

/// The AFI and SAFI that open MP_REACH_NLRI and MP_UNREACH_NLRI.
fn mp_family(r: &mut Reader<'_>, attribute: &'static str) -> Result<AddressFamily, MessageError> {
    let bad = || malformed_mp(attribute);
    Ok(AddressFamily { afi: r.u16().ok_or_else(bad)?, safi: r.u8().ok_or_else(bad)? })
}

fn session_reset(message: &'static str, what: &'static str, subcode: u8) -> MessageError {
    MessageError::new(message, what, Notification::new(ErrorCode::UPDATE, subcode))
}

/// Parses prefixes until `bytes` ends.
fn parse_prefixes(bytes: &[u8], part: &'static str, out: &mut Vec<Ipv4Net>) -> Result<(), MessageError> {
    let mut r = Reader::new(bytes);
    while let Some(len) = r.u8() {
        if len > 32 {
            return Err(session_reset(part, "prefix longer than 32 bits", subcode::INVALID_NETWORK_FIELD));
        }
        let octets = r.take(usize::from(len).div_ceil(8)).ok_or_else(|| {
            session_reset(part, "prefix runs past its field", subcode::INVALID_NETWORK_FIELD)
        })?;
        let mut addr = [0u8; 4];
        addr[..octets.len()].copy_from_slice(octets);
        // A prefix length of at most 32 is always valid; host bits are cleared (RFC 4271 §6.3
        // ignores them).
        if let Ok(net) = Ipv4Net::new(Ipv4Addr::from(addr), len) {
            out.push(net.trunc());
        }
    }
    Ok(())
}

fn emit_prefixes(prefixes: &[Ipv4Net], out: &mut Vec<u8>) {
    for p in prefixes {
        let len = p.prefix_len();
        out.push(len);
        out.extend_from_slice(&p.network().octets()[..usize::from(len).div_ceil(8)]);
    }
}

fn parse_as_path(value: &[u8], ctx: Context) -> Option<Vec<AsSegment>> {
    let mut r = Reader::new(value);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let kind = r.u8()?;
        let count = r.u8()?;
        if !(1..=4).contains(&kind) || count == 0 {
            return None;
        }
        let asns = (0..count)
            .map(|_| if ctx.four_octet_as { r.u32() } else { r.u16().map(u32::from) })
            .collect::<Option<Vec<u32>>>()?;
        segments.push(AsSegment { kind, asns });
    }
    Some(segments)
}

impl PathAttributes {
    /// Records `e` unless a more severe error is already there.
    fn note(err: &mut Option<AttrError>, e: AttrError) {
        if err.is_none_or(|old| old.action == AttrErrorAction::AttributeDiscard) {
            *err = Some(e);
        }
    }

    fn parse(
        bytes: &[u8],
        ctx: Context,
        err: &mut Option<AttrError>,
    ) -> Result<PathAttributes, MessageError> {
        let mut a = PathAttributes::default();
        let mut seen = [false; 256];
        let mut r = Reader::new(bytes);
        let withdraw =
            |attribute, what| AttrError { action: AttrErrorAction::TreatAsWithdraw, attribute, what };
        let discard =
            |attribute, what| AttrError { action: AttrErrorAction::AttributeDiscard, attribute, what };
        while !r.is_empty() {
            let header = (r.u8(), r.u8());
            let (Some(flags), Some(code)) = header else {
                Self::note(err, withdraw("attribute header", "runs past the attribute field"));
                break;
            };
            let len = if flags & flag::EXTENDED_LENGTH != 0 { r.u16() } else { r.u8().map(u16::from) };
            let Some(value) = len.and_then(|len| r.take(usize::from(len))) else {
                if matches!(code, code::MP_REACH | code::MP_UNREACH) {
                    return Err(session_reset(
                        "UPDATE",
                        "MP_(UN)REACH_NLRI runs past the attribute field",
                        subcode::MALFORMED_ATTRIBUTE_LIST,
                    ));
                }
                Self::note(err, withdraw("attribute", "runs past the attribute field"));
                break;
            };
            if std::mem::replace(&mut seen[usize::from(code)], true) {
                if matches!(code, code::MP_REACH | code::MP_UNREACH) {
                    return Err(session_reset(
                        "UPDATE",
                        "MP_(UN)REACH_NLRI appears twice",
                        subcode::MALFORMED_ATTRIBUTE_LIST,
                    ));
                }
                Self::note(err, discard("repeated attribute", "repeats are discarded"));
                continue;
            }
            let kind = flags & (flag::OPTIONAL | flag::TRANSITIVE);
            let mut r = Reader::new(value);
            match code {
                code::ORIGIN | code::AS_PATH | code::NEXT_HOP | code::LOCAL_PREF | code::ATOMIC_AGGREGATE
                    if kind != flag::TRANSITIVE =>
                {
                    Self::note(err, withdraw("well-known attribute", "optional/transitive flags are wrong"));
                }
                code::MED | code::MP_REACH | code::MP_UNREACH if kind != flag::OPTIONAL => {
                    Self::note(err, withdraw("optional attribute", "optional/transitive flags are wrong"));
                }
                code::ORIGIN => match value {
                    [0] => a.origin = Some(Origin::Igp),
                    [1] => a.origin = Some(Origin::Egp),
                    [2] => a.origin = Some(Origin::Incomplete),
                    _ => Self::note(err, withdraw("ORIGIN", "not one octet of 0, 1 or 2")),
                },
                code::AS_PATH => match parse_as_path(value, ctx) {
                    Some(p) => a.as_path = Some(p),
                    None => Self::note(err, withdraw("AS_PATH", "malformed segment")),
                },
                code::NEXT_HOP => match (value.len(), r.ipv4()) {
                    (4, Some(ip)) => a.next_hop = Some(ip),
                    _ => Self::note(err, withdraw("NEXT_HOP", "not 4 octets")),
                },
                code::MED => match (value.len(), r.u32()) {
                    (4, Some(v)) => a.med = Some(v),
                    _ => Self::note(err, withdraw("MULTI_EXIT_DISC", "not 4 octets")),
                },
                code::LOCAL_PREF => match (value.len(), r.u32()) {
                    (4, Some(v)) => a.local_pref = Some(v),
                    _ => Self::note(err, withdraw("LOCAL_PREF", "not 4 octets")),
                },
                code::ATOMIC_AGGREGATE if !value.is_empty() => {
                    Self::note(err, discard("ATOMIC_AGGREGATE", "not empty"));
                }
                code::AGGREGATOR if value.len() != if ctx.four_octet_as { 8 } else { 6 } => {
                    Self::note(err, discard("AGGREGATOR", "wrong length"));
                }
                code::MP_REACH => {
                    let bad = || malformed_mp("UPDATE attribute MP_REACH_NLRI");
                    let family = mp_family(&mut r, "UPDATE attribute MP_REACH_NLRI")?;
                    let nh_len = usize::from(r.u8().ok_or_else(bad)?);
                    let nh = r.take(nh_len).ok_or_else(bad)?;
                    r.u8().ok_or_else(bad)?;
                    if family != AddressFamily::IPV4_UNICAST {
                        a.other.push(RawAttribute::kept(flags, code, value));
                        continue;
                    }
                    let mut nlri = Vec::new();
                    parse_prefixes(r.rest(), "UPDATE attribute MP_REACH_NLRI", &mut nlri)?;
                    match <[u8; 4]>::try_from(nh) {
                        Ok(nh) => a.mp_reach = Some(MpReach { next_hop: Ipv4Addr::from(nh), nlri }),
                        Err(_) => {
                            a.mp_reach = Some(MpReach { next_hop: Ipv4Addr::UNSPECIFIED, nlri });
                            Self::note(err, withdraw("MP_REACH_NLRI", "next hop is not 4 octets"));
                        }
                    }
                }
                code::MP_UNREACH => {
                    let family = mp_family(&mut r, "UPDATE attribute MP_UNREACH_NLRI")?;
                    if family != AddressFamily::IPV4_UNICAST {
                        a.other.push(RawAttribute::kept(flags, code, value));
                        continue;
                    }
                    parse_prefixes(r.rest(), "UPDATE attribute MP_UNREACH_NLRI", &mut a.mp_unreach)?;
                }
                code if flags & flag::OPTIONAL == 0 && code > code::AGGREGATOR => {
                    return Err(MessageError::new(
                        "UPDATE",
                        "unrecognised well-known attribute",
                        Notification::with_data(
                            ErrorCode::UPDATE,
                            subcode::UNRECOGNIZED_WELL_KNOWN,
                            vec![flags, code],
                        ),
                    ));
                }
                _ => a.other.push(RawAttribute::kept(flags, code, value)),
            }
        }
        Ok(a)
    }

    fn emit(&self, out: &mut Vec<u8>, ctx: Context) {
        fn attr(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
            match u8::try_from(value.len()) {
                Ok(len) => out.extend_from_slice(&[flags, code, len]),
                Err(_) => {
                    out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, code]);
                    out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
                }
            }
            out.extend_from_slice(value);
        }
        let mut v = Vec::new();
        if let Some(o) = self.origin {
            attr(out, flag::TRANSITIVE, code::ORIGIN, &[o as u8]);
        }
        if let Some(path) = &self.as_path {
            for s in path {
                v.push(s.kind);
                v.push(u8::try_from(s.asns.len()).unwrap_or(u8::MAX));
                for &asn in s.asns.iter().take(255) {
                    if ctx.four_octet_as {
                        v.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        let two = u16::try_from(asn).unwrap_or(super::open::AS_TRANS);
                        v.extend_from_slice(&two.to_be_bytes());
                    }
                }
            }
            attr(out, flag::TRANSITIVE, code::AS_PATH, &v);
        }
        if let Some(nh) = self.next_hop {
            attr(out, flag::TRANSITIVE, code::NEXT_HOP, &nh.octets());
        }
        if let Some(med) = self.med {
            attr(out, flag::OPTIONAL, code::MED, &med.to_be_bytes());
        }
        if let Some(lp) = self.local_pref {
            attr(out, flag::TRANSITIVE, code::LOCAL_PREF, &lp.to_be_bytes());
        }
        for o in &self.other {
            attr(out, o.flags, o.code, &o.value);
        }
        let family = |v: &mut Vec<u8>| {
            v.clear();
            v.extend_from_slice(&AddressFamily::IPV4_UNICAST.afi.to_be_bytes());
            v.push(AddressFamily::IPV4_UNICAST.safi);
        };
        if let Some(mp) = &self.mp_reach {
            family(&mut v);
            v.push(4);
            v.extend_from_slice(&mp.next_hop.octets());
            v.push(0);
            emit_prefixes(&mp.nlri, &mut v);
            attr(out, flag::OPTIONAL, code::MP_REACH, &v);
        }
        if !self.mp_unreach.is_empty() {
            family(&mut v);
            emit_prefixes(&self.mp_unreach, &mut v);
            attr(out, flag::OPTIONAL, code::MP_UNREACH, &v);
        }
    }
}

impl Update {
    pub(crate) fn parse(body: &[u8], ctx: Context) -> Result<Update, MessageError> {
        let lengths = || {
            session_reset(
                "UPDATE",
                "withdrawn or attribute length exceeds the message",
                subcode::MALFORMED_ATTRIBUTE_LIST,
            )
        };
        let mut r = Reader::new(body);
        let withdrawn_len = usize::from(r.u16().ok_or_else(lengths)?);
        let withdrawn_bytes = r.take(withdrawn_len).ok_or_else(lengths)?;
        let attrs_len = usize::from(r.u16().ok_or_else(lengths)?);
        let attr_bytes = r.take(attrs_len).ok_or_else(lengths)?;
        let mut u = Update::default();
        parse_prefixes(withdrawn_bytes, "UPDATE withdrawn routes", &mut u.withdrawn)?;
        parse_prefixes(r.rest(), "UPDATE NLRI", &mut u.nlri)?;
        let mut err = None;
        u.attributes = PathAttributes::parse(attr_bytes, ctx, &mut err)?;
        let a = &u.attributes;
        if !u.nlri.is_empty() || a.mp_reach.is_some() {
            let missing = if a.origin.is_none() {
                Some("ORIGIN")
            } else if a.as_path.is_none() {
                Some("AS_PATH")
            } else if !u.nlri.is_empty() && a.next_hop.is_none() {
                Some("NEXT_HOP")
            } else {
                None
            };
            if let Some(attribute) = missing {
                PathAttributes::note(
                    &mut err,
                    AttrError { action: AttrErrorAction::TreatAsWithdraw, attribute, what: "missing" },
                );
            }
        }
        u.attr_error = err;
        Ok(u)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>, ctx: Context) {
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        emit_prefixes(&self.withdrawn, out);
        let withdrawn_len = u16::try_from(out.len() - at - 2).unwrap_or(u16::MAX);
        out[at..at + 2].copy_from_slice(&withdrawn_len.to_be_bytes());
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        self.attributes.emit(out, ctx);
        let attrs_len = u16::try_from(out.len() - at - 2).unwrap_or(u16::MAX);
        out[at..at + 2].copy_from_slice(&attrs_len.to_be_bytes());
        emit_prefixes(&self.nlri, out);
    }

    /// Whether RFC 7606 says to handle this UPDATE's announcements as withdrawals.
    pub fn treat_as_withdraw(&self) -> bool {
        self.attr_error.is_some_and(|e| e.action == AttrErrorAction::TreatAsWithdraw)
    }

    /// The IPv4 unicast End-of-RIB marker (RFC 4724 §2): an UPDATE with nothing in it.
    pub fn is_end_of_rib(&self) -> bool {
        self.withdrawn.is_empty() && self.nlri.is_empty() && self.attributes == PathAttributes::default()
    }

    /// The routes this UPDATE announces with their next hop (none when it is treated as
    /// withdraw).
    pub fn announced(&self) -> impl Iterator<Item = (Ipv4Net, Ipv4Addr)> + '_ {
        let ok = !self.treat_as_withdraw();
        let classic = self.attributes.next_hop.map(|nh| self.nlri.iter().map(move |&p| (p, nh)));
        let mp = self.attributes.mp_reach.as_ref().map(|mp| mp.nlri.iter().map(move |&p| (p, mp.next_hop)));
        classic.into_iter().flatten().chain(mp.into_iter().flatten()).filter(move |_| ok)
    }

    /// The routes this UPDATE withdraws, including its announcements when it is treated as
    /// withdraw.
    pub fn withdrawn_routes(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        let taw = self.treat_as_withdraw();
        let mp_nlri = self.attributes.mp_reach.iter().flat_map(|mp| mp.nlri.iter());
        self.withdrawn
            .iter()
            .chain(self.attributes.mp_unreach.iter())
            .chain(self.nlri.iter().chain(mp_nlri).filter(move |_| taw))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Message;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    const CTX: Context = Context { four_octet_as: true };

    /// BIRD 2.0.12 announcing a Calico node's block to an iBGP peer, captured from a lab
    /// session: ORIGIN IGP, empty AS_PATH, NEXT_HOP 198.18.7.1, LOCAL_PREF 100, NLRI
    /// 198.19.2.0/24.
    const BIRD_UPDATE: &[u8] = &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, //
        0x00, 0x30, 0x02, 0x00, 0x00, 0x00, 0x15, 0x40, 0x01, 0x01, 0x00, 0x40, 0x02, 0x00, 0x40, 0x03, 0x04,
        0xc6, 0x12, 0x07, 0x01, 0x40, 0x05, 0x04, 0x00, 0x00, 0x00, 0x64, 0x18, 0xc6, 0x13, 0x02,
    ];

    fn announce() -> Update {
        Update {
            withdrawn: vec![],
            attributes: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(vec![]),
                next_hop: Some(Ipv4Addr::new(198, 18, 7, 1)),
                local_pref: Some(100),
                ..Default::default()
            },
            nlri: vec![net("198.19.2.0/24")],
            attr_error: None,
        }
    }

    fn parse(b: &[u8]) -> Result<Update, MessageError> {
        match Message::parse(b, CTX)? {
            Message::Update(u) => Ok(u),
            m => panic!("not an UPDATE: {m:?}"),
        }
    }

    /// The message with one attribute's bytes replaced (found by its code).
    fn with_attr(u: &Update, code: u8, flags: u8, value: &[u8]) -> Vec<u8> {
        let mut u = u.clone();
        match code {
            code::ORIGIN => u.attributes.origin = None,
            code::AS_PATH => u.attributes.as_path = None,
            code::NEXT_HOP => u.attributes.next_hop = None,
            code::LOCAL_PREF => u.attributes.local_pref = None,
            _ => {}
        }
        u.attributes.other.push(RawAttribute { flags, code, value: value.to_vec() });
        Message::Update(u).to_bytes(CTX)
    }

    #[test]
    fn birds_announcement_parses_to_its_route_and_emits_back_the_same_bytes() {
        let u = parse(BIRD_UPDATE).unwrap();
        assert_eq!(u, announce());
        assert_eq!(
            u.announced().collect::<Vec<_>>(),
            vec![(net("198.19.2.0/24"), Ipv4Addr::new(198, 18, 7, 1))]
        );
        assert_eq!(Message::Update(u).to_bytes(CTX), BIRD_UPDATE);
    }

    #[test]
    fn withdrawals_mp_attributes_and_long_paths_round_trip() {
        let mut u = announce();
        u.withdrawn = vec![net("198.19.7.0/24"), net("10.0.0.0/8"), net("0.0.0.0/0"), net("1.2.3.4/32")];
        u.attributes.as_path = Some(vec![AsSegment { kind: 2, asns: (64512..64812).take(255).collect() }]);
        u.attributes.med = Some(7);
        u.attributes.mp_reach =
            Some(MpReach { next_hop: Ipv4Addr::new(198, 18, 0, 9), nlri: vec![net("198.19.9.0/24")] });
        u.attributes.mp_unreach = vec![net("198.19.8.0/25")];
        u.attributes.other = vec![RawAttribute { flags: 0xc0, code: 8, value: vec![0xfd, 0xe8, 0, 1] }];
        let b = Message::Update(u.clone()).to_bytes(CTX);
        assert_eq!(parse(&b), Ok(u.clone()));
        let two = Message::Update(u.clone()).to_bytes(Context { four_octet_as: false });
        let Message::Update(back) = Message::parse(&two, Context { four_octet_as: false }).unwrap() else {
            panic!()
        };
        assert_eq!(back, u);
        let mut got: Vec<_> = back.withdrawn_routes().collect();
        got.sort();
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn a_withdraw_only_update_and_end_of_rib_need_no_attributes() {
        let u = Update { withdrawn: vec![net("198.19.2.0/24")], ..Default::default() };
        let back = parse(&Message::Update(u.clone()).to_bytes(CTX)).unwrap();
        assert_eq!(back, u);
        assert!(!back.is_end_of_rib());
        let eor = parse(&Message::Update(Update::default()).to_bytes(CTX)).unwrap();
        assert!(eor.is_end_of_rib());
        assert_eq!(eor.attr_error, None);
    }

    #[test]
    fn malformed_mandatory_attributes_turn_announcements_into_withdrawals() {
        let u = announce();
        let cases: [(u8, u8, &[u8], &str); 6] = [
            (code::ORIGIN, 0x40, &[3], "ORIGIN"),
            (code::ORIGIN, 0x40, &[0, 0], "ORIGIN"),
            (code::AS_PATH, 0x40, &[2, 2, 0, 0, 0xfc], "AS_PATH"),
            (code::AS_PATH, 0x40, &[9, 1, 0, 0, 0xfc, 0], "AS_PATH"),
            (code::NEXT_HOP, 0x40, &[1, 2, 3], "NEXT_HOP"),
            (code::LOCAL_PREF, 0x40, &[0, 0, 100], "LOCAL_PREF"),
        ];
        for (code, flags, value, name) in cases {
            let got = parse(&with_attr(&u, code, flags, value)).unwrap();
            let e = got.attr_error.expect(name);
            assert_eq!((e.action, e.attribute), (AttrErrorAction::TreatAsWithdraw, name));
            assert_eq!(got.announced().count(), 0, "{name}");
            assert_eq!(got.withdrawn_routes().collect::<Vec<_>>(), vec![net("198.19.2.0/24")], "{name}");
        }
    }

    #[test]
    fn wrong_flags_on_a_well_known_attribute_are_treat_as_withdraw() {
        let got = parse(&with_attr(&announce(), code::ORIGIN, 0xc0, &[0])).unwrap();
        assert!(got.treat_as_withdraw());
    }

    #[test]
    fn a_missing_next_hop_is_treat_as_withdraw() {
        let mut u = announce();
        u.attributes.next_hop = None;
        let got = parse(&Message::Update(u).to_bytes(CTX)).unwrap();
        assert_eq!(got.attr_error.map(|e| e.attribute), Some("NEXT_HOP"));
        assert!(got.treat_as_withdraw());
    }

    #[test]
    fn a_bad_aggregator_is_discarded_and_the_route_stands() {
        let got = parse(&with_attr(&announce(), code::AGGREGATOR, 0xc0, &[1, 2, 3])).unwrap();
        assert_eq!(got.attr_error.map(|e| e.action), Some(AttrErrorAction::AttributeDiscard));
        assert_eq!(got.announced().count(), 1);
    }

    #[test]
    fn a_repeated_attribute_keeps_the_first() {
        let got = parse(&with_attr(&announce(), code::LOCAL_PREF, 0x40, &[0, 0, 0, 100])).unwrap();
        assert_eq!(got.attributes.local_pref, Some(100));
    }

    #[test]
    fn lengths_that_do_not_fit_reset_the_session() {
        let mut b = BIRD_UPDATE.to_vec();
        b[22] = 0x40; // total attribute length far past the message
        let e = parse(&b).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (ErrorCode::UPDATE, 1));
        let mut b = BIRD_UPDATE.to_vec();
        b[44] = 33; // NLRI prefix length
        let e = parse(&b).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (ErrorCode::UPDATE, 10));
    }

    #[test]
    fn an_unknown_well_known_attribute_resets_the_session() {
        let e = parse(&with_attr(&announce(), 40, 0x40, &[1])).unwrap_err();
        assert_eq!(e.notification, Notification::with_data(ErrorCode::UPDATE, 2, vec![0x40, 40]));
    }

    #[test]
    fn an_unknown_optional_attribute_is_kept() {
        let got = parse(&with_attr(&announce(), 40, 0xc0, &[1])).unwrap();
        assert_eq!(got.attr_error, None);
        assert_eq!(got.attributes.other.len(), 1);
    }

    #[test]
    fn mp_reach_twice_resets_the_session() {
        let mut u = announce();
        u.attributes.mp_reach = Some(MpReach { next_hop: Ipv4Addr::new(1, 1, 1, 1), nlri: vec![] });
        let mut b = Message::Update(u).to_bytes(CTX);
        let mp = [0x80, 14, 8, 0, 1, 1, 4, 1, 1, 1, 1, 0];
        b.splice(23..23, mp);
        let attrs = u16::from_be_bytes([b[21], b[22]]) + 12;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        let len = b.len() as u16;
        b[16..18].copy_from_slice(&len.to_be_bytes());
        let e = parse(&b).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (ErrorCode::UPDATE, 1));
    }

    #[test]
    fn an_attribute_running_past_the_field_is_treat_as_withdraw() {
        let mut b = BIRD_UPDATE.to_vec();
        b[39] = 9; // LOCAL_PREF's length, past the attribute field
        let got = parse(&b).unwrap();
        assert!(got.treat_as_withdraw(), "{got:?}");
    }

    #[test]
    fn every_truncation_of_an_update_is_an_error_or_a_smaller_update_never_a_panic() {
        let mut u = announce();
        u.attributes.mp_reach =
            Some(MpReach { next_hop: Ipv4Addr::new(1, 1, 1, 1), nlri: vec![net("10.1.0.0/16")] });
        let b = Message::Update(u).to_bytes(CTX);
        for cut in 19..b.len() {
            let mut short = b[..cut].to_vec();
            short[16..18].copy_from_slice(&(cut as u16).to_be_bytes());
            let _ = Message::parse(&short, CTX);
        }
    }

    #[test]
    fn mutated_messages_parse_or_fail_without_panicking_and_what_parses_round_trips() {
        let mut open = crate::wire::Open::new(64512, 90, Ipv4Addr::new(1, 2, 3, 4), vec![]);
        open.capabilities.push(crate::wire::Capability::FourOctetAs(64512));
        let seeds = [BIRD_UPDATE.to_vec(), Message::Open(open).to_bytes(CTX)];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let mut b = seeds[i % seeds.len()].clone();
            for _ in 0..1 + next() % 4 {
                let at = 19 + (next() as usize) % (b.len() - 19);
                b[at] = next() as u8;
            }
            if next() % 4 == 0 {
                b.truncate(19 + (next() as usize) % (b.len() - 19));
                let len = b.len() as u16;
                b[16..18].copy_from_slice(&len.to_be_bytes());
            }
            if let Ok(m) = Message::parse(&b, CTX) {
                if matches!(&m, Message::Update(u) if u.attr_error.is_some()) {
                    continue;
                }
                assert_eq!(Message::parse(&m.to_bytes(CTX), CTX), Ok(m), "seed {} mutation {b:02x?}", i % 2);
            }
        }
    }
}
