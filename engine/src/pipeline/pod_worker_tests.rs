//! Pods owned by another worker (hand-off to the owner) and pods without a MAC
//! (learning), on the sample node A: first one pipeline call at a time, then two real workers
//! over in-memory ports joined by the hand-off mesh.

use std::net::Ipv4Addr;
use std::time::Duration;

use weft_testnet::wait_for;

use weft_encap::MacAddr;
use weft_encap::wire::ethernet::EthernetFrame;
use weft_encap::wire::ipv4::Ipv4Packet;

use super::sample::*;
use super::{LearnedMac, LocalPod, Pipeline, PipelineConfig, RouteProgrammer, RouteUpdate, UNLEARNED_MAC};
use crate::port::{FramePool, MemPort, Port};
use crate::worker::{
    DropReason, FrameProcessor, HandoffEndpoint, IdleStrategy, PortId, Verdict, Worker, WorkerConfig,
    WorkerHandle, WorkerId, handoff_mesh,
};

const POD_B: Ipv4Addr = Ipv4Addr::new(198, 19, 2, 5);

/// Node A's pipeline for an uplink queue >= 1: no ports but the uplink, pods on worker 0.
fn queue_worker_pipeline(prog: &RouteProgrammer) -> Pipeline {
    let cfg = PipelineConfig {
        exception: None,
        pods: Vec::new(),
        worker: WorkerId(1),
        host_worker: Some(WorkerId(0)),
        ..pipeline_config(Backend::HostGw, 0)
    };
    Pipeline::new(cfg, prog.handles())
}

/// What node B sends pod `i` over host-gw.
fn to_pod(i: u8, ttl: u8) -> Vec<u8> {
    let (ip, _, _) = pod(i);
    udp_frame(B_MAC, A_MAC, POD_B, ip, 40000, ttl, true, 32)
}

