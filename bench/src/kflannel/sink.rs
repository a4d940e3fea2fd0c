//! [`KernelSink`]: a [`RouteSink`] that programs the Linux kernel exactly as flanneld's
//! vxlan (`backend/vxlan/vxlan_network.go`) and host-gw backends do.
//!
//! ```text
//! vxlan upsert:  ip neigh replace <subnet>.0 lladdr <VtepMAC> dev flannel.1 nud permanent
//!                bridge fdb replace <VtepMAC> dev flannel.1 dst <PublicIP> self permanent
//!                ip route replace <subnet> via <subnet>.0 dev flannel.1 onlink
//! host-gw:       ip route replace <subnet> via <PublicIP> dev <uplink>
//! wireguard:     wg set flannel-wg peer <PublicKey> endpoint <PublicIP>:<Port> allowed-ips <subnet>
//!                (remove: wg set flannel-wg peer <PublicKey> remove)
//! remove:        the same entries deleted (ARP, FDB, route: flannel's order)
//! ```
//! One batch runs as at most three processes (`ip -batch`, `bridge -batch`, `ip -batch`),
//! in the order above, with `-force` so one stale entry does not stop the rest; failures
//! are logged with the commands that failed.

use std::collections::BTreeMap;
use std::fmt::Write;

use ipnet::Ipv4Net;
use weft_control::routes::{RouteDelta, RouteSink, RouteTable, Via};

use crate::lab::cmd;

use super::device::vxlan_name;

/// Programs routes into the kernel of the namespace it runs in.
#[derive(Debug)]
pub struct KernelSink {
    uplink: String,
    /// The wireguard backend's pre-shared key file and persistent keepalive, when it runs.
    wireguard: Option<(Option<std::path::PathBuf>, u16)>,
    installed: RouteTable,
    /// Batches applied, and batches in which some command failed.
    pub batches: u64,
    /// See `batches`.
    pub failed_batches: u64,
}

/// The three command scripts of one batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scripts {
    /// `ip -batch`: neighbour entries.
    pub neigh: String,
    /// `bridge -batch`: FDB entries.
    pub fdb: String,
    /// `ip -batch`: routes.
    pub route: String,
    /// `wg set flannel-wg` argument lists, one per peer change.
    pub wg: Vec<Vec<String>>,
}

fn vtep_ip(subnet: Ipv4Net) -> std::net::Ipv4Addr {
    subnet.network()
}

impl KernelSink {
    /// A sink for a node whose uplink is `uplink`.
    pub fn new(uplink: &str) -> Self {
        KernelSink {
            uplink: uplink.to_owned(),
            wireguard: None,
            installed: BTreeMap::new(),
            batches: 0,
            failed_batches: 0,
        }
    }

    /// Peers go into wireguard-go's device, with this pre-shared key file and keepalive.
    pub fn with_wireguard(mut self, psk_file: Option<std::path::PathBuf>, keepalive: u16) -> Self {
        self.wireguard = Some((psk_file, keepalive));
        self
    }

    /// The routes installed so far.
    pub fn installed(&self) -> &RouteTable {
        &self.installed
    }

    fn undo(s: &mut Scripts, subnet: Ipv4Net, old: &Via, keep_neigh: bool) {
        if let Via::WireGuard { public_key, .. } = *old {
            s.wg.push(vec!["peer".into(), public_key.to_string(), "remove".into()]);
        }
        if let Via::Vxlan { remote, vtep_mac, vni, .. } = *old {
            let dev = vxlan_name(vni);
            if !keep_neigh {
                let _ = writeln!(s.neigh, "neigh del {} dev {dev}", vtep_ip(subnet));
            }
            let _ = writeln!(s.fdb, "fdb del {vtep_mac} dev {dev} dst {remote} self");
        }
    }

    /// The commands for `batch`, given what is installed; updates `installed`.
    pub fn scripts(&mut self, batch: &[RouteDelta]) -> Scripts {
        let mut s = Scripts::default();
        for delta in batch {
            match *delta {
                RouteDelta::Remove(subnet) => {
                    let old = self.installed.remove(&subnet);
                    if let Some(old) = old {
                        Self::undo(&mut s, subnet, &old, false);
                    }
                    // A wireguard peer's subnet is routed by the one network route into the device.
                    if !matches!(old, Some(Via::WireGuard { .. })) {
                        let _ = writeln!(s.route, "route del {subnet}");
                    }
                }
                RouteDelta::Upsert(spec) => {
                    let subnet = spec.subnet;
                    let old = self.installed.get(&subnet).copied();
                    if old == Some(spec.via) {
                        continue;
                    }
                    match spec.via {
                        Via::Vxlan { remote, vtep_mac, vni, .. } => {
                            let dev = vxlan_name(vni);
                            let gw = vtep_ip(subnet);
                            if let Some(old) = old {
                                Self::undo(&mut s, subnet, &old, true);
                            }
                            let _ = writeln!(
                                s.neigh,
                                "neigh replace {gw} lladdr {vtep_mac} dev {dev} nud permanent"
                            );
                            let _ = writeln!(
                                s.fdb,
                                "fdb replace {vtep_mac} dev {dev} dst {remote} self permanent"
                            );
                            let _ = writeln!(s.route, "route replace {subnet} via {gw} dev {dev} onlink");
                        }
                        Via::HostGw { gateway } => {
                            if let Some(old) = old {
                                Self::undo(&mut s, subnet, &old, false);
                            }
                            let _ =
                                writeln!(s.route, "route replace {subnet} via {gateway} dev {}", self.uplink);
                        }
                        Via::Ipip { remote } => {
                            tracing::warn!(%subnet, %remote, "ipip lease ignored: the kernel node has no ipip device");
                            continue;
                        }
                        Via::WireGuard { remote, port, public_key } => {
                            let Some((psk, keepalive)) = &self.wireguard else {
                                tracing::warn!(%subnet, %remote, "wireguard lease ignored: this node runs no wireguard device");
                                continue;
                            };
                            if let Some(old) = old {
                                Self::undo(&mut s, subnet, &old, false);
                            }
                            s.wg.push(super::wireguard::peer_args(
                                public_key,
                                remote,
                                port,
                                subnet,
                                psk.as_deref(),
                                *keepalive,
                            ));
                        }
                    }
                    self.installed.insert(subnet, spec.via);
                }
            }
        }
        s
    }
}

