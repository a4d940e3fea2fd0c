//! The BGP speaker over real TCP on loopback (127.0.0.1 is our node, 127.0.0.2 a peer played
//! by the test with the codec): a session comes up, an UPDATE becomes a FIB route, a
//! withdrawal removes it, and a malformed message resets that one session with a
//! NOTIFICATION, counted, after which the peer connects again. Sessions ended on purpose end
//! with a Cease: Peer De-configured when the peer is removed, Administrative Shutdown when weft
//! stops. A peer that restarts keeps its routes in weft until its End-of-RIB, unless it comes
//! back without its forwarding state (RFC 4724's F bit).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use weft_bgp::session::Session;
use weft_bgp::wire::notification::cease;
use weft_bgp::wire::{Capability, Context, ErrorCode, Message, Notification, Open, frame_len};
use weft_control::bgp::{BgpStatus, Local, Speaker, SpeakerSettings};
use weft_control::config::BgpSection;
use weft_control::routes::{RecordingSink, Via};

const US: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CTX: Context = Context { four_octet_as: true };

fn free_port() -> u16 {
    std::net::TcpListener::bind((US, 0)).unwrap().local_addr().unwrap().port()
}

async fn read_msg(s: &mut TcpStream, buf: &mut Vec<u8>) -> Message {
    loop {
        if let Some(len) = frame_len(buf).unwrap() {
            if buf.len() >= len {
                let m = Message::parse(&buf[..len], CTX).unwrap();
                buf.drain(..len);
                return m;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "the speaker closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Connects as the peer and brings the session to Established; returns the stream and what
/// the speaker announced.
async fn establish(port: u16) -> (TcpStream, Vec<u8>, Message) {
    establish_with(port, vec![Capability::FourOctetAs(64512)]).await
}

/// [`establish`] with the peer's OPEN carrying `caps`.
async fn establish_with(port: u16, caps: Vec<Capability>) -> (TcpStream, Vec<u8>, Message) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((PEER, 0))).unwrap();
    let mut s = socket.connect(SocketAddr::from((US, port))).await.unwrap();
    let mut buf = Vec::new();
    let Message::Open(theirs) = read_msg(&mut s, &mut buf).await else { panic!("no OPEN first") };
    assert_eq!(theirs.asn(), 64512);
    let open = Open::new(64512, 90, PEER, caps);
    s.write_all(&Message::Open(open).to_bytes(CTX)).await.unwrap();
    assert_eq!(read_msg(&mut s, &mut buf).await, Message::Keepalive);
    s.write_all(&Message::Keepalive.to_bytes(CTX)).await.unwrap();
    let announced = read_msg(&mut s, &mut buf).await;
    (s, buf, announced)
}

#[tokio::test]
async fn routes_flow_and_a_malformed_message_resets_only_that_session() {
    let port = free_port();
    let section =
        BgpSection { asn: 64512, peer_as: 64512, peers: vec![PEER], hold_time: 90, restart_time: 0, port };
    let local = Local {
        address: US,
        subnet: "198.19.1.0/24".parse().unwrap(),
        uplink_subnet: "127.0.0.0/8".parse().unwrap(),
    };
    let settings = SpeakerSettings { section, local };
    let status = BgpStatus::default();
    let speaker = Speaker::bind(settings, status.clone()).unwrap();
    let (_peers_tx, peers_rx) = watch::channel(BTreeSet::from([PEER]));
    let sink = RecordingSink::new();
    let task = tokio::spawn(speaker.run(peers_rx, sink.clone(), std::future::pending()));

    let (mut s, mut buf, announced) = establish(port).await;
    let Message::Update(u) = announced else { panic!("no UPDATE after Established: {announced:?}") };
    assert_eq!(u.announced().collect::<Vec<_>>(), vec![("198.19.1.0/24".parse().unwrap(), US)]);

    let block = "198.19.2.0/24".parse().unwrap();
    let session = Session::new(
        weft_bgp::session::SessionConfig {
            local_as: 64512,
            peer_as: 64512,
            bgp_id: PEER,
            hold_time: 90,
            restart_time: None,
        },
        std::time::Instant::now(),
    )
    .0;
    s.write_all(&session.announcement(vec![block], PEER).to_bytes(CTX)).await.unwrap();
    let installed = async {
        while sink.table().get(&block) != Some(&Via::HostGw { gateway: PEER }) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), installed).await.expect("route installed");
    assert_eq!(status.snapshot()[&PEER].prefixes_in, 1);

    s.write_all(&Session::withdrawal(vec![block]).to_bytes(CTX)).await.unwrap();
    let removed = async {
        while sink.table().contains_key(&block) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), removed).await.expect("route withdrawn");

    // A KEEPALIVE with a broken marker: the speaker answers with a NOTIFICATION and closes.
    let mut bad = Message::Keepalive.to_bytes(CTX);
    bad[0] = 0;
    s.write_all(&bad).await.unwrap();
    // (End-of-RIB and keepalives may come first.)
    let n = loop {
        match read_msg(&mut s, &mut buf).await {
            Message::Notification(n) => break n,
            Message::Update(u) if u.is_end_of_rib() => {}
            Message::Keepalive => {}
            m => panic!("{m:?} instead of a NOTIFICATION"),
        }
    };
    assert_eq!((n.code, n.subcode), (ErrorCode::HEADER, 1));
    let counted = async {
        loop {
            let p = status.snapshot()[&PEER].clone();
            if p.malformed == 1 && p.resets == 1 {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let p = tokio::time::timeout(Duration::from_secs(5), counted).await.expect("reset counted");
    assert!(p.last_error.unwrap_or_default().contains("marker"), "the error names the problem");
    assert!(!task.is_finished(), "the speaker survives a malformed message");

    // The peer comes back: a new session is Established.
    let (_s, _, again) = establish(port).await;
    assert!(matches!(again, Message::Update(_)));
    task.abort();
}

/// Reads until a NOTIFICATION (End-of-RIB and keepalives may come first).
async fn notification(s: &mut TcpStream, buf: &mut Vec<u8>) -> Notification {
    loop {
        match read_msg(s, buf).await {
            Message::Notification(n) => return n,
            Message::Update(_) | Message::Keepalive => {}
            m => panic!("{m:?} instead of a NOTIFICATION"),
        }
    }
}

/// A speaker on `port` peering with [`PEER`], stopped when `stop` is sent.
fn speaker(port: u16) -> (Speaker, watch::Sender<BTreeSet<Ipv4Addr>>, watch::Receiver<BTreeSet<Ipv4Addr>>) {
    let section =
        BgpSection { asn: 64512, peer_as: 64512, peers: vec![PEER], hold_time: 90, restart_time: 120, port };
    let local = Local {
        address: US,
        subnet: "198.19.1.0/24".parse().unwrap(),
        uplink_subnet: "127.0.0.0/8".parse().unwrap(),
    };
    let speaker = Speaker::bind(SpeakerSettings { section, local }, BgpStatus::default()).unwrap();
    let (tx, rx) = watch::channel(BTreeSet::from([PEER]));
    (speaker, tx, rx)
}

#[tokio::test]
async fn a_removed_peer_gets_cease_peer_deconfigured_and_stopping_weft_sends_administrative_shutdown() {
    // The peer leaves the mesh (its lease is gone): its session ends with Peer De-configured.
    let port = free_port();
    let (spk, peers_tx, peers_rx) = speaker(port);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(spk.run(peers_rx, RecordingSink::new(), async {
        let _ = stop_rx.await;
    }));
    let (mut s, mut buf, _) = establish(port).await;
    peers_tx.send(BTreeSet::new()).unwrap();
    let n = notification(&mut s, &mut buf).await;
    assert_eq!((n.code, n.subcode), (ErrorCode::CEASE, cease::PEER_DECONFIGURED), "got {n}");
    assert!(!task.is_finished(), "the speaker runs on without the peer");
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the speaker stops").unwrap();

    // weft stops (SIGTERM): every session ends with Administrative Shutdown, even with graceful
    // restart negotiated, and the speaker returns only after sending it.
    let port = free_port();
    let (spk, _peers_tx, peers_rx) = speaker(port);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(spk.run(peers_rx, RecordingSink::new(), async {
        let _ = stop_rx.await;
    }));
    let (mut s, mut buf, _) = establish(port).await;
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the speaker stops").unwrap();
    let n = notification(&mut s, &mut buf).await;
    assert_eq!((n.code, n.subcode), (ErrorCode::CEASE, cease::ADMIN_SHUTDOWN), "got {n}");
}

/// The peer's OPEN capabilities: 4-octet AS, and graceful restart (120 s) for IPv4 unicast with
/// `forwarding` as its F bit.
fn restart_caps(restarting: bool, forwarding: bool) -> Vec<Capability> {
    vec![
        Capability::FourOctetAs(64512),
        Capability::GracefulRestart {
            restarting,
            restart_time: 120,
            families: vec![(weft_bgp::wire::AddressFamily::IPV4_UNICAST, forwarding)],
        },
    ]
}

/// Waits up to 5 s for `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    let wait = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait).await.unwrap_or_else(|_| panic!("{what}"));
}

#[tokio::test]
async fn a_restarted_peers_routes_stay_until_its_end_of_rib_or_go_at_once_without_its_forwarding_state() {
    let port = free_port();
    let (spk, _peers_tx, peers_rx) = speaker(port);
    let sink = RecordingSink::new();
    let task = tokio::spawn(spk.run(peers_rx, sink.clone(), std::future::pending()));
    let config = weft_bgp::session::SessionConfig {
        local_as: 64512,
        peer_as: 64512,
        bgp_id: PEER,
        hold_time: 90,
        restart_time: Some(120),
    };
    let session = Session::new(config, std::time::Instant::now()).0;
    let (a, b) = ("198.19.2.0/24".parse().unwrap(), "198.19.3.0/24".parse().unwrap());
    let has = |p| sink.table().contains_key(&p);

    // A fresh peer (F clear: nothing to keep yet) announces two blocks, then dies: no
    // NOTIFICATION, the connection just closes.
    let (mut s, _, _) = establish_with(port, restart_caps(false, false)).await;
    s.write_all(&session.announcement(vec![a, b], PEER).to_bytes(CTX)).await.unwrap();
    until("both blocks installed", || has(a) && has(b)).await;
    drop(s);

    // It comes back having kept its forwarding state: both stay through the new session's
    // start; what its End-of-RIB does not cover goes then.
    let (mut s, _, _) = establish_with(port, restart_caps(true, true)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(has(a) && has(b), "a stale route went before the End-of-RIB: {:?}", sink.table());
    s.write_all(&session.announcement(vec![a], PEER).to_bytes(CTX)).await.unwrap();
    s.write_all(&Session::end_of_rib().to_bytes(CTX)).await.unwrap();
    until("the block not announced again removed at End-of-RIB", || !has(b)).await;
    assert!(has(a));
    drop(s);

    // It comes back without its forwarding state: the stale block goes as the session comes up,
    // with no UPDATE and no End-of-RIB.
    let (_s, _, _) = establish_with(port, restart_caps(true, false)).await;
    until("the stale block removed at once", || !has(a)).await;
    task.abort();
}
