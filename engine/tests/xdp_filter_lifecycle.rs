//! The XDP program is attached through a BPF link: it leaves the interface
//! when the attachment is dropped, and also when the process that attached it
//! dies without cleaning up (abort), because the kernel closes the link fd.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::{Netns, root_or_skip, run, unique_stem, veth_pair};
use weft_engine::port::xdp_filter::{XdpAttachment, XdpMode, XdpProgram};

const CHILD_ENV: &str = "WEFT_TEST_XDP_ABORT_CHILD";

fn has_xdp(ns: &Netns, ifname: &str) -> Result<bool> {
    let out = ns.ip(&["-d", "link", "show", "dev", ifname])?;
    Ok(out.contains("prog/xdp"))
}

/// The kernel releases a BPF link on a workqueue after its last fd closes, so
/// the program leaves the interface shortly after, not synchronously: wait for
/// it (up to 5 s) and say whether it left.
fn xdp_gone(ns: &Netns, ifname: &str) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while has_xdp(ns, ifname)? {
        if Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(true)
}

#[test]
fn dropping_the_attachment_detaches_the_program() -> Result<()> {
    if !root_or_skip("dropping_the_attachment_detaches_the_program") {
        return Ok(());
    }
    let stem = unique_stem();
    let ns = Netns::new(&format!("{stem}n"))?;
    let (a, b) = (format!("{stem}a"), format!("{stem}b"));
    veth_pair(&ns, &a, "02:00:00:00:03:01", &b, "02:00:00:00:03:02")?;
    let a2 = a.clone();
    let seen_while_attached = ns.run(move || -> Result<bool> {
        let x = XdpAttachment::attach(&a2, XdpProgram::Drop, XdpMode::Native)?;
        // `ip` forked from this thread runs in its namespace.
        let attached = run("ip", &["-d", "link", "show", "dev", &a2])?.contains("prog/xdp");
        drop(x);
        Ok(attached)
    })??;
    assert!(seen_while_attached, "program visible on the interface while attached");
    assert!(xdp_gone(&ns, &a)?, "program gone after drop");
    Ok(())
}

/// Child half of the crash test: attach, then die without running destructors.
#[test]
fn child_attaches_then_aborts() {
    let Ok(ifname) = std::env::var(CHILD_ENV) else {
        return;
    };
    let _x = XdpAttachment::attach(&ifname, XdpProgram::Drop, XdpMode::Native).expect("child attach");
    let shown = run("ip", &["-d", "link", "show", "dev", &ifname]).expect("ip link");
    if shown.contains("prog/xdp") {
        println!("CHILD-ATTACHED");
    }
    use std::io::Write;
    std::io::stdout().flush().ok();
    std::process::abort();
}

#[test]
fn a_crashed_process_leaves_no_program_behind() -> Result<()> {
    if !root_or_skip("a_crashed_process_leaves_no_program_behind") {
        return Ok(());
    }
    let stem = unique_stem();
    let ns = Netns::new(&format!("{stem}n"))?;
    let (a, b) = (format!("{stem}a"), format!("{stem}b"));
    veth_pair(&ns, &a, "02:00:00:00:04:01", &b, "02:00:00:00:04:02")?;
    let exe = std::env::current_exe()?;
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(&exe)
        .args(["--exact", "child_attaches_then_aborts", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &a)
        .output()
        .context("running the child")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("CHILD-ATTACHED"),
        "child attached before aborting: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "child aborted");
    // The kernel releases the link when the last fd closes, which happens at exit.
    assert!(xdp_gone(&ns, &a)?, "no XDP program left on {a} after the attaching process died");
    Ok(())
}
