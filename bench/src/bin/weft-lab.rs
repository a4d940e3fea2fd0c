//! `weft-lab`: the netns lab (`up`, `down`, `status`), the kernel-flannel node agent
//! (`kflannel`) and the pod tools (`tcp-echo`, `tcp-send`). See `weft_bench::lab`.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabSpec, NodeSpec, supervise, tcp, udp};

const USAGE: &str = "usage: weft-lab <command> [options]

commands:
  up       --prefix P [--nodes N] [--weft-nodes M] [--weft-cmd 'weft run --config {config}']
           [--pods K] [--backend vxlan|host-gw|ipip] [--direct-routing] [--mtu 1500]
           [--state-root /run/weft-lab]
           N kernel-flannel nodes (default 2) then M weft nodes (default 0), K pods each (default 1).
           --direct-routing: flannel vxlan with DirectRouting true (weft nodes only; the same
           as --backend vxlan-direct-routing).
           Weft nodes are prepared; --weft-cmd starts a daemon on each ({config}, {ns}, {node},
           {public_ip}, {uplink}, {etcd}, {subnet_file}, {dir} are expanded) and `up` waits
           until each daemon's API socket reports a route to every other node.
  down     --prefix P [--state-root DIR]   remove everything the state file lists
  status   --prefix P [--state-root DIR] [--json]
  kflannel ...                             the kernel-flannel node agent (weft-lab kflannel --help)
  tcp-echo --listen ADDR:PORT              TCP echo server (for pods)
  tcp-send --to ADDR:PORT [--bytes N]      send N bytes, check the echo, print the rate
           [--secs S [--mbit R]]           or keep sending for S seconds (at most R Mbit/s);
                                           prints the longest stall of the echo too
  tcp-probe --to ADDR:PORT,... [--timeout-ms T]
           connect to every target at once (T ms, default 1500), echo one byte;
           prints `ADDR:PORT ok` or `ADDR:PORT fail` per target
  udp-echo --listen ADDR:PORT              UDP echo server (for pods)
  udp-probe --to ADDR:PORT,... [--timeout-ms T] [--first-source-port P]
           send a datagram to every target at once, wait T ms (default 1500) for its echo;
           the i-th target from source port P+i (default: ports the kernel picks);
           prints `ADDR:PORT ok` or `ADDR:PORT fail` per target";

/// How long `up` waits for weft daemons to route every other node.
const WEFT_CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Options that take no value.
const SWITCHES: &[&str] = &["--json", "--direct-routing"];

struct Flags(Vec<String>);

impl Flags {
    /// Refuses options this command does not know (a typo must not silently mean a default).
    fn only(&self, known: &[&str]) -> anyhow::Result<&Self> {
        let mut it = self.0.iter();
        while let Some(arg) = it.next() {
            anyhow::ensure!(known.contains(&arg.as_str()), "unknown option {arg:?}\n\n{USAGE}");
            if !SWITCHES.contains(&arg.as_str()) {
                it.next();
            }
        }
        Ok(self)
    }
    fn value(&self, name: &str) -> Option<&str> {
        self.0.iter().position(|a| a == name).and_then(|i| self.0.get(i + 1)).map(String::as_str)
    }
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.value(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name} {v:?}")))
    }
    fn prefix(&self) -> anyhow::Result<String> {
        self.value("--prefix").map(str::to_owned).with_context(|| format!("--prefix is required\n\n{USAGE}"))
    }
    fn state_root(&self) -> PathBuf {
        PathBuf::from(self.value("--state-root").unwrap_or(DEFAULT_STATE_ROOT))
    }
}

