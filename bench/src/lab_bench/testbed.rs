//! The benchmark lab: three nodes on one underlay — n1 and n2 run the kernel's data path as
//! flanneld programs it, n3 runs weft — one pod each, and the three paths measured on it:
//!
//! ```text
//!   kernel      n1 pod -> n1 kernel encap -> underlay -> n2 kernel decap -> n2 pod
//!   weft-encap  n3 pod -> n3 weft encap   -> underlay -> n1 kernel decap -> n1 pod
//!   weft-decap  n1 pod -> n1 kernel encap -> underlay -> n3 weft decap   -> n3 pod
//! ```
//!
//! A 2-core machine cannot run a generator and two busy engines, so one weft node is measured
//! against a kernel peer; the generator is pinned to core 0 and weft's worker to core 1.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeSpec, PodState, cmd};

use super::frame::Endpoints;

/// One measured path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// Kernel encap -> kernel decap (n1 -> n2): the baseline.
    Kernel,
    /// weft encap -> kernel decap (n3 -> n1).
    WeftEncap,
    /// Kernel encap -> weft decap (n1 -> n3).
    WeftDecap,
}

impl PathKind {
    /// Every path, in the order runs alternate.
    pub const ALL: [PathKind; 3] = [PathKind::Kernel, PathKind::WeftEncap, PathKind::WeftDecap];

    /// `kernel`, `weft-encap`, `weft-decap`.
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Kernel => "kernel",
            PathKind::WeftEncap => "weft-encap",
            PathKind::WeftDecap => "weft-decap",
        }
    }

    /// Parses a [`PathKind::name`].
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .with_context(|| format!("path {s:?} is not one of kernel, weft-encap, weft-decap"))
    }

    /// `"weft"` when a weft node is on the path, else `"kernel"`.
    pub fn engine(self) -> &'static str {
        match self {
            PathKind::Kernel => "kernel",
            _ => "weft",
        }
    }

    /// (sending node, receiving node), 1-based.
    pub fn nodes(self) -> (usize, usize) {
        match self {
            PathKind::Kernel => (1, 2),
            PathKind::WeftEncap => (WEFT_NODE, 1),
            PathKind::WeftDecap => (1, WEFT_NODE),
        }
    }
}

/// The weft node's index.
pub const WEFT_NODE: usize = 3;
/// The core the generator is pinned to.
pub const GENERATOR_CORE: usize = 0;
/// The core weft's worker is pinned to.
pub const WEFT_CORE: usize = 1;

/// How to build the testbed.
#[derive(Debug, Clone)]
pub struct TestbedOptions {
    /// The flannel backend.
    pub backend: Backend,
    /// weft's `workers.busy_poll` (default false: weft's default adaptive idle sleep).
    pub weft_busy_poll: bool,
}

/// A running benchmark lab; torn down when dropped.
#[derive(Debug)]
pub struct Testbed {
    lab: LabGuard,
    weft: PathBuf,
    /// Whether generator and weft worker are pinned (2 or more cores).
    pub pinned: bool,
}

/// The sibling binary `name` of the running `weft-bench` (`target/<profile>/<name>`).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating weft-bench")?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found next to weft-bench: build it (`cargo build --release -p weft-control -p weft-bench`)",
            path.display()
        );
    }
    Ok(path)
}

impl Testbed {
    /// Builds the lab (namespace prefix `wbl<pid>`), waits until every path carries a ping.
    pub fn up(opts: &TestbedOptions) -> anyhow::Result<Testbed> {
        if !nix::unistd::geteuid().is_root() {
            bail!("the lab benchmarks need root (network namespaces, XDP, AF_XDP): run as root");
        }
        let weft = sibling("weft")?;
        let weft_lab = sibling("weft-lab")?;
        let pinned = core_affinity::get_core_ids().is_some_and(|c| c.len() >= 2);
        let workers = if pinned {
            format!("[workers]\\ncores = [{WEFT_CORE}]\\nbusy_poll = {}\\n", opts.weft_busy_poll)
        } else {
            format!("[workers]\\nbusy_poll = {}\\n", opts.weft_busy_poll)
        };
        // The lab writes the node's config; the benchmark's [workers] section is appended
        // before the daemon reads it.
        let start =
            format!("printf '\\n{workers}' >> {{config}} && exec {} run --config {{config}}", weft.display());
        let spec = LabSpec {
            prefix: format!("wbl{}", std::process::id()),
            state_root: DEFAULT_STATE_ROOT.into(),
            backend: opts.backend,
            nodes: vec![
                NodeSpec::kernel(&weft_lab.display().to_string()),
                NodeSpec::kernel(&weft_lab.display().to_string()),
                NodeSpec::weft(Some(vec!["sh".into(), "-c".into(), start])),
            ],
            pods_per_node: 1,
            uplink_mtu: 1500,
        };
        let lab = LabGuard::new(Lab::up(&spec).context("lab up")?);
        let bed = Testbed { lab, weft, pinned };
        for path in PathKind::ALL {
            bed.wait_for_ping(path, Duration::from_secs(20))?;
        }
        Ok(bed)
    }

    /// The pod of node `i`.
    pub fn pod(&self, i: usize) -> &PodState {
        self.lab.pod(i, 1)
    }

