//! `weft`: the node daemon and its operator commands.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use weft_control::api::{Reply, Request, request};
use weft_control::config::{Config, DEFAULT_API_SOCKET, Mode};
use weft_control::daemon::{self, RunOptions, vtep_mac};
use weft_control::flannel::MacAddr;
use weft_control::policy::{LabelChange, PolicyId, PolicyStore, Protocol, parse_documents};
use weft_control::wg_key;

const USAGE: &str = "usage:
  weft run    --config FILE [--init-network]     run the node daemon
  weft check  --config FILE                      validate a config, print the effective settings
  weft status [--json] [--socket PATH | --config FILE]
  weft pod add --iface IF --ip A [--mac M] [--pod NS/NAME [--labels K=V,...]] [--socket PATH | --config FILE]
  weft pod del --iface IF [--ip A] [--socket PATH | --config FILE]
  weft policy check -f FILE|-                 validate NetworkPolicy YAML/JSON, no etcd
  weft policy apply -f FILE|- --config FILE   store them in etcd (all documents or none)
  weft policy delete NS/NAME --config FILE
  weft policy list --config FILE
  weft policy explain CLIENT SERVER PROTO/PORT --config FILE
                                              which policies and rule decide CLIENT -> SERVER
                                              (addresses; PROTO TCP, UDP or SCTP)
  weft label pod NS/NAME KEY=VALUE|KEY- ... --config FILE
  weft label namespace NS KEY=VALUE|KEY- ... --config FILE
                                              set or remove labels in the record policies read";

/// How long the CLI waits for the daemon (a pod add opens sockets, restarts a worker).
const API_TIMEOUT: Duration = Duration::from_secs(30);

fn check(path: PathBuf) -> Result<(), String> {
    let config = Config::load(&path).map_err(|e| e.to_string())?;
    let node = &config.node;
    println!("config {}: ok", path.display());
    println!("mode            {:?}", config.mode);
    println!("node.name       {}", node.name);
    println!("node.public_ip  {}", node.public_ip);
    if let Some(net) = node.uplink_subnet {
        println!("node.uplink     {net}");
    }
    match (node.vtep_mac, config.mode) {
        (Some(mac), _) => println!("node.vtep_mac   {mac}"),
        (None, Mode::Etcd) => {
            let file = node.state_dir.join(vtep_mac::FILE);
            match vtep_mac::load(&node.state_dir).map_err(|e| e.to_string())? {
                Some(mac) => println!("node.vtep_mac   {mac} (kept in {})", file.display()),
                None => println!("node.vtep_mac   made at the first start, kept in {}", file.display()),
            }
        }
        // Static mode uses the uplink's MAC.
        (None, Mode::Static) => {}
    }
    if config.mode == Mode::Etcd {
        let file = node.state_dir.join(wg_key::FILE);
        match wg_key::load(&node.state_dir).map_err(|e| e.to_string())? {
            Some(pair) => println!("node.wg_key     public key {} (kept in {})", pair.public, file.display()),
            None => println!(
                "node.wg_key     made when the network is wireguard, kept in {} (0600)",
                file.display()
            ),
        }
    }
    println!(
        "subnet file     {} (ipmasq {}, uplink mtu {})",
        node.subnet_file.display(),
        node.ipmasq,
        node.mtu
    );
    if config.mode == Mode::Etcd {
        println!(
            "etcd            {} prefix {} lease ttl {}s",
            config.etcd.endpoints.join(","),
            config.etcd.prefix,
            config.etcd.lease_ttl.as_secs()
        );
        if let Some(tls) = &config.etcd.tls {
            let client = match &tls.identity {
                Some((cert, key)) => {
                    format!("client cert {} key {}", cert.path.display(), key.path.display())
                }
                None => "no client cert".into(),
            };
            println!("etcd tls        ca {} {client}", tls.ca.path.display());
        }
        if let Some(auth) = &config.etcd.auth {
            println!("etcd user       {}", auth.username);
        }
    }
    if let Some(network) = &config.network {
        println!("network         {}", network.to_json_redacted());
    }
    if let Some(s) = &config.static_routes {
        println!("static subnet   {}", s.subnet);
        for route in &s.routes {
            println!("route           {route}");
        }
    }
    match &config.uplink {
        Some(u) => println!(
            "uplink          {} queues {} backend {:?} xdp {:?}",
            u.interface, u.queues, u.backend, u.xdp_mode
        ),
        None => println!("uplink          (none: `weft run` needs [uplink])"),
    }
    let w = &config.workers;
    println!(
        "workers         cores {:?} (pods on the queue-0 worker) batch {} frames {} busy poll {}",
        w.cores, w.batch, w.frames, w.busy_poll
    );
    for pod in &config.pods {
        let mac = pod.mac.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
        println!("pod             {} {} mac {mac}", pod.interface, pod.ip);
    }
    if config.metrics.enabled {
        println!("metrics         http://{}/metrics", config.metrics.listen);
    } else {
        println!("metrics         off");
    }
    println!("api socket      {}", config.api.socket.display());
    if let Some(ifname) = &config.exception.interface {
        println!("exception       {ifname} (a veth you made: weft makes no host link)");
    }
    match (&config.host_link, config.static_routes.as_ref().map(|s| s.subnet), &config.network) {
        (Some(h), Some(subnet), Some(network)) => {
            for line in weft_control::host_link::HostLinkPlan::new(h, &config, network, subnet).describe() {
                println!("host link       {line}");
            }
        }
        (Some(h), ..) => {
            println!("host link       veth {} (kernel) <-> {} (engine)", h.interface, h.engine_interface);
            println!(
                "host link       address <lease .0>/32, route <Network> via <lease .1> dev {} onlink, \
                 net.ipv4.ip_forward = 1, masquerade {} (the lease decides: see weft status)",
                h.interface,
                if config.node.ipmasq { "on" } else { "off" }
            );
        }
        (None, ..) if config.exception.interface.is_none() => {
            println!(
                "host link       off (host_link.enabled = false): pod traffic leaving the cluster network is dropped"
            )
        }
        (None, ..) => {}
    }
    if let Some(b) = &config.bgp {
        println!("bgp             {}", weft_control::bgp::describe(b, None));
    }
    Ok(())
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WEFT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(path: PathBuf, opts: RunOptions) -> Result<(), String> {
    let config = Config::load(&path).map_err(|e| e.to_string())?;
    init_logs();
    daemon::run(config, opts).map_err(|e| e.to_string())
}

/// Flags of the client commands: `--name value` pairs and bare switches.
struct Flags<'a> {
    args: &'a [&'a str],
}

