//! Reads the encap micro-benchmarks `cargo bench -p weft-encap` left under `target/criterion`
//! (criterion's own files: `<group>/<bench>/new/{benchmark,estimates}.json`).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One criterion benchmark, per packet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MicroBench {
    /// criterion's `full_id`, e.g. `encap/vxlan4::encap::size=64`.
    pub id: String,
    /// Mean ns per element (per packet: the benches set `Throughput::Elements`).
    pub ns_per_packet: f64,
    /// 95 % confidence interval of that mean.
    pub ci_ns: [f64; 2],
}

#[derive(Deserialize)]
struct BenchmarkJson {
    full_id: String,
    /// `{"Elements": n}` or `{"Bytes": n}`; only elements give a per-packet figure.
    throughput: Option<std::collections::HashMap<String, u64>>,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct EstimatesJson {
    mean: Estimate,
}

fn one(dir: &Path) -> Option<MicroBench> {
    let bench: BenchmarkJson =
        serde_json::from_str(&std::fs::read_to_string(dir.join("benchmark.json")).ok()?).ok()?;
    let est: EstimatesJson =
        serde_json::from_str(&std::fs::read_to_string(dir.join("estimates.json")).ok()?).ok()?;
    let per = bench
        .throughput
        .and_then(|t| t.get("Elements").copied())
        .filter(|&n| n > 0)
        .map_or(1.0, |n| n as f64);
    Some(MicroBench {
        id: bench.full_id,
        ns_per_packet: est.mean.point_estimate / per,
        ci_ns: [
            est.mean.confidence_interval.lower_bound / per,
            est.mean.confidence_interval.upper_bound / per,
        ],
    })
}

/// Every benchmark of `group` under `criterion_dir` (sorted by id); empty if none ran.
pub fn read_group(criterion_dir: &Path, group: &str) -> Vec<MicroBench> {
    let Ok(entries) = std::fs::read_dir(criterion_dir.join(group)) else { return Vec::new() };
    let mut out: Vec<MicroBench> = entries.filter_map(|e| one(&e.ok()?.path().join("new"))).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_criterion_result_is_read_per_element() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("encap/vxlan4__encap__size=64/new");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(
            b.join("benchmark.json"),
            r#"{"group_id":"encap","function_id":"vxlan4::encap::size=64","value_str":null,"throughput":{"Elements":64},"full_id":"encap/vxlan4::encap::size=64","directory_name":"x","title":"x"}"#,
        )
        .unwrap();
        std::fs::write(
            b.join("estimates.json"),
            r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":600.0,"upper_bound":700.0},"point_estimate":640.0,"standard_error":1.0}}"#,
        )
        .unwrap();
        let got = read_group(dir.path(), "encap");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "encap/vxlan4::encap::size=64");
        assert_eq!(got[0].ns_per_packet, 10.0);
        assert_eq!(got[0].ci_ns, [600.0 / 64.0, 700.0 / 64.0]);
        assert!(read_group(dir.path(), "nothing").is_empty());
    }
}
