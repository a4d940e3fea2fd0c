//! `weft run`: the daemon's runtime.
//!
//! ```text
//! main thread ── preflight (capabilities, interfaces, writable files) ── tokio runtime (1 control thread, off the worker cores)
//!   signals (SIGINT/SIGTERM) ─► shutdown flag
//!   API socket, metrics listener (/metrics, /healthz): open first, answer while waiting
//!   control: static routes | etcd: the VtepMAC (node.vtep_mac, or kept in node.state_dir),
//!            then Agent::start_when_ready (waits for etcd; lease, subnet.env)
//!   forwarding: route programmer (FIB, uplink MAC/prefix, underlay gateway)
//!   host link ([host_link], crate::host_link): veth weft0 <-> weft0e, cluster route,
//!               ip_forward, masquerade rules; the node's .0/32 routed to it in the FIB
//!   data plane: uplink queues + XDP filter (PublicIP, VXLAN port, pod subnet) ─► pinned workers,
//!               one pipeline each; pods from the config, then the pods recorded under
//!               node.state_dir (attached through the API before a restart) ─► the least
//!               loaded worker each
//!   neighbour loop (engine requests ─► kernel ARP ─► programmer)
//!   network policy loop (etcd mode: policies, endpoints, namespaces ─► the workers' policy set)
//!   agent.run(route sink) until shutdown; with [bgp] the BGP speaker feeds the route sink and
//!   the agent's leases only name the mesh's peers (crate::bgp)
//! a failure after the lease: the agent is abandoned, which undoes what this start changed in
//!   etcd (our lease revoked, a lease of ours taken over put back, an --init-network config
//!   deleted): etcd as it was before the start
//! shutdown: API/metrics stop, workers stopped and joined (sockets closed),
//!           XDP programs detached, the host link (and its route and rules) removed, API socket
//!           removed; the etcd lease is kept.
//! ```
//! The forwarding decision itself is the engine's pipeline, built in [`dataplane`].

pub mod dataplane;
mod error;
mod handler;
mod pod_store;
mod pods;
mod policy;
mod preflight;
mod state;
mod status;
mod underlay;
pub mod vtep_mac;
mod workers;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use weft_engine::pipeline::MacLearnQueue;
use weft_engine::port::xdp_filter::FilterParams;

pub use dataplane::{Forwarding, NeighbourTableSink, RouteState, RouteTableSink};
pub use error::DaemonError;
pub use pods::PodError;
pub use state::{Phase, Shared};
pub use workers::Dataplane;

use crate::config::{Config, ExceptionSection, Mode};
use crate::etcd::{Agent, AgentSettings, StartProgress};
use crate::flannel::{BackendType, MacAddr};
use crate::host_link::HostLinkPlan;
use crate::neighbour::NeighbourResolver;
use crate::routes::RouteSink;

/// Options of `weft run` beyond the config file.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Write `[network]` to etcd when `<prefix>/config` is absent.
    pub init_network: bool,
}

/// How often the neighbour resolver reads the kernel's tables.
const NEIGHBOUR_REFRESH: Duration = Duration::from_secs(1);
/// How often the queue of pod MACs learned by the workers is looked at.
const LEARN_POLL: Duration = Duration::from_millis(10);
/// How often a resolved neighbour is probed so the kernel keeps it fresh.
const NEIGHBOUR_REPROBE: Duration = Duration::from_secs(30);

/// The core control threads run on: the first online core no worker is
/// pinned to (`None`: no worker is pinned, or every core is taken).
fn control_core(config: &Config) -> Option<usize> {
    let taken = config.workers.worker_cores();
    if taken.is_empty() {
        return None;
    }
    let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    (0..online).find(|c| !taken.contains(c))
}

