//! One BGP session's state machine (RFC 4271 §8) from OpenSent on, without I/O: the caller
//! owns the TCP connection (Idle, Connect and Active are its retry loop), feeds each parsed
//! message and the time, and sends what comes back.
//!
//! ```text
//! new()  ──► OpenSent ──OPEN ok──► OpenConfirm ──KEEPALIVE──► Established
//!   (our OPEN)      (KEEPALIVE sent)                 UPDATE ─► Event::Routes
//! any error: Err(Close) with the NOTIFICATION to send (none if the peer sent one)
//! poll(now): KEEPALIVE every hold/3, NOTIFICATION "hold timer expired" after hold time
//! ```

use core::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use crate::wire::notification::cease;
use crate::wire::open::AS_TRANS;
use crate::wire::update::{AsSegment, AttrError};
use crate::wire::{
    AddressFamily, Capability, Context, ErrorCode, Message, MessageError, Notification, Open, Origin,
    PathAttributes, Update,
};

/// The hold time used before the peer's OPEN arrives (RFC 4271 §8.2.2 suggests 4 minutes).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);
/// LOCAL_PREF weft puts on its iBGP announcements (BIRD's and Calico's default).
pub const LOCAL_PREF: u32 = 100;

/// What one session is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our AS.
    pub local_as: u32,
    /// The AS the peer must have (its OPEN is refused otherwise).
    pub peer_as: u32,
    /// Our BGP identifier (the node's underlay address).
    pub bgp_id: Ipv4Addr,
    /// The hold time we propose (0: no keepalives; else at least 3 s).
    pub hold_time: u16,
    /// The graceful-restart time we announce (`None`: no graceful-restart capability).
    pub restart_time: Option<u16>,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Our OPEN is out; waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, our KEEPALIVE out; waiting for the peer's.
    OpenConfirm,
    /// Routes flow.
    Established,
}

impl State {
    /// The name RFC 4271 gives it.
    pub fn name(self) -> &'static str {
        match self {
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }

    /// The FSM error subcode for an unexpected message in this state (RFC 6608).
    fn fsm_subcode(self) -> u8 {
        match self {
            State::OpenSent => 1,
            State::OpenConfirm => 2,
            State::Established => 3,
        }
    }
}

/// What the peer's OPEN settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's BGP identifier.
    pub peer_id: Ipv4Addr,
    /// The hold time in force (the smaller of the two; 0: none).
    pub hold_time: u16,
    /// Both sides use 4-octet AS numbers.
    pub four_octet_as: bool,
    /// The peer's graceful-restart time, if it announced the capability for IPv4 unicast (a
    /// capability without that family, "restart aware" only, keeps nothing).
    pub peer_restart_time: Option<u16>,
    /// The F bit the peer set for IPv4 unicast: it kept its forwarding state across the restart
    /// this session follows. Without it, routes kept from the peer's previous session go at
    /// once (RFC 4724 §4.2) instead of at its End-of-RIB.
    pub peer_forwarding: bool,
    /// The peer announced route refresh.
    pub route_refresh: bool,
}

/// What a message did, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send this message.
    Send(Message),
    /// The session reached Established.
    Established(Negotiated),
    /// Routes from an UPDATE: announcements with their next hop, then withdrawals.
    Routes {
        /// Announced prefixes and their next hop.
        announced: Vec<(Ipv4Net, Ipv4Addr)>,
        /// Withdrawn prefixes (including RFC 7606 treat-as-withdraw announcements).
        withdrawn: Vec<Ipv4Net>,
    },
    /// The peer's End-of-RIB for IPv4 unicast (its initial table is complete).
    EndOfRib,
    /// The peer asked for our routes again.
    RouteRefresh,
    /// An UPDATE had an attribute error the session survives (RFC 7606), counted by the caller.
    AttributeError(AttrError),
}

/// Why the session ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Close {
    /// We found an error: send the NOTIFICATION, then close.
    #[error("{why}: sending {notification}")]
    Error {
        /// What happened.
        why: String,
        /// What to send.
        notification: Notification,
    },
    /// The peer sent a NOTIFICATION: close without answering.
    #[error("peer sent {0}")]
    PeerNotification(Notification),
}

impl Close {
    fn error(why: impl Into<String>, notification: Notification) -> Self {
        Close::Error { why: why.into(), notification }
    }

    /// The NOTIFICATION to send before closing, if any.
    pub fn notification(&self) -> Option<&Notification> {
        match self {
            Close::Error { notification, .. } => Some(notification),
            Close::PeerNotification(_) => None,
        }
    }
}

impl From<MessageError> for Close {
    fn from(e: MessageError) -> Self {
        Close::Error { why: e.to_string(), notification: e.notification }
    }
}

