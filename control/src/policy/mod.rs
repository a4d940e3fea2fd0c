//! Kubernetes NetworkPolicy (`networking.k8s.io/v1`) for weft: the policy model, its
//! validation and its storage in etcd.
//!
//! - [`raw`]: the objects as written (YAML or JSON), unknown fields refused; also the stored form.
//! - [`validate()`]: Kubernetes' validation and defaulting (`policyTypes`, TCP, the policy's own
//!   namespace); every error names the field path.
//! - [`parse_documents`]: one or many documents, all or nothing.
//! - [`PolicyStore`]: the policies in etcd, `<weft_prefix>/policies/<namespace>/<name>`.
//! - [`LabelSelector`]: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist).

mod error;
mod model;
mod parse;
pub mod raw;
mod selector;
mod store;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{FieldError, PolicyError};
pub use model::{IpBlock, NetworkPolicy, Peer, PolicyId, PolicyTypes, PortMatch, Protocol, Rule};
pub use parse::parse_documents;
pub use selector::{LabelSelector, Labels, Requirement};
pub use store::{Applied, Listed, MAX_TXN_OPS, PolicyKeys, PolicyStore, decode};
pub use validate::{API_VERSION, DEFAULT_NAMESPACE, KIND, validate};
