//! A real etcd for tests: `/usr/bin/etcd` on 127.0.0.1 with random free
//! client and peer ports and a temporary data dir, killed by PID on drop
//! (also when the test panics). [`Etcd::start_tls`] runs it as clusters do: https only,
//! client certificates required, and (after [`Etcd::enable_auth`]) users and roles.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ETCD: &str = "/usr/bin/etcd";
const ETCDCTL: &str = "/usr/bin/etcdctl";

/// One single-member etcd cluster.
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    tls: Option<ServerTls>,
    extra_args: Vec<String>,
    /// `name:password` etcdctl authenticates with once auth is on.
    ctl_user: Option<String>,
}

/// TLS for [`Etcd::start_tls`]: etcd serves `cert`/`key`, requires client certificates
/// signed by `ca`, and etcdctl connects with `ctl_cert`/`ctl_key`.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ctl_cert: PathBuf,
    pub ctl_key: PathBuf,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

impl Etcd {
    /// Starts etcd and waits until it answers. Panics with what is missing
    /// when etcd is not installed (scripts/setup.sh installs etcd-server).
    pub fn start() -> Self {
        Self::start_with(None, &[])
    }

    fn start_with(tls: Option<&ServerTls>, extra_args: &[&str]) -> Self {
        assert!(
            std::path::Path::new(ETCD).exists() && std::path::Path::new(ETCDCTL).exists(),
            "{ETCD} or {ETCDCTL} missing: install the Debian packages etcd-server and etcd-client (scripts/setup.sh does)"
        );
        let mut last = String::new();
        for _ in 0..3 {
            let mut etcd = Etcd::reserved();
            etcd.tls = tls.cloned();
            etcd.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
            match etcd.spawn() {
                Ok(()) => return etcd,
                Err(e) => last = e, // most likely a port taken between probe and bind: retry
            }
        }
        panic!("etcd did not start: {last}");
    }

    /// Starts etcd with `https://` client URLs serving `tls.cert`, and
    /// `--client-cert-auth`: only clients with a certificate signed by `tls.ca` get in.
    /// `extra_args` go to etcd as they are (e.g. `--auth-token-ttl`).
    pub fn start_tls(tls: &ServerTls, extra_args: &[&str]) -> Self {
        Self::start_with(Some(tls), extra_args)
    }

    /// Turns on etcd's authentication: a `root` user (password `root_password`, which
    /// etcdctl uses from now on) and `user`/`password` with read-write on `prefix`.
    pub fn enable_auth(&mut self, root_password: &str, user: &str, password: &str, prefix: &str) {
        self.etcdctl(&["user", "add", &format!("root:{root_password}")]);
        self.etcdctl(&["user", "add", &format!("{user}:{password}")]);
        self.etcdctl(&["role", "add", "weft-node"]);
        self.etcdctl(&["role", "grant-permission", "--prefix=true", "weft-node", "readwrite", prefix]);
        self.etcdctl(&["user", "grant-role", user, "weft-node"]);
        self.etcdctl(&["auth", "enable"]);
        self.ctl_user = Some(format!("root:{root_password}"));
    }

    /// An etcd whose ports and data dir are chosen but which does not run yet (for what
    /// happens before etcd is up); [`Etcd::start_now`] starts it. Reserve it in the
    /// namespace it will run in.
    pub fn reserved() -> Self {
        Etcd {
            child: None,
            dir: tempfile::Builder::new().prefix("weft-etcd-").tempdir().expect("temp dir"),
            client_port: free_port(),
            peer_port: free_port(),
            tls: None,
            extra_args: Vec::new(),
            ctl_user: None,
        }
    }

    /// Starts a [`reserved`](Etcd::reserved) etcd and waits until it answers.
    pub fn start_now(&mut self) {
        self.spawn().expect("etcd start");
    }

