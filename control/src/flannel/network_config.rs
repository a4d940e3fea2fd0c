//! `<prefix>/config`: flannel's network configuration JSON, with flannel's
//! defaults (pkg/subnet/config.go `CheckNetworkConfig`) and Go's
//! case-insensitive field matching.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{Map, Value, json};

use super::BackendType;
use super::go_json::present;
use super::wg_key::{Psk, WgKey, WgKeyParseError};

/// The UDP port the Linux kernel's VXLAN device uses when flannel says `Port: 0`.
pub const KERNEL_VXLAN_PORT: u16 = 8472;

/// flannel's wireguard `ListenPort` default.
pub const WIREGUARD_PORT: u16 = 51820;

/// flannel's wireguard `ListenPortV6` default.
pub const WIREGUARD_PORT_V6: u16 = 51821;

/// The validated network config with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `Network`: the whole pod network.
    pub network: Ipv4Net,
    /// `SubnetLen`: prefix length of one node's subnet.
    pub subnet_len: u8,
    /// `SubnetMin`: the first subnet handed out (default: the second subnet).
    pub subnet_min: Ipv4Addr,
    /// `SubnetMax`: the last subnet handed out (default: the last subnet).
    pub subnet_max: Ipv4Addr,
    /// `Backend`.
    pub backend: BackendConfig,
}

/// `Backend {Type, VNI, Port, DirectRouting, MTU}` and the wireguard options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// `Type`; flannel's default when `Backend` is absent is `udp`.
    pub backend_type: BackendType,
    /// `VNI` (vxlan), default 1.
    pub vni: u32,
    /// `Port` (vxlan) with 0 resolved to the kernel default 8472.
    pub port: u16,
    /// `DirectRouting` (vxlan): host-gw to nodes on our L2 subnet.
    pub direct_routing: bool,
    /// `MTU`, when the config sets one.
    pub mtu: Option<u32>,
    /// The wireguard backend's options (flannel's defaults for other backends).
    pub wireguard: WireGuardOptions,
}

/// flannel's wireguard backend options (pkg/backend/wireguard `RegisterNetwork`):
/// `ListenPort`, `ListenPortV6`, `PSK`, `PersistentKeepaliveInterval`, `Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireGuardOptions {
    /// `ListenPort` (51820): the UDP port we listen on, published in our lease.
    pub listen_port: u16,
    /// `ListenPortV6` (51821): kept for a round trip; weft runs IPv4.
    pub listen_port_v6: u16,
    /// `PSK`: a pre-shared key mixed into every handshake, the same on every node.
    pub psk: Option<Psk>,
    /// `PersistentKeepaliveInterval`, seconds (flannel multiplies the number by a second); 0 off.
    pub persistent_keepalive: u16,
}

impl Default for WireGuardOptions {
    fn default() -> Self {
        WireGuardOptions {
            listen_port: WIREGUARD_PORT,
            listen_port_v6: WIREGUARD_PORT_V6,
            psk: None,
            persistent_keepalive: 0,
        }
    }
}

/// The config cannot be used: names the key (`Network`, `Backend.VNI`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network config {key}: {problem}")]
pub struct NetworkConfigError {
    /// The JSON key, dotted for nested ones.
    pub key: &'static str,
    /// What is wrong.
    pub problem: String,
}

fn bad(key: &'static str, problem: impl Into<String>) -> NetworkConfigError {
    NetworkConfigError { key, problem: problem.into() }
}

fn string<'a>(
    obj: &'a Map<String, Value>,
    key: &'static str,
    path: &'static str,
) -> Result<Option<&'a str>, NetworkConfigError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(path, format!("{other} is not a string"))),
    }
}

fn uint(
    obj: &Map<String, Value>,
    key: &'static str,
    path: &'static str,
    max: u64,
) -> Result<Option<u64>, NetworkConfigError> {
    match present(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n <= max => Ok(Some(n)),
            _ => Err(bad(path, format!("{v} is not an integer in 0..={max}"))),
        },
    }
}

