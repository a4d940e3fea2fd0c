//! The daemon's route sink: compiled routes go into the engine's [`RouteProgrammer`], which
//! builds the next hops (encap templates, neighbour slots) and publishes each batch as one FIB
//! version.

use std::sync::{Arc, Mutex, PoisonError};

use ipnet::Ipv4Net;
use weft_encap::Vni;
use weft_engine::fib::{Ipv4Prefix, PrefixError};
use weft_engine::pipeline::{RemoteRoute, RouteProgrammer, RouteUpdate, Via as EngineVia};

use super::{RouteDelta, RouteSink, Via};

/// The route programmer, shared by the control plane's tasks (this sink, the neighbour loop,
/// the pod API). Only control-side tasks take the mutex; workers read the FIB lock-free.
pub type SharedProgrammer = Arc<Mutex<RouteProgrammer>>;

/// Why a compiled route has no engine form.
#[derive(Debug, thiserror::Error)]
pub enum RouteConvertError {
    /// The network config's VNI does not fit VXLAN's 24 bits.
    #[error("route to {subnet}: VNI {vni} does not fit in 24 bits")]
    Vni {
        /// The route's subnet.
        subnet: Ipv4Net,
        /// The VNI.
        vni: u32,
    },
    /// The subnet is not a valid FIB prefix.
    #[error("route to {subnet}: {source}")]
    Prefix {
        /// The route's subnet.
        subnet: Ipv4Net,
        /// What the FIB said.
        source: PrefixError,
    },
}

/// The engine's form of one compiled route change.
pub fn route_update(delta: &RouteDelta) -> Result<RouteUpdate, RouteConvertError> {
    Ok(match *delta {
        RouteDelta::Upsert(spec) => {
            let via = match spec.via {
                Via::Vxlan { remote, vtep_mac, vni, port } => EngineVia::Vxlan {
                    remote,
                    vtep_mac,
                    vni: Vni::try_new(vni).ok_or(RouteConvertError::Vni { subnet: spec.subnet, vni })?,
                    port,
                },
                Via::Ipip { remote } => EngineVia::Ipip { remote },
                Via::HostGw { gateway } => EngineVia::HostGw { node: gateway },
                Via::WireGuard { remote, port, public_key } => {
                    EngineVia::WireGuard { remote, port, public_key: public_key.0 }
                }
            };
            RouteUpdate::Remote(RemoteRoute { prefix: prefix(spec.subnet)?, via })
        }
        RouteDelta::Remove(subnet) => RouteUpdate::RemoveRemote(prefix(subnet)?),
    })
}

fn prefix(subnet: Ipv4Net) -> Result<Ipv4Prefix, RouteConvertError> {
    let net = subnet.trunc();
    Ipv4Prefix::new(net.network(), net.prefix_len())
        .map_err(|source| RouteConvertError::Prefix { subnet, source })
}

/// A [`RouteSink`] over the shared [`RouteProgrammer`]: every batch becomes one
/// `RouteProgrammer::apply` call, so one FIB version.
#[derive(Debug)]
pub struct ProgrammerSink {
    programmer: SharedProgrammer,
    updates: Vec<RouteUpdate>,
    failed_batches: u64,
}

impl ProgrammerSink {
    /// A sink feeding `programmer`.
    pub fn new(programmer: SharedProgrammer) -> Self {
        ProgrammerSink { programmer, updates: Vec::new(), failed_batches: 0 }
    }

    /// Batches the FIB refused (e.g. tbl8 groups exhausted); each was logged.
    pub fn failed_batches(&self) -> u64 {
        self.failed_batches
    }
}

impl RouteSink for ProgrammerSink {
    fn apply(&mut self, batch: &[RouteDelta]) {
        self.updates.clear();
        for delta in batch {
            match route_update(delta) {
                Ok(u) => self.updates.push(u),
                Err(e) => tracing::warn!("{e}; route skipped"),
            }
        }
        let mut programmer = self.programmer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = programmer.apply(&self.updates) {
            self.failed_batches += 1;
            tracing::error!("{e}; the changes before the failing one are in force");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::routes::RouteSpec;

    #[test]
    fn each_compiled_route_kind_maps_to_its_engine_route() {
        let subnet: Ipv4Net = "198.19.2.0/24".parse().unwrap();
        let remote = Ipv4Addr::new(198, 18, 0, 2);
        let vtep_mac = "0a:58:c6:12:00:02".parse().unwrap();
        let p = Ipv4Prefix::new(Ipv4Addr::new(198, 19, 2, 0), 24).unwrap();
        let cases = [
            (
                Via::Vxlan { remote, vtep_mac, vni: 4096, port: 4789 },
                EngineVia::Vxlan { remote, vtep_mac, vni: Vni::CALICO, port: 4789 },
            ),
            (Via::Ipip { remote }, EngineVia::Ipip { remote }),
            (Via::HostGw { gateway: remote }, EngineVia::HostGw { node: remote }),
            (
                Via::WireGuard { remote, port: 51820, public_key: crate::flannel::WgKey([7; 32]) },
                EngineVia::WireGuard { remote, port: 51820, public_key: [7; 32] },
            ),
        ];
        for (via, engine) in cases {
            let u = route_update(&RouteDelta::Upsert(RouteSpec { subnet, via })).unwrap();
            assert_eq!(u, RouteUpdate::Remote(RemoteRoute { prefix: p, via: engine }));
        }
        assert_eq!(route_update(&RouteDelta::Remove(subnet)).unwrap(), RouteUpdate::RemoveRemote(p));
    }

    #[test]
    fn an_oversized_vni_is_an_error_naming_the_route() {
        let subnet: Ipv4Net = "198.19.2.0/24".parse().unwrap();
        let via = Via::Vxlan {
            remote: Ipv4Addr::new(198, 18, 0, 2),
            vtep_mac: Default::default(),
            vni: 1 << 24,
            port: 8472,
        };
        let e = route_update(&RouteDelta::Upsert(RouteSpec { subnet, via })).unwrap_err();
        assert_eq!(e.to_string(), "route to 198.19.2.0/24: VNI 16777216 does not fit in 24 bits");
    }
}
