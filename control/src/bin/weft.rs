//! `weft`: the node daemon and its operator commands.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use weft_control::api::{Reply, Request, request};
use weft_control::config::{Config, DEFAULT_API_SOCKET, Mode};
use weft_control::daemon::{self, RunOptions};

const USAGE: &str = "usage:
  weft run    --config FILE [--init-network]     run the node daemon
  weft check  --config FILE                      validate a config, print the effective settings
  weft status [--json] [--socket PATH | --config FILE]
  weft pod add --iface IF --ip A [--mac M] [--socket PATH | --config FILE]
  weft pod del --iface IF [--ip A] [--socket PATH | --config FILE]";

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
    if let Some(mac) = node.vtep_mac {
        println!("node.vtep_mac   {mac}");
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
        println!("network         {}", network.to_json());
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
        println!("exception       {ifname}");
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
            flags.check(&["--iface", "--ip", "--mac", "--socket", "--config"], &[])?;
            Request::PodAdd {
                interface: iface,
                ip: flags.value("--ip")?.ok_or("--ip A is required")?.to_owned(),
                mac: flags.value("--mac")?.map(str::to_owned),
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
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
