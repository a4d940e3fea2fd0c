//! One worker's WireGuard side: seal (encrypt) and open (decrypt) frames, run the timers of
//! the peers it owns. Nothing here allocates, locks (see the module docs for boringtun's
//! replay-window mutex) or logs.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, TunnResult};
use weft_encap::MacAddr;

use super::outer::{self, DatagramError, Outer};
use super::peers::{PeerTable, WgControl, WgNode};
use crate::fib::next_hop::WgNextHop;
use crate::port::{FRAME_SIZE, FrameMut};
use crate::worker::{DropReason, WorkerId};

/// Message types (little-endian u32 at the start of every message) and sizes.
const INITIATION: u32 = 1;
const RESPONSE: u32 = 2;
const COOKIE: u32 = 3;
const TRANSPORT: u32 = 4;
const INITIATION_LEN: usize = 148;
const RESPONSE_LEN: usize = 92;
const COOKIE_LEN: usize = 64;
/// Transport header (type, receiver, counter) and AEAD tag.
const TRANSPORT_MIN: usize = 32;
const TRANSPORT_HEADER: usize = 16;

/// The largest message a worker writes: a transport message of a frame-sized packet.
const SCRATCH: usize = FRAME_SIZE;

/// What [`WgWorker::open`] made of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The frame is now Ethernet + the decrypted IPv4 packet, its source checked: route it.
    Plain,
    /// The frame is now a handshake or cookie answer to the sender: send it on the uplink.
    Reply,
    /// The peer's session belongs to this worker: hand the frame over unchanged.
    Owner(WorkerId),
    /// A keepalive or a cookie, taken by the protocol.
    Consumed,
}

/// What [`WgWorker::seal`] made of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// A transport message carrying the packet.
    Transport,
    /// No session yet: the packet was dropped and the frame carries a handshake initiation.
    Initiation,
}

/// One worker's WireGuard state (see the module docs).
pub struct WgWorker {
    me: WorkerId,
    node: Arc<WgNode>,
    peers: PeerTable,
    scratch: Box<[u8; SCRATCH]>,
    cookie: [u8; COOKIE_LEN],
}

impl std::fmt::Debug for WgWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgWorker").field("me", &self.me).field("owned", &self.peers.owned.len()).finish()
    }
}

fn drop_of(e: &WireGuardError) -> DropReason {
    use WireGuardError::*;
    match e {
        InvalidMac => DropReason::WgBadMac,
        UnderLoad => DropReason::WgUnderLoad,
        DuplicateCounter | InvalidCounter => DropReason::WgReplay,
        InvalidAeadTag
        | NoCurrentSession
        | WrongIndex
        | ConnectionExpired
        | LockFailed
        | DestinationBufferTooSmall => DropReason::WgDecryptFailed,
        WrongKey | InvalidTai64nTimestamp | WrongTai64nTimestamp | UnexpectedPacket | WrongPacketType => {
            DropReason::WgHandshakeFailed
        }
        IncorrectPacketLength | InvalidPacket => DropReason::WgMalformed,
    }
}

impl WgWorker {
    /// Worker `me`'s side of `control`'s peers.
    pub fn new(control: &WgControl, me: WorkerId) -> Option<Self> {
        Some(WgWorker {
            me,
            node: control.node().clone(),
            peers: control.table(me)?,
            scratch: Box::new([0; SCRATCH]),
            cookie: [0; COOKIE_LEN],
        })
    }

    /// The UDP port we listen on.
    pub fn listen_port(&self) -> u16 {
        self.node.listen_port
    }

    /// Applies peer updates from the control side, if any (between batches).
    #[inline]
    pub fn refresh(&mut self) {
        if self.peers.pending() {
            self.peers.drain(self.me);
        }
    }