    fn wait_for_ping(&self, path: PathKind, timeout: Duration) -> anyhow::Result<()> {
        let (from, to) = path.nodes();
        let (ns, ip) = (self.pod(from).ns.clone(), self.pod(to).ip.to_string());
        let deadline = Instant::now() + timeout;
        loop {
            if cmd::exec_in(&ns, "ping", &["-n", "-q", "-c", "1", "-W", "1", &ip]).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "path {}: pod n{from} cannot ping pod n{to} ({ip}) after {timeout:?}; process logs:\n{}",
                    path.name(),
                    self.lab.log_tails(2000)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Addresses and MACs of `path`'s frames: the sending pod, its gateway's MAC (from the
    /// pod's neighbour table, resolved by a ping), the receiving pod.
    pub fn endpoints(&self, path: PathKind) -> anyhow::Result<Endpoints> {
        let (from, to) = path.nodes();
        self.wait_for_ping(path, Duration::from_secs(5))?;
        let src = self.pod(from);
        let gateway = Ipv4Addr::from(u32::from(self.lab.node(from).subnet.network()) + 1);
        let neigh = cmd::ip_in(&src.ns, &["neigh", "show", &gateway.to_string(), "dev", "pod0"])?;
        let mac = neigh
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .with_context(|| format!("pod n{from} has no MAC for its gateway {gateway}: {neigh:?}"))?;
        Ok(Endpoints {
            src_mac: parse_mac(&src.mac)?,
            dst_mac: parse_mac(mac)?,
            src_ip: src.ip,
            dst_ip: self.pod(to).ip,
        })
    }

    /// The PID of the weft node's daemon.
    pub fn weft_pid(&self) -> Option<i32> {
        let name = weft_bench::lab::Plan::node_process(WEFT_NODE, weft_bench::lab::NodeKind::Weft);
        self.lab.state().processes.iter().find(|p| p.name == name).map(|p| p.pid)
    }

    /// `weft status --json` of the weft node, if it answers.
    pub fn weft_status(&self) -> Option<serde_json::Value> {
        let node = self.lab.node(WEFT_NODE);
        let socket = self.lab.state().dir.join(format!("n{WEFT_NODE}.weft.sock"));
        let weft = self.weft.display().to_string();
        let out =
            cmd::exec_in(&node.ns, &weft, &["status", "--json", "--socket", &socket.display().to_string()]);
        out.ok().and_then(|text| serde_json::from_str(&text).ok())
    }

    /// The weft node's port counters: (rx packets, tx packets) of its uplink and pod port,
    /// from `weft status --json`.
    pub fn weft_ports(&self) -> Option<WeftPorts> {
        let status = self.weft_status()?;
        let port = |role: &str| -> Option<(u64, u64)> {
            let p = status
                .get("ports")?
                .as_array()?
                .iter()
                .find(|p| p.get("role").and_then(|r| r.as_str()) == Some(role))?;
            Some((p.get("rx_packets")?.as_u64()?, p.get("tx_packets")?.as_u64()?))
        };
        Some(WeftPorts { uplink: port("uplink")?, pod: port("pod")? })
    }

    /// `tx_dropped` of the sending pod's `pod0`: frames the veth could not hand to its peer.
    pub fn pod_tx_dropped(&self, node: usize) -> u64 {
        let out = cmd::ip_in(&self.pod(node).ns, &["-s", "-j", "link", "show", "pod0"]).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v.get(0)?.get("stats64")?.get("tx")?.get("dropped")?.as_u64())
            .unwrap_or(0)
    }
}

/// Packet counters of the weft node's two ports: (rx, tx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WeftPorts {
    /// The uplink.
    pub uplink: (u64, u64),
    /// The pod port.
    pub pod: (u64, u64),
}

impl WeftPorts {
    /// For `path`, (frames the engine received on the path's ingress port, frames it sent on
    /// the egress port) between `before` and `self`; `None` for the kernel path.
    pub fn engine_delta(&self, before: &WeftPorts, path: PathKind) -> Option<(u64, u64)> {
        let (ingress, egress) = match path {
            PathKind::Kernel => return None,
            PathKind::WeftEncap => ((self.pod.0, before.pod.0), (self.uplink.1, before.uplink.1)),
            PathKind::WeftDecap => ((self.uplink.0, before.uplink.0), (self.pod.1, before.pod.1)),
        };
        Some((ingress.0.saturating_sub(ingress.1), egress.0.saturating_sub(egress.1)))
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> anyhow::Result<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next().with_context(|| format!("MAC {s:?} is too short"))?;
        *b = u8::from_str_radix(p, 16).with_context(|| format!("MAC {s:?}"))?;
    }
    if parts.next().is_some() {
        bail!("MAC {s:?} is too long");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_runs_between_the_nodes_its_name_says() {
        assert_eq!(PathKind::Kernel.nodes(), (1, 2));
        assert_eq!(PathKind::WeftEncap.nodes().0, WEFT_NODE);
        assert_eq!(PathKind::WeftDecap.nodes().1, WEFT_NODE);
        for p in PathKind::ALL {
            assert_eq!(PathKind::parse(p.name()).unwrap(), p);
        }
        assert!(PathKind::parse("weft").is_err());
    }

    #[test]
    fn macs_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_mac("02:00:c6:13:01:ff").unwrap(), [2, 0, 0xc6, 0x13, 1, 0xff]);
        assert!(parse_mac("02:00:c6:13:01").is_err());
        assert!(parse_mac("02:00:c6:13:01:ff:00").is_err());
        assert!(parse_mac("02:00:c6:13:01:zz").is_err());
    }
}
