//! `weft run` in etcd mode, in a netns with its own etcd: it takes a lease,
//! reports it, keeps it over SIGTERM, and gets the same subnet back on restart.

mod common;
mod netns;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{Etcd, PREFIX};
use netns::{Netns, root_or_skip, unique_stem, veth_between};
use weft_control::api::StatusReport;

struct Daemon(Option<Child>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(ns: &Netns, cfg: &Path, log: &Path) -> Result<Daemon> {
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_weft"), "run", "--init-network", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    Ok(Daemon(Some(child)))
}

fn wait_status(sock: &Path, log: &Path) -> Result<StatusReport> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["status", "--json", "--socket"])
            .arg(sock)
            .output()?;
        if out.status.success() {
            return Ok(serde_json::from_slice(&out.stdout)?);
        }
        if Instant::now() > deadline {
            bail!("no status: {}\n{}", String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(log)?);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigterm(mut d: Daemon, log: &Path) -> Result<()> {
    let mut child = d.0.take().context("child")?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = child.try_wait()? {
            if !s.success() {
                bail!("exit {s:?}\n{}", std::fs::read_to_string(log)?);
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("no stop on SIGTERM\n{}", std::fs::read_to_string(log)?);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn etcd_mode_keeps_its_lease_over_sigterm_and_gets_the_same_subnet_back() -> Result<()> {
    if !root_or_skip("etcd_mode_keeps_its_lease_over_sigterm_and_gets_the_same_subnet_back") {
        return Ok(());
    }
    let stem = unique_stem();
    let node = Netns::new(&format!("{stem}n"))?;
    let peer = Netns::new(&format!("{stem}w"))?;
    let up = format!("{stem}u");
    veth_between(&node, &up, "02:00:00:0f:00:01", &peer, &format!("{stem}v"), "02:00:00:0f:00:02")?;
    // etcd inside the node's namespace (spawned from a thread that entered it).
    let etcd = node.run(Etcd::start)?;
    let dir = tempfile::tempdir()?;
    let (cfg, log, sock) = (dir.path().join("w.toml"), dir.path().join("w.log"), dir.path().join("w.sock"));
    std::fs::write(
        &cfg,
        format!(
            r#"mode = "etcd"
[node]
name = "{stem}"
public_ip = "198.18.0.11"
vtep_mac = "0a:58:c6:12:00:0b"
subnet_file = "{d}/subnet.env"
[etcd]
endpoints = ["{ep}"]
lease_ttl_secs = 60
[network]
network = "198.19.0.0/16"
backend = "vxlan"
[uplink]
interface = "{up}"
xdp_mode = "generic"
[workers]
frames = 1024
[metrics]
enabled = false
[api]
socket = "{s}"
"#,
            d = dir.path().display(),
            ep = etcd.endpoint(),
            s = sock.display()
        ),
    )?;

    let daemon = start(&node, &cfg, &log)?;
    let first = wait_status(&sock, &log)?;
    let etcd_state = first.etcd.clone().context("etcd mode reports etcd state")?;
    assert!(etcd_state.connected && etcd_state.lease_id != 0, "{etcd_state:?}");
    assert_eq!(first.mode, "etcd");
    assert_eq!(first.backend, "vxlan");
    let subnet: ipnet::Ipv4Net = first.subnet.parse()?;
    assert!("198.19.0.0/16".parse::<ipnet::Ipv4Net>()?.contains(&subnet), "{subnet}");
    let env = std::fs::read_to_string(dir.path().join("subnet.env"))?;
    assert!(
        env.contains(&format!("FLANNEL_SUBNET={}/24", {
            let mut o = subnet.network().octets();
            o[3] += 1;
            std::net::Ipv4Addr::from(o)
        })),
        "{env}"
    );
    sigterm(daemon, &log)?;

    let key = format!("{PREFIX}/subnets/{}-{}", subnet.network(), subnet.prefix_len());
    let (etcd, value) = node.run(move || {
        let v = etcd.get(&key);
        (etcd, v)
    })?;
    let value = value.context("our lease is kept in etcd after SIGTERM")?;
    assert!(value.contains("\"PublicIP\":\"198.18.0.11\""), "{value}");

    let daemon = start(&node, &cfg, &log)?;
    let second = wait_status(&sock, &log)?;
    assert_eq!(second.subnet, first.subnet, "a restart gets the same subnet back");
    sigterm(daemon, &log)?;
    drop(etcd);
    Ok(())
}
