//! A blocking client for the CLI: one request, one reply.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Reply, Request};

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    /// The socket is absent or refused the connection.
    #[error(
        "cannot reach the weft daemon at {path}: {source} (is `weft run` running? is [api] socket the same?)"
    )]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Sending or receiving failed.
    #[error("weft daemon at {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The reply was not valid JSON of the protocol.
    #[error("weft daemon at {path}: unreadable reply: {detail}")]
    BadReply {
        /// The socket path.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// Sends `req` to the daemon at `socket` and waits (up to `timeout`) for its reply.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Reply, ApiClientError> {
    let io = |source| ApiClientError::Io { path: socket.to_owned(), source };
    let stream = UnixStream::connect(socket)
        .map_err(|source| ApiClientError::Connect { path: socket.to_owned(), source })?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_string(req)
        .map_err(|e| ApiClientError::BadReply { path: socket.to_owned(), detail: e.to_string() })?;
    line.push('\n');
    (&stream).write_all(line.as_bytes()).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(io)?;
    serde_json::from_str(&reply)
        .map_err(|e| ApiClientError::BadReply { path: socket.to_owned(), detail: format!("{e}: {reply:?}") })
}
