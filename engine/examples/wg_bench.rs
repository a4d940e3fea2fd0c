//! WireGuard cost per core in the pipeline, without I/O: pod packets sealed into transport
//! messages (node A of the sample WireGuard pair) and transport messages opened and delivered
//! (node B), beside the same pod packets VXLAN-encapsulated, at one batch size.
//!
//!   cargo run --release -p weft-engine --features test-support --example wg_bench -- [--packets 200000] [--batch 64]
//!
//! Each frame is copied into the pool before it is processed (as a port's rx would), so every
//! rate includes one copy of the frame.

use std::time::Instant;

use weft_engine::pipeline::sample::{
    Backend, FIRST_POD, GATEWAY_MAC, UPLINK, WgSide, from_pod, node, udp_frame, wireguard_pair,
};
use weft_engine::port::{Frame, FramePool};
use weft_engine::worker::{FrameProcessor, PortId, Verdict};

const POD: PortId = PortId(FIRST_POD);

fn pod_packet(from: &WgSide, to: &WgSide, payload: usize) -> Vec<u8> {
    udp_frame(from.pod_mac, GATEWAY_MAC, from.pod_ip, to.pod_ip, 40000, 64, true, payload)
}

/// Runs `frames` through `p` received on `port` in batches of `batch`; returns packets per
/// second and how many were transmitted, keeping the transmitted bytes when `keep` is set.
fn pump<P: FrameProcessor>(
    p: &mut P,
    pool: &mut FramePool,
    port: PortId,
    frames: &[Vec<u8>],
    batch: usize,
    keep: Option<&mut Vec<Vec<u8>>>,
) -> (f64, usize) {
    let mut rx: Vec<Frame> = Vec::with_capacity(batch);
    let mut verdicts = Vec::with_capacity(batch);
    let mut sent = 0;
    let mut keep = keep;
    let start = Instant::now();
    for chunk in frames.chunks(batch) {
        rx.extend(chunk.iter().filter_map(|f| pool.copy_in(f)));
        verdicts.clear();
        p.process_batch(port, pool, &mut rx, &mut verdicts);
        for (f, v) in rx.drain(..).zip(&verdicts) {
            if matches!(v, Verdict::Tx(_)) {
                sent += 1;
                if let Some(k) = keep.as_deref_mut() {
                    k.push(pool.data(&f).to_vec());
                }
            }
            pool.free(f);
        }
    }
    (frames.len() as f64 / start.elapsed().as_secs_f64(), sent)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (packets, batch) = (arg("--packets", 200_000), arg("--batch", 64));
    println!("| ip bytes | path | Mpps/core | Gbit/s/core (inner) |");
    println!("|---|---|---|---|");
    for ip_bytes in [64usize, 1400] {
        let payload = ip_bytes - 28;
        let mut pool = FramePool::new(4096)?;
        let (mut a, mut b) = wireguard_pair()?;
        // Handshake: one packet through A makes the initiation, B answers, A confirms.
        let first = vec![pod_packet(&a, &b, payload)];
        let mut init = Vec::new();
        pump(&mut a.pipeline, &mut pool, POD, &first, 1, Some(&mut init));
        let mut resp = Vec::new();
        pump(&mut b.pipeline, &mut pool, UPLINK, &init, 1, Some(&mut resp));
        let mut keepalive = Vec::new();
        pump(&mut a.pipeline, &mut pool, UPLINK, &resp, 1, Some(&mut keepalive));
        pump(&mut b.pipeline, &mut pool, UPLINK, &keepalive, 1, None);

        let plain: Vec<Vec<u8>> = (0..packets).map(|_| pod_packet(&a, &b, payload)).collect();
        let mut sealed = Vec::with_capacity(packets);
        let (seal_pps, n) = pump(&mut a.pipeline, &mut pool, POD, &plain, batch, Some(&mut sealed));
        anyhow::ensure!(n == packets, "sealed {n} of {packets}");
        let (open_pps, n) = pump(&mut b.pipeline, &mut pool, UPLINK, &sealed, batch, None);
        anyhow::ensure!(n == packets, "opened and delivered {n} of {packets}");

        let (_, mut vx) = node(Backend::FLANNEL_VXLAN, false, 3)?;
        let to_b: Vec<Vec<u8>> =
            (0..packets).map(|_| from_pod(0, std::net::Ipv4Addr::new(198, 19, 2, 9), 64, payload)).collect();
        let (vxlan_pps, n) = pump(&mut vx, &mut pool, PortId(FIRST_POD), &to_b, batch, None);
        anyhow::ensure!(n == packets, "vxlan sent {n} of {packets}");

        for (path, pps) in
            [("wireguard seal", seal_pps), ("wireguard open", open_pps), ("vxlan encap", vxlan_pps)]
        {
            println!("| {ip_bytes} | {path} | {:.2} | {:.2} |", pps / 1e6, pps * ip_bytes as f64 * 8.0 / 1e9);
        }
    }
    Ok(())
}
