//! Network policy in the pipeline, on in-memory frames of the sample node A
//! (engine/src/pipeline/sample.rs): new connections refused by ingress and egress rules and
//! counted by name, replies and ICMP errors of allowed connections passing, ipBlock with except,
//! port ranges, unisolated pods untouched, the node's own traffic always allowed, and frames
//! handed in by another worker checked by the pod's worker.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use weft_encap::Vni;
use weft_encap::wire::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use weft_encap::wire::udp::UdpPacket;
use weft_engine::fib::Ipv4Prefix;
use weft_engine::pipeline::sample::*;
use weft_engine::pipeline::{Pipeline, RouteProgrammer};
use weft_engine::policy::{DirectionBuilder, DirectionRules, PodPolicy, PolicySet, PortRange, Ports, proto};
use weft_engine::port::FramePool;
use weft_engine::worker::{FrameProcessor, PortId, Verdict};

const REMOTE_POD: Ipv4Addr = Ipv4Addr::new(198, 19, 2, 7);
const FAR_POD: Ipv4Addr = Ipv4Addr::new(198, 19, 3, 7);

struct Node {
    prog: RouteProgrammer,
    pipe: Pipeline,
    pool: FramePool,
    drops: HashMap<&'static str, u64>,
}

#[derive(Debug, PartialEq, Eq)]
enum Out {
    Tx(PortId),
    Drop(&'static str),
}

impl Node {
    fn new() -> Self {
        let (prog, pipe) = node(Backend::FLANNEL_VXLAN, false, 3).unwrap();
        Node { prog, pipe, pool: FramePool::new(64).unwrap(), drops: HashMap::new() }
    }

    fn with(pods: impl IntoIterator<Item = (u8, PodPolicy)>) -> Self {
        let n = Node::new();
        n.prog.set_policy(PolicySet::new(pods.into_iter().map(|(i, p)| (pod(i).0, p))));
        n
    }

    fn out(&mut self, v: Verdict) -> Out {
        match v {
            Verdict::Tx(p) => Out::Tx(p),
            Verdict::Drop(r) => {
                *self.drops.entry(r.name()).or_default() += 1;
                Out::Drop(r.name())
            }
            Verdict::Handoff { .. } => panic!("node A's pipeline owns its pods"),
        }
    }

    fn run(&mut self, port: PortId, frame: &[u8]) -> Out {
        let mut rx = vec![self.pool.copy_in(frame).unwrap()];
        let mut verdicts = Vec::new();
        self.pipe.process_batch(port, &mut self.pool, &mut rx, &mut verdicts);
        self.pool.free(rx.pop().unwrap());
        self.out(verdicts.pop().unwrap())
    }

    /// `frame` as another worker hands it to the pod on `port` (routed, MACs rewritten).
    fn handed_in(&mut self, port: PortId, frame: &[u8]) -> Out {
        let mut f = self.pool.copy_in(frame).unwrap();
        let v = self.pipe.handed_in(port, &mut self.pool.view(&mut f));
        self.pool.free(f);
        self.out(v)
    }

    fn count(&self, name: &str) -> u64 {
        self.pipe.counters().snapshot().by_name(name).unwrap()
    }

    fn dropped(&self, name: &str) -> u64 {
        self.drops.get(name).copied().unwrap_or(0)
    }
}

/// An Ethernet + IPv4 + UDP frame `src:sport -> dst:dport` as it arrives on the pod port of the
/// pod with address `src`, or (from elsewhere) with any MACs.
fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut f = udp_frame(pod_mac(src), GATEWAY_MAC, src, dst, sport, 64, true, 16);
    let mut u = UdpPacket::new_unchecked(&mut f[34..]);
    u.set_dst_port(dport);
    u.fill_checksum(src, dst);
    f
}

fn pod_mac(ip: Ipv4Addr) -> weft_encap::MacAddr {
    (0..3).map(pod).find(|p| p.0 == ip).map_or(B_VTEP, |p| p.1)
}

/// From a remote pod behind node B (or C), VXLAN-encapsulated by B.
fn from_remote(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    vxlan_from_b(&udp(src, sport, dst, dport), Vni::FLANNEL, 8472)
}

fn udp_ports(ports: impl IntoIterator<Item = (u16, u16)>) -> Ports {
    Ports::ranges(ports.into_iter().map(|(lo, hi)| PortRange { proto: proto::UDP, lo, hi }))
}

fn ingress(rules: DirectionRules) -> PodPolicy {
    PodPolicy { ingress: Some(rules), egress: None }
}

fn egress(rules: DirectionRules) -> PodPolicy {
    PodPolicy { ingress: None, egress: Some(rules) }
}

fn prefix(a: Ipv4Addr, len: u8) -> Ipv4Prefix {
    Ipv4Prefix::new(a, len).unwrap()
}

