//! `weft policy explain`: for one connection, which policies select its two ends and which
//! rule, if any, lets it out of the client and into the server. The same semantics as the
//! compiler ([`PolicyInputs::compile`]), evaluated for one packet instead of compiled for all.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::IpNet;

use super::compile::{NamespaceLabels, PolicyInputs};
use super::model::{Peer, PolicyId, Protocol, Rule};

/// Both directions' verdicts for `client -> server proto/port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The connection asked about.
    pub client: Ipv4Addr,
    /// Its server end.
    pub server: Ipv4Addr,
    /// Its protocol.
    pub protocol: Protocol,
    /// Its server port.
    pub port: u16,
    /// Leaving the client (its egress policies).
    pub egress: Side,
    /// Entering the server (its ingress policies).
    pub ingress: Side,
}

/// One end's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The pod at this end (`namespace/name`), when the address is a known pod's.
    pub pod: Option<String>,
    /// The policies that select the pod for this direction (it is isolated when any does).
    pub selecting: Vec<PolicyId>,
    /// The first policy and rule (numbered from 1, as listed) that allows the connection.
    pub allowed_by: Option<(PolicyId, usize)>,
}

impl Side {
    /// Not isolated, or a rule allows it.
    pub fn allows(&self) -> bool {
        self.selecting.is_empty() || self.allowed_by.is_some()
    }
}

impl Explanation {
    /// Whether the connection may open: both ends allow it.
    pub fn allowed(&self) -> bool {
        self.egress.allows() && self.ingress.allows()
    }
}

fn contains(net: &IpNet, ip: Ipv4Addr) -> bool {
    net.contains(&std::net::IpAddr::V4(ip))
}

impl PolicyInputs {
    /// Explains `client -> server protocol/port`.
    pub fn explain(&self, client: Ipv4Addr, server: Ipv4Addr, protocol: Protocol, port: u16) -> Explanation {
        let ns_labels = self.namespace_label_map();
        let egress = self.side(client, server, protocol, port, Direction::Egress, &ns_labels);
        let ingress = self.side(server, client, protocol, port, Direction::Ingress, &ns_labels);
        Explanation { client, server, protocol, port, egress, ingress }
    }

    fn side(
        &self,
        me: Ipv4Addr,
        peer: Ipv4Addr,
        protocol: Protocol,
        port: u16,
        direction: Direction,
        ns_labels: &NamespaceLabels<'_>,
    ) -> Side {
        let Some(e) = self.endpoints.iter().find(|e| e.ip == me) else {
            return Side { pod: None, selecting: Vec::new(), allowed_by: None };
        };
        let mut side = Side {
            pod: Some(format!("{}/{}", e.namespace, e.name)),
            selecting: Vec::new(),
            allowed_by: None,
        };
        for p in &self.policies {
            let (isolates, rules) = match direction {
                Direction::Egress => (p.types.egress, &p.egress),
                Direction::Ingress => (p.types.ingress, &p.ingress),
            };
            if !isolates || p.namespace != e.namespace || !p.pod_selector.matches(&e.labels) {
                continue;
            }
            side.selecting.push(p.id());
            if side.allowed_by.is_none() {
                let allows = |r: &Rule| self.rule_allows(&p.namespace, r, peer, protocol, port, ns_labels);
                if let Some(i) = rules.iter().position(allows) {
                    side.allowed_by = Some((p.id(), i + 1));
                }
            }
        }
        side
    }

