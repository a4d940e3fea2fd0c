//! Prometheus metrics: the text exposition of a [`StatusReport`] and a
//! minimal HTTP server (`GET /metrics`, `GET /healthz`) on a configured loopback address.
//!
//! [`StatusReport`]: crate::api::StatusReport

mod exposition;
mod server;

pub use exposition::render;
pub use server::{MetricsServerError, bind, serve};
