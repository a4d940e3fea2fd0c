//! Leases (ours, the network config, everyone else's) -> the routes we want,
//! delivered to a [`RouteSink`] as minimal diffs in whole batches.

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{RouteDelta, RouteSink, RouteSpec, RouteTable, Via};
use crate::flannel::{BackendConfig, BackendType, LeaseAttrs};

/// What the compiler needs to know about this node and the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    /// The network's backend (`<prefix>/config` `Backend`).
    pub backend: BackendConfig,
    /// Our PublicIP: leases carrying it are ours, never routed.
    pub own_public_ip: Ipv4Addr,
    /// Our uplink's L2 subnet, for DirectRouting; `None` disables it.
    pub uplink_subnet: Option<Ipv4Net>,
}

impl RoutePolicy {
    /// The route to `subnet` for a peer lease, or why there is none.
    pub fn via(&self, attrs: &LeaseAttrs) -> Result<Via, &'static str> {
        if attrs.backend_type != self.backend.backend_type {
            return Err("backend type differs from the network's");
        }
        if attrs.public_ip == self.own_public_ip {
            return Err("PublicIP is our own");
        }
        let on_link = self.uplink_subnet.is_some_and(|net| net.contains(&attrs.public_ip));
        let encap = matches!(attrs.backend_type, BackendType::Vxlan | BackendType::Ipip);
        if encap && self.backend.direct_routing && on_link {
            return Ok(Via::HostGw { gateway: attrs.public_ip });
        }
        match attrs.backend_type {
            BackendType::Vxlan => {
                let data = attrs.vxlan.ok_or("vxlan lease without BackendData")?;
                Ok(Via::Vxlan {
                    remote: attrs.public_ip,
                    vtep_mac: data.vtep_mac,
                    vni: self.backend.vni,
                    port: self.backend.port,
                })
            }
            BackendType::Ipip => Ok(Via::Ipip { remote: attrs.public_ip }),
            BackendType::HostGw => Ok(Via::HostGw { gateway: attrs.public_ip }),
            BackendType::WireGuard => {
                let data = attrs.wireguard.ok_or("wireguard lease without BackendData")?;
                Ok(Via::WireGuard {
                    remote: attrs.public_ip,
                    port: data.port.unwrap_or(self.backend.wireguard.listen_port),
                    public_key: data.public_key,
                })
            }
            BackendType::Other(_) => Err("backend type is not one weft routes"),
        }
    }
}

/// Keeps the desired table and what the sink has, and flushes the difference.
///
/// Staging calls (`lease_put`, `lease_deleted`, `reconcile_*`) only touch the
/// desired table; [`RouteCompiler::flush`] sends one batch holding every
/// subnet whose route actually changed, at most once each. A put followed by
/// a delete before a flush sends nothing.
#[derive(Debug)]
pub struct RouteCompiler {
    policy: RoutePolicy,
    own_subnet: Option<Ipv4Net>,
    desired: RouteTable,
    installed: RouteTable,
    dirty: BTreeSet<Ipv4Net>,
    warned: HashSet<Ipv4Net>,
    batch: Vec<RouteDelta>,
}

