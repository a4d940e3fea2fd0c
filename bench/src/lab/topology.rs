//! What a lab looks like: the spec a caller gives, and the address and name plan derived
//! from it. Everything is RFC 2544 space: underlay 198.18.0.0/24, pods 198.19.0.0/16.
//!
//! ```text
//!   <p>-ul: bridge br0 ─┬─ n1 ══ uplink  <p>-n1 (198.18.0.1)  p1 ══ pod0 <p>-n1p1 (198.19.1.2)
//!                       ├─ n2 ══ uplink  <p>-n2 (198.18.0.2)  p1 ══ pod0 <p>-n2p1 (198.19.2.2)
//!                       └─ etcd ══ eth   <p>-etcd (198.18.0.250, etcd on :2379)
//! ```

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::LabError;

/// The etcd node's underlay address.
pub const ETCD_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);
/// etcd's client port (in its own namespace, so a fixed port cannot collide).
pub const ETCD_PORT: u16 = 2379;
/// The underlay L2 subnet.
pub const UNDERLAY: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(198, 18, 0, 0), 24) {
    Ok(n) => n,
    Err(_) => panic!("constant"),
};
/// The pod network (flannel's `Network`).
pub const POD_NETWORK: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(198, 19, 0, 0), 16) {
    Ok(n) => n,
    Err(_) => panic!("constant"),
};
/// The flannel etcd prefix the lab uses (flannel's default).
pub const ETCD_PREFIX: &str = "/coreos.com/network";
/// A node's uplink interface, inside its namespace.
pub const UPLINK: &str = "uplink";
/// A pod's interface, inside its namespace.
pub const POD_IFACE: &str = "pod0";
/// The underlay bridge, inside the underlay namespace.
pub const BRIDGE: &str = "br0";
/// Most nodes a lab can have: node addresses 1..=249 (250 is etcd).
pub const MAX_NODES: usize = 249;
/// Most pods per node: addresses .2..=.254.
pub const MAX_PODS: usize = 253;

/// The flannel backend the lab's network config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// flannel vxlan: VNI 1, UDP 8472, kernel `flannel.1`.
    Vxlan,
    /// flannel host-gw: plain routes via the node's PublicIP.
    HostGw,
    /// IP-in-IP: weft nodes only (this kernel has no ipip module for the kernel node).
    Ipip,
    /// flannel vxlan with `"DirectRouting": true`: host-gw to peers on the node's L2 subnet
    /// (every lab node shares the underlay bridge, so all of them), VXLAN to the others.
    /// weft nodes only (the kernel node agent runs plain vxlan and host-gw).
    VxlanDirectRouting,
    /// flannel wireguard: WireGuard in UDP 51820; kernel nodes run wireguard-go over TUN
    /// configured as flanneld configures its `flannel-wg` device.
    WireGuard,
}

impl Backend {
    /// flannel's `Backend.Type` string.
    pub fn flannel_name(self) -> &'static str {
        match self {
            Backend::Vxlan => "vxlan",
            Backend::HostGw => "host-gw",
            Backend::Ipip => "ipip",
            Backend::VxlanDirectRouting => "vxlan",
            Backend::WireGuard => "wireguard",
        }
    }

    /// The lab's name for it (what [`Backend::parse`] reads): the flannel name, or
    /// `vxlan-direct-routing`.
    pub fn lab_name(self) -> &'static str {
        match self {
            Backend::VxlanDirectRouting => "vxlan-direct-routing",
            other => other.flannel_name(),
        }
    }

    /// Parses `vxlan`, `host-gw`, `ipip` or `vxlan-direct-routing`.
    pub fn parse(s: &str) -> Result<Self, LabError> {
        match s {
            "vxlan" => Ok(Backend::Vxlan),
            "host-gw" => Ok(Backend::HostGw),
            "ipip" => Ok(Backend::Ipip),
            "vxlan-direct-routing" => Ok(Backend::VxlanDirectRouting),
            "wireguard" => Ok(Backend::WireGuard),
            _ => Err(LabError::Spec(format!(
                "backend {s:?} is not one of vxlan, host-gw, ipip, vxlan-direct-routing, wireguard"
            ))),
        }
    }

    /// Encapsulation overhead on the uplink (FLANNEL_MTU = uplink MTU − this).
    pub fn overhead(self) -> u32 {
        match self {
            Backend::Vxlan | Backend::VxlanDirectRouting => 50,
            Backend::Ipip => 20,
            Backend::HostGw => 0,
            // flannel's wireguard device MTU (room for an IPv6 outer header).
            Backend::WireGuard => 80,
        }
    }

    /// The network config the lab writes to `<prefix>/config`, in flannel's JSON.
    pub fn network_config_json(self) -> String {
        let backend = match self {
            Backend::Vxlan => r#"{"Type":"vxlan","VNI":1,"Port":8472}"#.to_owned(),
            Backend::VxlanDirectRouting => {
                r#"{"Type":"vxlan","VNI":1,"Port":8472,"DirectRouting":true}"#.to_owned()
            }
            other => format!(r#"{{"Type":"{}"}}"#, other.flannel_name()),
        };
        format!(
            r#"{{"Network":"{POD_NETWORK}","SubnetLen":24,"SubnetMin":"198.19.1.0","SubnetMax":"198.19.249.0","Backend":{backend}}}"#
        )
    }
}

