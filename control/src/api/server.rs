//! The API server: a tokio unix listener, one line in, one line out.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{Reply, Request};

/// Longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// What the server calls for each request. Runs on the control runtime:
/// slow work (opening ports) belongs in `spawn_blocking` inside `handle`.
pub trait ApiHandler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, req: Request) -> impl std::future::Future<Output = Reply> + Send;
}

/// Why the API socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    /// Another daemon answers on the socket.
    #[error("api.socket {path}: another weft daemon is already listening there")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Creating the directory or binding failed.
    #[error("api.socket {path}: {what}: {source} (is the directory writable by this user?)")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The step.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// Binds `path`, replacing a stale socket file but never a live daemon's.
pub fn bind(path: &Path) -> Result<UnixListener, ApiServerError> {
    let err = |what, source| ApiServerError::Bind { path: path.to_owned(), what, source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err("creating its directory", e))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ApiServerError::InUse { path: path.to_owned() });
        }
        std::fs::remove_file(path).map_err(|e| err("removing the stale socket", e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| err("binding", e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(|e| err("chmod", e))?;
    Ok(listener)
}

/// Serves `listener` until the task is dropped; one task per connection.
pub async fn serve<H: ApiHandler>(listener: UnixListener, handler: Arc<H>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let h = handler.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, h).await {
                        tracing::debug!("api connection: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("api socket accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection<H: ApiHandler>(stream: UnixStream, handler: Arc<H>) -> io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd.take(MAX_REQUEST as u64)).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => handler.handle(req).await,
            Err(e) => Reply::Error { message: format!("request: {e}") },
        };
        let mut out = serde_json::to_string(&reply).map_err(io::Error::other)?;
        out.push('\n');
        wr.write_all(out.as_bytes()).await?;
    }
    Ok(())
}
