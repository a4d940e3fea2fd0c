//! Errors of the lab's setup and teardown.

use std::path::PathBuf;

/// Something the lab could not do; every variant names what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab creates namespaces and devices: it needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
    #[error("the netns lab needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run it as root or with sudo")]
    NotRoot,
    /// A helper program could not be started (not installed?).
    #[error("cannot run {program}: {error} (installed by scripts/setup.sh?)")]
    Spawn {
        /// The program.
        program: String,
        /// Why (in the message, so not also a `source()`: printed once).
        error: std::io::Error,
    },
    /// A helper program failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A file of the lab (state, log, config, subnet.env) could not be read or written.
    #[error("{path}: {error}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why (in the message, so not also a `source()`: printed once).
        error: std::io::Error,
    },
    /// The state file is not valid JSON of the expected shape.
    #[error("state file {path} is unreadable: {error}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why (in the message, so not also a `source()`: printed once).
        error: serde_json::Error,
    },
    /// Something did not become ready in time.
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long.
        seconds: u64,
    },
    /// The lab spec is not usable.
    #[error("lab spec: {0}")]
    Spec(String),
    /// A weft node's daemon did not answer on its API socket.
    #[error("weft node n{node}: {error}")]
    WeftApi {
        /// The node's index.
        node: usize,
        /// Why (the API client's error, or an unexpected reply).
        error: String,
    },
}

impl LabError {
    pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
        let path = path.into();
        move |error| LabError::File { path, error }
    }
}
