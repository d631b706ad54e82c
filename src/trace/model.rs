//! What a trace holds. This is the stable JSON shape of `rkind trace -o json` (documented
//! in `docs/trace-schema.json`): field names are camelCase, times are RFC 3339 with
//! nanoseconds, durations are milliseconds as floats, and nothing secret is kept (the
//! streaming token is masked, no keys or certificates, only subjects).

use serde::{Deserialize, Serialize};

/// The version of this JSON shape; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Which hop of the chain a record describes, in chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum HopId {
    /// The client's HTTPS connection to the API server (WebSocket or SPDY upgrade).
    KubectlToApiserver,
    /// The API server's mutual-TLS connection to the node's kubelet.
    ApiserverToKubelet,
    /// The kubelet's CRI gRPC call (`Exec`, `Attach`, `PortForward`) on the unix socket.
    KubeletToCri,
    /// The kubelet's connection to the streaming URL the runtime returned.
    KubeletToStreamingServer,
    /// The runtime's streaming server running the process (or dialling the pod's port).
    StreamingServerToProcess,
}

impl HopId {
    /// Who talks to whom on this hop.
    pub fn ends(self) -> (&'static str, &'static str) {
        match self {
            HopId::KubectlToApiserver => ("kubectl", "API server"),
            HopId::ApiserverToKubelet => ("API server", "kubelet"),
            HopId::KubeletToCri => ("kubelet", "CRI runtime"),
            HopId::KubeletToStreamingServer => ("kubelet", "streaming server"),
            HopId::StreamingServerToProcess => ("streaming server", "process"),
        }
    }
}

/// One session through the chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// 32 hex digits, the `traceparent` trace id.
    pub trace_id: String,
    /// `exec`, `attach` or `portforward`.
    pub kind: String,
    /// `namespace/name`.
    pub pod: String,
    /// The container (empty for port-forward).
    pub container: String,
    /// The command (exec only).
    pub command: Vec<String>,
    /// When the client's request arrived.
    pub started_at: String,
    /// From the request's arrival to the end of the client's connection.
    pub duration_ms: f64,
    /// How the session ended, as the client was told.
    pub outcome: Option<Outcome>,
    /// The hops, in chain order.
    pub hops: Vec<Hop>,
    /// Nanoseconds since the Unix epoch of `started_at` (for offsets; not serialised).
    #[serde(skip)]
    pub started_unix_ns: u128,
}

/// The end of a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `Success` or `Failure`, as in the `metav1.Status` sent to the client.
    pub status: String,
    /// The process's exit code, when it ran and exited non-zero (0 on success).
    pub exit_code: Option<i32>,
    /// The status message or error, if any.
    pub message: Option<String>,
    /// The HTTP status when the request was refused before the upgrade.
    pub http_status: Option<u16>,
}

/// One hop of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hop {
    /// Which hop.
    pub id: HopId,
    /// Caller side.
    pub from: String,
    /// Callee side.
    pub to: String,
    /// When the hop started.
    pub started_at: String,
    /// Milliseconds after the trace started.
    pub offset_ms: f64,
    /// How long the hop lasted.
    pub duration_ms: f64,
    /// From the start of the hop to the first byte of output towards the client.
    pub time_to_first_byte_ms: Option<f64>,
    /// The transport connection, if the hop has its own.
    pub connection: Option<Connection>,
    /// The HTTP request and its upgrade answer.
    pub request: Option<HttpExchange>,
    /// The gRPC call (CRI hop).
    pub grpc: Option<GrpcCall>,
    /// The process (last hop of exec/attach).
    pub process: Option<ProcessInfo>,
    /// Per stream or channel counts; empty where the hop only moves bytes.
    pub streams: Vec<StreamStats>,
    /// Bytes the caller sent on this hop after the upgrade.
    pub bytes_to_callee: u64,
    /// Bytes the callee sent on this hop after the upgrade.
    pub bytes_to_caller: u64,
    /// How the hop ended (who closed first, or why it failed).
    pub closed: String,
    /// An error on this hop, if any.
    pub error: Option<String>,
    /// Start, nanoseconds since the Unix epoch (not serialised).
    #[serde(skip)]
    pub started_unix_ns: u128,
}

impl Hop {
    /// A hop that starts now.
    pub fn start(id: HopId) -> Hop {
        let (from, to) = id.ends();
        let now = unix_ns();
        Hop {
            id,
            from: from.into(),
            to: to.into(),
            // Formatted when recorded (a hop that is never recorded costs no formatting).
            started_at: String::new(),
            offset_ms: 0.0,
            duration_ms: 0.0,
            time_to_first_byte_ms: None,
            connection: None,
            request: None,
            grpc: None,
            process: None,
            streams: Vec::new(),
            bytes_to_callee: 0,
            bytes_to_caller: 0,
            closed: String::new(),
            error: None,
            started_unix_ns: now,
        }
    }

    /// Sets the duration to "until now".
    pub fn finish(&mut self) {
        self.duration_ms = ms_between(self.started_unix_ns, unix_ns());
    }

