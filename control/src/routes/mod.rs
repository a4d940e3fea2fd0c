//! Routes the control plane wants in the engine's FIB, and how they get there.

mod compiler;
mod programmer_sink;
mod sink;
mod spec;

pub use compiler::{RouteCompiler, RoutePolicy};
pub use programmer_sink::{ProgrammerSink, RouteConvertError, SharedProgrammer, route_update};
pub use sink::{RecordingSink, RouteSink, RouteTable};
pub use spec::{RouteDelta, RouteSpec, Via};
