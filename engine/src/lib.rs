//! weft's data plane: the FIB, the forwarding pipeline, poll-mode workers and the
//! ports they drive (AF_XDP, AF_PACKET, in-memory).
//!
//! `unsafe` is denied crate-wide; the one module that talks to kernel rings
//! opts back in and documents every block.
#![deny(unsafe_code)]

pub mod port;
pub mod worker;