    /// Whether `rule` of a policy in namespace `ns` matches a connection with `peer` on
    /// `protocol`/`port`.
    fn rule_allows(
        &self,
        ns: &str,
        rule: &Rule,
        peer: Ipv4Addr,
        protocol: Protocol,
        port: u16,
        ns_labels: &NamespaceLabels<'_>,
    ) -> bool {
        let port_ok = rule.ports.is_empty()
            || rule
                .ports
                .iter()
                .any(|m| m.protocol == protocol && m.ports.is_none_or(|(lo, hi)| (lo..=hi).contains(&port)));
        port_ok
            && (rule.peers.is_empty()
                || rule.peers.iter().any(|p| match p {
                    Peer::Pods { namespaces, pods } => self.endpoints.iter().any(|e| {
                        e.ip == peer && Self::peer_selects(ns, namespaces.as_ref(), pods, e, ns_labels)
                    }),
                    Peer::IpBlock(b) => {
                        contains(&b.cidr, peer) && !b.except.iter().any(|x| contains(x, peer))
                    }
                }))
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Egress,
    Ingress,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |ip: Ipv4Addr, side: &Side| match &side.pod {
            Some(pod) => format!("{ip} ({pod})"),
            None => format!("{ip} (no pod)"),
        };
        writeln!(
            f,
            "{} -> {} {}/{}: {}",
            name(self.client, &self.egress),
            name(self.server, &self.ingress),
            self.protocol,
            self.port,
            if self.allowed() { "allowed" } else { "denied" }
        )?;
        for (what, side) in
            [("egress from the client", &self.egress), ("ingress to the server", &self.ingress)]
        {
            let verdict = match (&side.pod, side.selecting.is_empty(), &side.allowed_by) {
                (None, ..) => "not a pod: no policy applies".to_owned(),
                (Some(_), true, _) => "not isolated: no policy selects the pod for this direction".to_owned(),
                (Some(_), false, Some((id, rule))) => format!("allowed by {id}, rule {rule}"),
                (Some(_), false, None) => "denied: no rule of these policies matches".to_owned(),
            };
            let selecting: Vec<String> = side.selecting.iter().map(ToString::to_string).collect();
            if selecting.is_empty() {
                writeln!(f, "  {what}: {verdict}")?;
            } else {
                writeln!(f, "  {what}: {verdict} (selected by {})", selecting.join(", "))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Endpoint, parse_documents};

    const WEB: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);
    const OTHER: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 3);
    const MYSQL: Ipv4Addr = Ipv4Addr::new(198, 19, 2, 2);

    fn inputs() -> PolicyInputs {
        let yaml = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/policy/web-to-mysql.yaml"
        ))
        .unwrap();
        PolicyInputs {
            policies: parse_documents(&yaml, "web-to-mysql.yaml").unwrap(),
            endpoints: vec![
                Endpoint::sample("default", "web", WEB.octets(), &[("app", "web")]),
                Endpoint::sample("default", "other", OTHER.octets(), &[("app", "other")]),
                Endpoint::sample("db", "mysql", MYSQL.octets(), &[("app", "mysql")]),
            ],
            namespaces: Default::default(),
        }
    }

    #[test]
    fn the_rule_that_allows_a_connection_is_named() {
        let e = inputs().explain(WEB, MYSQL, Protocol::Tcp, 3306);
        assert!(e.allowed());
        assert!(e.egress.selecting.is_empty());
        let id = "db/mysql-from-web".parse::<PolicyId>().unwrap();
        assert_eq!(e.ingress.selecting, vec![id.clone()]);
        assert_eq!(e.ingress.allowed_by, Some((id, 1)));
        let text = e.to_string();
        assert!(
            text.starts_with("198.19.1.2 (default/web) -> 198.19.2.2 (db/mysql) TCP/3306: allowed"),
            "{text}"
        );
        assert!(text.contains("ingress to the server: allowed by db/mysql-from-web, rule 1"), "{text}");
    }

    #[test]
    fn a_denied_connection_names_the_policies_that_isolate_the_pod() {
        let i = inputs();
        for (client, proto, port) in
            [(OTHER, Protocol::Tcp, 3306), (WEB, Protocol::Tcp, 3307), (WEB, Protocol::Udp, 3306)]
        {
            let e = i.explain(client, MYSQL, proto, port);
            assert!(!e.allowed(), "{e}");
            assert_eq!(e.ingress.allowed_by, None);
            assert!(
                e.to_string()
                    .contains("denied: no rule of these policies matches (selected by db/mysql-from-web)")
            );
        }
        // The other way round nothing is isolated.
        let e = i.explain(MYSQL, WEB, Protocol::Tcp, 80);
        assert!(e.allowed() && e.ingress.selecting.is_empty() && e.egress.selecting.is_empty(), "{e}");
        // An address without a pod: nothing applies at that end.
        let e = i.explain(Ipv4Addr::new(198, 18, 0, 1), WEB, Protocol::Tcp, 80);
        assert!(e.allowed() && e.egress.pod.is_none(), "{e}");
    }

    #[test]
    fn explain_agrees_with_the_compiled_set() {
        let i = inputs();
        let set = i.compile(|_| true);
        for client in [WEB, OTHER, MYSQL] {
            for server in [WEB, OTHER, MYSQL] {
                for (proto, port) in [(Protocol::Tcp, 3306), (Protocol::Tcp, 80), (Protocol::Udp, 3306)] {
                    let e = i.explain(client, server, proto, port);
                    let compiled = set
                        .pod(u32::from(server))
                        .and_then(|p| p.ingress.as_ref())
                        .is_none_or(|r| r.allows(u32::from(client), proto.number(), port));
                    assert_eq!(e.ingress.allows(), compiled, "{e}");
                }
            }
        }
    }
}
