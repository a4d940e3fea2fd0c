//! Wire compatibility with the Linux kernel's VXLAN device as flanneld sets it up: the frame our
//! pipeline emits for a pod's packet must equal, byte for byte, the frame `flannel.1` emitted
//! for the same packet, except the fields the kernel picks per packet.
//!
//! The fixtures were captured by `tests/fixtures/kernel_vxlan.sh` (run it as root to redo
//! them): `pod_frame.pcap` is the pod's ICMP echo request as it left the pod,
//! `kernel_vxlan_frame.pcap` the outer frame the kernel sent for it on the uplink. Our node is
//! configured like the kernel's: same MACs and addresses, VNI 1, port 8472, outer TTL 64, no
//! DF, TOS 0, and a UDP checksum (the kernel's device computes one; on the veth the capture
//! holds only the pseudo-header part, left for offload to finish).
//!
//! Masked, and why:
//! - outer IPv4 identification (bytes 18..20): the kernel draws it per packet; we use a
//!   per-worker counter. The outer IPv4 header checksum (24..26) covers it, so it is masked
//!   too, and checked separately to verify on our frame.
//! - UDP source port (34..36): the kernel hashes the flow with its own random seed; ours is
//!   checked to lie in the same range (Linux's 32768..=60999).
//! - UDP checksum (40..42): depends on the source port, and the capture holds the partial
//!   (offload) value; ours is checked to verify in full.

use std::net::Ipv4Addr;
use std::sync::Arc;

use weft_encap::checksum;
use weft_encap::wire::ipv4::Ipv4Packet;
use weft_encap::wire::udp::UdpPacket;
use weft_encap::{MacAddr, UdpChecksumPolicy};
use weft_engine::fib::{FibConfig, FibWriter};
use weft_engine::neighbour::NeighbourTable;
use weft_engine::pipeline::sample::*;
use weft_engine::pipeline::{LocalPod, Pipeline, RemoteRoute, RouteProgrammer, RouteUpdate};
use weft_engine::port::FramePool;
use weft_engine::worker::{FrameProcessor, Verdict, WorkerId};

/// The first packet of a classic pcap file (little-endian, microsecond).
fn first_packet(pcap: &[u8]) -> &[u8] {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let rec = &pcap[24..];
    let len = u32::from_le_bytes(rec[8..12].try_into().unwrap()) as usize;
    &rec[16..16 + len]
}

#[test]
fn our_vxlan_frame_equals_the_kernel_flannel_1_frame_but_for_per_packet_fields() {
    let pod_frame = first_packet(include_bytes!("fixtures/pod_frame.pcap"));
    let kernel = first_packet(include_bytes!("fixtures/kernel_vxlan_frame.pcap"));

    let mut node = node_config(false, prefix(CLUSTER, 16));
    node.tunnel.udp_checksum = true;
    let fib = FibWriter::new(FibConfig { tbl8_groups: 16, ..FibConfig::default() });
    let mut prog = RouteProgrammer::new(fib, node, Arc::new(NeighbourTable::new(16, 16))).unwrap();
    let (pod_ip, pod_mac, pod_port) = pod(0);
    assert_eq!((pod_ip, pod_mac), (Ipv4Addr::new(198, 19, 1, 2), MacAddr([2, 0, 0xc6, 0x13, 1, 2])));
    prog.apply(&[
        RouteUpdate::Pod(LocalPod { ip: pod_ip, worker: WorkerId(0), port: pod_port, mac: pod_mac }),
        RouteUpdate::Remote(RemoteRoute {
            prefix: prefix(B_SUBNET, 24),
            via: via(Backend::FLANNEL_VXLAN, B_IP, B_VTEP),
        }),
    ])
    .unwrap();
    prog.set_neighbour(B_IP, Some(B_MAC)).unwrap();
    let mut pipe = Pipeline::new(pipeline_config(Backend::FLANNEL_VXLAN, 1), prog.handles());

    let mut pool = FramePool::new(4).unwrap();
    let mut rx = vec![pool.copy_in(pod_frame).unwrap()];
    let mut verdicts = Vec::new();
    pipe.process_batch(pod_port, &mut pool, &mut rx, &mut verdicts);
    assert_eq!(verdicts, vec![Verdict::Tx(UPLINK)]);
    let ours = pool.data(&rx[0]).to_vec();

    // Our per-packet fields are valid on their own.
    let ip = Ipv4Packet::new_checked(&ours[14..]).unwrap();
    assert!(ip.verify_checksum());
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert!((32768..=60999).contains(&udp.src_port()));
    assert_ne!(udp.checksum(), 0);
    udp.check_checksum(A_IP, B_IP, UdpChecksumPolicy::Require).unwrap();
    // The kernel's capture: the partial checksum is the pseudo-header sum (offload pending).
    let kip = Ipv4Packet::new_checked(&kernel[14..]).unwrap();
    let kudp = UdpPacket::new_checked(kip.payload()).unwrap();
    let pseudo = checksum::pseudo_header(A_IP, B_IP, 17, kudp.len());
    assert_eq!(kudp.checksum(), checksum::fold(pseudo), "capture holds the offload partial sum");

    let mask = |f: &[u8]| {
        let mut f = f.to_vec();
        for r in [18..20, 24..26, 34..36, 40..42] {
            f[r].fill(0);
        }
        f
    };
    assert_eq!(ours.len(), kernel.len());
    assert_eq!(mask(&ours), mask(kernel), "\nours:   {:02x?}\nkernel: {:02x?}", ours, kernel);
}
