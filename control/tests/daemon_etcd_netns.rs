//! `weft run` in etcd mode, in a netns with its own etcd: it takes a lease,
//! reports it, keeps it over SIGTERM, and gets the same subnet back on restart. Without
//! `node.vtep_mac` it makes a locally administered unicast VtepMAC at its first start, keeps
//! it in `node.state_dir` and publishes the same one after a restart.

mod common;
mod netns;

use anyhow::{Context, Result, ensure};
use common::{Etcd, PREFIX};
use netns::daemon::{Daemon, engine_sections};
use netns::{Netns, root_or_skip, unique_stem, veth_between};
use weft_control::flannel::MacAddr;

/// The VtepMAC of a flannel vxlan lease value.
fn vtep_mac(lease: &str) -> Result<MacAddr> {
    let value: serde_json::Value = serde_json::from_str(lease)?;
    let mac = value["BackendData"]["VtepMAC"].as_str().with_context(|| format!("no VtepMAC in {lease}"))?;
    Ok(mac.parse()?)
}

#[test]
fn etcd_mode_keeps_its_lease_over_sigterm_and_gets_the_same_subnet_and_vtep_mac_back() -> Result<()> {
    if !root_or_skip("etcd_mode_keeps_its_lease_over_sigterm_and_gets_the_same_subnet_and_vtep_mac_back") {
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
subnet_file = "{d}/subnet.env"
state_dir = "{d}/state"
[etcd]
endpoints = ["{ep}"]
lease_ttl_secs = 60
[network]
network = "198.19.0.0/16"
backend = "vxlan"
{engine}"#,
            d = dir.path().display(),
            ep = etcd.endpoint(),
            engine = engine_sections(&up, "generic", 1, &sock)
        ),
    )?;

    let daemon = Daemon::start(&node, &cfg, &["--init-network"], &log)?;
    let first = daemon.wait_ready(&sock)?;
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
    daemon.sigterm()?;

    let key = format!("{PREFIX}/subnets/{}-{}", subnet.network(), subnet.prefix_len());
    let (etcd, value) = node.run({
        let key = key.clone();
        move || {
            let v = etcd.get(&key);
            (etcd, v)
        }
    })?;
    let value = value.context("our lease is kept in etcd after SIGTERM")?;
    assert!(value.contains("\"PublicIP\":\"198.18.0.11\""), "{value}");
    let first_mac = vtep_mac(&value)?;
    ensure!(
        first_mac.is_unicast() && first_mac.0[0] & 0b10 != 0,
        "{first_mac} is locally administered unicast"
    );
    let kept = std::fs::read_to_string(dir.path().join("state/vtep_mac"))?;
    assert_eq!(kept, format!("{first_mac}\n"), "the lease's VtepMAC is the one kept in node.state_dir");

    let daemon = Daemon::start(&node, &cfg, &["--init-network"], &log)?;
    let second = daemon.wait_ready(&sock)?;
    assert_eq!(second.subnet, first.subnet, "a restart gets the same subnet back");
    daemon.sigterm()?;
    let (etcd, value) = node.run(move || {
        let v = etcd.get(&key);
        (etcd, v)
    })?;
    let value = value.context("our lease is kept in etcd after the second SIGTERM")?;
    assert_eq!(vtep_mac(&value)?, first_mac, "a restart publishes the same VtepMAC");
    drop(etcd);
    Ok(())
}
