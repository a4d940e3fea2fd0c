//! weft's data plane: the FIB, the forwarding pipeline, poll-mode workers and the
//! ports they drive (AF_XDP, AF_PACKET, in-memory).
//!
//! `unsafe` is denied crate-wide; the one module that talks to kernel rings
//! ([`port::afxdp`]) opts back in and documents every block.
//!
//! - [`fib`]: the lock-free longest-prefix-match routing table (DIR-24-8) and its
//!   next-hop table; one writer (the control thread), one reader per worker.
//! - [`pipeline`]: the forwarding pipeline (every flannel/Calico data path) as the workers'
//!   [`worker::FrameProcessor`], and the [`pipeline::RouteProgrammer`] the control thread
//!   programs routes through.
//! - [`neighbour`]: underlay IPv4 -> MAC published by the control side, with the bounded queue
//!   of resolve requests the workers push misses into.
//! - [`policy`]: Kubernetes NetworkPolicy compiled per local pod, published whole, and the
//!   per-worker connection table consulted before any rule.
//! - [`port`]: the [`port::Port`] trait and its AF_XDP, AF_PACKET and in-memory
//!   implementations, the frame pool over a shared UMEM, the XDP filter loader.
//! - [`wireguard`]: flannel's wireguard backend in the workers (boringtun's WireGuard protocol,
//!   one owning worker per peer).
//! - [`worker`]: pinned poll-mode workers, the [`worker::FrameProcessor`]
//!   contract, per-worker counters and the cross-worker handoff ring.
//!
//! Every frame a worker drops is counted under a [`worker::DropReason`]; the
//! table (name, description) is declared once in `worker/drop_reason.rs` and
//! `DropReason::ALL` lists it for metrics and documentation.
#![deny(unsafe_code)]

pub mod fib;
pub mod neighbour;
pub mod pipeline;
pub mod policy;
pub mod port;
pub mod wireguard;
pub mod worker;
