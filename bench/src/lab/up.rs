//! `up`: builds a lab from a [`LabSpec`], recording everything in the state file first.
//!
//! ```text
//! underlay ns + br0 -> etcd ns, etcd, network config -> node namespaces, uplinks, ip_forward
//!   -> weft nodes: pods wired, config written      -> start commands (kflannel, weft run)
//!   -> kernel nodes: wait for subnet.env, then cni0 + pods (flannel's CNI)
//!   -> wait until every started node routes every other started node's subnet
//! ```

use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::state::{LabState, NodeState, PodState};
use super::supervise::{spawn_in, wait_for};
use super::topology::{Backend, ETCD_IP, ETCD_PREFIX, LabSpec, NodeKind, NodeSpec, Plan, UPLINK};
use super::weft_config::{self, WeftNodeConfig};
use super::{LabError, cmd, etcd, wiring};

/// How long a node agent gets to lease a subnet and a lab to converge.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Records namespace `ns` in the state file, then creates it. A namespace that already
/// exists is not ours: it is neither recorded nor touched.
pub(crate) fn record_ns(state: &mut LabState, ns: String) -> Result<String, LabError> {
    if cmd::namespaces()?.contains(&ns) {
        return Err(LabError::Spec(format!(
            "namespace {ns} already exists and is not this lab's: pick another --prefix"
        )));
    }
    state.namespaces.push(ns.clone());
    state.save()?;
    wiring::add_namespace(&ns)?;
    Ok(ns)
}

/// Writes the subnet.env a restarted flanneld would find, so node `i` asks for
/// `198.19.<i>.0/24` first (flannel reuses the subnet its subnet.env names when it is free).
fn prefer_subnet(path: &Path, subnet: Ipv4Net) -> Result<(), LabError> {
    let text = format!("FLANNEL_SUBNET={}/{}\n", Plan::gateway(subnet), subnet.prefix_len());
    std::fs::write(path, text).map_err(LabError::file(path))
}

/// subnet.env as the node agent wrote it: (subnet, FLANNEL_MTU), once complete.
pub fn read_subnet_env(path: &Path) -> Option<(Ipv4Net, u32)> {
    let text = std::fs::read_to_string(path).ok()?;
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
    value("FLANNEL_NETWORK=")?;
    let subnet = value("FLANNEL_SUBNET=")?.parse::<Ipv4Net>().ok()?.trunc();
    let mtu = value("FLANNEL_MTU=")?.parse().ok()?;
    Some((subnet, mtu))
}

/// `argv` with the placeholders of [`NodeSpec::start`] filled in for `node`.
pub(crate) fn expand(argv: &[String], state: &LabState, node: &NodeState) -> Vec<String> {
    let config = node.config.as_ref().map(|c| c.display().to_string()).unwrap_or_default();
    argv.iter()
        .map(|a| {
            a.replace("{ns}", &node.ns)
                .replace("{node}", &node.index.to_string())
                .replace("{public_ip}", &node.public_ip.to_string())
                .replace("{uplink}", UPLINK)
                .replace("{etcd}", &state.etcd_endpoint)
                .replace("{subnet_file}", &node.subnet_file.display().to_string())
                .replace("{config}", &config)
                .replace("{dir}", &state.dir.display().to_string())
        })
        .collect()
}

/// Builds the lab; on failure everything made so far is torn down before the error returns.
pub fn up(spec: &LabSpec) -> Result<LabState, LabError> {
    spec.validate()?;
    if !nix::unistd::geteuid().is_root() {
        return Err(LabError::NotRoot);
    }
    let dir = spec.dir();
    if dir.join("state.json").exists() {
        return Err(LabError::Spec(format!(
            "a lab with prefix {} exists ({}): `weft-lab down --prefix {}` first",
            spec.prefix,
            dir.display(),
            spec.prefix
        )));
    }
    // A directory without a state file is from an `up` that died before its first save:
    // nothing in it is in use (old etcd data would otherwise be reused).
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(LabError::file(&dir))?;
    }
    std::fs::create_dir_all(&dir).map_err(LabError::file(&dir))?;
    let mut state = LabState {
        prefix: spec.prefix.clone(),
        dir,
        backend: spec.backend,
        etcd_endpoint: Plan::etcd_endpoint(),
        namespaces: Vec::new(),
        processes: Vec::new(),
        nodes: Vec::new(),
    };
    state.save()?;
    match build(spec, &mut state) {
        Ok(()) => Ok(state),
        Err(e) => {
            super::down::teardown(&state);
            Err(e)
        }
    }
}

