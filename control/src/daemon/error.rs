//! Why the daemon could not start: one line each, naming what is missing.

use crate::api::ApiServerError;
use crate::etcd::ControlError;
use crate::metrics::MetricsServerError;
use crate::static_mode::StaticModeError;

/// A setup error of `weft run`. `Display` is the one line printed before exiting.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The BGP port could not be opened.
    #[error(transparent)]
    Bgp(#[from] crate::bgp::BindError),
    /// `[uplink]` is missing.
    #[error("uplink: `weft run` needs an [uplink] section with interface = \"<nic>\"")]
    NoUplink,
    /// A configured interface does not exist in this network namespace.
    #[error(
        "{key}: interface {ifname} does not exist in this network namespace (check the name, or run weft in the node's namespace)"
    )]
    NoSuchInterface {
        /// The config key naming it.
        key: String,
        /// The interface.
        ifname: String,
    },
    /// The process lacks capabilities the data plane needs.
    #[error(
        "missing capabilities: {missing}; run weft as root, or grant them (AmbientCapabilities= in its systemd unit, or setcap on the binary)"
    )]
    MissingCapabilities {
        /// Each missing one with what it is for, comma-separated.
        missing: String,
    },
    /// A file weft writes cannot be written.
    #[error(
        "{key}: cannot write {path}: {why} (make the directory writable by weft's user, or set {key} elsewhere)"
    )]
    Unwritable {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        why: String,
    },
    /// A value kept in `node.state_dir` (the VtepMAC, the WireGuard key) could not be read or
    /// made.
    #[error(transparent)]
    StateFile(#[from] crate::state_file::StateFileError),
    /// A pre-start check could not read what it checks.
    #[error("start checks: {what}")]
    Preflight {
        /// What could not be read.
        what: String,
    },
    /// A configured pod's address does not fit the subnet we hold (etcd mode
    /// learns the subnet only at start).
    #[error("{key}: {ip} is {why}")]
    BadPod {
        /// The config key.
        key: String,
        /// The pod's IP.
        ip: std::net::Ipv4Addr,
        /// What is wrong with it.
        why: String,
    },
    /// Static mode setup failed.
    #[error(transparent)]
    Static(#[from] StaticModeError),
    /// The etcd agent could not start.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The host link, its route or the masquerade rules could not be set up.
    #[error(transparent)]
    HostLink(#[from] crate::host_link::HostLinkError),
    /// A port or XDP program could not be set up.
    #[error(transparent)]
    Port(#[from] weft_engine::port::PortError),
    /// A worker could not start.
    #[error(transparent)]
    Worker(#[from] weft_engine::worker::WorkerError),
    /// A frame pool (UMEM) could not be allocated.
    #[error("frame pool of {frames} frames: {source} (lower workers.frames or raise RLIMIT_MEMLOCK)")]
    Pool {
        /// Frames asked for.
        frames: u32,
        /// The OS error.
        source: std::io::Error,
    },
    /// The uplink fell back to AF_PACKET but more than one queue was configured.
    #[error("uplink.queues: {queues} queues need AF_XDP, but the uplink fell back to AF_PACKET: {reason}")]
    MultiQueueFallback {
        /// Queues configured.
        queues: u32,
        /// Why AF_XDP was not used.
        reason: String,
    },
    /// The API socket could not be set up.
    #[error(transparent)]
    Api(#[from] ApiServerError),
    /// The metrics listener could not be bound.
    #[error(transparent)]
    Metrics(#[from] MetricsServerError),
    /// The route programmer refused its fixed routes or a pod.
    #[error(transparent)]
    Program(#[from] weft_engine::pipeline::ProgramError),
    /// An interface lacks what the pipeline needs (its MAC, an address).
    #[error("{interface}: {what}")]
    Underlay {
        /// The interface (or config key).
        interface: String,
        /// What is missing.
        what: String,
    },
    /// The tokio runtime or a signal handler could not be set up.
    #[error("control runtime: {0}")]
    Runtime(std::io::Error),
}
