//! The last known value of every lease under `<prefix>/subnets/`.
//!
//! A watch delete event carries only the key, so the table is what tells the
//! compiler which route to remove.

use std::collections::BTreeMap;
use std::collections::HashSet;

use etcd_client::KeyValue;
use ipnet::Ipv4Net;

use crate::flannel::{LeaseAttrs, parse_subnet_key};

/// One lease as listed or watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedLease {
    /// The decoded value; `None` when the value is not a usable lease (it
    /// still occupies the subnet).
    pub attrs: Option<LeaseAttrs>,
    /// The key's mod revision (for compare-and-swap).
    pub mod_revision: i64,
    /// The etcd lease the key is attached to (0: none).
    pub lease_id: i64,
}

/// Subnet -> last value, plus the revision it is current at.
#[derive(Debug, Default)]
pub struct LeaseTable {
    leases: BTreeMap<Ipv4Net, ListedLease>,
    revision: i64,
    warned: HashSet<Ipv4Net>,
}

impl LeaseTable {
    /// Builds the table from one ranged get at `revision`.
    pub fn from_kvs(kvs: &[KeyValue], revision: i64) -> Self {
        let mut table = LeaseTable { revision, ..Self::default() };
        for kv in kvs {
            table.put(kv);
        }
        table
    }

    /// Records a put; returns the subnet when the key is a lease key.
    pub fn put(&mut self, kv: &KeyValue) -> Option<Ipv4Net> {
        let subnet = parse_subnet_key(kv.key_str().ok()?)?;
        let attrs = match LeaseAttrs::from_json(kv.value()) {
            Ok(a) => Some(a),
            Err(e) => {
                if self.warned.insert(subnet) {
                    tracing::warn!(%subnet, "unusable lease value: {e}");
                }
                None
            }
        };
        self.leases
            .insert(subnet, ListedLease { attrs, mod_revision: kv.mod_revision(), lease_id: kv.lease() });
        self.revision = self.revision.max(kv.mod_revision());
        Some(subnet)
    }

    /// Records a delete; returns the subnet and its last value.
    pub fn delete(&mut self, kv: &KeyValue) -> Option<(Ipv4Net, ListedLease)> {
        let subnet = parse_subnet_key(kv.key_str().ok()?)?;
        self.warned.remove(&subnet);
        self.revision = self.revision.max(kv.mod_revision());
        self.leases.remove(&subnet).map(|l| (subnet, l))
    }

    /// Notes that events up to `revision` have been applied.
    pub fn advance(&mut self, revision: i64) {
        self.revision = self.revision.max(revision);
    }

    /// The revision the table is current at (watch from `revision + 1`).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The lease of `subnet`, if any.
    pub fn get(&self, subnet: Ipv4Net) -> Option<&ListedLease> {
        self.leases.get(&subnet)
    }

    /// Is `subnet` leased by anyone?
    pub fn is_taken(&self, subnet: Ipv4Net) -> bool {
        self.leases.contains_key(&subnet)
    }

    /// Number of leases.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// No leases at all?
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Every lease with a usable value.
    pub fn usable(&self) -> impl Iterator<Item = (Ipv4Net, &LeaseAttrs)> {
        self.leases.iter().filter_map(|(s, l)| l.attrs.as_ref().map(|a| (*s, a)))
    }

    /// Every lease, usable or not.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Net, &ListedLease)> {
        self.leases.iter().map(|(s, l)| (*s, l))
    }
}