/// Runs the daemon until SIGINT or SIGTERM. Setup errors return at once,
/// with everything set up so far torn down.
pub fn run(config: Config, opts: RunOptions) -> Result<(), DaemonError> {
    preflight::check(&config)?;
    let core = control_core(&config);
    if let Some(c) = core {
        weft_engine::worker::pin_current_thread(c).map_err(DaemonError::Runtime)?;
        tracing::info!(core = c, "control threads pinned off the worker cores");
    } else if !config.workers.worker_cores().is_empty() {
        tracing::warn!("every core has a worker: control threads share them");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("weft-control")
        .enable_all()
        .on_thread_start(move || {
            if let Some(c) = core {
                let _ = weft_engine::worker::pin_current_thread(c);
            }
        })
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(run_async(config, opts))
}

/// The VtepMAC kept in `state_dir` (made there on the node's first start).
fn kept_vtep_mac(state_dir: &std::path::Path) -> Result<MacAddr, DaemonError> {
    let mac = vtep_mac::load_or_create(state_dir)?;
    tracing::info!(%mac, file = %state_dir.join(vtep_mac::FILE).display(), "VTEP MAC kept in node.state_dir");
    Ok(mac)
}

/// The WireGuard key pair kept in `state_dir` (made there on the node's first start).
fn kept_wg_key(state_dir: &std::path::Path) -> Result<crate::wg_key::WgKeyPair, DaemonError> {
    let pair = crate::wg_key::load_or_create(state_dir)?;
    let file = state_dir.join(crate::wg_key::FILE);
    tracing::info!(public_key = %pair.public, file = %file.display(), "WireGuard key kept in node.state_dir");
    Ok(pair)
}

/// A future that resolves once the shutdown flag is raised.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn run_async(config: Config, opts: RunOptions) -> Result<(), DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = sigint.recv() => "SIGINT",
            _ = sigterm.recv() => "SIGTERM",
        };
        tracing::info!("{name}: stopping");
        let _ = stop_tx.send(true);
    });

    // The API socket and the metrics listener open first: `weft status` and `/healthz`
    // answer while weft waits for etcd.
    let api = crate::api::bind(&config.api.socket)?;
    let metrics = if config.metrics.enabled {
        match crate::metrics::bind(config.metrics.listen).await {
            Ok(l) => Some(l),
            Err(e) => {
                let _ = std::fs::remove_file(&config.api.socket);
                return Err(e.into());
            }
        }
    } else {
        None
    };
    let (progress_tx, progress_rx) = watch::channel(StartProgress::default());
    let shared = Arc::new(Shared {
        started: Instant::now(),
        node: config.node.name.clone(),
        mode: match config.mode {
            Mode::Static => "static",
            Mode::Etcd => "etcd",
        },
        phase: Mutex::new(match config.mode {
            Mode::Static => Phase::Attaching,
            Mode::Etcd => Phase::WaitingForEtcd,
        }),
        start: progress_rx,
        backend: Default::default(),
        public_ip: config.node.public_ip,
        static_subnet: Default::default(),
        agent: Default::default(),
        routes: Arc::new(Mutex::new(RouteState::default())),
        neighbours: Default::default(),
        dataplane: Mutex::new(None),
        pod_store: pod_store::PodStore::new(&config.node.state_dir),
        host_link: Mutex::new(None),
        bgp: Default::default(),
        policy: Default::default(),
    });
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(crate::api::serve(api, Arc::new(handler::Handler { shared: shared.clone() }))));
    tracing::info!(socket = %config.api.socket.display(), "api listening");
    if let Some(listener) = metrics {
        let s = shared.clone();
        let render = move || {
            let s = s.clone();
            async move {
                tokio::task::spawn_blocking(move || crate::metrics::render(&s.report()))
                    .await
                    .unwrap_or_default()
            }
        };
        let s = shared.clone();
        tasks.push(tokio::spawn(crate::metrics::serve(listener, render, move || s.health())));
        tracing::info!(listen = %config.metrics.listen, "metrics listening");
    }

    let result = start_and_serve(&config, opts, &shared, &progress_tx, stop_rx, &mut tasks).await;

    shared.set_phase(Phase::Stopping);
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let dp = dataplane::lock(&shared.dataplane).take();
    if let Some(dp) = dp {
        tokio::task::spawn_blocking(move || dp.shutdown()).await.ok();
    }
    // After the workers: the engine end of the host link is one of their ports.
    let host_link = dataplane::lock(&shared.host_link).take();
    if let Some(link) = host_link {
        link.remove().await;
    }
    let _ = std::fs::remove_file(&config.api.socket);
    tracing::info!("stopped");
    result
}

