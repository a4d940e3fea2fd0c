//! CHECK: the attachment is as ADD left it: the address is held, the host end is up, the
//! pod's interface has the address, the routes, and tx checksum offload off, and weft has
//! the pod.

use crate::conf::NetConf;
use crate::env::CniEnv;
use crate::error::{CHECK_FAILED, CniError, INVALID_CONFIG, NETNS_FAILURE, TRY_AGAIN_LATER};
use crate::ipam::{delegate, store::Store};
use crate::link::Netlink;
use crate::result::CniResult;
use crate::weft_api::{self, ApiError};
use crate::{host_ifname, netns, owner, version};

fn failed(msg: String) -> CniError {
    CniError::short(CHECK_FAILED, msg)
}

/// Runs CHECK against the configuration's `prevResult`.
pub fn check(conf: &NetConf, env: &CniEnv, stdin: &[u8]) -> Result<(), CniError> {
    version::check_at_least(&conf.cni_version, "0.4.0", "CHECK")?;
    let prev = conf.prev_result.as_ref().ok_or_else(|| {
        CniError::short(INVALID_CONFIG, "CHECK needs `prevResult` in the network configuration")
    })?;
    let prev =
        CniResult::parse(prev).map_err(|e| CniError::short(INVALID_CONFIG, format!("prevResult: {e}")))?;
    let ip =
        *prev.ips.first().ok_or_else(|| CniError::short(INVALID_CONFIG, "prevResult has no IPv4 address"))?;
    let host_if = host_ifname(&env.container_id, &env.ifname);

    match conf.ipam_type() {
        Some(plugin) => {
            let stdin = crate::ipam_stdin(conf, stdin, true)?;
            drop(delegate::exec(&delegate::find(plugin, &env.path)?, "CHECK", &stdin)?)
        }
        None => {
            let held = Store::new(&conf.data_dir, &conf.name).held_by(&owner(env))?;
            if held != Some(ip.address.addr()) {
                return Err(failed(format!(
                    "address {} is not allocated to this container (store has {held:?})",
                    ip.address
                )));
            }
        }
    }

    let host = Netlink::open()?
        .link(&host_if)?
        .ok_or_else(|| failed(format!("host interface {host_if} is missing")))?;
    if !host.up {
        return Err(failed(format!("host interface {host_if} is down")));
    }

    let netns_path = env.netns.as_deref().expect("CHECK has CNI_NETNS (checked with the environment)");
    let pod_ns = netns::open(netns_path)?;
    let (pod_nl, ethtool) = netns::sockets_in(&pod_ns, netns_path)?;
    let link =
        pod_nl.link(&env.ifname)?.ok_or_else(|| failed(format!("{} is missing in the pod", env.ifname)))?;
    if !link.up {
        return Err(failed(format!("{} is down in the pod", env.ifname)));
    }
    if !pod_nl.addresses(link.index)?.contains(&ip.address) {
        return Err(failed(format!("{} in the pod does not have {}", env.ifname, ip.address)));
    }
    let routes = pod_nl.routes()?;
    for r in &prev.routes {
        let gw = r.gw.or(ip.gateway);
        if !routes.iter().any(|have| have.dst == r.dst && have.gw == gw && have.oif == Some(link.index)) {
            return Err(failed(format!("route {} via {gw:?} is missing in the pod", r.dst)));
        }
    }
    match ethtool.tx_checksum(&env.ifname) {
        Ok(false) => {}
        Ok(true) => return Err(failed(format!("tx checksum offload is on for {} in the pod", env.ifname))),
        Err(e) => {
            return Err(CniError::new(
                NETNS_FAILURE,
                "reading tx checksum offload in the pod",
                e.to_string(),
            ));
        }
    }

    let pods = weft_api::pods(&conf.socket).map_err(|e| match e {
        ApiError::Unreachable(m) => CniError::short(TRY_AGAIN_LATER, m),
        ApiError::Refused(m) => failed(m),
    })?;
    let ip_s = ip.address.addr().to_string();
    if !pods.iter().any(|p| p.interface == host_if && p.ip == ip_s) {
        return Err(failed(format!("weft has no pod {host_if} {ip_s}")));
    }
    Ok(())
}
