//! Where the pod's address comes from: the `ipam` plugin the configuration names
//! (delegation, as containernetworking's `invoke` does it), or the node subnet itself.

pub mod delegate;
pub mod store;
