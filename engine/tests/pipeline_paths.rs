//! Every row of SPEC §2's data-path table and every pipeline drop reason, on in-memory frames:
//! the sample node A (engine/src/pipeline/sample.rs) processes one frame (or a batch) and we
//! check the bytes that come out, the port they leave on, and the counters by name.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use weft_encap::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use weft_encap::wire::ethernet::{EtherType, EthernetFrame};
use weft_encap::wire::icmpv4::Icmpv4Packet;
use weft_encap::wire::ipv4::{IpProtocol, Ipv4Packet};
use weft_encap::wire::udp::UdpPacket;
use weft_encap::wire::vxlan::VxlanPacket;
use weft_encap::{IpipDecapConfig, MacAddr, Span, UdpChecksumPolicy, Vni, VxlanDecapConfig};
use weft_engine::fib::NextHop;
use weft_engine::pipeline::sample::*;
use weft_engine::pipeline::{Pipeline, RemoteRoute, RouteProgrammer, RouteUpdate};
use weft_engine::port::{FramePool, MemPort, Port};
use weft_engine::worker::{DropReason, FrameProcessor, PortId, Verdict, Worker, WorkerConfig};

/// Node A and a frame pool; runs frames through the pipeline and tallies drops by name.
struct Node {
    prog: RouteProgrammer,
    pipe: Pipeline,
    pool: FramePool,
    drops: HashMap<&'static str, u64>,
}

#[derive(Debug, PartialEq, Eq)]
enum Out {
    Tx(PortId, Vec<u8>),
    Drop(&'static str),
}

impl Out {
    #[track_caller]
    fn tx(self, port: PortId) -> Vec<u8> {
        match self {
            Out::Tx(p, bytes) if p == port => bytes,
            other => panic!("expected tx on {port:?}, got {other:?}"),
        }
    }
}

impl Node {
    fn new(backend: Backend, direct_routing: bool) -> Self {
        let (prog, pipe) = node(backend, direct_routing, 3).unwrap();
        Node { prog, pipe, pool: FramePool::new(512).unwrap(), drops: HashMap::new() }
    }

    fn batch(&mut self, port: PortId, frames: &[Vec<u8>]) -> Vec<Out> {
        let mut rx: Vec<_> = frames.iter().map(|f| self.pool.copy_in(f).unwrap()).collect();
        let mut verdicts = Vec::new();
        self.pipe.process_batch(port, &mut self.pool, &mut rx, &mut verdicts);
        assert_eq!(verdicts.len(), frames.len(), "one verdict per frame");
        rx.into_iter()
            .zip(verdicts)
            .map(|(f, v)| {
                let out = match v {
                    Verdict::Tx(p) => Out::Tx(p, self.pool.data(&f).to_vec()),
                    Verdict::Drop(r) => {
                        *self.drops.entry(r.name()).or_default() += 1;
                        Out::Drop(r.name())
                    }
                    Verdict::Handoff { .. } => panic!("the pipeline never hands off"),
                };
                self.pool.free(f);
                out
            })
            .collect()
    }

    fn run(&mut self, port: PortId, frame: &[u8]) -> Out {
        self.batch(port, &[frame.to_vec()]).pop().unwrap()
    }

    fn count(&self, name: &str) -> u64 {
        self.pipe.counters().snapshot().by_name(name).unwrap_or_else(|| panic!("no counter {name}"))
    }
}

fn ip(frame: &[u8], at: usize) -> Ipv4Packet<&[u8]> {
    let p = Ipv4Packet::new_checked(&frame[at..]).unwrap();
    assert!(p.verify_checksum(), "IPv4 checksum at {at}");
    p
}

fn macs(frame: &[u8]) -> (MacAddr, MacAddr) {
    let e = EthernetFrame::new_checked(frame).unwrap();
    (e.dst_addr(), e.src_addr())
}

/// The frame `sent` after a router hop: TTL - 1, header checksum patched.
fn forwarded(sent: &[u8], dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut f = sent.to_vec();
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    Ipv4Packet::new_unchecked(&mut f[14..]).decrement_ttl().unwrap();
    f
}

const REMOTE_POD: Ipv4Addr = Ipv4Addr::new(198, 19, 2, 7);
const FAR_POD: Ipv4Addr = Ipv4Addr::new(198, 19, 3, 7);

// ---- pod -> pod, same node ----

#[test]
fn pod_to_pod_on_the_same_node_rewrites_macs_and_decrements_ttl() {
    for backend in [Backend::FLANNEL_VXLAN, Backend::Ipip, Backend::HostGw] {
        let mut n = Node::new(backend, false);
        let (dst_ip, dst_mac, dst_port) = pod(1);
        let sent = from_pod(0, dst_ip, 64, 18);
        let got = n.run(pod(0).2, &sent).tx(dst_port);
        assert_eq!(got, forwarded(&sent, dst_mac, GATEWAY_MAC));
        assert_eq!(ip(&got, 14).ttl(), 63);
        assert_eq!(n.count("local"), 1);
    }
}

// ---- pod -> remote pod, VXLAN ----

fn check_vxlan(backend: Backend, vni: Vni, port: u16) {
    let mut n = Node::new(backend, false);
    let sent = from_pod(0, REMOTE_POD, 64, 64);
    let got = n.run(pod(0).2, &sent).tx(UPLINK);
    assert_eq!(got.len(), 50 + sent.len());
    assert_eq!(macs(&got), (B_MAC, A_MAC));
    let outer = ip(&got, 14);
    assert_eq!((outer.src_addr(), outer.dst_addr(), outer.protocol()), (A_IP, B_IP, IpProtocol::UDP));
    assert_eq!((outer.ttl(), outer.dont_frag(), usize::from(outer.total_len())), (64, false, got.len() - 14));
    let udp = UdpPacket::new_checked(outer.payload()).unwrap();
    assert_eq!(udp.dst_port(), port);
    assert!((32768..=60999).contains(&udp.src_port()), "Linux's source port range");
    let vx = VxlanPacket::new_checked(udp.payload()).unwrap();
    assert_eq!(vx.vni(), vni);
    // The inner frame: VtepMACs, TTL - 1.
    assert_eq!(&got[50..], &forwarded(&sent, B_VTEP, A_VTEP)[..]);
    // Node B accepts it (our templates send no UDP checksum by default, as RFC 7348 allows).
    let d = VxlanDecapConfig { local_ip: B_IP, port, vni, udp_checksum: UdpChecksumPolicy::VerifyIfPresent }
        .decap(&got, Span::new(0, got.len()))
        .unwrap();
    assert_eq!((d.outer_src, d.inner.start), (A_IP, 50));
    assert_eq!(n.count("vxlan_encap"), 1);
}

#[test]
fn pod_to_remote_pod_over_flannel_vxlan_uses_vni_1_and_port_8472() {
    check_vxlan(Backend::FLANNEL_VXLAN, Vni::FLANNEL, 8472);
}

#[test]
fn pod_to_remote_pod_over_calico_vxlan_uses_vni_4096_and_port_4789() {
    check_vxlan(Backend::CALICO_VXLAN, Vni::CALICO, 4789);
}

#[test]
fn one_flow_keeps_its_source_port_and_flows_spread() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let frames: Vec<Vec<u8>> = (0..64u16)
        .map(|i| udp_frame(pod(0).1, GATEWAY_MAC, pod(0).0, REMOTE_POD, 1000 + i % 8, 64, true, 18))
        .collect();
    let ports: Vec<u16> = n
        .batch(pod(0).2, &frames)
        .into_iter()
        .map(|o| {
            let f = o.tx(UPLINK);
            u16::from_be_bytes([f[34], f[35]])
        })
        .collect();
    for i in 8..64 {
        assert_eq!(ports[i], ports[i % 8], "same flow, same port");
    }
    let mut distinct = ports[..8].to_vec();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= 6, "8 flows got only {} ports", distinct.len());
}