/// Which data path a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    /// The Linux kernel programmed as flanneld does, by `weft-lab kflannel`; pods on `cni0`.
    Kernel,
    /// weft: the node gets its namespace, uplink, pod veths (host ends unbridged, for the
    /// engine to attach to) and a generated TOML config; the daemon runs if `start` is set.
    Weft,
}

/// One node of the lab.
///
/// `start` is the command the lab runs inside the node's namespace once the node is
/// prepared, as argv with placeholders: `{ns}`, `{node}` (index), `{public_ip}`, `{uplink}`,
/// `{etcd}` (client URL), `{subnet_file}`, `{config}` (the generated weft TOML), `{dir}` (the
/// lab's state directory). `None` prepares the node without starting anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// The data path.
    pub kind: NodeKind,
    /// The daemon to start, see above.
    pub start: Option<Vec<String>>,
}

impl NodeSpec {
    /// A kernel-flannel node run by the `weft-lab` binary at `weft_lab` (its `kflannel`
    /// subcommand).
    pub fn kernel(weft_lab: &str) -> Self {
        let start = [
            weft_lab,
            "kflannel",
            "--etcd",
            "{etcd}",
            "--public-ip",
            "{public_ip}",
            "--uplink",
            "{uplink}",
            "--subnet-file",
            "{subnet_file}",
        ];
        NodeSpec { kind: NodeKind::Kernel, start: Some(start.iter().map(|s| (*s).to_owned()).collect()) }
    }

    /// A weft node; `start` as in the type's docs (e.g. `weft run --config {config}`).
    pub fn weft(start: Option<Vec<String>>) -> Self {
        NodeSpec { kind: NodeKind::Weft, start }
    }
}

/// The whole lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// Prefix of every namespace name (e.g. `wl1234`); unique per run.
    pub prefix: String,
    /// Where the state file, logs, etcd data, subnet.env files and weft configs go
    /// (`<state_root>/<prefix>/`).
    pub state_root: PathBuf,
    /// The network's backend.
    pub backend: Backend,
    /// Nodes 1..=N in order.
    pub nodes: Vec<NodeSpec>,
    /// Pods per node.
    pub pods_per_node: usize,
    /// Uplink MTU.
    pub uplink_mtu: u32,
}

/// The default state root: `/run/weft-lab`.
pub const DEFAULT_STATE_ROOT: &str = "/run/weft-lab";

impl LabSpec {
    /// Checks the limits of the address plan and of names.
    pub fn validate(&self) -> Result<(), LabError> {
        if self.prefix.is_empty()
            || self.prefix.len() > 24
            || !self.prefix.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(LabError::Spec(format!(
                "prefix {:?} must be 1..=24 ASCII letters and digits",
                self.prefix
            )));
        }
        if self.nodes.is_empty() || self.nodes.len() > MAX_NODES {
            return Err(LabError::Spec(format!("{} nodes: the lab holds 1..={MAX_NODES}", self.nodes.len())));
        }
        if self.pods_per_node > MAX_PODS {
            return Err(LabError::Spec(format!("{} pods per node: at most {MAX_PODS}", self.pods_per_node)));
        }
        if !(1280..=9000).contains(&self.uplink_mtu) {
            return Err(LabError::Spec(format!("uplink MTU {} is outside 1280..=9000", self.uplink_mtu)));
        }
        let kernel_ipip =
            self.backend == Backend::Ipip && self.nodes.iter().any(|n| n.kind == NodeKind::Kernel);
        if kernel_ipip {
            return Err(LabError::Spec("ipip runs on weft nodes only (no kernel ipip module here)".into()));
        }
        let kernel_direct = self.backend == Backend::VxlanDirectRouting
            && self.nodes.iter().any(|n| n.kind == NodeKind::Kernel);
        if kernel_direct {
            return Err(LabError::Spec(
                "vxlan-direct-routing runs on weft nodes only (the kernel node agent has no DirectRouting)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// This lab's directory.
    pub fn dir(&self) -> PathBuf {
        self.state_root.join(&self.prefix)
    }
}

/// Names and addresses, all derived from the prefix and indices (nodes and pods count from 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The namespace prefix.
    pub prefix: String,
}

impl Plan {
    /// The underlay namespace (holds the bridge).
    pub fn underlay_ns(&self) -> String {
        format!("{}-ul", self.prefix)
    }

    /// etcd's namespace.
    pub fn etcd_ns(&self) -> String {
        format!("{}-etcd", self.prefix)
    }

    /// Node `i`'s namespace.
    pub fn node_ns(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }

    /// Pod `k` of node `i`: its namespace.
    pub fn pod_ns(&self, i: usize, k: usize) -> String {
        format!("{}-n{i}p{k}", self.prefix)
    }

    /// Node `i`'s uplink address (its PublicIP).
    pub fn node_ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, i as u8)
    }

