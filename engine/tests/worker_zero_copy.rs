//! Two AF_XDP ports on one worker share its UMEM: frames received on one are
//! transmitted on the other without a single copy (the pool's copy counter
//! stays 0, and the second socket reports a shared UMEM).

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{Endpoint, Netns, mac, root_or_skip, test_frame, test_seq, unique_stem, veth_pair};
use weft_engine::port::xdp_filter::{XdpAttachment, XdpMode, XdpProgram};
use weft_engine::port::{AfXdpPort, FramePool, Port, XskConfig};
use weft_engine::worker::{Forward, IdleStrategy, PortId, Worker, WorkerConfig};

const N: u64 = 1000;

#[test]
fn two_af_xdp_ports_on_one_worker_forward_both_ways_without_copies() -> Result<()> {
    if !root_or_skip("two_af_xdp_ports_on_one_worker_forward_both_ways_without_copies") {
        return Ok(());
    }
    let stem = unique_stem();
    let ns = Netns::new(&format!("{stem}n"))?;
    let (a_gen, a_xdp, b_gen, b_xdp) =
        (format!("{stem}ag"), format!("{stem}ax"), format!("{stem}bg"), format!("{stem}bx"));
    let (a_gen_mac, a_xdp_mac) = ("02:00:00:00:05:01", "02:00:00:00:05:02");
    let (b_gen_mac, b_xdp_mac) = ("02:00:00:00:06:01", "02:00:00:00:06:02");
    veth_pair(&ns, &a_gen, a_gen_mac, &a_xdp, a_xdp_mac)?;
    veth_pair(&ns, &b_gen, b_gen_mac, &b_xdp, b_xdp_mac)?;
    ns.run(move || -> Result<()> {
        let mut xa = XdpAttachment::attach(&a_xdp, XdpProgram::All, XdpMode::Auto)?;
        let mut xb = XdpAttachment::attach(&b_xdp, XdpProgram::All, XdpMode::Auto)?;
        let mut pool = FramePool::new(4096)?;
        let pa = AfXdpPort::open(&mut pool, &XskConfig::new(&a_xdp, 0))?;
        let pb = AfXdpPort::open(&mut pool, &XskConfig::new(&b_xdp, 0))?;
        assert!(!pa.shares_umem() && pb.shares_umem(), "the second socket binds to the first one's UMEM");
        xa.register_socket(0, pa.fd())?;
        xb.register_socket(0, pb.fd())?;
        let mut cfg = WorkerConfig::new("wx-zc");
        cfg.idle = IdleStrategy::BusyPoll;
        let ports: Vec<Box<dyn Port>> = vec![Box::new(pa), Box::new(pb)];
        let worker = Worker::new(cfg, pool, ports, Forward::new(vec![PortId(1), PortId(0)]))?.spawn()?;

        let mut ga = Endpoint::open(&a_gen)?;
        let mut gb = Endpoint::open(&b_gen)?;
        let a_to_b: Vec<Vec<u8>> =
            (0..N).map(|i| test_frame(mac(b_gen_mac), mac(a_gen_mac), i, 128)).collect();
        let b_to_a: Vec<Vec<u8>> =
            (0..N).map(|i| test_frame(mac(a_gen_mac), mac(b_gen_mac), N + i, 128)).collect();
        let (mut at_b, mut at_a) = (Vec::new(), Vec::new());
        for (ca, cb) in a_to_b.chunks(200).zip(b_to_a.chunks(200)) {
            ga.send(ca)?;
            gb.send(cb)?;
            at_b.extend(gb.recv(ca.len(), Duration::from_secs(2), |f| test_seq(f).is_some_and(|s| s < N)));
            at_a.extend(ga.recv(cb.len(), Duration::from_secs(2), |f| test_seq(f).is_some_and(|s| s >= N)));
        }
        let w = worker.stop().expect("worker thread");
        let c = w.counters().snapshot();
        assert_eq!(at_b.len() as u64, N, "a -> b delivered; counters {c:?}");
        assert_eq!(at_a.len() as u64, N, "b -> a delivered; counters {c:?}");
        assert!(at_b.iter().chain(&at_a).all(|f| f.len() == 128), "frames unchanged in length");
        assert_eq!((c.ports[0].rx_packets, c.ports[1].tx_packets), (N, N));
        assert_eq!((c.ports[1].rx_packets, c.ports[0].tx_packets), (N, N));
        assert_eq!(c.worker.copies, 0, "no frame was copied");
        assert_eq!(w.pool().copies(), 0);
        assert_eq!(c.dropped_total(), 0);
        Ok(())
    })??;
    Ok(())
}