// ---- pod -> remote pod, IPIP ----

#[test]
fn pod_to_remote_pod_over_ipip_prepends_a_protocol_4_header() {
    let mut n = Node::new(Backend::Ipip, false);
    let sent = from_pod(0, REMOTE_POD, 64, 64);
    let got = n.run(pod(0).2, &sent).tx(UPLINK);
    assert_eq!(macs(&got), (B_MAC, A_MAC));
    let outer = ip(&got, 14);
    assert_eq!((outer.src_addr(), outer.dst_addr(), outer.protocol()), (A_IP, B_IP, IpProtocol::IPIP));
    assert_eq!(&got[34..], &forwarded(&sent, B_VTEP, A_VTEP)[14..], "the inner packet, TTL - 1");
    let mut b = got.clone();
    let d = IpipDecapConfig { local_ip: B_IP }.decap(&mut b, Span::new(0, got.len())).unwrap();
    assert_eq!(d.outer_src, A_IP);
    assert_eq!(n.count("ipip_encap"), 1);
}

// ---- pod -> remote pod, host-gw ----

#[test]
fn pod_to_remote_pod_over_host_gw_sends_to_the_node_mac_without_encap() {
    let mut n = Node::new(Backend::HostGw, false);
    let sent = from_pod(0, REMOTE_POD, 64, 64);
    let got = n.run(pod(0).2, &sent).tx(UPLINK);
    assert_eq!(got, forwarded(&sent, B_MAC, A_MAC));
    assert_eq!(n.count("direct"), 1);
}

// ---- DirectRouting / CrossSubnet ----

#[test]
fn direct_routing_skips_encap_for_a_remote_on_our_subnet_and_encaps_otherwise() {
    for backend in [Backend::FLANNEL_VXLAN, Backend::Ipip] {
        let mut n = Node::new(backend, true);
        let sent = from_pod(0, REMOTE_POD, 64, 64);
        assert_eq!(
            n.run(pod(0).2, &sent).tx(UPLINK),
            forwarded(&sent, B_MAC, A_MAC),
            "{backend:?} on-subnet"
        );
        let far = from_pod(0, FAR_POD, 64, 64);
        let got = n.run(pod(0).2, &far).tx(UPLINK);
        assert_eq!(macs(&got), (UNDERLAY_GW_MAC, A_MAC), "{backend:?}: off-subnet goes via the gateway");
        assert_eq!(ip(&got, 14).dst_addr(), C_IP);
        assert!(got.len() > far.len(), "{backend:?}: encapsulated");
    }
}

#[test]
fn without_direct_routing_an_on_subnet_remote_is_encapsulated_to_its_own_mac() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let got = n.run(pod(0).2, &from_pod(0, REMOTE_POD, 64, 64)).tx(UPLINK);
    assert_eq!(macs(&got), (B_MAC, A_MAC));
    let got = n.run(pod(0).2, &from_pod(0, FAR_POD, 64, 64)).tx(UPLINK);
    assert_eq!((macs(&got), ip(&got, 14).dst_addr()), ((UNDERLAY_GW_MAC, A_MAC), C_IP));
}

// ---- uplink -> pod ----

/// What node B's pod 198.19.2.7 sends to our pod 1, as it leaves B's pod-side routing (TTL 63).
fn inner_to_pod1() -> Vec<u8> {
    udp_frame(B_VTEP, A_VTEP, REMOTE_POD, pod(1).0, 5000, 63, true, 30)
}

#[test]
fn vxlan_from_a_peer_is_decapsulated_and_delivered_to_the_pod() {
    for (backend, vni, port) in
        [(Backend::FLANNEL_VXLAN, Vni::FLANNEL, 8472), (Backend::CALICO_VXLAN, Vni::CALICO, 4789)]
    {
        let mut n = Node::new(backend, false);
        let inner = inner_to_pod1();
        let got = n.run(UPLINK, &vxlan_from_b(&inner, vni, port)).tx(pod(1).2);
        assert_eq!(got, forwarded(&inner, pod(1).1, GATEWAY_MAC));
        assert_eq!(n.count("vxlan_decap"), 1);
    }
}

