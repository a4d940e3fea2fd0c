//! What the pipeline did besides dropping (drops are the worker's `DropReason` counters): one
//! counter per path and per control event, declared once. Per worker, single writer: the
//! pipeline accumulates plain integers during a batch and publishes the running totals with
//! `Relaxed` stores once per batch; the control side reads and sums them (see
//! `worker::counters` for why `Relaxed` is enough).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! paths {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $desc:literal;)*) => {
        /// A pipeline event counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum PathCounter {
            $($(#[$doc])* $variant,)*
        }

        impl PathCounter {
            /// Every counter, in index order.
            pub const ALL: &'static [PathCounter] = &[$(PathCounter::$variant,)*];
            /// Number of counters.
            pub const COUNT: usize = Self::ALL.len();
            /// Stable snake_case name (metric label).
            pub const fn name(self) -> &'static str {
                match self { $(PathCounter::$variant => $name,)* }
            }
            /// One-line description.
            pub const fn description(self) -> &'static str {
                match self { $(PathCounter::$variant => $desc,)* }
            }
        }
    };
}

paths! {
    /// Pod to a pod on this node.
    Local = "local", "pod to pod on the same node";
    /// Pod to a remote pod, VXLAN-encapsulated.
    VxlanEncap = "vxlan_encap", "pod to remote pod, VXLAN-encapsulated";
    /// Pod to a remote pod, IPIP-encapsulated.
    IpipEncap = "ipip_encap", "pod to remote pod, IPIP-encapsulated";
    /// Pod to a remote pod, unencapsulated via the remote node (host-gw, DirectRouting).
    Direct = "direct", "pod to remote pod without encap (host-gw, DirectRouting/CrossSubnet)";
    /// Uplink VXLAN decapsulated and delivered to a local pod.
    VxlanDecap = "vxlan_decap", "VXLAN from a peer decapsulated and delivered to a pod";
    /// Uplink IPIP decapsulated and delivered.
    IpipDecap = "ipip_decap", "IPIP from a peer decapsulated and delivered to a pod";
    /// Uplink plain IPv4 to our subnet delivered (host-gw arrival).
    HostGwArrival = "host_gw_arrival", "plain IPv4 from the uplink delivered to a pod (host-gw)";
    /// Pod traffic for outside the cluster handed to the host kernel.
    ExceptionOut = "exception_out", "pod traffic to outside the cluster network handed to the host kernel";
    /// Host kernel traffic (exception port) delivered to a pod.
    ExceptionIn = "exception_in", "traffic from the host kernel (exception port) delivered to a pod";
    /// Host kernel traffic (exception port) sent to a pod on another node.
    ExceptionToRemote = "exception_to_remote", "traffic from the host kernel (host link) sent to a pod on another node";
    /// Traffic for the node's own address on the host link handed to the kernel.
    ExceptionNode = "exception_node", "traffic for the node's address on the host link (from pods or other nodes) handed to the kernel";
    /// Replies of flows the kernel forwarded to pods, handed back to it.
    ExceptionReply = "exception_reply", "replies of flows the host kernel forwarded to a pod (e.g. a Service DNAT) handed back to it";
    /// ARP replies sent for the gateway (and other subnet) addresses.
    ArpReply = "arp_reply", "ARP replies sent to pods (gateway and proxy for the node subnet)";
    /// ICMP time exceeded sent.
    IcmpTimeExceeded = "icmp_time_exceeded", "ICMP time exceeded sent for a TTL that expired";
    /// ICMP fragmentation needed sent.
    IcmpFragNeeded = "icmp_frag_needed", "ICMP fragmentation needed sent for a DF packet too big for the uplink";
    /// ICMP errors not sent because the token bucket was empty.
    IcmpRateLimited = "icmp_rate_limited", "ICMP errors suppressed by the per-worker rate limit";
    /// Learn events queued for a pod attached without a MAC.
    PodMacLearned = "pod_mac_learned", "pod MACs learned from a pod's first frame and queued for the control side";
    /// Frames for a local pod handed to the worker that owns the pod ports.
    PodHandoff = "pod_handoff", "frames for a local pod or the host link handed to the worker that owns its port";
    /// Resolve requests queued for the control side.
    ResolveRequests = "resolve_requests", "neighbour resolve requests queued for the control side";
    /// Connections the network policy allowed and the connection table started tracking.
    ConntrackNew = "conntrack_new", "new connections to or from policy-isolated pods allowed and tracked";
    /// Tracked connections evicted from a full connection-table bucket.
    ConntrackEvictions = "conntrack_evictions", "tracked connections evicted by a new one from a full connection-table bucket";
    /// Pod to a remote pod, encrypted in a WireGuard transport message.
    WgEncrypt = "wg_encrypt", "pod to remote pod, encrypted in a WireGuard transport message";
    /// A WireGuard transport message decrypted and delivered to a pod.
    WgDecrypt = "wg_decrypt", "WireGuard transport message from a peer decrypted and delivered to a pod";
    /// A handshake initiation sent in place of a packet for a peer without a session.
    WgInitiation = "wg_initiation", "WireGuard handshake initiation sent for a packet to a peer without a session (the packet dropped, never sent in clear)";
    /// A handshake response or cookie reply sent back to a peer.
    WgReply = "wg_reply", "WireGuard handshake response, cookie reply or keepalive sent back to a peer";
    /// Timer messages sent (initiation retries, rekeys, keepalives).
    WgTimer = "wg_timer", "WireGuard keepalive sent by a timer";
    /// Handshake initiations sent by the timers (a new peer, retries, rekeys).
    WgTimerInitiation = "wg_timer_initiation", "WireGuard handshake initiation sent by a timer (a new peer, a retry, a rekey)";
    /// Frames handed to the worker owning a peer's session.
    WgHandoff = "wg_handoff", "frame handed to the worker that owns its WireGuard peer's session";
}

