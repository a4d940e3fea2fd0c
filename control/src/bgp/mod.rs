//! BGP mode (SPEC §11): weft as a BGP speaker in Calico's node mesh. It announces our pod
//! subnet to every peer and installs what the peers announce as FIB routes.
//!
//! ```text
//! peers: bgp.peers, or every other node with a lease in etcd (PeerSet from the lease agent)
//!        │ watch
//!        ▼
//! Speaker ── listener (our address:179) ── accepted connections ──► that peer's task
//!        │   one task per peer (peer.rs): TCP + weft_bgp::session::Session
//!        │◄── RibEvent (routes, End-of-RIB, down) ──┘
//!        ▼
//! Rib (rib.rs: per-peer routes, choice, graceful-restart stale timers)
//!        ▼ the changed prefixes' routes → RouteSink (one FIB version per batch)
//! ```
//!
//! The message codec and the session state machine live in the `weft-bgp` crate (why not an
//! existing crate: see its docs).

mod peer;
mod peer_set;
mod rib;
mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use weft_bgp::session::SessionConfig;

pub use peer::{CONNECT_RETRY, RibEvent, Stop};
pub use peer_set::PeerSetSink;
pub use rib::{Local, Rib};
pub use status::{BgpStatus, PeerStatus};

use crate::config::BgpSection;
use crate::routes::{RouteSink, RouteTable};

/// How long a stopping speaker waits for its peers' Cease NOTIFICATIONs to be written.
const CEASE_WAIT: Duration = Duration::from_secs(1);

/// One peer's task and how to stop it.
struct PeerTask {
    connections: mpsc::Sender<TcpStream>,
    stop: watch::Sender<Stop>,
    task: JoinHandle<()>,
}

impl PeerTask {
    /// Tells the task to end its session with `why`'s Cease; aborts it if that takes longer
    /// than [`CEASE_WAIT`] (a peer that does not read). Returns when the task has ended.
    async fn stop(self, why: Stop) {
        let _ = self.stop.send(why);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(CEASE_WAIT, self.task).await.is_err() {
            abort.abort();
        }
    }
}

/// The speaker's settings.
#[derive(Debug, Clone)]
pub struct SpeakerSettings {
    /// `[bgp]`.
    pub section: BgpSection,
    /// Our node: address, pod subnet (announced), uplink subnet.
    pub local: Local,
}

/// A bound speaker, ready to run.
#[derive(Debug)]
pub struct Speaker {
    settings: SpeakerSettings,
    listener: TcpListener,
    status: BgpStatus,
}

/// Binding the BGP port failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "bgp: cannot listen on {addr}: {source} (another BGP daemon running? bgp.port, CAP_NET_BIND_SERVICE)"
)]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    pub source: std::io::Error,
}

impl Speaker {
    /// Listens on our address and the BGP port.
    pub fn bind(settings: SpeakerSettings, status: BgpStatus) -> Result<Speaker, BindError> {
        let addr = SocketAddr::from((settings.local.address, settings.section.port));
        let listen = || -> std::io::Result<TcpListener> {
            let s = TcpSocket::new_v4()?;
            s.set_reuseaddr(true)?;
            s.bind(addr)?;
            s.listen(64)
        };
        let listener = listen().map_err(|source| BindError { addr, source })?;
        Ok(Speaker { settings, listener, status })
    }

