//! Pods on a node whose uplink fell back to AF_PACKET: the uplink opens no AF_XDP socket, so
//! the first pod's socket registers the worker's UMEM with the kernel. That pod leaves first
//! and comes back on the same veth, then every pod leaves and they come back: each attach
//! binds (the closed sockets hold neither their queues nor the UMEM) and the pods forward
//! between each other every time. Uplink: a bridge, which has no native XDP
//! (`xdp_mode = "native"`); pod veths take native XDP. No host link (its port would register
//! the UMEM first). Namespaces this test creates (prefix `wpd`).

mod netns;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netns::daemon::{Daemon, engine_sections, static_node_a};
use netns::{Netns, ping_until, root_or_skip, veth_between};
use weft_control::api::{Reply, Request, request};

fn pod_ip(i: u8) -> String {
    format!("198.19.1.{}", 30 + i)
}

fn pod_mac(i: u8) -> String {
    format!("02:00:00:2f:{:02x}:02", 0x10 + i)
}

fn done(sock: &Path, req: Request) -> Result<bool> {
    match request(sock, &req, Duration::from_secs(10)).with_context(|| format!("{req:?}"))? {
        Reply::Done { changed, .. } => Ok(changed),
        other => bail!("{req:?}: {other:?}"),
    }
}

fn add(sock: &Path, stem: &str, i: u8) -> Result<bool> {
    done(
        sock,
        Request::PodAdd {
            interface: format!("{stem}h{i}"),
            ip: pod_ip(i),
            mac: Some(pod_mac(i)),
            namespace: None,
            name: None,
            labels: Default::default(),
        },
    )
}

fn del(sock: &Path, stem: &str, i: u8) -> Result<bool> {
    done(sock, Request::PodDel { interface: format!("{stem}h{i}"), ip: None })
}

#[test]
fn on_an_af_packet_uplink_pods_leave_and_come_back_on_their_veths_and_forward_each_time() -> Result<()> {
    if !root_or_skip("on_an_af_packet_uplink_pods_leave_and_come_back_on_their_veths_and_forward_each_time") {
        return Ok(());
    }
    let stem = weft_testnet::unique_stem("wpd");
    let a = Netns::new(&format!("{stem}a"))?;
    let up = format!("{stem}u");
    a.ip(&["link", "add", &up, "address", "02:00:00:2f:00:01", "type", "bridge"])?;
    a.ip(&["link", "set", &up, "up"])?;
    a.ip(&["addr", "add", "198.18.0.11/24", "dev", &up])?;
    let mut pods = Vec::new();
    for i in 0..2u8 {
        let ns = Netns::new(&format!("{stem}{i}"))?;
        let (host, dev) = (format!("{stem}h{i}"), format!("{stem}e{i}"));
        veth_between(&a, &host, &format!("02:00:00:2f:{:02x}:01", 0x10 + i), &ns, &dev, &pod_mac(i))?;
        ns.exec(&["ethtool", "-K", &dev, "tx", "off"])?;
        ns.ip(&["addr", "add", &format!("{}/24", pod_ip(i)), "dev", &dev])?;
        ns.ip(&["route", "add", "default", "via", "198.19.1.1"])?;
        pods.push(ns);
    }
    let dir = tempfile::tempdir()?;
    let sock = dir.path().join("weft.sock");
    let cfg = dir.path().join("weft.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}{}[host_link]\nenabled = false\n",
            static_node_a(&format!("{stem}n"), dir.path()),
            engine_sections(&up, "native", 1, &sock)
        ),
    )?;
    let daemon = Daemon::start(&a, &cfg, &[], &dir.path().join("weft.log"))?;
    daemon.wait_ready(&sock)?;
    let r = Daemon::status(&sock)?;
    let uplink = r.ports.iter().find(|p| p.role == "uplink").context("uplink port")?;
    assert!(
        uplink.kind.starts_with("af_packet") && uplink.fallback_reason.is_some(),
        "the uplink fell back to AF_PACKET: {uplink:?}\n{}",
        daemon.log()
    );

    let reach = |what: &str| -> Result<()> {
        if !ping_until(&pods[0], &pod_ip(1), Duration::from_secs(10)) {
            bail!("pod 0 -> pod 1 {what}\n{}", daemon.log());
        }
        Ok(())
    };
    assert!(add(&sock, &stem, 0)?, "pod 0 attached (registers the UMEM)");
    assert!(add(&sock, &stem, 1)?, "pod 1 attached");
    let r = Daemon::status(&sock)?;
    let pod_kinds: Vec<&str> = r.ports.iter().filter(|p| p.role == "pod").map(|p| p.kind.as_str()).collect();
    assert!(pod_kinds.len() == 2 && pod_kinds.iter().all(|k| k.starts_with("af_xdp")), "{pod_kinds:?}");
    reach("with both attached")?;

    // The pod whose socket registered the UMEM leaves and comes back on the same veth.
    assert!(del(&sock, &stem, 0)?);
    assert!(add(&sock, &stem, 0)?, "pod 0 re-attached on its veth");
    reach("after pod 0 came back")?;

    // Every pod leaves; the next attach registers the UMEM again.
    assert!(del(&sock, &stem, 0)?);
    assert!(del(&sock, &stem, 1)?);
    assert!(add(&sock, &stem, 1)?, "pod 1 re-attached with no socket left over the UMEM");
    assert!(add(&sock, &stem, 0)?, "pod 0 re-attached");
    reach("after both came back")?;
    daemon.sigterm()?;
    Ok(())
}
