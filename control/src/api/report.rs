//! The status report: what `weft status` prints and what metrics expose.
//! Built by the daemon from its live state; serialised as-is for `--json`.

use serde::{Deserialize, Serialize};

/// Everything an operator asks a running daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// `node.name`.
    pub node: String,
    /// `etcd` or `static`.
    pub mode: String,
    /// `waiting for etcd`, `attaching the data plane`, `running` or `stopping`.
    #[serde(default)]
    pub phase: String,
    /// Set while the daemon waits for etcd before taking its lease.
    #[serde(default)]
    pub waiting: Option<WaitingState>,
    /// The network's backend (`vxlan`, `host-gw`, `ipip`).
    pub backend: String,
    /// Our pod subnet.
    pub subnet: String,
    /// Our PublicIP.
    pub public_ip: String,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The etcd agent's state (etcd mode only).
    pub etcd: Option<EtcdState>,
    /// Our lease and the peers' (as routed).
    pub leases: Vec<LeaseLine>,
    /// The routes compiled for the data plane.
    pub routes: Vec<RouteLine>,
    /// The route table's version and size.
    pub fib: FibState,
    /// Every port, with its counters.
    pub ports: Vec<PortLine>,
    /// Attached pods.
    pub pods: Vec<PodLine>,
    /// Every worker, with its loop counters.
    pub workers: Vec<WorkerLine>,
    /// Drops summed over workers, one line per reason (every reason listed).
    pub drops: Vec<DropLine>,
    /// Pipeline path counters summed over workers, one line per path (every path listed).
    #[serde(default)]
    pub paths: Vec<DropLine>,
    /// Underlay next hops and their MACs, as the kernel resolved them.
    pub neighbours: Vec<NeighbourLine>,
    /// BGP mode: our AS and every peer's session.
    #[serde(default)]
    pub bgp: Option<BgpState>,
    /// etcd mode: the network policy loop.
    #[serde(default)]
    pub policy: Option<PolicyState>,
    /// What weft created in the node for `[host_link]` (absent without it).
    #[serde(default)]
    pub host_link: Option<HostLinkState>,
}

impl StatusReport {
    /// Frames dropped for `reason` (0 for a reason the report does not list).
    pub fn drop_count(&self, reason: &str) -> u64 {
        self.drops.iter().find(|d| d.reason == reason).map_or(0, |d| d.count)
    }

    /// Frames that took pipeline path `path` (0 for a path the report does not list).
    pub fn path_count(&self, path: &str) -> u64 {
        self.paths.iter().find(|p| p.reason == path).map_or(0, |p| p.count)
    }
}

/// The network policy loop's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyState {
    /// Whether its watch is up.
    pub connected: bool,
    /// Policies stored.
    pub policies: usize,
    /// Endpoint records (every node's pods).
    pub endpoints: usize,
    /// This node's pods some policy isolates.
    pub isolated_pods: usize,
    /// Policy sets published to the workers.
    pub published: u64,
    /// Records that could not be read.
    pub bad_records: u64,
    /// Microseconds the last compile and publish took.
    pub last_compile_us: u64,
    /// Flows in the workers' connection tables (summed; dead ones not yet swept included).
    #[serde(default)]
    pub conntrack_entries: u64,
    /// Flows the workers' connection tables hold at most (summed).
    #[serde(default)]
    pub conntrack_capacity: u64,
}

/// The host link weft made: the veth pair, the node's address on it, the kernel routes and
/// the masquerade rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLinkState {
    /// The kernel end (`weft0`).
    pub interface: String,
    /// The engine end (`weft0e`), the exception port.
    pub engine_interface: String,
    /// The node's address on the kernel end (`<subnet .0>/32`).
    pub address: String,
    /// The kernel end's MTU.
    pub mtu: u32,
    /// The kernel routes via the link, as `ip route` shows them.
    pub routes: Vec<String>,
    /// Whether weft turned `net.ipv4.ip_forward` on (and turns it off on exit).
    pub forwarding_turned_on: bool,
    /// Whether flannel's masquerade rules are installed (`node.ipmasq`).
    pub masquerade: bool,
    /// The nftables table and its rules (empty without masquerade).
    pub rules: Vec<String>,
}

/// BGP mode's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpState {
    /// Our AS.
    pub asn: u32,
    /// One line per peer.
    pub sessions: Vec<BgpSessionLine>,
}