fn up(flags: &Flags) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the weft-lab binary")?;
    let exe = exe.display().to_string();
    let kernel_nodes: usize = flags.parsed("--nodes", 2)?;
    let weft_nodes: usize = flags.parsed("--weft-nodes", 0)?;
    let weft_cmd: Option<Vec<String>> =
        flags.value("--weft-cmd").map(|c| c.split_whitespace().map(str::to_owned).collect());
    let weft_started = weft_cmd.is_some() && weft_nodes > 0;
    let mut nodes = vec![NodeSpec::kernel(&exe); kernel_nodes];
    nodes.extend(std::iter::repeat_n(NodeSpec::weft(weft_cmd), weft_nodes));
    let mut backend = Backend::parse(flags.value("--backend").unwrap_or("vxlan"))?;
    if flags.has("--direct-routing") {
        anyhow::ensure!(
            matches!(backend, Backend::Vxlan | Backend::VxlanDirectRouting),
            "--direct-routing is a vxlan option (flannel's Backend.DirectRouting), not {}",
            backend.lab_name()
        );
        backend = Backend::VxlanDirectRouting;
    }
    let spec = LabSpec {
        prefix: flags.prefix()?,
        state_root: flags.state_root(),
        backend,
        nodes,
        pods_per_node: flags.parsed("--pods", 1)?,
        uplink_mtu: flags.parsed("--mtu", 1500)?,
    };
    let lab = Lab::up(&spec)?;
    // Weft daemons route their peers a moment after they wrote subnet.env: wait for that, so
    // the lab is usable when `up` returns (kernel nodes were waited for by `Lab::up`).
    let waited = if weft_started { lab.wait_weft_routes(WEFT_CONVERGE_TIMEOUT) } else { Ok(()) };
    print_status(&lab, false);
    // A closed stdout (`| head`) must not end `up` with a panic: the lab is up either way.
    let _ = writeln!(std::io::stdout(), "\ntear down with: weft-lab down --prefix {}", spec.prefix);
    waited?;
    Ok(())
}

fn print_status(lab: &Lab, json: bool) {
    // Errors writing stdout (a closed pipe: `| head`) end the listing quietly.
    let mut out = std::io::stdout().lock();
    let state = lab.state();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(state).unwrap_or_default());
        return;
    }
    let existing = weft_bench::lab::cmd::namespaces().unwrap_or_default();
    let ns_mark = |ns: &str| if existing.iter().any(|e| e == ns) { "" } else { " (gone)" };
    let _ = writeln!(
        out,
        "lab {} ({:?}, etcd {} in {}{}) state {}",
        state.prefix,
        state.backend,
        state.etcd_endpoint,
        lab.etcd_ns(),
        ns_mark(&lab.etcd_ns()),
        state.path().display()
    );
    for n in &state.nodes {
        let _ = writeln!(
            out,
            "  n{} {:?} ns {}{} uplink {} subnet {}",
            n.index,
            n.kind,
            n.ns,
            ns_mark(&n.ns),
            n.public_ip,
            n.subnet
        );
        if let Some(c) = &n.config {
            let _ = writeln!(out, "     config {}", c.display());
        }
        for p in &n.pods {
            let _ =
                writeln!(out, "     pod {} ns {}{} (host end {})", p.ip, p.ns, ns_mark(&p.ns), p.host_iface);
        }
    }
    for p in &state.processes {
        let alive = if supervise::is_alive(p) { "running" } else { "not running" };
        let _ = writeln!(
            out,
            "  process {:<14} pid {:<7} {alive:<11} ns {} log {}",
            p.name,
            p.pid,
            p.ns,
            p.log.display()
        );
    }
}

fn down(flags: &Flags) -> anyhow::Result<()> {
    let prefix = flags.prefix()?;
    let lab = Lab::open(&flags.state_root(), &prefix)
        .with_context(|| format!("no lab {prefix} (nothing to remove, or a different --state-root)"))?;
    let report = lab.down();
    for s in &report.stopped {
        println!("stopped {s}");
    }
    println!("deleted {} namespaces", report.deleted.len());
    anyhow::ensure!(report.failures.is_empty(), "left behind: {:?}", report.failures);
    // Leftover namespaces with this prefix that the state file does not list are reported,
    // never deleted: they are not provably ours.
    let strays: Vec<String> = weft_bench::lab::cmd::namespaces()?
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect();
    if !strays.is_empty() {
        eprintln!(
            "note: namespaces named {prefix}-* that the state file did not list (not touched): {strays:?}"
        );
    }
    Ok(())
}