#[test]
fn a_decapsulated_inner_frame_that_is_not_untagged_ipv4_is_a_named_drop() {
    let inner = inner_to_pod1();
    let mut tagged = inner[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0, 0, 5]);
    tagged.extend_from_slice(&inner[12..]);
    let mut qinq = inner[..12].to_vec();
    qinq.extend_from_slice(&[0x88, 0xa8, 0, 5, 0x81, 0, 0, 6]);
    qinq.extend_from_slice(&inner[12..]);
    let mut ipv6 = inner.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let arp = arp_request(B_VTEP, REMOTE_POD, pod(1).0);
    for (what, frame, reason) in [
        ("802.1Q", tagged, "vlan_tagged"),
        ("802.1ad", qinq, "vlan_tagged"),
        ("IPv6", ipv6, "unsupported_ethertype"),
        ("ARP", arp, "unsupported_ethertype"),
    ] {
        for (backend, vni, port) in
            [(Backend::FLANNEL_VXLAN, Vni::FLANNEL, 8472), (Backend::CALICO_VXLAN, Vni::CALICO, 4789)]
        {
            let mut n = Node::new(backend, false);
            assert_eq!(
                n.run(UPLINK, &vxlan_from_b(&frame, vni, port)),
                Out::Drop(reason),
                "{what} {backend:?}"
            );
            assert_eq!(n.count("vxlan_decap"), 0, "{what} {backend:?}: not counted as delivered");
        }
    }
}

#[test]
fn ipip_from_a_peer_is_decapsulated_and_delivered_to_the_pod() {
    let mut n = Node::new(Backend::Ipip, false);
    let inner = inner_to_pod1();
    let got = n.run(UPLINK, &ipip_from_b(&inner)).tx(pod(1).2);
    assert_eq!(got, forwarded(&inner, pod(1).1, GATEWAY_MAC));
    assert_eq!(n.count("ipip_decap"), 1);
}

/// `frame` with its IPv4 header (at `at`) carrying ECN field `ecn`, checksum refilled.
fn with_ecn(frame: &[u8], at: usize, ecn: u8) -> Vec<u8> {
    let mut f = frame.to_vec();
    let mut ip = Ipv4Packet::new_unchecked(&mut f[at..]);
    let tos = ip.tos();
    ip.set_tos((tos & !0b11) | ecn);
    ip.fill_checksum();
    f
}

#[test]
fn an_outer_ce_mark_reaches_ecn_capable_inner_packets_and_drops_the_others() {
    use weft_encap::tunnel::ecn::{CE, ECT0, ECT1, NOT_ECT};
    for (backend, outer) in [(Backend::FLANNEL_VXLAN, 0usize), (Backend::Ipip, 1)] {
        let tunnel = |inner: &[u8]| match outer {
            0 => vxlan_from_b(inner, Vni::FLANNEL, 8472),
            _ => ipip_from_b(inner),
        };
        let mut n = Node::new(backend, false);
        for (inner_ecn, outer_ecn, delivered_ecn) in [
            (ECT0, CE, Some(CE)),
            (ECT1, CE, Some(CE)),
            (ECT0, ECT1, Some(ECT1)),
            (NOT_ECT, ECT0, Some(NOT_ECT)),
            (NOT_ECT, CE, None),
        ] {
            let inner = with_ecn(&inner_to_pod1(), 14, inner_ecn);
            let sent = with_ecn(&tunnel(&inner), 14, outer_ecn);
            match (n.run(UPLINK, &sent), delivered_ecn) {
                (Out::Tx(port, got), Some(want)) => {
                    assert_eq!(port, pod(1).2);
                    assert_eq!(
                        ip(&got, 14).tos() & 0b11,
                        want,
                        "{backend:?} inner {inner_ecn} outer {outer_ecn}"
                    );
                    assert_eq!(got, forwarded(&with_ecn(&inner, 14, want), pod(1).1, GATEWAY_MAC));
                }
                (Out::Drop(r), None) => assert_eq!(r, "ecn_ce_not_ect"),
                (other, want) => {
                    panic!("{backend:?} inner {inner_ecn} outer {outer_ecn}: {other:?}, want {want:?}")
                }
            }
        }
        assert_eq!(n.drops["ecn_ce_not_ect"], 1);
    }
}

#[test]
fn encapsulation_copies_the_inner_ecn_to_the_outer_header_and_never_copies_ce() {
    use weft_encap::tunnel::ecn::{CE, ECT0, ECT1, NOT_ECT};
    for backend in [Backend::FLANNEL_VXLAN, Backend::Ipip] {
        let mut n = Node::new(backend, false);
        for (inner_ecn, outer_ecn) in [(NOT_ECT, NOT_ECT), (ECT0, ECT0), (ECT1, ECT1), (CE, ECT0)] {
            let sent = with_ecn(&from_pod(0, REMOTE_POD, 64, 18), 14, inner_ecn);
            let Out::Tx(_, got) = n.run(pod(0).2, &sent) else { panic!("{backend:?}: not forwarded") };
            assert_eq!(ip(&got, 14).tos() & 0b11, outer_ecn, "{backend:?} inner {inner_ecn}");
        }
    }
}

#[test]
fn host_gw_arrival_for_our_subnet_is_delivered_to_the_pod() {
    let mut n = Node::new(Backend::HostGw, false);
    let sent = udp_frame(B_MAC, A_MAC, REMOTE_POD, pod(2).0, 5000, 63, false, 10);
    assert_eq!(n.run(UPLINK, &sent).tx(pod(2).2), forwarded(&sent, pod(2).1, GATEWAY_MAC));
    assert_eq!(n.count("host_gw_arrival"), 1);
}

// ---- exception path ----

#[test]
fn pod_traffic_outside_the_cluster_goes_to_the_host_kernel_unrouted() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let sent = from_pod(0, Ipv4Addr::new(198, 18, 0, 200), 64, 10);
    let got = n.run(pod(0).2, &sent).tx(EXCEPTION);
    let mut want = sent.clone();
    want[..6].copy_from_slice(&HOST_MAC.0);
    want[6..12].copy_from_slice(&EXC_MAC.0);
    assert_eq!(got, want, "only the MACs change: the kernel routes it");
    assert_eq!(n.count("exception_out"), 1);
}

#[test]
fn host_traffic_from_the_exception_port_is_delivered_to_pods() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let sent = udp_frame(HOST_MAC, EXC_MAC, Ipv4Addr::new(198, 18, 0, 1), pod(0).0, 53, 64, false, 10);
    assert_eq!(n.run(EXCEPTION, &sent).tx(pod(0).2), forwarded(&sent, pod(0).1, GATEWAY_MAC));
    assert_eq!(n.count("exception_in"), 1);
    // The host asking for a pod's MAC gets our exception-port MAC.
    let reply = n.run(EXCEPTION, &arp_request(HOST_MAC, A_GATEWAY, pod(0).0)).tx(EXCEPTION);
    assert_eq!(macs(&reply), (HOST_MAC, EXC_MAC));
}

