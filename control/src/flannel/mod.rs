//! flannel's etcd schema: the network config JSON, the lease value JSON and
//! the subnet key format, read and written byte-for-byte as flanneld does.

mod go_json;
mod lease;
mod mac;
mod network_config;
mod subnet_key;

pub use lease::{BackendType, LeaseAttrs, LeaseDecodeError, VxlanBackendData};
pub use mac::{MacAddr, MacParseError};
pub use network_config::{BackendConfig, NetworkConfig, NetworkConfigError};
pub use subnet_key::{parse_subnet_key, subnet_key};
