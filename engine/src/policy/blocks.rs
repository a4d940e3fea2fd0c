//! A direction's `ipBlock`s compiled for lookup by hashing (tuple-space search): the cost of a
//! lookup grows with the number of distinct prefix lengths (at most 33), not with the blocks.
//!
//! Every block's `cidr` and every one of its `except` prefixes is an entry of one hash table
//! keyed by (network, length). An address's longest match among the entries decides: any entry
//! containing the address contains that longest match `P` too (prefixes that share an address
//! nest), so a block covers the address exactly when its `cidr` contains `P` and none of its
//! `except`s does. Each entry therefore carries, computed once when the set is built, the union
//! of the ports of the blocks that cover the addresses it is the longest match of. A lookup
//! probes the table at each distinct length, longest first, and stops at the first entry found.

use std::collections::HashMap;

use super::rules::Ports;
use crate::fib::Ipv4Prefix;

/// An `ipBlock`: `cidr` minus its `except` prefixes, with the ports its rule allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Block {
    pub cidr: Ipv4Prefix,
    pub except: Box<[Ipv4Prefix]>,
    pub ports: Ports,
}

/// One entry of the table: a prefix and the index of its ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Entry {
    net: u32,
    /// Prefix length + 1; 0: an empty slot.
    len1: u8,
    ports: u32,
}

#[inline]
fn hash(net: u32, len: u8) -> usize {
    let k = u64::from(net) << 8 | u64::from(len);
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
}

#[inline]
fn mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// Whether `outer` contains `inner` (every address of `inner` is in `outer`).
fn covers(outer: Ipv4Prefix, inner: Ipv4Prefix) -> bool {
    outer.len() <= inner.len() && outer.contains(inner.bits())
}

/// The compiled blocks (see the module docs). Immutable once built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct BlockSet {
    /// The distinct entry lengths, longest first.
    lens: Box<[u8]>,
    /// Open addressing, a power of two long, at most half full.
    slots: Box<[Entry]>,
    ports: Box<[Ports]>,
}

impl BlockSet {
    /// Compiles `blocks` (their union).
    pub fn build(blocks: &[Block]) -> Self {
        if blocks.is_empty() {
            return BlockSet::default();
        }
        let mut by_cidr: HashMap<Ipv4Prefix, Vec<&Block>> = HashMap::new();
        let mut prefixes: Vec<Ipv4Prefix> = Vec::new();
        for b in blocks {
            by_cidr.entry(b.cidr).or_default().push(b);
            prefixes.push(b.cidr);
            prefixes.extend(b.except.iter().copied());
        }
        prefixes.sort_unstable();
        prefixes.dedup();
        let mut lens: Vec<u8> = prefixes.iter().map(Ipv4Prefix::len).collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        lens.dedup();

        let cap = (prefixes.len() * 2).max(4).next_power_of_two();
        let mut slots = vec![Entry::default(); cap].into_boxed_slice();
        let mut ports = Vec::with_capacity(prefixes.len());
        for &p in &prefixes {
            // The blocks covering the addresses whose longest match is `p`: those whose cidr is
            // `p` or one of its ancestors, and none of whose excepts contains `p`.
            let mut allowed = Ports::None;
            for &l in lens.iter().filter(|&&l| l <= p.len()) {
                let Some(bs) = by_cidr.get(&Ipv4Prefix::covering(p.bits(), l)) else { continue };
                for b in bs.iter().filter(|b| !b.except.iter().any(|&e| covers(e, p))) {
                    allowed = allowed.union(&b.ports);
                }
            }
            let mut i = hash(p.bits(), p.len()) & (cap - 1);
            while slots[i].len1 != 0 {
                i = (i + 1) & (cap - 1);
            }
            slots[i] = Entry { net: p.bits(), len1: p.len() + 1, ports: ports.len() as u32 };
            ports.push(allowed);
        }
        BlockSet { lens: lens.into(), slots, ports: ports.into() }
    }

