//! Policies + endpoints + namespaces -> the engine's per-pod [`PolicySet`].
//!
//! For each local endpoint, the policies of its namespace whose `podSelector` selects it decide
//! its isolation: a direction is isolated when one of them has that policy type, and then allows
//! the union of their rules of that direction. Each rule is compiled once: its pod/namespace
//! peers are resolved against every known endpoint into addresses, its `ipBlock`s into prefixes,
//! its ports into ranges; the engine then looks peers up by hash. Namespaces carry their
//! records' labels plus `kubernetes.io/metadata.name`, which Kubernetes sets on every namespace;
//! a namespace with pods but no record has only that label.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::IpNet;
use weft_engine::fib::Ipv4Prefix;
use weft_engine::policy::{DirectionBuilder, PodPolicy, PolicySet, PortRange, Ports};

use super::endpoint::Endpoint;
use super::model::{NetworkPolicy, Peer, Rule};
use super::selector::{LabelSelector, Labels};

/// The label Kubernetes gives every namespace: its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// What a compilation reads: every policy, endpoint and namespace record of the cluster.
#[derive(Debug, Clone, Default)]
pub struct PolicyInputs {
    /// The stored policies.
    pub policies: Vec<NetworkPolicy>,
    /// Every pod's endpoint record, on any node.
    pub endpoints: Vec<Endpoint>,
    /// Namespace labels by namespace name (records only).
    pub namespaces: BTreeMap<String, Labels>,
}

fn ports_of(rule: &Rule) -> Ports {
    if rule.ports.is_empty() {
        return Ports::All;
    }
    Ports::ranges(rule.ports.iter().map(|p| {
        let proto = p.protocol.number();
        match p.ports {
            Some((lo, hi)) => PortRange { proto, lo, hi },
            None => PortRange::all(proto),
        }
    }))
}

fn v4(net: &IpNet) -> Option<Ipv4Prefix> {
    match net {
        IpNet::V4(n) => Ipv4Prefix::new(n.network(), n.prefix_len()).ok(),
        IpNet::V6(_) => None,
    }
}

/// Every namespace's labels (with its name label), by name.
pub(super) type NamespaceLabels<'a> = BTreeMap<&'a str, Labels>;

impl PolicyInputs {
    /// A namespace's labels, with its name label.
    fn namespace_labels(&self, ns: &str) -> Labels {
        let mut l = self.namespaces.get(ns).cloned().unwrap_or_default();
        l.insert(NAMESPACE_NAME_LABEL.into(), ns.into());
        l
    }