    /// Encrypts the Ethernet + IPv4 frame `f` for the peer of `hop` (owned by this worker) into
    /// a transport message from `src` (our uplink MAC, PublicIP) to the peer's endpoint, in
    /// place; or, without a session, replaces it by a handshake initiation (the packet is
    /// dropped, never sent in clear). The frame needs 44 bytes of headroom.
    pub fn seal(
        &mut self,
        hop: &WgNextHop,
        f: &mut FrameMut<'_>,
        src: (MacAddr, Ipv4Addr),
        ident: u16,
    ) -> Result<Sealed, DropReason> {
        let slot = self.peers.slots.get_mut(usize::from(hop.peer)).ok_or(DropReason::WgUnknownPeer)?;
        let (Some(info), Some(tunn)) = (slot.info, slot.tunn.as_mut().map(|s| &mut *s.0)) else {
            return Err(DropReason::WgUnknownPeer);
        };
        let (off, len) = (f.offset(), f.len());
        let ip_len = len.checked_sub(14).ok_or(DropReason::EncapFailed)?;
        // The message replaces the inner Ethernet header and starts 2 bytes before it; the
        // outer headers go in front of that.
        let msg_at = (off + 14).checked_sub(TRANSPORT_HEADER).ok_or(DropReason::EncapFailed)?;
        let outer_at = msg_at.checked_sub(outer::LEN).ok_or(DropReason::EncapFailed)?;
        self.scratch[..ip_len].copy_from_slice(&f.data()[14..]);
        let chunk = f.chunk_mut();
        let room = chunk.len() - msg_at;
        if room < (ip_len + TRANSPORT_MIN).max(INITIATION_LEN) {
            return Err(DropReason::EncapFailed);
        }
        let (n, sealed) = if tunn.time_since_last_handshake().is_none() {
            match tunn.format_handshake_initiation(&mut chunk[msg_at..], false) {
                TunnResult::WriteToNetwork(m) => (m.len(), Sealed::Initiation),
                _ => return Err(DropReason::WgNoSession),
            }
        } else {
            match tunn.encapsulate(&self.scratch[..ip_len], &mut chunk[msg_at..]) {
                TunnResult::WriteToNetwork(m) => (m.len(), Sealed::Transport),
                _ => return Err(DropReason::WgNoSession),
            }
        };
        let o = Outer {
            src_mac: src.0,
            dst_mac: hop.dst_mac,
            src_ip: src.1,
            dst_ip: info.endpoint.0,
            src_port: self.node.listen_port,
            dst_port: info.endpoint.1,
        };
        if !o.write(&mut chunk[outer_at..], n, ident) || !f.set_bounds(outer_at, outer::LEN + n) {
            return Err(DropReason::EncapFailed);
        }
        Ok(sealed)
    }

    /// Takes the WireGuard datagram `f` (UDP to our listen port): finds its peer and, when this
    /// worker owns the peer, runs it through the peer's session (see [`Opened`]).
    pub fn open(&mut self, f: &mut FrameMut<'_>) -> Result<Opened, DropReason> {
        let d = outer::datagram(f.data()).map_err(|e| match e {
            DatagramError::Malformed => DropReason::WgMalformed,
            DatagramError::Fragment => DropReason::TunnelFragment,
        })?;
        let payload = &f.data()[d.payload_at..d.payload_at + d.payload_len];
        let kind = match payload.get(..4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => return Err(DropReason::WgMalformed),
        };
        let id = match (kind, payload.len()) {
            (INITIATION, INITIATION_LEN) => match self.identify(d.src_ip, payload)? {
                Ok(id) => id,
                Err(cookie_len) => {
                    // Under load: the answer is a cookie reply to the sender.
                    let at = d.payload_at;
                    let (cookie, _) = self.cookie.split_at(cookie_len);
                    return reply(f, &d, at, cookie.len(), |dst| dst[..cookie.len()].copy_from_slice(cookie));
                }
            },
            // A response carries its sender's index first, then ours.
            (RESPONSE, RESPONSE_LEN) => self.receiver(payload, 8)?,
            (COOKIE, COOKIE_LEN) => self.receiver(payload, 4)?,
            (TRANSPORT, n) if n >= TRANSPORT_MIN => self.receiver(payload, 4)?,
            _ => return Err(DropReason::WgMalformed),
        };
        let slot = self.peers.slots.get_mut(usize::from(id)).ok_or(DropReason::WgUnknownPeer)?;
        let info = slot.info.ok_or(DropReason::WgUnknownPeer)?;
        if info.owner != self.me {
            return Ok(Opened::Owner(info.owner));
        }
        let tunn = slot.tunn.as_mut().map(|s| &mut *s.0).ok_or(DropReason::WgUnknownPeer)?;
        let src = Some(IpAddr::V4(d.src_ip));
        match tunn.decapsulate(src, payload, &mut self.scratch[..]) {
            TunnResult::WriteToNetwork(m) => {
                let n = m.len();
                let m: &[u8] = m;
                reply(f, &d, d.payload_at, n, |dst| dst[..n].copy_from_slice(m))
            }
            TunnResult::WriteToTunnelV4(plain, from) => {
                if !info.allowed.contains(u32::from(from)) {
                    return Err(DropReason::WgDisallowedSource);
                }
                let n = plain.len();
                let off = f.offset();
                let chunk = f.chunk_mut();
                let Some(frame) = chunk.get_mut(off..off + 14 + n) else {
                    return Err(DropReason::Truncated);
                };
                frame[..12].fill(0);
                frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
                frame[14..].copy_from_slice(plain);
                if !f.set_bounds(off, 14 + n) {
                    return Err(DropReason::Truncated);
                }
                Ok(Opened::Plain)
            }
            TunnResult::WriteToTunnelV6(..) => Err(DropReason::WgDisallowedSource),
            TunnResult::Done => Ok(Opened::Consumed),
            TunnResult::Err(e) => Err(drop_of(&e)),
        }
    }

