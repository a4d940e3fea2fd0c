//! What the daemon reads from the kernel about its interfaces before the
//! pipeline starts: the uplink's MAC and IPv4 prefix, a pod port's MAC (the
//! gateway MAC its pod sees) and the underlay default gateway.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use nix::ifaddrs::getifaddrs;

use super::DaemonError;
use crate::flannel::MacAddr;

/// What one interface carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// Its Ethernet address.
    pub mac: Option<MacAddr>,
    /// Its IPv4 addresses with their prefixes.
    pub ipv4: Vec<Ipv4Net>,
}

/// Reads `ifname`'s MAC and IPv4 addresses (`getifaddrs`, this namespace).
pub fn link_info(ifname: &str) -> Result<LinkInfo, DaemonError> {
    let addrs = getifaddrs().map_err(|e| DaemonError::Underlay {
        interface: ifname.to_owned(),
        what: format!("getifaddrs: {e}"),
    })?;
    let mut info = LinkInfo::default();
    for a in addrs.filter(|a| a.interface_name == ifname) {
        let Some(addr) = a.address else { continue };
        if let Some(mac) = addr.as_link_addr().and_then(|l| l.addr()) {
            info.mac = Some(MacAddr(mac));
        } else if let Some(v4) = addr.as_sockaddr_in() {
            let len = a.netmask.and_then(|m| m.as_sockaddr_in().map(|m| u32::from(m.ip()).count_ones()));
            if let Ok(net) = Ipv4Net::new(v4.ip(), len.unwrap_or(32) as u8) {
                info.ipv4.push(net);
            }
        }
    }
    Ok(info)
}

/// `ifname`'s MAC; an error naming the interface when it has none.
pub fn link_mac(ifname: &str) -> Result<MacAddr, DaemonError> {
    link_info(ifname)?.mac.ok_or_else(|| DaemonError::Underlay {
        interface: ifname.to_owned(),
        what: "has no Ethernet address (weft needs an Ethernet interface)".to_owned(),
    })
}

/// The MAC of the other end of the veth `ifname`, which must be in this
/// namespace (the exception port's kernel side). Read from sysfs: a veth's
/// `iflink` is its peer's ifindex (any other interface's is its own).
pub fn veth_peer_mac(key: &str, ifname: &str) -> Result<MacAddr, DaemonError> {
    let bad = |what: String| DaemonError::Underlay { interface: format!("{key} {ifname}"), what };
    let read = |file: &str| -> Result<u32, DaemonError> {
        let path = format!("/sys/class/net/{ifname}/{file}");
        let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("reading {path}: {e}")))?;
        text.trim().parse().map_err(|e| bad(format!("{path}: {e}")))
    };
    let (me, peer) = (read("ifindex")?, read("iflink")?);
    let not_veth = || {
        bad("is not one end of a veth pair whose other end is in this namespace \
             (create it with `ip link add <name> type veth peer name <host side>`)"
            .to_owned())
    };
    if peer == me || peer == 0 {
        return Err(not_veth());
    }
    let name = nix::net::if_::if_indextoname(peer).map_err(|_| not_veth())?;
    let name = name.to_string_lossy();
    // An index from another namespace may name an unrelated interface here.
    let back = std::fs::read_to_string(format!("/sys/class/net/{name}/iflink")).unwrap_or_default();
    if back.trim().parse::<u32>().ok() != Some(me) {
        return Err(not_veth());
    }
    link_mac(&name)
}

/// The uplink's L2 subnet: `configured` when given, else the prefix of the
/// uplink's IPv4 address that holds `public_ip`, else `public_ip/32` (every
/// remote then counts as off-subnet).
pub fn uplink_subnet(configured: Option<Ipv4Net>, link: &LinkInfo, public_ip: Ipv4Addr) -> Ipv4Net {
    configured
        .or_else(|| link.ipv4.iter().find(|n| n.contains(&public_ip)).map(Ipv4Net::trunc))
        .unwrap_or_else(|| Ipv4Net::from(public_ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uplink_subnet_comes_from_the_config_then_the_interface_then_the_public_ip() {
        let ip = Ipv4Addr::new(198, 18, 0, 11);
        let link = LinkInfo { mac: None, ipv4: vec!["198.18.0.11/24".parse().unwrap()] };
        let cfg: Ipv4Net = "198.18.0.0/23".parse().unwrap();
        assert_eq!(uplink_subnet(Some(cfg), &link, ip), cfg);
        assert_eq!(uplink_subnet(None, &link, ip), "198.18.0.0/24".parse::<Ipv4Net>().unwrap());
        assert_eq!(
            uplink_subnet(None, &LinkInfo::default(), ip),
            "198.18.0.11/32".parse::<Ipv4Net>().unwrap()
        );
    }

    #[test]
    fn a_missing_interface_has_no_addresses_and_no_mac() {
        assert!(link_info("weft-no-such0").unwrap() == LinkInfo::default());
        assert!(link_mac("weft-no-such0").is_err());
    }
}