    /// The labels of every namespace that has a record or a pod.
    pub(super) fn namespace_label_map(&self) -> NamespaceLabels<'_> {
        let mut ns_labels = NamespaceLabels::new();
        for ns in self
            .namespaces
            .keys()
            .map(String::as_str)
            .chain(self.endpoints.iter().map(|e| e.namespace.as_str()))
        {
            ns_labels.entry(ns).or_insert_with(|| self.namespace_labels(ns));
        }
        ns_labels
    }

    /// Whether a `podSelector`/`namespaceSelector` peer of a policy in namespace `ns` selects
    /// endpoint `e` (without `namespaceSelector`: pods of `ns` only).
    pub(super) fn peer_selects(
        ns: &str,
        namespaces: Option<&LabelSelector>,
        pods: &LabelSelector,
        e: &Endpoint,
        ns_labels: &NamespaceLabels<'_>,
    ) -> bool {
        let ns_ok = match namespaces {
            None => e.namespace == ns,
            Some(sel) => ns_labels.get(e.namespace.as_str()).is_some_and(|l| sel.matches(l)),
        };
        ns_ok && pods.matches(&e.labels)
    }

    /// Adds `rule` of a policy in namespace `ns` to `out`.
    fn add_rule(&self, ns: &str, rule: &Rule, ns_labels: &NamespaceLabels<'_>, out: &mut DirectionBuilder) {
        let ports = ports_of(rule);
        if matches!(ports, Ports::None) {
            return;
        }
        if rule.peers.is_empty() {
            out.any_peer(&ports);
            return;
        }
        for peer in &rule.peers {
            match peer {
                Peer::Pods { namespaces, pods } => {
                    for e in &self.endpoints {
                        if Self::peer_selects(ns, namespaces.as_ref(), pods, e, ns_labels) {
                            out.peer(e.ip, &ports);
                        }
                    }
                }
                Peer::IpBlock(b) => {
                    if let Some(cidr) = v4(&b.cidr) {
                        let except: Vec<Ipv4Prefix> = b.except.iter().filter_map(v4).collect();
                        out.block(cidr, &except, &ports);
                    }
                }
            }
        }
    }

    /// The policy set of the endpoints `local` says are on this node.
    pub fn compile(&self, local: impl Fn(Ipv4Addr) -> bool) -> PolicySet {
        let ns_labels = self.namespace_label_map();
        // Each policy's directions compiled once, for every pod it selects.
        let mut compiled: Vec<Option<(DirectionBuilder, DirectionBuilder)>> = vec![None; self.policies.len()];
        let mut pods = Vec::new();
        for e in self.endpoints.iter().filter(|e| local(e.ip)) {
            let mut ingress: Option<DirectionBuilder> = None;
            let mut egress: Option<DirectionBuilder> = None;
            for (i, p) in self.policies.iter().enumerate() {
                if p.namespace != e.namespace || !p.pod_selector.matches(&e.labels) {
                    continue;
                }
                let (ing, eg) = compiled[i].get_or_insert_with(|| {
                    let (mut ing, mut eg) = (DirectionBuilder::default(), DirectionBuilder::default());
                    for r in &p.ingress {
                        self.add_rule(&p.namespace, r, &ns_labels, &mut ing);
                    }
                    for r in &p.egress {
                        self.add_rule(&p.namespace, r, &ns_labels, &mut eg);
                    }
                    (ing, eg)
                });
                if p.types.ingress {
                    ingress.get_or_insert_with(DirectionBuilder::default).merge(ing);
                }
                if p.types.egress {
                    egress.get_or_insert_with(DirectionBuilder::default).merge(eg);
                }
            }
            if ingress.is_some() || egress.is_some() {
                let policy =
                    PodPolicy { ingress: ingress.map(|b| b.build()), egress: egress.map(|b| b.build()) };
                pods.push((e.ip, policy));
            }
        }
        PolicySet::new(pods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_documents;

    /// x/a, x/b on this node (198.19.1.0/24), y/a remote; namespace y labelled `team=y`.
    fn inputs(yaml: &str) -> PolicyInputs {
        PolicyInputs {
            policies: parse_documents(yaml, "test.yaml").unwrap(),
            endpoints: vec![
                Endpoint::sample("x", "a", [198, 19, 1, 2], &[("pod", "a")]),
                Endpoint::sample("x", "b", [198, 19, 1, 3], &[("pod", "b")]),
                Endpoint::sample("y", "a", [198, 19, 2, 2], &[("pod", "a")]),
            ],
            namespaces: [("y".to_owned(), [("team".to_owned(), "y".to_owned())].into())].into(),
        }
    }

    fn local(ip: Ipv4Addr) -> bool {
        ip.octets()[2] == 1
    }

    const XA: u32 = 0xc613_0102;
    const XB: u32 = 0xc613_0103;
    const YA: u32 = 0xc613_0202;
    const TCP: u8 = 6;

    #[test]
    fn default_deny_isolates_every_local_pod_of_its_namespace_only() {
        let set = inputs(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\nspec:\n  podSelector: {}\n",
        )
        .compile(local);
        assert_eq!(set.len(), 2);
        let a = set.pod(XA).unwrap();
        assert!(a.egress.is_none(), "policyTypes defaults to Ingress");
        assert!(!a.ingress.as_ref().unwrap().allows(XB, TCP, 80));
        assert!(set.pod(YA).is_none(), "not a local pod");
    }

    #[test]
    fn namespace_and_pod_selectors_resolve_to_the_matching_endpoints() {
        let set = inputs(
            r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: y}}
      podSelector: {matchExpressions: [{key: pod, operator: In, values: [a]}]}
    ports: [{port: 80, endPort: 81}]
  - from:
    - podSelector: {matchLabels: {pod: b}}
"#,
        )
        .compile(local);
        assert_eq!(set.len(), 1, "x/b is not selected");
        let rules = set.pod(XA).unwrap().ingress.as_ref().unwrap();
        assert!(rules.allows(YA, TCP, 80) && rules.allows(YA, TCP, 81) && !rules.allows(YA, TCP, 82));
        assert!(!rules.allows(YA, 17, 80), "TCP by default");
        assert!(rules.allows(XB, 17, 9), "a rule without ports allows everything");
    }

    #[test]
    fn the_namespace_name_label_selects_namespaces_without_records() {
        let set = inputs(
            r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}
  - to:
    - ipBlock: {cidr: 198.19.0.0/16, except: [198.19.2.0/24]}
    ports: [{protocol: UDP, port: 53}]
"#,
        )
        .compile(local);
        let e = set.pod(XA).unwrap().egress.as_ref().unwrap();
        assert!(set.pod(XA).unwrap().ingress.is_none());
        assert!(e.allows(XB, TCP, 1));
        assert!(!e.allows(YA, TCP, 1) && !e.allows(YA, 17, 53));
        assert!(e.allows(0xc613_0302, 17, 53));
    }

    #[test]
    fn policies_selecting_one_pod_add_up() {
        let set = inputs(
            r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p1, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 80}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p2, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81}]}]
"#,
        )
        .compile(local);
        let a = set.pod(XA).unwrap().ingress.as_ref().unwrap();
        let b = set.pod(XB).unwrap().ingress.as_ref().unwrap();
        assert!(a.allows(YA, TCP, 80) && a.allows(YA, TCP, 81));
        assert!(b.allows(YA, TCP, 80) && !b.allows(YA, TCP, 81));
    }
}
