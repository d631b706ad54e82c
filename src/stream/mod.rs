//! Stream codecs shared by the API server, the kubelet and the runtime's streaming
//! server: SPDY/3.1 framing and sessions, the WebSocket channel protocol,
//! remote-command stream roles and port-forward pairing. The codecs are pure and
//! unit-tested on bytes; [`session`] adds the tasks that drive a SPDY connection.

pub mod listener;
pub mod portforward;
pub mod remotecommand;
pub mod session;
pub mod spdy;
pub mod upgrade;
pub mod wschannel;
pub mod wsserver;
