//! One peer's task: gets a TCP connection (ours to the peer, or the peer's to us handed over
//! by the listener), runs a [`Session`] over it, reports routes to the speaker, and starts
//! again after [`CONNECT_RETRY`] when the session ends.
//!
//! Connection collisions (both sides connected at once, RFC 4271 §6.8): before Established,
//! the connection opened by the side with the higher BGP identifier (the underlay address
//! here, as Calico sets router ids) stays; once Established, a new connection from the peer
//! means the peer restarted, and it replaces the old one.
//!
//! Ending a session on purpose (RFC 4486 Cease): a peer removed from the mesh gets "Peer
//! De-configured", and every peer gets "Administrative Shutdown" when weft stops (SIGTERM),
//! as BIRD's `shutdown` does, so peers withdraw our routes at once instead of waiting for a
//! hold timer or a graceful-restart time. Only a weft that dies without stopping (crash,
//! SIGKILL) leaves its routes to the peers' graceful-restart handling.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::sync::watch;
use weft_bgp::session::{Close, Event, Session, SessionConfig, State};
use weft_bgp::wire::notification::cease;
use weft_bgp::wire::{ErrorCode, Message, Notification, frame_len};

use super::BgpStatus;

/// Wait between connection attempts (BIRD's `connect retry time` in Calico's config is 5 s).
pub const CONNECT_RETRY: Duration = Duration::from_secs(5);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the peer tasks tell the speaker.
#[derive(Debug)]
pub enum RibEvent {
    /// Routes from `peer`.
    Routes {
        /// The peer.
        peer: Ipv4Addr,
        /// Announced prefixes and next hops.
        announced: Vec<(Ipv4Net, Ipv4Addr)>,
        /// Withdrawn prefixes.
        withdrawn: Vec<Ipv4Net>,
    },
    /// `peer`'s End-of-RIB.
    EndOfRib(Ipv4Addr),
    /// `peer` is back without its forwarding state (no graceful-restart capability for IPv4
    /// unicast, or its F bit clear): routes kept from its previous session go now.
    ForwardingLost(Ipv4Addr),
    /// `peer`'s session ended; keep its routes this long (graceful restart) or drop them.
    Down(Ipv4Addr, Option<Duration>),
}

/// What every peer task shares.
#[derive(Debug)]
pub struct PeerContext {
    /// Our session parameters (`peer_as` included).
    pub session: SessionConfig,
    /// Our address: source of our connections, next hop of our announcements.
    pub local: Ipv4Addr,
    /// The BGP port.
    pub port: u16,
    /// What we announce.
    pub announce: Vec<Ipv4Net>,
    /// Where routes go.
    pub events: mpsc::Sender<RibEvent>,
    /// Where the session state goes.
    pub status: BgpStatus,
}

/// Whether a peer's task keeps running, and if not, which Cease the peer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep the session up.
    Run,
    /// The peer left the configured peers or the mesh: Cease, Peer De-configured.
    Deconfigured,
    /// weft stops: Cease, Administrative Shutdown.
    Shutdown,
}

impl Stop {
    /// The NOTIFICATION that ends a session for this reason.
    fn notification(self) -> Option<Notification> {
        let subcode = match self {
            Stop::Run => return None,
            Stop::Deconfigured => cease::PEER_DECONFIGURED,
            Stop::Shutdown => cease::ADMIN_SHUTDOWN,
        };
        Some(Notification::new(ErrorCode::CEASE, subcode))
    }
}

/// A connection and who opened it.
struct Conn {
    stream: TcpStream,
    ours: bool,
}

/// Why a connection's session ended.
struct Ended {
    why: String,
    /// The peer's graceful-restart time, when the session had reached Established and did
    /// not end with a NOTIFICATION (RFC 4724 keeps routes only then).
    keep: Option<Duration>,
    malformed: bool,
    was_up: bool,
    /// A connection to run next (a collision or restart handed it over).
    next: Option<TcpStream>,
}

