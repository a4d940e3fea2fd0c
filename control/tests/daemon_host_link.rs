//! The host link weft makes in its node's namespace (`[host_link]`, on by default), against
//! the real kernel in namespaces this test creates (prefix `wnd`), static mode, host-gw,
//! generic XDP on veths. Node A runs weft with pod `p` (198.19.1.5); node B (198.18.0.12) is a
//! kernel host-gw node with pod `q` (198.19.2.5). With `node.ipmasq`:
//! - a veth pair of the same names left by an earlier run is replaced;
//! - weft0 has 198.19.1.0/32, tx checksum offload off, the route `198.19.0.0/16 via
//!   198.19.1.1 dev weft0 onlink`, forwarding is on and `table ip weft` holds flannel's
//!   masquerade rules; `weft status` shows all of it;
//! - node A reaches its pod and B's pod; pod `p` reaches its node's addresses (weft0's and
//!   the uplink's) and B's;
//! - pod `p` to B's underlay address arrives masqueraded (from 198.18.0.11), pod `p` to pod
//!   `q` arrives from 198.19.1.5;
//! - after SIGTERM the link, its route and the table are gone and forwarding is off again.

mod netns;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use netns::daemon::{Daemon, engine_sections, static_node_a};
use netns::{Netns, ping_until, root_or_skip, veth_between};
use weft_testnet::veth_pair;

