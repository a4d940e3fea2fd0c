//! `subnet.env`: what flannel's CNI plugin reads, written atomically.
//!
//! ```text
//! FLANNEL_NETWORK=10.244.0.0/16
//! FLANNEL_SUBNET=10.244.1.1/24
//! FLANNEL_MTU=1450
//! FLANNEL_IPMASQ=false
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use crate::flannel::{BackendType, NetworkConfig};

/// The contents of a subnet.env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetEnv {
    /// FLANNEL_NETWORK: the whole pod network.
    pub network: Ipv4Net,
    /// Our subnet (FLANNEL_SUBNET is its first host address with the length).
    pub subnet: Ipv4Net,
    /// FLANNEL_MTU.
    pub mtu: u32,
    /// FLANNEL_IPMASQ.
    pub ipmasq: bool,
}

/// subnet.env could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write subnet file {path}: {source} (is its directory writable by this user?)")]
pub struct SubnetEnvError {
    /// The file (or its temporary sibling) that failed.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

impl SubnetEnv {
    /// subnet.env for `subnet` in `network`: FLANNEL_MTU is the backend's
    /// MTU when the network config sets one, else the uplink MTU minus the
    /// encapsulation overhead (vxlan 50, ipip 20, host-gw 0).
    pub fn for_network(network: &NetworkConfig, subnet: Ipv4Net, uplink_mtu: u32, ipmasq: bool) -> Self {
        let overhead = match network.backend.backend_type {
            BackendType::Vxlan => 50,
            BackendType::Ipip => 20,
            // flannel's wireguard overhead (room for an IPv6 outer header too).
            BackendType::WireGuard => 80,
            _ => 0,
        };
        SubnetEnv {
            network: network.network,
            subnet,
            mtu: network.backend.mtu.unwrap_or(uplink_mtu.saturating_sub(overhead)),
            ipmasq,
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let first_host = std::net::Ipv4Addr::from(u32::from(self.subnet.network()) + 1);
        let gateway = format!("{first_host}/{}", self.subnet.prefix_len());
        format!(
            "FLANNEL_NETWORK={}\nFLANNEL_SUBNET={gateway}\nFLANNEL_MTU={}\nFLANNEL_IPMASQ={}\n",
            self.network, self.mtu, self.ipmasq
        )
    }

    /// Writes the file atomically: a temporary sibling, fsync, rename.
    /// Creates the parent directory if needed.
    pub fn write(&self, path: &Path) -> Result<(), SubnetEnvError> {
        let err = |p: &Path| {
            let p = p.to_owned();
            move |source| SubnetEnvError { path: p, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err(dir))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let mut file = std::fs::File::create(&tmp).map_err(err(&tmp))?;
        file.write_all(self.render().as_bytes()).map_err(err(&tmp))?;
        file.sync_all().map_err(err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(err(path))
    }

    /// Reads our previous subnet back from `path`; `None` when the file is
    /// missing or does not hold a FLANNEL_SUBNET (a fresh node).
    pub fn read_subnet(path: &Path) -> Option<Ipv4Net> {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines()
            .find_map(|l| l.trim().strip_prefix("FLANNEL_SUBNET="))
            .and_then(|v| v.trim().parse::<Ipv4Net>().ok())
            .map(|n| n.trunc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_env_names_the_first_host_and_reads_back_the_subnet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flannel/subnet.env");
        let env = SubnetEnv {
            network: "10.244.0.0/16".parse().unwrap(),
            subnet: "10.244.7.0/24".parse().unwrap(),
            mtu: 1450,
            ipmasq: true,
        };
        env.write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
        assert_eq!(SubnetEnv::read_subnet(&path), Some(env.subnet));
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn a_missing_subnet_env_is_a_fresh_node() {
        assert_eq!(SubnetEnv::read_subnet(Path::new("/nonexistent/weft/subnet.env")), None);
    }
}
