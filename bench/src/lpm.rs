//! `weft-bench lpm`: the FIB's lookup rate against the `prefix-trie` crate, under route churn,
//! update visibility and memory per prefix.
//!
//! Route mix (per table size): 85 % /24, 10 % /16../23, 5 % /25../32 (uniform lengths inside
//! each band), random distinct networks, 256 next hops. Lookup addresses: 2^20 uniformly random
//! 32-bit addresses (most miss at 1k routes; the rate of a DIR-24-8 barely depends on that,
//! a trie's does, so a "hits" set, one random address inside a random route each, is measured
//! too). All inputs are built before the timed loops; each timed loop makes one untimed warm-up
//! pass over the address array, then walks it until `--secs` have passed. Routes and addresses
//! come from `weft_engine::fib::sample` with fixed seeds; weft's and prefix-trie's answers are
//! cross-checked on 100k addresses before anything is timed.

use crate::options;
use crate::stats::median;
use std::collections::HashSet;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::bail;
use prefix_trie::PrefixMap;
use serde::{Deserialize, Serialize};
use weft_engine::fib::sample::{SplitMix64, host_gw_next_hops, mixed_prefixes};
use weft_engine::fib::{FibConfig, FibReader, FibWriter, Ipv4Prefix, NextHopId, RouteChange};

const USAGE: &str = "usage: weft-bench lpm [--prefixes 1000,100000,1000000] [--secs 0.2]
                      [--reader-core 1] [--writer-core 0] [--visibility-samples 300]
                      [--json FILE]";
const HOPS: u32 = 256;
const ADDRS: usize = 1 << 20;
const BATCH: usize = 64;
const CHURN_PER_SEC: u32 = 10_000;
/// Prefixes the churn writer toggles.
const CHURN_POOL: usize = 2_000;
const CHURN_TICK: Duration = Duration::from_millis(1);
/// Alternating measurement rounds; medians are reported.
const ROUNDS: usize = 5;
/// Quiet/churn measurement pairs.
const CHURN_ROUNDS: usize = 9;

