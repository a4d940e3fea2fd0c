//! The FIB against the naive reference model, plus its error and accounting contracts.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use weft_engine::fib::sample::host_gw_next_hops;
use weft_engine::fib::{
    FibConfig, FibError, FibReader, FibVersion, FibWriter, Ipv4Prefix, NextHop, NextHopId, ReferenceFib,
    RouteChange,
};

const HOPS: u32 = 6;

fn small_config(groups: u32) -> FibConfig {
    FibConfig { tbl8_groups: groups, ..FibConfig::default() }
}

/// A writer with next hops `0..HOPS` published.
fn writer(groups: u32) -> FibWriter {
    let mut w = FibWriter::new(small_config(groups));
    w.set_next_hops(&host_gw_next_hops(HOPS)).unwrap();
    w
}

fn p(text: &str) -> Ipv4Prefix {
    text.parse().unwrap()
}

fn ip(text: &str) -> u32 {
    u32::from(text.parse::<Ipv4Addr>().unwrap())
}

/// Addresses worth probing for a route set: both ends of every prefix and their neighbours.
fn probes(model: &ReferenceFib, extra: &[u32]) -> Vec<u32> {
    let mut out = extra.to_vec();
    for (prefix, _) in model.routes() {
        let (first, last) = prefix.range();
        out.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1)]);
        out.push(first + (last - first) / 2);
    }
    out
}

fn assert_matches_model(reader: &FibReader, model: &ReferenceFib, extra: &[u32]) {
    let addrs = probes(model, extra);
    let mut batch = vec![None; addrs.len()];
    reader.lookup_batch(&addrs, &mut batch);
    for (&addr, &batched) in addrs.iter().zip(&batch) {
        let want = model.lookup(addr);
        assert_eq!(reader.lookup(addr), want, "lookup({})", Ipv4Addr::from(addr));
        assert_eq!(batched, want, "lookup_batch({})", Ipv4Addr::from(addr));
    }
}

// ---- generators ----

/// Prefixes packed into a few /16s so that they overlap: lengths across 0..=32, with the short
/// (expensive: a /0 paints 2^24 entries) ones rarer.
fn prefix() -> impl Strategy<Value = Ipv4Prefix> {
    let len = prop_oneof![1 => 0u8..=12, 4 => 13u8..=24, 4 => 25u8..=32];
    let addr = (
        prop::sample::select(vec![10u32, 198]),
        0u32..3,
        0u32..6,
        prop::sample::select(vec![0u32, 1, 64, 127, 128, 200, 255]),
    )
        .prop_map(|(a, b, c, d)| (a << 24) | (b << 16) | (c << 8) | d);
    (addr, len).prop_map(|(addr, len)| Ipv4Prefix::covering(addr, len))
}

fn change(pool: Vec<Ipv4Prefix>) -> impl Strategy<Value = RouteChange> {
    let n = pool.len();
    let upsert_pool = pool.clone();
    prop_oneof![
        3 => (0..n, 0..HOPS).prop_map(move |(i, h)| RouteChange::Upsert(upsert_pool[i], NextHopId(h))),
        2 => (0..n).prop_map(move |i| RouteChange::Remove(pool[i])),
    ]
}

fn batches() -> impl Strategy<Value = Vec<Vec<RouteChange>>> {
    prop::collection::vec(prefix(), 1..24)
        .prop_flat_map(|pool| prop::collection::vec(prop::collection::vec(change(pool), 1..12), 1..8))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn lookups_match_the_naive_reference_after_every_batch(
        batches in batches(),
        random in prop::collection::vec(any::<u32>(), 16),
    ) {
        let mut fib = writer(64);
        let reader = fib.reader();
        let mut model = ReferenceFib::new();
        for (i, batch) in batches.iter().enumerate() {
            let version = fib.apply(batch).unwrap();
            prop_assert_eq!(version, FibVersion(i as u64 + 1));
            model.apply(batch);
            prop_assert_eq!(fib.stats().prefixes, model.len());
            assert_matches_model(&reader, &model, &random);
        }
        // Removing everything leaves an empty table and no tbl8 group in use once recycled.
        let all: Vec<_> = model.routes().map(|(p, _)| RouteChange::Remove(p)).collect();
        fib.apply(&all).unwrap();
        for &addr in &probes(&model, &random) {
            prop_assert_eq!(reader.lookup(addr), None);
        }
        prop_assert_eq!(fib.stats().prefixes, 0);
    }
}

