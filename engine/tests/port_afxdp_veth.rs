//! AF_XDP on a real veth pair inside a throwaway namespace, in native and in
//! generic XDP mode: frames sent from the peer reach the AF_XDP socket, the
//! worker reflects them, and every one comes back with its MACs swapped.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{Endpoint, Netns, mac, root_or_skip, test_frame, test_seq, unique_stem, veth_pair};
use weft_engine::port::xdp_filter::{XdpAttachment, XdpMode, XdpProgram};
use weft_engine::port::{AfXdpPort, FramePool, Port, XskConfig};
use weft_engine::worker::{IdleStrategy, Reflect, Worker, WorkerConfig};

const N: u64 = 2000;

fn reflect_through_af_xdp(mode: XdpMode) -> Result<()> {
    let stem = unique_stem();
    let ns = Netns::new(&format!("{stem}n"))?;
    let (gen_if, xdp_if) = (format!("{stem}g"), format!("{stem}x"));
    let (gen_mac, xdp_mac) = ("02:00:00:00:01:01", "02:00:00:00:01:02");
    veth_pair(&ns, &gen_if, gen_mac, &xdp_if, xdp_mac)?;
    ns.run(move || -> Result<()> {
        let mut xdp = XdpAttachment::attach(&xdp_if, XdpProgram::All, mode)?;
        assert_eq!(xdp.is_native(), mode == XdpMode::Native, "attach mode");
        let mut pool = FramePool::new(4096)?;
        let port = AfXdpPort::open(&mut pool, &XskConfig::new(&xdp_if, 0))?;
        xdp.register_socket(0, port.fd())?;
        eprintln!("xdp mode {}, socket {}", xdp.mode_name(), port.kind());
        let mut cfg = WorkerConfig::new("wx-reflect");
        cfg.idle = IdleStrategy::BusyPoll;
        let worker = Worker::new(cfg, pool, vec![Box::new(port)], Reflect)?.spawn()?;

        let mut generator = Endpoint::open(&gen_if)?;
        let frames: Vec<Vec<u8>> =
            (0..N).map(|i| test_frame(mac(xdp_mac), mac(gen_mac), i, 64 + (i as usize % 200))).collect();
        let mut back = Vec::new();
        for chunk in frames.chunks(256) {
            generator.send(chunk)?;
            back.extend(generator.recv(chunk.len(), Duration::from_secs(2), |f| test_seq(f).is_some()));
        }
        back.extend(
            generator.recv(N as usize - back.len(), Duration::from_secs(2), |f| test_seq(f).is_some()),
        );
        let stats = worker.counters().snapshot();
        let w = worker.stop().expect("worker thread");
        assert_eq!(
            back.len() as u64,
            N,
            "reflected frames received by the generator; worker counters {stats:?}"
        );
        let mut seqs: Vec<u64> = back.iter().map(|f| test_seq(f).unwrap()).collect();
        seqs.sort_unstable();
        assert!(seqs.iter().copied().eq(0..N), "every sequence number exactly once");
        for f in &back {
            let seq = test_seq(f).unwrap();
            assert_eq!(&f[0..6], &mac(gen_mac), "dst MAC is the generator's after reflection");
            assert_eq!(&f[6..12], &mac(xdp_mac));
            assert_eq!(f.len(), 64 + (seq as usize % 200), "length preserved");
        }
        let c = w.counters().snapshot();
        assert_eq!(c.ports[0].rx_packets, N, "worker rx count");
        assert_eq!(c.ports[0].tx_packets, N, "worker tx count");
        assert_eq!(c.ports[0].rx_bytes, c.ports[0].tx_bytes);
        assert_eq!(c.dropped_total(), 0);
        assert_eq!(c.worker.copies, 0, "AF_XDP path copies nothing into the pool");
        assert!(c.worker.wakeups > 0, "copy-mode tx needs wakeups, and they are counted");
        Ok(())
    })??;
    drop(ns);
    Ok(())
}

#[test]
fn af_xdp_in_native_mode_receives_and_reflects_every_frame() -> Result<()> {
    if !root_or_skip("af_xdp_in_native_mode_receives_and_reflects_every_frame") {
        return Ok(());
    }
    reflect_through_af_xdp(XdpMode::Native)
}

#[test]
fn af_xdp_in_generic_mode_receives_and_reflects_every_frame() -> Result<()> {
    if !root_or_skip("af_xdp_in_generic_mode_receives_and_reflects_every_frame") {
        return Ok(());
    }
    reflect_through_af_xdp(XdpMode::Generic)
}
