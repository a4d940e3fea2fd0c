//! weft's BGP speaker core: the message codec ([`wire`]) and the session state machine
//! ([`session`]), both free of I/O (bytes and time in, messages and events out). The
//! control plane runs them over TCP and turns learned routes into FIB routes.
//!
//! # Why a focused speaker and not an existing crate
//!
//! weft needs what BIRD speaks in Calico's node mesh: BGP-4 (RFC 4271) with 4-octet AS
//! (RFC 6793), multiprotocol IPv4 unicast (RFC 4760), route refresh (RFC 2918), graceful
//! restart (RFC 4724) and RFC 7606 error handling, for a handful of IPv4 prefixes per peer.
//! The crates that exist were weighed against that:
//!
//! - **holo-bgp** (holo-routing): a complete, well-tested speaker, but built into holo's
//!   daemon: YANG northbound, holo-utils' event loop and IBus, its own RIB and policy engine.
//!   Taking it means running a routing suite's framework inside weft's control thread.
//! - **zettabgp**: a parse/compose library for many address families; its errors do not say
//!   which NOTIFICATION to send, it has no RFC 7606 classification (a malformed attribute is
//!   a parse error of the whole message), and it has no session machine.
//! - **bgp-rs** and **bgpkit-parser**: read-only parsers aimed at MRT/BMP archives; they emit
//!   no OPEN or UPDATE and have no session layer.
//!
//! A focused codec is small (the message types and attributes above), keeps RFC 7606
//! in one place ([`wire::update`]) with the NOTIFICATION each error maps to, and is fuzzed
//! alone (`fuzz/fuzz_targets/bgp_message.rs`). The session machine follows the habit of
//! boringtun and holo: pure state, the caller owns sockets and clocks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod session;
pub mod wire;