impl RouteCompiler {
    /// A compiler with nothing installed.
    pub fn new(policy: RoutePolicy) -> Self {
        RouteCompiler {
            policy,
            own_subnet: None,
            desired: RouteTable::new(),
            installed: RouteTable::new(),
            dirty: BTreeSet::new(),
            warned: HashSet::new(),
            batch: Vec::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &RoutePolicy {
        &self.policy
    }

    /// Sets our own subnet; a route to it is never installed.
    pub fn set_own_subnet(&mut self, subnet: Option<Ipv4Net>) {
        self.own_subnet = subnet;
        if let Some(own) = subnet {
            if self.desired.remove(&own).is_some() {
                self.dirty.insert(own);
            }
        }
    }

    /// Stages a peer lease being added or changed.
    pub fn lease_put(&mut self, subnet: Ipv4Net, attrs: &LeaseAttrs) {
        if Some(subnet) == self.own_subnet {
            return;
        }
        let via = match self.policy.via(attrs) {
            Ok(via) => Some(via),
            Err(why) => {
                if self.warned.insert(subnet) {
                    tracing::warn!(%subnet, public_ip = %attrs.public_ip, backend = %attrs.backend_type, "ignoring lease: {why}");
                }
                None
            }
        };
        self.stage(subnet, via);
    }

    /// Stages a peer lease going away (deleted or expired).
    pub fn lease_deleted(&mut self, subnet: Ipv4Net) {
        self.warned.remove(&subnet);
        self.stage(subnet, None);
    }

    /// Stages a full resync: afterwards the desired table holds exactly the
    /// routes for `leases` (a re-list after start, compaction or reconnect).
    pub fn reconcile_leases<'a>(&mut self, leases: impl IntoIterator<Item = (Ipv4Net, &'a LeaseAttrs)>) {
        let old: Vec<Ipv4Net> = self.desired.keys().copied().collect();
        let mut seen = BTreeSet::new();
        for (subnet, attrs) in leases {
            seen.insert(subnet);
            self.lease_put(subnet, attrs);
        }
        for subnet in old.into_iter().filter(|s| !seen.contains(s)) {
            self.lease_deleted(subnet);
        }
    }

    /// Stages a full resync to a fixed route list (static mode).
    pub fn reconcile_specs(&mut self, specs: &[RouteSpec]) {
        let old: Vec<Ipv4Net> = self.desired.keys().copied().collect();
        for subnet in old {
            self.stage(subnet, None);
        }
        for spec in specs {
            self.stage(spec.subnet, Some(spec.via));
        }
    }

    fn stage(&mut self, subnet: Ipv4Net, via: Option<Via>) {
        let changed = match via {
            Some(via) => self.desired.insert(subnet, via) != Some(via),
            None => self.desired.remove(&subnet).is_some(),
        };
        if changed {
            self.dirty.insert(subnet);
        }
    }

    /// Sends everything staged since the last flush as one batch; returns
    /// its length (0: nothing changed, the sink was not called).
    pub fn flush(&mut self, sink: &mut dyn RouteSink) -> usize {
        self.batch.clear();
        for subnet in std::mem::take(&mut self.dirty) {
            let want = self.desired.get(&subnet).copied();
            let have = self.installed.get(&subnet).copied();
            if want == have {
                continue;
            }
            match want {
                Some(via) => {
                    self.installed.insert(subnet, via);
                    self.batch.push(RouteDelta::Upsert(RouteSpec { subnet, via }));
                }
                None => {
                    self.installed.remove(&subnet);
                    self.batch.push(RouteDelta::Remove(subnet));
                }
            }
        }
        if !self.batch.is_empty() {
            sink.apply(&self.batch);
        }
        self.batch.len()
    }