/// Waits for the lease (etcd mode) or reads the static routes, attaches the data plane and
/// runs until shutdown. A failure after the lease was taken revokes it: a start that fails
/// leaves etcd as it found it.
async fn start_and_serve(
    config: &Config,
    opts: RunOptions,
    shared: &Arc<Shared>,
    progress: &watch::Sender<StartProgress>,
    stop: watch::Receiver<bool>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), DaemonError> {
    let (subnet, network, agent, wg) = match config.mode {
        Mode::Static => {
            let subnet = config.static_routes.as_ref().map(|s| s.subnet).ok_or(DaemonError::NoUplink)?;
            let network = config.network.clone().ok_or(DaemonError::NoUplink)?;
            let _ = shared.static_subnet.set(subnet);
            (subnet, network, None, None)
        }
        Mode::Etcd => {
            // The lease carries our VtepMAC: it is settled before etcd is touched.
            let vtep_mac = match config.node.vtep_mac {
                Some(mac) => mac,
                None => kept_vtep_mac(&config.node.state_dir)?,
            };
            // Nothing is attached before the lease: the data plane needs our subnet. A
            // wireguard network's key is settled by the agent (made in node.state_dir).
            let settings = AgentSettings::from_config(config, vtep_mac, opts.init_network);
            let started = Agent::start_when_ready_reporting(settings, progress, stopped(stop.clone()));
            let Some(agent) = started.await? else {
                tracing::info!("stopped before etcd was ready; nothing was attached");
                return Ok(());
            };
            let _ = shared.agent.set(agent.status());
            let wg = match agent.network().backend.backend_type {
                crate::flannel::BackendType::WireGuard => Some(kept_wg_key(&config.node.state_dir)?),
                _ => None,
            };
            (agent.subnet(), agent.network().clone(), Some(agent), wg)
        }
    };
    let _ = shared.backend.set(network.backend.backend_type.to_string());
    shared.set_phase(Phase::Attaching);
    // In static mode without node.vtep_mac, the data plane takes the uplink's MAC.
    let vtep_mac = agent.as_ref().map(|a| a.settings().vtep_mac).or(config.node.vtep_mac);
    let attached = attach(config, shared, subnet, &network, vtep_mac, wg.as_ref()).await;
    let attached = match (attached, &config.bgp) {
        (Ok((sink, learned, programmer)), Some(section)) => {
            bgp_speaker(config, section, subnet, shared).map(|s| (sink, learned, programmer, Some(s)))
        }
        (Ok((sink, learned, programmer)), None) => Ok((sink, learned, programmer, None)),
        (Err(e), _) => Err(e),
    };
    let (sink, learned, programmer, speaker) = match attached {
        Ok(parts) => parts,
        Err(e) => {
            if let Some(agent) = agent {
                agent.abandon().await;
            }
            return Err(e);
        }
    };
    let policy_target = dataplane::lock(&programmer).policy().clone();
    if let Some(uplink) = &config.uplink {
        tasks.push(tokio::spawn(neighbours(uplink.interface.clone(), shared.clone(), programmer)));
    }
    tasks.push(tokio::spawn(learn_pod_macs(shared.clone(), learned)));
    let policy_started = match &agent {
        Some(a) => {
            let settings = AgentSettings { init_network: None, ..a.settings().clone() };
            Some(
                policy::start(
                    settings,
                    &config.etcd.weft_prefix,
                    a.subnet(),
                    policy_target,
                    a.status(),
                    stop.clone(),
                )
                .await,
            )
        }
        None => None,
    };
    match policy_started {
        Some(Ok((handle, task))) => {
            let _ = shared.policy.set(handle);
            tasks.push(task);
        }
        Some(Err(e)) => {
            if let Some(agent) = agent {
                agent.abandon().await;
            }
            return Err(e.into());
        }
        None => {}
    }
    shared.set_phase(Phase::Running);
    tracing::info!(node = %config.node.name, "weft running");
    // In BGP mode the FIB routes come from the speaker; the lease agent, when there is one,
    // only names the mesh's peers (unless bgp.peers lists them).
    let mut speaker_task = None;
    let mut sink: Box<dyn RouteSink> = match speaker {
        Some(speaker) => {
            let mesh = config.bgp.as_ref().is_some_and(|b| b.peers.is_empty());
            let initial: BTreeSet<_> = config.bgp.iter().flat_map(|b| b.peers.iter().copied()).collect();
            let (peers_tx, peers_rx) = watch::channel(initial);
            speaker_task = Some(tokio::spawn(speaker.run(peers_rx, sink, stopped(stop.clone()))));
            let peers_tx = if mesh { peers_tx } else { watch::channel(BTreeSet::new()).0 };
            Box::new(crate::bgp::PeerSetSink::new(peers_tx))
        }
        None => Box::new(sink),
    };
    let result = match agent {
        Some(agent) => agent.run(sink.as_mut(), stopped(stop)).await.map_err(DaemonError::from),
        None => {
            stopped(stop).await;
            Ok(())
        }
    };
    // The speaker ends its sessions with a Cease before the runtime's tasks are aborted.
    if let Some(task) = speaker_task {
        let _ = task.await;
    }
    result
}

