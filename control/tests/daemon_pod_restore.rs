//! A restarted weft re-attaches its pods from `node.state_dir` without a CNI call: pods
//! attached through the API are recorded there; weft is SIGKILLed (no cleanup), one pod's
//! veth disappears while it is down, and the restarted weft forwards for the others again
//! without anyone re-adding them, and drops the record of the vanished one. A detach removes
//! the record. Static host-gw, generic XDP, namespaces this test creates (prefix `wpd`).

mod netns;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use netns::daemon::{Daemon, engine_sections, static_node_a};
use netns::{Netns, ping_until, root_or_skip, veth_between};
use weft_control::api::{Reply, Request, request};

fn pod_ip(i: u8) -> String {
    format!("198.19.1.{}", 20 + i)
}

fn pod_mac(i: u8) -> String {
    format!("02:00:00:2e:{:02x}:02", 0x10 + i)
}

fn done(sock: &Path, req: Request) -> Result<bool> {
    match request(sock, &req, Duration::from_secs(10)).with_context(|| format!("{req:?}"))? {
        Reply::Done { changed, .. } => Ok(changed),
        other => bail!("{req:?}: {other:?}"),
    }
}

fn start(a: &Netns, dir: &Path, cfg: &Path, sock: &Path) -> Result<Daemon> {
    let daemon = Daemon::start(a, cfg, &[], &dir.join("weft.log"))?;
    daemon.wait_ready(sock)?;
    Ok(daemon)
}

#[test]
fn after_a_sigkill_a_restarted_weft_reattaches_its_recorded_pods_and_drops_the_vanished_ones() -> Result<()> {
    if !root_or_skip(
        "after_a_sigkill_a_restarted_weft_reattaches_its_recorded_pods_and_drops_the_vanished_ones",
    ) {
        return Ok(());
    }
    let stem = weft_testnet::unique_stem("wpd");
    let a = Netns::new(&format!("{stem}a"))?;
    let b = Netns::new(&format!("{stem}b"))?;
    let up = format!("{stem}u");
    veth_between(&a, &up, "02:00:00:2e:00:01", &b, &format!("{stem}v"), "02:00:00:2e:00:02")?;
    a.ip(&["addr", "add", "198.18.0.11/24", "dev", &up])?;
    let mut pods = Vec::new();
    for i in 0..3u8 {
        let ns = Netns::new(&format!("{stem}{i}"))?;
        let (host, dev) = (format!("{stem}h{i}"), format!("{stem}e{i}"));
        veth_between(&a, &host, &format!("02:00:00:2e:{:02x}:01", 0x10 + i), &ns, &dev, &pod_mac(i))?;
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
            "{}{}",
            static_node_a(&format!("{stem}n"), dir.path()),
            engine_sections(&up, "generic", 1, &sock)
        ),
    )?;
    let records = dir.path().join("state/pods");

    let daemon = start(&a, dir.path(), &cfg, &sock)?;
    for i in 0..3u8 {
        let add = Request::PodAdd {
            interface: format!("{stem}h{i}"),
            ip: pod_ip(i),
            mac: Some(pod_mac(i)),
            namespace: Some("default".into()),
            name: Some(format!("web-{i}")),
            labels: Default::default(),
        };
        assert!(done(&sock, add)?, "attach pod {i}");
    }
    assert!(ping_until(&pods[0], &pod_ip(1), Duration::from_secs(10)), "pod 0 -> pod 1\n{}", daemon.log());
    let record = std::fs::read_to_string(records.join(format!("{stem}h1.json")))?;
    assert!(
        record.contains(&pod_ip(1)) && record.contains("web-1") && record.contains(&pod_mac(1)),
        "{record}"
    );

    // No cleanup: the records stay, the BPF links go with the process.
    daemon.sigkill()?;
    a.ip(&["link", "del", &format!("{stem}h2")])?;
    let t = Instant::now();
    let daemon = start(&a, dir.path(), &cfg, &sock)?;
    let r = Daemon::status(&sock)?;
    let mut attached: Vec<&str> = r.pods.iter().map(|p| p.ip.as_str()).collect();
    attached.sort_unstable();
    assert_eq!(attached, vec![pod_ip(0).as_str(), pod_ip(1).as_str()], "{}", daemon.log());
    assert!(
        ping_until(&pods[0], &pod_ip(1), Duration::from_secs(10)),
        "pod 0 -> pod 1 after the restart\n{}",
        daemon.log()
    );
    eprintln!("restart to first forwarded echo: {:?}", t.elapsed());
    let out = pods[1].exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", &pod_ip(0)])?;
    assert!(out.contains("3 received"), "pod 1 -> pod 0 after the restart: {out}");
    assert!(!records.join(format!("{stem}h2.json")).exists(), "the vanished pod's record is dropped");
    let log = daemon.log();
    assert!(log.contains("pod re-attached from its record") && log.contains("pod record dropped"), "{log}");

    // A detach forgets the record: the next restart does not bring the pod back.
    assert!(done(&sock, Request::PodDel { interface: format!("{stem}h1"), ip: None })?);
    assert!(!records.join(format!("{stem}h1.json")).exists());
    daemon.sigterm()?;
    let daemon = start(&a, dir.path(), &cfg, &sock)?;
    let r = Daemon::status(&sock)?;
    assert_eq!(r.pods.iter().map(|p| p.ip.as_str()).collect::<Vec<_>>(), vec![pod_ip(0).as_str()]);
    daemon.sigterm()?;
    Ok(())
}
