//! The kernel interface: AF_XDP sockets and their rings, the UMEM, the
//! TPACKET_V3 ring of the AF_PACKET fallback and the system calls they need.
//!
//! This is the one module of the engine where `unsafe` is allowed. Every
//! `unsafe` block carries a `// SAFETY:` comment and every `unsafe fn`/trait a
//! `# Safety` section; everything exported from here is a safe API.
#![allow(unsafe_code)]

mod ring;
mod socket;
pub(crate) mod sys;
mod tpacket;
mod umem;

pub use socket::{AfXdpPort, BindMode, XskConfig};
pub(crate) use tpacket::Tpacket;
pub use tpacket::TpacketGeometry;
pub use umem::{Umem, UmemShare};