/// Binds the BGP speaker for `subnet` (routes it learns go to its own sink over the same
/// programmer) and makes its status visible.
fn bgp_speaker(
    config: &Config,
    section: &crate::config::BgpSection,
    subnet: ipnet::Ipv4Net,
    shared: &Arc<Shared>,
) -> Result<crate::bgp::Speaker, DaemonError> {
    let uplink = config.uplink.as_ref().ok_or(DaemonError::NoUplink)?;
    let link = underlay::link_info(&uplink.interface)?;
    let local = crate::bgp::Local {
        address: config.node.public_ip,
        subnet,
        uplink_subnet: underlay::uplink_subnet(config.node.uplink_subnet, &link, config.node.public_ip),
    };
    let status = crate::bgp::BgpStatus::default();
    let _ = shared.bgp.set((section.asn, status.clone()));
    let settings = crate::bgp::SpeakerSettings { section: section.clone(), local };
    Ok(crate::bgp::Speaker::bind(settings, status)?)
}

/// Builds the forwarding state for `subnet` (our VtepMAC `vtep_mac`, `None`: the uplink's),
/// installs static routes (static mode), checks the configured pods against the subnet,
/// starts the data plane (into `shared`) and re-attaches the pods recorded under
/// `node.state_dir`.
async fn attach(
    config: &Config,
    shared: &Shared,
    subnet: ipnet::Ipv4Net,
    network: &crate::flannel::NetworkConfig,
    vtep_mac: Option<MacAddr>,
    wg: Option<&crate::wg_key::WgKeyPair>,
) -> Result<(RouteTableSink, Arc<MacLearnQueue>, dataplane::SharedProgrammer), DaemonError> {
    let uplink = config.uplink.clone().ok_or(DaemonError::NoUplink)?;
    let fwd = Forwarding::new(config, network, subnet, vtep_mac, wg)?;
    let programmer = fwd.programmer().clone();
    let mut sink = RouteTableSink::new(shared.routes.clone(), programmer.clone());
    if config.mode == Mode::Static {
        crate::static_mode::start_static(config, &mut sink)?;
        tracing::info!(%subnet, "static mode: routes from the config");
    }
    for (i, p) in config.pods.iter().enumerate() {
        let why = if subnet.contains(&p.ip) {
            crate::config::reserved_in_subnet(subnet, p.ip).map(str::to_owned)
        } else {
            Some(format!("not in our pod subnet {subnet}"))
        };
        if let Some(why) = why {
            return Err(DaemonError::BadPod { key: format!("pods[{i}].ip"), ip: p.ip, why });
        }
    }
    let params = FilterParams {
        public_ip: config.node.public_ip,
        vxlan_port: match network.backend.backend_type {
            BackendType::Vxlan => Some(network.backend.port),
            BackendType::WireGuard => Some(network.backend.wireguard.listen_port),
            _ => None,
        },
        pod_subnet: Some((subnet.network(), subnet.prefix_len())),
    };
    tracing::info!(
        public_ip = %params.public_ip,
        vxlan_port = ?params.vxlan_port,
        pod_subnet = %subnet,
        "uplink filter parameters"
    );
    let (workers_cfg, pods) = (config.workers.clone(), config.pods.clone());
    // With [host_link] weft makes the exception port's veth (and the route and rules) itself;
    // the shutdown removes it, also when this start fails.
    let (exception, host_ip) = match &config.host_link {
        Some(section) => {
            let plan = HostLinkPlan::new(section, config, network, subnet);
            let link = plan.create().await?;
            *dataplane::lock(&shared.host_link) = Some(link);
            (ExceptionSection { interface: Some(plan.engine_interface) }, Some(plan.address))
        }
        None => (config.exception.clone(), None),
    };
    let learned = fwd.learned();
    let store = shared.pod_store.clone();
    let dataplane = tokio::task::spawn_blocking(move || {
        let mut dp = Dataplane::start(&uplink, &workers_cfg, &exception, host_ip, params, fwd, &pods)?;
        let restored = store.restore(&mut dp, subnet);
        if restored != pod_store::Restored::default() {
            tracing::info!(attached = restored.attached, dropped = restored.dropped, "pod records restored");
        }
        Ok::<_, DaemonError>(dp)
    })
    .await
    .map_err(|e| DaemonError::Runtime(std::io::Error::other(e)))??;
    *dataplane::lock(&shared.dataplane) = Some(dataplane);
    if host_ip.is_some() {
        dataplane::lock(&programmer).set_host_address(host_ip)?;
    }
    Ok((sink, learned, programmer))
}

