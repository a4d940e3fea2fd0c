//! The AF_PACKET (TPACKET_V3) fallback port: for machines or interfaces where
//! XDP is unavailable. Received frames are copied into the worker's pool (the
//! ring belongs to the socket, not to the UMEM); transmit is one non-blocking
//! `send` per frame, after which the frame goes straight back to the pool.

use super::afxdp::{Tpacket, TpacketGeometry};
use super::error::PortError;
use super::frame::{Frame, FramePool};
use super::{IoEvents, Port};

/// An AF_PACKET port on one interface.
#[derive(Debug)]
pub struct AfPacketPort {
    name: String,
    sock: Tpacket,
}

impl AfPacketPort {
    /// Opens a TPACKET_V3 socket on `ifname` (all protocols, our own
    /// transmissions not looped back).
    pub fn open(ifname: &str, geometry: TpacketGeometry) -> Result<Self, PortError> {
        Ok(AfPacketPort { name: format!("{ifname}/packet"), sock: Tpacket::open(ifname, geometry)? })
    }
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "af_packet tpacket_v3"
    }

    fn rx(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize, ev: &mut IoEvents) -> usize {
        let mut starved = false;
        let n = self.sock.recv(max, |bytes| match pool.copy_in(bytes) {
            Some(f) => {
                out.push(f);
                true
            }
            None => {
                starved = true;
                false
            }
        });
        if starved {
            ev.fill_starved += 1;
        }
        n
    }

    fn tx(&mut self, pool: &mut FramePool, frames: &mut Vec<Frame>, ev: &mut IoEvents) -> usize {
        let mut sent = 0;
        for f in frames.iter() {
            ev.wakeups += 1;
            match self.sock.send(pool.data(f)) {
                Ok(true) => sent += 1,
                Ok(false) => {
                    ev.tx_ring_full += 1;
                    break;
                }
                Err(_) => {
                    // Not retryable (interface down, frame too big): the frame is
                    // consumed and counted as an error, as a NIC would drop it.
                    ev.tx_errors += 1;
                    sent += 1;
                }
            }
        }
        for f in frames.drain(..sent) {
            pool.free(f);
        }
        sent
    }

    fn service(&mut self, _pool: &mut FramePool, _ev: &mut IoEvents) {}
}