impl<'a> Flags<'a> {
    fn value(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.args.iter().position(|a| *a == name) {
            Some(i) => self.args.get(i + 1).copied().map(Some).ok_or_else(|| format!("{name} needs a value")),
            None => Ok(None),
        }
    }

    fn switch(&self, name: &str) -> bool {
        self.args.contains(&name)
    }

    /// Rejects anything not in `known` (flags with values) or `switches`.
    fn check(&self, known: &[&str], switches: &[&str]) -> Result<(), String> {
        let mut i = 0;
        while i < self.args.len() {
            let a = self.args[i];
            if known.contains(&a) {
                i += 2;
            } else if switches.contains(&a) {
                i += 1;
            } else {
                return Err(format!("unexpected argument {a:?}"));
            }
        }
        Ok(())
    }

    fn socket(&self) -> Result<PathBuf, String> {
        if let Some(s) = self.value("--socket")? {
            return Ok(PathBuf::from(s));
        }
        if let Some(c) = self.value("--config")? {
            return Ok(Config::load(&PathBuf::from(c)).map_err(|e| e.to_string())?.api.socket);
        }
        Ok(PathBuf::from(DEFAULT_API_SOCKET))
    }
}

fn call(flags: &Flags<'_>, req: Request) -> Result<Reply, String> {
    let reply = request(&flags.socket()?, &req, API_TIMEOUT).map_err(|e| e.to_string())?;
    match reply {
        Reply::Error { message } => Err(message),
        ok => Ok(ok),
    }
}

fn status(flags: Flags<'_>) -> Result<(), String> {
    flags.check(&["--socket", "--config"], &["--json"])?;
    match call(&flags, Request::Status)? {
        Reply::Status { report } if flags.switch("--json") => {
            println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
            Ok(())
        }
        Reply::Status { report } => {
            print!("{report}");
            Ok(())
        }
        other => Err(format!("unexpected reply {other:?}")),
    }
}

