//! Config errors: always the key, where it is in the file, and the problem.

use std::fmt;
use std::path::PathBuf;

/// Where in the config file an error is: `file:line:column`, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as given (`config` when the text came without a name).
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// `file:line:column: ` when known.
struct At<'a>(&'a Option<Location>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(at) => write!(f, "{at}: "),
            None => Ok(()),
        }
    }
}

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
    /// The text is not TOML.
    #[error("{}{message}", At(at))]
    Syntax {
        /// What the TOML parser says.
        message: String,
        /// Where.
        at: Option<Location>,
    },
    /// A key is missing, unknown, of the wrong type, or its value is wrong.
    #[error("{}{key}: {problem}", At(at))]
    Key {
        /// Dotted key path, e.g. `etcd.endpoints[0]`.
        key: String,
        /// What is wrong: what was expected and what was found.
        problem: String,
        /// Where the key (or, when it is missing, its table) is in the file.
        at: Option<Location>,
    },
}

impl ConfigError {
    pub(crate) fn key(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Key { key: key.into(), problem: problem.into(), at: None }
    }

    /// The key the error is about, when it is about one value.
    pub fn key_path(&self) -> Option<&str> {
        match self {
            ConfigError::Key { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Where in the file the error is, when known.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Key { at, .. } | ConfigError::Syntax { at, .. } => at.as_ref(),
            ConfigError::Read { .. } => None,
        }
    }

    /// What is wrong, without the key and the location.
    pub fn problem(&self) -> String {
        match self {
            ConfigError::Key { problem, .. } => problem.clone(),
            ConfigError::Syntax { message, .. } => message.clone(),
            ConfigError::Read { source, .. } => source.to_string(),
        }
    }

    /// Sets the location of a key error that has none.
    pub(super) fn located(mut self, locate: impl FnOnce(&str) -> Option<Location>) -> Self {
        if let ConfigError::Key { key, at: at @ None, .. } = &mut self {
            *at = locate(key);
        }
        self
    }
}

/// Parses `value` at `key` with `FromStr`, naming the key and the expectation on failure.
pub(crate) fn parse_at<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| ConfigError::key(key, format!("expected {what}, found {value:?}")))
}