fn run_batch(program: &str, script: &str) -> bool {
    if script.is_empty() {
        return true;
    }
    match cmd::run_with_input(program, &["-force", "-batch", "-"], Some(script)) {
        Ok(_) => true,
        Err(e) => {
            tracing::error!("{e}");
            false
        }
    }
}

impl RouteSink for KernelSink {
    fn apply(&mut self, batch: &[RouteDelta]) {
        let s = self.scripts(batch);
        let mut ok = run_batch("ip", &s.neigh) & run_batch("bridge", &s.fdb) & run_batch("ip", &s.route);
        for args in &s.wg {
            let mut all = vec!["set", super::wireguard::DEVICE];
            all.extend(args.iter().map(String::as_str));
            if let Err(e) = cmd::run("wg", &all) {
                tracing::error!("{e}");
                ok = false;
            }
        }
        self.batches += 1;
        if !ok {
            self.failed_batches += 1;
        }
        tracing::info!(changes = batch.len(), routes = self.installed.len(), ok, "kernel routes updated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_control::routes::RouteSpec;

    fn vxlan(remote: [u8; 4], mac: &str) -> Via {
        Via::Vxlan { remote: remote.into(), vtep_mac: mac.parse().unwrap(), vni: 1, port: 8472 }
    }

    #[test]
    fn a_vxlan_lease_becomes_flannels_neighbour_fdb_and_onlink_route() {
        let mut sink = KernelSink::new("uplink");
        let subnet: Ipv4Net = "198.19.2.0/24".parse().unwrap();
        let via = vxlan([198, 18, 0, 2], "0a:58:c6:12:00:02");
        let s = sink.scripts(&[RouteDelta::Upsert(RouteSpec { subnet, via })]);
        assert_eq!(
            s.neigh,
            "neigh replace 198.19.2.0 lladdr 0a:58:c6:12:00:02 dev flannel.1 nud permanent\n"
        );
        assert_eq!(s.fdb, "fdb replace 0a:58:c6:12:00:02 dev flannel.1 dst 198.18.0.2 self permanent\n");
        assert_eq!(s.route, "route replace 198.19.2.0/24 via 198.19.2.0 dev flannel.1 onlink\n");
        let again = sink.scripts(&[RouteDelta::Upsert(RouteSpec { subnet, via })]);
        assert_eq!(again, Scripts::default(), "an unchanged lease issues no commands");
    }

    #[test]
    fn removing_a_vxlan_lease_deletes_its_neighbour_fdb_entry_and_route() {
        let mut sink = KernelSink::new("uplink");
        let subnet: Ipv4Net = "198.19.2.0/24".parse().unwrap();
        let via = vxlan([198, 18, 0, 2], "0a:58:c6:12:00:02");
        sink.scripts(&[RouteDelta::Upsert(RouteSpec { subnet, via })]);
        let s = sink.scripts(&[RouteDelta::Remove(subnet)]);
        assert_eq!(s.neigh, "neigh del 198.19.2.0 dev flannel.1\n");
        assert_eq!(s.fdb, "fdb del 0a:58:c6:12:00:02 dev flannel.1 dst 198.18.0.2 self\n");
        assert_eq!(s.route, "route del 198.19.2.0/24\n");
        assert!(sink.installed().is_empty());
    }

    #[test]
    fn a_new_vtep_mac_replaces_the_old_fdb_entry_and_host_gw_is_a_plain_route() {
        let mut sink = KernelSink::new("uplink");
        let subnet: Ipv4Net = "198.19.2.0/24".parse().unwrap();
        sink.scripts(&[RouteDelta::Upsert(RouteSpec {
            subnet,
            via: vxlan([198, 18, 0, 2], "0a:58:c6:12:00:02"),
        })]);
        let s = sink.scripts(&[RouteDelta::Upsert(RouteSpec {
            subnet,
            via: vxlan([198, 18, 0, 2], "0a:58:c6:12:00:09"),
        })]);
        assert!(s.fdb.starts_with("fdb del 0a:58:c6:12:00:02 dev flannel.1 dst 198.18.0.2 self\n"));
        assert!(
            s.fdb.ends_with("fdb replace 0a:58:c6:12:00:09 dev flannel.1 dst 198.18.0.2 self permanent\n")
        );
        let other: Ipv4Net = "198.19.3.0/24".parse().unwrap();
        let s = sink.scripts(&[RouteDelta::Upsert(RouteSpec {
            subnet: other,
            via: Via::HostGw { gateway: [198, 18, 0, 3].into() },
        })]);
        assert_eq!(
            s,
            Scripts {
                route: "route replace 198.19.3.0/24 via 198.18.0.3 dev uplink\n".into(),
                ..Scripts::default()
            }
        );
    }
}
