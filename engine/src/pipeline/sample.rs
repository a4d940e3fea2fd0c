//! A sample two-node cluster and frame builders shared by the pipeline's tests, fuzz target and
//! `weft-bench core`: the same addresses (RFC 2544: underlay 198.18.0.0/24, pods 198.19.0.0/16)
//! and the same frames everywhere, so a failure in one reproduces in the others.
//!
//! Node A is "us": uplink on port 0, exception port 1, pods on ports 2.. with IPs
//! 198.19.1.2.. . Node B (198.18.0.2, subnet 198.19.2.0/24) and node C (198.18.5.3, off our
//! uplink's subnet, behind the underlay gateway 198.18.0.254) are remote.

use std::net::Ipv4Addr;
use std::sync::Arc;

use weft_encap::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use weft_encap::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr};
use weft_encap::wire::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use weft_encap::wire::udp::{UdpPacket, UdpRepr};
use weft_encap::{
    IpipParams, IpipTemplate, MacAddr, Span, UdpChecksumPolicy, Vni, VxlanDecapConfig, VxlanParams,
    VxlanTemplate,
};

use super::{
    ExceptionPort, IcmpRateLimit, LocalPod, NodeConfig, Pipeline, PipelineConfig, PodPort, ProgramError,
    RemoteRoute, RouteProgrammer, RouteUpdate, TunnelOptions, Via,
};
use crate::fib::{FibConfig, FibWriter, Ipv4Prefix};
use crate::neighbour::NeighbourTable;
use crate::worker::{PortId, WorkerId};

/// The uplink's port.
pub const UPLINK: PortId = PortId(0);
/// The exception port.
pub const EXCEPTION: PortId = PortId(1);
/// The first pod's port.
pub const FIRST_POD: u16 = 2;

/// Our uplink MAC.
pub const A_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x12, 0, 1]);
/// Our PublicIP.
pub const A_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Our VtepMAC.
pub const A_VTEP: MacAddr = MacAddr([0x0e, 0, 0, 0, 1, 0]);
/// Our pod subnet.
pub const A_SUBNET: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 0);
/// Our pods' gateway (the subnet's first address).
pub const A_GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);
/// The MAC weft answers pods' ARP with.
pub const GATEWAY_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x13, 1, 1]);
/// Our MAC on the exception veth, and the host end's.
pub const EXC_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x13, 1, 0xfe]);
/// The host end of the exception veth.
pub const HOST_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x13, 1, 0xff]);

/// The node's address on the host link (the subnet's .0, as flannel gives flannel.1).
pub const A_HOST: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 0);

/// Node B: on our uplink's subnet.
pub const B_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Node B's uplink MAC.
pub const B_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x12, 0, 2]);
/// Node B's VtepMAC.
pub const B_VTEP: MacAddr = MacAddr([0x0e, 0, 0, 0, 2, 0]);
/// Node B's pod subnet.
pub const B_SUBNET: Ipv4Addr = Ipv4Addr::new(198, 19, 2, 0);
/// Node C: off our uplink's subnet (reached through the underlay gateway).
pub const C_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 5, 3);
/// Node C's VtepMAC.
pub const C_VTEP: MacAddr = MacAddr([0x0e, 0, 0, 0, 3, 0]);
/// Node C's pod subnet.
pub const C_SUBNET: Ipv4Addr = Ipv4Addr::new(198, 19, 3, 0);
/// The underlay gateway and its MAC.
pub const UNDERLAY_GW: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// The underlay gateway's MAC.
pub const UNDERLAY_GW_MAC: MacAddr = MacAddr([2, 0, 0xc6, 0x12, 0, 0xfe]);
/// The cluster network.
pub const CLUSTER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);

/// The backend a sample node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// VXLAN with this VNI and UDP port (flannel 1/8472, Calico 4096/4789).
    Vxlan {
        /// VNI.
        vni: Vni,
        /// UDP port.
        port: u16,
    },
    /// IP-in-IP.
    Ipip,
    /// host-gw.
    HostGw,
}

impl Backend {
    /// flannel's vxlan defaults.
    pub const FLANNEL_VXLAN: Backend = Backend::Vxlan { vni: Vni::FLANNEL, port: 8472 };
    /// Calico's VXLAN defaults.
    pub const CALICO_VXLAN: Backend = Backend::Vxlan { vni: Vni::CALICO, port: 4789 };
}