/// A batch's counts, before publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathCounts(pub [u64; PathCounter::COUNT]);

impl Default for PathCounts {
    fn default() -> Self {
        PathCounts([0; PathCounter::COUNT])
    }
}

impl PathCounts {
    /// Adds one to `c`.
    #[inline]
    pub fn bump(&mut self, c: PathCounter) {
        self.0[c as usize] += 1;
    }

    /// The count of `c`.
    pub fn get(&self, c: PathCounter) -> u64 {
        self.0[c as usize]
    }

    /// The count of the counter named `name` (tests and metrics).
    pub fn by_name(&self, name: &str) -> Option<u64> {
        PathCounter::ALL.iter().find(|c| c.name() == name).map(|&c| self.get(c))
    }
}

/// The published copy of one pipeline's counters (behind an `Arc`, readable from any thread).
#[derive(Debug)]
pub struct PipelineCounters {
    values: [AtomicU64; PathCounter::COUNT],
    /// Flows in the network policy's connection table (a gauge).
    conntrack_entries: AtomicU64,
}

impl Default for PipelineCounters {
    fn default() -> Self {
        PipelineCounters {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
            conntrack_entries: AtomicU64::new(0),
        }
    }
}

impl PipelineCounters {
    /// A new, zeroed, shareable set.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Stores the running totals (owning pipeline only).
    pub(crate) fn publish(&self, totals: &PathCounts) {
        for (a, &v) in self.values.iter().zip(&totals.0) {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// Stores the connection table's entry count (owning pipeline only, once per batch).
    pub(crate) fn publish_conntrack(&self, entries: usize) {
        self.conntrack_entries.store(entries as u64, Ordering::Relaxed);
    }

    /// Flows in the pipeline's connection table ([`crate::policy::ConnTable::entries`]) at its
    /// last batch.
    pub fn conntrack_entries(&self) -> u64 {
        self.conntrack_entries.load(Ordering::Relaxed)
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> PathCounts {
        PathCounts(std::array::from_fn(|i| self.values[i].load(Ordering::Relaxed)))
    }
}