fn tcp_send(flags: &Flags) -> anyhow::Result<()> {
    let to = flags.value("--to").context("--to ADDR:PORT is required")?.parse()?;
    let amount = match flags.value("--secs") {
        Some(_) => {
            anyhow::ensure!(!flags.has("--bytes"), "--bytes and --secs exclude each other");
            let mbit = flags.value("--mbit").map(str::parse).transpose().context("--mbit")?;
            tcp::Amount::For { duration: Duration::from_secs_f64(flags.parsed("--secs", 0.0)?), mbit }
        }
        None => {
            anyhow::ensure!(!flags.has("--mbit"), "--mbit paces a --secs stream");
            tcp::Amount::Bytes(flags.parsed("--bytes", 1 << 20)?)
        }
    };
    let t = tcp::transfer(to, amount, Duration::from_secs(10))?;
    let mbit = t.bytes as f64 * 8.0 / t.elapsed.as_secs_f64() / 1e6;
    println!(
        "{} bytes echoed intact in {:?} ({mbit:.0} Mbit/s each way); longest stall {} ms",
        t.bytes,
        t.elapsed,
        t.longest_stall.as_millis()
    );
    Ok(())
}

/// `tcp-probe` and `udp-probe`: every `--to` target at once with `probe`, one verdict line each.
fn probe(
    flags: &Flags,
    probe: impl Fn(&[std::net::SocketAddr], Duration) -> Vec<bool>,
) -> anyhow::Result<()> {
    let to = flags.value("--to").context("--to ADDR:PORT,... is required")?;
    let targets: Vec<std::net::SocketAddr> = to
        .split(',')
        .map(|t| t.parse().with_context(|| format!("--to {t:?}")))
        .collect::<anyhow::Result<_>>()?;
    let timeout = Duration::from_millis(flags.parsed("--timeout-ms", 1500)?);
    for (t, ok) in targets.iter().zip(probe(&targets, timeout)) {
        println!("{t} {}", if ok { "ok" } else { "fail" });
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let flags = Flags(rest.clone());
    let result = match command.as_deref() {
        Some("up") => flags
            .only(&[
                "--prefix",
                "--nodes",
                "--weft-nodes",
                "--weft-cmd",
                "--pods",
                "--backend",
                "--direct-routing",
                "--mtu",
                "--state-root",
            ])
            .and_then(up),
        Some("down") => flags.only(&["--prefix", "--state-root"]).and_then(down),
        Some("status") => flags
            .only(&["--prefix", "--state-root", "--json"])
            .and_then(Flags::prefix)
            .and_then(|p| Ok(Lab::open(&flags.state_root(), &p)?))
            .map(|lab| print_status(&lab, flags.has("--json"))),
        Some("kflannel") => weft_bench::kflannel::run(&rest),
        Some("tcp-echo") => flags
            .value("--listen")
            .context("--listen ADDR:PORT is required")
            .and_then(|a| Ok(tcp::echo_server(a.parse()?)?)),
        Some("udp-echo") => flags
            .value("--listen")
            .context("--listen ADDR:PORT is required")
            .and_then(|a| Ok(udp::echo_server(a.parse()?)?)),
        Some("tcp-send") => flags.only(&["--to", "--bytes", "--secs", "--mbit"]).and_then(tcp_send),
        Some("tcp-probe") => flags.only(&["--to", "--timeout-ms"]).and_then(|f| probe(f, tcp::probe)),
        Some("udp-probe") => flags.only(&["--to", "--timeout-ms", "--first-source-port"]).and_then(|f| {
            let first =
                f.value("--first-source-port").map(str::parse).transpose().context("--first-source-port")?;
            probe(f, |targets, timeout| udp::probe(targets, timeout, first))
        }),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("no command given\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weft-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