    /// The slot a response, cookie or transport message names by its receiver index (the
    /// little-endian u32 at `at`; the caller checked the message's length).
    fn receiver(&self, payload: &[u8], at: usize) -> Result<u16, DropReason> {
        let b = &payload[at..at + 4];
        let idx = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) >> 8;
        let id = (idx & 0xfff) as u16;
        match self.peers.slots.get(usize::from(id)).and_then(|s| s.info) {
            Some(info) if info.index == idx => Ok(id),
            _ => Err(DropReason::WgUnknownPeer),
        }
    }

    /// The slot of an initiation's sender: its MACs checked by the node's limiter (which may
    /// answer with a cookie instead: `Ok(Err(len))`, the reply in `self.cookie`), then its
    /// static key decrypted and looked up.
    fn identify(&mut self, src: Ipv4Addr, payload: &[u8]) -> Result<Result<u16, usize>, DropReason> {
        let packet = match self.node.limiter.verify_packet(Some(IpAddr::V4(src)), payload, &mut self.cookie) {
            Ok(p) => p,
            Err(TunnResult::WriteToNetwork(c)) => return Ok(Err(c.len())),
            Err(TunnResult::Err(e)) => return Err(drop_of(&e)),
            Err(_) => return Err(DropReason::WgMalformed),
        };
        let Packet::HandshakeInit(init) = packet else { return Err(DropReason::WgMalformed) };
        let half =
            parse_handshake_anon(&self.node.private, &self.node.public, &init).map_err(|e| drop_of(&e))?;
        let id = self
            .peers
            .slots
            .iter()
            .position(|s| s.info.is_some_and(|i| i.public == half.peer_static_public))
            .ok_or(DropReason::WgUnknownPeer)?;
        Ok(Ok(id as u16))
    }

    /// Runs the timers of the peers this worker owns: each may want one message sent
    /// (initiation retry, rekey, keepalive), written with `outer_for(peer's subnet)` (the
    /// outer addresses, `None` while its route or MAC is unknown) and given to `send`. Returns
    /// the initiations and the other messages sent.
    pub(crate) fn tick(
        &mut self,
        mut outer_for: impl FnMut(&super::PeerInfo) -> Option<Outer>,
        mut send: impl FnMut(&[u8]) -> bool,
        ident: &mut u16,
    ) -> (usize, usize) {
        self.refresh();
        self.node.limiter.reset_count();
        let mut sent = (0, 0);
        for k in 0..self.peers.owned.len() {
            let id = usize::from(self.peers.owned[k]);
            let slot = &mut self.peers.slots[id];
            let (Some(info), Some(tunn)) = (slot.info, slot.tunn.as_mut().map(|s| &mut *s.0)) else {
                continue;
            };
            let Some(o) = outer_for(&info) else { continue };
            let (_, body) = self.scratch.split_at_mut(outer::LEN);
            let first =
                std::mem::take(&mut slot.fresh).then(|| tunn.format_handshake_initiation(body, false));
            let n = match first {
                Some(TunnResult::WriteToNetwork(m)) => m.len(),
                _ => match tunn.update_timers(body) {
                    TunnResult::WriteToNetwork(m) => m.len(),
                    _ => match tunn.decapsulate(None, &[], body) {
                        TunnResult::WriteToNetwork(m) => m.len(),
                        _ => continue,
                    },
                },
            };
            *ident = ident.wrapping_add(1);
            let initiation = self.scratch[outer::LEN] == INITIATION as u8;
            if o.write(&mut self.scratch[..outer::LEN], n, *ident) && send(&self.scratch[..outer::LEN + n]) {
                if initiation {
                    sent.0 += 1;
                } else {
                    sent.1 += 1;
                }
            }
        }
        sent
    }
}

/// Rewrites `f` into a UDP reply to the sender of `d` whose `n`-byte message `fill` writes,
/// at the same place as the received payload.
fn reply(
    f: &mut FrameMut<'_>,
    d: &outer::Datagram,
    payload_at: usize,
    n: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Result<Opened, DropReason> {
    let off = f.offset();
    let at = (off + payload_at).checked_sub(outer::LEN).ok_or(DropReason::Truncated)?;
    let chunk = f.chunk_mut();
    if chunk.len() < at + outer::LEN + n {
        return Err(DropReason::Truncated);
    }
    fill(&mut chunk[at + outer::LEN..]);
    let o = Outer {
        src_mac: d.dst_mac,
        dst_mac: d.src_mac,
        src_ip: d.dst_ip,
        dst_ip: d.src_ip,
        src_port: d.dst_port,
        dst_port: d.src_port,
    };
    if !o.write(&mut chunk[at..], n, 0) || !f.set_bounds(at, outer::LEN + n) {
        return Err(DropReason::Truncated);
    }
    Ok(Opened::Reply)
}