// ---- host link: the node's kernel and the pods ----

/// `frame` (an Ethernet + IPv4 + UDP frame) with its UDP ports set, checksum refilled.
fn with_ports(mut frame: Vec<u8>, src_port: u16, dst_port: u16) -> Vec<u8> {
    let (src, dst) = {
        let p = ip(&frame, 14);
        (p.src_addr(), p.dst_addr())
    };
    let mut udp = UdpPacket::new_unchecked(&mut frame[34..]);
    udp.set_src_port(src_port);
    udp.set_dst_port(dst_port);
    udp.fill_checksum(src, dst);
    frame
}

/// `sent` as handed to the kernel: only the MACs change.
fn to_kernel(sent: &[u8]) -> Vec<u8> {
    let mut want = sent.to_vec();
    want[..6].copy_from_slice(&HOST_MAC.0);
    want[6..12].copy_from_slice(&EXC_MAC.0);
    want
}

#[test]
fn the_nodes_traffic_to_a_remote_pod_is_encapsulated_like_a_pods() {
    for backend in [Backend::FLANNEL_VXLAN, Backend::Ipip, Backend::HostGw] {
        let mut n = Node::new(backend, false);
        let sent = udp_frame(HOST_MAC, EXC_MAC, A_HOST, REMOTE_POD, 40000, 64, true, 32);
        let got = n.run(EXCEPTION, &sent).tx(UPLINK);
        let inner_at = match backend {
            Backend::Vxlan { .. } => 50 + 14,
            Backend::Ipip => 34,
            Backend::HostGw => 14,
        };
        let inner = ip(&got, inner_at);
        assert_eq!(
            (inner.src_addr(), inner.dst_addr(), inner.ttl()),
            (A_HOST, REMOTE_POD, 63),
            "{backend:?}"
        );
        let to_b = if backend == Backend::HostGw {
            macs(&got) == (B_MAC, A_MAC)
        } else {
            ip(&got, 14).dst_addr() == B_IP
        };
        assert!(to_b, "{backend:?}: to node B");
        assert_eq!(n.count("exception_to_remote"), 1, "{backend:?}");
    }
}

#[test]
fn traffic_for_the_nodes_host_link_address_goes_to_the_kernel_from_pods_and_peers() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let from_pod = from_pod(0, A_HOST, 64, 20);
    assert_eq!(n.run(pod(0).2, &from_pod).tx(EXCEPTION), to_kernel(&from_pod));
    let reply = udp_frame(B_VTEP, A_VTEP, REMOTE_POD, A_HOST, 5201, 63, true, 20);
    let got = n.run(UPLINK, &vxlan_from_b(&reply, Vni::FLANNEL, 8472)).tx(EXCEPTION);
    assert_eq!(got, to_kernel(&reply), "decapsulated, unrouted: the kernel is the destination");
    assert_eq!(n.count("exception_node"), 2);
    let mut hg = Node::new(Backend::HostGw, false);
    let plain = udp_frame(B_MAC, A_MAC, REMOTE_POD, A_HOST, 5201, 63, true, 20);
    assert_eq!(hg.run(UPLINK, &plain).tx(EXCEPTION), to_kernel(&plain));
    // The kernel asking for the pods' gateway (its route's next hop) gets our MAC.
    let arp = hg.run(EXCEPTION, &arp_request(HOST_MAC, A_HOST, A_GATEWAY)).tx(EXCEPTION);
    assert_eq!(macs(&arp), (HOST_MAC, EXC_MAC));
}

#[test]
fn replies_to_what_the_kernel_forwarded_to_a_remote_pod_go_back_to_the_kernel() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    // Pod 0 -> a Service address: the kernel translated it to the remote pod and routed it to us.
    let dnat = with_ports(udp_frame(HOST_MAC, EXC_MAC, pod(0).0, REMOTE_POD, 40000, 63, true, 20), 40000, 80);
    n.run(EXCEPTION, &dnat).tx(UPLINK);
    assert_eq!(n.count("exception_to_remote"), 1);
    // The remote pod's reply: to the kernel (which reverses the translation), not to the pod.
    let reply = with_ports(udp_frame(B_VTEP, A_VTEP, REMOTE_POD, pod(0).0, 80, 63, true, 20), 80, 40000);
    let got = n.run(UPLINK, &vxlan_from_b(&reply, Vni::FLANNEL, 8472)).tx(EXCEPTION);
    assert_eq!(got, to_kernel(&reply));
    assert_eq!(n.count("exception_reply"), 1);
    // Another flow between the same pods is pod to pod: delivered straight.
    let other = with_ports(udp_frame(B_VTEP, A_VTEP, REMOTE_POD, pod(0).0, 80, 63, true, 20), 80, 40001);
    n.run(UPLINK, &vxlan_from_b(&other, Vni::FLANNEL, 8472)).tx(pod(0).2);
    // The kernel's de-translated reply comes back over the host link and reaches the pod.
    let back = udp_frame(HOST_MAC, EXC_MAC, Ipv4Addr::new(198, 18, 100, 1), pod(0).0, 80, 63, true, 20);
    n.run(EXCEPTION, &back).tx(pod(0).2);
}

#[test]
fn replies_to_what_the_kernel_forwarded_to_a_local_pod_go_back_to_the_kernel() {
    let mut n = Node::new(Backend::HostGw, false);
    // A NodePort-style translation: a remote pod's packet to the node, translated to pod 1.
    let dnat = with_ports(udp_frame(HOST_MAC, EXC_MAC, REMOTE_POD, pod(1).0, 40000, 63, true, 20), 40000, 80);
    n.run(EXCEPTION, &dnat).tx(pod(1).2);
    let reply = with_ports(from_pod(1, REMOTE_POD, 64, 20), 80, 40000);
    assert_eq!(n.run(pod(1).2, &reply).tx(EXCEPTION), to_kernel(&reply));
    // And pod 0 -> Service -> pod 1 on the same node.
    let dnat = with_ports(udp_frame(HOST_MAC, EXC_MAC, pod(0).0, pod(1).0, 40002, 63, true, 20), 40002, 80);
    n.run(EXCEPTION, &dnat).tx(pod(1).2);
    let reply = with_ports(from_pod(1, pod(0).0, 64, 20), 80, 40002);
    assert_eq!(n.run(pod(1).2, &reply).tx(EXCEPTION), to_kernel(&reply));
    assert_eq!(n.count("exception_reply"), 2);
    // Traffic the node itself sends is not recorded: its replies are routed to it anyway.
    let from_node =
        with_ports(udp_frame(HOST_MAC, EXC_MAC, A_HOST, pod(0).0, 40003, 64, true, 20), 40003, 80);
    n.run(EXCEPTION, &from_node).tx(pod(0).2);
    let reply = with_ports(from_pod(0, A_HOST, 64, 20), 80, 40003);
    n.run(pod(0).2, &reply).tx(EXCEPTION);
    assert_eq!((n.count("exception_reply"), n.count("exception_node")), (2, 1));
}

