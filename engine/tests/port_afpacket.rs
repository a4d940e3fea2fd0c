//! The AF_PACKET (TPACKET_V3) fallback port on a real veth pair: frames in,
//! frames out, counts and contents match; our own transmissions are not
//! looped back into our receive ring.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{Endpoint, Netns, mac, root_or_skip, test_frame, test_seq, unique_stem, veth_pair};
use weft_engine::port::{AfPacketPort, FramePool, Port, TpacketGeometry};
use weft_engine::worker::{IdleStrategy, Reflect, Worker, WorkerConfig};

const N: u64 = 2000;

#[test]
fn af_packet_port_receives_and_reflects_every_frame() -> Result<()> {
    if !root_or_skip("af_packet_port_receives_and_reflects_every_frame") {
        return Ok(());
    }
    let stem = unique_stem();
    let ns = Netns::new(&format!("{stem}n"))?;
    let (g, p) = (format!("{stem}g"), format!("{stem}p"));
    let (g_mac, p_mac) = ("02:00:00:00:07:01", "02:00:00:00:07:02");
    veth_pair(&ns, &g, g_mac, &p, p_mac)?;
    ns.run(move || -> Result<()> {
        let port = AfPacketPort::open(&p, TpacketGeometry::default())?;
        assert_eq!(port.kind(), "af_packet tpacket_v3");
        let mut cfg = WorkerConfig::new("wx-pkt");
        cfg.idle = IdleStrategy::BusyPoll;
        let worker = Worker::new(cfg, FramePool::new(2048)?, vec![Box::new(port)], Reflect)?.spawn()?;
        let mut generator = Endpoint::open(&g)?;
        let frames: Vec<Vec<u8>> =
            (0..N).map(|i| test_frame(mac(p_mac), mac(g_mac), i, 60 + (i as usize % 1000))).collect();
        let mut back = Vec::new();
        for chunk in frames.chunks(128) {
            generator.send(chunk)?;
            back.extend(generator.recv(chunk.len(), Duration::from_secs(2), |f| test_seq(f).is_some()));
        }
        let w = worker.stop().expect("worker thread");
        let c = w.counters().snapshot();
        assert_eq!(back.len() as u64, N, "reflected frames; counters {c:?}");
        let mut seqs: Vec<u64> = back.iter().map(|f| test_seq(f).unwrap()).collect();
        seqs.sort_unstable();
        assert!(seqs.iter().copied().eq(0..N), "every frame exactly once");
        assert!(
            back.iter()
                .all(|f| f[0..6] == mac(g_mac) && f.len() == 60 + (test_seq(f).unwrap() as usize % 1000))
        );
        assert_eq!(c.ports[0].rx_packets, N, "our own transmissions are not received again");
        assert_eq!(c.ports[0].tx_packets, N);
        assert_eq!(c.worker.copies, N, "AF_PACKET copies each received frame once");
        Ok(())
    })??;
    Ok(())
}
