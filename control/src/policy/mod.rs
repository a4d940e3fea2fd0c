//! Kubernetes NetworkPolicy (`networking.k8s.io/v1`) for weft: the policy model, its
//! validation and its storage in etcd.
//!
//! - [`raw`]: the objects as written (YAML or JSON), unknown fields refused; also the stored form.
//! - [`validate()`]: Kubernetes' validation and defaulting (`policyTypes`, TCP, the policy's own
//!   namespace); every error names the field path.
//! - [`parse_documents`]: one or many documents, all or nothing.
//! - [`PolicyStore`]: the policies in etcd, `<weft_prefix>/policies/<namespace>/<name>`.
//! - [`LabelSelector`]: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist).
//! - [`Endpoint`], [`RecordKeys`]: pods' and namespaces' records beside the policies.
//! - [`PolicyInputs::compile`]: policies + endpoints + namespaces -> the engine's per-pod set.
//! - [`PolicyInputs::explain`]: which policies and rule decide one connection.
//! - [`PolicyStore::label_pod`], [`PolicyStore::label_namespace`]: `weft label`.
//! - [`Records`]: every record enforcement reads, by etcd key.
//! - [`PolicySync`]: the daemon's loop that watches all of it and publishes on every change.

mod compile;
mod endpoint;
mod error;
mod explain;
mod label;
mod model;
mod parse;
pub mod raw;
mod records;
mod selector;
mod store;
mod sync;
mod validate;

#[cfg(test)]
mod tests;

pub use compile::{NAMESPACE_NAME_LABEL, PolicyInputs};
pub use endpoint::{Endpoint, NamespaceRecord, RecordKey, RecordKeys, decode_endpoint, decode_namespace};
pub use error::{FieldError, PolicyError};
pub use explain::{Explanation, Side};
pub use label::LabelChange;
pub use model::{IpBlock, NetworkPolicy, Peer, PolicyId, PolicyTypes, PortMatch, Protocol, Rule};
pub use parse::parse_documents;
pub use records::{PutOutcome, Records};
pub use selector::{LabelSelector, Labels, Requirement};
pub use store::{Applied, Listed, MAX_TXN_OPS, PolicyKeys, PolicyStore, decode};
pub use sync::{EndpointOp, EndpointRequest, PolicySync};
pub use validate::{API_VERSION, DEFAULT_NAMESPACE, KIND, check_namespace, validate};
