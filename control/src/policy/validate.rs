//! [`RawPolicy`] -> [`NetworkPolicy`]: Kubernetes' validation and defaulting for
//! `networking.k8s.io/v1`. Every error names the field path (`spec.ingress[0].ports[1].endPort`).

use ipnet::IpNet;

use super::error::FieldError;
use super::model::{IpBlock, NetworkPolicy, Peer, PolicyTypes, PortMatch, Protocol, Rule};
use super::raw::{IntOrString, RawPeer, RawPolicy, RawPort, RawSelector};
use super::selector::{
    LabelSelector, Requirement, check_label_key, check_label_value, is_dns_label, is_dns_subdomain,
};

/// The only apiVersion accepted.
pub const API_VERSION: &str = "networking.k8s.io/v1";
/// The only kind accepted.
pub const KIND: &str = "NetworkPolicy";
/// The namespace of a policy whose metadata names none (kubectl's default namespace).
pub const DEFAULT_NAMESPACE: &str = "default";

fn err(path: impl Into<String>, problem: impl Into<String>) -> FieldError {
    FieldError { path: path.into(), problem: problem.into() }
}

/// A namespace name: an RFC 1123 label.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if is_dns_label(ns) {
        Ok(())
    } else {
        Err(format!("namespace {ns:?} is not a lower-case RFC 1123 label (a-z, 0-9, '-', at most 63)"))
    }
}

/// An object name: an RFC 1123 subdomain.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(format!("name {name:?} is not a lower-case RFC 1123 subdomain (a-z, 0-9, '-', '.', at most 253)"))
    }
}

/// Validates one object and applies Kubernetes' defaults.
pub fn validate(mut raw: RawPolicy) -> Result<NetworkPolicy, FieldError> {
    match raw.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => return Err(err("apiVersion", format!("{other:?} is not {API_VERSION:?}"))),
        None => return Err(err("apiVersion", format!("missing (must be {API_VERSION:?})"))),
    }
    match raw.kind.as_deref() {
        Some(KIND) => {}
        Some(other) => return Err(err("kind", format!("{other:?} is not {KIND:?}"))),
        None => return Err(err("kind", format!("missing (must be {KIND:?})"))),
    }
    let meta = raw.metadata.get_or_insert_with(Default::default);
    let name = meta.name.clone().ok_or_else(|| err("metadata.name", "missing"))?;
    check_name(&name).map_err(|e| err("metadata.name", e))?;
    let namespace = meta.namespace.get_or_insert_with(|| DEFAULT_NAMESPACE.to_owned()).clone();
    check_namespace(&namespace).map_err(|e| err("metadata.namespace", e))?;
    for (key, value) in meta.labels.iter().flatten() {
        let path = format!("metadata.labels.{key}");
        check_label_key(key).map_err(|e| err(&path, e))?;
        check_label_value(value).map_err(|e| err(&path, e))?;
    }

    let spec = raw.spec.as_ref().ok_or_else(|| err("spec", "missing"))?;
    let pod_selector = selector(spec.pod_selector.as_ref(), "spec.podSelector")?;
    let types =
        policy_types(spec.policy_types.as_deref(), spec.egress.as_ref().is_some_and(|e| !e.is_empty()))?;
    let mut ingress = Vec::new();
    for (i, r) in spec.ingress.iter().flatten().enumerate() {
        let path = format!("spec.ingress[{i}]");
        ingress.push(rule(r.from.as_deref(), r.ports.as_deref(), &path, "from")?);
    }
    let mut egress = Vec::new();
    for (i, r) in spec.egress.iter().flatten().enumerate() {
        let path = format!("spec.egress[{i}]");
        egress.push(rule(r.to.as_deref(), r.ports.as_deref(), &path, "to")?);
    }
    Ok(NetworkPolicy { namespace, name, pod_selector, types, ingress, egress, raw })
}

/// `policyTypes`, defaulted as the API server does: `Ingress`, plus `Egress` when `spec.egress`
/// has rules.
fn policy_types(listed: Option<&[String]>, has_egress_rules: bool) -> Result<PolicyTypes, FieldError> {
    let Some(listed) = listed.filter(|l| !l.is_empty()) else {
        return Ok(PolicyTypes { ingress: true, egress: has_egress_rules });
    };
    let mut types = PolicyTypes { ingress: false, egress: false };
    for (i, t) in listed.iter().enumerate() {
        let path = format!("spec.policyTypes[{i}]");
        let slot = match t.as_str() {
            "Ingress" => &mut types.ingress,
            "Egress" => &mut types.egress,
            other => return Err(err(path, format!("{other:?} is neither \"Ingress\" nor \"Egress\""))),
        };
        if *slot {
            return Err(err(path, format!("{t:?} is listed twice")));
        }
        *slot = true;
    }
    Ok(types)
}

