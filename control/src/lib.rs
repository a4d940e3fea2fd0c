//! weft's control plane: configuration, the flannel-compatible etcd lease
//! manager, the lease -> route compiler, subnet.env and the runtime API.
//! It never touches a packet.
//!
//! Data flow in etcd mode:
//!
//! ```text
//! etcd <prefix>/config ──► flannel::NetworkConfig ─┐
//! etcd <prefix>/subnets/* ─► etcd::LeaseTable ─────┼─► routes::RouteCompiler ─► RouteSink::apply(&[RouteDelta])
//! our lease (etcd::acquire) ───────────────────────┘        (whole batches, one writer)
//! ```
//!
//! In static mode the same [`routes::RouteSpec`] values come from the TOML file.
//!
//! `weft run` ([`daemon`]) wires it to the engine: uplink queues and pod
//! ports on pinned workers, the local [`api`] (status, pod add/del), the
//! Prometheus [`metrics`] endpoint and kernel-assisted [`neighbour`]
//! resolution of underlay MACs.
#![forbid(unsafe_code)]

pub mod api;
pub mod bgp;
pub mod config;
pub mod daemon;
pub mod etcd;
pub mod flannel;
pub mod host_link;
pub mod metrics;
pub mod neighbour;
pub mod policy;
pub mod routes;
pub mod state_file;
pub mod static_mode;
pub mod subnet_env;
pub mod wg_key;
