//! A minimal HTTP/1.1 server for `GET /metrics` and `GET /healthz`: one response per
//! connection, then close. No framework: Prometheus and a liveness probe need nothing more.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// The metrics address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("metrics.listen {addr}: {source} (is the port in use? change metrics.listen)")]
pub struct MetricsServerError {
    /// The configured address.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: io::Error,
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsServerError> {
    TcpListener::bind(addr).await.map_err(|source| MetricsServerError { addr, source })
}

/// Serves `GET /metrics` with the text `render` returns and `GET /healthz` with what
/// `health` says (200 `ok`, or 503 with the reason, as flanneld's `/healthz`), until dropped.
pub async fn serve<F, Fut, H>(listener: TcpListener, render: F, health: H)
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send,
    H: Fn() -> Result<(), String> + Clone + Send + Sync + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (render, health) = (render.clone(), health.clone());
                tokio::spawn(async move {
                    if let Err(e) = respond(stream, render, health).await {
                        tracing::debug!("metrics connection: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("metrics accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn respond<F, Fut, H>(mut stream: TcpStream, render: F, health: H) -> io::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = String>,
    H: Fn() -> Result<(), String>,
{
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let first = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = first.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, ctype, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render().await),
        (b"GET", b"/healthz") => match health() {
            Ok(()) => ("200 OK", "text/plain", "ok\n".to_owned()),
            Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
        },
        (b"GET", _) => ("404 Not Found", "text/plain", "try /metrics or /healthz\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_owned()),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}
