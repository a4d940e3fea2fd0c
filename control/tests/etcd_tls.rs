//! etcd as clusters run it: https only, `--client-cert-auth`, users and roles. Against a
//! real etcd with certificates generated here, the agent takes its lease with `[etcd]`
//! ca_file, cert_file, key_file, username and password; a wrong CA, an expired client
//! certificate and a wrong password each fail at once with one line naming the file or
//! credential; an agent whose auth token etcd forgot still writes.

mod common;

use std::time::Duration;

use common::pki::Pki;
use common::*;
use weft_control::config::Config;
use weft_control::etcd::{Agent, AgentSettings, ControlError};

const NETWORK: &str = r#"{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}"#;
const USER: &str = "weft";
const PASSWORD: &str = "weft-pw";

/// An etcd with TLS and client certificates required, the network config written, and
/// (when `auth`) user `weft`/`weft-pw` allowed on the prefix.
fn secure_etcd(pki: &Pki, auth: bool, extra_args: &[&str]) -> Etcd {
    let tls = common::etcd::ServerTls {
        ca: pki.path("ca.pem"),
        cert: pki.path("server.pem"),
        key: pki.path("server-key.pem"),
        ctl_cert: pki.path("client.pem"),
        ctl_key: pki.path("client-key.pem"),
    };
    let mut etcd = Etcd::start_tls(&tls, extra_args);
    put_network(&etcd, NETWORK);
    if auth {
        etcd.enable_auth("root-pw", USER, PASSWORD, PREFIX);
    }
    etcd
}

/// The `[etcd]` section of a config for `etcd`, with `extra` keys.
fn etcd_config(etcd: &Etcd, extra: &str) -> String {
    format!(
        r#"mode = "etcd"
[node]
name = "n"
public_ip = "198.18.0.21"
vtep_mac = "0a:58:c6:12:00:15"
subnet_file = "/nonexistent/subnet.env"
[etcd]
endpoints = ["{}"]
{extra}
"#,
        etcd.endpoint()
    )
}

fn files(pki: &Pki, ca: &str, cert: &str, key: &str) -> String {
    format!(
        "ca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
        pki.path(ca),
        pki.path(cert),
        pki.path(key)
    )
}

/// Agent settings from a config text, as `weft run` builds them.
fn settings_from(text: &str, dir: &std::path::Path) -> AgentSettings {
    let config = Config::parse(text).unwrap_or_else(|e| panic!("config rejected: {e}"));
    let vtep_mac = config.node.vtep_mac.expect("the config names node.vtep_mac");
    let mut s = AgentSettings::from_config(&config, vtep_mac, false);
    s.subnet_file = dir.join("subnet.env");
    s.rpc_timeout = Duration::from_secs(3);
    s.backoff_max = Duration::from_millis(400);
    s
}

