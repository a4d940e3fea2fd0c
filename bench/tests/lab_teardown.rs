//! `down` removes exactly what `up` made: after `up` ran to completion in another process,
//! after that process was killed half-way, and when a test panics with a guarded lab.

mod lab_common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use lab_common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use weft_bench::lab::supervise::is_alive;
use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, LabState, state::state_path};

fn weft_lab(args: &[&str]) -> std::process::Output {
    Command::new(WEFT_LAB).args(args).output().unwrap()
}

/// Runs `weft-lab down` and checks that nothing `state` lists is left.
fn down_and_assert_all_gone(prefix: &str, state: &LabState) {
    let down = weft_lab(&["down", "--prefix", prefix]);
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
    assert_all_gone(prefix, state);
}

fn assert_all_gone(prefix: &str, state: &LabState) {
    assert_eq!(namespaces_of(prefix), Vec::<String>::new(), "namespaces left behind");
    for p in &state.processes {
        assert!(!is_alive(p), "{} (pid {}) still runs", p.name, p.pid);
    }
    assert!(!state.dir.exists(), "{} left behind", state.dir.display());
}

#[test]
fn down_cleans_up_a_lab_whose_processes_were_killed() {
    if !have_root("down_cleans_up_a_lab_whose_processes_were_killed") {
        return;
    }
    let prefix = prefix();
    let up = weft_lab(&["up", "--prefix", &prefix, "--nodes", "2", "--pods", "1"]);
    assert!(up.status.success(), "up: {}", String::from_utf8_lossy(&up.stderr));
    let state = LabState::load(&state_path(DEFAULT_STATE_ROOT.as_ref(), &prefix)).unwrap();
    assert_eq!(namespaces_of(&prefix).len(), state.namespaces.len(), "every recorded namespace exists");
    // Simulated crash: the lab's processes die; the state file stays.
    for p in &state.processes {
        kill(Pid::from_raw(p.pid), Signal::SIGKILL).unwrap();
    }
    down_and_assert_all_gone(&prefix, &state);
}

#[test]
fn down_cleans_up_after_up_itself_was_killed_half_way() {
    if !have_root("down_cleans_up_after_up_itself_was_killed_half_way") {
        return;
    }
    let prefix = prefix();
    let path: PathBuf = state_path(DEFAULT_STATE_ROOT.as_ref(), &prefix);
    let mut up = Command::new(WEFT_LAB).args(["up", "--prefix", &prefix, "--nodes", "3"]).spawn().unwrap();
    // Kill `up` once etcd runs and before the lab is complete.
    let killed_mid_way =
        eventually(Duration::from_secs(30), || LabState::load(&path).is_ok_and(|s| !s.processes.is_empty()));
    kill(Pid::from_raw(up.id() as i32), Signal::SIGKILL).unwrap();
    let _ = up.wait();
    assert!(killed_mid_way, "up never recorded a process");
    let state = LabState::load(&path).unwrap();
    assert!(
        state.nodes.len() < 3 || state.nodes.iter().any(|n| n.pods.is_empty()),
        "up was killed before it finished"
    );
    // An `ip` command `up` had started may still be finishing.
    std::thread::sleep(Duration::from_millis(300));
    let state = LabState::load(&path).unwrap();
    down_and_assert_all_gone(&prefix, &state);
}

#[test]
fn a_panicking_test_leaves_no_namespace_or_process_behind() {
    if !have_root("a_panicking_test_leaves_no_namespace_or_process_behind") {
        return;
    }
    let mut seen = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = kernel_lab(Backend::Vxlan, 2, 1);
        seen = Some(lab.state().clone());
        panic!("a failing test");
    }));
    assert!(outcome.is_err());
    let state = seen.expect("the lab came up");
    assert_all_gone(&state.prefix, &state);
}

#[test]
fn up_refuses_a_prefix_whose_namespace_exists_and_leaves_that_namespace_alone() {
    if !have_root("up_refuses_a_prefix_whose_namespace_exists_and_leaves_that_namespace_alone") {
        return;
    }
    let prefix = prefix();
    // Not made by a lab: the lab must neither use nor delete it.
    let foreign = format!("{prefix}-etcd");
    weft_bench::lab::wiring::add_namespace(&foreign).unwrap();
    let up = weft_lab(&["up", "--prefix", &prefix, "--nodes", "1"]);
    let still_there = namespaces_of(&prefix);
    weft_bench::lab::wiring::del_namespace(&foreign).unwrap();
    assert!(!up.status.success(), "up used an existing namespace");
    assert!(
        String::from_utf8_lossy(&up.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_eq!(still_there, vec![foreign], "the failed up removed its own namespaces and only those");
}
