//! `weft run` against etcd faults, each in a netns of its own with a real etcd:
//! - started while its etcd is down: it waits (one log line, not one per retry), attaches
//!   nothing, and runs normally once etcd starts (late, on the configured port); SIGTERM
//!   while waiting exits 0; while it waits, `weft status` answers with the waiting state and
//!   the last error, and `/healthz` says 503 with the reason, 200 once it runs;
//! - its lease lost and its subnet taken by another node: it leases another subnet, and
//!   `weft status` shows the mismatch with the subnet its pods and data plane are in;
//! - against an etcd as clusters run it (https, client certificates, users): it takes its
//!   lease with `[etcd]` ca_file, cert_file, key_file, username and password, and a wrong
//!   password stops it at once with one line naming the user.

mod common;
mod netns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::Etcd;
use common::etcd::ServerTls;
use common::pki::Pki;
use netns::daemon::{Daemon, engine_sections};
use netns::{Netns, root_or_skip, unique_stem, veth_between};
use weft_control::api::StatusReport;

/// What the daemon logs when it begins to wait for etcd (see `weft_control::etcd`).
const WAITING_LINE: &str = "waiting for etcd";
/// The metrics listener, on the node namespace's loopback.
const METRICS_PORT: u16 = 9464;

/// A node namespace with an uplink veth, a config naming `etcd` and a temp dir.
struct Node {
    ns: Netns,
    _peer: Netns,
    dir: tempfile::TempDir,
    uplink: String,
}

impl Node {
    /// `GET /healthz` on the node's metrics listener: (status code, body).
    fn healthz(&self) -> Result<(u16, String)> {
        self.ns.run(|| -> Result<(u16, String)> {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", METRICS_PORT))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET /healthz HTTP/1.1\r\nHost: weft\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            let code = out.split(' ').nth(1).and_then(|c| c.parse().ok()).context("status line")?;
            let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
            Ok((code, body))
        })?
    }

