//! The agent's etcd connection against a stock etcd (`--grpc-keepalive-min-time` 5 s, pings
//! without an open stream refused): an idle agent keeps one watch for a minute without an
//! error, a re-list or a warning; a frozen etcd (SIGSTOP: its sockets stay open, nothing
//! answers) is still noticed within the configured keepalive interval and timeout.
//!
//! Each test runs on a current-thread runtime with its own log subscriber, so the agent's
//! and the etcd client's log lines are this test's alone.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use tracing::subscriber::DefaultGuard;
use weft_control::config::Config;
use weft_control::etcd::AgentSettings;

const VXLAN_NET: &str = r#"{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}"#;

/// Every log line (all targets, debug and up) written while the guard lives.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn capture() -> (Self, DefaultGuard) {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (log, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn lines_with(&self, level: &str) -> Vec<String> {
        self.text().lines().filter(|l| l.contains(level)).map(str::to_owned).collect()
    }
}

/// Agent settings whose connection options come from an `[etcd]` section as a config file
/// gives them (`extra` lines added to it), for node `host`.
fn settings_from_config(etcd: &Etcd, host: u8, dir: &std::path::Path, extra: &str) -> AgentSettings {
    let toml = format!(
        "mode = \"etcd\"\n[node]\nname = \"k\"\npublic_ip = \"198.18.0.{host}\"\nvtep_mac = \"0a:58:c6:12:00:{host:02x}\"\n\
         [etcd]\nendpoints = [\"{}\"]\n{extra}\n",
        etcd.endpoint()
    );
    let config = Config::parse(&toml).expect("config");
    let mut s = settings(etcd, host, dir);
    s.client = AgentSettings::from_config(&config, s.vtep_mac, false).client;
    s
}

#[tokio::test]
async fn an_idle_agent_keeps_its_watch_against_a_stock_etcd_for_a_minute_without_errors_relists_or_warnings()
{
    let (log, _guard) = Log::capture();
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let running = Running::start(settings_from_config(&etcd, 21, dir.path(), "")).await;
    wait_for("the watch", Duration::from_secs(10), || running.status().connected).await;

    tokio::time::sleep(Duration::from_secs(60)).await;

    let status = running.status();
    let warnings = log.lines_with(" WARN ");
    let errors = log.lines_with(" ERROR ");
    assert!(
        status.errors == 0 && status.resyncs == 0 && status.connected,
        "an idle minute broke the watch: {status:?}\n{}",
        log.text()
    );
    assert!(warnings.is_empty() && errors.is_empty(), "warnings or errors while idle:\n{}", log.text());
    // The watch still delivers.
    put_peer(&etcd, "198.19.200.0-24", "198.18.0.200", "0a:58:c6:12:00:c8");
    let peer = "198.19.200.0/24".parse().unwrap();
    wait_for("the peer's route", Duration::from_secs(5), || running.table().contains_key(&peer)).await;
    running.stop().await;
}

#[tokio::test]
async fn a_frozen_etcd_is_noticed_within_the_keepalive_interval_and_timeout() {
    let (log, _guard) = Log::capture();
    let (etcd, dir) = etcd_with_network(VXLAN_NET);
    let (interval, timeout) = (Duration::from_secs(10), Duration::from_secs(2));
    let extra = "keepalive_interval_secs = 10\nkeepalive_timeout_secs = 2";
    let running = Running::start(settings_from_config(&etcd, 22, dir.path(), extra)).await;
    wait_for("the watch", Duration::from_secs(10), || running.status().connected).await;

    etcd.signal(Signal::SIGSTOP);
    let frozen = Instant::now();
    // A ping goes out `interval` after the last frame read, and the connection closes
    // `timeout` later; one second of slack for scheduling.
    let bound = interval + timeout + Duration::from_secs(1);
    let noticed = tokio::time::timeout(bound + Duration::from_secs(10), async {
        while running.status().connected {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        frozen.elapsed()
    })
    .await;
    etcd.signal(Signal::SIGCONT);
    let noticed = noticed.unwrap_or_else(|_| panic!("a frozen etcd was never noticed:\n{}", log.text()));
    assert!(noticed <= bound, "noticed after {noticed:?}, more than {bound:?}:\n{}", log.text());
    assert!(running.status().errors >= 1);

    // Thawed, it is back: one re-list, the watch up again.
    wait_for("the watch again", Duration::from_secs(20), || running.status().connected).await;
    assert!(running.status().resyncs >= 1);
    eprintln!("frozen etcd noticed after {noticed:?} (interval {interval:?}, timeout {timeout:?})");
    running.stop().await;
}

#[test]
fn a_keepalive_interval_etcd_would_refuse_is_a_config_error_naming_the_key() {
    let base = "mode = \"etcd\"\n[node]\nname = \"k\"\npublic_ip = \"198.18.0.1\"\n[etcd]\n";
    let err = Config::parse(&format!("{base}keepalive_interval_secs = 2\n")).unwrap_err().to_string();
    assert!(err.contains("etcd.keepalive_interval_secs") && err.contains("10..=3600"), "{err}");
    let err = Config::parse(&format!("{base}keepalive_timeout_secs = 0\n")).unwrap_err().to_string();
    assert!(err.contains("etcd.keepalive_timeout_secs"), "{err}");
    let c = Config::parse(base).unwrap();
    assert_eq!((c.etcd.keepalive_interval.as_secs(), c.etcd.keepalive_timeout.as_secs()), (30, 10));
}