fn addr(obj: &Map<String, Value>, key: &'static str) -> Result<Option<Ipv4Addr>, NetworkConfigError> {
    string(obj, key, key)?
        .map(|s| s.parse().map_err(|_| bad(key, format!("{s:?} is not an IPv4 address"))))
        .transpose()
}

/// A wireguard listen port: flannel's default when absent, never 0 (a port the kernel would pick
/// at random, which no lease could name).
fn port_option(
    b: &Map<String, Value>,
    key: &'static str,
    path: &'static str,
    default: u16,
) -> Result<u16, NetworkConfigError> {
    match uint(b, key, path, u64::from(u16::MAX))? {
        None => Ok(default),
        Some(0) => Err(bad(path, "0 is not a port other nodes could reach; leave it out for the default")),
        Some(p) => Ok(p as u16),
    }
}

/// The wireguard options of `Backend`, flannel's defaults filled in.
fn wireguard_options(b: &Map<String, Value>) -> Result<WireGuardOptions, NetworkConfigError> {
    let listen_port = port_option(b, "ListenPort", "Backend.ListenPort", WIREGUARD_PORT)?;
    let listen_port_v6 = port_option(b, "ListenPortV6", "Backend.ListenPortV6", WIREGUARD_PORT_V6)?;
    let psk = match string(b, "PSK", "Backend.PSK")? {
        None | Some("") => None,
        Some(text) => Some(Psk(text
            .parse::<WgKey>()
            .map_err(|e: WgKeyParseError| bad("Backend.PSK", e.to_string()))?)),
    };
    let persistent_keepalive =
        uint(b, "PersistentKeepaliveInterval", "Backend.PersistentKeepaliveInterval", 65535)?
            .map_or(0, |n| n as u16);
    match string(b, "Mode", "Backend.Mode")? {
        None | Some("separate" | "auto" | "ipv4") => {}
        Some(other) => {
            return Err(bad(
                "Backend.Mode",
                format!("{other:?}: weft runs IPv4 (\"separate\", \"auto\" or \"ipv4\")"),
            ));
        }
    }
    Ok(WireGuardOptions { listen_port, listen_port_v6, psk, persistent_keepalive })
}