fn build(spec: &LabSpec, state: &mut LabState) -> Result<(), LabError> {
    let plan = Plan { prefix: spec.prefix.clone() };
    let ul = record_ns(state, plan.underlay_ns())?;
    wiring::add_bridge(&ul)?;

    let etcd_ns = record_ns(state, plan.etcd_ns())?;
    wiring::plug_into_underlay(&ul, "etcd", &etcd_ns, "ul0", ETCD_IP, spec.uplink_mtu)?;
    let etcd = etcd::start(state, &etcd_ns)?;
    state.processes.push(etcd);
    state.save()?;

    for (i, node) in spec.nodes.iter().enumerate() {
        add_node(spec, state, &plan, i + 1, node)?;
    }
    etcd::wait_ready(&etcd_ns, Duration::from_secs(20))?;
    let config_key = format!("{ETCD_PREFIX}/config");
    etcd::etcdctl(&etcd_ns, &["put", &config_key, &spec.backend.network_config_json()])?;

    for (i, node) in spec.nodes.iter().enumerate() {
        if let Some(argv) = &node.start {
            let n = &state.nodes[i];
            let argv = expand(argv, state, n);
            let log = state.dir.join(format!("n{}.log", n.index));
            let record = spawn_in(&n.ns, &Plan::node_process(n.index, n.kind), &argv, &log)?;
            state.processes.push(record);
            state.save()?;
        }
    }
    for (i, node) in spec.nodes.iter().enumerate() {
        if node.start.is_some() {
            let path = state.nodes[i].subnet_file.clone();
            let what = format!("node n{} to lease a subnet (writes {})", i + 1, path.display());
            wait_for(&what, CONVERGE_TIMEOUT, || read_subnet_env(&path).is_some())?;
            let (subnet, mtu) = read_subnet_env(&path).unwrap_or_default();
            state.nodes[i].subnet = subnet;
            if node.kind == NodeKind::Kernel {
                // What flannel's CNI plugin does on a kernel node: `cni0` with the gateway,
                // one veth per pod enslaved to it, MTU from subnet.env.
                wiring::add_cni_bridge(&plan.node_ns(i + 1), subnet, mtu)?;
                add_pods(spec, state, &plan, i + 1, subnet, mtu, Some("cni0"))?;
            }
        }
    }
    state.save()?;
    wait_converged(state, spec)
}

fn add_node(
    spec: &LabSpec,
    state: &mut LabState,
    plan: &Plan,
    i: usize,
    node: &NodeSpec,
) -> Result<(), LabError> {
    let ns = record_ns(state, plan.node_ns(i))?;
    let public_ip = Plan::node_ip(i);
    wiring::plug_into_underlay(
        &plan.underlay_ns(),
        &Plan::bridge_port(i),
        &ns,
        UPLINK,
        public_ip,
        spec.uplink_mtu,
    )?;
    let subnet = Plan::node_subnet(i);
    let subnet_file = state.dir.join(format!("n{i}.subnet.env"));
    prefer_subnet(&subnet_file, subnet)?;
    state.nodes.push(NodeState {
        index: i,
        kind: node.kind,
        ns: ns.clone(),
        public_ip,
        subnet,
        subnet_file,
        config: None,
        pods: Vec::new(),
    });
    state.save()?;
    match node.kind {
        NodeKind::Kernel => cmd::sysctl_in(&ns, "net.ipv4.ip_forward=1"),
        NodeKind::Weft => {
            // The engine attaches to the pods' host ends: no bridge, no address on them.
            add_pods(spec, state, plan, i, subnet, spec.uplink_mtu - spec.backend.overhead(), None)?;
            let n = &state.nodes[i - 1];
            let path = state.dir.join(format!("n{i}.toml"));
            let text = weft_config::render(&WeftNodeConfig {
                index: i,
                public_ip,
                vtep_mac: weft_config::vtep_mac(i),
                subnet_file: &n.subnet_file,
                mtu: spec.uplink_mtu,
                etcd: &state.etcd_endpoint,
                subnet,
                pods: &n.pods,
            });
            std::fs::write(&path, text).map_err(LabError::file(&path))?;
            state.nodes[i - 1].config = Some(path);
            state.save()
        }
    }
}

/// Node `i`'s pods: a namespace and a veth each, addressed in `subnet`, the host end
/// enslaved to `bridge` if given.
fn add_pods(
    spec: &LabSpec,
    state: &mut LabState,
    plan: &Plan,
    i: usize,
    subnet: Ipv4Net,
    mtu: u32,
    bridge: Option<&str>,
) -> Result<(), LabError> {
    let ns = plan.node_ns(i);
    for k in 1..=spec.pods_per_node {
        let pod = PodState {
            ns: plan.pod_ns(i, k),
            ip: Plan::pod_ip(subnet, k),
            host_iface: Plan::pod_host_iface(k),
            mac: Plan::pod_mac(i, k),
        };
        record_ns(state, pod.ns.clone())?;
        wiring::add_pod(&ns, &pod.host_iface, &pod.ns, subnet, pod.ip, &pod.mac, mtu)?;
        if let Some(bridge) = bridge {
            wiring::enslave(&ns, &pod.host_iface, bridge)?;
        }
        state.nodes[i - 1].pods.push(pod);
        state.save()?;
    }
    Ok(())
}

/// Does kernel node `ns` have a route to `subnet`?
pub fn has_route(ns: &str, subnet: Ipv4Net) -> bool {
    cmd::ip_in(ns, &["route", "show", "exact", &subnet.to_string()]).is_ok_and(|out| !out.trim().is_empty())
}

/// Does kernel node `ns`'s wireguard device have a peer for `subnet` (flannel routes the whole
/// network into the device, so a subnet is reachable once its peer's AllowedIPs hold it)?
pub fn has_wireguard_peer(ns: &str, subnet: Ipv4Net) -> bool {
    cmd::exec_in(ns, "wg", &["show", crate::kflannel::wireguard::DEVICE, "allowed-ips"])
        .is_ok_and(|out| out.split_whitespace().any(|w| w == subnet.to_string()))
}

fn wait_converged(state: &LabState, spec: &LabSpec) -> Result<(), LabError> {
    let started: Vec<&NodeState> =
        state.nodes.iter().filter(|n| spec.nodes[n.index - 1].start.is_some()).collect();
    for node in started.iter().filter(|n| n.kind == NodeKind::Kernel) {
        for other in started.iter().filter(|o| o.index != node.index) {
            let what = format!("n{} to route n{}'s subnet {}", node.index, other.index, other.subnet);
            wait_for(&what, CONVERGE_TIMEOUT, || match spec.backend {
                Backend::WireGuard => has_wireguard_peer(&node.ns, other.subnet),
                _ => has_route(&node.ns, other.subnet),
            })?;
        }
    }
    Ok(())
}
