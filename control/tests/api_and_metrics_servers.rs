//! The API and metrics servers on their own: protocol errors, replies, HTTP paths.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weft_control::api::{self, ApiHandler, Reply, Request, StatusReport};

struct Echo;

impl ApiHandler for Echo {
    async fn handle(&self, req: Request) -> Reply {
        match req {
            Request::Status => {
                Reply::Status { report: Box::new(StatusReport { node: "n1".into(), ..Default::default() }) }
            }
            Request::PodAdd { interface, .. } => Reply::Done { changed: true, message: interface },
            Request::PodDel { interface, .. } => {
                Reply::Error { message: format!("pod.interface: {interface}") }
            }
        }
    }
}

#[test]
fn the_api_answers_each_line_and_names_a_malformed_request() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listener = rt.block_on(async { api::bind(&sock) }).unwrap();
    let sock2 = sock.clone();
    let client = std::thread::spawn(move || {
        let status = api::request(&sock2, &Request::Status, Duration::from_secs(5)).unwrap();
        let add = api::request(
            &sock2,
            &Request::PodAdd {
                interface: "vp1".into(),
                ip: "198.19.1.2".into(),
                mac: None,
                namespace: None,
                name: None,
                labels: Default::default(),
            },
            Duration::from_secs(5),
        )
        .unwrap();
        let mut raw = std::os::unix::net::UnixStream::connect(&sock2).unwrap();
        raw.write_all(b"{\"op\":\"reboot\"}\n").unwrap();
        let mut line = String::new();
        BufReader::new(&raw).read_line(&mut line).unwrap();
        (status, add, line)
    });
    let (status, add, line) = rt.block_on(async {
        let server = tokio::spawn(api::serve(listener, Arc::new(Echo)));
        let out = tokio::task::spawn_blocking(move || client.join().unwrap()).await.unwrap();
        server.abort();
        out
    });
    assert!(matches!(status, Reply::Status { report } if report.node == "n1"));
    assert!(matches!(add, Reply::Done { changed: true, message } if message == "vp1"));
    let reply: Reply = serde_json::from_str(&line).unwrap();
    assert!(
        matches!(&reply, Reply::Error { message } if message.starts_with("request: unknown variant `reboot`")),
        "{line}"
    );
}

#[test]
fn a_second_daemon_cannot_take_a_live_api_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let _live = api::bind(&sock).unwrap();
        let err = api::bind(&sock).unwrap_err().to_string();
        assert!(err.contains("another weft daemon is already listening"), "{err}");
    });
    // A stale file (no listener) is replaced.
    rt.block_on(async { api::bind(&sock) }).unwrap();
}

#[test]
fn metrics_answer_get_metrics_and_healthz_and_nothing_else() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listener = rt.block_on(weft_control::metrics::bind("127.0.0.1:0".parse().unwrap())).unwrap();
    let addr = listener.local_addr().unwrap();
    let get = move |path: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let healthy = Arc::new(AtomicBool::new(false));
    let h = healthy.clone();
    let (metrics, other, sick, well) = rt.block_on(async {
        let server = tokio::spawn(weft_control::metrics::serve(
            listener,
            || async { "weft_up 1\n".to_owned() },
            move || if h.load(Ordering::Relaxed) { Ok(()) } else { Err("waiting for etcd".to_owned()) },
        ));
        let flag = healthy.clone();
        let out = tokio::task::spawn_blocking(move || {
            let (m, o, sick) = (get("/metrics"), get("/"), get("/healthz"));
            flag.store(true, Ordering::Relaxed);
            (m, o, sick, get("/healthz"))
        })
        .await
        .unwrap();
        server.abort();
        out
    });
    assert!(sick.starts_with("HTTP/1.1 503") && sick.ends_with("\r\n\r\nwaiting for etcd\n"), "{sick}");
    assert!(well.starts_with("HTTP/1.1 200 OK\r\n") && well.ends_with("\r\n\r\nok\n"), "{well}");
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert!(
        metrics.contains("text/plain; version=0.0.4") && metrics.ends_with("\r\n\r\nweft_up 1\n"),
        "{metrics}"
    );
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
}
