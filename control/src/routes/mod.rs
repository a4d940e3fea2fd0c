//! Routes the control plane wants in the engine's FIB, and how they get there.

mod compiler;
mod sink;
mod spec;

pub use compiler::{RouteCompiler, RoutePolicy};
pub use sink::{RecordingSink, RouteSink, RouteTable};
pub use spec::{RouteDelta, RouteSpec, Via};
