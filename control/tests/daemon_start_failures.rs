//! `weft run` starts that fail, each in a netns of its own with a real etcd. Every one exits
//! non-zero with one error line naming what is wrong, and leaves etcd exactly as it was
//! (every key with its value and etcd lease, every etcd lease with its TTL) and the node's
//! namespace as it was (links, addresses, routes, nftables ruleset, IPv4 forwarding):
//! - found before anything is taken: a missing capability, a missing uplink, a subnet file
//!   whose directory cannot be written, a state directory that cannot be made (where weft,
//!   without node.vtep_mac as here, keeps its VtepMAC);
//! - found after the lease was taken: a pod outside the subnet we got, an uplink queue that
//!   does not exist (found after weft made its host link: the link, its route, forwarding and,
//!   with node.ipmasq, the masquerade rules go again); also when the lease taken was one of
//!   ours from an earlier run (it is put back on its own etcd lease).

mod common;
mod netns;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::etcd::Snapshot;
use common::{Etcd, PREFIX, flannel_vxlan_lease};
use netns::daemon::engine_sections;
use netns::{Netns, root_or_skip, unique_stem, veth_between};
use weft_testnet::veth_pair;

/// One subnet to lease, so a test knows which one weft gets.
const NETWORK: &str = r#"{"Network":"198.19.0.0/16","SubnetMin":"198.19.5.0","SubnetMax":"198.19.5.0","Backend":{"Type":"vxlan"}}"#;
const OUR_SUBNET_KEY: &str = "198.19.5.0-24";

/// A node namespace with an uplink veth and a pod veth, its etcd holding
/// the network config, another node's lease and (optionally) a lease of ours from an earlier
/// run, and a temp dir.
struct Node {
    ns: Netns,
    _peer: Netns,
    etcd: Option<Etcd>,
    dir: tempfile::TempDir,
    uplink: String,
    pod: String,
}

/// How one start is set up to fail.
#[derive(Default)]
struct Start<'a> {
    /// `uplink.interface` (default: the node's uplink veth).
    uplink: Option<String>,
    /// Lines added to `[uplink]`.
    uplink_extra: &'a str,
    /// `uplink.queues` (default 1).
    queues: Option<u32>,
    /// `node.subnet_file` (default: `subnet.env` in the temp dir).
    subnet_file: Option<PathBuf>,
    /// `node.state_dir` (default: `state` in the temp dir).
    state_dir: Option<PathBuf>,
    /// A `[[pods]]` entry with this address on the node's pod veth.
    pod_ip: Option<&'a str>,
    /// Capabilities dropped from the bounding set before weft starts (setpriv syntax).
    drop_caps: Option<&'a str>,
    /// `node.ipmasq`: the host link weft makes (by default) gets masquerade rules too.
    ipmasq: bool,
}

impl Node {
    fn new(earlier_lease: bool) -> Result<Self> {
        let stem = unique_stem();
        let ns = Netns::new(&format!("{stem}n"))?;
        let peer = Netns::new(&format!("{stem}w"))?;
        let uplink = format!("{stem}u");
        veth_between(&ns, &uplink, "02:00:00:10:00:01", &peer, &format!("{stem}v"), "02:00:00:10:00:02")?;
        let pod = format!("{stem}p");
        veth_pair(&ns, &pod, "02:00:00:10:00:03", &format!("{stem}q"), "02:00:00:10:00:04")?;
        let etcd = ns.run(move || {
            let etcd = Etcd::start();
            etcd.etcdctl(&["put", &format!("{PREFIX}/config"), NETWORK]);
            let other = etcd.grant(600);
            let key = format!("{PREFIX}/subnets/198.19.90.0-24");
            etcd.etcdctl(&[
                "put",
                "--lease",
                &other,
                &key,
                &flannel_vxlan_lease("198.18.0.90", "0a:58:c6:12:00:5a"),
            ]);
            if earlier_lease {
                // Our PublicIP, another VtepMAC: a value weft would not write itself.
                let ours = etcd.grant(3600);
                let key = format!("{PREFIX}/subnets/{OUR_SUBNET_KEY}");
                let value = flannel_vxlan_lease("198.18.0.11", "0a:58:c6:12:00:ee");
                etcd.etcdctl(&["put", "--lease", &ours, &key, &value]);
            }
            etcd
        })?;
        Ok(Node { ns, _peer: peer, etcd: Some(etcd), dir: tempfile::tempdir()?, uplink, pod })
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let endpoint = self.etcd.as_ref().context("etcd")?.endpoint();
        self.ns.run(move || Snapshot::take_blocking(&endpoint))
    }

