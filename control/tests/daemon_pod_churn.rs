//! Pods come and go without disturbing anyone: while pod A pings pod B every 10 ms through
//! weft (both pods on the pod worker), a third pod is attached and detached again and again
//! through the API; not one echo of the steady flow is lost, the churned pod answers when it
//! is attached, and its frames go back to the worker's pool (no fill-ring starvation after).
//! Static mode, all in namespaces this test creates (prefix `wd`).

mod netns;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use netns::daemon::{Daemon, engine_sections, static_node_a};
use netns::{Netns, root_or_skip, unique_stem, veth_between};
use weft_control::api::{Reply, Request, request};

/// Echoes of the steady flow, 10 ms apart (15 to 25 s on a loaded machine).
const ECHOES: u32 = 1500;
/// Attach/detach cycles at most (fewer when the flow ends first).
const CYCLES: u32 = 200;

fn api(sock: &Path, req: Request) -> Result<bool> {
    match request(sock, &req, Duration::from_secs(10))? {
        Reply::Done { changed, .. } => Ok(changed),
        other => bail!("{req:?}: {other:?}"),
    }
}

/// A pod namespace `ns` behind host end `host` of node `a`, address `ip`, gateway .1.
fn pod(a: &Netns, ns: &Netns, host: &str, dev: &str, mac: &str, ip: &str, host_mac: &str) -> Result<()> {
    veth_between(a, host, host_mac, ns, dev, mac)?;
    ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", dev])?;
    ns.ip(&["route", "add", "default", "via", "198.19.1.1"])?;
    Ok(())
}

#[test]
fn a_steady_flow_between_two_pods_loses_nothing_while_a_third_pod_is_attached_and_detached_200_times()
-> Result<()> {
    if !root_or_skip(
        "a_steady_flow_between_two_pods_loses_nothing_while_a_third_pod_is_attached_and_detached",
    ) {
        return Ok(());
    }
    let stem = unique_stem();
    let a = Netns::new(&format!("{stem}a"))?;
    let b = Netns::new(&format!("{stem}b"))?;
    let (pa, pb, pc) = (
        Netns::new(&format!("{stem}p"))?,
        Netns::new(&format!("{stem}q"))?,
        Netns::new(&format!("{stem}r"))?,
    );
    let up = format!("{stem}u");
    veth_between(&a, &up, "02:00:00:2f:00:01", &b, &format!("{stem}v"), "02:00:00:2f:00:02")?;
    a.ip(&["addr", "add", "198.18.0.11/24", "dev", &up])?;
    let (ha, hb, hc) = (format!("{stem}h"), format!("{stem}i"), format!("{stem}j"));
    pod(&a, &pa, &ha, &format!("{stem}e"), "02:00:00:2f:01:02", "198.19.1.5", "02:00:00:2f:01:01")?;
    pod(&a, &pb, &hb, &format!("{stem}f"), "02:00:00:2f:02:02", "198.19.1.6", "02:00:00:2f:02:01")?;
    pod(&a, &pc, &hc, &format!("{stem}g"), "02:00:00:2f:03:02", "198.19.1.7", "02:00:00:2f:03:01")?;

    let dir = tempfile::tempdir()?;
    let sock = dir.path().join("weft.sock");
    let cfg = format!(
        "{}{}[[pods]]\ninterface = \"{ha}\"\nip = \"198.19.1.5\"\nmac = \"02:00:00:2f:01:02\"\n\
         [[pods]]\ninterface = \"{hb}\"\nip = \"198.19.1.6\"\nmac = \"02:00:00:2f:02:02\"\n",
        static_node_a(&format!("{stem}n"), dir.path()),
        engine_sections(&up, "generic", 1, &sock)
    );
    let cfg_path = dir.path().join("weft.toml");
    std::fs::write(&cfg_path, cfg)?;
    let daemon = Daemon::start(&a, &cfg_path, &[], &dir.path().join("weft.log"))?;
    daemon.wait_ready(&sock)?;
    let first = pa.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.19.1.6"]).context("A -> B")?;
    assert!(first.contains("3 received"), "{first}\n{}", daemon.log());

    // The steady flow: A pings B every 10 ms while C comes and goes.
    let mut flow = std::process::Command::new("ip")
        .args(["netns", "exec", &pa.name, "ping", "-q", "-c", &ECHOES.to_string(), "-i", "0.01", "-W", "2"])
        .arg("198.19.1.6")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let add = || Request::PodAdd {
        interface: hc.clone(),
        ip: "198.19.1.7".into(),
        mac: Some("02:00:00:2f:03:02".into()),
        namespace: None,
        name: None,
        labels: Default::default(),
    };
    let del = || Request::PodDel { interface: hc.clone(), ip: None };
    let started = Instant::now();
    let mut cycles = 0;
    let mut attach_ms = Vec::new();
    while cycles < CYCLES && flow.try_wait()?.is_none() {
        let t = Instant::now();
        assert!(api(&sock, add())?, "attach {cycles} changed nothing");
        attach_ms.push(t.elapsed().as_secs_f64() * 1e3);
        // Now and then the churned pod must answer while it is attached.
        if cycles % 50 == 0 {
            let out =
                pc.exec(&["ping", "-c", "1", "-W", "2", "198.19.1.5"]).context("C -> A while attached")?;
            assert!(out.contains("1 received"), "cycle {cycles}: {out}");
        }
        assert!(api(&sock, del())?, "detach {cycles} changed nothing");
        cycles += 1;
    }
    let churn = started.elapsed();
    let out = flow.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let report = Daemon::status(&sock)?;
    attach_ms.sort_by(f64::total_cmp);
    eprintln!(
        "{cycles} attach/detach cycles in {churn:?}; attach p50 {:.2} ms p99 {:.2} ms; flow: {}",
        attach_ms[attach_ms.len() / 2],
        attach_ms[attach_ms.len() * 99 / 100],
        text.lines().filter(|l| l.contains("received")).collect::<String>()
    );
    assert!(cycles >= 50, "only {cycles} cycles in {churn:?}");
    assert!(
        text.contains(&format!("{ECHOES} packets transmitted, {ECHOES} received")),
        "the steady flow lost echoes during {cycles} attach/detach cycles: {text}\ndrops {:?}\n{}",
        report.drops.iter().filter(|d| d.count > 0).collect::<Vec<_>>(),
        daemon.log()
    );

    // The churned pod's frames went back to the pool: attached once more it is served, and
    // no fill ring went short.
    assert!(api(&sock, add())?);
    let out =
        pc.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.19.1.5"]).context("C -> A at the end")?;
    assert!(out.contains("3 received"), "{out}");
    let report = Daemon::status(&sock)?;
    assert_eq!(report.pods.len(), 3, "{:?}", report.pods);
    let starved: u64 = report.workers.iter().map(|w| w.fill_starved).sum();
    assert_eq!(starved, 0, "fill rings went short of frames: {:?}", report.workers);
    assert_eq!(report.ports.iter().filter(|p| p.role == "pod").count(), 3, "{:?}", report.ports);
    assert!(api(&sock, del())?);
    let report = Daemon::status(&sock)?;
    assert_eq!(report.ports.iter().filter(|p| p.role == "pod").count(), 2, "{:?}", report.ports);
    daemon.sigterm()?;
    Ok(())
}