    /// The subnet node `i` asks for (flannel may hand out another if it is taken).
    pub fn node_subnet(i: usize) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::new(198, 19, i as u8, 0), 24).unwrap_or_default()
    }

    /// The gateway (first host) of `subnet`.
    pub fn gateway(subnet: Ipv4Net) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(subnet.network()) + 1)
    }

    /// Pod `k`'s address in `subnet`: `.k+1` (the gateway is `.1`).
    pub fn pod_ip(subnet: Ipv4Net, k: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(subnet.network()) + 1 + k as u32)
    }

    /// Node `i`'s bridge port name in the underlay namespace.
    pub fn bridge_port(i: usize) -> String {
        format!("n{i}")
    }

    /// The host end of pod `k`'s veth, in the node's namespace.
    pub fn pod_host_iface(k: usize) -> String {
        format!("p{k}")
    }

    /// The MAC of node `i`'s pod `k` (`pod0`): locally administered, unique in the lab.
    pub fn pod_mac(i: usize, k: usize) -> String {
        format!("02:00:c6:13:{:02x}:{:02x}", i & 0xff, k & 0xff)
    }

    /// The lab process name of node `i`'s agent or daemon (`n1 Kernel`).
    pub fn node_process(i: usize, kind: NodeKind) -> String {
        format!("n{i} {kind:?}")
    }

    /// etcd's client URL.
    pub fn etcd_endpoint() -> String {
        format!("http://{ETCD_IP}:{ETCD_PORT}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_plan_follows_flannel_gateway_first_then_pods() {
        let subnet = Plan::node_subnet(3);
        assert_eq!(subnet.to_string(), "198.19.3.0/24");
        assert_eq!(Plan::gateway(subnet), Ipv4Addr::new(198, 19, 3, 1));
        assert_eq!(Plan::pod_ip(subnet, 1), Ipv4Addr::new(198, 19, 3, 2));
        assert_eq!(Plan::node_ip(3), Ipv4Addr::new(198, 18, 0, 3));
        assert!(UNDERLAY.contains(&ETCD_IP) && POD_NETWORK.contains(&subnet));
    }

    #[test]
    fn the_lab_network_config_is_what_flannel_and_weft_read() {
        for backend in
            [Backend::Vxlan, Backend::HostGw, Backend::Ipip, Backend::VxlanDirectRouting, Backend::WireGuard]
        {
            let json = backend.network_config_json();
            let parsed = weft_control::flannel::NetworkConfig::parse(json.as_bytes()).unwrap();
            assert_eq!(parsed.network, POD_NETWORK);
            assert_eq!(parsed.backend.backend_type.name(), backend.flannel_name());
            assert_eq!(parsed.backend.direct_routing, backend == Backend::VxlanDirectRouting, "{json}");
            assert_eq!(Backend::parse(backend.lab_name()).unwrap(), backend);
            assert!(parsed.is_leasable(Plan::node_subnet(1)) && parsed.is_leasable(Plan::node_subnet(249)));
        }
    }

    #[test]
    fn a_spec_with_a_kernel_ipip_node_or_a_bad_prefix_is_refused() {
        let spec = |prefix: &str, backend| LabSpec {
            prefix: prefix.into(),
            state_root: DEFAULT_STATE_ROOT.into(),
            backend,
            nodes: vec![NodeSpec::kernel("weft-lab")],
            pods_per_node: 1,
            uplink_mtu: 1500,
        };
        assert!(spec("wl1", Backend::Vxlan).validate().is_ok());
        assert!(spec("wl1", Backend::Ipip).validate().is_err());
        assert!(spec("wl1", Backend::VxlanDirectRouting).validate().is_err());
        assert!(spec("wl-1", Backend::Vxlan).validate().is_err());
        assert!(spec("", Backend::HostGw).validate().is_err());
    }
}