/// `start_when_ready` must fail at once (no waiting for an operator's mistake) with one
/// line; returns it.
async fn start_error(settings: AgentSettings) -> (ControlError, String) {
    let started = tokio::time::timeout(
        Duration::from_secs(10),
        Agent::start_when_ready(settings, std::future::pending()),
    )
    .await
    .expect("an error at once, not a wait");
    let error = started.expect_err("start must fail");
    let line = error.to_string();
    eprintln!("{line}");
    assert!(!line.contains('\n'), "one line: {line}");
    (error, line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_ca_client_certificate_and_password_takes_its_lease_from_a_secured_etcd() {
    let pki = Pki::new();
    let etcd = secure_etcd(&pki, true, &[]);
    let dir = tempfile::tempdir().unwrap();
    let text = etcd_config(
        &etcd,
        &format!(
            "{}username = \"{USER}\"\npassword = \"{PASSWORD}\"",
            files(&pki, "ca.pem", "client.pem", "client-key.pem")
        ),
    );
    let running = Running::start(settings_from(&text, dir.path())).await;
    let key = format!("{PREFIX}/subnets/{}-{}", running.subnet.network(), running.subnet.prefix_len());
    let lease = etcd.get(&key).expect("our lease is in etcd");
    assert!(lease.contains("\"PublicIP\":\"198.18.0.21\""), "{lease}");
    // And the watch works through TLS: a peer's lease becomes a route.
    put_peer(&etcd, "198.19.200.0-24", "198.18.0.200", "0a:58:c6:12:00:c8");
    let peer = "198.19.200.0/24".parse().unwrap();
    wait_for("the peer's route", Duration::from_secs(10), || running.table().contains_key(&peer)).await;
    assert_eq!(running.status().errors, 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_fails_at_once_naming_the_ca_file() {
    let pki = Pki::new();
    let etcd = secure_etcd(&pki, false, &[]);
    let dir = tempfile::tempdir().unwrap();
    let text = etcd_config(&etcd, &files(&pki, "other-ca.pem", "client.pem", "client-key.pem"));
    let (error, line) = start_error(settings_from(&text, dir.path())).await;
    assert!(matches!(error, ControlError::EtcdServerCertificate { .. }), "{error:?}");
    let expected = format!(
        "etcd: server certificate of {} not trusted by [etcd] ca_file {}: UnknownIssuer",
        etcd.endpoint(),
        pki.path("other-ca.pem").display()
    );
    assert_eq!(line, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_client_certificate_is_named_by_its_file_at_load_and_by_etcd() {
    let pki = Pki::new();
    let etcd = secure_etcd(&pki, false, &[]);
    let dir = tempfile::tempdir().unwrap();
    let expired = pki.path("expired.pem");

    // At load time, before any connection.
    let text = etcd_config(&etcd, &files(&pki, "ca.pem", "expired.pem", "expired-key.pem"));
    let error = Config::parse(&text).expect_err("an expired certificate is rejected");
    assert_eq!(error.key_path(), Some("etcd.cert_file"));
    let line = error.to_string();
    assert!(
        line.contains(&format!(": etcd.cert_file: {}: certificate CN=weft expired at ", expired.display())),
        "{line}"
    );

    // And had it been loaded before it expired, etcd's refusal names it too.
    let good = etcd_config(&etcd, &files(&pki, "ca.pem", "client.pem", "client-key.pem"));
    let mut settings = settings_from(&good, dir.path());
    let identity = &mut settings.client.tls.as_mut().unwrap().identity.as_mut().unwrap();
    identity.0.path = expired.clone();
    identity.0.pem = std::fs::read(&expired).unwrap();
    identity.1.pem = std::fs::read(pki.path("expired-key.pem")).unwrap();
    let (error, line) = start_error(settings).await;
    assert!(matches!(error, ControlError::EtcdClientCertificate { .. }), "{error:?}");
    let expected = format!(
        "etcd at {} rejected the client certificate [etcd] cert_file {}: ",
        etcd.endpoint(),
        expired.display()
    );
    assert!(line.starts_with(&expected), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_at_once_naming_the_username() {
    let pki = Pki::new();
    let etcd = secure_etcd(&pki, true, &[]);
    let dir = tempfile::tempdir().unwrap();
    let text = etcd_config(
        &etcd,
        &format!(
            "{}username = \"{USER}\"\npassword = \"not-it\"",
            files(&pki, "ca.pem", "client.pem", "client-key.pem")
        ),
    );
    let (error, line) = start_error(settings_from(&text, dir.path())).await;
    assert!(matches!(error, ControlError::EtcdAuth { .. }), "{error:?}");
    assert_eq!(
        line,
        format!(
            "etcd: authentication failed for [etcd] username 'weft': authentication failed, invalid user ID or password (endpoints {})",
            etcd.endpoint()
        )
    );
}

/// The config error for `[etcd]` keys `extra` with `endpoint`: (key, message).
fn config_error(endpoint: &str, extra: &str) -> (String, String) {
    let text = format!(
        "mode = \"etcd\"\n[node]\nname = \"n\"\npublic_ip = \"198.18.0.21\"\n[etcd]\nendpoints = [\"{endpoint}\"]\n{extra}\n"
    );
    let error = Config::parse(&text).expect_err("config must be rejected");
    (error.key_path().unwrap_or_default().to_owned(), error.to_string())
}

#[test]
fn tls_and_credential_keys_are_checked_at_load_naming_the_key_and_the_file() {
    let pki = Pki::new();
    let https = "https://127.0.0.1:2379";
    let ca = pki.path("ca.pem");
    let (key, line) = config_error(https, "");
    assert_eq!(key, "etcd.ca_file", "{line}");
    assert!(line.contains("required for the https:// endpoint etcd.endpoints[0]"), "{line}");

    let (key, line) =
        config_error(https, &format!("ca_file = {ca:?}\ncert_file = {:?}", pki.path("client.pem")));
    assert_eq!(key, "etcd.key_file", "{line}");
    assert!(line.contains("etcd.cert_file is set"), "{line}");
    let (key, line) =
        config_error(https, &format!("ca_file = {ca:?}\nkey_file = {:?}", pki.path("client-key.pem")));
    assert_eq!(key, "etcd.cert_file", "{line}");
    assert!(line.contains("etcd.key_file is set"), "{line}");

    let missing = pki.path("missing.pem");
    let (key, line) = config_error(https, &format!("ca_file = {missing:?}"));
    assert_eq!(key, "etcd.ca_file", "{line}");
    assert!(line.contains(&format!("cannot read {}", missing.display())), "{line}");
    let (key, line) = config_error(https, &format!("ca_file = {:?}", pki.path("client-key.pem")));
    assert_eq!(key, "etcd.ca_file", "{line}");
    assert!(line.contains("holds no PEM certificate"), "{line}");

    // A key that is not the certificate's.
    let (key, line) = config_error(
        https,
        &format!(
            "ca_file = {ca:?}\ncert_file = {:?}\nkey_file = {:?}",
            pki.path("client.pem"),
            pki.path("server-key.pem")
        ),
    );
    assert_eq!(key, "etcd.key_file", "{line}");
    assert!(line.contains("is not the key of the certificate in etcd.cert_file"), "{line}");

    let (key, line) = config_error("http://127.0.0.1:2379", &format!("ca_file = {ca:?}"));
    assert_eq!(key, "etcd.ca_file", "{line}");
    assert!(line.contains("use https:// endpoints"), "{line}");
    let (key, line) =
        config_error(&format!("{https}\", \"http://127.0.0.2:2379"), &format!("ca_file = {ca:?}"));
    assert_eq!(key, "etcd.endpoints[1]", "{line}");
    assert!(line.contains("use one scheme for all endpoints"), "{line}");
}

#[test]
fn a_password_comes_from_the_config_or_a_file_never_both_and_needs_a_username() {
    let pki = Pki::new();
    let http = "http://127.0.0.1:2379";
    let (key, _) = config_error(http, "username = \"weft\"");
    assert_eq!(key, "etcd.username");
    let (key, _) = config_error(http, "password = \"pw\"");
    assert_eq!(key, "etcd.password");
    let file = pki.dir().join("password");
    std::fs::write(&file, "from-file\n").unwrap();
    let (key, line) =
        config_error(http, &format!("username = \"weft\"\npassword = \"pw\"\npassword_file = {file:?}"));
    assert_eq!(key, "etcd.password", "{line}");
    let missing = pki.dir().join("nope");
    let (key, line) = config_error(http, &format!("username = \"weft\"\npassword_file = {missing:?}"));
    assert_eq!(key, "etcd.password_file", "{line}");
    assert!(line.contains(&missing.display().to_string()), "{line}");

    let text = format!(
        "mode = \"etcd\"\n[node]\nname = \"n\"\npublic_ip = \"198.18.0.21\"\n[etcd]\nendpoints = [\"{http}\"]\nusername = \"weft\"\npassword_file = {file:?}\n"
    );
    let config = Config::parse(&text).unwrap();
    let auth = config.etcd.auth.expect("auth");
    assert_eq!((auth.username.as_str(), auth.password.expose()), ("weft", "from-file"));
    assert!(!format!("{auth:?}").contains("from-file"), "the password never shows in Debug output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_auth_token_expired_still_writes_without_an_error() {
    let pki = Pki::new();
    // etcd forgets a token 2 s after its last use.
    let etcd = secure_etcd(&pki, true, &["--auth-token-ttl", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let text = etcd_config(
        &etcd,
        &format!(
            "{}username = \"{USER}\"\npassword = \"{PASSWORD}\"",
            files(&pki, "ca.pem", "client.pem", "client-key.pem")
        ),
    );
    let running = Running::start(settings_from(&text, dir.path())).await;
    let key = format!("{PREFIX}/subnets/{}-{}", running.subnet.network(), running.subnet.prefix_len());
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Our key deleted: the agent must write it again, long after its token expired.
    etcd.etcdctl(&["del", &key]);
    wait_for("the lease re-acquired", Duration::from_secs(10), || running.status().reacquired == 1).await;
    assert!(etcd.get(&key).is_some(), "our lease is back in etcd");
    assert_eq!(running.status().errors, 0, "{:?}", running.status());
    running.stop().await;
}
