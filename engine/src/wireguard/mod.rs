//! flannel's wireguard backend in the workers: WireGuard transport messages between nodes,
//! wire-compatible with the kernel's WireGuard and wireguard-go.
//!
//! The protocol (Noise IK handshakes, rekey and keepalive timers, cookies under load, the
//! replay window, the transport AEAD) is `boringtun::noise::Tunn`, Cloudflare's maintained
//! implementation; nothing cryptographic is written here. This module is the I/O around it:
//!
//! - **one owner per peer**: a peer (a remote node, named by its public key) has one session
//!   state, so exactly one worker owns its [`Tunn`] (`peer id % workers`). Every worker knows
//!   every peer (its key, allowed subnet, endpoint, owner) from its own [`PeerTable`]; a frame
//!   for a peer another worker owns is handed to that worker over the existing hand-off mesh,
//!   to the pseudo-ports [`SEAL_PORT`] (plaintext to encrypt) and [`OPEN_PORT`] (a datagram to
//!   decrypt);
//! - **send** (`worker.rs`, [`WgWorker::seal`]): the inner IPv4 packet becomes a transport
//!   message in UDP from our listen port to the peer's PublicIP and port; without a session
//!   the packet is dropped (never sent in clear) and its frame carries a handshake initiation
//!   instead;
//! - **receive** ([`WgWorker::open`]): UDP to our listen port is parsed, its peer found (the
//!   receiver index of a response, cookie or transport message names the peer's slot; an
//!   initiation's sender is found by its static key, after the node-wide rate limiter checked
//!   its MACs), decrypted by the owner and accepted only when the inner source lies in the
//!   peer's subnet (its allowed IPs); handshake answers go back to the sender in the same frame;
//! - **timers** ([`WgWorker::tick`], about every [`TICK`]): retransmitted initiations, rekeys,
//!   keepalives of the peers a worker owns, in frames of its own pool;
//! - **peers** (`peers.rs`): the route programmer, on the control thread, makes each peer's
//!   `Tunn` and sends it with the peer's description to the workers through a bounded
//!   lock-free queue each ([`PeerInbox`]), drained between batches; a retired `Tunn` goes back
//!   the same way to be freed on the control thread.
//!
//! Every bad datagram is a named drop (`wg_malformed`, `wg_unknown_peer`, `wg_bad_mac`,
//! `wg_under_load`, `wg_handshake_failed`, `wg_decrypt_failed`, `wg_replay`,
//! `wg_disallowed_source`), never a panic. The packet path allocates nothing and logs nothing;
//! boringtun's transport path takes no lock other than its per-session replay-window mutex,
//! which only the owning worker ever touches (uncontended).

mod outer;
mod peers;
mod worker;

#[cfg(test)]
mod tests;

pub use boringtun::noise::Tunn;
pub use peers::{PeerInbox, PeerInfo, PeerTable, PeerUpdate, Session, WgControl, WgSettings};
pub use worker::{Opened, Sealed, WgWorker};

pub(crate) use outer::{Outer, udp_dst_port};

use std::time::Duration;

use crate::worker::PortId;

/// Bytes a WireGuard transport message adds to an inner IPv4 packet on the wire: outer IPv4
/// (20), UDP (8), the message header (16) and the AEAD tag (16).
pub const OVERHEAD: u16 = 60;

/// The most peers a node has (peer ids are below it).
pub const MAX_PEERS: usize = 4096;

/// How often a worker runs the timers of the peers it owns.
pub const TICK: Duration = Duration::from_millis(100);

/// Handshake messages per second the node answers before it asks initiators for cookies
/// (boringtun's device default).
pub const HANDSHAKE_RATE_LIMIT: u64 = 100;

/// The pseudo-port a plaintext frame for a peer is handed to its owner on (never a real port:
/// worker port ids are small).
pub const SEAL_PORT: PortId = PortId(u16::MAX - 1);

/// The pseudo-port a received datagram for a peer is handed to its owner on.
pub const OPEN_PORT: PortId = PortId(u16::MAX - 2);