#[test]
fn default_deny_ingress_drops_new_connections_from_everywhere_and_counts_them() {
    let mut n = Node::with([(1, ingress(DirectionRules::deny_all()))]);
    let (p0, p1) = (pod(0), pod(1));
    assert_eq!(n.run(p0.2, &udp(p0.0, 40000, p1.0, 80)), Out::Drop("policy_denied_ingress"));
    assert_eq!(n.run(UPLINK, &from_remote(REMOTE_POD, 40000, p1.0, 80)), Out::Drop("policy_denied_ingress"));
    assert_eq!(n.dropped("policy_denied_ingress"), 2);
    // Pod 1 is isolated for ingress only: what it opens goes out, and the replies come back.
    assert_eq!(n.run(p1.2, &udp(p1.0, 50000, REMOTE_POD, 53)), Out::Tx(UPLINK));
    assert_eq!(n.run(UPLINK, &from_remote(REMOTE_POD, 53, p1.0, 50000)), Out::Tx(p1.2));
    assert_eq!(n.run(p1.2, &udp(p1.0, 50001, p0.0, 53)), Out::Tx(p0.2));
    assert_eq!(n.run(p0.2, &udp(p0.0, 53, p1.0, 50001)), Out::Tx(p1.2));
    assert_eq!(n.count("conntrack_new"), 2);
}

#[test]
fn the_reply_of_an_allowed_connection_passes_both_isolated_directions() {
    let mut allow = DirectionBuilder::default();
    allow.peer(pod(0).0, &udp_ports([(80, 80)]));
    let both = PodPolicy { ingress: Some(allow.build()), egress: Some(DirectionRules::deny_all()) };
    let mut n = Node::with([(1, both)]);
    let (p0, p1) = (pod(0), pod(1));
    assert_eq!(n.run(p0.2, &udp(p0.0, 40000, p1.0, 80)), Out::Tx(p1.2));
    assert_eq!(n.run(p1.2, &udp(p1.0, 80, p0.0, 40000)), Out::Tx(p0.2), "the reply");
    assert_eq!(n.run(p0.2, &udp(p0.0, 40000, p1.0, 80)), Out::Tx(p1.2), "and the next packet");
    // Pod 1 opening anything is an egress refusal; another port from pod 0 an ingress refusal.
    assert_eq!(n.run(p1.2, &udp(p1.0, 80, p0.0, 40001)), Out::Drop("policy_denied_egress"));
    assert_eq!(n.run(p0.2, &udp(p0.0, 40000, p1.0, 81)), Out::Drop("policy_denied_ingress"));
    assert_eq!(n.count("conntrack_new"), 1);
}

#[test]
fn an_ip_block_admits_its_cidr_but_not_its_exceptions() {
    let mut b = DirectionBuilder::default();
    b.block(
        prefix(Ipv4Addr::new(198, 19, 0, 0), 16),
        &[prefix(Ipv4Addr::new(198, 19, 3, 0), 24)],
        &Ports::All,
    );
    let mut n = Node::with([(1, ingress(b.build()))]);
    let p1 = pod(1);
    assert_eq!(n.run(UPLINK, &from_remote(REMOTE_POD, 40000, p1.0, 80)), Out::Tx(p1.2));
    assert_eq!(n.run(UPLINK, &from_remote(FAR_POD, 40000, p1.0, 80)), Out::Drop("policy_denied_ingress"));
    assert_eq!(n.run(pod(0).2, &udp(pod(0).0, 40000, p1.0, 80)), Out::Tx(p1.2));
}

#[test]
fn egress_to_a_port_range_allows_the_range_and_nothing_else() {
    let mut b = DirectionBuilder::default();
    b.any_peer(&udp_ports([(5000, 5300)]));
    let mut n = Node::with([(0, egress(b.build()))]);
    let p0 = pod(0);
    for (port, want) in [
        (5000, Out::Tx(UPLINK)),
        (5300, Out::Tx(UPLINK)),
        (4999, Out::Drop("policy_denied_egress")),
        (5301, Out::Drop("policy_denied_egress")),
    ] {
        assert_eq!(n.run(p0.2, &udp(p0.0, 40000, REMOTE_POD, port)), want, "port {port}");
    }
    assert_eq!(n.dropped("policy_denied_egress"), 2);
}

#[test]
fn pods_no_policy_selects_are_unaffected_and_untracked() {
    let mut n = Node::with([(
        1,
        PodPolicy { ingress: Some(DirectionRules::deny_all()), egress: Some(DirectionRules::deny_all()) },
    )]);
    let (p0, p2) = (pod(0), pod(2));
    assert_eq!(n.run(p0.2, &udp(p0.0, 40000, p2.0, 80)), Out::Tx(p2.2));
    assert_eq!(n.run(p2.2, &udp(p2.0, 80, p0.0, 40000)), Out::Tx(p0.2));
    assert_eq!(n.run(UPLINK, &from_remote(REMOTE_POD, 1, p0.0, 2)), Out::Tx(p0.2));
    assert_eq!(n.count("conntrack_new"), 0);
    // An empty set turns enforcement off entirely.
    n.prog.set_policy(PolicySet::default());
    assert_eq!(n.run(pod(1).2, &udp(pod(1).0, 1, p0.0, 2)), Out::Tx(p0.2));
}