/// Pod `i`'s (0-based) IP, MAC and port.
pub fn pod(i: u8) -> (Ipv4Addr, MacAddr, PortId) {
    (
        Ipv4Addr::new(198, 19, 1, 2 + i),
        MacAddr([2, 0, 0xc6, 0x13, 1, 2 + i]),
        PortId(FIRST_POD + u16::from(i)),
    )
}

/// A /len prefix (panics on host bits: sample code only).
pub fn prefix(addr: Ipv4Addr, len: u8) -> Ipv4Prefix {
    Ipv4Prefix::new(addr, len).expect("sample prefix")
}

/// How a remote node is reached under `backend`.
pub fn via(backend: Backend, remote: Ipv4Addr, vtep: MacAddr) -> Via {
    match backend {
        Backend::Vxlan { vni, port } => Via::Vxlan { remote, vtep_mac: vtep, vni, port },
        Backend::Ipip => Via::Ipip { remote },
        Backend::HostGw => Via::HostGw { node: remote },
    }
}

/// Node A's programmer configuration.
pub fn node_config(direct_routing: bool, cluster: Ipv4Prefix) -> NodeConfig {
    NodeConfig {
        uplink_mac: A_MAC,
        public_ip: A_IP,
        uplink_subnet: prefix(Ipv4Addr::new(198, 18, 0, 0), 24),
        underlay_gateway: Some(UNDERLAY_GW),
        vtep_mac: A_VTEP,
        direct_routing,
        cluster,
        tunnel: TunnelOptions::default(),
    }
}

/// Node A's pipeline configuration with `pods` pods.
pub fn pipeline_config(backend: Backend, pods: u8) -> PipelineConfig {
    let vxlan = match backend {
        Backend::Vxlan { vni, port } => Some(VxlanDecapConfig {
            local_ip: A_IP,
            port,
            vni,
            udp_checksum: UdpChecksumPolicy::VerifyIfPresent,
        }),
        _ => None,
    };
    PipelineConfig {
        uplink: UPLINK,
        uplink_mac: A_MAC,
        public_ip: A_IP,
        uplink_mtu: 1500,
        node_subnet: prefix(A_SUBNET, 24),
        vxlan,
        ipip: backend == Backend::Ipip,
        wireguard: None,
        exception: Some(ExceptionPort {
            port: EXCEPTION,
            our_mac: EXC_MAC,
            host_mac: HOST_MAC,
            host_ip: Some(A_HOST),
        }),
        pods: (0..pods)
            .map(|i| {
                let (ip, mac, port) = pod(i);
                (port, PodPort { ip, mac, gateway_mac: GATEWAY_MAC })
            })
            .collect(),
        worker: WorkerId(0),
        host_worker: None,
        icmp: IcmpRateLimit::default(),
    }
}

/// Node A with `pods` pods, routes to B and C under `backend`, and the neighbours B and the
/// underlay gateway resolved. Small FIB (64 tbl8 groups) for tests.
pub fn node(
    backend: Backend,
    direct_routing: bool,
    pods: u8,
) -> Result<(RouteProgrammer, Pipeline), ProgramError> {
    let fib = FibWriter::new(FibConfig { tbl8_groups: 64, ..FibConfig::default() });
    let mut prog = RouteProgrammer::new(
        fib,
        node_config(direct_routing, prefix(CLUSTER, 16)),
        Arc::new(NeighbourTable::new(1024, 1024)),
    )?;
    let mut updates: Vec<RouteUpdate> = (0..pods)
        .map(|i| {
            let (ip, mac, port) = pod(i);
            RouteUpdate::Pod(LocalPod { ip, worker: WorkerId(0), port, mac })
        })
        .collect();
    updates.push(RouteUpdate::Remote(RemoteRoute {
        prefix: prefix(B_SUBNET, 24),
        via: via(backend, B_IP, B_VTEP),
    }));
    updates.push(RouteUpdate::Remote(RemoteRoute {
        prefix: prefix(C_SUBNET, 24),
        via: via(backend, C_IP, C_VTEP),
    }));
    prog.apply(&updates)?;
    prog.set_host_address(Some(A_HOST))?;
    prog.set_neighbour(B_IP, Some(B_MAC))?;
    prog.set_neighbour(UNDERLAY_GW, Some(UNDERLAY_GW_MAC))?;
    let pipeline = Pipeline::new(pipeline_config(backend, pods), prog.handles());
    Ok((prog, pipeline))
}

