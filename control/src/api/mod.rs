//! The daemon's local API: one JSON request and one JSON reply per line over
//! a unix socket (`[api] socket`). `weft status` and `weft pod add|del` are
//! its clients; a CNI plugin can speak it with any JSON library.
//!
//! ```text
//! -> {"op":"status"}
//! <- {"reply":"status","report":{...}}
//! -> {"op":"pod_add","interface":"vp1","ip":"198.19.1.2","mac":null}
//! <- {"reply":"done","changed":true,"message":"pod vp1 198.19.1.2 attached"}
//! <- {"reply":"error","message":"pod.ip: 10.0.0.2 is not in our pod subnet 198.19.1.0/24"}
//! ```

mod client;
mod protocol;
mod report;
mod report_text;
mod server;

pub use client::{ApiClientError, request};
pub use protocol::{Reply, Request};
pub use report::{
    BgpSessionLine, BgpState, DropLine, EtcdState, FibState, HostLinkState, LeaseLine, NeighbourLine,
    PodLine, PolicyState, PortLine, RouteLine, StatusReport, WaitingState, WorkerLine,
};
pub use server::{ApiHandler, ApiServerError, bind, serve};