#[test]
fn traffic_between_a_pod_and_its_own_node_always_passes() {
    let deny =
        PodPolicy { ingress: Some(DirectionRules::deny_all()), egress: Some(DirectionRules::deny_all()) };
    let mut n = Node::with([(1, deny)]);
    let p1 = pod(1);
    // A kubelet probe from the node's host-link address, and the pod's answer.
    let probe = udp_frame(HOST_MAC, EXC_MAC, A_HOST, p1.0, 33000, 64, true, 8);
    assert_eq!(n.run(EXCEPTION, &probe), Out::Tx(p1.2));
    assert_eq!(n.run(p1.2, &udp(p1.0, 80, A_HOST, 33000)), Out::Tx(EXCEPTION));
    // The node's PublicIP too.
    let from_public = udp_frame(HOST_MAC, EXC_MAC, A_IP, p1.0, 33001, 64, true, 8);
    assert_eq!(n.run(EXCEPTION, &from_public), Out::Tx(p1.2));
    // Anyone else through the host link is checked.
    let other = udp_frame(HOST_MAC, EXC_MAC, Ipv4Addr::new(198, 18, 9, 9), p1.0, 33002, 64, true, 8);
    assert_eq!(n.run(EXCEPTION, &other), Out::Drop("policy_denied_ingress"));
    assert_eq!(n.count("conntrack_new"), 0);
}

/// An ICMP destination unreachable from `from` to `to` quoting `quoted` (an Ethernet frame).
fn icmp_unreachable(from: Ipv4Addr, to: Ipv4Addr, quoted: &[u8]) -> Vec<u8> {
    let q = &quoted[14..14 + 28];
    let mut f = vec![0u8; 14 + 20 + 8 + q.len()];
    f[..14].copy_from_slice(&quoted[..14]);
    Ipv4Repr {
        src: from,
        dst: to,
        protocol: IpProtocol::ICMP,
        payload_len: (8 + q.len()) as u16,
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: false,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
    f[34..42].copy_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
    f[42..].copy_from_slice(q);
    f
}

#[test]
fn icmp_errors_about_a_tracked_connection_pass_and_others_do_not() {
    let mut n = Node::with([(1, ingress(DirectionRules::deny_all()))]);
    let p1 = pod(1);
    let sent = udp(p1.0, 50000, REMOTE_POD, 53);
    assert_eq!(n.run(p1.2, &sent), Out::Tx(UPLINK));
    let err = icmp_unreachable(REMOTE_POD, p1.0, &sent);
    assert_eq!(n.run(UPLINK, &vxlan_from_b(&err, Vni::FLANNEL, 8472)), Out::Tx(p1.2));
    let unrelated = icmp_unreachable(REMOTE_POD, p1.0, &udp(p1.0, 50001, REMOTE_POD, 53));
    assert_eq!(
        n.run(UPLINK, &vxlan_from_b(&unrelated, Vni::FLANNEL, 8472)),
        Out::Drop("policy_denied_ingress")
    );
}

#[test]
fn frames_handed_in_by_another_worker_are_checked_and_tracked_by_the_pods_worker() {
    let mut allow = DirectionBuilder::default();
    allow.peer(REMOTE_POD, &udp_ports([(80, 80)]));
    let mut n = Node::with([(
        1,
        PodPolicy { ingress: Some(allow.build()), egress: Some(DirectionRules::deny_all()) },
    )]);
    let p1 = pod(1);
    // As the worker of another uplink queue hands them over: routed, for pod 1's port.
    assert_eq!(n.handed_in(p1.2, &udp(FAR_POD, 40000, p1.0, 80)), Out::Drop("policy_denied_ingress"));
    assert_eq!(n.handed_in(p1.2, &udp(REMOTE_POD, 40000, p1.0, 80)), Out::Tx(p1.2));
    // The reply leaves through pod 1's worker, which tracked the connection.
    assert_eq!(n.run(p1.2, &udp(p1.0, 80, REMOTE_POD, 40000)), Out::Tx(UPLINK));
    assert_eq!(n.run(p1.2, &udp(p1.0, 80, REMOTE_POD, 40001)), Out::Drop("policy_denied_egress"));
}

#[test]
fn a_full_connection_table_counts_its_evictions() {
    let mut n = Node::with([(1, ingress(DirectionRules::deny_all()))]);
    let p1 = pod(1);
    // More connections than the table holds: every bucket fills and then evicts.
    let flows = weft_engine::policy::CONNTRACK_CAPACITY as u32 + 4096;
    for i in 0..flows {
        let dst = Ipv4Addr::from(u32::from(REMOTE_POD) + (i >> 16));
        assert_eq!(n.run(p1.2, &udp(p1.0, i as u16, dst, 53)), Out::Tx(UPLINK));
    }
    assert_eq!(n.count("conntrack_new"), u64::from(flows));
    assert!(n.count("conntrack_evictions") >= 4096, "{}", n.count("conntrack_evictions"));
}