/// Runs `peer`'s sessions until `stop` leaves [`Stop::Run`] (the session then ends with its
/// Cease) or the task is aborted.
pub async fn run(
    ctx: Arc<PeerContext>,
    peer: Ipv4Addr,
    mut incoming: mpsc::Receiver<TcpStream>,
    mut stop: watch::Receiver<Stop>,
) {
    let mut delay = Duration::from_millis(u64::from(u32::from(ctx.local) % 500));
    let mut next: Option<Conn> = None;
    loop {
        if *stop.borrow() != Stop::Run {
            return;
        }
        let conn = match next.take() {
            Some(c) => c,
            None => {
                ctx.status.with(peer, |s| s.state = "Connect");
                tokio::select! {
                    _ = stop.changed() => continue,
                    s = incoming.recv() => match s {
                        Some(stream) => Conn { stream, ours: false },
                        None => return,
                    },
                    r = connect(&ctx, peer, delay) => match r {
                        Ok(stream) => Conn { stream, ours: true },
                        Err(e) => {
                            ctx.status.with(peer, |s| { s.state = "Active"; s.last_error = Some(e); });
                            delay = CONNECT_RETRY;
                            continue;
                        }
                    },
                }
            }
        };
        let ended = session(&ctx, peer, conn, &mut incoming, &mut stop).await;
        tracing::warn!(%peer, "BGP session ended: {}", ended.why);
        ctx.status.with(peer, |s| {
            s.state = "Idle";
            s.established_at = None;
            s.prefixes_out = 0;
            s.resets += u64::from(ended.was_up);
            s.malformed += u64::from(ended.malformed);
            s.last_error = Some(ended.why.clone());
        });
        if ctx.events.send(RibEvent::Down(peer, ended.keep)).await.is_err() {
            return;
        }
        next = ended.next.map(|stream| Conn { stream, ours: false });
        delay = CONNECT_RETRY;
    }
}