// ---- explicit cases ----

#[test]
fn removing_a_prefix_restores_the_covering_route() {
    let mut fib = writer(8);
    let r = fib.reader();
    fib.apply(&[
        RouteChange::Upsert(p("10.0.0.0/8"), NextHopId(1)),
        RouteChange::Upsert(p("10.244.0.0/16"), NextHopId(2)),
        RouteChange::Upsert(p("10.244.1.0/24"), NextHopId(3)),
        RouteChange::Upsert(p("10.244.1.128/25"), NextHopId(4)),
        RouteChange::Upsert(p("10.244.1.130/32"), NextHopId(5)),
    ])
    .unwrap();
    assert_eq!(r.lookup(ip("10.244.1.130")), Some(NextHopId(5)));
    for (remove, fallback) in [
        ("10.244.1.130/32", Some(4)),
        ("10.244.1.128/25", Some(3)),
        ("10.244.1.0/24", Some(2)),
        ("10.244.0.0/16", Some(1)),
        ("10.0.0.0/8", None),
    ] {
        fib.apply(&[RouteChange::Remove(p(remove))]).unwrap();
        assert_eq!(r.lookup(ip("10.244.1.130")), fallback.map(NextHopId), "after removing {remove}");
    }
}

#[test]
fn the_default_route_catches_what_no_longer_route_matches() {
    let mut fib = writer(8);
    let r = fib.reader();
    fib.apply(&[
        RouteChange::Upsert(Ipv4Prefix::DEFAULT, NextHopId(0)),
        RouteChange::Upsert(p("198.19.7.9/32"), NextHopId(1)),
    ])
    .unwrap();
    assert_eq!(r.lookup(0), Some(NextHopId(0)));
    assert_eq!(r.lookup(u32::MAX), Some(NextHopId(0)));
    assert_eq!(r.lookup(ip("198.19.7.9")), Some(NextHopId(1)));
    assert_eq!(r.lookup(ip("198.19.7.10")), Some(NextHopId(0)));
    // Replacing the default route's next hop reaches addresses inside the /32's group too.
    fib.apply(&[RouteChange::Upsert(Ipv4Prefix::DEFAULT, NextHopId(2))]).unwrap();
    assert_eq!(r.lookup(ip("198.19.7.10")), Some(NextHopId(2)));
    assert_eq!(r.lookup(ip("198.19.7.9")), Some(NextHopId(1)));
}

#[test]
fn tbl8_exhaustion_is_an_error_that_keeps_the_earlier_changes() {
    let mut fib = writer(2);
    let r = fib.reader();
    let err = fib
        .apply(&[
            RouteChange::Upsert(p("10.0.1.0/25"), NextHopId(1)),
            RouteChange::Upsert(p("10.0.2.0/26"), NextHopId(1)),
            RouteChange::Upsert(p("10.0.2.64/26"), NextHopId(2)),
            RouteChange::Upsert(p("10.0.3.0/25"), NextHopId(3)),
        ])
        .unwrap_err();
    assert_eq!(err, FibError::Tbl8Exhausted { prefix: p("10.0.3.0/25"), index: 3, capacity: 2 });
    assert!(err.to_string().contains("tbl8_groups"), "{err}");
    assert_eq!(fib.version(), FibVersion(1), "the three applied changes are published");
    assert_eq!(r.version(), FibVersion(1));
    assert_eq!(r.lookup(ip("10.0.2.65")), Some(NextHopId(2)));
    assert_eq!(r.lookup(ip("10.0.3.1")), None);
    assert_eq!(fib.route(p("10.0.3.0/25")), None);
    assert_eq!(fib.stats().prefixes, 3);
}