/// A TCP listener on `addr:port` in `ns` that accepts one connection and prints the peer's
/// address.
fn accept_one(ns: &Netns, addr: &str, port: u16) -> Result<Child> {
    let script = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{addr}',{port}))\ns.listen(1)\ns.settimeout(20)\nc,a=s.accept()\nprint(a[0],flush=True)\n"
    );
    Ok(Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// Connects from `from` to `addr:port` (retrying while the listener starts) and returns the
/// source address the listener saw.
fn source_seen(from: &Netns, to: &Netns, addr: &str, port: u16) -> Result<String> {
    let listener = accept_one(to, addr, port)?;
    let connect = format!(
        "import socket,time\nfor i in range(50):\n  try:\n    socket.create_connection(('{addr}',{port}),timeout=2).close()\n    break\n  except OSError:\n    time.sleep(0.2)\nelse:\n  raise SystemExit('no connection')\n"
    );
    let connected = from.exec(&["python3", "-c", &connect]);
    let out = listener.wait_with_output()?;
    connected.with_context(|| format!("connecting to {addr}:{port}"))?;
    ensure!(out.status.success(), "listener: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Nodes A and B on one underlay, B a kernel host-gw node with pod `q`, A's pod `p` behind
/// weft.
struct Lab {
    stem: String,
    a: Netns,
    b: Netns,
    pa: Netns,
    pb: Netns,
    uplink: String,
    pod_host: String,
}

impl Lab {
    fn new() -> Result<Self> {
        let stem = weft_testnet::unique_stem("wnd");
        let a = Netns::new(&format!("{stem}a"))?;
        let b = Netns::new(&format!("{stem}b"))?;
        let pa = Netns::new(&format!("{stem}p"))?;
        let pb = Netns::new(&format!("{stem}q"))?;
        let (up, up_b) = (format!("{stem}u"), format!("{stem}v"));
        veth_between(&a, &up, "02:00:00:3a:00:01", &b, &up_b, "02:00:00:3a:00:02")?;
        a.ip(&["addr", "add", "198.18.0.11/24", "dev", &up])?;
        b.ip(&["addr", "add", "198.18.0.12/24", "dev", &up_b])?;
        // B's kernel computes the checksums a NIC would (AF_XDP cannot finish partial ones).
        b.exec(&["ethtool", "-K", &up_b, "tx", "off"])?;
        b.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        b.ip(&["route", "add", "198.19.1.0/24", "via", "198.18.0.11", "dev", &up_b])?;
        let (host, pod) = (format!("{stem}ph"), format!("{stem}pe"));
        veth_between(&a, &host, "02:00:00:3a:01:01", &pa, &pod, "02:00:00:3a:01:02")?;
        pa.exec(&["ethtool", "-K", &pod, "tx", "off"])?;
        pa.ip(&["addr", "add", "198.19.1.5/24", "dev", &pod])?;
        pa.ip(&["route", "add", "default", "via", "198.19.1.1"])?;
        let (kb, podb) = (format!("{stem}k"), format!("{stem}f"));
        veth_between(&b, &kb, "02:00:00:3a:02:01", &pb, &podb, "02:00:00:3a:02:02")?;
        b.ip(&["addr", "add", "198.19.2.1/24", "dev", &kb])?;
        pb.ip(&["addr", "add", "198.19.2.5/24", "dev", &podb])?;
        pb.ip(&["route", "add", "default", "via", "198.19.2.1"])?;
        Ok(Lab { stem, a, b, pa, pb, uplink: up, pod_host: host })
    }

    fn config(&self, dir: &Path) -> String {
        format!(
            "{}{}[[pods]]\ninterface = \"{}\"\nip = \"198.19.1.5\"\nmac = \"02:00:00:3a:01:02\"\n",
            static_node_a(&format!("{}a", self.stem), dir).replace("[network]", "ipmasq = true\n[network]"),
            engine_sections(&self.uplink, "generic", 1, &dir.join("weft.sock")),
            self.pod_host
        )
    }

    fn forwarding(&self) -> Result<String> {
        Ok(self.a.exec(&["sysctl", "-n", "net.ipv4.ip_forward"])?.trim().to_owned())
    }
}

#[test]
fn weft_makes_its_host_link_the_node_and_its_pods_reach_each_other_and_exit_removes_it() -> Result<()> {
    if !root_or_skip("weft_makes_its_host_link_the_node_and_its_pods_reach_each_other_and_exit_removes_it") {
        return Ok(());
    }
    let lab = Lab::new()?;
    let dir = tempfile::tempdir()?;
    // What a weft killed with SIGKILL leaves: the pair, with another MAC.
    veth_pair(&lab.a, "weft0", "02:00:00:3a:0e:01", "weft0e", "02:00:00:3a:0e:02")?;
    ensure!(lab.forwarding()? == "0", "a new namespace forwards nothing");

    let path = dir.path().join("weft.toml");
    std::fs::write(&path, lab.config(dir.path()))?;
    let sock = dir.path().join("weft.sock");
    let daemon = Daemon::start(&lab.a, &path, &[], &dir.path().join("weft.log"))?;
    let r = daemon.wait_ready(&sock)?;
    let log = daemon.log();
    ensure!(log.contains("replacing a host link left by an earlier run"), "{log}");

    // The kernel's view.
    let addr = lab.a.ip(&["-4", "-o", "addr", "show", "dev", "weft0"])?;
    ensure!(addr.contains("inet 198.19.1.0/32"), "{addr}");
    let route = lab.a.ip(&["-4", "route", "show", "198.19.0.0/16"])?;
    ensure!(route.contains("via 198.19.1.1 dev weft0") && route.contains("onlink"), "{route}");
    let offload = lab.a.exec(&["ethtool", "-k", "weft0"])?;
    ensure!(offload.contains("tx-checksumming: off"), "{offload}");
    ensure!(lab.forwarding()? == "1");
    let table = lab.a.exec(&["nft", "list", "table", "ip", "weft"])?;
    for rule in [
        "ip saddr 198.19.0.0/16 ip daddr 198.19.0.0/16 return",
        "ip saddr != 198.19.0.0/16 ip daddr 198.19.1.0/24 return",
        "ip saddr 198.19.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
        "ip saddr != 198.19.0.0/16 ip daddr 198.19.0.0/16 masquerade fully-random",
    ] {
        ensure!(table.contains(rule), "{rule:?} in\n{table}");
    }
    // weft status.
    let h = r.host_link.clone().context("status shows the host link")?;
    ensure!(
        (h.interface.as_str(), h.engine_interface.as_str(), h.address.as_str())
            == ("weft0", "weft0e", "198.19.1.0/32")
    );
    ensure!(h.routes == ["198.19.0.0/16 via 198.19.1.1 dev weft0 onlink src 198.19.1.0"], "{h:?}");
    ensure!(h.masquerade && h.forwarding_turned_on && h.rules.len() == 6, "{h:?}");
    ensure!(r.ports.iter().any(|p| p.role == "exception" && p.name.starts_with("weft0e")), "{:?}", r.ports);
    let text = netns::daemon::cli(&["status", "--socket", &sock.display().to_string()])?;
    let text = String::from_utf8_lossy(&text.stdout);
    ensure!(text.contains("HOST LINK") && text.contains("masquerade   on"), "{text}");

    // The node reaches its pod and the other node's pod; the pod reaches its node and the
    // other node.
    for (from, name, to) in [
        (&lab.a, "node A", "198.19.1.5"),
        (&lab.a, "node A", "198.19.2.5"),
        (&lab.pa, "pod p", "198.19.1.0"),
        (&lab.pa, "pod p", "198.18.0.11"),
        (&lab.pa, "pod p", "198.18.0.12"),
        (&lab.pa, "pod p", "198.19.2.5"),
    ] {
        ensure!(ping_until(from, to, Duration::from_secs(10)), "{name} -> {to}\n{}", daemon.log());
    }
    // Masquerade: to outside the cluster network from the node's address, pod to pod as is.
    ensure!(source_seen(&lab.pa, &lab.b, "198.18.0.12", 9301)? == "198.18.0.11");
    ensure!(source_seen(&lab.pa, &lab.pb, "198.19.2.5", 9302)? == "198.19.1.5");
    ensure!(source_seen(&lab.a, &lab.pb, "198.19.2.5", 9303)? == "198.19.1.0");

    daemon.sigterm()?;
    let links = lab.a.ip(&["-o", "link", "show"])?;
    ensure!(!links.contains("weft0"), "the link left with weft:\n{links}");
    let routes = lab.a.ip(&["-4", "route", "show", "table", "all"])?;
    ensure!(!routes.contains("198.19.0.0/16"), "{routes}");
    if lab.a.exec(&["nft", "list", "table", "ip", "weft"]).is_ok() {
        bail!("table ip weft left with weft");
    }
    ensure!(lab.forwarding()? == "0", "forwarding off again");
    Ok(())
}