/// One session from our OPEN on.
#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    state: State,
    negotiated: Option<Negotiated>,
    hold: Duration,
    last_received: Instant,
    last_sent: Instant,
}

impl Session {
    /// A session whose connection just opened at `now`, and the OPEN to send first.
    pub fn new(config: SessionConfig, now: Instant) -> (Session, Message) {
        let mut caps = vec![
            Capability::Multiprotocol(AddressFamily::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(config.local_as),
        ];
        if let Some(t) = config.restart_time {
            caps.push(Capability::GracefulRestart {
                restarting: false,
                restart_time: t.min(0x0fff),
                families: vec![(AddressFamily::IPV4_UNICAST, false)],
            });
        }
        let open = Message::Open(Open::new(config.local_as, config.hold_time, config.bgp_id, caps));
        let s = Session {
            config,
            state: State::OpenSent,
            negotiated: None,
            hold: OPEN_HOLD_TIME,
            last_received: now,
            last_sent: now,
        };
        (s, open)
    }

    /// Where the session is.
    pub fn state(&self) -> State {
        self.state
    }

    /// What the OPENs settled (from OpenConfirm on).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// How to parse the peer's messages now.
    pub fn context(&self) -> Context {
        Context { four_octet_as: self.negotiated.as_ref().is_none_or(|n| n.four_octet_as) }
    }

    /// When [`Session::poll`] has something to do next.
    pub fn deadline(&self) -> Instant {
        let expiry = self.last_received + self.hold;
        match self.keepalive_interval() {
            Some(k) => expiry.min(self.last_sent + k),
            None => expiry,
        }
    }

    fn keepalive_interval(&self) -> Option<Duration> {
        match self.state {
            State::OpenSent => None,
            _ if self.hold.is_zero() => None,
            _ => Some(self.hold / 3),
        }
    }

    /// Records that the caller sent a message at `now` (keepalives are then not needed).
    pub fn sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// Timers: a KEEPALIVE when one is due, an error when the hold time passed.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Event>) -> Result<(), Close> {
        if !self.hold.is_zero() && now >= self.last_received + self.hold {
            return Err(Close::error(
                format!("nothing from the peer for {} s", self.hold.as_secs()),
                Notification::new(ErrorCode::HOLD_TIMER_EXPIRED, 0),
            ));
        }
        if let Some(k) = self.keepalive_interval() {
            if now >= self.last_sent + k {
                self.last_sent = now;
                out.push(Event::Send(Message::Keepalive));
            }
        }
        Ok(())
    }

    /// The peer's parse error: the session closes with its NOTIFICATION.
    pub fn on_parse_error(&mut self, e: MessageError) -> Close {
        e.into()
    }

    /// One message from the peer at `now`.
    pub fn on_message(&mut self, msg: Message, now: Instant, out: &mut Vec<Event>) -> Result<(), Close> {
        self.last_received = now;
        let unexpected = |state: State, what: &str| {
            Close::error(
                format!("{what} in {}", state.name()),
                Notification::new(ErrorCode::FSM, state.fsm_subcode()),
            )
        };
        match (self.state, msg) {
            (_, Message::Notification(n)) => Err(Close::PeerNotification(n)),
            (State::OpenSent, Message::Open(open)) => {
                let n = self.negotiate(&open)?;
                self.hold = Duration::from_secs(u64::from(n.hold_time));
                self.negotiated = Some(n);
                self.state = State::OpenConfirm;
                self.last_sent = now;
                out.push(Event::Send(Message::Keepalive));
                Ok(())
            }
            (State::OpenConfirm, Message::Keepalive) => {
                self.state = State::Established;
                if let Some(n) = &self.negotiated {
                    out.push(Event::Established(n.clone()));
                }
                Ok(())
            }
            (State::Established, Message::Keepalive) => Ok(()),
            (State::Established, Message::Update(u)) => {
                if u.is_end_of_rib() {
                    out.push(Event::EndOfRib);
                    return Ok(());
                }
                if let Some(e) = u.attr_error {
                    out.push(Event::AttributeError(e));
                }
                let announced: Vec<_> = u.announced().collect();
                let withdrawn: Vec<_> = u.withdrawn_routes().collect();
                if !announced.is_empty() || !withdrawn.is_empty() {
                    out.push(Event::Routes { announced, withdrawn });
                }
                Ok(())
            }
            (State::Established, Message::RouteRefresh(r)) => {
                if r.family == AddressFamily::IPV4_UNICAST {
                    out.push(Event::RouteRefresh);
                }
                Ok(())
            }
            (state, Message::Open(_)) => Err(unexpected(state, "OPEN")),
            (state, Message::Update(_)) => Err(unexpected(state, "UPDATE")),
            (state, Message::Keepalive) => Err(unexpected(state, "KEEPALIVE")),
            (state, Message::RouteRefresh(_)) => Err(unexpected(state, "ROUTE-REFRESH")),
        }
    }