    /// Runs until `stop` resolves: peers come and go with `peers`, routes go to `sink`. When
    /// stopping, every session ends with a Cease NOTIFICATION (Administrative Shutdown) before
    /// this returns.
    pub async fn run(
        self,
        mut peers: watch::Receiver<BTreeSet<Ipv4Addr>>,
        mut sink: impl RouteSink,
        stop: impl Future<Output = ()>,
    ) {
        let s = &self.settings;
        let (events_tx, mut events) = mpsc::channel(1024);
        let ctx = Arc::new(peer::PeerContext {
            session: SessionConfig {
                local_as: s.section.asn,
                peer_as: s.section.peer_as,
                bgp_id: s.local.address,
                hold_time: s.section.hold_time,
                restart_time: (s.section.restart_time > 0).then_some(s.section.restart_time),
            },
            local: s.local.address,
            port: s.section.port,
            announce: vec![s.local.subnet],
            events: events_tx,
            status: self.status.clone(),
        });
        let mut rib = Rib::new(s.local);
        let (mut installed, mut batch) = (RouteTable::new(), Vec::new());
        let mut tasks: BTreeMap<Ipv4Addr, PeerTask> = BTreeMap::new();
        tokio::pin!(stop);
        let mut refused = BTreeSet::new();
        tracing::info!(asn = s.section.asn, listen = %self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), announce = %s.local.subnet, "BGP speaker up");
        let mut peers_changed = true;
        let mut peers_open = true;
        loop {
            if peers_changed {
                peers_changed = false;
                let want: BTreeSet<Ipv4Addr> =
                    peers.borrow_and_update().iter().copied().filter(|p| *p != s.local.address).collect();
                let gone: Vec<Ipv4Addr> = tasks.keys().filter(|p| !want.contains(p)).copied().collect();
                for p in gone {
                    if let Some(t) = tasks.remove(&p) {
                        tokio::spawn(t.stop(Stop::Deconfigured));
                    }
                    rib.peer_down(p, None, Instant::now());
                    self.status.remove(p);
                    tracing::info!(peer = %p, "BGP peer removed");
                }
                for p in want {
                    tasks.entry(p).or_insert_with(|| {
                        tracing::info!(peer = %p, "BGP peer added");
                        self.status.with(p, |_| ());
                        let (connections, rx) = mpsc::channel(4);
                        let (stop, stop_rx) = watch::channel(Stop::Run);
                        let task = tokio::spawn(peer::run(ctx.clone(), p, rx, stop_rx));
                        PeerTask { connections, stop, task }
                    });
                }
            }
            let expiry = rib.next_expiry();
            tokio::select! {
                () = &mut stop => {
                    let mut stopping = tokio::task::JoinSet::new();
                    for t in std::mem::take(&mut tasks).into_values() {
                        stopping.spawn(t.stop(Stop::Shutdown));
                    }
                    while stopping.join_next().await.is_some() {}
                    tracing::info!("BGP speaker stopped: every session ended with a Cease");
                    return;
                }
                r = peers.changed(), if peers_open => {
                    // Without a writer (bgp.peers fixed, or the lease agent stopped) the
                    // peers we have stay.
                    peers_open = r.is_ok();
                    peers_changed = peers_open;
                    continue;
                }
                a = self.listener.accept() => {
                    let Ok((stream, from)) = a else { continue };
                    let std::net::IpAddr::V4(ip) = from.ip() else { continue };
                    match tasks.get(&ip) {
                        Some(t) => { let _ = t.connections.try_send(stream); }
                        None => {
                            if refused.insert(ip) {
                                tracing::warn!(%from, "BGP connection from an address that is not a peer: closed");
                            }
                        }
                    }
                    continue;
                }
                e = events.recv() => {
                    let Some(e) = e else { return };
                    apply(&mut rib, e);
                    while let Ok(e) = events.try_recv() {
                        apply(&mut rib, e);
                    }
                }
                _ = sleep_until(expiry) => {
                    rib.expire(Instant::now());
                }
            }
            rib.changes(&mut installed, &mut batch);
            if !batch.is_empty() {
                sink.apply(&batch);
            }
            for p in tasks.keys() {
                let n = rib.prefixes_from(*p);
                self.status.with(*p, |st| st.prefixes_in = n);
            }
        }
    }
}

fn apply(rib: &mut Rib, e: RibEvent) {
    match e {
        RibEvent::Routes { peer, announced, withdrawn } => rib.update(peer, &announced, &withdrawn),
        RibEvent::EndOfRib(peer) => rib.end_of_rib(peer),
        RibEvent::ForwardingLost(peer) => rib.forwarding_lost(peer),
        RibEvent::Down(peer, keep) => rib.peer_down(peer, keep, Instant::now()),
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// The announced subnet and where it goes, for `weft check`.
pub fn describe(section: &BgpSection, subnet: Option<Ipv4Net>) -> String {
    let peers = if section.peers.is_empty() {
        "every other node with a lease in etcd (full mesh)".to_owned()
    } else {
        section.peers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    let subnet = subnet.map_or("the node's lease".to_owned(), |s| s.to_string());
    format!("AS {} announcing {subnet} to {peers}", section.asn)
}