fn pod(op: &str, flags: Flags<'_>) -> Result<(), String> {
    let iface = flags.value("--iface")?.ok_or("--iface IF is required")?.to_owned();
    let req = match op {
        "add" => {
            flags.check(&["--iface", "--ip", "--mac", "--pod", "--labels", "--socket", "--config"], &[])?;
            let (namespace, name) = match flags.value("--pod")? {
                Some(p) => {
                    let (ns, n) =
                        p.split_once('/').ok_or_else(|| format!("--pod {p:?}: not NAMESPACE/NAME"))?;
                    (Some(ns.to_owned()), Some(n.to_owned()))
                }
                None => (None, None),
            };
            let mut labels = std::collections::BTreeMap::new();
            for kv in
                flags.value("--labels")?.into_iter().flat_map(|l| l.split(',')).filter(|s| !s.is_empty())
            {
                let (k, v) =
                    kv.split_once('=').ok_or_else(|| format!("--labels: {kv:?} is not KEY=VALUE"))?;
                labels.insert(k.to_owned(), v.to_owned());
            }
            Request::PodAdd {
                interface: iface,
                ip: flags.value("--ip")?.ok_or("--ip A is required")?.to_owned(),
                mac: flags.value("--mac")?.map(str::to_owned),
                namespace,
                name,
                labels,
            }
        }
        _ => {
            flags.check(&["--iface", "--ip", "--socket", "--config"], &[])?;
            Request::PodDel { interface: iface, ip: flags.value("--ip")?.map(str::to_owned) }
        }
    };
    match call(&flags, req)? {
        Reply::Done { message, .. } => {
            println!("{message}");
            Ok(())
        }
        other => Err(format!("unexpected reply {other:?}")),
    }
}

/// Connects to the etcd of the config `--config` names (its `[etcd]` section) and runs `work`
/// with the policy store. No lease is taken: the VtepMAC goes nowhere.
fn with_policy_store<T>(
    flags: &Flags<'_>,
    work: impl AsyncFnOnce(&mut PolicyStore) -> Result<T, String>,
) -> Result<T, String> {
    let path = flags.value("--config")?.ok_or("--config FILE is required (its [etcd] section is used)")?;
    let config = Config::load(&PathBuf::from(path)).map_err(|e| e.to_string())?;
    let settings = weft_control::etcd::AgentSettings::from_config(&config, MacAddr::ZERO, false);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut store =
            PolicyStore::connect(settings, &config.etcd.weft_prefix).await.map_err(|e| e.to_string())?;
        work(&mut store).await
    })
}

/// Reads and validates a policy file (`-`: standard input): every document or none.
fn policy_file(file: &str) -> Result<Vec<weft_control::policy::NetworkPolicy>, String> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?
    };
    let policies = parse_documents(&text, file).map_err(|e| e.to_string())?;
    if policies.is_empty() {
        return Err(format!("{file}: no NetworkPolicy in it"));
    }
    Ok(policies)
}

/// `weft policy ...`: `check` reads the file only; the others talk to the etcd of the node's
/// config directly (as calicoctl does with an etcd datastore).
fn policy(op: &str, flags: Flags<'_>, target: Option<&str>) -> Result<(), String> {
    let known: &[&str] = if matches!(op, "apply" | "check") { &["-f", "--config"] } else { &["--config"] };
    flags.check(known, &[])?;
    // Everything is parsed and validated before etcd is contacted.
    let policies = match op {
        "apply" | "check" => {
            policy_file(flags.value("-f")?.ok_or("-f FILE is required (- for standard input)")?)?
        }
        _ => Vec::new(),
    };
    if op == "check" {
        for p in &policies {
            println!("networkpolicy {} valid ({}; pods {})", p.id(), p.types, p.pod_selector);
        }
        return Ok(());
    }
    let id = match (op, target) {
        ("delete", Some(t)) => Some(t.parse::<PolicyId>()?),
        ("delete", None) => return Err("delete needs NAMESPACE/NAME".into()),
        _ => None,
    };
    with_policy_store(&flags, async |store| {
        match (op, id) {
            ("apply", _) => {
                for (id, applied) in store.apply(&policies).await.map_err(|e| e.to_string())? {
                    println!("networkpolicy {id} {applied}");
                }
            }
            ("delete", Some(id)) => {
                if !store.delete(&id).await.map_err(|e| e.to_string())? {
                    return Err(format!("networkpolicy {id} not found under {}", store.keys().all()));
                }
                println!("networkpolicy {id} deleted");
            }
            _ => {
                let (listed, _) = store.list().await.map_err(|e| e.to_string())?;
                println!("{:<40} {:<16} POD-SELECTOR", "NAMESPACE/NAME", "POLICY-TYPES");
                for l in listed {
                    match l.policy {
                        Ok(p) => println!(
                            "{:<40} {:<16} {}",
                            p.id().to_string(),
                            p.types.to_string(),
                            p.pod_selector
                        ),
                        Err(e) => println!("{:<40} invalid: {e}", l.key),
                    }
                }
            }
        }
        Ok(())
    })
}

