//! `[api]`: the local unix socket `weft status` and `weft pod` talk to.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// The default API socket.
pub const DEFAULT_API_SOCKET: &str = "/run/weft/weft.sock";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    socket: Option<PathBuf>,
}

/// `[api]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSection {
    /// `api.socket` (default `/run/weft/weft.sock`), an absolute path.
    pub socket: PathBuf,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { socket: PathBuf::from(DEFAULT_API_SOCKET) }
    }
}

pub(super) fn validate(raw: RawApi) -> Result<ApiSection, ConfigError> {
    let socket = raw.socket.unwrap_or_else(|| PathBuf::from(DEFAULT_API_SOCKET));
    if !socket.is_absolute() {
        return Err(ConfigError::key(
            "api.socket",
            format!("expected an absolute path, found {}", socket.display()),
        ));
    }
    // sockaddr_un holds 108 bytes including the terminating NUL.
    if socket.as_os_str().len() > 107 {
        return Err(ConfigError::key(
            "api.socket",
            format!("{} is longer than a unix socket path may be (107 bytes)", socket.display()),
        ));
    }
    Ok(ApiSection { socket })
}
