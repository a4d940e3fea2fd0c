//! `[metrics]`: where the Prometheus endpoint listens.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;
use super::error::parse_at;

/// The default metrics address.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    enabled: Option<bool>,
    listen: Option<String>,
    #[serde(default)]
    allow_non_loopback: bool,
}

/// `[metrics]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSection {
    /// `metrics.enabled` (default true).
    pub enabled: bool,
    /// `metrics.listen` (default `127.0.0.1:9464`); loopback unless
    /// `metrics.allow_non_loopback = true`.
    pub listen: SocketAddr,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: true,
            listen: DEFAULT_METRICS_LISTEN.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9464))),
        }
    }
}

pub(super) fn validate(raw: RawMetrics) -> Result<MetricsSection, ConfigError> {
    let mut out = MetricsSection { enabled: raw.enabled.unwrap_or(true), ..MetricsSection::default() };
    if let Some(listen) = raw.listen {
        out.listen = parse_at("metrics.listen", &listen, "an address:port like 127.0.0.1:9464")?;
    }
    if !out.listen.ip().is_loopback() && !raw.allow_non_loopback {
        return Err(ConfigError::key(
            "metrics.listen",
            format!(
                "{} is not a loopback address; metrics are unauthenticated: set metrics.allow_non_loopback = true to expose them",
                out.listen
            ),
        ));
    }
    Ok(out)
}