#[test]
fn a_collapsed_group_is_recycled_after_a_grace_period() {
    let mut fib = writer(1);
    let r = fib.reader();
    fib.apply(&[RouteChange::Upsert(p("10.0.1.0/25"), NextHopId(1))]).unwrap();
    fib.apply(&[RouteChange::Remove(p("10.0.1.0/25"))]).unwrap();
    assert_eq!(fib.stats().tbl8_groups_in_use, 1, "retired, not yet recycled");
    fib.apply(&[RouteChange::Upsert(p("10.0.2.0/25"), NextHopId(2))]).unwrap();
    assert_eq!(fib.stats().grace_periods, 1);
    assert_eq!(r.lookup(ip("10.0.2.1")), Some(NextHopId(2)));
    assert_eq!(r.lookup(ip("10.0.1.1")), None);
}

#[test]
fn memory_accounting_counts_tbl24_and_the_groups_in_use() {
    let mut fib = writer(16);
    let s = fib.stats();
    assert_eq!(s.memory.tables_allocated, (1 << 24) * 4 + 16 * 256 * 4);
    assert_eq!(s.memory.tables_in_use, (1 << 24) * 4);
    assert!(s.memory.writer >= (1 << 24) + 16 * 256, "depth shadows are counted");
    assert!(s.memory.next_hops > 0);
    fib.apply(&[
        RouteChange::Upsert(p("10.0.1.0/25"), NextHopId(1)),
        RouteChange::Upsert(p("10.0.1.128/25"), NextHopId(1)),
        RouteChange::Upsert(p("10.0.2.7/32"), NextHopId(1)),
        RouteChange::Upsert(p("10.1.0.0/16"), NextHopId(1)),
    ])
    .unwrap();
    let s = fib.stats();
    assert_eq!(s.prefixes, 4);
    assert_eq!(s.tbl8_groups_in_use, 2);
    assert_eq!(s.tbl8_groups_capacity, 16);
    assert_eq!(s.memory.tables_in_use, (1 << 24) * 4 + 2 * 1024);
    assert_eq!(s.readers, 0);
}

#[test]
fn a_route_to_an_unknown_next_hop_is_refused() {
    let mut fib = writer(4);
    let err = fib.apply(&[RouteChange::Upsert(p("10.0.0.0/8"), NextHopId(HOPS))]).unwrap_err();
    assert!(matches!(err, FibError::UnknownNextHop { index: 0, id, .. } if id == NextHopId(HOPS)));
    assert_eq!(fib.version(), FibVersion(0));
    assert_eq!(
        fib.set_next_hops(&[(NextHopId(NextHopId::MAX + 1), NextHop::Blackhole)]),
        Err(FibError::NextHopIdOutOfRange { id: NextHopId(NextHopId::MAX + 1) })
    );
}

#[test]
fn a_next_hop_is_removable_only_once_no_route_uses_it() {
    let mut fib = writer(4);
    let r = fib.reader();
    fib.apply(&[
        RouteChange::Upsert(p("10.0.0.0/8"), NextHopId(3)),
        RouteChange::Upsert(p("10.1.0.0/16"), NextHopId(3)),
    ])
    .unwrap();
    assert_eq!(
        fib.remove_next_hop(NextHopId(3)),
        Err(FibError::NextHopInUse { id: NextHopId(3), routes: 2 })
    );
    // Repointing one route and removing the other releases it.
    fib.apply(&[RouteChange::Upsert(p("10.0.0.0/8"), NextHopId(2)), RouteChange::Remove(p("10.1.0.0/16"))])
        .unwrap();
    fib.remove_next_hop(NextHopId(3)).unwrap();
    assert_eq!(fib.next_hops().get(NextHopId(3)), None);
    let mut out = [None; 2];
    let hops = r.resolve_batch(&[ip("10.1.2.3"), ip("11.0.0.0")], &mut out);
    assert_eq!(out, [Some(NextHopId(2)), None]);
    assert_eq!(hops.get(NextHopId(2)), fib.next_hops().get(NextHopId(2)));
    assert_eq!(hops.get(NextHopId(3)), None);
}

#[test]
fn readers_register_and_deregister_their_grace_slots() {
    let fib = writer(4);
    let a = fib.reader();
    let b = a.clone();
    assert_eq!(fib.stats().readers, 2);
    drop(a);
    assert_eq!(fib.stats().readers, 1);
    drop(b);
    assert_eq!(fib.stats().readers, 0);
}
