//! Two sample nodes (A and B) talking WireGuard through their pipelines, frame by frame: the
//! handshake, transport both ways, and every kind of bad datagram a counted drop.

use std::net::Ipv4Addr;

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};

use super::outer::LEN as OUTER_LEN;
use crate::pipeline::sample::*;
use crate::port::FramePool;
use crate::worker::{DropReason, FrameProcessor, PortId, Verdict};

const POD_PORT: PortId = PortId(FIRST_POD);

/// Runs `frame` through `side`'s pipeline as received on `port`: the verdict and the bytes.
fn run(side: &mut WgSide, pool: &mut FramePool, port: PortId, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let mut f = pool.copy_in(frame).expect("a free frame");
    let v = side.pipeline.process(port, &mut pool.view(&mut f));
    let bytes = pool.data(&f).to_vec();
    pool.free(f);
    (v, bytes)
}

/// A UDP datagram from pod `from` to pod `to`, as the pod sends it.
fn pod_packet(from: &WgSide, to: &WgSide, payload: usize) -> Vec<u8> {
    udp_frame(from.pod_mac, GATEWAY_MAC, from.pod_ip, to.pod_ip, 40000, 64, true, payload)
}

/// A UDP frame carrying `msg` from `src` to `dst` on the WireGuard port.
fn wg_frame(
    src: (Ipv4Addr, weft_encap::MacAddr),
    dst: (Ipv4Addr, weft_encap::MacAddr),
    msg: &[u8],
) -> Vec<u8> {
    wg_datagram(src, dst, msg)
}

fn has(bytes: &[u8], ip: Ipv4Addr) -> bool {
    bytes.windows(4).any(|w| w == ip.octets())
}

/// Drives the handshake A -> B through both pipelines; returns the pair and a pool.
fn established() -> (WgSide, WgSide, FramePool) {
    let (mut a, mut b) = wireguard_pair().unwrap();
    let mut pool = FramePool::new(64).unwrap();
    let first = pod_packet(&a, &b, 64);
    let (v, init) = run(&mut a, &mut pool, POD_PORT, &first);
    assert_eq!(v, Verdict::Tx(UPLINK), "no session: the packet's frame carries an initiation");
    assert_eq!(init.len(), OUTER_LEN + 148);
    assert!(!has(&init[OUTER_LEN..], a.pod_ip) && !has(&init[OUTER_LEN..], b.pod_ip), "no pod address leaks");
    let (v, resp) = run(&mut b, &mut pool, UPLINK, &init);
    assert_eq!(v, Verdict::Tx(UPLINK), "B answers the initiation");
    assert_eq!(resp.len(), OUTER_LEN + 92);
    assert_eq!(&resp[26..34], &[B_IP.octets(), A_IP.octets()].concat()[..], "back to A");
    let (v, keepalive) = run(&mut a, &mut pool, UPLINK, &resp);
    assert_eq!(v, Verdict::Tx(UPLINK), "A confirms with a keepalive");
    let (v, _) = run(&mut b, &mut pool, UPLINK, &keepalive);
    assert_eq!(v, Verdict::Drop(DropReason::WgProtocol));
    (a, b, pool)
}

#[test]
fn pods_on_two_nodes_talk_through_a_handshake_and_transport_messages_both_ways() {
    let (mut a, mut b, mut pool) = established();
    for a_sends in [true, false] {
        let (from, to) = if a_sends { (&mut a, &mut b) } else { (&mut b, &mut a) };
        let sent = pod_packet(from, to, 1000);
        let (v, wire) = run(from, &mut pool, POD_PORT, &sent);
        assert_eq!(v, Verdict::Tx(UPLINK));
        assert_eq!(wire.len(), OUTER_LEN + 16 + (sent.len() - 14) + 16, "a transport message");
        assert_eq!(u16::from_be_bytes([wire[36], wire[37]]), WG_PORT);
        assert!(!has(&wire[OUTER_LEN..], from.pod_ip), "the inner addresses are encrypted");
        let (v, got) = run(to, &mut pool, UPLINK, &wire);
        assert_eq!(v, Verdict::Tx(POD_PORT), "delivered to the pod");
        assert_eq!(&got[0..6], &to.pod_mac.0);
        assert_eq!(&got[14 + 12..14 + 20], &sent[14 + 12..14 + 20], "same addresses");
        assert_eq!(got[14 + 8], 62, "TTL: one hop on each node");
        assert_eq!(&got[34..], &sent[34..], "same payload");
    }
    let a_paths = a.pipeline.counters().snapshot();
    assert!(a_paths.0[crate::pipeline::PathCounter::WgEncrypt as usize] >= 1);
    assert!(a_paths.0[crate::pipeline::PathCounter::WgDecrypt as usize] >= 1);
}

