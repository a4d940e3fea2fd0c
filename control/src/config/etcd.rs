//! `[etcd]`: where the leases live.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// flannel's default etcd prefix.
pub const DEFAULT_PREFIX: &str = "/coreos.com/network";
/// flannel's lease TTL: 24 hours.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEtcd {
    endpoints: Option<Vec<String>>,
    prefix: Option<String>,
    lease_ttl_secs: Option<u64>,
}

/// `[etcd]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSection {
    /// `etcd.endpoints` (default `["http://127.0.0.1:2379"]`).
    pub endpoints: Vec<String>,
    /// `etcd.prefix` without a trailing slash (default `/coreos.com/network`).
    pub prefix: String,
    /// `etcd.lease_ttl_secs` (default 86400).
    pub lease_ttl: Duration,
}

impl Default for EtcdSection {
    fn default() -> Self {
        EtcdSection {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: DEFAULT_PREFIX.into(),
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

fn is_http_url(s: &str) -> bool {
    let rest = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

pub(super) fn validate(raw: RawEtcd) -> Result<EtcdSection, ConfigError> {
    let mut out = EtcdSection::default();
    if let Some(endpoints) = raw.endpoints {
        if endpoints.is_empty() {
            return Err(ConfigError::key("etcd.endpoints", "must list at least one endpoint"));
        }
        for (i, e) in endpoints.iter().enumerate() {
            if !is_http_url(e) {
                return Err(ConfigError::key(
                    format!("etcd.endpoints[{i}]"),
                    format!("{e:?} is not an http(s) URL"),
                ));
            }
        }
        out.endpoints = endpoints;
    }
    if let Some(prefix) = raw.prefix {
        let trimmed = prefix.trim_end_matches('/');
        if !trimmed.starts_with('/') {
            return Err(ConfigError::key("etcd.prefix", format!("{prefix:?} must start with '/'")));
        }
        out.prefix = trimmed.to_owned();
    }
    if let Some(ttl) = raw.lease_ttl_secs {
        if !(2..=7 * 24 * 3600).contains(&ttl) {
            return Err(ConfigError::key(
                "etcd.lease_ttl_secs",
                format!("{ttl} is outside 2..=604800 seconds"),
            ));
        }
        out.lease_ttl = Duration::from_secs(ttl);
    }
    Ok(out)
}