    /// The routes the sink has been given.
    pub fn installed(&self) -> &RouteTable {
        &self.installed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flannel::VxlanBackendData;
    use crate::routes::RecordingSink;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn policy(backend: BackendType, direct_routing: bool) -> RoutePolicy {
        RoutePolicy {
            backend: BackendConfig { direct_routing, ..BackendConfig::defaults(backend) },
            own_public_ip: Ipv4Addr::new(198, 18, 0, 1),
            uplink_subnet: Some(net("198.18.0.0/24")),
        }
    }

    fn lease(backend: BackendType, ip: [u8; 4]) -> LeaseAttrs {
        let vxlan = (backend == BackendType::Vxlan)
            .then(|| VxlanBackendData { vni: Some(1), vtep_mac: "0a:00:00:00:00:02".parse().unwrap() });
        LeaseAttrs {
            public_ip: Ipv4Addr::from(ip),
            public_ipv6: None,
            backend_type: backend,
            vxlan,
            wireguard: None,
        }
    }

    #[test]
    fn each_backend_compiles_to_its_next_hop() {
        let p = policy(BackendType::Vxlan, false);
        assert_eq!(
            p.via(&lease(BackendType::Vxlan, [198, 18, 1, 2])),
            Ok(Via::Vxlan {
                remote: Ipv4Addr::new(198, 18, 1, 2),
                vtep_mac: "0a:00:00:00:00:02".parse().unwrap(),
                vni: 1,
                port: 8472
            })
        );
        let p = policy(BackendType::Ipip, false);
        assert_eq!(
            p.via(&lease(BackendType::Ipip, [198, 18, 0, 2])),
            Ok(Via::Ipip { remote: Ipv4Addr::new(198, 18, 0, 2) })
        );
        let p = policy(BackendType::HostGw, false);
        assert_eq!(
            p.via(&lease(BackendType::HostGw, [198, 18, 0, 2])),
            Ok(Via::HostGw { gateway: Ipv4Addr::new(198, 18, 0, 2) })
        );
    }

    #[test]
    fn direct_routing_uses_host_gw_only_on_our_l2_subnet() {
        for backend in [BackendType::Vxlan, BackendType::Ipip] {
            let p = policy(backend.clone(), true);
            assert_eq!(
                p.via(&lease(backend.clone(), [198, 18, 0, 7])),
                Ok(Via::HostGw { gateway: Ipv4Addr::new(198, 18, 0, 7) })
            );
            assert!(!matches!(p.via(&lease(backend, [198, 18, 1, 7])), Ok(Via::HostGw { .. })));
        }
    }

    #[test]
    fn other_backends_and_our_own_ip_are_ignored() {
        let p = policy(BackendType::Vxlan, false);
        assert!(p.via(&lease(BackendType::HostGw, [198, 18, 0, 2])).is_err());
        assert!(p.via(&lease(BackendType::Vxlan, [198, 18, 0, 1])).is_err());
    }

    #[test]
    fn flush_sends_only_real_changes_once_per_subnet() {
        let mut c = RouteCompiler::new(policy(BackendType::HostGw, false));
        let mut sink = RecordingSink::new();
        let a = lease(BackendType::HostGw, [198, 18, 0, 2]);
        let b = lease(BackendType::HostGw, [198, 18, 0, 3]);
        c.lease_put(net("10.0.2.0/24"), &a);
        c.lease_put(net("10.0.2.0/24"), &b);
        c.lease_put(net("10.0.3.0/24"), &a);
        c.lease_deleted(net("10.0.3.0/24"));
        assert_eq!(c.flush(&mut sink), 1);
        assert_eq!(
            sink.batches()[0].1,
            vec![RouteDelta::Upsert(RouteSpec {
                subnet: net("10.0.2.0/24"),
                via: Via::HostGw { gateway: b.public_ip }
            })]
        );
        c.lease_put(net("10.0.2.0/24"), &b);
        assert_eq!(c.flush(&mut sink), 0, "an unchanged lease sends nothing");
        assert_eq!(sink.batch_count(), 1);
    }

    #[test]
    fn removing_a_lease_in_a_resync_removes_its_route() {
        let mut c = RouteCompiler::new(policy(BackendType::HostGw, false));
        let mut sink = RecordingSink::new();
        let a = lease(BackendType::HostGw, [198, 18, 0, 2]);
        c.reconcile_leases([(net("10.0.2.0/24"), &a), (net("10.0.3.0/24"), &a)]);
        c.flush(&mut sink);
        c.reconcile_leases([(net("10.0.3.0/24"), &a)]);
        c.flush(&mut sink);
        assert_eq!(sink.table().keys().copied().collect::<Vec<_>>(), vec![net("10.0.3.0/24")]);
        assert_eq!(sink.batches()[1].1, vec![RouteDelta::Remove(net("10.0.2.0/24"))]);
    }

    #[test]
    fn our_own_subnet_is_never_routed() {
        let mut c = RouteCompiler::new(policy(BackendType::HostGw, false));
        let mut sink = RecordingSink::new();
        c.set_own_subnet(Some(net("10.0.2.0/24")));
        c.lease_put(net("10.0.2.0/24"), &lease(BackendType::HostGw, [198, 18, 0, 9]));
        assert_eq!(c.flush(&mut sink), 0);
    }
}
