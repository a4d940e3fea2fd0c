//! Why a worker dropped a frame: one table, declared once. Each reason is a
//! `Copy` value that is also its counter's index. The pipeline adds its own
//! reasons to this table; names are stable metric labels.

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $desc:literal;)*) => {
        /// Why a frame was dropped. `name()` is the metric label,
        /// `description()` one line for operators.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in counter-index order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons (size of a per-reason counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name (metric label).
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// One-line description.
            pub const fn description(self) -> &'static str {
                match self { $(DropReason::$variant => $desc,)* }
            }

            /// Counter index.
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

drop_reasons! {
    /// The processor decided to drop (test and benchmark processors).
    Discard = "discard", "the frame processor discarded the frame on purpose";
    /// Too short for the processor to handle.
    Runt = "runt", "frame shorter than an Ethernet header";
    /// The verdict named a port the worker does not have.
    NoSuchPort = "no_such_port", "the processor chose a tx port this worker does not own";
    /// The tx ring stayed full and the staged backlog overflowed.
    TxBacklog = "tx_backlog", "tx ring full for longer than the staged backlog could absorb";
    /// The verdict named a worker that does not exist.
    NoSuchWorker = "no_such_worker", "the processor chose a handoff target worker that does not exist";
    /// The target worker's handoff ring was full.
    HandoffFull = "handoff_full", "the target worker's handoff ring was full";
    /// A frame to hand off was longer than a handoff slot holds (it grew by encapsulation).
    HandoffTooLong = "handoff_too_long", "a frame to hand to another worker was longer than a handoff slot";
    /// No free frame to copy a handed-off frame into.
    HandoffNoFrame = "handoff_no_frame", "no free frame in this worker's pool for a handed-off frame";
    /// A handed-off frame named a port that no longer carries the pod it was meant for (the
    /// pod was detached, or its port slot given to another pod, while the frame was in flight).
    HandoffStale = "handoff_stale", "a frame handed to a pod's owner named a port that no longer carries its pod";
    /// Frames still staged when the worker stopped.
    Shutdown = "shutdown", "frame still staged for transmission when the worker stopped";

    // The forwarding pipeline (engine/src/pipeline/).
    /// A header is shorter than its length fields say, or the frame ends inside it.
    Truncated = "truncated", "a header is cut short: the frame ends before the header or its length field does";
    /// A header field holds a value weft does not accept.
    Malformed = "malformed", "a header field is invalid (IP version, IHL, total length, ARP types)";
    /// The IPv4 header checksum does not verify.
    Ipv4Checksum = "ipv4_checksum", "the IPv4 header checksum does not verify";
    /// An 802.1Q-tagged frame on a port that carries untagged frames only.
    VlanTagged = "vlan_tagged", "802.1Q-tagged frame on an untagged port";
    /// Neither IPv4 nor ARP (IPv6, LLDP...).
    UnsupportedEthertype = "unsupported_ethertype", "EtherType is neither IPv4 nor ARP";
    /// A pod sent a packet whose source IP is not its own.
    PodSpoofedSource = "pod_spoofed_source", "a pod sent a packet (or ARP) whose source IP is not the pod's";
    /// ARP weft does not answer: replies, or requests for addresses it does not own.
    ArpNotOurs = "arp_not_ours", "ARP that is not a request for an address weft answers for";
    /// No route, or a blackhole route inside the cluster network.
    NoRoute = "no_route", "no route to the destination (inside the cluster network but no lease or pod)";
    /// TTL was 0 or 1 and no ICMP time exceeded was sent (rate limit, tunnel arrival, not allowed).
    TtlExpired = "ttl_expired", "TTL expired; the ICMP time exceeded was rate-limited or not allowed";
    /// Larger than the uplink MTU allows and no ICMP fragmentation needed was sent.
    TooBig = "too_big", "larger than the uplink MTU after encap: DF clear (weft does not fragment) or ICMP suppressed";
    /// The underlay next hop's MAC is not known yet (a resolve request was queued).
    NeighbourUnresolved = "neighbour_unresolved", "the underlay next hop's MAC is not resolved yet; resolution requested";
    /// VXLAN or IPIP from an outer source that holds no lease.
    TunnelUnknownPeer = "tunnel_unknown_peer", "VXLAN/IPIP from a source address that holds no lease";
    /// Outer CE over an inner packet that is not ECN-capable (RFC 6040 says drop).
    EcnCeNotEct = "ecn_ce_not_ect", "tunnel packet marked CE outside around a not-ECN-capable inner packet (RFC 6040: drop)";
    /// VXLAN to our port with another VNI.
    VxlanWrongVni = "vxlan_wrong_vni", "VXLAN frame for a VNI that is not ours";
    /// VXLAN header flags wrong (I flag clear or reserved bits set).
    VxlanBadFlags = "vxlan_bad_flags", "VXLAN header with the I flag clear or reserved bits set";
    /// An outer IPv4 fragment of tunnel traffic (weft does not reassemble).
    TunnelFragment = "tunnel_fragment", "fragmented VXLAN/IPIP outer packet (not reassembled)";
    /// Uplink traffic not for us: not our tunnel endpoint and not our pod subnet.
    NotForUs = "not_for_us", "uplink frame neither tunnel traffic to our PublicIP nor IPv4 to our pod subnet";
    /// Arrived from the uplink or the exception port for a destination that is not a local pod.
    NotLocal = "not_local", "arrived from the uplink or the exception port for an address that is no local pod";
    /// The frame arrived on a port the pipeline has no role for.
    UnknownPort = "unknown_port", "frame received on a port the pipeline has no role (uplink, pod, exception) for";
    /// A destination outside the cluster network but no exception port configured.
    NoExceptionPort = "no_exception_port", "destination outside the cluster network and no exception port configured";
    /// The destination pod's MAC is not known yet (no `mac` given, nothing learned from the pod).
    PodMacUnknown = "pod_mac_unknown", "the destination pod's MAC is not learned yet (it has sent nothing since it was attached)";
    /// Encapsulation failed (no headroom, inner frame not encapsulable).
    EncapFailed = "encap_failed", "encapsulation failed (no headroom, or an inner frame that cannot be carried)";

    // WireGuard (engine/src/wireguard/).
    /// A packet for a peer without a session while a handshake is already running.
    WgNoSession = "wg_no_session", "a packet for a WireGuard peer whose handshake is still running (dropped, never sent in clear)";
    /// UDP on the WireGuard port that is no WireGuard message.
    WgMalformed = "wg_malformed", "UDP to the WireGuard port that is no WireGuard message (unknown type, wrong length, truncated)";
    /// A message for a session or from a key that is no peer of ours.
    WgUnknownPeer = "wg_unknown_peer", "a WireGuard message naming no session of ours, or an initiation from a key that holds no lease";
    /// A handshake message whose MAC1 does not verify.
    WgBadMac = "wg_bad_mac", "a WireGuard handshake message whose MAC does not verify (not meant for our key)";
    /// A handshake message under load without a valid cookie.
    WgUnderLoad = "wg_under_load", "a WireGuard handshake refused under load (no source address for a cookie)";
    /// A handshake message that does not complete (wrong key, replayed timestamp).
    WgHandshakeFailed = "wg_handshake_failed", "a WireGuard handshake message that does not verify (wrong key, replayed or stale timestamp)";
    /// A transport message that does not decrypt.
    WgDecryptFailed = "wg_decrypt_failed", "a WireGuard transport message that does not authenticate (wrong key, no such session, expired)";
    /// A transport message whose counter was already seen or is behind the window.
    WgReplay = "wg_replay", "a WireGuard transport message replayed or older than the replay window";
    /// A decrypted packet whose source is outside the peer's allowed IPs.
    WgDisallowedSource = "wg_disallowed_source", "a decrypted packet whose source is not in the sending peer's subnet (its allowed IPs)";
    /// A keepalive or cookie reply, taken by the protocol.
    WgProtocol = "wg_protocol", "a WireGuard keepalive or cookie reply, consumed by the protocol (not a loss)";

    // Network policy (engine/src/policy/).
    /// A new connection from a local pod that its egress policies do not allow.
    PolicyDeniedEgress = "policy_denied_egress", "a new connection from a pod that no egress rule of the policies isolating it allows";
    /// A new connection to a local pod that its ingress policies do not allow.
    PolicyDeniedIngress = "policy_denied_ingress", "a new connection to a pod that no ingress rule of the policies isolating it allows";
}

#[cfg(test)]
mod tests {
    use super::DropReason;

    #[test]
    fn every_reason_has_a_unique_name_and_its_own_index() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(!r.description().is_empty());
            let same = DropReason::ALL.iter().filter(|o| o.name() == r.name()).count();
            assert_eq!(same, 1, "{} named twice", r.name());
        }
    }
}
