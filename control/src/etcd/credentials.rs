//! TLS and user credentials towards etcd: the client options they give, and the errors
//! that name the `[etcd]` file or credential when etcd, or its certificate, says no.
//!
//! ```text
//! gRPC "authentication failed" / "user name is empty"  -> username
//! gRPC "permission denied"                             -> username's role
//! transport error with TLS configured -> one handshake of our own (probe):
//!     server certificate fails verification            -> ca_file
//!     etcd answers with a certificate alert            -> cert_file
//! ```
//! The probe exists because in TLS 1.3 etcd judges our certificate after the handshake:
//! the gRPC call sees a broken pipe, a cancelled stream or the alert, by timing. The probe
//! waits for etcd's verdict.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use rustls::pki_types::ServerName;
use tonic::Code;

use super::{AgentSettings, ClientOptions, ControlError};
use crate::config::EtcdTls;

/// How long the probe waits to connect, and then for etcd's verdict on our certificate.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// `options` with the TLS and user settings of `client`.
pub(crate) fn connect_options(mut options: ConnectOptions, client: &ClientOptions) -> ConnectOptions {
    if let Some(tls) = &client.tls {
        let mut config = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca.pem));
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(Identity::from_pem(&cert.pem, &key.pem));
        }
        options = options.with_tls(config);
    }
    if let Some(auth) = &client.auth {
        options = options.with_user(auth.username.clone(), auth.password.expose());
    }
    options
}

/// A one-line error naming the `[etcd]` file or credential at fault, when `error` is one
/// that only the operator can fix; `None` for anything else (etcd down, no leader).
pub(crate) async fn diagnose(error: &etcd_client::Error, settings: &AgentSettings) -> Option<ControlError> {
    let endpoints = settings.endpoints.join(",");
    let client = &settings.client;
    let status = match error {
        etcd_client::Error::GRpcStatus(status) => status,
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
            return probe_all(settings).await;
        }
        _ => return None,
    };
    let message = status.message().trim_start_matches("etcdserver: ").to_owned();
    let username = client.auth.as_ref().map(|a| a.username.clone());
    match status.code() {
        Code::InvalidArgument if message.starts_with("authentication failed") => {
            Some(ControlError::EtcdAuth { username: username.unwrap_or_default(), message, endpoints })
        }
        Code::InvalidArgument if message.contains("user name is empty") => {
            Some(ControlError::EtcdAuthRequired { message, endpoints })
        }
        Code::PermissionDenied => Some(ControlError::EtcdPermission {
            username: username.unwrap_or_else(|| "(none: the client certificate's CN)".into()),
            message,
            endpoints,
        }),
        // What a connection that broke (or never came up) looks like from a gRPC call.
        Code::Unknown | Code::Cancelled | Code::Unavailable => probe_all(settings).await,
        _ => None,
    }
}

/// Probes each endpoint (on the blocking pool); the first diagnosis wins.
async fn probe_all(settings: &AgentSettings) -> Option<ControlError> {
    let tls = settings.client.tls.clone()?;
    let endpoints = settings.endpoints.clone();
    tokio::task::spawn_blocking(move || {
        endpoints.iter().find_map(|e| probe(e, &tls).and_then(|error| named(&error, e, &tls)))
    })
    .await
    .ok()
    .flatten()
}

/// One TLS handshake with `endpoint` as the client makes it, then a short wait for etcd's
/// verdict on our certificate; the TLS error, if there is one.
fn probe(endpoint: &str, tls: &EtcdTls) -> Option<rustls::Error> {
    let uri: http::Uri = endpoint.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addr = (host.as_str(), uri.port_u16().unwrap_or(2379)).to_socket_addrs().ok()?.next()?;
    let name = ServerName::try_from(host).ok()?;
    let mut conn = rustls::ClientConnection::new(Arc::new(tls.client_config().ok()?), name).ok()?;
    let mut sock = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).ok()?;
    sock.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    sock.set_write_timeout(Some(PROBE_TIMEOUT)).ok()?;
    let mut plaintext = [0u8; 512];
    loop {
        match conn.complete_io(&mut sock) {
            // Whatever etcd sent after the handshake (a session ticket, HTTP/2 settings):
            // read on until its verdict, the end of the stream or the timeout.
            Ok((read, _)) if read > 0 || conn.is_handshaking() => {
                while let Ok(n) = conn.reader().read(&mut plaintext) {
                    if n == 0 {
                        break;
                    }
                }
            }
            Ok(_) => return None,
            Err(e) => {
                return e.into_inner().and_then(|inner| inner.downcast::<rustls::Error>().ok()).map(|b| *b);
            }
        }
    }
}

/// The error naming the file at fault for a TLS error the probe saw.
fn named(error: &rustls::Error, endpoint: &str, tls: &EtcdTls) -> Option<ControlError> {
    use rustls::AlertDescription as A;
    let endpoints = endpoint.to_owned();
    match error {
        rustls::Error::InvalidCertificate(reason) => Some(ControlError::EtcdServerCertificate {
            ca_file: tls.ca.path.display().to_string(),
            reason: format!("{reason:?}"),
            endpoints,
        }),
        rustls::Error::AlertReceived(
            alert @ (A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::CertificateRequired
            | A::AccessDenied),
        ) => {
            let cert_file = match &tls.identity {
                Some((cert, _)) => cert.path.display().to_string(),
                None => "(none: set [etcd] cert_file and key_file)".into(),
            };
            Some(ControlError::EtcdClientCertificate { cert_file, alert: format!("{alert:?}"), endpoints })
        }
        _ => None,
    }
}