    /// Sets the duration to end when the hop's answer was complete (the last byte from
    /// the callee), or now if nothing came back. Teardown after that is not the hop's
    /// work, and timing it would make inner hops outlast the outer ones.
    pub fn finish_at(&mut self, answered: Option<u128>) {
        match answered {
            Some(t) => self.duration_ms = ms_between(self.started_unix_ns, t),
            None => self.finish(),
        }
    }
}

/// A transport connection as `ss` would show it, plus who authenticated as whom.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// `TLS 1.3 over TCP`, `TCP`, `unix socket`.
    pub transport: String,
    /// The caller's address.
    pub caller: String,
    /// The callee's address.
    pub callee: String,
    /// The subject of the certificate the caller presented (mutual TLS), if any.
    pub caller_subject: Option<String>,
    /// The subject of the certificate the callee presented, if TLS.
    pub callee_subject: Option<String>,
}

/// An HTTP request with an upgrade.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpExchange {
    /// GET (WebSocket) or POST (SPDY).
    pub method: String,
    /// The path (the streaming token masked).
    pub path: String,
    /// The query parameters, in order (`command` may repeat).
    pub query: Vec<(String, String)>,
    /// `websocket` or `SPDY/3.1`.
    pub upgrade: String,
    /// Sub-protocols the caller offered.
    pub offered_protocols: Vec<String>,
    /// The one the callee chose.
    pub negotiated_protocol: Option<String>,
    /// The status line's code (101 when switched).
    pub status: u16,
}

/// A gRPC call on the CRI socket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcCall {
    /// Full method name, e.g. `/runtime.v1.RuntimeService/Exec`.
    pub method: String,
    /// The request's fields.
    pub request: serde_json::Value,
    /// The streaming URL returned, token masked.
    pub response_url: Option<String>,
    /// The gRPC status code name.
    pub code: String,
}

/// The process at the end of an exec (or the container's, for attach).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessInfo {
    /// The helper's pid on the host (the command runs as its child inside the container).
    pub pid: Option<u32>,
    /// The container entered.
    pub container_id: String,
    /// The container's main process on the host.
    pub container_pid: u32,
    /// A terminal was allocated.
    pub tty: bool,
    /// Namespace inodes: the process's, the container's and the host's.
    pub namespaces: Vec<NamespaceInodes>,
    /// Terminal size changes, in order.
    pub resizes: Vec<Resize>,
    /// The exit code (exec), if the process exited.
    pub exit_code: Option<i32>,
}

/// One namespace type compared across the process, its container and the host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceInodes {
    /// `pid`, `mnt`, `net`, `ipc`, `uts`.
    pub r#type: String,
    /// The exec'd process's.
    pub process: Option<u64>,
    /// The container's main process's.
    pub container: Option<u64>,
    /// rkind's own (the host's).
    pub host: Option<u64>,
}

/// A terminal resize.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resize {
    /// Milliseconds after the hop started.
    pub offset_ms: f64,
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// Counts for one stream (SPDY) or channel (WebSocket).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamStats {
    /// `stdin`, `stdout`, `stderr`, `error`, `resize`, or `port 8080 data` …
    pub name: String,
    /// Bytes towards the process.
    pub bytes_in: u64,
    /// Messages or frames towards the process.
    pub messages_in: u64,
    /// Bytes towards the client.
    pub bytes_out: u64,
    /// Messages or frames towards the client.
    pub messages_out: u64,
    /// How it ended (`closed by client`, `EOF from process`, …).
    pub closed: String,
}

/// Nanoseconds since the Unix epoch, now.
pub fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Milliseconds from `a` to `b` (0 if `b` is earlier).
pub fn ms_between(a: u128, b: u128) -> f64 {
    b.saturating_sub(a) as f64 / 1e6
}

/// RFC 3339 with nanoseconds, UTC.
pub fn rfc3339(unix_ns: u128) -> String {
    jiff::Timestamp::from_nanosecond(unix_ns as i128)
        .ok()
        .and_then(|t| jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S.%9fZ", t).ok())
        .unwrap_or_default()
}

/// Replaces the streaming token in a URL or path (`/exec/AbCd1234` → `/exec/********`).
pub fn mask_token(url: &str) -> String {
    for kind in ["/exec/", "/attach/", "/portforward/"] {
        if let Some(i) = url.find(kind) {
            let start = i + kind.len();
            let end = url[start..]
                .find('?')
                .map(|e| start + e)
                .unwrap_or(url.len());
            // A kubelet path (`/exec/{ns}/{pod}/…`) has no token.
            if url[start..end].contains('/') {
                return url.to_string();
            }
            return format!(
                "{}{}{}",
                &url[..start],
                "*".repeat(end - start),
                &url[end..]
            );
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_masked_and_times_formatted() {
        assert_eq!(
            mask_token("http://127.0.0.1:4242/exec/Ab_d1234"),
            "http://127.0.0.1:4242/exec/********"
        );
        assert_eq!(mask_token("/portforward/xyz"), "/portforward/***");
        assert_eq!(
            mask_token("/exec/default/box/c?command=ls"),
            "/exec/default/box/c?command=ls"
        );
        assert_eq!(
            rfc3339(1_500_000_000_123_456_789),
            "2017-07-14T02:40:00.123456789Z"
        );
        assert_eq!(ms_between(1_000_000, 3_500_000), 2.5);
    }
}