/// Runs one frame through `f` and returns the verdict and the bytes.
fn one(
    pool: &mut FramePool,
    frame: &[u8],
    f: impl FnOnce(&mut crate::port::FrameMut<'_>) -> Verdict,
) -> (Verdict, Vec<u8>) {
    let mut fr = pool.copy_in(frame).expect("a free frame");
    let v = f(&mut pool.view(&mut fr));
    let bytes = pool.data(&fr).to_vec();
    pool.free(fr);
    (v, bytes)
}

fn macs(bytes: &[u8]) -> (MacAddr, MacAddr) {
    let eth = EthernetFrame::new_unchecked(bytes);
    (eth.dst_addr(), eth.src_addr())
}

#[test]
fn a_frame_for_another_workers_pod_is_handed_off_and_its_owner_sets_the_gateway_mac() {
    let (prog, mut owner) = node(Backend::HostGw, false, 2).unwrap();
    let mut queue1 = queue_worker_pipeline(&prog);
    let mut pool = FramePool::new(64).unwrap();
    let (ip0, mac0, port0) = pod(0);
    let (_, _, port1) = pod(1);

    let (v, bytes) = one(&mut pool, &to_pod(0, 64), |f| queue1.process(UPLINK, f));
    assert_eq!(v, Verdict::Handoff { worker: WorkerId(0), port: port0 });
    assert_eq!(macs(&bytes).0, mac0, "addressed to the pod on the handing worker");
    let ip = Ipv4Packet::new_unchecked(&bytes[14..]);
    assert_eq!((ip.ttl(), ip.dst_addr(), ip.verify_checksum()), (63, ip0, true));
    assert_eq!(queue1.counters().snapshot().by_name("pod_handoff"), Some(1));
    assert_eq!(queue1.counters().snapshot().by_name("host_gw_arrival"), Some(1));

    let (v, out) = one(&mut pool, &bytes, |f| owner.handed_in(port0, f));
    assert_eq!(v, Verdict::Tx(port0));
    assert_eq!(macs(&out), (mac0, GATEWAY_MAC), "the owner's port's gateway MAC");
    assert_eq!(&out[12..], &bytes[12..], "nothing else changes");

    // Ports renumbered while the frame was in flight: not delivered to the wrong pod.
    for port in [port1, UPLINK, PortId(40)] {
        let (v, _) = one(&mut pool, &bytes, |f| owner.handed_in(port, f));
        assert_eq!(v, Verdict::Drop(DropReason::HandoffStale), "{port:?}");
    }
    // TTL 1 on a queue worker: ICMP time exceeded back out of the uplink, no hand-off.
    let (v, _) = one(&mut pool, &to_pod(0, 1), |f| queue1.process(UPLINK, f));
    assert_eq!(v, Verdict::Tx(UPLINK));
}

#[test]
fn a_frame_for_the_host_on_a_queue_worker_is_handed_to_the_owner_of_the_host_link() {
    let (prog, mut owner) = node(Backend::HostGw, false, 1).unwrap();
    let exception = owner.config().exception;
    let cfg = PipelineConfig {
        exception,
        pods: Vec::new(),
        worker: WorkerId(1),
        host_worker: Some(WorkerId(0)),
        ..pipeline_config(Backend::HostGw, 0)
    };
    let mut queue1 = Pipeline::new(cfg, prog.handles());
    let mut pool = FramePool::new(8).unwrap();
    let sent = udp_frame(B_MAC, A_MAC, POD_B, A_HOST, 40000, 64, true, 32);
    let (v, bytes) = one(&mut pool, &sent, |f| queue1.process(UPLINK, f));
    assert_eq!(v, Verdict::Handoff { worker: WorkerId(0), port: EXCEPTION });
    assert_eq!(queue1.counters().snapshot().by_name("exception_node"), Some(1));
    let (v, out) = one(&mut pool, &bytes, |f| owner.handed_in(EXCEPTION, f));
    assert_eq!(v, Verdict::Tx(EXCEPTION));
    assert_eq!(macs(&out), (HOST_MAC, EXC_MAC));
    assert_eq!(&out[12..], &sent[12..], "the kernel gets the packet as it was sent");
    // A queue worker never treats its own port 1 as the host link.
    let (v, _) = one(&mut pool, &sent, |f| queue1.process(EXCEPTION, f));
    assert_eq!(v, Verdict::Drop(DropReason::UnknownPort));
}

#[test]
fn a_frame_for_a_pod_port_this_worker_owns_but_lacks_is_no_such_port() {
    let (prog, _) = node(Backend::HostGw, false, 1).unwrap();
    let cfg = PipelineConfig { pods: Vec::new(), ..pipeline_config(Backend::HostGw, 0) };
    let mut p = Pipeline::new(cfg, prog.handles());
    let mut pool = FramePool::new(8).unwrap();
    let (v, _) = one(&mut pool, &to_pod(0, 64), |f| p.process(UPLINK, f));
    assert_eq!(v, Verdict::Drop(DropReason::NoSuchPort));
}

/// Node A whose pod 0 came without a MAC (config and FIB).
fn node_with_macless_pod() -> (RouteProgrammer, Pipeline) {
    let (mut prog, _) = node(Backend::HostGw, false, 2).unwrap();
    let (ip0, _, port0) = pod(0);
    prog.apply(&[RouteUpdate::Pod(LocalPod {
        ip: ip0,
        worker: WorkerId(0),
        port: port0,
        mac: UNLEARNED_MAC,
    })])
    .unwrap();
    let mut cfg = pipeline_config(Backend::HostGw, 2);
    cfg.pods[0].1.mac = UNLEARNED_MAC;
    let p = Pipeline::new(cfg, prog.handles());
    (prog, p)
}

#[test]
fn a_pod_without_a_mac_is_unknown_until_its_gateway_arp_teaches_it_once() {
    let (mut prog, mut p) = node_with_macless_pod();
    let mut pool = FramePool::new(64).unwrap();
    let (ip0, mac0, port0) = pod(0);
    let learned = prog.learned().clone();

    let (v, _) = one(&mut pool, &to_pod(0, 64), |f| p.process(UPLINK, f));
    assert_eq!(v, Verdict::Drop(DropReason::PodMacUnknown));

    // A spoofed ARP (another sender IP) and a broadcast source teach nothing.
    let (v, _) =
        one(&mut pool, &arp_request(mac0, Ipv4Addr::new(198, 19, 1, 99), A_GATEWAY), |f| p.process(port0, f));
    assert_eq!(v, Verdict::Drop(DropReason::PodSpoofedSource));
    let (v, _) = one(&mut pool, &arp_request(MacAddr::BROADCAST, ip0, A_GATEWAY), |f| p.process(port0, f));
    assert_eq!(v, Verdict::Tx(port0), "answered, but not learned from");
    assert!(learned.is_empty());

    // The gateway ARP, then a data frame: one event.
    let (v, _) = one(&mut pool, &arp_request(mac0, ip0, A_GATEWAY), |f| p.process(port0, f));
    assert_eq!(v, Verdict::Tx(port0));
    let (v, _) = one(&mut pool, &from_pod(0, POD_B, 64, 16), |f| p.process(port0, f));
    assert!(matches!(v, Verdict::Tx(_) | Verdict::Drop(DropReason::NeighbourUnresolved)), "{v:?}");
    assert_eq!(learned.pop(), Some(LearnedMac { ip: ip0, mac: mac0 }));
    assert_eq!(learned.pop(), None, "learned once");
    assert_eq!(p.counters().snapshot().by_name("pod_mac_learned"), Some(1));

    // The control side programs the MAC: the pod is reachable.
    prog.apply(&[RouteUpdate::Pod(LocalPod { ip: ip0, worker: WorkerId(0), port: port0, mac: mac0 })])
        .unwrap();
    let (v, out) = one(&mut pool, &to_pod(0, 64), |f| p.process(UPLINK, f));
    assert_eq!(v, Verdict::Tx(port0));
    assert_eq!(macs(&out), (mac0, GATEWAY_MAC));
}

#[test]
fn a_pod_with_a_mac_never_queues_learn_events() {
    let (prog, mut p) = node(Backend::HostGw, false, 1).unwrap();
    let mut pool = FramePool::new(8).unwrap();
    let (ip0, mac0, port0) = pod(0);
    let (v, _) = one(&mut pool, &arp_request(mac0, ip0, A_GATEWAY), |f| p.process(port0, f));
    assert_eq!(v, Verdict::Tx(port0));
    assert!(prog.learned().is_empty());
}

/// A busy-polling worker in the hand-off mesh, started.
fn start(
    name: &str,
    frames: u32,
    ports: Vec<Box<dyn Port>>,
    pipeline: Pipeline,
    endpoint: HandoffEndpoint,
) -> WorkerHandle<Pipeline> {
    let mut cfg = WorkerConfig::new(name);
    cfg.idle = IdleStrategy::BusyPoll;
    let worker = Worker::new(cfg, FramePool::new(frames).unwrap(), ports, pipeline).unwrap();
    worker.with_handoff(endpoint).spawn().unwrap()
}

#[test]
fn two_workers_deliver_uplink_queue_1_frames_through_the_pod_workers_port() {
    let (prog, owner) = node(Backend::HostGw, false, 2).unwrap();
    let mut mesh = handoff_mesh(2, 64).into_iter();
    // Worker 0: uplink queue 0, the exception port, pods 0 and 1 (sample port layout).
    let names = ["q0", "exc", "pod0", "pod1"];
    let mut handles = Vec::new();
    let mut ports: Vec<Box<dyn Port>> = Vec::new();
    for n in names {
        let (p, h) = MemPort::queue(n, 256);
        ports.push(Box::new(p));
        handles.push(h);
    }
    let w0 = start("wx-pw0", 512, ports, owner, mesh.next().unwrap());
    let (q1, h_q1) = MemPort::queue("q1", 256);
    let w1 = start("wx-pw1", 256, vec![Box::new(q1)], queue_worker_pipeline(&prog), mesh.next().unwrap());
    for i in 0..40u8 {
        assert!(h_q1.inject(&to_pod(i % 2, 64)));
    }
    wait_for("40 frames out of the pod ports", Duration::from_secs(10), || {
        handles[2].sent() + handles[3].sent() == 40
    });
    let (c0, c1) = (w0.stop().unwrap().counters().snapshot(), w1.stop().unwrap().counters().snapshot());
    assert_eq!((c1.worker.handoff_out, c0.worker.handoff_in), (40, 40));
    assert_eq!(c0.dropped_total() + c1.dropped_total(), 0);
    for (i, h) in handles[2..].iter().enumerate() {
        let (_, mac, _) = pod(i as u8);
        assert_eq!(h.sent(), 20);
        while let Some(f) = h.take_sent() {
            assert_eq!(macs(&f), (mac, GATEWAY_MAC));
        }
    }
}

#[test]
fn a_full_pod_worker_ring_is_a_counted_drop_on_the_handing_worker() {
    let (prog, _) = node(Backend::HostGw, false, 1).unwrap();
    // Worker 0 is in the mesh but never runs: its 8-frame inbox fills.
    let mut mesh = handoff_mesh(2, 8).into_iter().skip(1);
    let (q1, h_q1) = MemPort::queue("q1", 256);
    let w1 = start("wx-pwf", 256, vec![Box::new(q1)], queue_worker_pipeline(&prog), mesh.next().unwrap());
    for _ in 0..30 {
        assert!(h_q1.inject(&to_pod(0, 64)));
    }
    wait_for("30 frames received", Duration::from_secs(10), || {
        w1.counters().snapshot().ports[0].rx_packets == 30
    });
    let c = w1.stop().unwrap().counters().snapshot();
    assert_eq!(c.worker.handoff_out, 8);
    assert_eq!(c.dropped(DropReason::HandoffFull), 22);
}

#[test]
fn a_pod_owned_by_worker_1_sends_out_of_its_own_uplink_queue_and_its_frames_cross_to_and_from_worker_0() {
    let (mut prog, mut w0) = node(Backend::HostGw, false, 2).unwrap();
    // Pod 1 moves to worker 1's port 1; pod 0 stays on worker 0.
    let (ip0, mac0, port0) = pod(0);
    let (ip1, mac1, _) = pod(1);
    let on_w1 = PortId(1);
    prog.apply(&[RouteUpdate::Pod(LocalPod { ip: ip1, worker: WorkerId(1), port: on_w1, mac: mac1 })])
        .unwrap();
    let exception = w0.config().exception;
    let cfg = PipelineConfig {
        exception,
        pods: vec![(on_w1, super::PodPort { ip: ip1, mac: mac1, gateway_mac: GATEWAY_MAC })],
        worker: WorkerId(1),
        host_worker: Some(WorkerId(0)),
        ..pipeline_config(Backend::HostGw, 0)
    };
    let mut w1 = Pipeline::new(cfg, prog.handles());
    let mut pool = FramePool::new(64).unwrap();
    let from_pod1 = |dst| udp_frame(mac1, GATEWAY_MAC, ip1, dst, 40000, 64, true, 32);

    // Pod 1 -> pod 0: handed to worker 0, which sends it out of pod 0's port.
    let (v, bytes) = one(&mut pool, &from_pod1(ip0), |f| w1.process(on_w1, f));
    assert_eq!(v, Verdict::Handoff { worker: WorkerId(0), port: port0 });
    let (v, out) = one(&mut pool, &bytes, |f| w0.handed_in(port0, f));
    assert_eq!((v, macs(&out)), (Verdict::Tx(port0), (mac0, GATEWAY_MAC)));

    // Pod 1 -> node B: out of worker 1's own uplink queue.
    let (v, bytes) = one(&mut pool, &from_pod1(POD_B), |f| w1.process(on_w1, f));
    assert_eq!(v, Verdict::Tx(UPLINK));
    assert_eq!(macs(&bytes).1, A_MAC);

    // Pod 1 -> the node's host address: handed to worker 0, which owns the host link.
    let (v, _) = one(&mut pool, &from_pod1(A_HOST), |f| w1.process(on_w1, f));
    assert_eq!(v, Verdict::Handoff { worker: WorkerId(0), port: EXCEPTION });

    // Node B -> pod 1 arriving on worker 0's uplink queue: handed to worker 1.
    let to_pod1 = udp_frame(B_MAC, A_MAC, POD_B, ip1, 40000, 64, true, 32);
    let (v, bytes) = one(&mut pool, &to_pod1, |f| w0.process(UPLINK, f));
    assert_eq!(v, Verdict::Handoff { worker: WorkerId(1), port: on_w1 });
    let (v, out) = one(&mut pool, &bytes, |f| w1.handed_in(on_w1, f));
    assert_eq!((v, macs(&out)), (Verdict::Tx(on_w1), (mac1, GATEWAY_MAC)));
}
