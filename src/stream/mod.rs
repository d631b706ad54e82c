//! Stream codecs shared by the API server, the kubelet and the runtime's streaming
//! server: SPDY/3.1 framing, the WebSocket channel protocol, remote-command stream
//! roles and port-forward pairing. Pure codecs, unit-tested on bytes.

pub mod spdy;