struct Options {
    prefixes: Vec<usize>,
    secs: f64,
    reader_core: usize,
    writer_core: usize,
    visibility_samples: usize,
    json: Option<std::path::PathBuf>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        prefixes: vec![1_000, 100_000, 1_000_000],
        secs: 0.2,
        reader_core: 1,
        writer_core: 0,
        visibility_samples: 300,
        json: None,
    };
    for (flag, value) in options::pairs(args, USAGE)? {
        match flag {
            "--prefixes" => o.prefixes = options::list(flag, value, USAGE)?,
            "--secs" => o.secs = options::value(flag, value, USAGE)?,
            "--reader-core" => o.reader_core = options::value(flag, value, USAGE)?,
            "--writer-core" => o.writer_core = options::value(flag, value, USAGE)?,
            "--visibility-samples" => o.visibility_samples = options::value(flag, value, USAGE)?,
            "--json" => o.json = Some(value.into()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    Ok(o)
}

fn pin(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// Lookups per second of `body` over `addrs`, repeated until `secs` elapsed.
fn rate(secs: f64, addrs: usize, mut body: impl FnMut() -> u64) -> f64 {
    // One untimed pass: faults in the pages (untouched parts of tbl24 map the zero page on
    // first read) and warms caches and TLBs the same way for every contender.
    let mut sum = body();
    let start = Instant::now();
    let mut passes = 0u64;
    while passes == 0 || start.elapsed().as_secs_f64() < secs {
        sum = sum.wrapping_add(body());
        passes += 1;
    }
    black_box(sum);
    (passes * addrs as u64) as f64 / start.elapsed().as_secs_f64()
}

fn weft_single(reader: &FibReader, addrs: &[u32]) -> u64 {
    addrs.iter().map(|&a| reader.lookup(a).map_or(0, |h| u64::from(h.0))).sum()
}

fn weft_batch(reader: &FibReader, addrs: &[u32], out: &mut [Option<NextHopId>; BATCH]) -> u64 {
    let mut sum = 0u64;
    for chunk in addrs.chunks(BATCH) {
        reader.lookup_batch(chunk, out);
        sum += out.iter().map(|h| h.map_or(0, |h| u64::from(h.0))).sum::<u64>();
    }
    sum
}

fn trie_single(trie: &PrefixMap<(u32, u8), u32>, keys: &[(u32, u8)]) -> u64 {
    keys.iter().map(|k| trie.get_lpm(k).map_or(0, |(_, &h)| u64::from(h))).sum()
}

/// One table size: lookups per second (rates are lookups/s), churn, memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LpmRow {
    /// Prefixes in the table.
    pub prefixes: usize,
    /// weft, one lookup at a time, random addresses.
    pub weft_single: f64,
    /// weft, batches of 64, random addresses.
    pub weft_batch: f64,
    /// prefix-trie, random addresses.
    pub trie: f64,
    /// weft batched, addresses inside routes.
    pub weft_batch_hits: f64,
    /// prefix-trie, addresses inside routes.
    pub trie_hits: f64,
    /// weft batched with the writer idle (churn rounds).
    pub churn_quiet: f64,
    /// Median over rounds of churn / quiet.
    pub churn_ratio: f64,
    /// weft batched while the writer churns.
    pub churn_busy: f64,
    /// Updates per second the writer applied.
    pub churn_updates_per_sec: f64,
    /// Grace periods the writer waited for.
    pub churn_grace_periods: u64,
    /// One 10k-change batch applied as one version, ms.
    pub apply_10k_ms: f64,
    /// Bytes per prefix of the lookup tables.
    pub bytes_lookup: f64,
    /// Bytes per prefix with the writer's route set and next hops.
    pub bytes_total: f64,
    /// Bytes per prefix of prefix-trie.
    pub bytes_trie: f64,
}

/// How long a route update takes to be seen by a reader on another core.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LpmVisibility {
    /// Table size it was measured at.
    pub prefixes: usize,
    /// Samples taken.
    pub samples: usize,
    /// Percentiles in ns: p50, p90, p99, max.
    pub p50_ns: u64,
    /// p90 in ns.
    pub p90_ns: u64,
    /// p99 in ns.
    pub p99_ns: u64,
    /// Largest sample in ns.
    pub max_ns: u64,
}

/// What `weft-bench lpm` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LpmResult {
    /// Seconds per measurement.
    pub secs: f64,
    /// Random addresses per lookup set.
    pub addresses: usize,
    /// Next hops in the table.
    pub next_hops: u32,
    /// Whether the reader thread could be pinned.
    pub reader_pinned: bool,
    /// One row per table size.
    pub rows: Vec<LpmRow>,
    /// Update visibility at the largest table.
    pub visibility: Option<LpmVisibility>,
    /// Transparent huge page state at the end.
    pub huge_pages: String,
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let reader_pinned = pin(o.reader_core);
    eprintln!("lpm: reader pinned to core {}: {reader_pinned}; writer core {}", o.reader_core, o.writer_core);
    let mut rows = Vec::new();
    let mut visibility = None;
    for (i, &n) in o.prefixes.iter().enumerate() {
        let last = i + 1 == o.prefixes.len();
        let (row, vis) = measure(&o, n, last)?;
        rows.push(row);
        if let Some(v) = vis {
            visibility = Some(summarize(v));
        }
    }
    let result = LpmResult {
        secs: o.secs,
        addresses: ADDRS,
        next_hops: HOPS,
        reader_pinned,
        rows,
        visibility,
        huge_pages: huge_pages(),
    };
    print!("{}", result.markdown());
    if let Some(path) = &o.json {
        options::write_json(path, &result)?;
    }
    Ok(())
}

struct Visibility {
    prefixes: usize,
    samples: Vec<Duration>,
}

fn summarize(v: Visibility) -> LpmVisibility {
    let mut s = v.samples;
    s.sort();
    let ns = |d: Duration| d.as_nanos() as u64;
    let q = |f: f64| ns(s[((s.len() - 1) as f64 * f) as usize]);
    LpmVisibility {
        prefixes: v.prefixes,
        samples: s.len(),
        p50_ns: q(0.5),
        p90_ns: q(0.9),
        p99_ns: q(0.99),
        max_ns: ns(s[s.len() - 1]),
    }
}

