//! The WireGuard interface flanneld's wireguard backend makes (flannel
//! `pkg/backend/wireguard/device.go`), with wireguard-go over TUN as the lab kernel has no
//! WireGuard module:
//!
//! ```text
//! key:     /run/flannel/wgkey (here: wgkey beside subnet.env), made once (wg genkey), 0400
//! device:  flannel-wg, MTU uplink-80, private key + listen port (ListenPort, 51820)
//! lease:   BackendData {"PublicKey": <wg pubkey>, "Port": ListenPort}
//! address: <subnet>.0/32 on flannel-wg, up; route <Network> dev flannel-wg
//! peers:   one per lease: public key, endpoint PublicIP:Port, AllowedIPs = its subnet,
//!          PresharedKey = PSK, PersistentKeepalive = PersistentKeepaliveInterval
//! ```
//! wireguard-go runs in the foreground as this agent's child and is killed with it.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use ipnet::Ipv4Net;
use weft_control::flannel::{Psk, WgKey, WireGuardOptions};

use crate::lab::cmd;

/// flannel's device name.
pub const DEVICE: &str = "flannel-wg";

/// flannel's MTU overhead for the device.
pub const OVERHEAD: u32 = 80;

/// A running wireguard-go device.
#[derive(Debug)]
pub struct WgDevice {
    child: Child,
    /// Our public key (the lease's `PublicKey`).
    pub public_key: WgKey,
    /// Where the pre-shared key is, if the network sets one (for `wg set ... preshared-key`).
    pub psk_file: Option<PathBuf>,
    /// Persistent keepalive, seconds (0: off).
    pub keepalive: u16,
}

/// The private key kept at `path` (made with `wg genkey` when absent, as flannel does), and its
/// public key.
fn key(path: &Path) -> anyhow::Result<WgKey> {
    if !path.exists() {
        let private = cmd::run("wg", &["genkey"])?;
        std::fs::write(path, private.trim()).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400))?;
    }
    let private = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let public = cmd::run_with_input("wg", &["pubkey"], Some(private.trim()))?;
    public.trim().parse().with_context(|| format!("wg pubkey of {}", path.display()))
}

impl WgDevice {
    /// Starts wireguard-go on [`DEVICE`] with the key kept in `dir` and the network's options.
    pub fn start(dir: &Path, opts: &WireGuardOptions, uplink_mtu: u32) -> anyhow::Result<Self> {
        let key_file = dir.join("wgkey");
        let public_key = key(&key_file)?;
        let child = Command::new("wireguard-go")
            .args(["-f", DEVICE])
            .env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting wireguard-go (Debian package wireguard-go)")?;
        let mut dev = WgDevice { child, public_key, psk_file: None, keepalive: opts.persistent_keepalive };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Path::new(&format!("/sys/class/net/{DEVICE}")).exists() {
            anyhow::ensure!(Instant::now() < deadline, "wireguard-go made no {DEVICE} within 10 s");
            if let Some(status) = dev.child.try_wait()? {
                anyhow::bail!("wireguard-go exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let key_path = key_file.to_string_lossy().into_owned();
        let port = opts.listen_port.to_string();
        cmd::run("wg", &["set", DEVICE, "private-key", &key_path, "listen-port", &port])?;
        if let Some(Psk(psk)) = opts.psk {
            let path = dir.join("wgpsk");
            std::fs::write(&path, psk.to_string())?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))?;
            dev.psk_file = Some(path);
        }
        cmd::ip(&["link", "set", DEVICE, "mtu", &(uplink_mtu - OVERHEAD).to_string()])?;
        Ok(dev)
    }

    /// flannel's `Configure`: `<subnet>.0/32` on the device, up, and the network routed into it.
    pub fn configure(&self, subnet: Ipv4Net, network: Ipv4Net) -> anyhow::Result<()> {
        cmd::ip(&["addr", "replace", &format!("{}/32", subnet.network()), "dev", DEVICE])?;
        cmd::ip(&["link", "set", DEVICE, "up"])?;
        cmd::ip(&["route", "replace", &network.to_string(), "dev", DEVICE])?;
        Ok(())
    }
}

impl Drop for WgDevice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `wg set <DEVICE> ...` arguments of a peer for a lease (flannel's `addPeer`).
pub fn peer_args(
    public_key: WgKey,
    remote: Ipv4Addr,
    port: u16,
    subnet: Ipv4Net,
    psk_file: Option<&Path>,
    keepalive: u16,
) -> Vec<String> {
    let mut args = vec![
        "peer".to_owned(),
        public_key.to_string(),
        "endpoint".to_owned(),
        format!("{remote}:{port}"),
        "allowed-ips".to_owned(),
        subnet.to_string(),
        "persistent-keepalive".to_owned(),
        if keepalive == 0 { "off".to_owned() } else { keepalive.to_string() },
    ];
    if let Some(psk) = psk_file {
        args.extend(["preshared-key".to_owned(), psk.to_string_lossy().into_owned()]);
    }
    args
}