#[test]
fn replayed_tampered_truncated_and_garbage_datagrams_are_named_drops() {
    let (mut a, mut b, mut pool) = established();
    let packet = pod_packet(&a, &b, 200);
    let (_, wire) = run(&mut a, &mut pool, POD_PORT, &packet);
    assert_eq!(run(&mut b, &mut pool, UPLINK, &wire).0, Verdict::Tx(POD_PORT));
    assert_eq!(run(&mut b, &mut pool, UPLINK, &wire).0, Verdict::Drop(DropReason::WgReplay), "replayed");

    let packet = pod_packet(&a, &b, 200);
    let (_, wire) = run(&mut a, &mut pool, POD_PORT, &packet);
    let mut tampered = wire.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(run(&mut b, &mut pool, UPLINK, &tampered).0, Verdict::Drop(DropReason::WgDecryptFailed));
    assert_eq!(
        run(&mut b, &mut pool, UPLINK, &wire).0,
        Verdict::Tx(POD_PORT),
        "the genuine one still passes"
    );

    let (a_addr, b_addr) = ((A_IP, A_MAC), (B_IP, B_MAC));
    let garbage: [&[u8]; 4] = [&[], &[9, 9, 9], &[4, 0, 0, 0, 1, 2, 3], &[1, 0, 0, 0, 0, 0, 0, 0]];
    for msg in garbage {
        let v = run(&mut b, &mut pool, UPLINK, &wg_frame(a_addr, b_addr, msg)).0;
        assert_eq!(v, Verdict::Drop(DropReason::WgMalformed), "{msg:?}");
    }
    let mut unknown_session = wire[OUTER_LEN..].to_vec();
    unknown_session[4..8].copy_from_slice(&0x00ff_ff00u32.to_le_bytes());
    let v = run(&mut b, &mut pool, UPLINK, &wg_frame(a_addr, b_addr, &unknown_session)).0;
    assert_eq!(v, Verdict::Drop(DropReason::WgUnknownPeer));
    for cut in 1..wire.len() {
        let v = run(&mut b, &mut pool, UPLINK, &wire[..cut]).0;
        assert!(matches!(v, Verdict::Drop(_)), "cut at {cut}: {v:?}");
    }
}

#[test]
fn an_initiation_from_a_stranger_or_for_another_key_is_refused() {
    let (_, mut b, mut pool) = established();
    let handshake = |private: [u8; 32], responder: [u8; 32]| {
        let mut t = Tunn::new(StaticSecret::from(private), PublicKey::from(responder), None, None, 7, None);
        let mut buf = [0u8; 256];
        match t.format_handshake_initiation(&mut buf, false) {
            TunnResult::WriteToNetwork(m) => m.to_vec(),
            other => panic!("{other:?}"),
        }
    };
    let (c, b_addr) =
        ((Ipv4Addr::new(198, 18, 0, 9), weft_encap::MacAddr([2, 0, 0, 0, 0, 9])), (B_IP, B_MAC));
    let stranger = handshake(wg_private_key(9), b.public_key);
    let v = run(&mut b, &mut pool, UPLINK, &wg_frame(c, b_addr, &stranger)).0;
    assert_eq!(v, Verdict::Drop(DropReason::WgUnknownPeer), "a key that holds no lease");
    let elsewhere = handshake(wg_private_key(1), wg_public_key(wg_private_key(5)));
    let v = run(&mut b, &mut pool, UPLINK, &wg_frame(c, b_addr, &elsewhere)).0;
    assert_eq!(v, Verdict::Drop(DropReason::WgBadMac), "an initiation meant for another key");
}