    fn negotiate(&self, open: &Open) -> Result<Negotiated, Close> {
        if open.asn() != self.config.peer_as {
            let data = open.my_as.to_be_bytes().to_vec();
            return Err(Close::error(
                format!("peer AS {} is not the configured {}", open.asn(), self.config.peer_as),
                Notification::with_data(ErrorCode::OPEN, 2, data),
            ));
        }
        if open.bgp_id == self.config.bgp_id && self.config.local_as == self.config.peer_as {
            return Err(Close::error(
                format!("peer BGP identifier {} is our own", open.bgp_id),
                Notification::new(ErrorCode::OPEN, 3),
            ));
        }
        let four_octet_as = open.has(|c| matches!(c, Capability::FourOctetAs(_)));
        if !four_octet_as && self.config.local_as > u32::from(u16::MAX) && open.my_as != AS_TRANS {
            return Err(Close::error(
                "peer speaks 2-octet AS only and ours needs 4",
                Notification::new(ErrorCode::OPEN, 2),
            ));
        }
        let gr = open.restart_family(AddressFamily::IPV4_UNICAST);
        Ok(Negotiated {
            peer_id: open.bgp_id,
            hold_time: open.hold_time.min(self.config.hold_time),
            four_octet_as,
            peer_restart_time: gr.map(|(time, _)| time),
            peer_forwarding: gr.is_some_and(|(_, forwarding)| forwarding),
            route_refresh: open
                .has(|c| matches!(c, Capability::RouteRefresh | Capability::EnhancedRouteRefresh)),
        })
    }

