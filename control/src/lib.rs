//! weft's control plane: configuration, the flannel-compatible etcd lease
//! manager, the lease -> route compiler, subnet.env and the runtime API.
//! It never touches a packet.
#![forbid(unsafe_code)]