impl NetworkConfig {
    /// Parses and validates `<prefix>/config` as flanneld does, filling in
    /// flannel's defaults: SubnetLen 24 when Network is /22 or wider (else
    /// Network+2), SubnetMin the second subnet, SubnetMax the last one, VNI 1,
    /// Port 0 = 8472.
    pub fn parse(json: &[u8]) -> Result<Self, NetworkConfigError> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| bad("(document)", format!("not JSON: {e}")))?;
        let obj = value.as_object().ok_or_else(|| bad("(document)", "not a JSON object"))?;

        let network: Ipv4Net = match string(obj, "Network", "Network")? {
            Some(s) => s.parse().map_err(|_| bad("Network", format!("{s:?} is not an IPv4 CIDR")))?,
            None => {
                return Err(bad("Network", "missing: please define a correct Network parameter"));
            }
        };
        if network.trunc() != network {
            return Err(bad(
                "Network",
                format!("{network} has host bits set (did you mean {}?)", network.trunc()),
            ));
        }
        let subnet_len = match uint(obj, "SubnetLen", "SubnetLen", 32)? {
            Some(n) if n > 0 => {
                if n > 30 {
                    return Err(bad("SubnetLen", format!("{n} must be less than /31")));
                }
                if n < u64::from(network.prefix_len()) + 2 {
                    return Err(bad("SubnetLen", format!("/{n} leaves {network} fewer than four subnets")));
                }
                n as u8
            }
            _ => match network.prefix_len() {
                p if p > 28 => {
                    return Err(bad(
                        "Network",
                        format!("{network} is too small; the minimum useful prefix is /28"),
                    ));
                }
                p if p <= 22 => 24,
                p => p + 2,
            },
        };
        let size = 1u32 << (32 - subnet_len);
        let mask = u32::MAX << (32 - subnet_len);
        let first = u32::from(network.network());
        let last = u32::from(network.broadcast()) & mask;
        let bound = |key: &'static str, default: u32| -> Result<Ipv4Addr, NetworkConfigError> {
            match addr(obj, key)? {
                None => Ok(Ipv4Addr::from(default)),
                Some(a) if a.is_unspecified() => Ok(Ipv4Addr::from(default)),
                Some(a) if !network.contains(&a) => {
                    Err(bad(key, format!("{a} is not in the range of the Network {network}")))
                }
                Some(a) if u32::from(a) & mask != u32::from(a) => {
                    Err(bad(key, format!("{a} is not on a /{subnet_len} boundary")))
                }
                Some(a) => Ok(a),
            }
        };
        let subnet_min = bound("SubnetMin", first + size)?;
        let subnet_max = bound("SubnetMax", last)?;
        if subnet_min > subnet_max {
            return Err(bad("SubnetMin", format!("{subnet_min} is above SubnetMax {subnet_max}")));
        }

        let backend = match present(obj, "Backend") {
            None => BackendConfig::defaults(BackendType::Other("udp".into())),
            Some(Value::Object(b)) => {
                let backend_type = BackendType::from_name(string(b, "Type", "Backend.Type")?.unwrap_or(""));
                let mut cfg = BackendConfig::defaults(backend_type);
                if let Some(vni) = uint(b, "VNI", "Backend.VNI", (1 << 24) - 1)? {
                    cfg.vni = vni as u32;
                }
                if let Some(port) = uint(b, "Port", "Backend.Port", u64::from(u16::MAX))? {
                    cfg.port = if port == 0 { KERNEL_VXLAN_PORT } else { port as u16 };
                }
                cfg.direct_routing = match present(b, "DirectRouting") {
                    None => false,
                    Some(Value::Bool(v)) => *v,
                    Some(other) => {
                        return Err(bad("Backend.DirectRouting", format!("{other} is not true or false")));
                    }
                };
                cfg.mtu = uint(b, "MTU", "Backend.MTU", 65535)?.map(|m| m as u32);
                if cfg.backend_type == BackendType::WireGuard {
                    cfg.wireguard = wireguard_options(b)?;
                }
                cfg
            }
            Some(other) => return Err(bad("Backend", format!("{other} is not an object"))),
        };
        Ok(NetworkConfig { network, subnet_len, subnet_min, subnet_max, backend })
    }

    /// The JSON `--init-network` writes (flannel's key spelling).
    pub fn to_json(&self) -> String {
        let mut backend = json!({ "Type": self.backend.backend_type.name() });
        if self.backend.backend_type == BackendType::Vxlan {
            backend["VNI"] = json!(self.backend.vni);
            backend["Port"] = json!(self.backend.port);
        }
        if self.backend.direct_routing {
            backend["DirectRouting"] = json!(true);
        }
        if self.backend.backend_type == BackendType::WireGuard {
            let wg = &self.backend.wireguard;
            backend["ListenPort"] = json!(wg.listen_port);
            backend["ListenPortV6"] = json!(wg.listen_port_v6);
            if let Some(Psk(psk)) = wg.psk {
                backend["PSK"] = json!(psk.to_string());
            }
            if wg.persistent_keepalive != 0 {
                backend["PersistentKeepaliveInterval"] = json!(wg.persistent_keepalive);
            }
        }
        if let Some(mtu) = self.backend.mtu {
            backend["MTU"] = json!(mtu);
        }
        json!({
            "Network": self.network.to_string(),
            "SubnetLen": self.subnet_len,
            "SubnetMin": self.subnet_min.to_string(),
            "SubnetMax": self.subnet_max.to_string(),
            "Backend": backend,
        })
        .to_string()
    }

    /// [`NetworkConfig::to_json`] with a pre-shared key shown as `"<secret>"` (for printing).
    pub fn to_json_redacted(&self) -> String {
        if self.backend.wireguard.psk.is_none() {
            return self.to_json();
        }
        let mut doc: Value = serde_json::from_str(&self.to_json()).unwrap_or_default();
        doc["Backend"]["PSK"] = json!("<secret>");
        doc.to_string()
    }

    /// Every subnet a node may lease, SubnetMin..=SubnetMax in order.
    pub fn subnets(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        let size = 1u32 << (32 - self.subnet_len);
        let (min, max) = (u32::from(self.subnet_min), u32::from(self.subnet_max));
        (0..=(max - min) / size).map(move |i| self.subnet_at(min + i * size))
    }

    /// How many subnets SubnetMin..=SubnetMax holds.
    pub fn subnet_count(&self) -> u32 {
        (u32::from(self.subnet_max) - u32::from(self.subnet_min)) / (1u32 << (32 - self.subnet_len)) + 1
    }

    /// The `index`-th leasable subnet (`index < subnet_count()`).
    pub fn nth_subnet(&self, index: u32) -> Ipv4Net {
        self.subnet_at(u32::from(self.subnet_min) + index * (1u32 << (32 - self.subnet_len)))
    }

    fn subnet_at(&self, addr: u32) -> Ipv4Net {
        // subnet_len <= 30 was validated, so the constructor cannot fail.
        Ipv4Net::new(Ipv4Addr::from(addr), self.subnet_len).unwrap_or_default()
    }

    /// Is `subnet` one this network hands out (right length, in SubnetMin..=SubnetMax)?
    pub fn is_leasable(&self, subnet: Ipv4Net) -> bool {
        subnet.prefix_len() == self.subnet_len
            && subnet.network() >= self.subnet_min
            && subnet.network() <= self.subnet_max
    }
}

