//! What the daemon shares between its control tasks (API, metrics,
//! neighbours, the lease agent): control-side state behind plain mutexes,
//! never touched by a worker. Builds the [`StatusReport`].

use std::net::Ipv4Addr;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use ipnet::Ipv4Net;
use tokio::sync::watch;
use weft_engine::pipeline::{PathCounter, PathCounts};
use weft_engine::worker::DropReason;

use super::dataplane::{SharedNeighbours, SharedRoutes, lock};
use super::workers::Dataplane;
use crate::api::{
    BgpSessionLine, BgpState, DropLine, EtcdState, FibState, LeaseLine, NeighbourLine, PolicyState,
    RouteLine, StatusReport, WaitingState,
};
use crate::etcd::{AgentStatus, StartProgress};
use crate::routes::Via;

/// Where the daemon is in its life (status and `/healthz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Listeners open; waiting for etcd (and its network config) before the lease.
    WaitingForEtcd,
    /// The lease is held (or the static routes read): the data plane is being attached.
    Attaching,
    /// The workers forward.
    Running,
    /// SIGINT/SIGTERM or a failure: tearing down.
    Stopping,
}

impl Phase {
    /// The name status reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::WaitingForEtcd => "waiting for etcd",
            Phase::Attaching => "attaching the data plane",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
        }
    }
}

/// The daemon's shared state. The API and metrics listeners serve it from the start, before
/// etcd answers: what is only known once the lease is held (backend, agent) is set once then.
#[derive(Debug)]
pub struct Shared {
    pub(crate) started: Instant,
    pub(crate) node: String,
    pub(crate) mode: &'static str,
    pub(crate) phase: Mutex<Phase>,
    /// The wait for etcd (etcd mode; stays at its default in static mode).
    pub(crate) start: watch::Receiver<StartProgress>,
    pub(crate) backend: OnceLock<String>,
    pub(crate) public_ip: Ipv4Addr,
    /// Our subnet in static mode; in etcd mode the agent's status has it.
    pub(crate) static_subnet: OnceLock<Ipv4Net>,
    pub(crate) agent: OnceLock<watch::Receiver<AgentStatus>>,
    pub(crate) routes: SharedRoutes,
    pub(crate) neighbours: SharedNeighbours,
    pub(crate) dataplane: Mutex<Option<Dataplane>>,
    /// The records of the pods attached through the API.
    pub(crate) pod_store: super::pod_store::PodStore,
    /// What weft created in the node for `[host_link]`, removed at shutdown.
    pub(crate) host_link: Mutex<Option<crate::host_link::HostLink>>,
    /// BGP mode: our AS and the sessions.
    pub(crate) bgp: OnceLock<(u32, crate::bgp::BgpStatus)>,
    /// etcd mode: the network policy loop (endpoint records, status).
    pub(crate) policy: OnceLock<super::policy::PolicyHandle>,
}

fn kind(via: &Via) -> &'static str {
    match via {
        Via::Vxlan { .. } => "vxlan",
        Via::Ipip { .. } => "ipip",
        Via::HostGw { .. } => "host-gw",
        Via::WireGuard { .. } => "wireguard",
    }
}

impl Shared {
    /// Our pod subnet now (`None` before the lease).
    pub fn subnet(&self) -> Option<Ipv4Net> {
        self.static_subnet.get().copied().or_else(|| self.agent.get().map(|a| a.borrow().subnet))
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        *lock(&self.phase)
    }

