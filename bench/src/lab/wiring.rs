//! Namespaces, veths and bridges: the `ip` commands that build the lab's L2/L3 topology.
//! Every command names its namespace (`ip -n`), so nothing runs in the host's.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::topology::{BRIDGE, POD_IFACE, Plan};
use super::{LabError, cmd};

/// Creates namespace `ns` with loopback up.
pub fn add_namespace(ns: &str) -> Result<(), LabError> {
    cmd::ip(&["netns", "add", ns])?;
    cmd::ip_in(ns, &["link", "set", "lo", "up"]).map(drop)
}

/// Deletes namespace `ns`; `Ok(false)` if it did not exist.
pub fn del_namespace(ns: &str) -> Result<bool, LabError> {
    match cmd::ip(&["netns", "del", ns]) {
        Ok(_) => Ok(true),
        Err(LabError::Command { stderr, .. }) if stderr.contains("No such file") => Ok(false),
        Err(e) => Err(e),
    }
}

/// The underlay: a bridge in namespace `ns`.
pub fn add_bridge(ns: &str) -> Result<(), LabError> {
    cmd::ip_in(ns, &["link", "add", BRIDGE, "type", "bridge"])?;
    cmd::ip_in(ns, &["link", "set", BRIDGE, "up"]).map(drop)
}

/// A veth from `a_ns`/`a_name` to `b_ns`/`b_name`, both ends up with `mtu`.
pub fn add_veth(a_ns: &str, a_name: &str, b_ns: &str, b_name: &str, mtu: u32) -> Result<(), LabError> {
    let mtu = mtu.to_string();
    cmd::ip_in(
        a_ns,
        &[
            "link", "add", a_name, "mtu", &mtu, "type", "veth", "peer", "name", b_name, "mtu", &mtu, "netns",
            b_ns,
        ],
    )?;
    cmd::ip_in(a_ns, &["link", "set", a_name, "up"])?;
    cmd::ip_in(b_ns, &["link", "set", b_name, "up"]).map(drop)
}

/// Plugs `ns`'s `iface` (the underlay end of a veth) into the underlay bridge.
pub fn enslave(ns: &str, iface: &str, bridge: &str) -> Result<(), LabError> {
    cmd::ip_in(ns, &["link", "set", iface, "master", bridge]).map(drop)
}

/// Adds `addr/len` to `iface` in `ns`.
pub fn add_address(ns: &str, iface: &str, addr: Ipv4Addr, len: u8) -> Result<(), LabError> {
    cmd::ip_in(ns, &["addr", "add", &format!("{addr}/{len}"), "dev", iface]).map(drop)
}

/// Attaches the underlay end of a host (node or etcd) to the bridge: veth `port` in the
/// underlay namespace, `iface` with `addr/24` in `ns`.
pub fn plug_into_underlay(
    underlay_ns: &str,
    port: &str,
    ns: &str,
    iface: &str,
    addr: Ipv4Addr,
    mtu: u32,
) -> Result<(), LabError> {
    add_veth(underlay_ns, port, ns, iface, mtu)?;
    // A veth never completes a checksum left to transmit offload; a NIC does. Kernel VXLAN
    // leaves its outer UDP checksum to the offload, so without this a receiver that checks
    // it on the wire (weft via AF_XDP) sees a partial sum. Turning offload off makes the
    // kernel finish every checksum in software, as the frame would look leaving a NIC.
    cmd::exec_in(ns, "ethtool", &["-K", iface, "tx", "off"])?;
    enslave(underlay_ns, port, BRIDGE)?;
    add_address(ns, iface, addr, 24)
}

/// A pod: a veth from the node (`host_iface`) to the pod's `pod0` with `mac`, `ip/len` and a
/// default route via `gateway`, as flannel's CNI (bridge + host-local IPAM) leaves a pod.
pub fn add_pod(
    node_ns: &str,
    host_iface: &str,
    pod_ns: &str,
    subnet: Ipv4Net,
    ip: Ipv4Addr,
    mac: &str,
    mtu: u32,
) -> Result<(), LabError> {
    add_veth(node_ns, host_iface, pod_ns, POD_IFACE, mtu)?;
    cmd::ip_in(pod_ns, &["link", "set", POD_IFACE, "address", mac])?;
    // The pod's kernel would leave TCP/UDP checksums to veth transmit offload, which nothing
    // completes on a path through AF_XDP: pods of a weft node need it off (as CNIs for
    // VPP/OVS-DPDK data planes do). Kernel-node pods get the same so both kinds compare fairly.
    cmd::exec_in(pod_ns, "ethtool", &["-K", POD_IFACE, "tx", "off"])?;
    add_address(pod_ns, POD_IFACE, ip, subnet.prefix_len())?;
    let gateway = Plan::gateway(subnet).to_string();
    cmd::ip_in(pod_ns, &["route", "add", "default", "via", &gateway, "dev", POD_IFACE]).map(drop)
}

/// flannel's CNI bridge on a kernel node: `cni0` with the gateway address and the pod MTU.
pub fn add_cni_bridge(node_ns: &str, subnet: Ipv4Net, mtu: u32) -> Result<(), LabError> {
    let mtu = mtu.to_string();
    cmd::ip_in(node_ns, &["link", "add", "cni0", "mtu", &mtu, "type", "bridge"])?;
    add_address(node_ns, "cni0", Plan::gateway(subnet), subnet.prefix_len())?;
    cmd::ip_in(node_ns, &["link", "set", "cni0", "up"]).map(drop)
}
