//! Readers look up continuously while the writer churns routes (first test) or next hops
//! (second test); every answer must be one the address had at some instant the lookup
//! overlapped, and every next hop a batch returns must resolve in that batch's snapshot.
//!
//! The writer's history is computed up front with the reference model: for every batch `k`,
//! the answer of every probe address after it (`after[k]`) and the set of answers the probe
//! has in the states *during* it (after each of its changes). A reader reads the version `v0`
//! before a lookup and `v1` after it; the lookup overlapped batches `v0 + 1 ..= v1 + 1` (the
//! one in progress when `v1` was read), so its answer must be `after[v0]` or in `during[k]`
//! for one of those. Small batches keep that window tight: an answer from a recycled tbl8
//! group refilled for another /24, a half-published group or a torn entry falls outside it.
//!
//! The history ends by removing every route, so the writer replays it cyclically for the whole
//! run (version `v` is history position `v mod len`). The tbl8 pool has exactly one group per
//! /24 in play, so once all were used every new group is a recycled one: the test exercises the
//! grace period on nearly every collapse.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use weft_engine::fib::sample::{SplitMix64, host_gw_next_hops};
use weft_engine::fib::{
    FibConfig, FibReader, FibVersion, FibWriter, Ipv4Prefix, NextHop, NextHopId, ReferenceFib, RouteChange,
};

const SLASH24S: u32 = 6;
const HOPS: u32 = 8;
const NONE: u8 = HOPS as u8; // answer code of "no route"
const LOW_BYTES: [u32; 8] = [1, 63, 64, 127, 128, 129, 201, 255];
const BATCHES: usize = 20_000;
/// How long the writer churns; `WEFT_FIB_STRESS_SECS` overrides it for a longer soak.
fn run_for() -> Duration {
    let secs = std::env::var("WEFT_FIB_STRESS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn code(answer: Option<NextHopId>) -> u8 {
    answer.map_or(NONE, |h| h.0 as u8)
}

fn base(i: u32) -> u32 {
    u32::from(Ipv4Addr::new(198, 19, i as u8, 0))
}

fn probes() -> Vec<u32> {
    (0..SLASH24S).flat_map(|i| LOW_BYTES.iter().map(move |&lo| base(i) | lo)).collect()
}

/// Overlapping prefixes from /16 to /32 around the probes.
fn pool() -> Vec<Ipv4Prefix> {
    let mut pool = vec![
        Ipv4Prefix::covering(base(0), 16),
        Ipv4Prefix::covering(base(0), 22),
        Ipv4Prefix::covering(base(4), 22),
    ];
    for i in 0..SLASH24S {
        let b = base(i);
        for (lo, len) in [(0, 24), (0, 25), (64, 26), (200, 30), (127, 32), (129, 32)] {
            pool.push(Ipv4Prefix::covering(b | lo, len));
        }
    }
    pool
}

struct History {
    batches: Vec<Vec<RouteChange>>,
    /// `after[k * probes + p]`: answer code of probe `p` after batch `k` (k = 0: empty FIB).
    after: Vec<u8>,
    /// `during[(k - 1) * probes + p]`: bitmask of answer codes of probe `p` after each change
    /// of batch `k`.
    during: Vec<u16>,
}

fn history(probes: &[u32], pool: &[Ipv4Prefix]) -> History {
    let mut rng = SplitMix64(0x5eed_f1b0);
    let mut model = ReferenceFib::new();
    let mut current: Vec<u8> = vec![NONE; probes.len()];
    let mut h = History {
        batches: Vec::with_capacity(BATCHES),
        after: current.clone(),
        during: Vec::with_capacity(BATCHES * probes.len()),
    };
    for k in 0..=BATCHES {
        let batch: Vec<RouteChange> = if k == BATCHES {
            // Back to the empty FIB, so that the history can be replayed.
            pool.iter().map(|&p| RouteChange::Remove(p)).collect()
        } else {
            (0..1 + rng.below(3) as usize)
                .map(|_| {
                    let prefix = pool[rng.below(pool.len() as u32) as usize];
                    if rng.below(2) == 0 {
                        RouteChange::Upsert(prefix, NextHopId(rng.below(HOPS)))
                    } else {
                        RouteChange::Remove(prefix)
                    }
                })
                .collect()
        };
        let mut during = vec![0u16; probes.len()];
        for change in &batch {
            model.apply_one(change);
            let (RouteChange::Upsert(prefix, _) | RouteChange::Remove(prefix)) = *change;
            for (i, &addr) in probes.iter().enumerate() {
                if prefix.contains(addr) {
                    current[i] = code(model.lookup(addr));
                }
                during[i] |= 1 << current[i];
            }
        }
        h.after.extend_from_slice(&current);
        h.during.extend_from_slice(&during);
        h.batches.push(batch);
    }
    assert_eq!(current, vec![NONE; probes.len()], "the history must end empty");
    h
}

impl History {
    /// Answer codes probe `p` may have in a lookup made between versions `v0` and `v1`.
    fn allowed(&self, p: usize, v0: u64, v1: u64, probes: usize) -> u16 {
        let len = self.batches.len() as u64;
        let mut mask = 1u16 << self.after[(v0 % len) as usize * probes + p];
        for k in v0 + 1..=v1 + 1 {
            mask |= self.during[((k - 1) % len) as usize * probes + p];
        }
        mask
    }

    fn after(&self, version: u64, p: usize, probes: usize) -> u8 {
        self.after[(version % self.batches.len() as u64) as usize * probes + p]
    }
}

#[derive(Default)]
struct Tally {
    checks: AtomicU64,
    violations: AtomicU64,
}

fn check(
    h: &History,
    tally: &Tally,
    probes: &[u32],
    p: usize,
    (v0, v1): (FibVersion, FibVersion),
    answer: Option<NextHopId>,
) {
    tally.checks.fetch_add(1, Ordering::Relaxed);
    let allowed = h.allowed(p, v0.0, v1.0, probes.len());
    if allowed & (1 << code(answer)) == 0 && tally.violations.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!(
            "VIOLATION {}: got {answer:?} between versions {} and {}; allowed mask {allowed:#b}",
            Ipv4Addr::from(probes[p]),
            v0.0,
            v1.0
        );
    }
}

