//! Static mode: the routes of `[static]`, no etcd (lab, benchmarks,
//! air-gapped nodes). Same [`RouteSpec`](crate::routes::RouteSpec)s, same
//! sink, same subnet.env as etcd mode.

use crate::config::{Config, Mode};
use crate::routes::{RouteCompiler, RoutePolicy, RouteSink};
use crate::subnet_env::{SubnetEnv, SubnetEnvError};

/// Static mode was asked for with a config that is not a static one.
#[derive(Debug, thiserror::Error)]
pub enum StaticModeError {
    /// `mode` is not `static` (validation guarantees the sections otherwise).
    #[error("mode: static mode needs mode = \"static\" with [network] and [static] sections")]
    NotStatic,
    /// subnet.env could not be written.
    #[error(transparent)]
    SubnetEnv(#[from] SubnetEnvError),
}

/// Writes subnet.env and installs every static route into `sink` as one
/// batch. Returns the compiler, which knows what is installed, so a config
/// reload can call [`RouteCompiler::reconcile_specs`] and flush the diff.
pub fn start_static(config: &Config, sink: &mut dyn RouteSink) -> Result<RouteCompiler, StaticModeError> {
    let (Mode::Static, Some(network), Some(routes)) = (config.mode, &config.network, &config.static_routes)
    else {
        return Err(StaticModeError::NotStatic);
    };
    SubnetEnv::for_network(network, routes.subnet, config.node.mtu, config.node.ipmasq)
        .write(&config.node.subnet_file)?;
    let mut compiler = RouteCompiler::new(RoutePolicy {
        backend: network.backend.clone(),
        own_public_ip: config.node.public_ip,
        uplink_subnet: config.node.uplink_subnet,
    });
    compiler.set_own_subnet(Some(routes.subnet));
    compiler.reconcile_specs(&routes.routes);
    compiler.flush(sink);
    Ok(compiler)
}