impl BackendConfig {
    /// flannel's defaults for `backend_type`: VNI 1, port 8472, no DirectRouting.
    pub fn defaults(backend_type: BackendType) -> Self {
        BackendConfig {
            backend_type,
            vni: 1,
            port: KERNEL_VXLAN_PORT,
            direct_routing: false,
            mtu: None,
            wireguard: WireGuardOptions::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NetworkConfig, NetworkConfigError> {
        NetworkConfig::parse(s.as_bytes())
    }

    #[test]
    fn a_minimal_config_gets_flannels_defaults() {
        let c = parse(r#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#).unwrap();
        assert_eq!(c.subnet_len, 24);
        assert_eq!(c.subnet_min, Ipv4Addr::new(10, 244, 1, 0));
        assert_eq!(c.subnet_max, Ipv4Addr::new(10, 244, 255, 0));
        assert_eq!(c.backend.vni, 1);
        assert_eq!(c.backend.port, 8472);
        assert_eq!(c.subnet_count(), 255);
    }

    #[test]
    fn a_narrow_network_splits_into_four_and_skips_the_first() {
        let c = parse(r#"{"Network":"10.0.0.0/26"}"#).unwrap();
        assert_eq!(c.subnet_len, 28);
        assert_eq!(c.subnet_min, Ipv4Addr::new(10, 0, 0, 16));
        assert_eq!(c.subnet_max, Ipv4Addr::new(10, 0, 0, 48));
        assert_eq!(c.backend.backend_type, BackendType::Other("udp".into()));
    }

    #[test]
    fn keys_match_case_insensitively_like_go() {
        let c = parse(r#"{"network":"10.244.0.0/16","subnetlen":26,"backend":{"type":"vxlan","vni":4096,"port":4789,"directrouting":true,"mtu":1400}}"#).unwrap();
        assert_eq!(c.subnet_len, 26);
        assert_eq!(
            c.backend,
            BackendConfig {
                backend_type: BackendType::Vxlan,
                vni: 4096,
                port: 4789,
                direct_routing: true,
                mtu: Some(1400),
                wireguard: WireGuardOptions::default(),
            }
        );
    }

    #[test]
    fn port_zero_means_the_kernel_default() {
        assert_eq!(
            parse(r#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":0}}"#).unwrap().backend.port,
            8472
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("{}", "Network"),
            (r#"{"Network":"10.244.0.0"}"#, "Network"),
            (r#"{"Network":"10.244.0.0/29"}"#, "Network"),
            (r#"{"Network":"10.244.0.0/16","SubnetLen":31}"#, "SubnetLen"),
            (r#"{"Network":"10.244.0.0/16","SubnetLen":17}"#, "SubnetLen"),
            (r#"{"Network":"10.244.0.0/16","SubnetMin":"10.245.0.0"}"#, "SubnetMin"),
            (r#"{"Network":"10.244.0.0/16","SubnetMax":"10.244.0.7"}"#, "SubnetMax"),
            (r#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":-1}}"#, "Backend.VNI"),
            (r#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":70000}}"#, "Backend.Port"),
            (r#"{"Network":"10.244.0.0/16","Backend":{"DirectRouting":"yes"}}"#, "Backend.DirectRouting"),
            (
                r#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","ListenPort":0}}"#,
                "Backend.ListenPort",
            ),
            (
                r#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","ListenPort":"x"}}"#,
                "Backend.ListenPort",
            ),
            (r#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":"c2hvcnQ="}}"#, "Backend.PSK"),
            (r#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":7}}"#, "Backend.PSK"),
            (
                r#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PersistentKeepaliveInterval":-5}}"#,
                "Backend.PersistentKeepaliveInterval",
            ),
            (r#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","Mode":"ipv6"}}"#, "Backend.Mode"),
        ];
        for (json, key) in cases {
            assert_eq!(parse(json).map_err(|e| e.key), Err(key), "{json}");
        }
    }

    #[test]
    fn a_wireguard_backend_gets_flannels_defaults() {
        let c = parse(r#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}"#).unwrap();
        assert_eq!(c.backend.backend_type, BackendType::WireGuard);
        assert_eq!(c.backend.wireguard, WireGuardOptions::default());
        assert_eq!((c.backend.wireguard.listen_port, c.backend.wireguard.listen_port_v6), (51820, 51821));
    }

    #[test]
    fn wireguard_options_are_read_with_go_case_folding() {
        let c = parse(
            r#"{"Network":"10.244.0.0/16","Backend":{"type":"wireguard","listenport":51000,"psk":"GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=","persistentkeepaliveinterval":25,"mode":"separate"}}"#,
        )
        .unwrap();
        let wg = c.backend.wireguard;
        assert_eq!(wg.listen_port, 51000);
        assert_eq!(wg.persistent_keepalive, 25);
        assert_eq!(
            wg.psk.map(|p| p.0.to_string()).as_deref(),
            Some("GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=")
        );
        assert_eq!(parse(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn a_printed_config_hides_the_pre_shared_key() {
        let c = parse(
            r#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":"GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A="}}"#,
        )
        .unwrap();
        let printed = c.to_json_redacted();
        assert!(printed.contains(r#""PSK":"<secret>""#) && !printed.contains("GBu1"), "{printed}");
    }

    #[test]
    fn init_json_parses_back_to_the_same_config() {
        let c = parse(r#"{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","VNI":4096,"Port":4789,"DirectRouting":true}}"#).unwrap();
        assert_eq!(parse(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn subnets_walk_min_to_max() {
        let c = parse(r#"{"Network":"10.0.0.0/20"}"#).unwrap();
        let all: Vec<_> = c.subnets().collect();
        assert_eq!(all.len(), 15);
        assert_eq!(all[0].to_string(), "10.0.1.0/24");
        assert_eq!(all[14].to_string(), "10.0.15.0/24");
        assert_eq!(c.nth_subnet(14), all[14]);
        assert!(c.is_leasable(all[3]) && !c.is_leasable("10.0.0.0/24".parse().unwrap()));
    }
}
