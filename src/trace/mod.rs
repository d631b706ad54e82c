//! Traces of exec / attach / port-forward sessions, hop by hop. Each component records
//! its own hop (the API server the client's and the kubelet's connections, the kubelet
//! the CRI call and the streaming connection, the runtime the process) under a trace id
//! that travels with the request as a W3C `traceparent` header (gRPC metadata on the CRI
//! hop), as real systems carry trace context. Hops land in a bounded in-memory ring per
//! cluster that the API server serves on an authenticated debug endpoint and `rkind
//! trace` renders.

pub mod client;
pub mod evidence;
pub mod explain;
pub mod model;
pub mod recorder;
pub mod render;
pub mod tally;

pub use model::{
    Connection, GrpcCall, Hop, HopId, HttpExchange, NamespaceInodes, Outcome, ProcessInfo, Resize,
    StreamStats, Trace,
};
pub use recorder::{ByteCounter, Counted, Recorder, TraceContext};
pub use tally::Tally;