    fn new() -> Result<Self> {
        let stem = unique_stem();
        let ns = Netns::new(&format!("{stem}n"))?;
        let peer = Netns::new(&format!("{stem}w"))?;
        let uplink = format!("{stem}u");
        veth_between(&ns, &uplink, "02:00:00:0e:00:01", &peer, &format!("{stem}v"), "02:00:00:0e:00:02")?;
        Ok(Node { ns, _peer: peer, dir: tempfile::tempdir()?, uplink })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_config(&self, etcd: &Etcd) -> Result<PathBuf> {
        self.write_config_with(etcd, "")
    }

    /// The config, with `etcd_keys` added to its `[etcd]` section.
    fn write_config_with(&self, etcd: &Etcd, etcd_keys: &str) -> Result<PathBuf> {
        let cfg = self.path("w.toml");
        let engine = engine_sections(&self.uplink, "generic", 1, &self.path("w.sock")).replace(
            "[metrics]\nenabled = false\n",
            &format!("[metrics]\nlisten = \"127.0.0.1:{METRICS_PORT}\"\n"),
        );
        std::fs::write(
            &cfg,
            format!(
                r#"mode = "etcd"
[node]
name = "late"
public_ip = "198.18.0.12"
vtep_mac = "0a:58:c6:12:00:0c"
subnet_file = "{d}/subnet.env"
[etcd]
endpoints = ["{ep}"]
{etcd_keys}
[network]
network = "198.19.0.0/16"
backend = "vxlan"
{engine}"#,
                d = self.dir.path().display(),
                ep = etcd.endpoint(),
            ),
        )?;
        Ok(cfg)
    }

    /// `weft run --init-network --config cfg` in the namespace, with the agent's debug
    /// lines (one per retry) in the log so the test can tell retries from announcements.
    fn start_weft(&self, cfg: &Path) -> Result<Running> {
        let log = self.path("w.log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns.name,
                env!("CARGO_BIN_EXE_weft"),
                "run",
                "--init-network",
                "--config",
            ])
            .arg(cfg)
            .env("WEFT_LOG", "info,weft_control::etcd=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(Running { child: Some(child), log })
    }
}

/// The daemon child; killed on drop unless it exited.
struct Running {
    child: Option<Child>,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Waits until the log has `n` lines containing `text`.
    fn wait_log(&self, text: &str, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.log().lines().filter(|l| l.contains(text)).count() < n {
            if Instant::now() > deadline {
                bail!("no {n} lines with {text:?} after {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGTERM; the exit status within 10 s.
    fn sigterm(&mut self) -> Result<std::process::ExitStatus> {
        let child = self.child.as_mut().context("child")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("weft did not stop within 10 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `weft status` (up to 20 s) until it answers with a report that satisfies `done`.
fn wait_status(weft: &Running, sock: &Path, done: impl Fn(&StatusReport) -> bool) -> Result<StatusReport> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = match Daemon::status(sock) {
            Ok(r) if done(&r) => return Ok(r),
            Ok(r) => format!("{r:?}"),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!("weft status never got there: {last}\n{}", weft.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Retries are debug lines; the waiting state is announced once.
fn waited_quietly(weft: &Running) -> Result<()> {
    weft.wait_log("not started yet", 5, Duration::from_secs(15))?;
    let log = weft.log();
    let announced = log.lines().filter(|l| l.contains(WAITING_LINE)).count();
    ensure!(announced == 1, "the wait is announced once, not per retry:\n{log}");
    Ok(())
}

/// A node, its etcd (reserved, not running) and weft started against it, once weft has
/// retried a few times; `None` (skipped loudly) without root.
fn weft_waiting(test: &str) -> Result<Option<(Node, Etcd, Running)>> {
    if !root_or_skip(test) {
        return Ok(None);
    }
    let node = Node::new()?;
    let etcd = node.ns.run(Etcd::reserved)?;
    let cfg = node.write_config(&etcd)?;
    let weft = node.start_weft(&cfg)?;
    waited_quietly(&weft)?;
    Ok(Some((node, etcd, weft)))
}

#[test]
fn weft_started_before_etcd_waits_attaching_nothing_then_runs_once_etcd_starts() -> Result<()> {
    let test = "weft_started_before_etcd_waits_attaching_nothing_then_runs_once_etcd_starts";
    let Some((node, mut etcd, mut weft)) = weft_waiting(test)? else { return Ok(()) };
    ensure!(weft.running(), "weft exited while etcd was down:\n{}", weft.log());
    ensure!(!node.ns.has_xdp(&node.uplink)?, "nothing is attached before the lease");
    // The API and /healthz answer while weft waits, saying what it waits for and why.
    let waiting = Daemon::status(&node.path("w.sock")).context("weft status while waiting")?;
    ensure!(waiting.phase == "waiting for etcd" && waiting.etcd.is_none(), "{waiting:?}");
    let w = waiting.waiting.clone().context("the waiting state")?;
    let last = w.last_error.clone().unwrap_or_default();
    ensure!(w.attempts >= 5 && last.contains(&etcd.endpoint()), "{w:?}");
    let text = netns::daemon::cli(&["status", "--socket", &node.path("w.sock").display().to_string()])?;
    let text = String::from_utf8_lossy(&text.stdout);
    ensure!(text.contains("WAITING FOR ETCD") && text.contains(&last), "{text}");
    let (code, body) = node.healthz()?;
    ensure!(code == 503 && body.contains("waiting for etcd"), "{code} {body}");

    let etcd = node.ns.run(move || {
        etcd.start_now();
        etcd
    })?;
    let report = wait_status(&weft, &node.path("w.sock"), |r| r.phase == "running")?;
    let state = report.etcd.clone().context("etcd state")?;
    ensure!(state.connected && state.lease_id != 0, "{state:?}");
    ensure!(report.subnet.starts_with("198.19."), "{}", report.subnet);
    ensure!(node.ns.has_xdp(&node.uplink)?, "the uplink is attached once the lease is held");
    ensure!(weft.log().contains("etcd answered"), "the end of the wait is logged:\n{}", weft.log());
    ensure!(report.phase == "running" && report.waiting.is_none(), "{report:?}");
    let (code, body) = node.healthz()?;
    ensure!(code == 200 && body == "ok\n", "{code} {body}");
    ensure!(weft.sigterm()?.success(), "{}", weft.log());
    drop(etcd);
    Ok(())
}

#[test]
fn a_subnet_taken_by_another_node_after_our_lease_is_lost_shows_as_a_mismatch_in_status() -> Result<()> {
    if !root_or_skip("a_subnet_taken_by_another_node_after_our_lease_is_lost_shows_as_a_mismatch_in_status") {
        return Ok(());
    }
    let node = Node::new()?;
    let etcd = node.ns.run(Etcd::start)?;
    let cfg = node.write_config(&etcd)?;
    let mut weft = node.start_weft(&cfg)?;
    let sock = node.path("w.sock");
    let first = wait_status(&weft, &sock, |r| r.phase == "running")?;
    ensure!(first.etcd.as_ref().is_some_and(|e| e.stale_subnet.is_none()), "{:?}", first.etcd);

    // Another node writes its lease over our key: ours is lost and the subnet is taken.
    let key = format!("{}/subnets/{}", common::PREFIX, first.subnet.replace('/', "-"));
    let other = common::flannel_vxlan_lease("198.18.0.99", "0a:58:c6:12:00:63");
    let etcd = node.ns.run(move || {
        etcd.etcdctl(&["put", &key, &other]);
        etcd
    })?;
    let moved = wait_status(&weft, &sock, |r| r.etcd.as_ref().is_some_and(|e| e.stale_subnet.is_some()))?;
    let state = moved.etcd.clone().context("etcd state")?;
    ensure!(state.stale_subnet.as_deref() == Some(first.subnet.as_str()), "{state:?}");
    ensure!(moved.subnet != first.subnet && state.reacquired == 1, "{moved:?}");
    let text = netns::daemon::cli(&["status", "--socket", &sock.display().to_string()])?;
    let text = String::from_utf8_lossy(&text.stdout);
    ensure!(text.contains("SUBNET MISMATCH"), "{text}");
    ensure!(weft.log().contains("our subnet lease was lost"), "one loud line:\n{}", weft.log());
    ensure!(weft.sigterm()?.success(), "{}", weft.log());
    drop(etcd);
    Ok(())
}

#[test]
fn sigterm_while_waiting_for_etcd_exits_cleanly() -> Result<()> {
    let Some((node, _etcd, mut weft)) = weft_waiting("sigterm_while_waiting_for_etcd_exits_cleanly")? else {
        return Ok(());
    };
    let status = weft.sigterm()?;
    let log = weft.log();
    ensure!(status.success(), "exit {status:?}:\n{log}");
    ensure!(log.contains("SIGTERM") && log.contains("stopped before etcd was ready"), "{log}");
    ensure!(!node.path("subnet.env").exists(), "no subnet.env without a lease");
    Ok(())
}

/// A node whose etcd, in its namespace, runs as clusters run it: https, client certificates
/// required, auth on with user `weft`/`weft-pw`; and the `[etcd]` keys for it with
/// `password`. `None` (skipped loudly) without root.
fn secure_node(test: &str, password: &str) -> Result<Option<(Node, Pki, Etcd, String)>> {
    if !root_or_skip(test) {
        return Ok(None);
    }
    let node = Node::new()?;
    let pki = Pki::new();
    let tls = ServerTls {
        ca: pki.path("ca.pem"),
        cert: pki.path("server.pem"),
        key: pki.path("server-key.pem"),
        ctl_cert: pki.path("client.pem"),
        ctl_key: pki.path("client-key.pem"),
    };
    let etcd = node.ns.run(move || {
        let mut etcd = Etcd::start_tls(&tls, &[]);
        etcd.enable_auth("root-pw", "weft", "weft-pw", common::PREFIX);
        etcd
    })?;
    let keys = format!(
        "ca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\nusername = \"weft\"\npassword = {password:?}",
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client-key.pem"),
    );
    Ok(Some((node, pki, etcd, keys)))
}

#[test]
fn weft_run_takes_its_lease_from_an_etcd_with_tls_client_certificates_and_a_password() -> Result<()> {
    let test = "weft_run_takes_its_lease_from_an_etcd_with_tls_client_certificates_and_a_password";
    let Some((node, _pki, etcd, keys)) = secure_node(test, "weft-pw")? else { return Ok(()) };
    let cfg = node.write_config_with(&etcd, &keys)?;
    let mut weft = node.start_weft(&cfg)?;
    let report = wait_status(&weft, &node.path("w.sock"), |r| r.phase == "running")?;
    let state = report.etcd.clone().context("etcd state")?;
    ensure!(state.connected && state.lease_id != 0, "{state:?}");
    let key = format!("{}/subnets/{}", common::PREFIX, report.subnet.replace('/', "-"));
    let (etcd, lease) = node.ns.run(move || {
        let lease = etcd.get(&key);
        (etcd, lease)
    })?;
    ensure!(lease.is_some_and(|l| l.contains("198.18.0.12")), "our lease is in etcd");
    ensure!(weft.sigterm()?.success(), "{}", weft.log());
    drop(etcd);
    Ok(())
}

#[test]
fn weft_run_with_a_wrong_etcd_password_exits_at_once_with_one_line_naming_the_user() -> Result<()> {
    let test = "weft_run_with_a_wrong_etcd_password_exits_at_once_with_one_line_naming_the_user";
    let Some((node, _pki, etcd, keys)) = secure_node(test, "not-it")? else { return Ok(()) };
    let cfg = node.write_config_with(&etcd, &keys)?;
    let mut weft = node.start_weft(&cfg)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while weft.running() {
        ensure!(
            Instant::now() < deadline,
            "weft still runs (waiting?) with a wrong password:\n{}",
            weft.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = weft.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("authentication failed")).collect();
    let expected = format!(
        "weft: etcd: authentication failed for [etcd] username 'weft': authentication failed, invalid user ID or password (endpoints {})",
        etcd.endpoint()
    );
    ensure!(lines == [expected.as_str()], "one line naming the user:\n{log}");
    ensure!(!node.path("subnet.env").exists(), "no subnet.env without a lease");
    drop(etcd);
    Ok(())
}
