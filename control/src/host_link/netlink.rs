//! The host link's veth pair, address and cluster route, through rtnetlink; the ethtool and
//! sysctl settings of its kernel end.

use std::net::IpAddr;

use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::{HostLinkError, HostLinkPlan};

fn netlink(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> HostLinkError {
    let what = what.into();
    move |source| HostLinkError::Netlink { what, source }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HostLinkError {
    let what = what.into();
    move |source| HostLinkError::Io { what, source }
}

fn index(ifname: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(ifname).ok()
}

fn connect() -> Result<Handle, HostLinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(io("netlink socket"))?;
    tokio::spawn(conn);
    Ok(handle)
}

fn sysctl(path: &str, value: &str) -> Result<(), HostLinkError> {
    std::fs::write(path, value).map_err(io(format!("writing {value} to {path}")))
}

/// Creates the pair and configures it; removes it again when a later step fails.
pub(super) async fn create(plan: &HostLinkPlan) -> Result<(), HostLinkError> {
    for (key, ifname) in [("interface", &plan.interface), ("engine_interface", &plan.engine_interface)] {
        if index(ifname).is_some() {
            return Err(HostLinkError::Exists { key, ifname: ifname.clone() });
        }
    }
    let handle = connect()?;
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

async fn configure(handle: &Handle, plan: &HostLinkPlan) -> Result<(), HostLinkError> {
    let kernel = index(&plan.interface).ok_or_else(|| HostLinkError::Io {
        what: format!("finding {} after creating it", plan.interface),
        source: std::io::Error::from_raw_os_error(libc_enodev()),
    })?;
    let engine = index(&plan.engine_interface).ok_or_else(|| HostLinkError::Io {
        what: format!("finding {} after creating it", plan.engine_interface),
        source: std::io::Error::from_raw_os_error(libc_enodev()),
    })?;
    // No IPv6 on either end: the engine forwards IPv4 only.
    for ifname in [&plan.interface, &plan.engine_interface] {
        let _ = sysctl(&format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"), "1");
    }
    sysctl(&forwarding(&plan.interface), "1")?;
    // Traffic the kernel routes back out of the link it came in on (a Service DNAT from a pod to
    // a pod) is normal here, not a reason for ICMP redirects.
    sysctl(&format!("/proc/sys/net/ipv4/conf/{}/send_redirects", plan.interface), "0")?;
    weft_engine::port::afxdp::set_tx_checksum(&plan.interface, false)
        .map_err(io(format!("turning transmit checksum offload off on {}", plan.interface)))?;
    for (idx, ifname) in [(kernel, &plan.interface), (engine, &plan.engine_interface)] {
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
    let route = RouteMessageBuilder::<std::net::Ipv4Addr>::new()
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

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

async fn delete(handle: &Handle, plan: &HostLinkPlan) -> Result<(), HostLinkError> {
    // Deleting one end deletes the pair, with the address and the route.
    match index(&plan.interface).or_else(|| index(&plan.engine_interface)) {
        Some(idx) => handle
            .link()
            .del(idx)
            .execute()
            .await
            .map_err(netlink(format!("deleting veth {} <-> {}", plan.interface, plan.engine_interface))),
        None => Ok(()),
    }
}

fn forwarding(ifname: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{ifname}/forwarding")
}

/// Turns IPv4 forwarding on for packets arriving on `ifname`; true if it was off.
pub(super) fn turn_forwarding_on(ifname: &str) -> Result<bool, HostLinkError> {
    let path = forwarding(ifname);
    let was = std::fs::read_to_string(&path).map_err(io(format!("reading {path}")))?;
    if was.trim() == "1" {
        return Ok(false);
    }
    sysctl(&path, "1")?;
    Ok(true)
}

/// Turns IPv4 forwarding off for packets arriving on `ifname`.
pub(super) fn turn_forwarding_off(ifname: &str) -> Result<(), HostLinkError> {
    sysctl(&forwarding(ifname), "0")
}

/// Deletes the pair if it is there.
pub(super) async fn remove(plan: &HostLinkPlan) -> Result<(), HostLinkError> {
    delete(&connect()?, plan).await
}
