//! A validated NetworkPolicy, with Kubernetes' defaults applied and its meaning made explicit.

use std::fmt;

use ipnet::IpNet;

use super::raw::RawPolicy;
use super::selector::LabelSelector;

/// A NetworkPolicy that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkPolicy {
    /// `metadata.namespace` (`default` when absent, as kubectl applies it).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.podSelector`: the pods of `namespace` this policy isolates (`{}`: all of them).
    pub pod_selector: LabelSelector,
    /// `spec.policyTypes` after Kubernetes' defaulting.
    pub types: PolicyTypes,
    /// `spec.ingress`: what may reach the selected pods (only if `types.ingress`).
    pub ingress: Vec<Rule>,
    /// `spec.egress`: what the selected pods may reach (only if `types.egress`).
    pub egress: Vec<Rule>,
    /// The object as given, with `metadata.namespace` filled in: the stored form.
    pub raw: RawPolicy,
}

impl NetworkPolicy {
    /// `namespace/name`.
    pub fn id(&self) -> PolicyId {
        PolicyId { namespace: self.namespace.clone(), name: self.name.clone() }
    }

    /// The stored form: compact JSON of the object as given, server-set metadata left out.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.raw).expect("a RawPolicy always serialises")
    }
}

/// A policy's identity, `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl std::str::FromStr for PolicyId {
    type Err = String;

    /// `NS/NAME`, both valid Kubernetes names.
    fn from_str(s: &str) -> Result<Self, String> {
        let (namespace, name) = s.split_once('/').ok_or_else(|| format!("{s:?} is not NAMESPACE/NAME"))?;
        super::validate::check_namespace(namespace)?;
        super::validate::check_name(name)?;
        Ok(PolicyId { namespace: namespace.into(), name: name.into() })
    }
}

/// Which directions a policy isolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyTypes {
    /// `Ingress` listed (or defaulted).
    pub ingress: bool,
    /// `Egress` listed (or defaulted because `spec.egress` has rules).
    pub egress: bool,
}

impl fmt::Display for PolicyTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ingress, self.egress) {
            (true, true) => f.write_str("Ingress,Egress"),
            (true, false) => f.write_str("Ingress"),
            (false, true) => f.write_str("Egress"),
            (false, false) => f.write_str("-"),
        }
    }
}

/// One ingress or egress rule: traffic matching any peer AND any port entry is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `from` / `to`; empty: every peer.
    pub peers: Vec<Peer>,
    /// `ports`; empty: every port of every protocol.
    pub ports: Vec<PortMatch>,
}

/// One `from` / `to` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// `podSelector` and/or `namespaceSelector`.
    Pods {
        /// `namespaceSelector`; `None`: the policy's own namespace only.
        namespaces: Option<LabelSelector>,
        /// `podSelector` (`{}` when absent: every pod of those namespaces).
        pods: LabelSelector,
    },
    /// `ipBlock`.
    IpBlock(IpBlock),
}

/// `ipBlock`: `cidr` minus every `except`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpBlock {
    /// `cidr` (host bits cleared).
    pub cidr: IpNet,
    /// `except`, each strictly inside `cidr`.
    pub except: Vec<IpNet>,
}

/// Transport protocols NetworkPolicy knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The IPv4 protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// One `ports` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMatch {
    /// `protocol` (TCP when absent).
    pub protocol: Protocol,
    /// `port..=endPort` (`port..=port` without endPort); `None`: every port of the protocol.
    pub ports: Option<(u16, u16)>,
}