    /// Moves to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        *lock(&self.phase) = phase;
    }

    /// What `/healthz` answers: `Ok` once the lease is held (or the static routes are in)
    /// and every worker runs; otherwise why not.
    pub fn health(&self) -> Result<(), String> {
        match self.phase() {
            Phase::Running => {}
            Phase::WaitingForEtcd => {
                let p = self.start.borrow();
                return Err(match &p.last_error {
                    Some(e) => format!("waiting for etcd ({} attempts): {e}", p.attempts),
                    None => "waiting for etcd".to_owned(),
                });
            }
            other => return Err(other.name().to_owned()),
        }
        if let Some(a) = self.agent.get() {
            if a.borrow().lease_id == 0 {
                return Err("no subnet lease".to_owned());
            }
        }
        let stopped = match lock(&self.dataplane).as_ref() {
            Some(dp) => dp.stopped_workers(),
            None => return Err("no data plane".to_owned()),
        };
        if !stopped.is_empty() {
            return Err(format!("worker stopped: {}", stopped.join(", ")));
        }
        Ok(())
    }

    /// Why a pod cannot be attached now (no data plane yet, or any more).
    pub fn not_running(&self) -> String {
        match self.phase() {
            Phase::Stopping => "the daemon is shutting down".to_owned(),
            phase => format!("the daemon is not running yet ({})", phase.name()),
        }
    }

    fn waiting(&self) -> Option<WaitingState> {
        if self.phase() != Phase::WaitingForEtcd {
            return None;
        }
        let p = self.start.borrow();
        Some(WaitingState {
            secs: p.waiting_since.map_or(0, |t| t.elapsed().as_secs()),
            attempts: p.attempts,
            last_error: p.last_error.clone(),
        })
    }

    /// The underlay addresses of every routed peer.
    pub fn peer_ips(&self) -> Vec<Ipv4Addr> {
        lock(&self.routes).table.values().map(Via::node_ip).collect()
    }

    /// A consistent-enough snapshot of everything (each part read once).
    pub fn report(&self) -> StatusReport {
        let subnet = self.subnet();
        let etcd = self.agent.get().map(|a| {
            let s = a.borrow();
            EtcdState {
                connected: s.connected,
                lease_id: s.lease_id,
                leases: s.leases,
                reacquired: s.reacquired,
                resyncs: s.resyncs,
                errors: s.errors,
                stale_subnet: s.moved_from().map(|n| n.to_string()),
            }
        });
        let (routes, fib) = {
            let r = lock(&self.routes);
            let lines: Vec<RouteLine> = r
                .table
                .iter()
                .map(|(subnet, via)| RouteLine {
                    subnet: subnet.to_string(),
                    kind: kind(via).to_owned(),
                    node_ip: via.node_ip().to_string(),
                    via: via.to_string(),
                })
                .collect();
            let fib = FibState {
                version: r.version,
                routes: r.table.len(),
                holder: "engine FIB (route programmer)".into(),
                ..FibState::default()
            };
            (lines, fib)
        };
        let mut leases: Vec<LeaseLine> = subnet
            .map(|s| LeaseLine { subnet: s.to_string(), public_ip: self.public_ip.to_string(), own: true })
            .into_iter()
            .collect();
        leases.extend(routes.iter().map(|r| LeaseLine {
            subnet: r.subnet.clone(),
            public_ip: r.node_ip.clone(),
            own: false,
        }));
        let mut fib = fib;
        let mut conntrack = (0, 0);
        let (ports, workers, drop_counts, pods, path_counts) = match lock(&self.dataplane).as_ref() {
            Some(dp) => {
                let (p, w, d) = dp.counters();
                let stats = dp.forwarding().fib_stats();
                fib.engine_version = stats.version.0;
                fib.prefixes = stats.prefixes;
                fib.tbl8_groups_in_use = stats.tbl8_groups_in_use;
                fib.tbl8_groups_capacity = stats.tbl8_groups_capacity;
                conntrack = dp.conntrack();
                (p, w, d, dp.pods(), dp.paths())
            }
            None => (Vec::new(), Vec::new(), [0; DropReason::COUNT], Vec::new(), PathCounts::default()),
        };
        let paths = PathCounter::ALL
            .iter()
            .map(|&c| DropLine {
                reason: c.name().to_owned(),
                description: c.description().to_owned(),
                count: path_counts.get(c),
            })
            .collect();
        let drops = DropReason::ALL
            .iter()
            .map(|r| DropLine {
                reason: r.name().to_owned(),
                description: r.description().to_owned(),
                count: drop_counts[r.index()],
            })
            .collect();
        let neighbours = lock(&self.neighbours)
            .iter()
            .map(|(ip, mac)| NeighbourLine { ip: ip.to_string(), mac: mac.to_string() })
            .collect();
        let bgp = self.bgp.get().map(|(asn, status)| BgpState {
            asn: *asn,
            sessions: status
                .snapshot()
                .into_iter()
                .map(|(peer, s)| BgpSessionLine {
                    peer: peer.to_string(),
                    state: s.state.to_owned(),
                    uptime_secs: s.established_at.map_or(0, |t| t.elapsed().as_secs()),
                    prefixes_in: s.prefixes_in,
                    prefixes_out: s.prefixes_out,
                    resets: s.resets,
                    malformed: s.malformed,
                    attribute_errors: s.attribute_errors,
                    last_error: s.last_error,
                })
                .collect(),
        });
        let policy = self.policy.get().map(|p| PolicyState {
            conntrack_entries: conntrack.0,
            conntrack_capacity: conntrack.1,
            ..p.status.borrow().clone()
        });
        StatusReport {
            node: self.node.clone(),
            mode: self.mode.to_owned(),
            phase: self.phase().name().to_owned(),
            waiting: self.waiting(),
            backend: self.backend.get().cloned().unwrap_or_default(),
            subnet: subnet.map(|s| s.to_string()).unwrap_or_default(),
            public_ip: self.public_ip.to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            etcd,
            leases,
            routes,
            fib,
            ports,
            pods,
            workers,
            drops,
            paths,
            neighbours,
            host_link: lock(&self.host_link).as_ref().map(|l| l.state()),
            bgp,
            policy,
        }
    }
}
