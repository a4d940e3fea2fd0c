//! Deterministic route and address generators shared by the FIB's tests and `weft-bench lpm`:
//! the same seed gives the same routes, so a failure or a benchmark run can be reproduced.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::next_hop::{NextHop, NextHopId};
use super::prefix::Ipv4Prefix;

/// splitmix64: a tiny seedable generator (not cryptographic).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 32 random bits (the high half, the better one).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A number in `0..n` (`n > 0`; the modulo bias is negligible for small `n`).
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next_u64() % u64::from(n.max(1))) as u32
    }
}

/// A prefix length from the benchmark's route mix: 85 % /24, 10 % /16../23, 5 % /25../32.
pub fn mixed_len(rng: &mut SplitMix64) -> u8 {
    match rng.below(100) {
        0..85 => 24,
        85..95 => 16 + rng.below(8) as u8,
        _ => 25 + rng.below(8) as u8,
    }
}

/// `n` distinct random prefixes of the mix, none of them in `avoid`.
pub fn mixed_prefixes(rng: &mut SplitMix64, n: usize, avoid: &HashSet<Ipv4Prefix>) -> Vec<Ipv4Prefix> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let p = Ipv4Prefix::covering(rng.next_u32(), mixed_len(rng));
        if !avoid.contains(&p) && seen.insert(p) {
            out.push(p);
        }
    }
    out
}

/// Next hops `0..n`, host-gw via underlay nodes 198.18.0.x.
pub fn host_gw_next_hops(n: u32) -> Vec<(NextHopId, NextHop)> {
    (0..n)
        .map(|i| {
            let node = Ipv4Addr::new(198, 18, 0, i as u8);
            (NextHopId(i), NextHop::HostGw { node })
        })
        .collect()
}