/// An Ethernet + IPv4 + UDP frame with `payload` bytes (a counting pattern).
#[allow(clippy::too_many_arguments)]
pub fn udp_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    ttl: u8,
    dont_frag: bool,
    payload: usize,
) -> Vec<u8> {
    let ip_len = 20 + 8 + payload;
    let mut f = vec![0u8; 14 + ip_len];
    EthernetRepr { src: src_mac, dst: dst_mac, ethertype: EtherType::IPV4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    Ipv4Repr {
        src,
        dst,
        protocol: IpProtocol::UDP,
        payload_len: (8 + payload) as u16,
        ttl,
        tos: 0,
        ident: 0x1234,
        dont_frag,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
    for (i, b) in f[42..].iter_mut().enumerate() {
        *b = i as u8;
    }
    UdpRepr { src_port, dst_port: 5201, payload_len: payload as u16 }
        .emit(&mut UdpPacket::new_unchecked(&mut f[34..]));
    UdpPacket::new_unchecked(&mut f[34..]).fill_checksum(src, dst);
    f
}

/// A UDP frame from pod `i` (0-based) to `dst`, as the pod sends it (to the gateway MAC).
pub fn from_pod(i: u8, dst: Ipv4Addr, ttl: u8, payload: usize) -> Vec<u8> {
    let (ip, mac, _) = pod(i);
    udp_frame(mac, GATEWAY_MAC, ip, dst, 40000 + u16::from(i), ttl, true, payload)
}

/// An ARP request from `sender` for `target`.
pub fn arp_request(sender_mac: MacAddr, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    EthernetRepr { src: sender_mac, dst: MacAddr::BROADCAST, ethertype: EtherType::ARP }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac,
        sender_ip: sender,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    }
    .emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
    f
}

/// What node B sends us: `inner` (an Ethernet frame) VXLAN-encapsulated B -> A.
pub fn vxlan_from_b(inner: &[u8], vni: Vni, port: u16) -> Vec<u8> {
    let mut p = VxlanParams::flannel(B_MAC, A_MAC, B_IP, A_IP, B_VTEP, A_VTEP);
    p.vni = vni;
    p.dst_port = port;
    encap_with(inner, |buf, span| VxlanTemplate::new(p).encap(buf, span, 7).expect("sample vxlan encap"))
}

/// What node B sends us: `inner` IPIP-encapsulated B -> A.
pub fn ipip_from_b(inner: &[u8]) -> Vec<u8> {
    let p = IpipParams {
        outer_src_mac: B_MAC,
        outer_dst_mac: A_MAC,
        src_ip: B_IP,
        dst_ip: A_IP,
        ttl: 64,
        tos: 0,
        dont_frag: true,
    };
    encap_with(inner, |buf, span| IpipTemplate::new(p).encap(buf, span, 7).expect("sample ipip encap"))
}

fn encap_with(inner: &[u8], encap: impl FnOnce(&mut [u8], Span) -> Span) -> Vec<u8> {
    let mut buf = vec![0u8; 128 + inner.len()];
    buf[128..].copy_from_slice(inner);
    let out = encap(&mut buf, Span::new(128, inner.len()));
    buf[out.start..out.end()].to_vec()
}

/// The WireGuard listen port of the sample WireGuard pair.
pub const WG_PORT: u16 = 51820;

/// One node of the sample WireGuard pair: its programmer, its pipeline (one worker: uplink on
/// port 0, one pod on port 2) and its pod.
#[derive(Debug)]
pub struct WgSide {
    /// The route programmer (the peer registered, its MAC resolved).
    pub prog: RouteProgrammer,
    /// The worker's pipeline.
    pub pipeline: Pipeline,
    /// The pod's IP.
    pub pod_ip: Ipv4Addr,
    /// The pod's MAC.
    pub pod_mac: MacAddr,
    /// The node's public key.
    pub public_key: [u8; 32],
}

/// The sample private key of node `n` (a fixed pattern; x25519 clamps it).
pub fn wg_private_key(n: u8) -> [u8; 32] {
    [n.wrapping_mul(37).wrapping_add(11); 32]
}

/// The public key of `private`.
pub fn wg_public_key(private: [u8; 32]) -> [u8; 32] {
    boringtun::x25519::PublicKey::from(&boringtun::x25519::StaticSecret::from(private)).to_bytes()
}

/// Node `me` (A or B of the sample cluster) running flannel's wireguard backend with the other
/// as its one peer, the peer's key being `peer_private`'s public key; peers spread over
/// `workers` workers, the pipeline is worker 0's (see [`wireguard_worker`] for the others).
pub fn wireguard_side(me_is_a: bool, peer_private: [u8; 32], workers: u16) -> Result<WgSide, ProgramError> {
    let (mac, ip, subnet, peer_ip, peer_mac, peer_subnet, n) = if me_is_a {
        (A_MAC, A_IP, A_SUBNET, B_IP, B_MAC, B_SUBNET, 1)
    } else {
        (B_MAC, B_IP, B_SUBNET, A_IP, A_MAC, A_SUBNET, 2)
    };
    let private = wg_private_key(n);
    let fib = FibWriter::new(FibConfig { tbl8_groups: 64, ..FibConfig::default() });
    let node = NodeConfig { uplink_mac: mac, public_ip: ip, ..node_config(false, prefix(CLUSTER, 16)) };
    let mut prog = RouteProgrammer::new(fib, node, Arc::new(NeighbourTable::new(64, 64)))?;
    prog.enable_wireguard(crate::wireguard::WgSettings {
        private_key: private,
        listen_port: WG_PORT,
        psk: None,
        persistent_keepalive: 0,
        workers,
    });
    let pod_ip = Ipv4Addr::from(u32::from(subnet) + 2);
    let pod_mac = MacAddr([2, 0, 0xc6, 0x13, n, 2]);
    let port = PortId(FIRST_POD);
    prog.apply(&[
        RouteUpdate::Pod(LocalPod { ip: pod_ip, worker: WorkerId(0), port, mac: pod_mac }),
        RouteUpdate::Remote(RemoteRoute {
            prefix: prefix(peer_subnet, 24),
            via: Via::WireGuard { remote: peer_ip, port: WG_PORT, public_key: wg_public_key(peer_private) },
        }),
    ])?;
    prog.set_neighbour(peer_ip, Some(peer_mac))?;
    let cfg = PipelineConfig {
        uplink_mac: mac,
        public_ip: ip,
        node_subnet: prefix(subnet, 24),
        wireguard: Some(WG_PORT),
        exception: None,
        pods: vec![(port, PodPort { ip: pod_ip, mac: pod_mac, gateway_mac: GATEWAY_MAC })],
        ..pipeline_config(Backend::HostGw, 0)
    };
    let mut handles = prog.handles();
    handles.wireguard = prog.wireguard_worker(WorkerId(0));
    let pipeline = Pipeline::new(cfg, handles);
    Ok(WgSide { prog, pipeline, pod_ip, pod_mac, public_key: wg_public_key(private) })
}

/// Nodes A and B of the sample cluster, each the other's WireGuard peer.
pub fn wireguard_pair() -> Result<(WgSide, WgSide), ProgramError> {
    Ok((wireguard_side(true, wg_private_key(2), 1)?, wireguard_side(false, wg_private_key(1), 1)?))
}

/// Another worker's pipeline of `side` (same ports and pod, its own WireGuard side).
pub fn wireguard_worker(side: &WgSide, worker: WorkerId) -> Pipeline {
    let cfg = PipelineConfig { worker, ..side.pipeline.config().clone() };
    let mut handles = side.prog.handles();
    handles.wireguard = side.prog.wireguard_worker(worker);
    Pipeline::new(cfg, handles)
}

/// A UDP datagram carrying WireGuard message `msg` from `src` to `dst` (address, MAC), both on
/// [`WG_PORT`].
pub fn wg_datagram(src: (Ipv4Addr, MacAddr), dst: (Ipv4Addr, MacAddr), msg: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 42 + msg.len()];
    EthernetRepr { src: src.1, dst: dst.1, ethertype: EtherType::IPV4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    Ipv4Repr {
        src: src.0,
        dst: dst.0,
        protocol: IpProtocol::UDP,
        payload_len: (8 + msg.len()) as u16,
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: false,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
    UdpRepr { src_port: WG_PORT, dst_port: WG_PORT, payload_len: msg.len() as u16 }
        .emit(&mut UdpPacket::new_unchecked(&mut f[34..]));
    f[42..].copy_from_slice(msg);
    f
}
