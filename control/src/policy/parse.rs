//! Policy files as `kubectl apply -f` takes them: YAML or JSON, one or many `---`-separated
//! documents, each a `networking.k8s.io/v1` NetworkPolicy. All or nothing: the first bad
//! document refuses the whole file.

use std::collections::BTreeSet;

use super::error::PolicyError;
use super::model::NetworkPolicy;
use super::raw::RawPolicy;
use super::validate::validate;

/// The path shown for an error about a document as a whole.
const WHOLE_DOCUMENT: &str = "(document)";

/// Parses and validates every document of `text` (`file` names it in errors). Empty documents
/// are skipped; the same `namespace/name` twice is an error.
pub fn parse_documents(text: &str, file: &str) -> Result<Vec<NetworkPolicy>, PolicyError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let number = i + 1;
        let fail = |policy: Option<String>, path: String, problem: String| PolicyError {
            file: file.to_owned(),
            document: number,
            policy,
            path: if path.is_empty() || path == "." { WHOLE_DOCUMENT.to_owned() } else { path },
            problem,
        };
        let raw: Option<RawPolicy> = serde_path_to_error::deserialize(document).map_err(|e| {
            // The YAML error starts with the enclosing mapping's path, already in `path`.
            let problem = e.inner().to_string();
            let problem = match problem.split_once(": ") {
                Some((at, rest)) if !at.contains(' ') => rest.to_owned(),
                _ => problem,
            };
            fail(None, e.path().to_string(), problem)
        })?;
        let Some(raw) = raw else { continue };
        let name = raw.metadata.as_ref().and_then(|m| m.name.clone());
        let named = |p: &RawPolicy| {
            let ns = p.metadata.as_ref().and_then(|m| m.namespace.clone());
            name.clone()
                .map(|n| format!("{}/{n}", ns.as_deref().unwrap_or(super::validate::DEFAULT_NAMESPACE)))
        };
        let label = named(&raw);
        let policy = validate(raw).map_err(|e| fail(label, e.path, e.problem))?;
        if !seen.insert(policy.id()) {
            return Err(fail(
                Some(policy.id().to_string()),
                "metadata.name".into(),
                "defined twice in this input".into(),
            ));
        }
        out.push(policy);
    }
    Ok(out)
}
