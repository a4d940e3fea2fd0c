//! A test that cannot run skips loudly, and fails instead where `CI` is set: this binary runs
//! its own child test under both environments and reads what happened.

use std::process::{Command, Output};

const CHILD_ENV: &str = "WEFT_TESTNET_SKIP_CHILD";

/// Child half: only acts when the parent runs it.
#[test]
fn child_that_cannot_run() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    weft_testnet::skip("child_that_cannot_run", "needs a unicorn");
}

fn run_child(ci: bool) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_that_cannot_run", "--nocapture", "--test-threads=1"]).env(CHILD_ENV, "1");
    if ci {
        cmd.env("CI", "true");
    } else {
        cmd.env_remove("CI");
    }
    cmd.output().unwrap()
}

#[test]
fn under_ci_a_skip_is_a_failure_naming_what_is_missing() {
    let out = run_child(true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child passed under CI:\n{stderr}");
    assert!(
        stderr.contains("child_that_cannot_run cannot run and CI is set")
            && stderr.contains("needs a unicorn"),
        "{stderr}"
    );
}

#[test]
fn without_ci_a_skip_passes_and_says_so_loudly() {
    let out = run_child(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the child failed without CI:\n{stderr}");
    assert!(stderr.contains("SKIPPED child_that_cannot_run: needs a unicorn"), "{stderr}");
}