    /// `http://127.0.0.1:<client port>` (`https://` for [`Etcd::start_tls`]).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// etcd's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn spawn(&mut self) -> Result<(), String> {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let mut command = Command::new(ETCD);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let child = command
            .args(&self.extra_args)
            .args(["--name", "weft-test"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &self.endpoint(), "--advertise-client-urls", &self.endpoint()])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("weft-test={peer}")])
            // Short election timeout: faster start and a 1 s minimum lease TTL.
            .args(["--heartbeat-interval", "50", "--election-timeout", "300"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {ETCD}: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!(
                    "etcd exited with {status}; log:\n{}",
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                ));
            }
            if self.try_etcdctl(&["endpoint", "health"]).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err("etcd not healthy after 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills etcd (SIGKILL, by PID) and reaps it. The data dir stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` to this etcd (by PID): SIGSTOP freezes it with its sockets open,
    /// as a hung host would, SIGCONT thaws it.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("etcd is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal etcd");
    }

    /// Starts etcd again on the same ports and data dir.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn().expect("etcd restart");
    }

    fn try_etcdctl(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(ETCDCTL);
        if let Some(tls) = &self.tls {
            command
                .arg("--cacert")
                .arg(&tls.ca)
                .arg("--cert")
                .arg(&tls.ctl_cert)
                .arg("--key")
                .arg(&tls.ctl_key);
        }
        if let Some(user) = &self.ctl_user {
            command.arg(format!("--user={user}"));
        }
        let out = command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(["--dial-timeout=1s", "--command-timeout=3s"])
            .args(args)
            .output()
            .map_err(|e| format!("run {ETCDCTL}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Runs `etcdctl <args>` (API v3) against this etcd; panics on failure.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        self.try_etcdctl(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The value at `key`, if any (`etcdctl get --print-value-only`).
    pub fn get(&self, key: &str) -> Option<String> {
        let out = self.etcdctl(&["get", "--print-value-only", key]);
        let value = out.strip_suffix('\n').unwrap_or(&out);
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.etcdctl(&["get", "--prefix", "--keys-only", prefix])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Compacts the history up to the current revision.
    pub fn compact(&self) {
        let status = self.etcdctl(&["endpoint", "status", "--write-out=json"]);
        let revision = status
            .split("\"revision\":")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .expect("revision in etcdctl endpoint status");
        self.etcdctl(&["compact", revision]);
    }

    /// Grants an etcd lease of `ttl_secs` and returns its hex id.
    pub fn grant(&self, ttl_secs: u32) -> String {
        let out = self.etcdctl(&["lease", "grant", &ttl_secs.to_string()]);
        // "lease 694d7d5b5c5a0c0b granted with TTL(2s)"
        out.split_whitespace().nth(1).expect("lease id in etcdctl output").to_owned()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything a start may change in etcd: every key with its value and etcd lease, and every
/// etcd lease with its granted TTL. Two equal snapshots: same keys, same values, same leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// key -> (value, lease id; 0: none)
    pub keys: std::collections::BTreeMap<String, (String, i64)>,
    /// lease id -> granted TTL in seconds (only leases alive now are listed)
    pub leases: std::collections::BTreeMap<i64, i64>,
}

impl Snapshot {
    /// Reads the whole keyspace and every lease of the etcd at `endpoint`.
    pub async fn take(endpoint: &str) -> Snapshot {
        let mut client = etcd_client::Client::connect([endpoint], None).await.expect("connect etcd");
        let all = etcd_client::GetOptions::new().with_all_keys();
        let resp = client.get("", Some(all)).await.expect("get every key");
        let keys = resp
            .kvs()
            .iter()
            .map(|kv| {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                (key, (String::from_utf8_lossy(kv.value()).into_owned(), kv.lease()))
            })
            .collect();
        let mut leases = std::collections::BTreeMap::new();
        let ids: Vec<i64> =
            client.leases().await.expect("list leases").leases().iter().map(|l| l.id()).collect();
        for id in ids {
            let ttl = client.lease_time_to_live(id, None).await.expect("lease time to live");
            if ttl.ttl() > 0 {
                leases.insert(id, ttl.granted_ttl());
            }
        }
        Snapshot { keys, leases }
    }

    /// [`Snapshot::take`] from synchronous code (a test thread, or one inside a netns).
    pub fn take_blocking(endpoint: &str) -> Snapshot {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(Snapshot::take(endpoint))
    }
}
