//! Setup failures give one clear line naming what is missing, never a panic:
//! a missing interface, and (in a child process stripped of every capability)
//! missing privileges.

mod common;

use std::process::Command;

use anyhow::{Context, Result};
use common::root_or_skip;
use weft_engine::port::xdp_filter::{XdpAttachment, XdpMode, XdpProgram};
use weft_engine::port::{AfPacketPort, AfXdpPort, FramePool, PortError, TpacketGeometry, XskConfig};

const CHILD_ENV: &str = "WEFT_TEST_NO_CAPS_CHILD";

fn one_line(e: &PortError) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "error is one line: {s}");
    s
}

#[test]
fn a_missing_interface_is_named_in_one_line_by_every_port_kind() {
    let mut pool = FramePool::new(64).unwrap();
    let ifname = "wxnosuchif0";
    let e = AfXdpPort::open(&mut pool, &XskConfig::new(ifname, 0)).unwrap_err();
    let s = one_line(&e);
    assert!(matches!(e, PortError::NoSuchInterface { .. }), "{s}");
    assert!(s.contains(ifname) && s.contains("no such interface") && s.contains("AF_XDP"), "{s}");

    let e = AfPacketPort::open(ifname, TpacketGeometry::default()).unwrap_err();
    let s = one_line(&e);
    assert!(s.contains(ifname) && s.contains("no such interface") && s.contains("AF_PACKET"), "{s}");

    let e = XdpAttachment::attach(ifname, XdpProgram::All, XdpMode::Auto).unwrap_err();
    let s = one_line(&e);
    assert!(s.contains(ifname) && s.contains("no such interface") && s.contains("XDP"), "{s}");
}

#[test]
fn invalid_ring_sizes_are_rejected_before_any_syscall() {
    let mut pool = FramePool::new(64).unwrap();
    let mut cfg = XskConfig::new("lo", 0);
    cfg.ring_size = 1000;
    let s = one_line(&AfXdpPort::open(&mut pool, &cfg).unwrap_err());
    assert!(s.contains("power of two"), "{s}");
}

/// Child half: runs without capabilities and prints each error line.
#[test]
fn child_reports_missing_privileges() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let mut pool = FramePool::new(64).unwrap();
    let xsk = AfXdpPort::open(&mut pool, &XskConfig::new("lo", 0)).unwrap_err();
    println!("ERR-AFXDP: {}", one_line(&xsk));
    let pkt = AfPacketPort::open("lo", TpacketGeometry::default()).unwrap_err();
    println!("ERR-AFPACKET: {}", one_line(&pkt));
    let xdp = XdpAttachment::attach("lo", XdpProgram::All, XdpMode::Auto).unwrap_err();
    println!("ERR-XDP: {}", one_line(&xdp));
}

#[test]
fn without_capabilities_each_setup_step_names_the_missing_privilege() -> Result<()> {
    if !root_or_skip("without_capabilities_each_setup_step_names_the_missing_privilege") {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    // Root uid, but an empty bounding set: execve grants no capabilities.
    let out = Command::new("setpriv")
        .args(["--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--"])
        .arg(&exe)
        .args(["--exact", "child_reports_missing_privileges", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .context("running setpriv (util-linux)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child must not panic: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The harness may print "test name ... " on the same line before the output.
    let line =
        |tag: &str| stdout.lines().find_map(|l| l.find(tag).map(|i| l[i..].to_owned())).unwrap_or_default();
    let (xsk, pkt, xdp) = (line("ERR-AFXDP:"), line("ERR-AFPACKET:"), line("ERR-XDP:"));
    eprintln!("{xsk}\n{pkt}\n{xdp}");
    assert!(xsk.contains("permission denied") && xsk.contains("CAP_NET_RAW") && xsk.contains("lo"), "{xsk}");
    assert!(pkt.contains("permission denied") && pkt.contains("CAP_NET_RAW"), "{pkt}");
    assert!(xdp.contains("permission denied") && xdp.contains("CAP_BPF"), "{xdp}");
    Ok(())
}
