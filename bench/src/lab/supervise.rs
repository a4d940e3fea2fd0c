//! Starting and stopping the lab's long-running processes (etcd, node agents, servers)
//! inside namespaces, by PID, never by name.
//!
//! Processes are started with `ip netns exec <ns> <argv>` (which execs the program, so the
//! PID is the program's), in their own process group (a Ctrl-C to `weft-lab up` does not
//! reach them), stdout and stderr into a log file.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::LabError;
use super::state::ProcessRecord;

/// Start time of `pid` from `/proc/<pid>/stat` (field 22), and whether it is a zombie.
fn proc_stat(pid: i32) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields after the
    // last ')' are unambiguous. Field 3 is the state, field 22 the start time.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = fields.first().is_some_and(|s| *s == "Z" || *s == "X");
    Some((fields.get(19)?.parse().ok()?, zombie))
}

/// The start time of `pid` (see [`ProcessRecord::start_time`]), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(s, _)| s)
}

/// Is the recorded process still running (same PID and same start time, not a zombie)?
pub fn is_alive(p: &ProcessRecord) -> bool {
    proc_stat(p.pid).is_some_and(|(start, zombie)| start == p.start_time && !zombie)
}

/// Starts `argv` in namespace `ns`, logging to `log`.
pub fn spawn_in(ns: &str, name: &str, argv: &[String], log: &Path) -> Result<ProcessRecord, LabError> {
    let program = argv.first().ok_or_else(|| LabError::Spec(format!("{name}: empty command")))?;
    let out = File::create(log).map_err(LabError::file(log))?;
    let err = out.try_clone().map_err(LabError::file(log))?;
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|error| LabError::Spawn { program: program.clone(), error })?;
    let pid = child.id() as i32;
    // The child is reaped by `stop` (waitpid via try_wait would need the handle; the
    // handle is dropped here so the record alone is enough to stop it, also from
    // another process after a crash). A dropped `Child` does not kill the process.
    drop(child);
    let start_time = start_time(pid).unwrap_or(0);
    Ok(ProcessRecord { name: name.into(), ns: ns.into(), pid, start_time, log: log.to_owned() })
}

/// Reaps `pid` if it is our child and has exited (no zombie left behind); a no-op for
/// processes that are not our children.
fn reap(pid: i32) {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

/// Stops a recorded process: SIGTERM, up to `grace` to exit, then SIGKILL. Does nothing
/// if the PID now belongs to another process (or none).
pub fn stop(p: &ProcessRecord, grace: Duration) {
    if !is_alive(p) {
        reap(p.pid);
        return;
    }
    let pid = Pid::from_raw(p.pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        reap(p.pid);
        if !is_alive(p) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if is_alive(p) {
        let _ = kill(pid, Signal::SIGKILL);
        for _ in 0..100 {
            reap(p.pid);
            if !is_alive(p) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Result<(), LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LabError::Timeout { what: what.into(), seconds: timeout.as_secs() });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_with_another_start_time_is_not_this_process() {
        let me = std::process::id() as i32;
        let (start, zombie) = proc_stat(me).unwrap();
        assert!(!zombie);
        let rec = |start_time| ProcessRecord {
            name: "me".into(),
            ns: String::new(),
            pid: me,
            start_time,
            log: "/dev/null".into(),
        };
        assert!(is_alive(&rec(start)));
        assert!(!is_alive(&rec(start + 1)), "a reused PID must not count as our process");
    }
}
