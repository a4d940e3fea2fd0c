//! A worker's UMEM stays registered with the kernel as long as one socket over it is open, and
//! no longer, and no closed port's socket outlives its port: on a node whose uplink fell back
//! to AF_PACKET the first pod's socket registers the UMEM, and that pod may leave first.
//! Closing the registering socket frees its interface queue at once (a pod re-attached there
//! binds again), a later socket shares the UMEM with a socket still open and forwards through
//! it without copies, and once every socket is closed the next one registers the memory again.

mod common;

use std::time::{Duration, Instant};

use anyhow::Result;
use common::{Endpoint, Netns, mac, root_or_skip, test_frame, test_seq, unique_stem, veth_pair};
use weft_engine::port::xdp_filter::{XdpAttachment, XdpMode, XdpProgram};
use weft_engine::port::{AfXdpPort, FramePool, Port, PortError, UmemShare, XskConfig};
use weft_engine::worker::{Forward, IdleStrategy, PortId, Worker, WorkerConfig};

const N: u64 = 200;

/// Opens a socket over `umem`, waiting while the kernel still releases the queue of a socket
/// just closed on it (it does so asynchronously, within milliseconds).
fn open_when_free(umem: &UmemShare, cfg: &XskConfig) -> Result<AfXdpPort> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match AfXdpPort::open_shared(umem, cfg) {
            Ok(p) => return Ok(p),
            Err(PortError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::ResourceBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[test]
fn a_closed_socket_frees_its_queue_and_later_sockets_share_the_umem_with_one_still_open() -> Result<()> {
    let name = "a_closed_socket_frees_its_queue_and_later_sockets_share_the_umem_with_one_still_open";
    if !root_or_skip(name) {
        return Ok(());
    }
    let stem = unique_stem();
    let ns = Netns::new(&format!("{stem}n"))?;
    let (a_gen, a_xdp, b_gen, b_xdp) =
        (format!("{stem}ag"), format!("{stem}ax"), format!("{stem}bg"), format!("{stem}bx"));
    let (a_gen_mac, a_xdp_mac) = ("02:00:00:00:0a:01", "02:00:00:00:0a:02");
    let (b_gen_mac, b_xdp_mac) = ("02:00:00:00:0b:01", "02:00:00:00:0b:02");
    veth_pair(&ns, &a_gen, a_gen_mac, &a_xdp, a_xdp_mac)?;
    veth_pair(&ns, &b_gen, b_gen_mac, &b_xdp, b_xdp_mac)?;
    ns.run(move || -> Result<()> {
        let pool = FramePool::new(2048)?;
        let umem = pool.umem_share();
        let (cfg_a, cfg_b) = (XskConfig::new(&a_xdp, 0), XskConfig::new(&b_xdp, 0));

        let pa = AfXdpPort::open_shared(&umem, &cfg_a)?;
        assert!(!pa.shares_umem(), "the first socket registers the UMEM");
        let pb = AfXdpPort::open_shared(&umem, &cfg_b)?;
        assert!(pb.shares_umem(), "the second socket shares it");

        // The registering socket leaves first; its queue is free again and the socket opened
        // there next shares the UMEM with the one still open.
        drop(pa);
        let pa = open_when_free(&umem, &cfg_a)?;
        assert!(pa.shares_umem(), "shared with the socket still open, not registered again");

        // Frames go both ways through the two sockets, without copies.
        let mut xa = XdpAttachment::attach(&a_xdp, XdpProgram::All, XdpMode::Generic)?;
        let mut xb = XdpAttachment::attach(&b_xdp, XdpProgram::All, XdpMode::Generic)?;
        xa.register_socket(0, pa.fd())?;
        xb.register_socket(0, pb.fd())?;
        let mut cfg = WorkerConfig::new("wx-umem");
        cfg.idle = IdleStrategy::BusyPoll;
        let ports: Vec<Box<dyn Port>> = vec![Box::new(pa), Box::new(pb)];
        let worker = Worker::new(cfg, pool, ports, Forward::new(vec![PortId(1), PortId(0)]))?.spawn()?;
        let (mut ga, mut gb) = (Endpoint::open(&a_gen)?, Endpoint::open(&b_gen)?);
        let a_to_b: Vec<Vec<u8>> =
            (0..N).map(|i| test_frame(mac(b_gen_mac), mac(a_gen_mac), i, 128)).collect();
        let b_to_a: Vec<Vec<u8>> =
            (0..N).map(|i| test_frame(mac(a_gen_mac), mac(b_gen_mac), N + i, 128)).collect();
        ga.send(&a_to_b)?;
        let at_b = gb.recv(a_to_b.len(), Duration::from_secs(2), |f| test_seq(f).is_some_and(|s| s < N));
        gb.send(&b_to_a)?;
        let at_a = ga.recv(b_to_a.len(), Duration::from_secs(2), |f| test_seq(f).is_some_and(|s| s >= N));
        let w = worker.stop().expect("worker thread");
        let c = w.counters().snapshot();
        assert_eq!(at_b.len() as u64, N, "a -> b delivered; counters {c:?}");
        assert_eq!(at_a.len() as u64, N, "b -> a delivered; counters {c:?}");
        assert_eq!(c.worker.copies, 0, "no frame was copied");

        // Every socket closed (the worker's ports with it): the kernel's registration is gone,
        // nothing holds either queue, and the next socket registers the memory again.
        drop(w);
        drop((xa, xb));
        let pa = open_when_free(&umem, &cfg_a)?;
        assert!(!pa.shares_umem(), "no socket left to share with: registered again");
        let pb = open_when_free(&umem, &cfg_b)?;
        assert!(pb.shares_umem());
        Ok(())
    })??;
    Ok(())
}
