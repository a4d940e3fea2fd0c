//! Peers: the control side's registry ([`WgControl`], owned by the route programmer) and each
//! worker's [`PeerTable`], kept in step through one bounded lock-free [`PeerInbox`] per worker.
//!
//! A peer is a remote node named by its public key. The registry gives it a slot id below
//! [`MAX_PEERS`] and an owner (`id % workers`), and makes its [`Tunn`] on the control thread
//! (the allocation happens there). Its session index base is `(epoch << 12) | id`, with
//! `epoch` random per process: a receiver index names the slot, and a message meant for a
//! session of an earlier run of this node is refused as `wg_unknown_peer` before any
//! cryptography.
//!
//! Order of publication: a peer is announced to every worker before the route programmer
//! publishes a next hop naming it, and retired only after the routes to it are gone; a packet
//! that still meets an empty slot is a counted drop.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::x25519::{PublicKey, StaticSecret};
use crossbeam_queue::ArrayQueue;

use super::{HANDSHAKE_RATE_LIMIT, MAX_PEERS, Tunn};
use crate::fib::Ipv4Prefix;
use crate::worker::WorkerId;

/// The node's WireGuard settings (flannel's `Backend` options and the node's key).
#[derive(Clone)]
pub struct WgSettings {
    /// The node's private key.
    pub private_key: [u8; 32],
    /// The UDP port we listen on (`ListenPort`).
    pub listen_port: u16,
    /// The pre-shared key mixed into every handshake (`PSK`).
    pub psk: Option<[u8; 32]>,
    /// Persistent keepalive, seconds (`PersistentKeepaliveInterval`), 0 off.
    pub persistent_keepalive: u16,
    /// Workers peers are spread over.
    pub workers: u16,
}

impl std::fmt::Debug for WgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgSettings")
            .field("listen_port", &self.listen_port)
            .field("psk", &self.psk.map(|_| "<secret>"))
            .field("persistent_keepalive", &self.persistent_keepalive)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// What the workers share about this node: its key pair, listen port and handshake limiter.
pub(crate) struct WgNode {
    pub private: StaticSecret,
    pub public: PublicKey,
    pub listen_port: u16,
    /// Checks the MACs of every handshake message before the anonymous DH that finds its
    /// sender, and answers with a cookie under load (node-wide: a flood from one source costs
    /// the others nothing but the limiter's budget).
    pub limiter: RateLimiter,
}

impl std::fmt::Debug for WgNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgNode").field("listen_port", &self.listen_port).finish_non_exhaustive()
    }
}

/// What every worker knows about one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its public key.
    pub public: [u8; 32],
    /// Its pod subnet: the only inner sources accepted from it (WireGuard's allowed IPs).
    pub allowed: Ipv4Prefix,
    /// Its endpoint (PublicIP, port).
    pub endpoint: (Ipv4Addr, u16),
    /// The worker that owns its session.
    pub owner: WorkerId,
    /// Its session index base (`(epoch << 12) | id`).
    pub index: u32,
}

/// One change of a worker's [`PeerTable`].
#[derive(Debug)]
pub enum PeerUpdate {
    /// Sets slot `id`; `tunn` (only to the owner) replaces its session state.
    Set {
        /// The slot.
        id: u16,
        /// The peer.
        info: PeerInfo,
        /// A new session state, for the owner of a new peer.
        tunn: Option<Session>,
    },
    /// Empties slot `id`.
    Remove {
        /// The slot.
        id: u16,
    },
}

/// One peer's session state (boxed: it moves between threads by pointer).
pub struct Session(pub Box<Tunn>);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session")
    }
}

/// The queues between the control side and one worker.
#[derive(Debug)]
pub struct PeerInbox {
    /// Control -> worker.
    updates: ArrayQueue<PeerUpdate>,
    /// Worker -> control: session states to free.
    spent: ArrayQueue<Session>,
}

/// One slot of a worker's table.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub info: Option<PeerInfo>,
    pub tunn: Option<Session>,
    /// A new session state that has not sent its first initiation yet: the owner's timers send
    /// one as soon as the peer's route is usable, so a (re)started node has sessions within a
    /// tick whichever side talks first.
    pub fresh: bool,
}

/// A worker's view of every peer: slots by id (sized once, never grown) and the ids it owns.
#[derive(Debug)]
pub struct PeerTable {
    pub(crate) slots: Vec<Slot>,
    pub(crate) owned: Vec<u16>,
    inbox: Arc<PeerInbox>,
}

impl PeerTable {
    fn new(inbox: Arc<PeerInbox>) -> Self {
        PeerTable {
            slots: (0..MAX_PEERS).map(|_| Slot::default()).collect(),
            owned: Vec::with_capacity(MAX_PEERS),
            inbox,
        }
    }

    /// Applies what the control side sent (between batches: no allocation, no lock). A
    /// replaced session state goes back to be freed there (or here, if that queue is full).
    pub fn drain(&mut self, me: WorkerId) {
        while let Some(u) = self.inbox.updates.pop() {
            match u {
                PeerUpdate::Set { id, info, tunn } => {
                    let Some(slot) = self.slots.get_mut(usize::from(id)) else { continue };
                    if let Some(new) = tunn {
                        if let Some(old) = slot.tunn.replace(new) {
                            let _ = self.inbox.spent.push(old);
                        }
                        slot.fresh = true;
                    }
                    slot.info = Some(info);
                    let owned = self.owned.iter().position(|&o| o == id);
                    match (info.owner == me && slot.tunn.is_some(), owned) {
                        (true, None) => self.owned.push(id),
                        (false, Some(i)) => {
                            self.owned.swap_remove(i);
                        }
                        _ => {}
                    }
                }
                PeerUpdate::Remove { id } => {
                    let Some(slot) = self.slots.get_mut(usize::from(id)) else { continue };
                    slot.info = None;
                    if let Some(old) = slot.tunn.take() {
                        let _ = self.inbox.spent.push(old);
                    }
                    if let Some(i) = self.owned.iter().position(|&o| o == id) {
                        self.owned.swap_remove(i);
                    }
                }
            }
        }
    }

