//! The spec's error result: `{"cniVersion","code","msg","details"}` on stdout and a non-zero
//! exit. Codes 1–99 are the spec's; 100 and up are weft's own, listed here once.

use serde::Serialize;

/// One failure, as the runtime receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CniError {
    /// The spec's or our error code.
    pub code: u32,
    /// One line naming the problem.
    pub msg: String,
    /// More context (the OS error, the file, the reply), possibly empty.
    pub details: String,
}

/// Incompatible CNI version.
pub const INCOMPATIBLE_VERSION: u32 = 1;
/// A field of the network configuration is not supported.
pub const UNSUPPORTED_FIELD: u32 = 2;
/// Invalid necessary environment variables (`CNI_COMMAND`, `CNI_CONTAINERID`, ...).
pub const INVALID_ENV: u32 = 4;
/// I/O failure (stdin, files).
pub const IO_FAILURE: u32 = 5;
/// Failed to decode content (stdin is not JSON, a result is not a result).
pub const DECODE_FAILURE: u32 = 6;
/// Invalid network config (a key is missing or wrong).
pub const INVALID_CONFIG: u32 = 7;
/// Try again later: weft is not running or has not written its subnet file yet.
pub const TRY_AGAIN_LATER: u32 = 11;
/// STATUS: the plugin cannot serve ADDs now.
pub const NOT_AVAILABLE: u32 = 50;
/// A netlink step (veth, address, route, link state) failed.
pub const NETLINK_FAILURE: u32 = 100;
/// The weft daemon refused or failed the pod request.
pub const WEFT_REFUSED: u32 = 101;
/// The IPAM plugin failed, or its result had no usable IPv4 address.
pub const IPAM_FAILURE: u32 = 102;
/// The node subnet has no free address left (allocation without an `ipam` section).
pub const POOL_EXHAUSTED: u32 = 103;
/// The plugin's state store (`dataDir`) could not be read or written.
pub const STATE_FAILURE: u32 = 104;
/// CHECK found the attachment not as ADD left it.
pub const CHECK_FAILED: u32 = 105;
/// Entering the pod's network namespace or changing the offload setting failed.
pub const NETNS_FAILURE: u32 = 106;

impl CniError {
    /// An error with `code`, `msg` and `details`.
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError { code, msg: msg.into(), details: details.into() }
    }

    /// An error with no details.
    pub fn short(code: u32, msg: impl Into<String>) -> Self {
        Self::new(code, msg, "")
    }

    /// The JSON the runtime reads, for `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> String {
        serde_json::json!({
            "cniVersion": cni_version,
            "code": self.code,
            "msg": self.msg,
            "details": self.details,
        })
        .to_string()
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.msg, self.code)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}