    /// What the blocks allow `addr`: the ports of its longest-matching entry, `None` outside
    /// every block.
    #[inline]
    pub fn get(&self, addr: u32) -> Option<&Ports> {
        let m = self.slots.len().wrapping_sub(1);
        for &len in self.lens.iter() {
            let net = addr & mask(len);
            let mut i = hash(net, len) & m;
            loop {
                let e = self.slots.get(i)?;
                if e.len1 == 0 {
                    break;
                }
                if e.net == net && e.len1 == len + 1 {
                    return self.ports.get(e.ports as usize);
                }
                i = (i + 1) & m;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::{PortRange, proto};
    use super::*;
    use std::net::Ipv4Addr;

    fn p(a: [u8; 4], len: u8) -> Ipv4Prefix {
        Ipv4Prefix::new(Ipv4Addr::from(a), len).unwrap()
    }

    fn ip(a: [u8; 4]) -> u32 {
        u32::from(Ipv4Addr::from(a))
    }

    fn tcp(port: u16) -> Ports {
        Ports::ranges([PortRange::one(proto::TCP, port)])
    }

    /// The blocks' meaning, walked linearly: the reference the hashed lookup must agree with.
    fn linear(blocks: &[Block], addr: u32, port: u16) -> bool {
        blocks.iter().any(|b| {
            b.cidr.contains(addr)
                && !b.except.iter().any(|e| e.contains(addr))
                && b.ports.matches(proto::TCP, port)
        })
    }

    fn block(cidr: Ipv4Prefix, except: &[Ipv4Prefix], ports: Ports) -> Block {
        Block { cidr, except: except.into(), ports }
    }

    #[test]
    fn an_except_carves_a_hole_that_another_block_may_fill() {
        let blocks = [
            block(p([198, 19, 0, 0], 16), &[p([198, 19, 2, 0], 24)], tcp(80)),
            block(p([198, 19, 2, 0], 25), &[], tcp(81)),
        ];
        let s = BlockSet::build(&blocks);
        let allows = |a, port| s.get(ip(a)).is_some_and(|p| p.matches(proto::TCP, port));
        assert!(allows([198, 19, 1, 9], 80));
        assert!(!allows([198, 19, 2, 9], 80), "excepted");
        assert!(allows([198, 19, 2, 9], 81), "the other block");
        assert!(!allows([198, 19, 2, 200], 81) && !allows([198, 19, 2, 200], 80), "in neither");
        assert!(s.get(ip([198, 18, 0, 1])).is_none());
    }

    #[test]
    fn zero_networks_and_the_default_prefix_are_entries_like_any_other() {
        let blocks = [
            block(Ipv4Prefix::DEFAULT, &[p([0, 0, 0, 0], 8)], tcp(1)),
            block(p([0, 0, 0, 0], 1), &[], tcp(2)),
        ];
        let s = BlockSet::build(&blocks);
        let allows = |a, port| s.get(ip(a)).is_some_and(|p| p.matches(proto::TCP, port));
        assert!(allows([200, 1, 1, 1], 1) && !allows([200, 1, 1, 1], 2));
        assert!(allows([10, 1, 1, 1], 1) && allows([10, 1, 1, 1], 2));
        assert!(!allows([0, 1, 1, 1], 1) && allows([0, 1, 1, 1], 2));
    }

    #[test]
    fn the_hashed_lookup_agrees_with_a_linear_walk() {
        let mut rng = crate::fib::sample::SplitMix64(7);
        let mut blocks = Vec::new();
        for _ in 0..300 {
            let len = 8 + rng.below(25) as u8;
            let cidr = Ipv4Prefix::covering(0xc612_0000 | rng.below(1 << 17), len.max(15));
            let except: Vec<Ipv4Prefix> = (0..rng.below(3))
                .map(|_| {
                    Ipv4Prefix::covering(cidr.bits() | rng.below(1 << 8), cidr.len() + 1 + rng.below(8) as u8)
                })
                .collect();
            blocks.push(block(cidr, &except, tcp(1 + rng.below(4) as u16)));
        }
        let s = BlockSet::build(&blocks);
        for _ in 0..20_000 {
            let addr = 0xc612_0000 | rng.below(1 << 17);
            let port = 1 + rng.below(4) as u16;
            let hashed = s.get(addr).is_some_and(|p| p.matches(proto::TCP, port));
            assert_eq!(hashed, linear(&blocks, addr, port), "{} port {port}", Ipv4Addr::from(addr));
        }
    }
}