fn single_reader(reader: FibReader, h: Arc<History>, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let probes = probes();
    let mut p = 0;
    while !stop.load(Ordering::Relaxed) {
        let v0 = reader.version();
        let answer = reader.lookup(probes[p]);
        let v1 = reader.version();
        check(&h, &tally, &probes, p, (v0, v1), answer);
        p = (p + 7) % probes.len();
    }
}

fn batch_reader(reader: FibReader, h: Arc<History>, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let probes = probes();
    let mut out = vec![None; probes.len()];
    while !stop.load(Ordering::Relaxed) {
        let v0 = reader.version();
        let hops = reader.resolve_batch(&probes, &mut out);
        let v1 = reader.version();
        for (p, &answer) in out.iter().enumerate() {
            check(&h, &tally, &probes, p, (v0, v1), answer);
            if let Some(id) = answer {
                assert!(hops.get(id).is_some(), "id {id:?} missing from its batch's snapshot");
            }
        }
    }
}

#[test]
fn concurrent_lookups_only_ever_return_an_answer_the_address_had_meanwhile() {
    let probes = probes();
    let h = Arc::new(history(&probes, &pool()));
    let mut fib = FibWriter::new(FibConfig { tbl8_groups: SLASH24S, ..FibConfig::default() });
    fib.set_next_hops(&host_gw_next_hops(HOPS)).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let readers = [
        thread::spawn({
            let (r, h, s, t) = (fib.reader(), h.clone(), stop.clone(), tally.clone());
            move || single_reader(r, h, s, t)
        }),
        thread::spawn({
            let (r, h, s, t) = (fib.reader(), h.clone(), stop.clone(), tally.clone());
            move || batch_reader(r, h, s, t)
        }),
    ];

    let run_for = run_for();
    let start = Instant::now();
    let mut applied = 0u64;
    for batch in h.batches.iter().cycle() {
        if start.elapsed() > run_for {
            break;
        }
        applied += 1;
        assert_eq!(fib.apply(batch).unwrap(), FibVersion(applied));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader thread panicked");
    }

    let checks = tally.checks.load(Ordering::Relaxed);
    let violations = tally.violations.load(Ordering::Relaxed);
    let stats = fib.stats();
    eprintln!(
        "stress: {applied} batches in {:?}, {checks} checked lookups, {} grace periods",
        start.elapsed(),
        stats.grace_periods
    );
    assert_eq!(violations, 0, "{violations} of {checks} lookups returned an impossible answer");
    assert!(applied >= 1_000, "the writer applied only {applied} batches");
    assert!(checks >= 10_000, "the readers checked only {checks} lookups");
    assert!(stats.grace_periods >= 10, "tbl8 groups were recycled only {} times", stats.grace_periods);

    // Quiescent again: the FIB answers exactly the model's final state.
    let reader = fib.reader();
    for (p, &addr) in probes.iter().enumerate() {
        assert_eq!(code(reader.lookup(addr)), h.after(applied, p, probes.len()));
    }
}

