//! `[etcd]` TLS files and credentials (flanneld's `--etcd-cafile/-certfile/-keyfile/
//! -username/-password`): read and parsed at load time, so a bad file or a missing key is
//! named before weft connects.
//!
//! ```text
//! https:// endpoints  -> ca_file required (weft trusts only that CA), cert_file + key_file optional
//! http:// endpoints   -> no TLS keys
//! username            -> exactly one of password, password_file
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::ConfigError;

/// The TLS keys of `[etcd]`, raw.
#[derive(Debug, Default)]
pub(super) struct RawCredentials {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// A PEM file as read at load time: where it came from, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFile {
    /// The path given in the config.
    pub path: PathBuf,
    /// The file's contents (PEM).
    pub pem: Vec<u8>,
}

/// TLS towards etcd (`https://` endpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// `etcd.ca_file`: the CA(s) the server's certificate must chain to.
    pub ca: PemFile,
    /// `etcd.cert_file` and `etcd.key_file`: our client certificate and its key, for an
    /// etcd started with `--client-cert-auth`.
    pub identity: Option<(PemFile, PemFile)>,
}

impl EtcdTls {
    /// A rustls client config from these files, as tonic builds its own (checked at load
    /// time, so it does not fail on files that passed validation).
    pub fn client_config(&self) -> Result<rustls::ClientConfig, rustls::Error> {
        let pem_error = |e: rustls::pki_types::pem::Error| rustls::Error::General(e.to_string());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca.pem) {
            roots.add(cert.map_err(pem_error)?)?;
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let mut config = match &self.identity {
            Some((cert, key)) => {
                let certs = CertificateDer::pem_slice_iter(&cert.pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(pem_error)?;
                let key = PrivateKeyDer::from_pem_slice(&key.pem).map_err(pem_error)?;
                builder.with_client_auth_cert(certs, key)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

/// A password that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The password itself, for the authenticate call.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// etcd user authentication (`etcd.username` with `etcd.password` or `etcd.password_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdAuth {
    /// `etcd.username`.
    pub username: String,
    /// The password, from `etcd.password` or read from `etcd.password_file`.
    pub password: Password,
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::key(key, format!("cannot read {}: {e}", path.display())))
}

/// Certificates in `pem`, at least one, each currently valid.
fn certificates(key: &str, path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bad = |what: String| ConfigError::key(key, format!("{}: {what}", path.display()));
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    for cert in &certs {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert)
            .map_err(|e| bad(format!("not a valid X.509 certificate: {e}")))?;
        let validity = parsed.validity();
        let subject = parsed.subject();
        let now = x509_parser::time::ASN1Time::now();
        if now > validity.not_after {
            return Err(bad(format!("certificate {subject} expired at {}", validity.not_after)));
        }
        if now < validity.not_before {
            return Err(bad(format!("certificate {subject} is not valid before {}", validity.not_before)));
        }
    }
    Ok(certs)
}

fn load_ca(path: PathBuf) -> Result<PemFile, ConfigError> {
    let key = "etcd.ca_file";
    let pem = read(key, &path)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(key, &path, &pem)? {
        roots.add(cert).map_err(|e| {
            ConfigError::key(key, format!("{}: not usable as a CA certificate: {e}", path.display()))
        })?;
    }
    Ok(PemFile { path, pem })
}

fn load_identity(cert_path: PathBuf, key_path: PathBuf) -> Result<(PemFile, PemFile), ConfigError> {
    let cert_pem = read("etcd.cert_file", &cert_path)?;
    let certs = certificates("etcd.cert_file", &cert_path, &cert_pem)?;
    let key_pem = read("etcd.key_file", &key_path)?;
    let bad_key = |what: String| ConfigError::key("etcd.key_file", format!("{}: {what}", key_path.display()));
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad_key(format!("no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}")))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| bad_key(format!("unsupported private key: {e}")))?;
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        CertifiedKey::new(certs, signer).keys_match()
    {
        return Err(bad_key(format!(
            "is not the key of the certificate in etcd.cert_file {}",
            cert_path.display()
        )));
    }
    Ok((PemFile { path: cert_path, pem: cert_pem }, PemFile { path: key_path, pem: key_pem }))
}