#[test]
fn a_decrypted_packet_from_outside_the_peers_subnet_is_dropped() {
    let (_, mut b, mut pool) = established();
    // A impostor session with A's own key, from a raw boringtun tunnel: authenticated, but
    // its packet claims a source outside A's subnet.
    let mut t =
        Tunn::new(StaticSecret::from(wg_private_key(1)), PublicKey::from(b.public_key), None, None, 3, None);
    let mut buf = vec![0u8; 2048];
    let (a_addr, b_addr) = ((A_IP, A_MAC), (B_IP, B_MAC));
    let init = match t.format_handshake_initiation(&mut buf, false) {
        TunnResult::WriteToNetwork(m) => m.to_vec(),
        other => panic!("{other:?}"),
    };
    let (v, resp) = run(&mut b, &mut pool, UPLINK, &wg_frame(a_addr, b_addr, &init));
    assert_eq!(v, Verdict::Tx(UPLINK));
    let keepalive = match t.decapsulate(None, &resp[OUTER_LEN..], &mut buf) {
        TunnResult::WriteToNetwork(m) => m.to_vec(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        run(&mut b, &mut pool, UPLINK, &wg_frame(a_addr, b_addr, &keepalive)).0,
        Verdict::Drop(DropReason::WgProtocol)
    );
    let spoofed = udp_frame(A_MAC, B_MAC, Ipv4Addr::new(198, 19, 7, 2), b.pod_ip, 1, 64, true, 32);
    let msg = match t.encapsulate(&spoofed[14..], &mut buf) {
        TunnResult::WriteToNetwork(m) => m.to_vec(),
        other => panic!("{other:?}"),
    };
    let v = run(&mut b, &mut pool, UPLINK, &wg_frame(a_addr, b_addr, &msg)).0;
    assert_eq!(v, Verdict::Drop(DropReason::WgDisallowedSource));
}

#[test]
fn a_peer_owned_by_another_worker_gets_its_frames_handed_over_both_ways() {
    use super::{OPEN_PORT, SEAL_PORT};
    use crate::worker::WorkerId;
    // A spreads peers over two workers: its one peer (slot 0) belongs to worker 0, and worker 1
    // receives the pod's packets and the peer's datagrams.
    let mut a = wireguard_side(true, wg_private_key(2), 2).unwrap();
    let mut b = wireguard_side(false, wg_private_key(1), 1).unwrap();
    let mut a1 = wireguard_worker(&a, WorkerId(1));
    let mut pool = FramePool::new(64).unwrap();
    let on = |p: &mut crate::pipeline::Pipeline,
              pool: &mut FramePool,
              port: PortId,
              frame: &[u8],
              hand_in: bool| {
        let mut f = pool.copy_in(frame).expect("a free frame");
        let v = if hand_in {
            p.handed_in(port, &mut pool.view(&mut f))
        } else {
            p.process(port, &mut pool.view(&mut f))
        };
        let bytes = pool.data(&f).to_vec();
        pool.free(f);
        (v, bytes)
    };
    let packet = pod_packet(&a, &b, 64);
    let (v, plain) = on(&mut a1, &mut pool, POD_PORT, &packet, false);
    assert_eq!(v, Verdict::Handoff { worker: WorkerId(0), port: SEAL_PORT });
    let (v, init) = on(&mut a.pipeline, &mut pool, SEAL_PORT, &plain, true);
    assert_eq!(v, Verdict::Tx(UPLINK), "the owner turns it into an initiation");
    let (_, resp) = run(&mut b, &mut pool, UPLINK, &init);
    let (v, _) = on(&mut a1, &mut pool, UPLINK, &resp, false);
    assert_eq!(v, Verdict::Handoff { worker: WorkerId(0), port: OPEN_PORT });
    let (v, keepalive) = on(&mut a.pipeline, &mut pool, OPEN_PORT, &resp, true);
    assert_eq!(v, Verdict::Tx(UPLINK));
    assert_eq!(run(&mut b, &mut pool, UPLINK, &keepalive).0, Verdict::Drop(DropReason::WgProtocol));
    let back = pod_packet(&b, &a, 300);
    let (v, wire) = run(&mut b, &mut pool, POD_PORT, &back);
    assert_eq!(v, Verdict::Tx(UPLINK));
    let (v, _) = on(&mut a1, &mut pool, UPLINK, &wire, false);
    assert_eq!(v, Verdict::Handoff { worker: WorkerId(0), port: OPEN_PORT });
    let (v, got) = on(&mut a.pipeline, &mut pool, OPEN_PORT, &wire, true);
    assert_eq!(v, Verdict::Tx(POD_PORT), "decrypted by the owner and delivered");
    assert_eq!(&got[34..], &back[34..]);
}

#[test]
fn a_handshake_flood_gets_cookie_replies_and_established_peers_keep_talking() {
    let (mut a, mut b, mut pool) = established();
    let stranger = (Ipv4Addr::new(198, 18, 0, 9), weft_encap::MacAddr([2, 0, 0, 0, 0, 9]));
    let mut t =
        Tunn::new(StaticSecret::from(wg_private_key(9)), PublicKey::from(b.public_key), None, None, 5, None);
    let mut buf = [0u8; 256];
    let (mut refused, mut cookies) = (0, 0);
    for _ in 0..2 * super::HANDSHAKE_RATE_LIMIT {
        let init = match t.format_handshake_initiation(&mut buf, true) {
            TunnResult::WriteToNetwork(m) => m.to_vec(),
            other => panic!("{other:?}"),
        };
        match run(&mut b, &mut pool, UPLINK, &wg_frame(stranger, (B_IP, B_MAC), &init)) {
            (Verdict::Drop(DropReason::WgUnknownPeer), _) => refused += 1,
            (Verdict::Tx(UPLINK), reply) => {
                assert_eq!(reply.len(), OUTER_LEN + 64, "a cookie reply");
                assert_eq!(&reply[30..34], &stranger.0.octets(), "to the flooding source");
                cookies += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(refused <= super::HANDSHAKE_RATE_LIMIT as usize + 1, "{refused} initiations cost a DH");
    assert!(cookies >= super::HANDSHAKE_RATE_LIMIT as usize - 1, "only {cookies} cookie replies under load");
    let packet = pod_packet(&a, &b, 100);
    let (_, wire) = run(&mut a, &mut pool, POD_PORT, &packet);
    assert_eq!(
        run(&mut b, &mut pool, UPLINK, &wire).0,
        Verdict::Tx(POD_PORT),
        "the established peer is not starved"
    );
}