#[test]
fn next_hops_removed_under_readers_never_vanish_from_a_batch_snapshot() {
    // R routes; each step repoints one route to a fresh next hop and removes the one it used.
    // Id `i % K` (K = 2R) is always free at step i: its last user was repointed R steps ago.
    const R: u32 = 8;
    const K: u32 = 2 * R;
    let hop = |i: u32| NextHop::HostGw { node: Ipv4Addr::new(198, 18, 1, i as u8) };
    let route = |r: u32| Ipv4Prefix::covering(base(0) + (r << 8), 24);
    let mut fib = FibWriter::new(FibConfig::default());
    let initial: Vec<_> = (0..R).map(|r| (NextHopId(r), hop(r))).collect();
    fib.set_next_hops(&initial).unwrap();
    let routes: Vec<_> = (0..R).map(|r| RouteChange::Upsert(route(r), NextHopId(r))).collect();
    fib.apply(&routes).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicU64::new(0));
    let reader = thread::spawn({
        let (reader, stop, checked) = (fib.reader(), stop.clone(), checked.clone());
        move || {
            let addrs: Vec<u32> = (0..R).map(|r| route(r).bits() | 7).collect();
            let mut out = vec![None; addrs.len()];
            while !stop.load(Ordering::Relaxed) {
                let hops = reader.resolve_batch(&addrs, &mut out);
                for (&addr, answer) in addrs.iter().zip(&out) {
                    let id = answer.unwrap_or_else(|| panic!("{} lost its route", Ipv4Addr::from(addr)));
                    assert!(hops.get(id).is_some(), "next hop {} vanished from the batch's snapshot", id.0);
                }
                checked.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let start = Instant::now();
    let mut step = R;
    while start.elapsed() < Duration::from_secs(1) {
        let (r, id) = (step % R, NextHopId(step % K));
        let old = fib.route(route(r)).unwrap();
        fib.set_next_hops(&[(id, hop(id.0))]).unwrap();
        fib.apply(&[RouteChange::Upsert(route(r), id)]).unwrap();
        fib.remove_next_hop(old).unwrap();
        step += 1;
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader saw a route or next hop vanish");
    let checked = checked.load(Ordering::Relaxed);
    eprintln!("next-hop churn: {} steps, {checked} batches checked", step - R);
    assert!(step - R >= 1_000, "the writer made only {} steps", step - R);
    assert!(checked >= 1_000, "the reader checked only {checked} batches");
    assert_eq!(fib.next_hops().len(), R as usize, "only the next hops in use remain");
}