/// How often the neighbour loop looks for the workers' resolve requests.
const NEIGHBOUR_POLL: Duration = Duration::from_millis(20);
/// How long after probing a next hop the loop keeps re-reading the kernel's tables every
/// [`NEIGHBOUR_POLL`] (an ARP on the uplink's segment takes milliseconds).
const NEIGHBOUR_FOLLOW_UP: Duration = Duration::from_millis(200);

/// Keeps the underlay MACs of every routed peer's next hop fresh in the
/// engine: every [`NEIGHBOUR_REFRESH`] it advances the neighbour epoch and
/// asks the kernel (via [`NeighbourResolver`]) for every routed peer, the
/// underlay gateway and whatever the programmer still lacks, and stores
/// changes through the programmer. In between it looks for the workers'
/// resolve requests every [`NEIGHBOUR_POLL`] and serves them at once, and
/// after probing it re-reads the kernel's tables at that pace for
/// [`NEIGHBOUR_FOLLOW_UP`]: a packet that found its next hop unresolved then
/// waits for an ARP exchange, not for the next refresh (1–2 s before).
async fn neighbours(iface: String, shared: Arc<Shared>, programmer: dataplane::SharedProgrammer) {
    let mut resolver = match NeighbourResolver::new(&iface, NEIGHBOUR_REFRESH, NEIGHBOUR_REPROBE) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(interface = %iface, "neighbour resolution disabled: probe socket: {e}");
            return;
        }
    };
    let mut sink = NeighbourTableSink::new(shared.neighbours.clone(), programmer.clone());
    let mut tick = tokio::time::interval(NEIGHBOUR_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_refresh = Instant::now();
    let mut follow_up_until = Instant::now();
    let mut failing = false;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let refresh_due = now >= next_refresh;
        let mut wanted = Vec::new();
        {
            let prog = dataplane::lock(&programmer);
            let table = prog.neighbours();
            while let Some(ip) = table.next_request() {
                wanted.push(ip);
            }
            if wanted.is_empty() && !refresh_due && now >= follow_up_until {
                continue;
            }
            if refresh_due {
                table.advance_epoch();
            }
            wanted.extend(prog.unresolved());
            wanted.extend(prog.node().underlay_gateway);
        }
        if refresh_due {
            next_refresh = now + NEIGHBOUR_REFRESH;
        }
        wanted.extend(shared.peer_ips());
        resolver.set_destinations(wanted);
        match resolver.refresh(&mut sink) {
            Ok(report) => {
                if report.probed > 0 {
                    follow_up_until = now + NEIGHBOUR_FOLLOW_UP;
                }
                if failing {
                    failing = false;
                    tracing::info!("neighbour tables readable again");
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("neighbour refresh: {e}");
            }
            Err(_) => {}
        }
    }
}

/// Programs the pod MACs the workers learn (pods attached without a MAC):
/// looks at the queue every [`LEARN_POLL`] without a lock, and when events
/// wait, applies them on a blocking thread (a `pod add` may hold the data
/// plane for a moment).
async fn learn_pod_macs(shared: Arc<Shared>, learned: Arc<MacLearnQueue>) {
    let mut tick = tokio::time::interval(LEARN_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if learned.is_empty() {
            continue;
        }
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(dp) = dataplane::lock(&s.dataplane).as_mut() {
                dp.apply_learned();
            }
        })
        .await;
    }
}