/// One BGP peer's session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpSessionLine {
    /// The peer's address.
    pub peer: String,
    /// `Idle`, `Connect`, `Active`, `OpenSent`, `OpenConfirm` or `Established`.
    pub state: String,
    /// Seconds since Established (0 while not).
    pub uptime_secs: u64,
    /// Prefixes learned from the peer.
    pub prefixes_in: usize,
    /// Prefixes announced to it.
    pub prefixes_out: usize,
    /// Sessions that went down after coming up.
    pub resets: u64,
    /// Sessions ended by a malformed message from the peer.
    pub malformed: u64,
    /// UPDATE attribute errors survived (RFC 7606 treat-as-withdraw or attribute-discard).
    pub attribute_errors: u64,
    /// Why the last session ended.
    pub last_error: Option<String>,
}

/// The wait for etcd at start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingState {
    /// Seconds since the first attempt failed.
    pub secs: u64,
    /// Attempts so far.
    pub attempts: u64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// The etcd agent's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdState {
    /// Is the watch up?
    pub connected: bool,
    /// Our etcd lease id.
    pub lease_id: i64,
    /// Leases in etcd, ours included.
    pub leases: usize,
    /// Times our lease was re-acquired.
    pub reacquired: u64,
    /// Full re-lists after start.
    pub resyncs: u64,
    /// etcd errors after start (each a warning, a backoff and a re-list).
    #[serde(default)]
    pub errors: u64,
    /// Set when our lease moved to another subnet after it was lost: the subnet the pods
    /// and the data plane are still in (`subnet` is the new lease). Fixed by re-creating
    /// the pods and restarting weft.
    #[serde(default)]
    pub stale_subnet: Option<String>,
}

/// One subnet lease.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseLine {
    /// The subnet.
    pub subnet: String,
    /// The node's PublicIP.
    pub public_ip: String,
    /// Is it ours?
    pub own: bool,
}

/// One route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteLine {
    /// The remote pod subnet.
    pub subnet: String,
    /// `vxlan`, `ipip` or `host-gw`.
    pub kind: String,
    /// The remote node's underlay address.
    pub node_ip: String,
    /// The whole next hop, human-readable.
    pub via: String,
}

/// The route table the data plane is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibState {
    /// Batches applied so far (each one table version).
    pub version: u64,
    /// Routes in the table.
    pub routes: usize,
    /// Who holds the table.
    pub holder: String,
    /// The engine FIB's published version (route programmer batches, pods, neighbours).
    #[serde(default)]
    pub engine_version: u64,
    /// Prefixes in the engine FIB: remote subnets, pods' /32s, the default
    /// (exception) route and the cluster network's blackhole.
    #[serde(default)]
    pub prefixes: usize,
    /// tbl8 groups in use, of `tbl8_groups_capacity`.
    #[serde(default)]
    pub tbl8_groups_in_use: u32,
    /// tbl8 groups that exist.
    #[serde(default)]
    pub tbl8_groups_capacity: u32,
}

/// One port and its traffic counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortLine {
    /// Port name (`eth0/q0`, `vp1`).
    pub name: String,
    /// `uplink` or `pod`.
    pub role: String,
    /// Socket kind (`af_xdp`, `af_packet`, ...).
    pub kind: String,
    /// The worker serving it.
    pub worker: String,
    /// XDP attach mode (`native`, `generic`), when an XDP program is attached.
    pub xdp: Option<String>,
    /// Why AF_XDP was not used, when the port fell back to AF_PACKET.
    pub fallback_reason: Option<String>,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// One attached pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodLine {
    /// Host-side interface.
    pub interface: String,
    /// The pod's IP.
    pub ip: String,
    /// The pod's MAC, when given.
    pub mac: Option<String>,
    /// The worker that owns its port (`weft-q<i>`).
    #[serde(default)]
    pub worker: String,
}

/// One worker's loop counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerLine {
    /// Thread name.
    pub name: String,
    /// Pinned core.
    pub core: Option<usize>,
    /// Loops run.
    pub loops: u64,
    /// Loops that found no work.
    pub idle_loops: u64,
    /// Times the idle worker blocked until a frame, a handed-over frame or a stop woke it.
    #[serde(default)]
    pub waits: u64,
    /// Wakeup system calls.
    pub wakeups: u64,
    /// Refills short of free frames.
    pub fill_starved: u64,
    /// Transmits that found the ring full.
    pub tx_ring_full: u64,
    /// Frames other workers handed to this one (for its pod ports).
    #[serde(default)]
    pub handoff_in: u64,
    /// Frames this worker handed to another (the pod worker).
    #[serde(default)]
    pub handoff_out: u64,
}

/// Drops of one reason (or packets of one pipeline path), summed over workers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropLine {
    /// The reason's stable name (metric label).
    pub reason: String,
    /// One line for operators.
    pub description: String,
    /// Frames dropped.
    pub count: u64,
}

/// One resolved underlay next hop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourLine {
    /// The next hop's IP.
    pub ip: String,
    /// Its MAC.
    pub mac: String,
}