fn rule(
    peers: Option<&[RawPeer]>,
    ports: Option<&[RawPort]>,
    path: &str,
    peers_field: &str,
) -> Result<Rule, FieldError> {
    let peers = peers
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, p)| peer(p, &format!("{path}.{peers_field}[{i}]")))
        .collect::<Result<_, _>>()?;
    let ports = ports
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, p)| port(p, &format!("{path}.ports[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(Rule { peers, ports })
}

fn peer(raw: &RawPeer, path: &str) -> Result<Peer, FieldError> {
    if let Some(block) = &raw.ip_block {
        if raw.pod_selector.is_some() || raw.namespace_selector.is_some() {
            return Err(err(
                path,
                "ipBlock cannot be combined with podSelector or namespaceSelector in one peer",
            ));
        }
        return ip_block(block.cidr.as_deref(), block.except.as_deref(), &format!("{path}.ipBlock"))
            .map(Peer::IpBlock);
    }
    if raw.pod_selector.is_none() && raw.namespace_selector.is_none() {
        return Err(err(path, "a peer needs podSelector, namespaceSelector or ipBlock"));
    }
    let namespaces = match &raw.namespace_selector {
        Some(s) => Some(selector(Some(s), &format!("{path}.namespaceSelector"))?),
        None => None,
    };
    let pods = selector(raw.pod_selector.as_ref(), &format!("{path}.podSelector"))?;
    Ok(Peer::Pods { namespaces, pods })
}

fn cidr(text: &str, path: &str) -> Result<IpNet, FieldError> {
    text.parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| err(path, format!("{text:?} is not a CIDR (like 198.18.0.0/16)")))
}

fn ip_block(raw_cidr: Option<&str>, except: Option<&[String]>, path: &str) -> Result<IpBlock, FieldError> {
    let cidr_path = format!("{path}.cidr");
    let block = cidr(raw_cidr.ok_or_else(|| err(&cidr_path, "missing"))?, &cidr_path)?;
    let mut out = Vec::new();
    for (i, e) in except.unwrap_or_default().iter().enumerate() {
        let path = format!("{path}.except[{i}]");
        let net = cidr(e, &path)?;
        if !(block.contains(&net) && net.prefix_len() > block.prefix_len()) {
            return Err(err(path, format!("{net} is not strictly inside cidr {block}")));
        }
        out.push(net);
    }
    Ok(IpBlock { cidr: block, except: out })
}

fn port(raw: &RawPort, path: &str) -> Result<PortMatch, FieldError> {
    let protocol = match raw.protocol.as_deref() {
        None | Some("TCP") => Protocol::Tcp,
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        Some(other) => {
            return Err(err(
                format!("{path}.protocol"),
                format!("{other:?} is not \"TCP\", \"UDP\" or \"SCTP\""),
            ));
        }
    };
    let number = |n: i64, field: &str| -> Result<u16, FieldError> {
        u16::try_from(n)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| err(format!("{path}.{field}"), format!("{n} is outside 1..=65535")))
    };
    let first = match &raw.port {
        None => None,
        Some(IntOrString::Int(n)) => Some(number(*n, "port")?),
        Some(IntOrString::String(name)) => {
            return Err(err(
                format!("{path}.port"),
                format!(
                    "named port {name:?}: weft supports port numbers only (write the container port's number)"
                ),
            ));
        }
    };
    let ports = match (first, raw.end_port) {
        (None, None) => None,
        (None, Some(_)) => return Err(err(format!("{path}.endPort"), "needs a numeric port")),
        (Some(p), None) => Some((p, p)),
        (Some(p), Some(end)) => {
            let end = number(end, "endPort")?;
            if end < p {
                return Err(err(format!("{path}.endPort"), format!("{end} is below port {p}")));
            }
            Some((p, end))
        }
    };
    Ok(PortMatch { protocol, ports })
}

fn selector(raw: Option<&RawSelector>, path: &str) -> Result<LabelSelector, FieldError> {
    let Some(raw) = raw else { return Ok(LabelSelector::default()) };
    let mut out = LabelSelector::default();
    for (key, value) in raw.match_labels.iter().flatten() {
        let path = format!("{path}.matchLabels.{key}");
        check_label_key(key).map_err(|e| err(&path, e))?;
        check_label_value(value).map_err(|e| err(&path, e))?;
        out.match_labels.insert(key.clone(), value.clone());
    }
    for (i, r) in raw.match_expressions.iter().flatten().enumerate() {
        let path = format!("{path}.matchExpressions[{i}]");
        let key = r.key.clone().ok_or_else(|| err(format!("{path}.key"), "missing"))?;
        check_label_key(&key).map_err(|e| err(format!("{path}.key"), e))?;
        let values = r.values.clone().unwrap_or_default();
        for (j, v) in values.iter().enumerate() {
            check_label_value(v).map_err(|e| err(format!("{path}.values[{j}]"), e))?;
        }
        let operator = r.operator.as_deref().ok_or_else(|| err(format!("{path}.operator"), "missing"))?;
        let requirement = match operator {
            "In" | "NotIn" if values.is_empty() => {
                return Err(err(
                    format!("{path}.values"),
                    format!("operator {operator} needs at least one value"),
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(err(format!("{path}.values"), format!("operator {operator} takes no values")));
            }
            "In" => Requirement::In(key, values.into_iter().collect()),
            "NotIn" => Requirement::NotIn(key, values.into_iter().collect()),
            "Exists" => Requirement::Exists(key),
            "DoesNotExist" => Requirement::DoesNotExist(key),
            other => {
                return Err(err(
                    format!("{path}.operator"),
                    format!("{other:?} is not In, NotIn, Exists or DoesNotExist"),
                ));
            }
        };
        out.match_expressions.push(requirement);
    }
    Ok(out)
}