#[test]
fn an_icmp_echo_the_kernel_forwarded_has_its_reply_returned_to_the_kernel() {
    let mut n = Node::new(Backend::HostGw, false);
    let mut echo = udp_frame(HOST_MAC, EXC_MAC, pod(0).0, pod(1).0, 0, 63, true, 20);
    let mut reply = from_pod(1, pod(0).0, 64, 20);
    for (f, kind) in [(&mut echo, 8u8), (&mut reply, 0)] {
        // Turn the UDP frame into an ICMP echo (request or reply) with identifier 0x1234.
        f[23] = 1;
        Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        f[34..42].copy_from_slice(&[kind, 0, 0, 0, 0x12, 0x34, 0, 1]);
    }
    n.run(EXCEPTION, &echo).tx(pod(1).2);
    assert_eq!(n.run(pod(1).2, &reply).tx(EXCEPTION), to_kernel(&reply));
}

// ---- ARP ----

#[test]
fn a_pods_arp_for_its_gateway_is_answered_in_place() {
    let mut n = Node::new(Backend::HostGw, false);
    let (pod_ip, pod_mac, port) = pod(0);
    let got = n.run(port, &arp_request(pod_mac, pod_ip, A_GATEWAY)).tx(port);
    assert_eq!(got.len(), 42);
    assert_eq!(macs(&got), (pod_mac, GATEWAY_MAC));
    assert_eq!(EthernetFrame::new_checked(&got[..]).unwrap().ethertype(), EtherType::ARP);
    let r = ArpRepr::parse(&ArpPacket::new_checked(&got[14..]).unwrap()).unwrap();
    assert_eq!(
        r,
        ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: GATEWAY_MAC,
            sender_ip: A_GATEWAY,
            target_mac: pod_mac,
            target_ip: pod_ip
        }
    );
    // Another pod of the /24 is on-link for the pod: answered with the gateway MAC too.
    let got = n.run(port, &arp_request(pod_mac, pod_ip, pod(1).0)).tx(port);
    assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&got[14..]).unwrap()).unwrap().sender_mac, GATEWAY_MAC);
    assert_eq!(n.count("arp_reply"), 2);
}

#[test]
fn arp_weft_does_not_answer_is_dropped_as_arp_not_ours() {
    let mut n = Node::new(Backend::HostGw, false);
    let (pod_ip, pod_mac, port) = pod(0);
    assert_eq!(
        n.run(port, &arp_request(pod_mac, pod_ip, Ipv4Addr::new(198, 18, 0, 9))),
        Out::Drop("arp_not_ours")
    );
    assert_eq!(n.run(port, &arp_request(pod_mac, pod_ip, pod_ip)), Out::Drop("arp_not_ours"), "gratuitous");
    let mut reply = arp_request(pod_mac, pod_ip, A_GATEWAY);
    reply[21] = 2;
    assert_eq!(n.run(port, &reply), Out::Drop("arp_not_ours"));
}

// ---- TTL, MTU, ICMP ----

#[test]
fn ttl_expiry_sends_icmp_time_exceeded_back_to_the_pod() {
    for dst in [pod(1).0, REMOTE_POD] {
        let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
        let sent = from_pod(0, dst, 1, 40);
        let got = n.run(pod(0).2, &sent).tx(pod(0).2);
        assert_eq!(macs(&got), (pod(0).1, GATEWAY_MAC));
        let reply = ip(&got, 14);
        assert_eq!(
            (reply.src_addr(), reply.dst_addr(), reply.protocol()),
            (A_GATEWAY, pod(0).0, IpProtocol::ICMP)
        );
        let icmp = Icmpv4Packet::new_checked(reply.payload()).unwrap();
        assert_eq!((icmp.msg_type(), icmp.code()), (11, 0));
        assert_eq!(icmp.check_checksum(), Ok(()));
        assert_eq!(icmp.data(), &sent[14..14 + 28], "quotes the header and 8 bytes");
        assert_eq!(n.count("icmp_time_exceeded"), 1);
    }
}

#[test]
fn ttl_zero_is_also_expired() {
    let mut n = Node::new(Backend::HostGw, false);
    let got = n.run(pod(0).2, &from_pod(0, pod(1).0, 0, 10)).tx(pod(0).2);
    assert_eq!(Icmpv4Packet::new_checked(ip(&got, 14).payload()).unwrap().msg_type(), 11);
}

#[test]
fn an_expired_ttl_from_a_tunnel_is_dropped_without_icmp() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let inner = udp_frame(B_VTEP, A_VTEP, REMOTE_POD, pod(1).0, 5000, 1, true, 30);
    assert_eq!(n.run(UPLINK, &vxlan_from_b(&inner, Vni::FLANNEL, 8472)), Out::Drop("ttl_expired"));
}

#[test]
fn icmp_errors_are_rate_limited_per_worker() {
    let mut n = Node::new(Backend::HostGw, false);
    let frames: Vec<Vec<u8>> = (0..80).map(|_| from_pod(0, pod(1).0, 1, 10)).collect();
    let outs = n.batch(pod(0).2, &frames);
    let sent = outs.iter().filter(|o| matches!(o, Out::Tx(..))).count();
    assert_eq!(sent, 50, "the default burst");
    assert_eq!(n.drops["ttl_expired"], 30);
    assert_eq!(n.count("icmp_rate_limited"), 30);
}

