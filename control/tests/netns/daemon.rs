//! A `weft run` child inside a test namespace, its API, and its stop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use weft_control::api::StatusReport;

use super::Netns;

/// A daemon started with `ip netns exec` (which execs weft: the child's pid
/// is the daemon's). Killed on drop unless stopped first.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the `weft` CLI.
pub fn cli(args: &[&str]) -> Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_weft")).args(args).output().context("running weft")
}

impl Daemon {
    /// `weft run --config cfg [extra]` in `ns`, stderr to `log`.
    pub fn start(ns: &Netns, cfg: &Path, extra: &[&str], log: &Path) -> Result<Self> {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_weft"), "run"])
            .args(extra)
            .arg("--config")
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        Ok(Daemon { child: Some(child), log: log.to_owned() })
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `weft status --json` once.
    pub fn status(sock: &Path) -> Result<StatusReport> {
        let out = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["status", "--json", "--socket"])
            .arg(sock)
            .output()?;
        if !out.status.success() {
            bail!("weft status: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Waits (up to 20 s) until the daemon's status says it runs (it answers while it
    /// waits for etcd and attaches too).
    pub fn wait_ready(&self, sock: &Path) -> Result<StatusReport> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match Self::status(sock) {
                Ok(r) if r.phase == "running" => return Ok(r),
                Ok(r) if Instant::now() > deadline => bail!("daemon never ran: {r:?}\n{}", self.log()),
                Ok(_) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) if Instant::now() > deadline => bail!("daemon never answered: {e}\n{}", self.log()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// SIGKILL (no cleanup in the daemon), then reaps it.
    pub fn sigkill(mut self) -> Result<()> {
        let mut child = self.child.take().context("child")?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits (up to 15 s) for exit 0.
    pub fn sigterm(mut self) -> Result<()> {
        let mut child = self.child.take().context("child")?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = child.try_wait()? {
                if !s.success() {
                    bail!("exit {s:?}\n{}", self.log());
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("daemon did not stop on SIGTERM\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The sections every daemon test config ends with: the uplink (`xdp_mode`, `queues`), a small
/// UMEM, metrics off and the API socket.
pub fn engine_sections(uplink: &str, xdp_mode: &str, queues: u32, socket: &Path) -> String {
    format!(
        "[uplink]\ninterface = \"{uplink}\"\nxdp_mode = \"{xdp_mode}\"\nqueues = {queues}\n\
         [workers]\nframes = 1024\n[metrics]\nenabled = false\n[api]\nsocket = \"{}\"\n",
        socket.display()
    )
}

/// A static host-gw node A named `name` (198.18.0.11, pods 198.19.1.0/24, subnet.env in `dir`)
/// with a route to node B's pods 198.19.2.0/24 via 198.18.0.12: the head of a test config.
pub fn static_node_a(name: &str, dir: &Path) -> String {
    format!(
        r#"mode = "static"
[node]
name = "{name}"
public_ip = "198.18.0.11"
uplink_subnet = "198.18.0.0/24"
subnet_file = "{0}/subnet.env"
state_dir = "{0}/state"
[network]
network = "198.19.0.0/16"
backend = "host-gw"
[static]
subnet = "198.19.1.0/24"
[[static.routes]]
subnet = "198.19.2.0/24"
via = "host-gw"
node_ip = "198.18.0.12"
"#,
        dir.display()
    )
}
