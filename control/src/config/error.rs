//! Config errors: always the key and the problem.

use std::ops::Range;
use std::path::PathBuf;

/// Why a config file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type or an unknown key (the message names it).
    #[error("config: {0}")]
    Syntax(String, Option<Range<usize>>),
    /// A value is present but wrong.
    #[error("{key}: {problem}")]
    Key {
        /// Dotted key path, e.g. `etcd.endpoints[0]`.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

impl ConfigError {
    pub(crate) fn key(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Key { key: key.into(), problem: problem.into() }
    }

    /// The key the error is about, when it is about one value.
    pub fn key_path(&self) -> Option<&str> {
        match self {
            ConfigError::Key { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Parses `value` at `key` with `FromStr`, naming the key and the expectation on failure.
pub(crate) fn parse_at<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| ConfigError::key(key, format!("{value:?} is not {what}")))
}
