//! The client commands without a daemon: one clear line, a non-zero exit.

mod common;

use common::weft_output;

#[test]
fn status_without_a_daemon_says_where_it_looked_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("absent.sock");
    let out = weft_output(&["status", "--socket", sock.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("weft: cannot reach the weft daemon at {}", sock.display())), "{err}");
}

#[test]
fn pod_commands_check_their_arguments_before_calling_the_daemon() {
    let out = weft_output(&["pod", "add", "--iface", "veth1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "weft: --ip A is required\n");
    let out = weft_output(&["pod", "del", "--iface", "veth1", "--colour", "blue"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "weft: unexpected argument \"--colour\"\n");
}

#[test]
fn an_unknown_command_prints_the_usage_and_exits_2() {
    let out = weft_output(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("weft pod add --iface IF --ip A"));
}
