//! Why a policy document was refused: the file, the document, the policy, the field path and the
//! problem, e.g. `web.yaml: document 2 (db/allow-web): spec.ingress[0].ports[1].endPort: 80 is
//! below port 3306`.

/// A problem at one field of one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FieldError {
    /// The field path, `spec.ingress[0].from[1].ipBlock.cidr`.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// A refused document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: document {document}{}: {path}: {problem}", policy.as_ref().map(|p| format!(" ({p})")).unwrap_or_default())]
pub struct PolicyError {
    /// The file name (`-` for standard input).
    pub file: String,
    /// The document's number in the file, from 1.
    pub document: usize,
    /// `namespace/name`, when the document got as far as naming one.
    pub policy: Option<String>,
    /// The field path (`(document)` for the document as a whole).
    pub path: String,
    /// What is wrong (YAML errors say line and column).
    pub problem: String,
}
