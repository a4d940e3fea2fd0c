//! flannel's etcd schema: the network config JSON, the lease value JSON and
//! the subnet key format, read and written byte-for-byte as flanneld does.

mod go_json;
mod lease;
mod mac;
mod network_config;
mod subnet_key;
mod wg_key;

pub use lease::{BackendType, LeaseAttrs, LeaseDecodeError, VxlanBackendData, WireGuardBackendData};
pub use mac::{MacAddr, MacParseError};
pub use network_config::{BackendConfig, NetworkConfig, NetworkConfigError, WireGuardOptions};
pub use subnet_key::{parse_subnet_key, subnet_key};
pub use wg_key::{Psk, WgKey, WgKeyParseError};