async fn connect(ctx: &PeerContext, peer: Ipv4Addr, delay: Duration) -> Result<TcpStream, String> {
    tokio::time::sleep(delay).await;
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket.bind(SocketAddr::from((ctx.local, 0))).map_err(|e| format!("bind {}: {e}", ctx.local))?;
    let to = SocketAddr::from((peer, ctx.port));
    match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(to)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("connect {to}: {e}")),
        Err(_) => Err(format!("connect {to}: no answer in {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

async fn send(stream: &mut TcpStream, msg: &Message, session: &mut Session) -> std::io::Result<()> {
    stream.write_all(&msg.to_bytes(session.context())).await?;
    session.sent(Instant::now());
    Ok(())
}

/// Runs one session over `conn` until it ends.
async fn session(
    ctx: &PeerContext,
    peer: Ipv4Addr,
    conn: Conn,
    incoming: &mut mpsc::Receiver<TcpStream>,
    stop: &mut watch::Receiver<Stop>,
) -> Ended {
    let Conn { mut stream, ours } = conn;
    let _ = stream.set_nodelay(true);
    let (mut session, open) = Session::new(ctx.session.clone(), Instant::now());
    let mut ended = Ended { why: String::new(), keep: None, malformed: false, was_up: false, next: None };
    let mut peer_restart: Option<Duration> = None;
    ctx.status.with(peer, |s| s.state = State::OpenSent.name());
    if let Err(e) = send(&mut stream, &open, &mut session).await {
        ended.why = format!("sending OPEN: {e}");
        return ended;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 8192];
    let mut events = Vec::new();
    let result: Result<(), Close> = 'run: loop {
        let deadline = tokio::time::Instant::from_std(session.deadline());
        tokio::select! {
            n = stream.read(&mut chunk) => {
                let n = match n {
                    Ok(0) => { ended.why = "peer closed the connection".into(); break 'run Ok(()); }
                    Ok(n) => n,
                    Err(e) => { ended.why = format!("read: {e}"); break 'run Ok(()); }
                };
                buf.extend_from_slice(&chunk[..n]);
                let mut used = 0;
                loop {
                    let rest = &buf[used..];
                    let len = match frame_len(rest) {
                        Ok(Some(len)) if rest.len() >= len => len,
                        Ok(_) => break,
                        Err(e) => { ended.malformed = true; break 'run Err(session.on_parse_error(e)); }
                    };
                    let msg = match Message::parse(&rest[..len], session.context()) {
                        Ok(m) => m,
                        Err(e) => { ended.malformed = true; break 'run Err(session.on_parse_error(e)); }
                    };
                    used += len;
                    if let Err(e) = session.on_message(msg, Instant::now(), &mut events) {
                        break 'run Err(e);
                    }
                }
                buf.drain(..used);
            }
            _ = tokio::time::sleep_until(deadline) => {
                if let Err(e) = session.poll(Instant::now(), &mut events) {
                    break 'run Err(e);
                }
            }
            _ = stop.changed() => {
                let reason = *stop.borrow();
                if let Some(notification) = reason.notification() {
                    ended.why = match reason {
                        Stop::Deconfigured => "the peer was removed from the peers".into(),
                        _ => "weft is stopping".into(),
                    };
                    break 'run Err(Close::Error { why: ended.why.clone(), notification });
                }
            }
            s = incoming.recv() => {
                let Some(new) = s else { ended.why = "speaker stopped".into(); break 'run Ok(()); };
                let established = session.state() == State::Established;
                let keep_ours = !established && ours && ctx.local > peer;
                if keep_ours {
                    tracing::info!(%peer, "connection collision: keeping ours (higher BGP identifier)");
                    drop(new);
                } else {
                    ended.next = Some(new);
                    if established {
                        ended.keep = peer_restart;
                    }
                    ended.why = if established {
                        "the peer connected again (restarted)".into()
                    } else {
                        "connection collision: the peer's connection wins".into()
                    };
                    break 'run Err(Close::Error { why: ended.why.clone(), notification: Session::collision() });
                }
            }
        }
        for ev in events.drain(..) {
            let io = match ev {
                Event::Send(m) => send(&mut stream, &m, &mut session).await,
                Event::Established(n) => {
                    tracing::info!(%peer, hold = n.hold_time, restart_time = ?n.peer_restart_time, "BGP session established");
                    peer_restart = n.peer_restart_time.map(|t| Duration::from_secs(u64::from(t)));
                    if !n.peer_forwarding && ctx.events.send(RibEvent::ForwardingLost(peer)).await.is_err() {
                        ended.why = "speaker stopped".into();
                        break 'run Ok(());
                    }
                    ended.was_up = true;
                    ctx.status.with(peer, |s| {
                        s.state = State::Established.name();
                        s.established_at = Some(Instant::now());
                        s.prefixes_out = ctx.announce.len();
                    });
                    let ann = session.announcement(ctx.announce.clone(), ctx.local);
                    match send(&mut stream, &ann, &mut session).await {
                        Ok(()) => send(&mut stream, &Session::end_of_rib(), &mut session).await,
                        Err(e) => Err(e),
                    }
                }
                Event::RouteRefresh => {
                    let ann = session.announcement(ctx.announce.clone(), ctx.local);
                    send(&mut stream, &ann, &mut session).await
                }
                Event::Routes { announced, withdrawn } => {
                    if ctx.events.send(RibEvent::Routes { peer, announced, withdrawn }).await.is_err() {
                        ended.why = "speaker stopped".into();
                        break 'run Ok(());
                    }
                    Ok(())
                }
                Event::EndOfRib => {
                    let _ = ctx.events.send(RibEvent::EndOfRib(peer)).await;
                    Ok(())
                }
                Event::AttributeError(e) => {
                    tracing::warn!(%peer, attribute = e.attribute, action = ?e.action, "UPDATE attribute error: {}", e.what);
                    ctx.status.with(peer, |s| s.attribute_errors += 1);
                    Ok(())
                }
            };
            if let Err(e) = io {
                ended.why = format!("write: {e}");
                break 'run Ok(());
            }
        }
        if session.state() != State::Established {
            ctx.status.with(peer, |s| s.state = session.state().name());
        }
    };
    match result {
        Ok(()) => ended.keep = peer_restart.filter(|_| ended.was_up),
        Err(close) => {
            if let Some(n) = close.notification() {
                let _ = stream.write_all(&Message::Notification(n.clone()).to_bytes(session.context())).await;
            }
            if ended.why.is_empty() {
                ended.why = close.to_string();
            }
        }
    }
    let _ = stream.shutdown().await;
    ended
}
