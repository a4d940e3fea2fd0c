//! WireGuard datagrams into a node's pipeline (message parsing, peer lookup, the decrypt entry
//! point), and arbitrary pod packets through encryption and back: every frame gets one verdict,
//! a transmitted frame lies inside its chunk, nothing panics. Nodes A and B of the sample
//! cluster hold a session (handshake driven once per process). The first input byte picks:
//! 0 the bytes as a message from A to B, 1 a genuine transport message from A with the bytes
//! XORed into it, 2 the bytes as a whole frame on B's uplink, 3 the bytes as the payload of a
//! packet from A's pod to B's pod, sealed by A and opened by B.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use weft_engine::pipeline::sample::{
    A_IP, A_MAC, B_IP, B_MAC, FIRST_POD, GATEWAY_MAC, UPLINK, WgSide, udp_frame, wg_datagram, wireguard_pair,
};
use weft_engine::port::{FRAME_SIZE, FramePool};
use weft_engine::worker::{FrameProcessor, PortId, Verdict};

const POD: PortId = PortId(FIRST_POD);

struct Pair {
    a: WgSide,
    b: WgSide,
    pool: FramePool,
    /// A transport message from A to B (its bytes after the outer headers).
    transport: Vec<u8>,
}

/// One frame through `side`, received on `port`: the verdict and the frame's bytes.
fn run(side: &mut WgSide, pool: &mut FramePool, port: PortId, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let Some(mut f) = pool.copy_in(frame) else { return (Verdict::Drop(weft_engine::worker::DropReason::Discard), Vec::new()) };
    let v = side.pipeline.process(port, &mut pool.view(&mut f));
    if let Verdict::Tx(_) = v {
        assert!(f.offset() + f.len() <= FRAME_SIZE);
    }
    let bytes = pool.data(&f).to_vec();
    pool.free(f);
    (v, bytes)
}

fn pod_packet(pair: &Pair, payload: usize) -> Vec<u8> {
    udp_frame(pair.a.pod_mac, GATEWAY_MAC, pair.a.pod_ip, pair.b.pod_ip, 40000, 64, true, payload)
}

fn established() -> Pair {
    let (a, b) = wireguard_pair().unwrap();
    let mut pair = Pair { a, b, pool: FramePool::new(64).unwrap(), transport: Vec::new() };
    let first = pod_packet(&pair, 64);
    let (_, init) = run(&mut pair.a, &mut pair.pool, POD, &first);
    let (_, resp) = run(&mut pair.b, &mut pair.pool, UPLINK, &init);
    let (_, keepalive) = run(&mut pair.a, &mut pair.pool, UPLINK, &resp);
    run(&mut pair.b, &mut pair.pool, UPLINK, &keepalive);
    let packet = pod_packet(&pair, 100);
    let (v, wire) = run(&mut pair.a, &mut pair.pool, POD, &packet);
    assert_eq!(v, Verdict::Tx(UPLINK));
    pair.transport = wire[42..].to_vec();
    pair
}

thread_local! {
    static PAIR: RefCell<Pair> = RefCell::new(established());
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else { return };
    PAIR.with_borrow_mut(|p| {
        let (a, b) = ((A_IP, A_MAC), (B_IP, B_MAC));
        match sel & 3 {
            0 => {
                run(&mut p.b, &mut p.pool, UPLINK, &wg_datagram(a, b, &bytes[..bytes.len().min(1400)]));
            }
            1 => {
                let mut msg = p.transport.clone();
                for (m, x) in msg.iter_mut().zip(bytes) {
                    *m ^= x;
                }
                run(&mut p.b, &mut p.pool, UPLINK, &wg_datagram(a, b, &msg));
            }
            2 => {
                run(&mut p.b, &mut p.pool, UPLINK, &bytes[..bytes.len().min(1800)]);
            }
            _ => {
                let mut packet = pod_packet(p, bytes.len().min(1300));
                packet[42..].copy_from_slice(&bytes[..bytes.len().min(1300)]);
                let (v, wire) = run(&mut p.a, &mut p.pool, POD, &packet);
                if v == Verdict::Tx(UPLINK) {
                    run(&mut p.b, &mut p.pool, UPLINK, &wire);
                }
            }
        }
    });
});
