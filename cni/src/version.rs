//! CNI spec versions this plugin speaks, and the VERSION answer.

use crate::error::{CniError, INCOMPATIBLE_VERSION};

/// Every version a configuration may name (results are written in the configuration's).
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The version VERSION reports as ours.
pub const CURRENT: &str = "1.0.0";

/// Fails with code 1 unless `version` is one of [`SUPPORTED`].
pub fn check(version: &str) -> Result<(), CniError> {
    if SUPPORTED.contains(&version) {
        return Ok(());
    }
    Err(CniError::new(
        INCOMPATIBLE_VERSION,
        format!("cniVersion {version:?} is not supported by weft-cni"),
        format!("supported versions: {}", SUPPORTED.join(", ")),
    ))
}

/// Whether `version` is at least `min` (both from [`SUPPORTED`] or well-formed `a.b.c`).
pub fn at_least(version: &str, min: &str) -> bool {
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(version) >= parse(min)
}

/// The VERSION command's answer.
pub fn report() -> String {
    serde_json::json!({ "cniVersion": CURRENT, "supportedVersions": SUPPORTED }).to_string()
}

/// Fails with code 1 when `version` predates `min`, the version that introduced `command`.
pub fn check_at_least(version: &str, min: &str, command: &str) -> Result<(), CniError> {
    if at_least(version, min) {
        return Ok(());
    }
    Err(CniError::short(
        INCOMPATIBLE_VERSION,
        format!("{command} needs cniVersion {min} or later, the configuration says {version}"),
    ))
}
