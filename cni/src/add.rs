//! ADD: address, veth, pod side (address, link up, routes, checksum offload off), host end
//! up, weft attach (the last step). Everything ADD made is undone when a later step fails.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use ipnet::Ipv4Net;
use serde_json::json;

use crate::conf::NetConf;
use crate::env::CniEnv;
use crate::error::{CniError, NETLINK_FAILURE, NETNS_FAILURE, TRY_AGAIN_LATER, WEFT_REFUSED};
use crate::ipam::{delegate, store::Store};
use crate::link::Netlink;
use crate::result::{CniResult, Interface, IpConfig, Route};
use crate::subnet_env::NodeSubnet;
use crate::weft_api::{self, ApiError};
use crate::{host_ifname, netns, owner};

/// What this ADD has made so far, reversed on failure.
struct Undo<'a> {
    conf: &'a NetConf,
    env: &'a CniEnv,
    stdin: &'a [u8],
    host_if: &'a str,
    address: bool,
    veth: bool,
}

impl Undo<'_> {
    /// Best effort, newest first; each failure is reported on stderr (the runtime logs it).
    fn run(&self) {
        let warn = |what: &str, e: &dyn std::fmt::Display| eprintln!("weft-cni: undoing ADD: {what}: {e}");
        if self.veth {
            if let Err(e) = Netlink::open().and_then(|nl| nl.del_link(self.host_if)) {
                warn("deleting the veth", &e);
            }
        }
        if self.address {
            if let Err(e) = crate::release_address(self.conf, self.env, self.stdin) {
                warn("releasing the address", &e);
            }
        }
    }
}

/// Runs ADD; returns the result JSON.
pub fn add(conf: &NetConf, env: &CniEnv, stdin: &[u8]) -> Result<String, CniError> {
    let host_if = host_ifname(&env.container_id, &env.ifname);
    let mut undo = Undo { conf, env, stdin, host_if: &host_if, address: false, veth: false };
    let result = attach(conf, env, stdin, &host_if, &mut undo);
    if result.is_err() {
        undo.run();
    }
    result.map(|r| r.to_json(&conf.cni_version))
}

/// The pod's address, gateway and routes.
fn address(
    conf: &NetConf,
    env: &CniEnv,
    stdin: &[u8],
    node: Option<&NodeSubnet>,
) -> Result<CniResult, CniError> {
    let mut result = match conf.ipam_type() {
        Some(plugin) => {
            delegate::add(&delegate::find(plugin, &env.path)?, &crate::ipam_stdin(conf, stdin, true)?)?
        }
        None => {
            let node = node.expect("the node subnet is read when there is no ipam section");
            let ip =
                Store::new(&conf.data_dir, &conf.name).allocate(node.subnet, node.gateway, &owner(env))?;
            let address = Ipv4Net::new(ip, node.subnet.prefix_len()).expect("prefix of a parsed subnet");
            CniResult {
                interfaces: Vec::new(),
                ips: vec![IpConfig { address, gateway: Some(node.gateway), interface: None }],
                routes: Vec::new(),
                dns: json!({}),
            }
        }
    };
    // One IPv4 address is attached; its gateway defaults to the subnet's first host, where
    // weft answers ARP.
    result.ips.truncate(1);
    let ip = &mut result.ips[0];
    ip.gateway = ip.gateway.or(Some(Ipv4Addr::from(u32::from(ip.address.network()) + 1)));
    ip.interface = Some(1);
    if result.routes.is_empty() {
        result.routes.push(Route { dst: Ipv4Net::default(), gw: None });
    }
    let gw = ip.gateway;
    for r in &mut result.routes {
        r.gw = r.gw.or(gw);
    }
    Ok(result)
}

fn attach(
    conf: &NetConf,
    env: &CniEnv,
    stdin: &[u8],
    host_if: &str,
    undo: &mut Undo<'_>,
) -> Result<CniResult, CniError> {
    let netns_path = env.netns.as_deref().expect("ADD has CNI_NETNS (checked with the environment)");
    let pod_ns = netns::open(netns_path)?;
    // subnet.env: the MTU unless configured, the subnet when allocating ourselves.
    let node = if conf.ipam.is_none() || conf.mtu.is_none() {
        Some(NodeSubnet::read(&conf.subnet_file)?)
    } else {
        None
    };
    let mtu = conf.mtu.or(node.map(|n| n.mtu)).expect("an MTU from the configuration or subnet.env");
    let host = Netlink::open()?;
    if host.link(host_if)?.is_some() {
        return Err(CniError::short(
            NETLINK_FAILURE,
            format!(
                "host interface {host_if} for container {} {} already exists (DEL it first)",
                env.container_id, env.ifname
            ),
        ));
    }

    let mut result = address(conf, env, stdin, node.as_ref())?;
    undo.address = true;
    let ip = result.ips[0];

    host.add_veth(host_if, &env.ifname, pod_ns.as_fd(), mtu)?;
    undo.veth = true;

    // The pod side, through sockets opened inside its netns.
    let (pod_nl, ethtool) = netns::sockets_in(&pod_ns, netns_path)?;
    let pod_link = pod_nl.link(&env.ifname)?.ok_or_else(|| {
        CniError::short(NETLINK_FAILURE, format!("{} did not appear in the pod's netns", env.ifname))
    })?;
    ethtool.tx_checksum_off(&env.ifname).map_err(|e| {
        CniError::new(
            NETNS_FAILURE,
            format!("turning tx checksum offload off on {} in the pod", env.ifname),
            e.to_string(),
        )
    })?;
    pod_nl.add_address(pod_link.index, &env.ifname, ip.address)?;
    pod_nl.set_up(pod_link.index, &env.ifname)?;
    for r in &result.routes {
        pod_nl.add_route(r.dst, r.gw, pod_link.index)?;
    }

    let host_link = host.link(host_if)?.ok_or_else(|| {
        CniError::short(NETLINK_FAILURE, format!("{host_if} vanished after it was created"))
    })?;
    host.set_up(host_link.index, host_if)?;

    let labels = conf.labels()?;
    let pod = env.k8s_pod();
    weft_api::pod_add(&conf.socket, host_if, ip.address.addr(), &pod_link.mac, pod, &labels).map_err(
        |e| match e {
            ApiError::Unreachable(m) => CniError::short(TRY_AGAIN_LATER, m),
            ApiError::Refused(m) => {
                CniError::short(WEFT_REFUSED, format!("weft pod add {host_if} {}: {m}", ip.address.addr()))
            }
        },
    )?;

    result.interfaces = vec![
        Interface { name: host_if.to_owned(), mac: host_link.mac, sandbox: None },
        Interface {
            name: env.ifname.clone(),
            mac: pod_link.mac,
            sandbox: Some(netns_path.display().to_string()),
        },
    ];
    Ok(result)
}
