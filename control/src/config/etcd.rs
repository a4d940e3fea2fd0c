//! `[etcd]`: where the leases live.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::etcd_credentials::{self, EtcdAuth, EtcdTls, RawCredentials};
use super::int::Int;

/// flannel's default etcd prefix.
pub const DEFAULT_PREFIX: &str = "/coreos.com/network";
/// weft's own keys (network policies) live under this prefix, apart from flannel's.
pub const DEFAULT_WEFT_PREFIX: &str = "/weft";
/// flannel's lease TTL: 24 hours.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(24 * 3600);
/// HTTP/2 keepalive ping interval towards etcd, as kube-apiserver's etcd client (30 s).
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a keepalive ping may go unanswered before the connection counts as dead
/// (kube-apiserver's 10 s).
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest keepalive interval accepted: etcd answers pings closer together than its
/// `--grpc-keepalive-min-time` (5 s by default) with GOAWAY ENHANCE_YOUR_CALM and drops the
/// watch; grpc-go clients, etcd's own among them, never ping more often than every 10 s.
pub const MIN_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEtcd {
    endpoints: Option<Vec<String>>,
    prefix: Option<String>,
    weft_prefix: Option<String>,
    lease_ttl_secs: Option<Int<u64, 2, 604_800>>,
    keepalive_interval_secs: Option<u64>,
    keepalive_timeout_secs: Option<Int<u64, 1, 600>>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
}

/// `[etcd]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSection {
    /// `etcd.endpoints` (default `["http://127.0.0.1:2379"]`).
    pub endpoints: Vec<String>,
    /// `etcd.prefix` without a trailing slash (default `/coreos.com/network`).
    pub prefix: String,
    /// `etcd.weft_prefix` without a trailing slash (default `/weft`): weft's own keys,
    /// `<weft_prefix>/policies/<namespace>/<name>`.
    pub weft_prefix: String,
    /// `etcd.lease_ttl_secs` (default 86400).
    pub lease_ttl: Duration,
    /// `etcd.keepalive_interval_secs` (default 30): an HTTP/2 ping after this long without
    /// traffic, only while a stream (the watch) is open.
    pub keepalive_interval: Duration,
    /// `etcd.keepalive_timeout_secs` (default 10): an unanswered ping closes the
    /// connection after this long (etcd dead or frozen: the agent retries).
    pub keepalive_timeout: Duration,
    /// `etcd.ca_file`, `etcd.cert_file`, `etcd.key_file`, loaded: TLS for `https://`
    /// endpoints (none for `http://`).
    pub tls: Option<EtcdTls>,
    /// `etcd.username` with `etcd.password` or `etcd.password_file`.
    pub auth: Option<EtcdAuth>,
}

impl Default for EtcdSection {
    fn default() -> Self {
        EtcdSection {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: DEFAULT_PREFIX.into(),
            weft_prefix: DEFAULT_WEFT_PREFIX.into(),
            lease_ttl: DEFAULT_LEASE_TTL,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            tls: None,
            auth: None,
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

/// An etcd key prefix: starts with '/', trailing slashes dropped.
fn key_prefix(key: &str, prefix: &str) -> Result<String, ConfigError> {
    let trimmed = prefix.trim_end_matches('/');
    if !trimmed.starts_with('/') {
        return Err(ConfigError::key(key, format!("{prefix:?} must start with '/'")));
    }
    Ok(trimmed.to_owned())
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
                    format!("expected an http(s) URL, found {e:?}"),
                ));
            }
        }
        out.endpoints = endpoints;
    }
    if let Some(prefix) = raw.prefix {
        out.prefix = key_prefix("etcd.prefix", &prefix)?;
    }
    if let Some(prefix) = raw.weft_prefix {
        out.weft_prefix = key_prefix("etcd.weft_prefix", &prefix)?;
    }
    if let Some(ttl) = raw.lease_ttl_secs {
        out.lease_ttl = Duration::from_secs(ttl.get());
    }
    if let Some(secs) = raw.keepalive_interval_secs {
        let min = MIN_KEEPALIVE_INTERVAL.as_secs();
        if !(min..=3600).contains(&secs) {
            return Err(ConfigError::key(
                "etcd.keepalive_interval_secs",
                format!(
                    "expected {min}..=3600 seconds (etcd drops clients that ping more often than its --grpc-keepalive-min-time), found {secs}"
                ),
            ));
        }
        out.keepalive_interval = Duration::from_secs(secs);
    }
    if let Some(secs) = raw.keepalive_timeout_secs {
        out.keepalive_timeout = Duration::from_secs(secs.get());
    }
    let credentials = RawCredentials {
        ca_file: raw.ca_file,
        cert_file: raw.cert_file,
        key_file: raw.key_file,
        username: raw.username,
        password: raw.password,
        password_file: raw.password_file,
    };
    (out.tls, out.auth) = etcd_credentials::validate(credentials, &out.endpoints)?;
    Ok(out)
}
