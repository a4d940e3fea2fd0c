//! `weft-bench all --quick` runs every suite for real (tiny sizes) in its own process and writes
//! REPORT.md, the plots and results.json: the plumbing `make bench` relies on. No numbers are
//! judged here; benchmarks live in `make bench`.

use std::process::Command;

#[test]
fn weft_bench_all_quick_writes_a_report_with_every_suite() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weft-bench"))
        .args(["all", "--quick", "true", "--suites", "lpm,core,control,policy,bgp", "--out"])
        .arg(dir.path())
        .arg("--criterion")
        .arg(dir.path().join("no-criterion-here"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weft-bench all failed:\n{stderr}");
    assert!(stderr.contains("[1/5 0:0") && stderr.contains("lpm]"), "progress lines: {stderr}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap()).unwrap();
    for suite in ["core", "lpm", "control", "policy", "bgp"] {
        assert!(json[suite].is_object(), "{suite} missing from results.json");
    }
    assert_eq!(json["core"]["paths"].as_array().unwrap().len(), 6, "every core path measured");
    assert!(json["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert!(json["encap"].as_array().unwrap().is_empty(), "no criterion results were given");
    assert_eq!(json["bgp"]["sizes"][0]["announce"]["samples"], 20, "every bgp sample taken");
    assert_eq!(json["core"]["sweep"]["levels"].as_array().unwrap().len(), 4, "no policy, 10, 100, 1000");
    assert_eq!(json["core"]["sweep"]["paths"].as_array().unwrap().len(), 6, "every path swept");
    assert_eq!(json["policy"]["latency"][2]["samples"], 20, "every policy update timed");

    let report = std::fs::read_to_string(dir.path().join("REPORT.md")).unwrap();
    for heading in ["## Goals", "## core:", "## lpm:", "## control:", "## policy:", "## bgp:"] {
        assert!(report.contains(heading), "REPORT.md lacks {heading}");
    }
    for svg in ["core_mpps.svg", "lpm_lookups.svg"] {
        let text = std::fs::read_to_string(dir.path().join(svg)).unwrap();
        assert!(text.starts_with("<svg") && report.contains(svg), "{svg}");
    }
}

#[test]
fn an_unknown_suite_is_refused_with_its_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_weft-bench"))
        .args(["all", "--suites", "core,warp"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--suites: unknown suite \"warp\""));
}
