//! Running `ip`, `bridge`, `sysctl`, `etcdctl` as processes: simple, visible in logs, and
//! the same commands an operator would type.

use std::io::Write;
use std::process::{Command, Stdio};

use super::LabError;

fn render(program: &str, args: &[&str]) -> String {
    let mut s = program.to_owned();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Runs `program args`, returns its stdout; a non-zero exit is an error carrying stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    run_with_input(program, args, None)
}

/// Runs `program args` with `input` on stdin (for `ip -batch -`).
pub fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> Result<String, LabError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| LabError::Spawn { program: program.into(), error })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A write error shows up as the command's failure below.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|error| LabError::Spawn { program: program.into(), error })?;
    if !out.status.success() {
        let mut command = render(program, args);
        if let Some(text) = input {
            command.push_str(" <<< ");
            command.push_str(&text.replace('\n', "; "));
        }
        return Err(LabError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip args` in the current namespace.
pub fn ip(args: &[&str]) -> Result<String, LabError> {
    run("ip", args)
}

/// `ip -n ns args`: one `ip` command inside namespace `ns`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<String, LabError> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// `ip netns exec ns program args`: any program inside namespace `ns`.
pub fn exec_in(ns: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// Sets a sysctl inside namespace `ns` (`net.ipv4.ip_forward=1`).
pub fn sysctl_in(ns: &str, setting: &str) -> Result<(), LabError> {
    exec_in(ns, "sysctl", &["-qw", setting]).map(drop)
}

/// The namespaces that exist (`ip netns list`), names only.
pub fn namespaces() -> Result<Vec<String>, LabError> {
    let out = ip(&["netns", "list"])?;
    Ok(out.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect())
}
