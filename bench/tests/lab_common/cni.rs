//! The CNI plugin under test (`weft-cni`, built under weft-bench as `lab-weft-cni`) as a
//! runtime drives it: `CNI_*` environment, configuration on stdin, run inside a weft node's
//! namespace (`nsenter --net`, the way a runtime on that node would run it).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use weft_bench::lab::{Lab, NodeState, cmd};

use super::weft_socket;

/// The plugin binary.
pub const WEFT_CNI: &str = env!("CARGO_BIN_EXE_lab-weft-cni");

/// Where Debian's containernetworking-plugins installs host-local.
pub const CNI_PLUGINS: &str = "/usr/lib/cni";

/// The name of every test network (and of the plugin's store directory).
pub const NETWORK: &str = "weft-test";

/// Whether host-local is installed; skips `test` loudly (fails under CI) otherwise.
pub fn have_host_local(test: &str) -> bool {
    let ok = Path::new(CNI_PLUGINS).join("host-local").is_file();
    if !ok {
        weft_testnet::skip(
            test,
            "needs host-local from containernetworking-plugins at /usr/lib/cni (scripts/setup.sh installs it)",
        );
    }
    ok
}

/// One plugin run's outcome.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status 0.
    pub ok: bool,
    /// stdout parsed (Null when empty).
    pub json: Value,
    /// stdout and stderr, for messages.
    pub text: String,
}

/// Runs the plugin with `command` for `container`/`ifname` in the namespace `netns`
/// (`None`: CNI_NETNS unset), `stdin` on stdin, inside `node_ns` (`None`: here).
pub fn run_cni(
    node_ns: Option<&str>,
    command: &str,
    container: &str,
    netns: Option<&str>,
    ifname: &str,
    stdin: &str,
) -> Outcome {
    let mut c = match node_ns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{ns}")).arg(WEFT_CNI);
            c
        }
        None => Command::new(WEFT_CNI),
    };
    c.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", CNI_PLUGINS)
        .env("CNI_ARGS", "");
    if let Some(ns) = netns {
        c.env("CNI_NETNS", format!("/run/netns/{ns}"));
    }
    let mut child =
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run weft-cni");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait for weft-cni");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Outcome {
        ok: out.status.success(),
        json: if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or(Value::Null)
        },
        text: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// Where a test keeps the plugin's and host-local's state.
pub fn state_dirs(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("weft-cni"), dir.join("host-local"))
}

/// The network configuration for weft node `i`: host-local over the node subnet from .10
/// when `ipam`, the plugin's own allocation otherwise.
pub fn net_conf(lab: &Lab, i: usize, dir: &Path, ipam: bool) -> Value {
    let node = lab.node(i);
    let (data, ipam_dir) = state_dirs(dir);
    let mut conf = json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": "weft-cni",
        "socket": weft_socket(lab, i),
        "subnetFile": node.subnet_file,
        "dataDir": data,
    });
    if ipam {
        conf["ipam"] = json!({
            "type": "host-local",
            "ranges": [[{ "subnet": node.subnet.to_string(), "rangeStart": range_start(node).to_string() }]],
            "dataDir": ipam_dir,
        });
    }
    conf
}

/// host-local's first address: .10, clear of the lab's own pods.
pub fn range_start(node: &NodeState) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(node.subnet.network()) + 10)
}

/// The `wft*` host ends in namespace `ns`.
pub fn host_ends(ns: &str) -> Vec<String> {
    let out = cmd::ip_in(ns, &["-o", "link", "show"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .filter(|n| n.starts_with(weft_cni::HOST_PREFIX))
        .collect()
}

/// Addresses with an allocation file under `dir`, any network (host-local:
/// `<dir>/<network>/<ip>`; the plugin's store: `<dir>/<network>/ips/<ip>`).
pub fn allocations(dir: &Path) -> Vec<Ipv4Addr> {
    let ips_in = |d: &Path| -> Vec<Ipv4Addr> {
        let Ok(entries) = std::fs::read_dir(d) else { return Vec::new() };
        entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<Ipv4Addr>().ok()).collect()
    };
    let Ok(networks) = std::fs::read_dir(dir) else { return Vec::new() };
    networks
        .filter_map(|e| e.ok())
        .flat_map(|n| [ips_in(&n.path()), ips_in(&n.path().join("ips"))].concat())
        .collect()
}

/// The pods weft node `i` has attached, `(interface, ip)`.
pub fn weft_pods(lab: &Lab, i: usize) -> Vec<(String, String)> {
    weft_cni::weft_api::pods(&weft_socket(lab, i))
        .unwrap_or_else(|e| panic!("weft status of n{i}: {e}"))
        .into_iter()
        .map(|p| (p.interface, p.ip))
        .collect()
}

/// The address an ADD result gave the pod.
pub fn result_ip(result: &Value) -> Ipv4Addr {
    let addr =
        result["ips"][0]["address"].as_str().unwrap_or_else(|| panic!("no ips[0].address in {result}"));
    addr.split('/').next().and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("bad address {addr}"))
}
