//! The kernel devices flanneld's vxlan backend makes (flannel `backend/vxlan/device.go`):
//!
//! ```text
//! ip link add flannel.1 mtu <uplink-50> type vxlan id 1 dstport 8472 local <PublicIP> dev <uplink> nolearning
//! ip addr replace <subnet>.0/32 dev flannel.1 ; ip link set flannel.1 up
//! ```
//! The MAC is the kernel's random locally administered one (flannel generates a random one
//! too); it becomes the lease's VtepMAC.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use weft_control::flannel::MacAddr;

use crate::lab::{LabError, cmd};

/// flannel's VXLAN device name for VNI `vni`.
pub fn vxlan_name(vni: u32) -> String {
    format!("flannel.{vni}")
}

/// Reads `/sys/class/net/<iface>/<attr>` (inside `ip netns exec`, /sys is the namespace's).
fn sys_attr(iface: &str, attr: &str) -> Result<String, LabError> {
    let path = format!("/sys/class/net/{iface}/{attr}");
    std::fs::read_to_string(&path).map(|s| s.trim().to_owned()).map_err(LabError::file(path))
}

/// The MTU of `iface`.
pub fn mtu(iface: &str) -> Result<u32, LabError> {
    let text = sys_attr(iface, "mtu")?;
    text.parse().map_err(|_| LabError::Spec(format!("{iface}: MTU {text:?} is not a number")))
}

/// The IPv4 subnet of `addr` on `iface` (`ip -o -4 addr show dev iface`).
pub fn subnet_of(iface: &str, addr: Ipv4Addr) -> Result<Ipv4Net, LabError> {
    let out = cmd::ip(&["-o", "-4", "addr", "show", "dev", iface])?;
    out.split_whitespace()
        .filter_map(|w| w.parse::<Ipv4Net>().ok())
        .find(|n| n.addr() == addr)
        .map(|n| n.trunc())
        .ok_or_else(|| LabError::Spec(format!("{iface} does not carry {addr} (the node's PublicIP)")))
}

/// What the VXLAN device is made of.
#[derive(Debug, Clone, Copy)]
pub struct VxlanDevice<'a> {
    /// VNI (flannel 1).
    pub vni: u32,
    /// UDP port (flannel 8472).
    pub port: u16,
    /// Our PublicIP.
    pub local: Ipv4Addr,
    /// The uplink.
    pub uplink: &'a str,
    /// The uplink's MTU; the device gets 50 less.
    pub uplink_mtu: u32,
}

/// Creates the device (an existing one is reused, as flannel's `ensureLink` does when its
/// configuration is compatible) and returns its MAC.
pub fn ensure_vxlan(d: &VxlanDevice<'_>) -> Result<MacAddr, LabError> {
    let name = vxlan_name(d.vni);
    if sys_attr(&name, "address").is_err() {
        let (mtu, vni, port, local) =
            ((d.uplink_mtu - 50).to_string(), d.vni.to_string(), d.port.to_string(), d.local.to_string());
        cmd::ip(&[
            "link",
            "add",
            &name,
            "mtu",
            &mtu,
            "type",
            "vxlan",
            "id",
            &vni,
            "dstport",
            &port,
            "local",
            &local,
            "dev",
            d.uplink,
            "nolearning",
        ])?;
    }
    // flannel: net/ipv6/conf/<dev>/accept_ra = 0 (best effort, IPv6 may be off).
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/accept_ra"), "0");
    let text = sys_attr(&name, "address")?;
    text.parse().map_err(|_| LabError::Spec(format!("{name}: MAC {text:?} unparseable")))
}

/// Gives the device `<subnet>.0/32` and brings it up (flannel's `Configure`).
pub fn configure(vni: u32, subnet: Ipv4Net) -> Result<(), LabError> {
    let name = vxlan_name(vni);
    cmd::ip(&["addr", "replace", &format!("{}/32", subnet.network()), "dev", &name])?;
    cmd::ip(&["link", "set", &name, "up"]).map(drop)
}