/// `weft policy explain`: reads every record from the node's etcd and explains one connection.
fn explain(client: &str, server: &str, port: &str, flags: Flags<'_>) -> Result<(), String> {
    flags.check(&["--config"], &[])?;
    let address = |what: &str, a: &str| {
        a.parse::<std::net::Ipv4Addr>().map_err(|_| format!("{what} {a:?} is not an IPv4 address"))
    };
    let (client, server) = (address("CLIENT", client)?, address("SERVER", server)?);
    let (protocol, number) =
        port.split_once('/').ok_or_else(|| format!("{port:?} is not PROTO/PORT, e.g. TCP/80"))?;
    let protocol = match protocol.to_ascii_uppercase().as_str() {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        other => return Err(format!("protocol {other:?} is not TCP, UDP or SCTP")),
    };
    let port: u16 = number.parse().map_err(|_| format!("port {number:?} is not a number 0..=65535"))?;
    let (records, bad) =
        with_policy_store(&flags, async |store| store.records().await.map_err(|e| e.to_string()))?;
    for problem in bad {
        eprintln!("weft: ignoring {problem}");
    }
    print!("{}", records.inputs().explain(client, server, protocol, port));
    Ok(())
}

/// `weft label pod|namespace`: changes the labels in the record the policies read.
fn label(kind: &str, target: &str, changes: &[&str], flags: Flags<'_>) -> Result<(), String> {
    flags.check(&["--config"], &[])?;
    if changes.is_empty() {
        return Err("no label change given (KEY=VALUE sets, KEY- removes)".into());
    }
    let changes: Vec<LabelChange> = changes.iter().map(|c| c.parse()).collect::<Result<_, _>>()?;
    let show = |labels: &weft_control::policy::Labels| {
        labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    };
    if kind == "pod" {
        let id: PolicyId = target.parse().map_err(|e: String| e.replace("NAMESPACE/NAME", "NS/NAME"))?;
        let labels = with_policy_store(&flags, async |store| {
            store.label_pod(&id.namespace, &id.name, &changes).await.map_err(|e| e.to_string())
        })?
        .ok_or_else(|| {
            format!(
                "pod {id} has no endpoint record (pods get one when attached with their namespace and name)"
            )
        })?;
        println!("pod {id} labeled: {}", show(&labels));
    } else {
        weft_control::policy::check_namespace(target).map_err(|e| format!("namespace {target:?}: {e}"))?;
        let labels = with_policy_store(&flags, async |store| {
            store.label_namespace(target, &changes).await.map_err(|e| e.to_string())
        })?;
        println!("namespace {target} labeled: {}", show(&labels));
    }
    Ok(())
}

fn exit(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weft: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["check", "--config", file] => exit(check(PathBuf::from(file))),
        ["run", "--config", file] => exit(run(PathBuf::from(file), RunOptions::default())),
        ["run", "--config", file, "--init-network"] | ["run", "--init-network", "--config", file] => {
            exit(run(PathBuf::from(file), RunOptions { init_network: true }))
        }
        ["status", rest @ ..] => exit(status(Flags { args: rest })),
        ["pod", op @ ("add" | "del"), rest @ ..] => exit(pod(op, Flags { args: rest })),
        ["label", kind @ ("pod" | "namespace"), target, rest @ ..] => {
            let changes = rest.iter().take_while(|a| !a.starts_with("--")).count();
            exit(label(kind, target, &rest[..changes], Flags { args: &rest[changes..] }))
        }
        ["policy", "explain", client, server, port, rest @ ..] => {
            exit(explain(client, server, port, Flags { args: rest }))
        }
        ["policy", "delete", target, rest @ ..] if !target.starts_with("--") => {
            exit(policy("delete", Flags { args: rest }, Some(target)))
        }
        ["policy", op @ ("check" | "apply" | "list" | "delete"), rest @ ..] => {
            exit(policy(op, Flags { args: rest }, None))
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