    /// Whether updates wait (one atomic load).
    #[inline]
    pub fn pending(&self) -> bool {
        !self.inbox.updates.is_empty()
    }
}

/// A registered peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Registered {
    id: u16,
    info: PeerInfo,
}

/// The control side's registry of peers (see the module docs).
pub struct WgControl {
    settings: WgSettings,
    node: Arc<WgNode>,
    epoch: u32,
    inboxes: Vec<Arc<PeerInbox>>,
    peers: HashMap<[u8; 32], Registered>,
    free: Vec<u16>,
    next: u16,
}

impl std::fmt::Debug for WgControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgControl")
            .field("settings", &self.settings)
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

/// Updates a worker's queue holds (every peer set and removed once, with room to spare).
const INBOX: usize = 2 * MAX_PEERS;

impl WgControl {
    /// A registry without peers.
    pub fn new(settings: WgSettings) -> Self {
        let private = StaticSecret::from(settings.private_key);
        let public = PublicKey::from(&private);
        let node = Arc::new(WgNode {
            limiter: RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT),
            private,
            public,
            listen_port: settings.listen_port,
        });
        let workers = settings.workers.max(1);
        let inboxes = (0..workers)
            .map(|_| Arc::new(PeerInbox { updates: ArrayQueue::new(INBOX), spent: ArrayQueue::new(INBOX) }))
            .collect();
        WgControl {
            settings: WgSettings { workers, ..settings },
            node,
            epoch: rand_epoch(),
            inboxes,
            peers: HashMap::new(),
            free: Vec::new(),
            next: 0,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &WgSettings {
        &self.settings
    }

    /// Our public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.node.public.to_bytes()
    }

    /// Worker `worker`'s table (once per worker, before it runs).
    pub fn table(&self, worker: WorkerId) -> Option<PeerTable> {
        self.inboxes.get(usize::from(worker.0)).map(|i| PeerTable::new(i.clone()))
    }

    pub(crate) fn node(&self) -> &Arc<WgNode> {
        &self.node
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether there is no peer.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The slot id and owner of the peer with `public`, if registered.
    pub fn slot_of(&self, public: &[u8; 32]) -> Option<(u16, WorkerId)> {
        self.peers.get(public).map(|r| (r.id, r.info.owner))
    }

    /// Registers (or updates) the peer with `public`, reached at `endpoint`, whose pod subnet
    /// is `allowed`, and tells every worker. `None` when every slot is taken.
    pub fn upsert(
        &mut self,
        public: [u8; 32],
        allowed: Ipv4Prefix,
        endpoint: (Ipv4Addr, u16),
    ) -> Option<u16> {
        self.free_spent();
        if let Some(r) = self.peers.get_mut(&public) {
            if r.info.allowed == allowed && r.info.endpoint == endpoint {
                return Some(r.id);
            }
            r.info.allowed = allowed;
            r.info.endpoint = endpoint;
            let (id, info) = (r.id, r.info);
            self.announce(id, info, false);
            return Some(id);
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None if usize::from(self.next) < MAX_PEERS => {
                self.next += 1;
                self.next - 1
            }
            None => return None,
        };
        let owner = WorkerId(id % self.settings.workers);
        let index = (self.epoch << 12) | u32::from(id);
        let info = PeerInfo { public, allowed, endpoint, owner, index };
        self.peers.insert(public, Registered { id, info });
        self.announce(id, info, true);
        Some(id)
    }

    /// Retires every peer whose key is not in `keep` (after the routes to it are gone).
    pub fn retain(&mut self, keep: impl Fn(&[u8; 32]) -> bool) {
        self.free_spent();
        let gone: Vec<[u8; 32]> = self.peers.keys().filter(|k| !keep(k)).copied().collect();
        for key in gone {
            if let Some(r) = self.peers.remove(&key) {
                for inbox in &self.inboxes {
                    push(inbox, PeerUpdate::Remove { id: r.id });
                }
                self.free.push(r.id);
            }
        }
    }

    fn announce(&self, id: u16, info: PeerInfo, new: bool) {
        for (w, inbox) in self.inboxes.iter().enumerate() {
            let tunn = (new && usize::from(info.owner.0) == w).then(|| Session(Box::new(self.tunn(info))));
            push(inbox, PeerUpdate::Set { id, info, tunn });
        }
    }

    fn tunn(&self, info: PeerInfo) -> Tunn {
        let keepalive =
            (self.settings.persistent_keepalive != 0).then_some(self.settings.persistent_keepalive);
        Tunn::new(
            self.node.private.clone(),
            PublicKey::from(info.public),
            self.settings.psk,
            keepalive,
            info.index,
            None,
        )
    }

    /// Frees the session states workers gave back.
    fn free_spent(&self) {
        for inbox in &self.inboxes {
            while inbox.spent.pop().is_some() {}
        }
    }
}

fn push(inbox: &PeerInbox, u: PeerUpdate) {
    if inbox.updates.push(u).is_err() {
        log::error!("wireguard: a worker's peer queue is full; a peer update was lost");
    }
}

/// A random 12-bit epoch for session indices.
fn rand_epoch() -> u32 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (t.subsec_nanos() ^ std::process::id().rotate_left(7)) & 0xfff
}
