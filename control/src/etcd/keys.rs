//! The etcd keys flannel uses under a prefix.

use ipnet::Ipv4Net;

use crate::flannel::subnet_key;

/// Key builder for one prefix (`/coreos.com/network` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (no trailing slash).
    pub fn new(prefix: &str) -> Self {
        Keys { prefix: prefix.trim_end_matches('/').to_owned() }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/config`.
    pub fn config(&self) -> String {
        format!("{}/config", self.prefix)
    }

    /// `<prefix>/subnets/`, the list/watch prefix.
    pub fn subnets(&self) -> String {
        format!("{}/subnets/", self.prefix)
    }

    /// `<prefix>/subnets/10.244.1.0-24`.
    pub fn subnet(&self, subnet: Ipv4Net) -> String {
        format!("{}/subnets/{}", self.prefix, subnet_key(subnet))
    }
}