fn load_password(raw: &mut RawCredentials) -> Result<Option<EtcdAuth>, ConfigError> {
    let password = match (raw.password.take(), raw.password_file.take()) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::key(
                "etcd.password",
                "set etcd.password or etcd.password_file, not both",
            ));
        }
        (Some(p), None) => Some(p),
        (None, Some(path)) => {
            let bytes = read("etcd.password_file", &path)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                ConfigError::key("etcd.password_file", format!("{}: not UTF-8 text", path.display()))
            })?;
            let password =
                text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
            if password.is_empty() {
                return Err(ConfigError::key("etcd.password_file", format!("{}: is empty", path.display())));
            }
            Some(password.to_owned())
        }
        (None, None) => None,
    };
    match (raw.username.take(), password) {
        (Some(username), Some(password)) => {
            if username.is_empty() {
                return Err(ConfigError::key("etcd.username", "must not be empty"));
            }
            Ok(Some(EtcdAuth { username, password: Password(password) }))
        }
        (Some(_), None) => {
            Err(ConfigError::key("etcd.username", "needs etcd.password or etcd.password_file"))
        }
        (None, Some(_)) => Err(ConfigError::key("etcd.password", "needs etcd.username")),
        (None, None) => Ok(None),
    }
}

/// Validates the TLS keys against the endpoints and loads every file they name.
pub(super) fn validate(
    mut raw: RawCredentials,
    endpoints: &[String],
) -> Result<(Option<EtcdTls>, Option<EtcdAuth>), ConfigError> {
    let auth = load_password(&mut raw)?;
    let https = endpoints.iter().position(|e| e.starts_with("https://"));
    let http = endpoints.iter().position(|e| !e.starts_with("https://"));
    if let (Some(s), Some(p)) = (https, http) {
        return Err(ConfigError::key(
            format!("etcd.endpoints[{p}]"),
            format!("is http:// while etcd.endpoints[{s}] is https://: use one scheme for all endpoints"),
        ));
    }
    let Some(first_https) = https else {
        let given = [
            ("etcd.ca_file", &raw.ca_file),
            ("etcd.cert_file", &raw.cert_file),
            ("etcd.key_file", &raw.key_file),
        ];
        if let Some((key, _)) = given.iter().find(|(_, v)| v.is_some()) {
            return Err(ConfigError::key(
                *key,
                "is set but the etcd.endpoints are http://: use https:// endpoints for TLS",
            ));
        }
        return Ok((None, auth));
    };
    let ca = raw.ca_file.ok_or_else(|| {
        ConfigError::key(
            "etcd.ca_file",
            format!(
                "required for the https:// endpoint etcd.endpoints[{first_https}]: the CA certificate(s) etcd's server certificate is signed by"
            ),
        )
    })?;
    let ca = load_ca(ca)?;
    let identity = match (raw.cert_file, raw.key_file) {
        (Some(cert), Some(key)) => Some(load_identity(cert, key)?),
        (Some(_), None) => {
            return Err(ConfigError::key(
                "etcd.key_file",
                "etcd.cert_file is set: set etcd.key_file too (its private key)",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::key(
                "etcd.cert_file",
                "etcd.key_file is set: set etcd.cert_file too (its certificate)",
            ));
        }
        (None, None) => None,
    };
    let tls = EtcdTls { ca, identity };
    if let Err(e) = tls.client_config() {
        let (key, file) = match &tls.identity {
            Some((cert, _)) => ("etcd.cert_file", &cert.path),
            None => ("etcd.ca_file", &tls.ca.path),
        };
        return Err(ConfigError::key(key, format!("{}: not usable for TLS: {e}", file.display())));
    }
    Ok((Some(tls), auth))
}