fn check_frag_needed(backend: Backend, mtu: u16) {
    let mut n = Node::new(backend, false);
    // 1500 - 28 bytes of IPv4 + UDP: fits a 1500 uplink only without encap.
    let sent = from_pod(0, REMOTE_POD, 64, 1472);
    let got = n.run(pod(0).2, &sent).tx(pod(0).2);
    let reply = ip(&got, 14);
    let icmp = Icmpv4Packet::new_checked(reply.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code(), icmp.next_hop_mtu()), (3, 4, mtu), "{backend:?}");
    assert_eq!(n.count("icmp_frag_needed"), 1);
    // One byte less than the limit passes.
    let fits = from_pod(0, REMOTE_POD, 64, usize::from(mtu) - 28);
    n.run(pod(0).2, &fits).tx(UPLINK);
    // Without DF it is dropped: weft does not fragment.
    let mut no_df = sent.clone();
    no_df[20] = 0;
    Ipv4Packet::new_unchecked(&mut no_df[14..]).fill_checksum();
    assert_eq!(n.run(pod(0).2, &no_df), Out::Drop("too_big"));
}

#[test]
fn df_oversize_over_vxlan_gets_fragmentation_needed_with_mtu_1450() {
    check_frag_needed(Backend::FLANNEL_VXLAN, 1450);
}

#[test]
fn df_oversize_over_ipip_gets_fragmentation_needed_with_mtu_1480() {
    check_frag_needed(Backend::Ipip, 1480);
}

// ---- drops ----

#[test]
fn a_pod_using_another_source_address_is_dropped_as_spoofed() {
    let mut n = Node::new(Backend::HostGw, false);
    let (_, mac, port) = pod(0);
    let spoofed = udp_frame(mac, GATEWAY_MAC, pod(1).0, REMOTE_POD, 1, 64, true, 10);
    assert_eq!(n.run(port, &spoofed), Out::Drop("pod_spoofed_source"));
    assert_eq!(n.run(port, &arp_request(mac, pod(1).0, A_GATEWAY)), Out::Drop("pod_spoofed_source"));
}

#[test]
fn tunnel_traffic_from_a_node_without_a_lease_is_dropped() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let mut f = vxlan_from_b(&inner_to_pod1(), Vni::FLANNEL, 8472);
    let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
    p.patch_src_addr(Ipv4Addr::new(198, 18, 0, 66));
    assert_eq!(n.run(UPLINK, &f), Out::Drop("tunnel_unknown_peer"));
    // A peer whose lease (route) goes away stops being accepted.
    n.prog.apply(&[RouteUpdate::RemoveRemote(prefix(B_SUBNET, 24))]).unwrap();
    assert_eq!(
        n.run(UPLINK, &vxlan_from_b(&inner_to_pod1(), Vni::FLANNEL, 8472)),
        Out::Drop("tunnel_unknown_peer")
    );

    let mut n = Node::new(Backend::Ipip, false);
    n.prog.apply(&[RouteUpdate::RemoveRemote(prefix(B_SUBNET, 24))]).unwrap();
    assert_eq!(n.run(UPLINK, &ipip_from_b(&inner_to_pod1())), Out::Drop("tunnel_unknown_peer"));
}

#[test]
fn vxlan_for_another_vni_or_with_bad_flags_is_dropped() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    assert_eq!(
        n.run(UPLINK, &vxlan_from_b(&inner_to_pod1(), Vni::CALICO, 8472)),
        Out::Drop("vxlan_wrong_vni")
    );
    let mut f = vxlan_from_b(&inner_to_pod1(), Vni::FLANNEL, 8472);
    f[42] = 0; // I flag clear
    assert_eq!(n.run(UPLINK, &f), Out::Drop("vxlan_bad_flags"));
    f[42] = 0x0c; // a reserved bit
    assert_eq!(n.run(UPLINK, &f), Out::Drop("vxlan_bad_flags"));
}

#[test]
fn fragmented_tunnel_packets_are_dropped() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let mut f = vxlan_from_b(&inner_to_pod1(), Vni::FLANNEL, 8472);
    f[20] |= 0x20;
    Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
    assert_eq!(n.run(UPLINK, &f), Out::Drop("tunnel_fragment"));
}

#[test]
fn truncated_frames_are_counted_at_every_length_from_every_port() {
    let cases = [
        (Backend::FLANNEL_VXLAN, UPLINK, vxlan_from_b(&inner_to_pod1(), Vni::FLANNEL, 8472)),
        (Backend::Ipip, UPLINK, ipip_from_b(&inner_to_pod1())),
        (Backend::HostGw, UPLINK, udp_frame(B_MAC, A_MAC, REMOTE_POD, pod(2).0, 5000, 63, false, 10)),
        (Backend::HostGw, pod(0).2, from_pod(0, REMOTE_POD, 64, 20)),
        (Backend::HostGw, pod(0).2, arp_request(pod(0).1, pod(0).0, A_GATEWAY)),
        (Backend::HostGw, EXCEPTION, udp_frame(HOST_MAC, EXC_MAC, A_IP, pod(0).0, 53, 64, false, 10)),
    ];
    for (backend, port, frame) in cases {
        let mut n = Node::new(backend, false);
        for len in 0..frame.len() {
            let out = n.run(port, &frame[..len]);
            assert!(
                matches!(out, Out::Drop("truncated" | "malformed")),
                "{backend:?} port {port:?} len {len}: {out:?}"
            );
        }
        assert!(matches!(n.run(port, &frame), Out::Tx(..)), "{backend:?} the whole frame passes");
    }
}

#[test]
fn bad_headers_are_dropped_under_their_own_names() {
    let mut n = Node::new(Backend::HostGw, false);
    let port = pod(0).2;
    let good = from_pod(0, REMOTE_POD, 64, 20);
    let mut bad_sum = good.clone();
    bad_sum[24] ^= 0xff;
    assert_eq!(n.run(port, &bad_sum), Out::Drop("ipv4_checksum"));
    let mut v6 = good.clone();
    v6[14] = 0x65;
    assert_eq!(n.run(port, &v6), Out::Drop("malformed"));
    let mut ihl = good.clone();
    ihl[14] = 0x44;
    assert_eq!(n.run(port, &ihl), Out::Drop("malformed"));
    let mut tagged = good[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0, 0, 5]);
    tagged.extend_from_slice(&good[12..]);
    assert_eq!(n.run(port, &tagged), Out::Drop("vlan_tagged"));
    let mut ipv6 = good.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(n.run(port, &ipv6), Out::Drop("unsupported_ethertype"));
    assert_eq!(n.run(PortId(40), &good), Out::Drop("unknown_port"));
}

