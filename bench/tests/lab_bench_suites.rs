//! `weft-bench lab` (vxlan) and `weft-bench latency` (host-gw) end to end, briefly: a real
//! 3-node lab (two kernel-flannel nodes, one weft node), every path carries the generator's frames to the
//! receiving pod, and `--json` holds one record per run with consistent figures.
//! Needs root and the `weft` binary next to `weft-bench` (`cargo test --workspace` builds it).

mod lab_common;

use std::path::Path;
use std::process::Command;

use lab_common::have_root;
use serde_json::Value;

const WEFT_BENCH: &str = env!("CARGO_BIN_EXE_weft-bench");

fn weft_built() -> bool {
    let weft = Path::new(WEFT_BENCH).with_file_name("weft");
    if weft.exists() {
        return true;
    }
    weft_testnet::skip(
        "lab_bench_suites",
        &format!("{} is not built; `cargo test --workspace` (make test) builds it", weft.display()),
    );
    false
}

fn run_suite(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = Command::new(WEFT_BENCH).args(args).arg("--json").arg(&json).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weft-bench {args:?} failed:\n{stderr}");
    assert!(stderr.contains(": tearing the lab down"), "{stderr}");
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

#[test]
fn a_short_lab_run_carries_frames_on_every_path_and_reports_each_run() {
    if !have_root("a_short_lab_run_carries_frames_on_every_path_and_reports_each_run") || !weft_built() {
        return;
    }
    let report = run_suite(&[
        "lab",
        "--backends",
        "vxlan",
        "--sizes",
        "64",
        "--flows",
        "10",
        "--rounds",
        "1",
        "--secs",
        "0.3",
    ]);
    let records = report["records"].as_array().unwrap();
    let paths: Vec<&str> = records.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["kernel", "weft-encap", "weft-decap"]);
    for r in records {
        let (sent, delivered) = (r["sent"].as_u64().unwrap(), r["delivered"].as_u64().unwrap());
        assert!(delivered > 0 && delivered <= sent, "{r}");
        assert_eq!(r["stray"].as_u64(), Some(0), "{r}");
        assert!(r["delivered_pps"].as_f64().unwrap() > 0.0);
        let loss = r["loss"].as_f64().unwrap();
        assert!((loss - (1.0 - delivered as f64 / sent as f64)).abs() < 1e-9, "{r}");
        if r["engine"] == "weft" {
            // The engine forwarded what reached the pod: its egress count covers the delivery.
            assert!(r["weft_tx"].as_u64().unwrap() >= delivered, "{r}");
        }
    }
    let ratios = report["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 2, "one ratio per weft path");
    assert_eq!(report["weft_status"][0]["node"], "n3");
    assert!(report["conditions"]["note"].as_str().unwrap().contains("sender's softirq"));
}

#[test]
fn a_short_latency_run_reports_percentiles_for_weft_and_the_kernel() {
    if !have_root("a_short_latency_run_reports_percentiles_for_weft_and_the_kernel") || !weft_built() {
        return;
    }
    let report = run_suite(&[
        "latency",
        "--backends",
        "host-gw",
        "--paths",
        "kernel,weft-decap",
        "--loads",
        "20",
        "--secs",
        "0.3",
        "--capacity-secs",
        "0.3",
    ]);
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    for r in records {
        assert!(r["samples"].as_u64().unwrap() > 0, "{r}");
        let p = |k: &str| r[k].as_u64().unwrap();
        assert!(p("min_ns") > 0 && p("min_ns") <= p("p50_ns"), "{r}");
        assert!(
            p("p50_ns") <= p("p99_ns") && p("p99_ns") <= p("p999_ns") && p("p999_ns") <= p("max_ns"),
            "{r}"
        );
        assert!(r["curve"].as_array().unwrap().len() >= 20);
        let rate = r["rate_pps"].as_f64().unwrap();
        assert!((rate - 0.2 * r["capacity_pps"].as_f64().unwrap()).abs() < 1.0, "{r}");
    }
}

#[test]
fn an_idle_run_reads_the_cpu_time_of_every_weft_worker() {
    if !have_root("an_idle_run_reads_the_cpu_time_of_every_weft_worker") || !weft_built() {
        return;
    }
    let report = run_suite(&["idle", "--modes", "adaptive,busy-poll", "--secs", "1"]);
    let records = report["records"].as_array().unwrap();
    let modes: Vec<bool> = records.iter().map(|r| r["busy_poll"].as_bool().unwrap()).collect();
    assert_eq!(modes, [false, true], "one worker (weft-q0) per mode: {records:?}");
    for r in records {
        assert_eq!(r["worker"], "weft-q0", "{r}");
        let (secs, cpu, busy) = (
            r["secs"].as_f64().unwrap(),
            r["cpu_secs"].as_f64().unwrap(),
            r["busy_percent"].as_f64().unwrap(),
        );
        assert!(secs >= 1.0 && cpu >= 0.0 && cpu <= secs * 1.05, "{r}");
        assert!((busy - 100.0 * cpu / secs).abs() < 1e-9, "{r}");
    }
}

#[test]
fn a_tools_run_measures_both_pod_pairs_with_sockperf_and_iperf3() {
    if !have_root("a_tools_run_measures_both_pod_pairs_with_sockperf_and_iperf3") || !weft_built() {
        return;
    }
    let report = run_suite(&["tools", "--rates", "1000", "--secs", "1"]);
    let pp = report["ping_pong"].as_array().unwrap();
    let paths: Vec<&str> = pp.iter().map(|r| r["data_path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["kernel", "weft"]);
    for r in pp {
        assert!(r["observations"].as_u64().unwrap() > 0, "{r}");
        let (p50, p99, p999) =
            (r["p50_us"].as_f64().unwrap(), r["p99_us"].as_f64().unwrap(), r["p999_us"].as_f64().unwrap());
        assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{r}");
    }
    let tp = report["throughput"].as_array().unwrap();
    let tests: Vec<(&str, &str)> =
        tp.iter().map(|r| (r["test"].as_str().unwrap(), r["data_path"].as_str().unwrap())).collect();
    assert_eq!(tests, [("tcp", "kernel"), ("tcp", "weft"), ("udp64", "kernel"), ("udp64", "weft")]);
    for r in tp {
        assert!(r["bits_per_second"].as_f64().unwrap() > 0.0, "{r}");
    }
}
