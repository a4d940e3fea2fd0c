//! The uplink XDP filter on a real veth between two throwaway namespaces (a
//! node and its underlay peer): the node's kernel still answers ARP, ping, TCP
//! and ordinary UDP to its PublicIP, while VXLAN to our port, IPIP to our
//! PublicIP and IPv4 to our pod subnet reach the AF_XDP socket — and nothing else.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use common::{Endpoint, Netns, ipv4_header, mac, root_or_skip, unique_stem, veth_between};
use weft_engine::port::xdp_filter::{FilterParams, XdpAttachment, XdpMode, XdpProgram};
use weft_engine::port::{AfXdpPort, FramePool, IoEvents, Port, XskConfig};

const NODE_MAC: &str = "02:00:00:00:02:01";
const PEER_MAC: &str = "02:00:00:00:02:02";
const NODE_IP: [u8; 4] = [198, 18, 0, 1];
const PEER_IP: [u8; 4] = [198, 18, 0, 2];
const VXLAN_PORT: u16 = 8472;

/// What the collector saw, by class.
fn classify(f: &[u8]) -> &'static str {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return match &f[12..14] {
            [0x08, 0x06] => "arp",
            [0x81, 0x00] => "vlan",
            _ => "other-l2",
        };
    }
    let dst = &f[30..34];
    match f[23] {
        1 => "icmp",
        6 => "tcp",
        4 if dst == NODE_IP => "ipip",
        17 if dst == NODE_IP && f.len() >= 42 && u16::from_be_bytes([f[36], f[37]]) == VXLAN_PORT => "vxlan",
        _ if dst[..3] == [198, 19, 1] => "pod",
        _ => "other-ip",
    }
}

#[test]
fn filter_passes_node_traffic_to_the_kernel_and_steers_engine_traffic_to_af_xdp() -> Result<()> {
    if !root_or_skip("filter_passes_node_traffic_to_the_kernel_and_steers_engine_traffic_to_af_xdp") {
        return Ok(());
    }
    let stem = unique_stem();
    let node = Netns::new(&format!("{stem}n"))?;
    let peer = Netns::new(&format!("{stem}p"))?;
    let (up, peer_if) = (format!("{stem}u"), format!("{stem}v"));
    veth_between(&node, &up, NODE_MAC, &peer, &peer_if, PEER_MAC)?;
    node.ip(&["addr", "add", "198.18.0.1/24", "dev", &up])?;
    peer.ip(&["addr", "add", "198.18.0.2/24", "dev", &peer_if])?;
    peer.ip(&["route", "add", "198.19.0.0/16", "via", "198.18.0.1"])?;

    // The engine side: filter + AF_XDP socket, collecting what reaches it.
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop2, up2) = (stop.clone(), up.clone());
    let collector = node.spawn(move || -> Result<(Vec<Vec<u8>>, bool)> {
        let params = FilterParams {
            public_ip: Ipv4Addr::from(NODE_IP),
            vxlan_port: Some(VXLAN_PORT),
            pod_subnet: Some((Ipv4Addr::new(198, 19, 1, 0), 24)),
        };
        let mut xdp = XdpAttachment::attach(&up2, XdpProgram::Filter(params), XdpMode::Auto)?;
        let mut pool = FramePool::new(2048)?;
        let mut port = AfXdpPort::open(&mut pool, &XskConfig::new(&up2, 0))?;
        xdp.register_socket(0, port.fd())?;
        ready_tx.send(()).ok();
        let mut seen = Vec::new();
        let mut batch = Vec::with_capacity(64);
        let mut ev = IoEvents::default();
        while !stop2.load(Ordering::Relaxed) {
            batch.clear();
            if port.rx(&mut pool, &mut batch, 64, &mut ev) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            for f in batch.drain(..) {
                seen.push(pool.data(&f).to_vec());
                pool.free(f);
            }
            port.service(&mut pool, &mut ev);
        }
        Ok((seen, xdp.is_native()))
    })?;
    ready_rx.recv_timeout(Duration::from_secs(10)).context("collector did not start")?;

    // Kernel services of the node, bound before the peer talks to them.
    let (tcp, udp) = node.run(|| -> Result<(TcpListener, UdpSocket)> {
        let udp = UdpSocket::bind("198.18.0.1:9999")?;
        udp.set_read_timeout(Some(Duration::from_secs(3)))?;
        Ok((TcpListener::bind("198.18.0.1:7000")?, udp))
    })??;
    let server = std::thread::spawn(move || -> Result<()> {
        let (mut s, _) = tcp.accept()?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf)?;
        s.write_all(&buf)?;
        Ok(())
    });

    // 1. ARP + ICMP: the node's kernel answers ping through the filter.
    peer.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.1"])
        .context("ping to the node's PublicIP")?;

    // 2. TCP to the node's PublicIP (SSH/etcd stand-in), and 3. ordinary UDP.
    peer.run(|| -> Result<()> {
        let mut c = TcpStream::connect_timeout(&"198.18.0.1:7000".parse()?, Duration::from_secs(3))?;
        c.set_read_timeout(Some(Duration::from_secs(3)))?;
        c.write_all(b"hello")?;
        let mut echo = [0u8; 5];
        c.read_exact(&mut echo)?;
        assert_eq!(&echo, b"hello");
        let u = UdpSocket::bind("198.18.0.2:0")?;
        u.send_to(b"kernel", "198.18.0.1:9999")?;
        // 4. VXLAN to our port: flags I, VNI 1, inner Ethernet + IPv4.
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vxlan.extend_from_slice(&[0u8; 14]);
        vxlan.extend_from_slice(&ipv4_header([198, 19, 2, 3], [198, 19, 1, 7], 17, 0));
        u.send_to(&vxlan, ("198.18.0.1", VXLAN_PORT))?;
        // 5. IPv4 to the pod subnet, routed via the node.
        u.send_to(b"to-a-pod", "198.19.1.5:5555")?;
        Ok(())
    })??;
    server.join().expect("tcp server thread")?;
    let mut buf = [0u8; 16];
    let (n, _) = udp.recv_from(&mut buf).context("UDP to a non-VXLAN port must reach the node's kernel")?;
    assert_eq!(&buf[..n], b"kernel");

    // 6. IPIP to our PublicIP and 7. a VLAN-tagged frame to the pod subnet, crafted.
    let peer_if2 = peer_if.clone();
    peer.run(move || -> Result<()> {
        let mut ep = Endpoint::open(&peer_if2)?;
        let inner = ipv4_header([198, 19, 2, 3], [198, 19, 1, 7], 17, 0);
        let mut ipip = [mac(NODE_MAC), mac(PEER_MAC)].concat();
        ipip.extend_from_slice(&[0x08, 0x00]);
        ipip.extend_from_slice(&ipv4_header(PEER_IP, NODE_IP, 4, inner.len()));
        ipip.extend_from_slice(&inner);
        let mut vlan = [mac(NODE_MAC), mac(PEER_MAC)].concat();
        vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        vlan.extend_from_slice(&ipv4_header(PEER_IP, [198, 19, 1, 5], 17, 0));
        ep.send(&[ipip, vlan])
    })??;

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (seen, native) = collector.join().expect("collector thread")?;
    let mut classes: Vec<&str> = seen.iter().map(|f| classify(f)).collect();
    classes.sort_unstable();
    eprintln!(
        "filter attached in {} mode; AF_XDP saw {classes:?}",
        if native { "native" } else { "generic" }
    );
    assert_eq!(classes, ["ipip", "pod", "vxlan"], "exactly the engine's traffic reaches AF_XDP");
    Ok(())
}