fn measure(o: &Options, n: usize, with_visibility: bool) -> anyhow::Result<(LpmRow, Option<Visibility>)> {
    let mut rng = SplitMix64(0x00c0_ffee ^ n as u64);
    eprintln!("lpm: {n} prefixes: building");
    let routes = mixed_prefixes(&mut rng, n, &HashSet::new());
    // Churn toggles a small pool (each prefix comes and goes several times per measurement, so
    // tbl8 groups are collapsed and recycled); the one-version batch adds 10k other routes.
    let mut taken: HashSet<Ipv4Prefix> = routes.iter().copied().collect();
    let churn_pool = mixed_prefixes(&mut rng, CHURN_POOL, &taken);
    taken.extend(&churn_pool);
    let big_batch = mixed_prefixes(&mut rng, 10_000, &taken);
    let long_24s: HashSet<u32> = routes
        .iter()
        .chain(&churn_pool)
        .chain(&big_batch)
        .filter(|p| p.len() > 24)
        .map(|p| p.bits() >> 8)
        .collect();
    // Exactly one group per /24 that can ever hold a long route: once the churn has cycled
    // through, every new group is a recycled one and the writer waits for grace periods.
    let mut fib = FibWriter::new(FibConfig { tbl8_groups: long_24s.len() as u32, ..FibConfig::default() });
    fib.set_next_hops(&host_gw_next_hops(HOPS))?;
    let changes: Vec<_> =
        routes.iter().map(|&p| RouteChange::Upsert(p, NextHopId(rng.below(HOPS)))).collect();
    fib.apply(&changes)?;
    let mut trie: PrefixMap<(u32, u8), u32> = PrefixMap::new();
    for c in &changes {
        if let RouteChange::Upsert(p, h) = *c {
            trie.insert((p.bits(), p.len()), h.0);
        }
    }

    let random: Vec<u32> = (0..ADDRS).map(|_| rng.next_u32()).collect();
    let hits: Vec<u32> = (0..ADDRS)
        .map(|_| {
            let p = routes[rng.below(n as u32) as usize];
            let (first, last) = p.range();
            first + rng.below(last - first + 1)
        })
        .collect();
    let keys = |addrs: &[u32]| -> Vec<(u32, u8)> { addrs.iter().map(|&a| (a, 32)).collect() };
    let (random_keys, hit_keys) = (keys(&random), keys(&hits));

    let reader = fib.reader();
    // Both structures must agree before their speeds are compared.
    for (&a, k) in random.iter().zip(&random_keys).take(100_000) {
        let ours = reader.lookup(a).map(|h| h.0);
        let theirs = trie.get_lpm(k).map(|(_, &h)| h);
        if ours != theirs {
            bail!("weft and prefix-trie disagree on {}: {ours:?} vs {theirs:?}", Ipv4Addr::from(a));
        }
    }

    eprintln!("lpm: {n} prefixes: lookups");
    let mut out = [None; BATCH];
    // Contenders take turns, ROUNDS times, and each reports its median: a burst of load
    // from other processes on a shared machine then hits them alike.
    let mut samples = [const { Vec::new() }; 5];
    for _ in 0..ROUNDS {
        samples[0].push(rate(o.secs, ADDRS, || weft_single(&reader, &random)));
        samples[1].push(rate(o.secs, ADDRS, || weft_batch(&reader, &random, &mut out)));
        samples[2].push(rate(o.secs, ADDRS, || trie_single(&trie, &random_keys)));
        samples[3].push(rate(o.secs, ADDRS, || weft_batch(&reader, &hits, &mut out)));
        samples[4].push(rate(o.secs, ADDRS, || trie_single(&trie, &hit_keys)));
    }
    let [weft_single_rate, weft_batch_rate, trie_rate, weft_hits, trie_hits] = samples.map(|v| median(&v));

    eprintln!("lpm: {n} prefixes: churn");
    let churn =
        with_churn(o, fib, &churn_pool, || rate(o.secs, ADDRS, || weft_batch(&reader, &random, &mut out)));
    let mut fib = churn.writer;

    // One batch of 10k changes as one version, then undone.
    let batch: Vec<_> = big_batch.iter().map(|&p| RouteChange::Upsert(p, NextHopId(1))).collect();
    let t = Instant::now();
    fib.apply(&batch)?;
    let apply_10k_ms = t.elapsed().as_secs_f64() * 1e3;
    let undo: Vec<_> = big_batch.iter().map(|&p| RouteChange::Remove(p)).collect();
    fib.apply(&undo)?;

    let stats = fib.stats();
    let m = stats.memory;
    let row = LpmRow {
        prefixes: n,
        weft_single: weft_single_rate,
        weft_batch: weft_batch_rate,
        trie: trie_rate,
        weft_batch_hits: weft_hits,
        trie_hits,
        churn_quiet: churn.quiet,
        churn_ratio: churn.ratio,
        churn_busy: churn.busy,
        churn_updates_per_sec: churn.updates_per_sec,
        churn_grace_periods: churn.grace_periods,
        apply_10k_ms,
        bytes_lookup: m.tables_in_use as f64 / n as f64,
        bytes_total: (m.tables_in_use + m.writer + m.next_hops) as f64 / n as f64,
        bytes_trie: trie.mem_size() as f64 / n as f64,
    };
    let vis = if with_visibility {
        eprintln!("lpm: {n} prefixes: update visibility");
        Some(Visibility { prefixes: n, samples: visibility(o, &mut fib, &reader, &mut rng) })
    } else {
        None
    };
    Ok((row, vis))
}