    /// What a start could leave in the node's namespace: link names, addresses, routes (every
    /// table), the nftables ruleset and the IPv4 forwarding settings.
    fn namespace(&self) -> Result<String> {
        let links: Vec<String> = self
            .ns
            .ip(&["-o", "link", "show"])?
            .lines()
            .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_owned()))
            .collect();
        Ok(format!(
            "links {links:?}\n{}{}{}{}",
            self.ns.ip(&["-4", "-o", "addr", "show"])?,
            self.ns.ip(&["-4", "route", "show", "table", "all"])?,
            self.ns.exec(&["nft", "list", "ruleset"])?,
            self.ns.exec(&["sysctl", "-a", "--pattern", "net.ipv4.(ip_forward|conf.*.forwarding)"])?,
        ))
    }

    /// Writes the config for `start`, runs `weft run` until it exits (at most 30 s) and
    /// returns its stderr; fails if weft keeps running or exits 0.
    fn run_weft(&self, start: &Start) -> Result<String> {
        let d = self.dir.path();
        let uplink = start.uplink.clone().unwrap_or_else(|| self.uplink.clone());
        let engine = engine_sections(&uplink, "generic", start.queues.unwrap_or(1), &d.join("w.sock"))
            .replace("[uplink]\n", &format!("[uplink]\n{}", start.uplink_extra));
        let subnet_file = start.subnet_file.clone().unwrap_or_else(|| d.join("subnet.env"));
        let state_dir = start.state_dir.clone().unwrap_or_else(|| d.join("state"));
        let pods = start
            .pod_ip
            .map(|ip| format!("[[pods]]\ninterface = \"{}\"\nip = \"{ip}\"\n", self.pod))
            .unwrap_or_default();
        let ipmasq = if start.ipmasq { "ipmasq = true\n" } else { "" };
        let cfg = d.join("w.toml");
        std::fs::write(
            &cfg,
            format!(
                "mode = \"etcd\"\n[node]\nname = \"fails\"\npublic_ip = \"198.18.0.11\"\n{ipmasq}\
                 subnet_file = \"{}\"\nstate_dir = \"{}\"\n[etcd]\nendpoints = [\"{}\"]\n{engine}{pods}",
                subnet_file.display(),
                state_dir.display(),
                self.etcd.as_ref().context("etcd")?.endpoint(),
            ),
        )?;
        let log = d.join("w.log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns.name]);
        if let Some(caps) = start.drop_caps {
            cmd.args(["setpriv", &format!("--bounding-set={caps}"), "--"]);
        }
        let mut child = cmd
            .args([env!("CARGO_BIN_EXE_weft"), "run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("weft still runs after 30 s:\n{}", std::fs::read_to_string(&log)?);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&log)?;
        ensure!(!status.success(), "weft exited 0:\n{text}");
        Ok(text)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // etcd runs in the namespace: stop it (by PID) before the namespace goes.
        drop(self.etcd.take());
    }
}

/// Starts weft as `start` says on a node (with a lease of ours from an earlier run when
/// `earlier_lease`), and checks: it exits non-zero, its last stderr line is the one error line
/// and contains `expected`, nothing else was logged as an error, and etcd and the node's
/// namespace are as before.
fn fails_leaving_etcd_as_it_was(
    test: &str,
    earlier_lease: bool,
    start: impl FnOnce(&Node) -> Start,
    expected: &str,
) -> Result<()> {
    if !root_or_skip(test) {
        return Ok(());
    }
    let node = Node::new(earlier_lease)?;
    let before = node.snapshot()?;
    let namespace = node.namespace()?;
    let start = start(&node);
    let log = node.run_weft(&start)?;
    ensure!(!start.ipmasq || log.contains("host link created"), "weft made its host link first:\n{log}");
    let errors: Vec<&str> =
        log.lines().filter(|l| l.starts_with("weft: ") || l.contains(" ERROR ")).collect();
    ensure!(errors.len() == 1 && log.lines().last() == Some(errors[0]), "one error line, last:\n{log}");
    ensure!(errors[0].contains(expected), "the error names {expected:?}:\n{log}");
    let after = node.snapshot()?;
    ensure!(after == before, "etcd changed by a failed start:\nbefore {before:?}\nafter  {after:?}\n{log}");
    let now = node.namespace()?;
    ensure!(
        now == namespace,
        "the node's namespace changed by a failed start:\nbefore {namespace}\nafter  {now}\n{log}"
    );
    Ok(())
}

#[test]
fn a_missing_capability_stops_the_start_before_etcd_is_touched() -> Result<()> {
    fails_leaving_etcd_as_it_was(
        "a_missing_capability_stops_the_start_before_etcd_is_touched",
        true,
        |_| Start {
            uplink_extra: "backend = \"af_xdp\"\n",
            drop_caps: Some("-bpf,-sys_admin"),
            ..Start::default()
        },
        "missing capabilities: CAP_BPF or CAP_SYS_ADMIN",
    )
}

#[test]
fn a_missing_uplink_stops_the_start_before_etcd_is_touched() -> Result<()> {
    fails_leaving_etcd_as_it_was(
        "a_missing_uplink_stops_the_start_before_etcd_is_touched",
        true,
        |n| Start { uplink: Some(format!("{}x", n.uplink)), ..Start::default() },
        "uplink.interface: interface",
    )
}

#[test]
fn an_unwritable_subnet_file_stops_the_start_before_etcd_is_touched() -> Result<()> {
    fails_leaving_etcd_as_it_was(
        "an_unwritable_subnet_file_stops_the_start_before_etcd_is_touched",
        false,
        |n| {
            let file = n.dir.path().join("afile");
            std::fs::write(&file, "").expect("a file where the directory should be");
            Start { subnet_file: Some(file.join("subnet.env")), ..Start::default() }
        },
        "node.subnet_file: cannot write",
    )
}

#[test]
fn a_state_dir_that_cannot_be_made_stops_the_start_before_etcd_is_touched() -> Result<()> {
    fails_leaving_etcd_as_it_was(
        "a_state_dir_that_cannot_be_made_stops_the_start_before_etcd_is_touched",
        true,
        |_| Start { state_dir: Some(PathBuf::from("/dev/null/state")), ..Start::default() },
        "node.state_dir: cannot write /dev/null/state: cannot create a file in /dev/null: Not a directory \
         (os error 20)",
    )
}

#[test]
fn a_pod_outside_the_leased_subnet_fails_the_start_and_the_lease_is_revoked() -> Result<()> {
    fails_leaving_etcd_as_it_was(
        "a_pod_outside_the_leased_subnet_fails_the_start_and_the_lease_is_revoked",
        false,
        |_| Start { pod_ip: Some("198.19.6.2"), ..Start::default() },
        "pods[0].ip: 198.19.6.2 is not in our pod subnet 198.19.5.0/24",
    )
}

#[test]
fn a_failed_start_puts_back_the_earlier_lease_of_ours_it_took_over() -> Result<()> {
    fails_leaving_etcd_as_it_was(
        "a_failed_start_puts_back_the_earlier_lease_of_ours_it_took_over",
        true,
        |_| Start { pod_ip: Some("198.19.6.2"), ..Start::default() },
        "pods[0].ip: 198.19.6.2 is not in our pod subnet 198.19.5.0/24",
    )
}

#[test]
fn an_uplink_queue_that_does_not_exist_fails_the_start_and_our_earlier_lease_is_put_back() -> Result<()> {
    fails_leaving_etcd_as_it_was(
        "an_uplink_queue_that_does_not_exist_fails_the_start_and_our_earlier_lease_is_put_back",
        true,
        |_| Start { uplink_extra: "backend = \"af_xdp\"\n", queues: Some(2), ..Start::default() },
        "AF_XDP socket queue 1",
    )
}

#[test]
fn a_start_that_fails_after_weft_made_its_host_link_removes_the_link_route_forwarding_and_rules() -> Result<()>
{
    fails_leaving_etcd_as_it_was(
        "a_start_that_fails_after_weft_made_its_host_link_removes_the_link_route_forwarding_and_rules",
        false,
        |_| Start {
            uplink_extra: "backend = \"af_xdp\"\n",
            queues: Some(2),
            ipmasq: true,
            ..Start::default()
        },
        "AF_XDP socket queue 1",
    )
}
