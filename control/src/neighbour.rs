//! Kernel-assisted neighbour resolution for the uplink.
//!
//! The engine needs an underlay MAC for every next hop it sends to without a
//! VTEP MAC of its own: host-gw peers, encap peers on our L2 subnet, and the
//! underlay gateway for peers behind it. Rather than speak ARP itself, weft
//! lets the kernel do it (the node's own IP stack stays authoritative):
//!
//! 1. each destination (a peer's PublicIP) maps to a next hop through the
//!    kernel's routing table for the uplink (`/proc/thread-self/net/route`):
//!    on-link -> the peer itself, otherwise the route's gateway;
//! 2. the kernel's ARP table (`/proc/thread-self/net/arp`) is read for those
//!    next hops; complete entries are learned;
//! 3. a missing next hop is probed by sending one empty UDP datagram to its
//!    discard port (9) from a plain socket, which makes the kernel ARP for it;
//!    known ones are re-probed every `reprobe` so the kernel keeps them fresh;
//! 4. changes (learned, changed, lost) go to a [`NeighbourSink`].
//!
//! Everything runs on the control side; `thread-self` paths make it read the
//! tables of the calling thread's network namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use crate::flannel::MacAddr;

/// The kernel's ARP table of the calling thread's network namespace.
const ARP_TABLE: &str = "/proc/thread-self/net/arp";
/// The kernel's IPv4 routing table (main table) of the calling thread's namespace.
const ROUTE_TABLE: &str = "/proc/thread-self/net/route";
/// RFC 863 discard port: a probe datagram does nothing there.
const DISCARD_PORT: u16 = 9;
/// `ATF_COM`: the entry is complete (has a MAC).
const ATF_COM: u32 = 0x02;

/// Receives the underlay MACs the resolver learns: the daemon binds it to the
/// engine's neighbour table and keeps a copy for status.
pub trait NeighbourSink: Send {
    /// `ip` (a next hop on the uplink) now resolves to `mac`, or no longer
    /// resolves (`None`). Called only on changes.
    fn neighbour_changed(&mut self, ip: Ipv4Addr, mac: Option<MacAddr>);
}

/// What one [`NeighbourResolver::refresh`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefreshReport {
    /// Next hops that gained or changed a MAC.
    pub learned: usize,
    /// Next hops that lost their MAC (or are no longer wanted).
    pub lost: usize,
    /// Probe datagrams sent.
    pub probed: usize,
}

/// One line of `/proc/net/route`, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KernelRoute {
    dest: u32,
    mask: u32,
    gateway: Ipv4Addr,
}

/// Parses a little-endian hex address of `/proc/net/route`.
fn proc_hex_addr(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 16).ok().map(|v| u32::from_be_bytes(v.to_le_bytes()))
}

/// The routes of `/proc/net/route` text that leave through `iface` (RTF_UP).
fn parse_routes(text: &str, iface: &str) -> Vec<KernelRoute> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || f[0] != iface {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            if flags & 0x1 == 0 {
                return None;
            }
            Some(KernelRoute {
                dest: proc_hex_addr(f[1])?,
                gateway: Ipv4Addr::from(proc_hex_addr(f[2])?),
                mask: proc_hex_addr(f[7])?,
            })
        })
        .collect()
}

/// The next hop the kernel would use for `dest` through `routes`: the
/// longest matching route's gateway, or `dest` itself when on-link. `None`
/// when no route of the uplink covers `dest`.
fn next_hop(routes: &[KernelRoute], dest: Ipv4Addr) -> Option<Ipv4Addr> {
    let d = u32::from(dest);
    routes
        .iter()
        .filter(|r| d & r.mask == r.dest & r.mask)
        .max_by_key(|r| r.mask.count_ones())
        .map(|r| if r.gateway.is_unspecified() { dest } else { r.gateway })
}

/// The gateway of `iface`'s default route in the calling thread's namespace
/// (`None`: no default route through `iface`).
pub fn default_gateway(iface: &str) -> io::Result<Option<Ipv4Addr>> {
    let routes = parse_routes(&std::fs::read_to_string(ROUTE_TABLE)?, iface);
    Ok(routes.iter().find(|r| r.mask == 0 && !r.gateway.is_unspecified()).map(|r| r.gateway))
}

/// Complete entries of `/proc/net/arp` text on `iface`.
fn parse_arp(text: &str, iface: &str) -> BTreeMap<Ipv4Addr, MacAddr> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 || f[5] != iface {
                return None;
            }
            let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?;
            if flags & ATF_COM == 0 {
                return None;
            }
            let mac: MacAddr = f[3].parse().ok()?;
            if mac.0 == [0; 6] {
                return None;
            }
            Some((f[0].parse().ok()?, mac))
        })
        .collect()
}

