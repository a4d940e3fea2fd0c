//! `weft`: the node daemon and its operator commands.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use weft_control::config::{Config, Mode};

const USAGE: &str = "usage: weft check --config FILE";

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
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["check", "--config", file] => match check(PathBuf::from(file)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weft: {e}");
                ExitCode::FAILURE
            }
        },
        ["run", ..] => {
            eprintln!(
                "weft: the daemon is not built yet (see the open issues); `weft check --config FILE` validates a config"
            );
            ExitCode::from(2)
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
