//! `weft-lab kflannel`: a node agent that behaves as flanneld's vxlan, host-gw and wireguard
//! backends do, on the wire and in etcd, with the Linux kernel (and wireguard-go for
//! WireGuard, `wireguard.rs`) as the data path. The lab runs it
//! inside a kernel node's namespace; it is the peer that proves weft's wire compatibility.
//!
//! ```text
//! <prefix>/config (wait for it) -> vxlan: flannel.1 (VNI, port, local PublicIP, nolearning)
//!   -> weft_control::etcd::Agent: lease {PublicIP, BackendType, VtepMAC} + subnet.env
//!   -> flannel.1 gets <subnet>.0/32, up -> Agent::run(KernelSink) until SIGTERM/SIGINT
//! ```
//! The lease is kept on exit (flanneld keeps it for its restart); routes and devices stay
//! until the namespace goes.

pub mod device;
pub mod sink;
pub mod wireguard;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use weft_control::etcd::{Agent, AgentSettings};
use weft_control::flannel::{BackendType, MacAddr, NetworkConfig};

pub use sink::KernelSink;

const USAGE: &str = "usage: weft-lab kflannel --etcd URL --public-ip A --uplink IF --subnet-file PATH
       [--etcd-prefix /coreos.com/network] [--lease-ttl-secs 86400] [--no-routes]";

/// The agent's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// etcd endpoints.
    pub endpoints: Vec<String>,
    /// flannel's key prefix.
    pub prefix: String,
    /// Our PublicIP (on the uplink).
    pub public_ip: Ipv4Addr,
    /// The uplink interface.
    pub uplink: String,
    /// subnet.env.
    pub subnet_file: PathBuf,
    /// Lease TTL.
    pub lease_ttl: Duration,
    /// Take the lease and write subnet.env but install no routes: another agent routes
    /// (BIRD on the lab's BGP node, as on a Calico node).
    pub no_routes: bool,
}

impl Options {
    /// Parses the command line (after `kflannel`).
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut endpoints = Vec::new();
        let (mut prefix, mut public_ip, mut uplink, mut subnet_file, mut ttl) =
            ("/coreos.com/network".to_owned(), None, None, None, 86_400u64);
        let mut no_routes = false;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value\n{USAGE}"));
            match flag.as_str() {
                "--etcd" => endpoints.push(value()?.clone()),
                "--etcd-prefix" => prefix = value()?.trim_end_matches('/').to_owned(),
                "--public-ip" => public_ip = Some(value()?.parse().context("--public-ip")?),
                "--uplink" => uplink = Some(value()?.clone()),
                "--subnet-file" => subnet_file = Some(PathBuf::from(value()?)),
                "--lease-ttl-secs" => ttl = value()?.parse().context("--lease-ttl-secs")?,
                "--no-routes" => no_routes = true,
                "-h" | "--help" => anyhow::bail!("{USAGE}"),
                other => anyhow::bail!("unknown option {other:?}\n{USAGE}"),
            }
        }
        anyhow::ensure!(!endpoints.is_empty(), "--etcd is required\n{USAGE}");
        Ok(Options {
            endpoints,
            prefix,
            public_ip: public_ip.with_context(|| format!("--public-ip is required\n{USAGE}"))?,
            uplink: uplink.with_context(|| format!("--uplink is required\n{USAGE}"))?,
            subnet_file: subnet_file.with_context(|| format!("--subnet-file is required\n{USAGE}"))?,
            lease_ttl: Duration::from_secs(ttl),
            no_routes,
        })
    }
}

/// Waits for `<prefix>/config` as flanneld does (it retries until an admin writes it).
async fn network_config(opts: &Options) -> anyhow::Result<NetworkConfig> {
    let key = format!("{}/config", opts.prefix);
    let mut logged = false;
    loop {
        let attempt = async {
            let mut client = etcd_client::Client::connect(opts.endpoints.clone(), None).await?;
            let resp = client.get(key.clone(), None).await?;
            anyhow::Ok(resp.kvs().first().map(|kv| kv.value().to_vec()))
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(Some(value))) => {
                return NetworkConfig::parse(&value).with_context(|| format!("network config at {key}"));
            }
            outcome => {
                if !logged {
                    tracing::warn!(%key, ?outcome, "no network config yet; retrying every second");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("signal received; stopping (the lease stays in etcd)");
}

async fn run_async(opts: Options) -> anyhow::Result<()> {
    let uplink_mtu = device::mtu(&opts.uplink)?;
    let uplink_subnet = device::subnet_of(&opts.uplink, opts.public_ip)?;
    let network = network_config(&opts).await?;
    let vxlan = network.backend.backend_type == BackendType::Vxlan;
    let wg = if network.backend.backend_type == BackendType::WireGuard {
        let dir = opts.subnet_file.parent().unwrap_or(std::path::Path::new("."));
        Some(wireguard::WgDevice::start(dir, &network.backend.wireguard, uplink_mtu)?)
    } else {
        None
    };
    let vtep_mac = if vxlan {
        let dev = device::VxlanDevice {
            vni: network.backend.vni,
            port: network.backend.port,
            local: opts.public_ip,
            uplink: &opts.uplink,
            uplink_mtu,
        };
        Some(device::ensure_vxlan(&dev)?)
    } else {
        anyhow::ensure!(
            matches!(network.backend.backend_type, BackendType::HostGw | BackendType::WireGuard),
            "backend {} is not one the kernel node runs (vxlan, host-gw, wireguard)",
            network.backend.backend_type.name()
        );
        None
    };
    let settings = AgentSettings {
        endpoints: opts.endpoints.clone(),
        prefix: opts.prefix.clone(),
        lease_ttl: opts.lease_ttl,
        public_ip: opts.public_ip,
        // host-gw leases carry no VtepMAC.
        vtep_mac: vtep_mac.unwrap_or(MacAddr::ZERO),
        wg_public_key: wg.as_ref().map(|d| d.public_key),
        wg_key_dir: None,
        uplink_subnet: Some(uplink_subnet),
        subnet_file: opts.subnet_file.clone(),
        ipmasq: false,
        mtu: uplink_mtu,
        init_network: None,
        backoff_max: Duration::from_secs(5),
        rpc_timeout: Duration::from_secs(5),
        client: Default::default(),
    };
    let agent = Agent::start(settings).await.context("acquiring the lease")?;
    tracing::info!(subnet = %agent.subnet(), vtep_mac = ?vtep_mac.map(|m| m.to_string()), "kflannel node up");
    if vxlan {
        device::configure(network.backend.vni, agent.subnet())?;
    }
    if let Some(dev) = &wg {
        dev.configure(agent.subnet(), network.network)?;
    }
    if opts.no_routes {
        agent.run(&mut NoRoutes, shutdown_signal()).await?;
    } else {
        let mut sink = KernelSink::new(&opts.uplink);
        if let Some(dev) = &wg {
            sink = sink.with_wireguard(dev.psk_file.clone(), dev.keepalive);
        }
        agent.run(&mut sink, shutdown_signal()).await?;
    }
    Ok(())
}

/// The sink of `--no-routes`: leases are watched (the lease is kept alive) and routed by
/// someone else.
struct NoRoutes;

impl weft_control::routes::RouteSink for NoRoutes {
    fn apply(&mut self, _batch: &[weft_control::routes::RouteDelta]) {}
}

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let opts = Options::parse(args)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .try_init();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_async(opts))
}