/// Resolves the underlay MACs of the uplink's next hops with the kernel's
/// help. See the module docs. Single-threaded: own it from one control task.
#[derive(Debug)]
pub struct NeighbourResolver {
    iface: String,
    destinations: BTreeSet<Ipv4Addr>,
    next_hops: BTreeSet<Ipv4Addr>,
    known: BTreeMap<Ipv4Addr, MacAddr>,
    last_probe: BTreeMap<Ipv4Addr, Instant>,
    probe: UdpSocket,
    retry: Duration,
    reprobe: Duration,
}

impl NeighbourResolver {
    /// A resolver for `iface`: probes missing next hops at most every
    /// `retry`, known ones every `reprobe`. Opens the probe socket in the
    /// calling thread's network namespace.
    pub fn new(iface: &str, retry: Duration, reprobe: Duration) -> io::Result<Self> {
        Ok(NeighbourResolver {
            iface: iface.to_owned(),
            destinations: BTreeSet::new(),
            next_hops: BTreeSet::new(),
            known: BTreeMap::new(),
            last_probe: BTreeMap::new(),
            probe: UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?,
            retry,
            reprobe,
        })
    }

    /// Sets the underlay addresses (peers' PublicIPs) whose next hops need a
    /// MAC. Takes effect at the next [`NeighbourResolver::refresh`].
    pub fn set_destinations(&mut self, destinations: impl IntoIterator<Item = Ipv4Addr>) {
        self.destinations = destinations.into_iter().collect();
    }

    /// The next hops resolved so far.
    pub fn known(&self) -> &BTreeMap<Ipv4Addr, MacAddr> {
        &self.known
    }

    /// The next hops wanted at the last refresh.
    pub fn next_hops(&self) -> &BTreeSet<Ipv4Addr> {
        &self.next_hops
    }

    /// Reads the kernel's tables, pushes changes to `sink`, probes what is
    /// missing or due. Errors are reading `/proc` (not per next hop: a probe
    /// that cannot be sent is retried at the next refresh).
    pub fn refresh(&mut self, sink: &mut dyn NeighbourSink) -> io::Result<RefreshReport> {
        let routes = parse_routes(&std::fs::read_to_string(ROUTE_TABLE)?, &self.iface);
        self.next_hops = self.destinations.iter().filter_map(|&d| next_hop(&routes, d)).collect();
        let arp = parse_arp(&std::fs::read_to_string(ARP_TABLE)?, &self.iface);
        let mut report = RefreshReport::default();
        let gone: Vec<Ipv4Addr> = self
            .known
            .keys()
            .filter(|ip| !self.next_hops.contains(ip) || !arp.contains_key(ip))
            .copied()
            .collect();
        for ip in gone {
            self.known.remove(&ip);
            sink.neighbour_changed(ip, None);
            report.lost += 1;
        }
        self.last_probe.retain(|ip, _| self.next_hops.contains(ip));
        let now = Instant::now();
        for &ip in &self.next_hops {
            match arp.get(&ip) {
                Some(&mac) if self.known.get(&ip) != Some(&mac) => {
                    self.known.insert(ip, mac);
                    sink.neighbour_changed(ip, Some(mac));
                    report.learned += 1;
                }
                _ => {}
            }
            let every = if self.known.contains_key(&ip) { self.reprobe } else { self.retry };
            let due = self.last_probe.get(&ip).is_none_or(|&t| now.duration_since(t) >= every);
            if due {
                // An error (no route, unreachable) is the kernel's answer to
                // this probe; the next refresh sees the outcome in the table.
                let _ = self.probe.send_to(&[], SocketAddrV4::new(ip, DISCARD_PORT));
                self.last_probe.insert(ip, now);
                report.probed += 1;
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
up0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
up0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
up0\t000512C6\t020012C6\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
lo9\t000612C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";

    const ARP: &str = "IP address       HW type     Flags       HW address            Mask     Device
198.18.0.2       0x1         0x2         02:00:00:00:00:02     *        up0
198.18.0.3       0x1         0x0         00:00:00:00:00:00     *        up0
198.18.0.4       0x1         0x2         02:00:00:00:00:04     *        other
";

    #[test]
    fn on_link_destinations_are_their_own_next_hop_and_others_use_the_gateway() {
        let routes = parse_routes(ROUTES, "up0");
        assert_eq!(routes.len(), 3, "routes of other interfaces are ignored");
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(next_hop(&routes, ip("198.18.0.7")), Some(ip("198.18.0.7")));
        assert_eq!(next_hop(&routes, ip("198.18.5.9")), Some(ip("198.18.0.2")), "longest match wins");
        assert_eq!(next_hop(&routes, ip("203.0.113.1")), Some(ip("198.18.0.1")), "default route");
        assert_eq!(next_hop(&parse_routes(ROUTES, "lo9"), ip("198.18.7.1")), None);
    }

    #[test]
    fn only_complete_entries_of_the_uplink_are_learned() {
        let arp = parse_arp(ARP, "up0");
        assert_eq!(arp.len(), 1);
        assert_eq!(arp[&"198.18.0.2".parse().unwrap()], "02:00:00:00:00:02".parse().unwrap());
    }
}
