//! Control-plane errors: each names what it was doing and what to do about it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::flannel::NetworkConfigError;
use crate::subnet_env::SubnetEnvError;

/// Why the control plane could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// An etcd call failed (connection refused, timeout, gRPC status).
    #[error("etcd {context}: {message} (endpoints {endpoints}; is etcd running and reachable?)")]
    Etcd {
        /// What we were doing, with the key.
        context: String,
        /// The client's error text.
        message: String,
        /// The endpoints configured.
        endpoints: String,
    },
    /// etcd's server certificate failed verification against `[etcd] ca_file`.
    #[error("etcd: server certificate of {endpoints} not trusted by [etcd] ca_file {ca_file}: {reason}")]
    EtcdServerCertificate {
        /// The CA file.
        ca_file: String,
        /// Why rustls rejected it (UnknownIssuer, Expired, NotValidForName, ...).
        reason: String,
        /// The endpoints configured.
        endpoints: String,
    },
    /// etcd refused our TLS handshake over our client certificate (expired, signed by a
    /// CA it does not trust, or none sent while it runs with `--client-cert-auth`).
    #[error(
        "etcd at {endpoints} rejected the client certificate [etcd] cert_file {cert_file}: TLS alert {alert} (expired, not signed by a CA in etcd's --trusted-ca-file, or missing)"
    )]
    EtcdClientCertificate {
        /// The certificate file, or what to set when there is none.
        cert_file: String,
        /// The TLS alert etcd sent.
        alert: String,
        /// The endpoints configured.
        endpoints: String,
    },
    /// etcd refused our user name and password.
    #[error(
        "etcd: authentication failed for [etcd] username '{username}': {message} (endpoints {endpoints})"
    )]
    EtcdAuth {
        /// `[etcd] username`.
        username: String,
        /// etcd's answer.
        message: String,
        /// The endpoints configured.
        endpoints: String,
    },
    /// etcd runs with authentication and we gave no user.
    #[error("etcd at {endpoints} requires authentication ({message}): set [etcd] username and password")]
    EtcdAuthRequired {
        /// etcd's answer.
        message: String,
        /// The endpoints configured.
        endpoints: String,
    },
    /// Our etcd user may not touch the prefix.
    #[error(
        "etcd: [etcd] username '{username}' is not allowed to use the prefix ({message}): grant its role readwrite on the prefix (etcdctl role grant-permission --prefix=true ROLE readwrite PREFIX) (endpoints {endpoints})"
    )]
    EtcdPermission {
        /// `[etcd] username`.
        username: String,
        /// etcd's answer.
        message: String,
        /// The endpoints configured.
        endpoints: String,
    },
    /// `<prefix>/config` is absent and `--init-network` was not given.
    #[error(
        "no flannel network config at etcd key {key}: write one (etcdctl put {key} '{{\"Network\":\"10.244.0.0/16\",\"Backend\":{{\"Type\":\"vxlan\"}}}}') or run with --init-network and a [network] section"
    )]
    NoNetworkConfig {
        /// The config key.
        key: String,
    },
    /// `<prefix>/config` exists but is invalid.
    #[error("etcd key {key}: {source}")]
    BadNetworkConfig {
        /// The config key.
        key: String,
        /// What is wrong, naming the JSON key.
        source: NetworkConfigError,
    },
    /// Every subnet in SubnetMin..SubnetMax is leased by another node.
    #[error(
        "out of subnets: all {count} subnets of {network} between {min} and {max} are leased by other nodes (remove stale leases under {prefix}/subnets/ or widen Network/SubnetMin/SubnetMax)"
    )]
    OutOfSubnets {
        /// Network.
        network: Ipv4Net,
        /// SubnetMin.
        min: Ipv4Addr,
        /// SubnetMax.
        max: Ipv4Addr,
        /// How many subnets there are.
        count: u32,
        /// The etcd prefix.
        prefix: String,
    },
    /// Lost too many races in a row (a pathological churn of other nodes).
    #[error("could not acquire a subnet lease under {prefix}/subnets/ after {rounds} rounds of lost races")]
    TooManyRaces {
        /// The etcd prefix.
        prefix: String,
        /// Rounds tried.
        rounds: u32,
    },
    /// subnet.env could not be written.
    #[error(transparent)]
    SubnetEnv(#[from] SubnetEnvError),
    /// The WireGuard key of a wireguard network could not be read or made.
    #[error(transparent)]
    WgKey(#[from] crate::wg_key::WgKeyError),
}