struct Churn {
    quiet: f64,
    /// Median over rounds of (busy / quiet) of the same round.
    ratio: f64,
    busy: f64,
    updates_per_sec: f64,
    grace_periods: u64,
    writer: FibWriter,
}

/// Alternates [`CHURN_ROUNDS`] times between measuring on this (reader) thread with the writer idle
/// and with a writer thread on `writer_core` applying `CHURN_PER_SEC` updates per second
/// (batches every `CHURN_TICK`: upserts of absent churn prefixes, removals of present ones,
/// random next hops). Reports the median of each, the update rate achieved while active and
/// the grace periods the writer waited for.
fn with_churn(
    o: &Options,
    mut fib: FibWriter,
    pool: &[Ipv4Prefix],
    mut measure: impl FnMut() -> f64,
) -> Churn {
    let active = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let pool = pool.to_vec();
    let core = o.writer_core;
    let grace_before = fib.stats().grace_periods;
    let writer = thread::spawn({
        let (active, stop) = (active.clone(), stop.clone());
        move || {
            pin(core);
            let mut rng = SplitMix64(0xc4u64);
            let mut present = vec![false; pool.len()];
            let per_tick = (u128::from(CHURN_PER_SEC) * CHURN_TICK.as_micros() / 1_000_000) as usize;
            let mut batch = Vec::with_capacity(per_tick);
            let (mut applied, mut busy) = (0u64, Duration::ZERO);
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                next += CHURN_TICK;
                if active.load(Ordering::Relaxed) {
                    batch.clear();
                    for _ in 0..per_tick {
                        let i = rng.below(pool.len() as u32) as usize;
                        batch.push(if present[i] {
                            RouteChange::Remove(pool[i])
                        } else {
                            RouteChange::Upsert(pool[i], NextHopId(rng.below(HOPS)))
                        });
                        present[i] = !present[i];
                    }
                    fib.apply(&batch).expect("churn batch");
                    applied += batch.len() as u64;
                    busy += CHURN_TICK;
                }
                match next.checked_duration_since(Instant::now()) {
                    Some(wait) => thread::sleep(wait),
                    None => next = Instant::now(),
                }
            }
            let undo: Vec<_> = pool
                .iter()
                .zip(&present)
                .filter(|(_, on)| **on)
                .map(|(&p, _)| RouteChange::Remove(p))
                .collect();
            fib.apply(&undo).expect("churn cleanup");
            (applied as f64 / busy.as_secs_f64().max(1e-9), fib)
        }
    });
    let (mut quiet, mut busy) = (Vec::new(), Vec::new());
    for _ in 0..CHURN_ROUNDS {
        quiet.push(measure());
        active.store(true, Ordering::Relaxed);
        // Let the writer reach its pace before measuring.
        thread::sleep(Duration::from_millis(20));
        busy.push(measure());
        active.store(false, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let (updates_per_sec, writer) = writer.join().expect("churn writer panicked");
    Churn {
        ratio: median(&busy.iter().zip(&quiet).map(|(b, q)| b / q).collect::<Vec<_>>()),
        quiet: median(&quiet),
        busy: median(&busy),
        updates_per_sec,
        grace_periods: writer.stats().grace_periods - grace_before,
        writer,
    }
}

/// Time from just before `apply()` of a /32 until a reader spinning on that address sees it.
fn visibility(o: &Options, fib: &mut FibWriter, reader: &FibReader, rng: &mut SplitMix64) -> Vec<Duration> {
    let base = Instant::now();
    let target = Arc::new(AtomicU32::new(0));
    let want = Arc::new(AtomicU32::new(0));
    let round = Arc::new(AtomicU64::new(0));
    let seen_ns = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let spinner = thread::spawn({
        let (reader, target, want, round, seen_ns, done) =
            (reader.clone(), target.clone(), want.clone(), round.clone(), seen_ns.clone(), done.clone());
        let core = o.reader_core;
        move || {
            pin(core);
            let mut last = 0;
            loop {
                let r = round.load(Ordering::Acquire);
                if r == u64::MAX {
                    return;
                }
                if r == last {
                    std::hint::spin_loop();
                    continue;
                }
                let (addr, hop) = (target.load(Ordering::Relaxed), want.load(Ordering::Relaxed));
                while reader.lookup(addr) != Some(NextHopId(hop)) {}
                seen_ns.store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
                done.store(r, Ordering::Release);
                last = r;
            }
        }
    });
    pin(o.writer_core);
    let mut samples = Vec::with_capacity(o.visibility_samples);
    for r in 1..=o.visibility_samples as u64 {
        let addr = rng.next_u32();
        let prefix = Ipv4Prefix::covering(addr, 32);
        let hop = (reader.lookup(addr).map_or(0, |h| h.0) + 1) % HOPS;
        target.store(addr, Ordering::Relaxed);
        want.store(hop, Ordering::Relaxed);
        round.store(r, Ordering::Release);
        let t0 = base.elapsed().as_nanos() as u64;
        fib.apply(&[RouteChange::Upsert(prefix, NextHopId(hop))]).expect("visibility upsert");
        while done.load(Ordering::Acquire) != r {
            std::hint::spin_loop();
        }
        samples.push(Duration::from_nanos(seen_ns.load(Ordering::Relaxed).saturating_sub(t0)));
        fib.apply(&[RouteChange::Remove(prefix)]).expect("visibility cleanup");
    }
    round.store(u64::MAX, Ordering::Release);
    spinner.join().expect("visibility reader panicked");
    pin(o.reader_core);
    samples
}

fn mlps(rate: f64) -> String {
    format!("{:.1}", rate / 1e6)
}

impl LpmResult {
    /// The result as markdown tables with a settings line.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let rows = &self.rows;
        let _ = writeln!(
            out,
            "### Lookups per second, one pinned core (M lookups/s, median of {ROUNDS} interleaved rounds)\n"
        );
        let _ = writeln!(
            out,
            "| prefixes | weft single | weft batch {BATCH} | prefix-trie | batch / trie | single / trie \
             | weft batch, hits | prefix-trie, hits | hits ratio |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.1}x | {:.1}x | {} | {} | {:.1}x |",
                r.prefixes,
                mlps(r.weft_single),
                mlps(r.weft_batch),
                mlps(r.trie),
                r.weft_batch / r.trie,
                r.weft_single / r.trie,
                mlps(r.weft_batch_hits),
                mlps(r.trie_hits),
                r.weft_batch_hits / r.trie_hits,
            );
        }
        let _ = writeln!(
            out,
            "\n### Under churn ({CHURN_PER_SEC} updates/s on another core, batched {BATCH}, medians of {CHURN_ROUNDS} alternating rounds)\n"
        );
        let _ = writeln!(
            out,
            "| prefixes | quiet M/s | churn M/s | churn / quiet (median of per-round ratios) | updates/s applied | grace periods | apply 10k changes (one version) |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
        for r in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.3} | {:.0} | {} | {:.1} ms |",
                r.prefixes,
                mlps(r.churn_quiet),
                mlps(r.churn_busy),
                r.churn_ratio,
                r.churn_updates_per_sec,
                r.churn_grace_periods,
                r.apply_10k_ms,
            );
        }
        let _ = writeln!(out, "\n### Memory per prefix (bytes)\n");
        let _ = writeln!(
            out,
            "| prefixes | weft lookup tables | weft total (with writer's route set) | prefix-trie |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|");
        for r in rows {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.0} |",
                r.prefixes, r.bytes_lookup, r.bytes_total, r.bytes_trie
            );
        }
        if let Some(v) = &self.visibility {
            let d = |ns: u64| format!("{:?}", Duration::from_nanos(ns));
            let _ = writeln!(
                out,
                "\n### Update visibility ({} prefixes, {} samples: apply() of a /32 until a reader on \
                 another core sees it)\n",
                v.prefixes, v.samples
            );
            let _ = writeln!(out, "| p50 | p90 | p99 | max |");
            let _ = writeln!(out, "|---:|---:|---:|---:|");
            let _ =
                writeln!(out, "| {} | {} | {} | {} |", d(v.p50_ns), d(v.p90_ns), d(v.p99_ns), d(v.max_ns));
        }
        let _ = writeln!(
            out,
            "\nsettings: --secs {} per measurement, {} random addresses, mix 85% /24, 10% /16-/23, \
             5% /25-/32, {} next hops; {}",
            self.secs, self.addresses, self.next_hops, self.huge_pages
        );
        out
    }
}

/// The process's transparent huge pages, which decide how often random tbl24 loads miss the
/// TLB. With THP in `madvise` mode, `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` makes glibc advise
/// its large allocations (the FIB's tables among them).
fn huge_pages() -> String {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let anon = std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".into());
    format!(
        "THP {:?}, GLIBC_TUNABLES={:?}, AnonHugePages at the end: {anon} kB",
        thp.trim(),
        std::env::var("GLIBC_TUNABLES").unwrap_or_default()
    )
}
