//! ICMP errors, rate-limited per worker: time exceeded (TTL expired) and fragmentation needed
//! (DF set, too big for the uplink after encap). The error is written in place over the
//! offending frame (`IcmpError::emit_in_place`) and sent back out of the port it arrived on, from
//! the pods' gateway address. A token bucket bounds the rate; it reads the clock at most once
//! per batch, and only when the batch wants to send an error (a vDSO read, no syscall).

use std::net::Ipv4Addr;
use std::time::Instant;

use weft_encap::MacAddr;
use weft_encap::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr, HEADER_LEN};
use weft_encap::wire::icmpv4::IcmpError;

use crate::port::FrameMut;

/// The ICMP error budget of one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpRateLimit {
    /// Errors per second, sustained (0: never send).
    pub per_second: u32,
    /// Errors that may be sent back to back.
    pub burst: u32,
}

impl Default for IcmpRateLimit {
    /// 1000/s with bursts of 50 per worker (Linux: `icmp_ratelimit` 1000 ms / `icmp_msgs_per_sec` 1000).
    fn default() -> Self {
        IcmpRateLimit { per_second: 1000, burst: 50 }
    }
}

/// A token bucket over [`IcmpRateLimit`].
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    limit: IcmpRateLimit,
    tokens: u32,
    last: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(limit: IcmpRateLimit) -> Self {
        TokenBucket { limit, tokens: limit.burst, last: None }
    }

    /// Takes one token at time `now`, if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let rate = u128::from(self.limit.per_second);
        if rate == 0 {
            return false;
        }
        let last = *self.last.get_or_insert(now);
        let elapsed = now.saturating_duration_since(last).as_nanos();
        let add = elapsed * rate / 1_000_000_000;
        if add > 0 {
            self.tokens = (u128::from(self.tokens) + add).min(u128::from(self.limit.burst)) as u32;
            self.last = Some(now);
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

/// Rewrites `f` (Ethernet + the offending IPv4 packet) into `error` from `from` to the
/// packet's source, with Ethernet addresses `our_mac` -> the frame's source. False (the frame
/// is then garbage to drop) when ICMP forbids an error about this packet or it does not fit.
pub(crate) fn emit(f: &mut FrameMut<'_>, error: IcmpError, from: Ipv4Addr, our_mac: MacAddr) -> bool {
    let off = f.offset();
    let d = f.data();
    let peer = EthernetFrame::new_unchecked(d).src_addr();
    let Ok(ip_len) = error.emit_in_place(&mut f.chunk_mut()[off..], HEADER_LEN, from, 64) else {
        return false;
    };
    if !f.set_bounds(off, HEADER_LEN + ip_len) {
        return false;
    }
    EthernetRepr { src: our_mac, dst: peer, ethertype: EtherType::IPV4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut f.data_mut()[..HEADER_LEN]));
    true
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_sustained_rate() {
        let mut b = TokenBucket::new(IcmpRateLimit { per_second: 10, burst: 3 });
        let t0 = Instant::now();
        assert!((0..3).all(|_| b.take(t0)));
        assert!(!b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(50)), "half a token is not a token");
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(100)));
        assert!((0..3).all(|_| b.take(t0 + Duration::from_secs(10))), "refill is capped at the burst");
        assert!(!b.take(t0 + Duration::from_secs(10)));
        assert!(!TokenBucket::new(IcmpRateLimit { per_second: 0, burst: 5 }).take(t0));
    }
}
