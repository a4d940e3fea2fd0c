//! Kubernetes label selectors, validated: `matchLabels` and `matchExpressions` (In, NotIn,
//! Exists, DoesNotExist), ANDed. The empty selector selects everything.

use std::collections::{BTreeMap, BTreeSet};

/// Labels of a pod or a namespace.
pub type Labels = BTreeMap<String, String>;

/// One `matchExpressions` requirement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Requirement {
    /// `key In [values]`: the label is present with one of the values.
    In(String, BTreeSet<String>),
    /// `key NotIn [values]`: the label is absent or has none of the values.
    NotIn(String, BTreeSet<String>),
    /// `key Exists`.
    Exists(String),
    /// `key DoesNotExist`.
    DoesNotExist(String),
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A validated label selector: every `match_labels` pair and every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSelector {
    /// `matchLabels`.
    pub match_labels: Labels,
    /// `matchExpressions`.
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// Whether this is `{}`, which selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether `labels` are selected.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

impl std::fmt::Display for LabelSelector {
    /// kubectl's form: `app=web,tier in (a,b),!legacy`; `{}` for the empty selector.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("{}");
        }
        let mut parts: Vec<String> = self.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let join = |v: &BTreeSet<String>| v.iter().cloned().collect::<Vec<_>>().join(",");
        for r in &self.match_expressions {
            parts.push(match r {
                Requirement::In(k, v) => format!("{k} in ({})", join(v)),
                Requirement::NotIn(k, v) => format!("{k} notin ({})", join(v)),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            });
        }
        f.write_str(&parts.join(","))
    }
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters, alphanumeric at both ends with `-`, `_`, `.` inside.
pub(crate) fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 || !is_dns_subdomain(p) {
            return Err(format!("label key {key:?}: prefix {p:?} is not a DNS subdomain"));
        }
    }
    if name.is_empty() {
        return Err(format!("label key {key:?}: name part is empty"));
    }
    check_label_name(name).map_err(|e| format!("label key {key:?}: {e}"))
}

/// Checks a label value: empty, or like a key's name part.
pub(crate) fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_label_name(value).map_err(|e| format!("label value {value:?}: {e}"))
}

fn check_label_name(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!("{} characters, at most 63 allowed", s.len()));
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let first_last_ok = s.starts_with(alnum) && s.ends_with(alnum);
    if !first_last_ok || !s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.')) {
        return Err("must be alphanumeric at both ends, with only '-', '_' or '.' inside".into());
    }
    Ok(())
}

/// A lower-case RFC 1123 subdomain: labels of `[a-z0-9-]`, alphanumeric at both ends, joined by
/// dots, at most 253 characters.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A lower-case RFC 1123 label, at most 63 characters.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(ok)
        && s.ends_with(ok)
        && s.chars().all(|c| ok(c) || c == '-')
}
