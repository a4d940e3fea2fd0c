//! The host link's veth pair, address and cluster route, through rtnetlink; the ethtool and
//! sysctl settings of its kernel end.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::{HostLinkError, HostLinkPlan};

/// `/proc/sys/net/ipv4/ip_forward` of the namespace weft runs in.
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

fn netlink(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> HostLinkError {
    let what = what.into();
    move |source| HostLinkError::Netlink { what, source }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HostLinkError {
    let what = what.into();
    move |source| HostLinkError::Io { what, source }
}

fn connect() -> Result<Handle, HostLinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(io("opening a netlink socket"))?;
    tokio::spawn(conn);
    Ok(handle)
}

fn sysctl(path: &str, value: &str) -> Result<(), HostLinkError> {
    std::fs::write(path, value).map_err(io(format!("writing {value} to {path}")))
}

/// The index of link `name` and whether it is a veth; `None` when there is no such link.
async fn find(handle: &Handle, name: &str) -> Result<Option<(u32, bool)>, HostLinkError> {
    let mut req = handle.link().get().match_name(name.to_owned()).execute();
    match req.try_next().await {
        Ok(Some(msg)) => {
            let veth = msg.attributes.iter().any(|a| {
                matches!(a, LinkAttribute::LinkInfo(infos)
                    if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth))))
            });
            Ok(Some((msg.header.index, veth)))
        }
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == nix::libc::ENODEV => Ok(None),
        Err(e) => Err(netlink(format!("looking up link {name}"))(e)),
    }
}

/// Deletes a veth pair of the plan's names left by an earlier run (a weft that did not stop
/// cleanly); an interface of either name that is not a veth is someone else's: an error.
async fn replace_stale(handle: &Handle, plan: &HostLinkPlan) -> Result<(), HostLinkError> {
    for (key, ifname) in [("interface", &plan.interface), ("engine_interface", &plan.engine_interface)] {
        match find(handle, ifname).await? {
            None => {}
            Some((_, false)) => return Err(HostLinkError::NotOurs { key, ifname: ifname.clone() }),
            Some((index, true)) => {
                tracing::warn!(interface = %ifname, "replacing a host link left by an earlier run");
                handle.link().del(index).execute().await.map_err(netlink(format!("deleting {ifname}")))?;
            }
        }
    }
    Ok(())
}

/// Creates the pair and configures it; removes it again when a later step fails.
pub(super) async fn create(plan: &HostLinkPlan) -> Result<(), HostLinkError> {
    let handle = connect()?;
    replace_stale(&handle, plan).await?;
    handle
        .link()
        .add(LinkVeth::new(&plan.interface, &plan.engine_interface).build())
        .execute()
        .await
        .map_err(netlink(format!("creating veth {} <-> {}", plan.interface, plan.engine_interface)))?;
    let configured = configure(&handle, plan).await;
    if configured.is_err() {
        let _ = delete(&handle, plan).await;
    }
    configured
}

async fn index(handle: &Handle, ifname: &str) -> Result<u32, HostLinkError> {
    match find(handle, ifname).await? {
        Some((index, _)) => Ok(index),
        None => Err(HostLinkError::Io {
            what: format!("finding {ifname} after creating it"),
            source: std::io::Error::from_raw_os_error(nix::libc::ENODEV),
        }),
    }
}

async fn configure(handle: &Handle, plan: &HostLinkPlan) -> Result<(), HostLinkError> {
    let kernel = index(handle, &plan.interface).await?;
    let engine = index(handle, &plan.engine_interface).await?;
    // No IPv6 on either end: the engine forwards IPv4 only (router solicitations and the like
    // would be exception traffic for nothing). Best effort: a kernel without IPv6 has no file.
    for ifname in [&plan.interface, &plan.engine_interface] {
        let _ = sysctl(&format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"), "1");
    }
    // A Service DNAT from a pod to a pod elsewhere leaves over the link it came in on: normal
    // here, no reason for ICMP redirects.
    sysctl(&format!("/proc/sys/net/ipv4/conf/{}/send_redirects", plan.interface), "0")?;
    weft_cni::ethtool::Ethtool::new()
        .and_then(|e| e.tx_checksum_off(&plan.interface))
        .map_err(io(format!("turning transmit checksum offload off on {}", plan.interface)))?;
    for (idx, ifname) in [(engine, &plan.engine_interface), (kernel, &plan.interface)] {
        handle
            .link()
            .set(LinkUnspec::new_with_index(idx).mtu(plan.mtu).up().build())
            .execute()
            .await
            .map_err(netlink(format!("setting {ifname} up with mtu {}", plan.mtu)))?;
    }
    handle
        .address()
        .add(kernel, IpAddr::V4(plan.address), 32)
        .execute()
        .await
        .map_err(netlink(format!("adding {}/32 to {}", plan.address, plan.interface)))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(plan.cluster.network(), plan.cluster.prefix_len())
        .gateway(plan.gateway)
        .output_interface(kernel)
        .pref_source(plan.address)
        .onlink()
        .build();
    handle.route().add(route).execute().await.map_err(netlink(format!(
        "adding route {} via {} dev {} onlink",
        plan.cluster, plan.gateway, plan.interface
    )))?;
    Ok(())
}

async fn delete(handle: &Handle, plan: &HostLinkPlan) -> Result<(), HostLinkError> {
    // Deleting one end deletes the pair, with the address and the route.
    for ifname in [&plan.interface, &plan.engine_interface] {
        if let Some((idx, true)) = find(handle, ifname).await? {
            return handle
                .link()
                .del(idx)
                .execute()
                .await
                .map_err(netlink(format!("deleting veth {} <-> {}", plan.interface, plan.engine_interface)));
        }
    }
    Ok(())
}

/// Turns IPv4 forwarding on; true if it was off.
pub(super) fn turn_forwarding_on() -> Result<bool, HostLinkError> {
    let was = std::fs::read_to_string(IP_FORWARD).map_err(io(format!("reading {IP_FORWARD}")))?;
    if was.trim() == "1" {
        return Ok(false);
    }
    sysctl(IP_FORWARD, "1")?;
    Ok(true)
}

/// Turns IPv4 forwarding off.
pub(super) fn turn_forwarding_off() -> Result<(), HostLinkError> {
    sysctl(IP_FORWARD, "0")
}

/// Deletes the pair if it is there.
pub(super) async fn remove(plan: &HostLinkPlan) -> Result<(), HostLinkError> {
    delete(&connect()?, plan).await
}