#[test]
fn a_cluster_address_without_a_lease_has_no_route_and_a_removed_route_stops_forwarding() {
    let mut n = Node::new(Backend::HostGw, false);
    assert_eq!(n.run(pod(0).2, &from_pod(0, Ipv4Addr::new(198, 19, 9, 9), 64, 10)), Out::Drop("no_route"));
    assert_eq!(n.run(pod(0).2, &from_pod(0, Ipv4Addr::new(198, 19, 1, 99), 64, 10)), Out::Drop("no_route"));
    n.prog.apply(&[RouteUpdate::RemoveRemote(prefix(B_SUBNET, 24))]).unwrap();
    assert_eq!(n.run(pod(0).2, &from_pod(0, REMOTE_POD, 64, 10)), Out::Drop("no_route"));
    n.prog.apply(&[RouteUpdate::RemovePod(pod(1).0)]).unwrap();
    assert_eq!(n.run(pod(0).2, &from_pod(0, pod(1).0, 64, 10)), Out::Drop("no_route"));
}

#[test]
fn uplink_traffic_not_for_us_or_not_for_a_local_pod_is_dropped() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let elsewhere = udp_frame(B_MAC, A_MAC, B_IP, Ipv4Addr::new(198, 18, 0, 77), 1, 64, false, 10);
    assert_eq!(n.run(UPLINK, &elsewhere), Out::Drop("not_for_us"));
    let other_port = udp_frame(B_MAC, A_MAC, B_IP, A_IP, 1, 64, false, 10);
    assert_eq!(n.run(UPLINK, &other_port), Out::Drop("not_for_us"));
    assert_eq!(n.run(UPLINK, &arp_request(B_MAC, B_IP, A_IP)), Out::Drop("not_for_us"));
    // Decapsulated traffic for another node's pod is not re-encapsulated.
    let transit = udp_frame(B_VTEP, A_VTEP, REMOTE_POD, FAR_POD, 5000, 63, true, 30);
    assert_eq!(n.run(UPLINK, &vxlan_from_b(&transit, Vni::FLANNEL, 8472)), Out::Drop("not_local"));
    let out = udp_frame(B_VTEP, A_VTEP, REMOTE_POD, Ipv4Addr::new(198, 18, 0, 200), 5000, 63, true, 30);
    assert_eq!(n.run(UPLINK, &vxlan_from_b(&out, Vni::FLANNEL, 8472)), Out::Drop("not_local"));
    let host_to_outside =
        udp_frame(HOST_MAC, EXC_MAC, A_HOST, Ipv4Addr::new(198, 18, 0, 200), 53, 64, false, 10);
    assert_eq!(
        n.run(EXCEPTION, &host_to_outside),
        Out::Drop("not_local"),
        "the kernel's own routes are not ours"
    );
}

#[test]
fn an_unresolved_neighbour_drops_counts_and_asks_once_until_resolved() {
    for backend in [Backend::HostGw, Backend::FLANNEL_VXLAN, Backend::Ipip] {
        let mut n = Node::new(backend, false);
        n.prog.set_neighbour(B_IP, None).unwrap();
        let frames: Vec<Vec<u8>> = (0..10).map(|_| from_pod(0, REMOTE_POD, 64, 10)).collect();
        let outs = n.batch(pod(0).2, &frames);
        assert!(outs.iter().all(|o| *o == Out::Drop("neighbour_unresolved")), "{backend:?}");
        assert_eq!(n.count("resolve_requests"), 1, "{backend:?}: one request per epoch");
        assert_eq!(n.prog.neighbours().next_request(), Some(B_IP));
        assert_eq!(n.prog.neighbours().next_request(), None);
        n.prog.neighbours().advance_epoch();
        n.run(pod(0).2, &frames[0]);
        assert_eq!(n.count("resolve_requests"), 2, "{backend:?}: asks again in a new epoch");
        // The control side learns the MAC (a new one): next hops are republished with it.
        let new_mac = MacAddr([2, 0, 0xc6, 0x12, 0, 0x22]);
        n.prog.set_neighbour(B_IP, Some(new_mac)).unwrap();
        let got = n.run(pod(0).2, &frames[0]).tx(UPLINK);
        assert_eq!(macs(&got).0, new_mac, "{backend:?}");
        let epoch = n.prog.neighbours().epoch();
        assert_eq!(n.prog.neighbours().last_used(B_IP), Some(epoch), "{backend:?}: used stamp");
    }
}

#[test]
fn without_an_exception_port_outside_traffic_is_counted() {
    let (prog, _) = node(Backend::HostGw, false, 1).unwrap();
    let mut cfg = pipeline_config(Backend::HostGw, 1);
    cfg.exception = None;
    let pipe = Pipeline::new(cfg, prog.handles());
    let mut n = Node { prog, pipe, pool: FramePool::new(16).unwrap(), drops: HashMap::new() };
    assert_eq!(
        n.run(pod(0).2, &from_pod(0, Ipv4Addr::new(198, 18, 0, 200), 64, 10)),
        Out::Drop("no_exception_port")
    );
}

#[test]
fn a_mixed_batch_gets_one_verdict_per_frame_in_order() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let frames = vec![
        from_pod(0, pod(1).0, 64, 10),
        from_pod(0, Ipv4Addr::new(198, 19, 9, 9), 64, 10),
        arp_request(pod(0).1, pod(0).0, A_GATEWAY),
        from_pod(0, REMOTE_POD, 64, 10),
        from_pod(0, Ipv4Addr::new(198, 18, 0, 200), 64, 10),
        from_pod(0, pod(2).0, 1, 10),
    ];
    let ports: Vec<Option<PortId>> = n
        .batch(pod(0).2, &frames)
        .into_iter()
        .map(|o| match o {
            Out::Tx(p, _) => Some(p),
            Out::Drop(_) => None,
        })
        .collect();
    assert_eq!(
        ports,
        vec![Some(pod(1).2), None, Some(pod(0).2), Some(UPLINK), Some(EXCEPTION), Some(pod(0).2)]
    );
}