    /// The UPDATE announcing `prefixes` with us as next hop: ORIGIN IGP, our AS prepended for
    /// an external peer, LOCAL_PREF for an internal one.
    pub fn announcement(&self, prefixes: Vec<Ipv4Net>, next_hop: Ipv4Addr) -> Message {
        let internal = self.config.local_as == self.config.peer_as;
        let as_path =
            if internal { vec![] } else { vec![AsSegment { kind: 2, asns: vec![self.config.local_as] }] };
        Message::Update(Update {
            withdrawn: vec![],
            attributes: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(as_path),
                next_hop: Some(next_hop),
                local_pref: internal.then_some(LOCAL_PREF),
                ..Default::default()
            },
            nlri: prefixes,
            attr_error: None,
        })
    }

    /// The UPDATE withdrawing `prefixes`.
    pub fn withdrawal(prefixes: Vec<Ipv4Net>) -> Message {
        Message::Update(Update { withdrawn: prefixes, ..Default::default() })
    }

    /// The End-of-RIB marker (RFC 4724), sent after the initial announcements.
    pub fn end_of_rib() -> Message {
        Message::Update(Update::default())
    }

    /// A NOTIFICATION for a connection that lost a collision (RFC 4271 §6.8).
    pub fn collision() -> Notification {
        Notification::new(ErrorCode::CEASE, cease::COLLISION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig {
            local_as: 64512,
            peer_as: 64512,
            bgp_id: Ipv4Addr::new(198, 18, 0, 2),
            hold_time: 90,
            restart_time: Some(120),
        }
    }

    fn peer_open(asn: u32, hold: u16) -> Message {
        Message::Open(Open::new(asn, hold, Ipv4Addr::new(198, 18, 0, 1), vec![Capability::FourOctetAs(asn)]))
    }

    fn established(now: Instant) -> Session {
        let (mut s, _) = Session::new(config(), now);
        let mut out = Vec::new();
        s.on_message(peer_open(64512, 30), now, &mut out).unwrap();
        s.on_message(Message::Keepalive, now, &mut out).unwrap();
        assert_eq!(s.state(), State::Established);
        s
    }

    #[test]
    fn open_then_keepalive_reaches_established_with_the_smaller_hold_time() {
        let now = Instant::now();
        let (mut s, open) = Session::new(config(), now);
        let Message::Open(o) = &open else { panic!() };
        assert_eq!((o.asn(), o.hold_time, o.restart_time()), (64512, 90, Some(120)));
        let mut out = Vec::new();
        s.on_message(peer_open(64512, 30), now, &mut out).unwrap();
        assert_eq!(out, vec![Event::Send(Message::Keepalive)]);
        assert_eq!(s.state(), State::OpenConfirm);
        out.clear();
        s.on_message(Message::Keepalive, now, &mut out).unwrap();
        let [Event::Established(n)] = &out[..] else { panic!("{out:?}") };
        assert_eq!((n.hold_time, n.four_octet_as), (30, true));
    }

    #[test]
    fn graceful_restart_counts_only_for_ipv4_unicast_and_the_f_bit_is_reported() {
        let gr = |families: Vec<(AddressFamily, bool)>| {
            let caps = vec![
                Capability::FourOctetAs(64512),
                Capability::GracefulRestart { restarting: true, restart_time: 90, families },
            ];
            let now = Instant::now();
            let (mut s, _) = Session::new(config(), now);
            let mut out = Vec::new();
            let open = Open::new(64512, 30, Ipv4Addr::new(198, 18, 0, 1), caps);
            s.on_message(Message::Open(open), now, &mut out).unwrap();
            s.on_message(Message::Keepalive, now, &mut out).unwrap();
            let Some(Event::Established(n)) = out.pop() else { panic!("{out:?}") };
            (n.peer_restart_time, n.peer_forwarding)
        };
        assert_eq!(gr(vec![(AddressFamily::IPV4_UNICAST, true)]), (Some(90), true));
        assert_eq!(gr(vec![(AddressFamily::IPV4_UNICAST, false)]), (Some(90), false));
        assert_eq!(gr(vec![]), (None, false), "restart aware only: nothing is kept");
        let ipv6 = AddressFamily { afi: 2, safi: 1 };
        assert_eq!(gr(vec![(ipv6, true)]), (None, false), "another family's state says nothing of IPv4");
    }

    #[test]
    fn a_wrong_peer_as_is_refused_with_bad_peer_as() {
        let (mut s, _) = Session::new(config(), Instant::now());
        let e = s.on_message(peer_open(65000, 90), Instant::now(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.notification().map(|n| (n.code, n.subcode)), Some((ErrorCode::OPEN, 2)));
    }

    #[test]
    fn an_update_before_established_is_an_fsm_error() {
        let (mut s, _) = Session::new(config(), Instant::now());
        let e = s.on_message(Session::end_of_rib(), Instant::now(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.notification(), Some(&Notification::new(ErrorCode::FSM, 1)));
    }

    #[test]
    fn updates_become_route_events_and_treat_as_withdraw_withdraws() {
        let now = Instant::now();
        let mut s = established(now);
        let net: Ipv4Net = "198.19.1.0/24".parse().unwrap();
        let nh = Ipv4Addr::new(198, 18, 0, 1);
        let mut out = Vec::new();
        s.on_message(s.announcement(vec![net], nh), now, &mut out).unwrap();
        assert_eq!(out, vec![Event::Routes { announced: vec![(net, nh)], withdrawn: vec![] }]);
        out.clear();
        let Message::Update(mut bad) = s.announcement(vec![net], nh) else { panic!() };
        bad.attributes.origin = None;
        let parsed = Message::parse(&Message::Update(bad).to_bytes(s.context()), s.context()).unwrap();
        s.on_message(parsed, now, &mut out).unwrap();
        assert!(matches!(out[0], Event::AttributeError(_)));
        assert_eq!(out[1], Event::Routes { announced: vec![], withdrawn: vec![net] });
        out.clear();
        s.on_message(Session::end_of_rib(), now, &mut out).unwrap();
        assert_eq!(out, vec![Event::EndOfRib]);
    }

    #[test]
    fn keepalives_go_out_every_third_of_the_hold_time_and_silence_expires_it() {
        let t0 = Instant::now();
        let mut s = established(t0);
        let mut out = Vec::new();
        s.poll(t0 + Duration::from_secs(9), &mut out).unwrap();
        assert!(out.is_empty());
        s.poll(t0 + Duration::from_secs(10), &mut out).unwrap();
        assert_eq!(out, vec![Event::Send(Message::Keepalive)]);
        assert_eq!(s.deadline(), t0 + Duration::from_secs(20));
        let e = s.poll(t0 + Duration::from_secs(30), &mut out).unwrap_err();
        assert_eq!(e.notification(), Some(&Notification::new(ErrorCode::HOLD_TIMER_EXPIRED, 0)));
    }

    #[test]
    fn a_peer_notification_closes_without_an_answer() {
        let mut s = established(Instant::now());
        let n = Notification::new(ErrorCode::CEASE, cease::ADMIN_SHUTDOWN);
        let e = s.on_message(Message::Notification(n.clone()), Instant::now(), &mut Vec::new()).unwrap_err();
        assert_eq!(e, Close::PeerNotification(n));
        assert_eq!(e.notification(), None);
    }

    #[test]
    fn an_external_peer_gets_our_as_in_the_path_and_no_local_pref() {
        let mut c = config();
        c.peer_as = 65000;
        let (s, _) = Session::new(c, Instant::now());
        let Message::Update(u) = s.announcement(vec!["198.19.1.0/24".parse().unwrap()], Ipv4Addr::LOCALHOST)
        else {
            panic!()
        };
        assert_eq!(u.attributes.as_path, Some(vec![AsSegment { kind: 2, asns: vec![64512] }]));
        assert_eq!(u.attributes.local_pref, None);
    }
}