#[test]
fn the_programmer_shares_one_next_hop_per_remote_node_and_removes_it_with_its_last_route() {
    let (mut prog, _) = node(Backend::FLANNEL_VXLAN, false, 1).unwrap();
    let before = prog.fib().next_hops().len();
    let second = RemoteRoute {
        prefix: prefix(Ipv4Addr::new(198, 19, 4, 0), 24),
        via: via(Backend::FLANNEL_VXLAN, B_IP, B_VTEP),
    };
    prog.apply(&[RouteUpdate::Remote(second)]).unwrap();
    assert_eq!(prog.fib().next_hops().len(), before, "same node, same next hop");
    prog.apply(&[RouteUpdate::RemoveRemote(prefix(B_SUBNET, 24))]).unwrap();
    assert_eq!(prog.fib().next_hops().len(), before);
    prog.apply(&[RouteUpdate::RemoveRemote(second.prefix)]).unwrap();
    assert_eq!(prog.fib().next_hops().len(), before - 1);
    let templates =
        (0..64).filter_map(|i| match prog.fib().next_hops().get(weft_engine::fib::NextHopId(i)) {
            Some(NextHop::Vxlan(h)) => Some(h.template.params().dst_ip),
            _ => None,
        });
    assert_eq!(templates.collect::<Vec<_>>(), vec![C_IP]);
}

#[test]
fn a_worker_on_memory_ports_forwards_and_counts_drops_by_name() {
    let (_prog, pipe) = node(Backend::FLANNEL_VXLAN, false, 2).unwrap();
    let counters = pipe.counters().clone();
    let (uplink, up) = MemPort::queue("uplink", 64);
    let (exc, _exc) = MemPort::queue("exception", 64);
    let (p0, pod0) = MemPort::queue("pod0", 64);
    let (p1, pod1) = MemPort::queue("pod1", 64);
    let ports: Vec<Box<dyn Port>> = vec![Box::new(uplink), Box::new(exc), Box::new(p0), Box::new(p1)];
    let worker =
        Worker::new(WorkerConfig::new("pipeline-test"), FramePool::new(256).unwrap(), ports, pipe).unwrap();
    let handle = worker.spawn().unwrap();
    let sent = from_pod(0, REMOTE_POD, 64, 10);
    assert!(pod0.inject(&sent));
    assert!(pod0.inject(&from_pod(0, Ipv4Addr::new(198, 19, 9, 9), 64, 10)));
    assert!(up.inject(&vxlan_from_b(&inner_to_pod1(), Vni::FLANNEL, 8472)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (up.sent() < 1 || pod1.sent() < 1 || handle.counters().snapshot().dropped(DropReason::NoRoute) < 1)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let worker = handle.stop().unwrap();
    let snap = worker.counters().snapshot();
    assert_eq!(snap.dropped(DropReason::NoRoute), 1);
    assert_eq!(DropReason::NoRoute.name(), "no_route");
    assert_eq!(snap.port("uplink").unwrap().tx_packets, 1);
    assert_eq!(snap.port("pod1").unwrap().tx_packets, 1);
    assert_eq!(up.take_sent().unwrap().len(), sent.len() + 50);
    let c = counters.snapshot();
    assert_eq!((c.by_name("vxlan_encap"), c.by_name("vxlan_decap")), (Some(1), Some(1)));
}

#[test]
fn a_single_frame_through_process_matches_the_batch_path() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let frames = [
        from_pod(0, REMOTE_POD, 64, 20),
        from_pod(0, pod(1).0, 64, 20),
        vxlan_from_b(&inner_to_pod1(), Vni::FLANNEL, 8472),
        from_pod(0, Ipv4Addr::new(198, 19, 9, 9), 64, 10),
    ];
    for (port, frame) in
        [(pod(0).2, &frames[0]), (pod(0).2, &frames[1]), (UPLINK, &frames[2]), (pod(0).2, &frames[3])]
    {
        let batch = n.run(port, frame);
        let mut f = n.pool.copy_in(frame).unwrap();
        let v = n.pipe.process(port, &mut n.pool.view(&mut f));
        let single = match v {
            Verdict::Tx(p) => Out::Tx(p, n.pool.data(&f).to_vec()),
            Verdict::Drop(r) => Out::Drop(r.name()),
            Verdict::Handoff { .. } => panic!("no handoff"),
        };
        n.pool.free(f);
        // The outer IPv4 id is a per-worker counter: compare everything else.
        let strip = |o: Out| match o {
            Out::Tx(p, mut b) if p == UPLINK => {
                b[18..20].fill(0);
                b[24..26].fill(0);
                Out::Tx(p, b)
            }
            o => o,
        };
        assert_eq!(strip(single), strip(batch));
    }
}

#[test]
fn an_expired_host_gw_arrival_gets_time_exceeded_back_to_the_sending_node() {
    let mut n = Node::new(Backend::HostGw, false);
    let sent = udp_frame(B_MAC, A_MAC, REMOTE_POD, pod(2).0, 5000, 1, false, 10);
    let got = n.run(UPLINK, &sent).tx(UPLINK);
    assert_eq!(macs(&got), (B_MAC, A_MAC));
    let reply = ip(&got, 14);
    assert_eq!((reply.src_addr(), reply.dst_addr()), (A_GATEWAY, REMOTE_POD));
    assert_eq!(Icmpv4Packet::new_checked(reply.payload()).unwrap().msg_type(), 11);
}

#[test]
fn a_frame_without_headroom_for_the_outer_headers_is_dropped_as_encap_failed() {
    let mut n = Node::new(Backend::FLANNEL_VXLAN, false);
    let sent = from_pod(0, REMOTE_POD, 64, 20);
    let mut f = n.pool.copy_in(&sent).unwrap();
    {
        // Move the frame to 10 bytes from the chunk start: VXLAN needs 50.
        let mut v = n.pool.view(&mut f);
        let off = v.offset();
        v.chunk_mut().copy_within(off..off + sent.len(), 10);
        assert!(v.set_bounds(10, sent.len()));
    }
    let mut rx = vec![f];
    let mut verdicts = Vec::new();
    n.pipe.process_batch(pod(0).2, &mut n.pool, &mut rx, &mut verdicts);
    assert_eq!(verdicts, vec![Verdict::Drop(DropReason::EncapFailed)]);
    assert_eq!(DropReason::EncapFailed.name(), "encap_failed");
    n.pool.free(rx.pop().unwrap());
}
