//! The remote-command protocol shared by exec and attach: stream options from the
//! query string, sub-protocol negotiation, the stream roles (`streamtype` header), the
//! status documents written on the error stream, and the resize-event decoder.
//! Pure: no sockets (exec-protocols.md §2.1, §3.4, §4.6).

use serde_json::{Value, json};

/// SPDY and WebSocket sub-protocol names, newest first.
pub const V5: &str = "v5.channel.k8s.io";
/// Status JSON on the error stream, resize stream: what kubelets/CRIs negotiate.
pub const V4: &str = "v4.channel.k8s.io";
/// Resize stream; plain-text errors.
pub const V3: &str = "v3.channel.k8s.io";
/// Plain-text errors; the client waits for the error stream.
pub const V2: &str = "v2.channel.k8s.io";
/// The original protocol.
pub const V1: &str = "channel.k8s.io";
/// WebSocket only: v4 framing with base64 text messages.
pub const V4_BASE64: &str = "v4.base64.channel.k8s.io";
/// WebSocket only: v1 framing with base64 text messages.
pub const V1_BASE64: &str = "base64.channel.k8s.io";

/// Versions a SPDY remote-command server here speaks, in preference order.
pub const SPDY_SERVER_PROTOCOLS: [&str; 4] = [V4, V3, V2, V1];

/// Versions the API server's SPDY client offers the kubelet (as upstream's translator).
pub const SPDY_CLIENT_PROTOCOLS: [&str; 5] = [V5, V4, V3, V2, V1];

/// The port-forward sub-protocol.
pub const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";

/// Prefix of WebSocket sub-protocols that tunnel SPDY (port-forward over WebSocket).
pub const TUNNEL_PREFIX: &str = "SPDY/3.1+";

/// Header carrying offered/chosen sub-protocols on SPDY upgrades.
pub const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";

/// Picks the first of the client's protocols (in client order) the server supports;
/// header values may also be comma separated.
pub fn negotiate<'a>(offered: &[String], supported: &[&'a str]) -> Option<&'a str> {
    offered
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| supported.iter().find(|s| **s == p).copied())
}

/// Which streams a remote-command session carries, from the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamOptions {
    /// The client sends stdin.
    pub stdin: bool,
    /// The client wants stdout.
    pub stdout: bool,
    /// The client wants stderr (never with a tty).
    pub stderr: bool,
    /// A terminal is allocated; stdout and stderr merge.
    pub tty: bool,
    /// The command (exec only).
    pub command: Vec<String>,
    /// The container name.
    pub container: String,
}

/// Parses a boolean query value as the API server does: "0"/"false" are false,
/// anything else (including "1" and "true") is true.
pub fn query_bool(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

impl StreamOptions {
    /// Reads `stdin`, `stdout`, `stderr`, `tty`, `command` and `container`.
    pub fn from_query(query: Option<&str>) -> StreamOptions {
        let mut o = StreamOptions::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "stdin" => o.stdin = query_bool(&v),
                "stdout" => o.stdout = query_bool(&v),
                "stderr" => o.stderr = query_bool(&v),
                "tty" => o.tty = query_bool(&v),
                "command" => o.command.push(v.into_owned()),
                "container" => o.container = v.into_owned(),
                _ => {}
            }
        }
        o
    }

    /// The query string a kubelet expects (`=1` flags, as upstream's `streamParams`).
    pub fn to_kubelet_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for c in &self.command {
            q.append_pair("command", c);
        }
        for (name, on) in [
            ("stdin", self.stdin),
            ("stdout", self.stdout),
            ("stderr", self.stderr),
            ("tty", self.tty),
        ] {
            if on {
                q.append_pair(name, "1");
            }
        }
        q.finish()
    }

    /// Rejects what upstream rejects before any upgrade.
    pub fn validate(&self) -> Result<(), String> {
        if !self.stdin && !self.stdout && !self.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        if self.tty && self.stderr {
            // kubectl never asks for both; upstream's CRI rejects it.
            return Err("tty and stderr cannot both be true".into());
        }
        Ok(())
    }

    /// How many SPDY streams the client will open for protocol `version`.
    pub fn expected_streams(&self, version: &str) -> usize {
        1 + usize::from(self.stdin)
            + usize::from(self.stdout)
            + usize::from(self.stderr && !self.tty)
            + usize::from(self.tty && supports_resize(version))
    }
}

/// Whether `version` has a resize stream/channel.
pub fn supports_resize(version: &str) -> bool {
    matches!(version, V3 | V4 | V5 | V4_BASE64)
}

/// Whether the error stream carries `metav1.Status` JSON (v4+) rather than text.
pub fn status_on_error_stream(version: &str) -> bool {
    matches!(version, V4 | V5 | V4_BASE64)
}

/// Stream roles named by the `streamtype` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    /// Server → client status.
    Error,
    /// Client → server input.
    Stdin,
    /// Server → client output.
    Stdout,
    /// Server → client error output.
    Stderr,
    /// Client → server terminal size events.
    Resize,
    /// Port-forward data.
    Data,
}

impl StreamType {
    /// Parses a `streamtype` header value.
    pub fn parse(v: &str) -> Option<StreamType> {
        Some(match v {
            "error" => StreamType::Error,
            "stdin" => StreamType::Stdin,
            "stdout" => StreamType::Stdout,
            "stderr" => StreamType::Stderr,
            "resize" => StreamType::Resize,
            "data" => StreamType::Data,
            _ => return None,
        })
    }

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Error => "error",
            StreamType::Stdin => "stdin",
            StreamType::Stdout => "stdout",
            StreamType::Stderr => "stderr",
            StreamType::Resize => "resize",
            StreamType::Data => "data",
        }
    }
}

/// How a remote command ended, as reported on the error stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0.
    Success,
    /// Exit status 1..=255.
    ExitCode(i32),
    /// The command could not be run (or the chain broke).
    Error(String),
}

impl Outcome {
    /// The `metav1.Status` document for v4/v5 error streams (upstream writes it with
    /// plain `json.Marshal`: no kind/apiVersion, empty metadata).
    pub fn status_json(&self) -> Value {
        match self {
            Outcome::Success => json!({"metadata": {}, "status": "Success"}),
            Outcome::ExitCode(code) => json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("command terminated with non-zero exit code: exit status {code}"),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            }),
            Outcome::Error(msg) => json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("Internal error occurred: {msg}"),
                "reason": "InternalError",
                "details": {"causes": [{"message": msg}]},
                "code": 500,
            }),
        }
    }

    /// What goes on the error stream for `version`: JSON for v4+, text on failure only
    /// for older versions; `None` means write nothing.
    pub fn error_stream_bytes(&self, version: &str) -> Option<Vec<u8>> {
        if status_on_error_stream(version) {
            return serde_json::to_vec(&self.status_json()).ok();
        }
        match self {
            Outcome::Success => None,
            Outcome::ExitCode(code) => Some(
                format!("command terminated with non-zero exit code: exit status {code}")
                    .into_bytes(),
            ),
            Outcome::Error(msg) => Some(msg.clone().into_bytes()),
        }
    }

    /// Reads a status document back (the translator receives it from the kubelet).
    pub fn from_status(bytes: &[u8]) -> Outcome {
        if bytes.is_empty() {
            return Outcome::Success;
        }
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return Outcome::Error(String::from_utf8_lossy(bytes).into_owned());
        };
        if v["status"] == "Success" {
            return Outcome::Success;
        }
        if v["reason"] == "NonZeroExitCode"
            && let Some(code) = v["details"]["causes"].as_array().and_then(|c| {
                c.iter()
                    .find(|c| c["reason"] == "ExitCode")
                    .and_then(|c| c["message"].as_str())
                    .and_then(|m| m.parse::<i32>().ok())
            })
        {
            return Outcome::ExitCode(code);
        }
        let msg = v["message"].as_str().unwrap_or("unknown error").to_string();
        Outcome::Error(
            msg.strip_prefix("Internal error occurred: ")
                .unwrap_or(&msg)
                .to_string(),
        )
    }
}

/// A terminal size event (`{"Width":W,"Height":H}` — capitalized, as Go encodes
/// `TerminalSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// Splits a byte stream of concatenated JSON objects into size events; keeps a
/// partial object for the next call. Garbage is dropped, never fatal.
#[derive(Debug, Default)]
pub struct ResizeDecoder {
    buf: Vec<u8>,
}

impl ResizeDecoder {
    /// Feeds bytes, returning every complete event.
    pub fn feed(&mut self, data: &[u8]) -> Vec<TerminalSize> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut consumed = 0;
        {
            let mut it =
                serde_json::Deserializer::from_slice(&self.buf).into_iter::<TerminalSize>();
            loop {
                match it.next() {
                    Some(Ok(size)) => {
                        out.push(size);
                        consumed = it.byte_offset();
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(_)) => {
                        consumed = self.buf.len();
                        break;
                    }
                    None => {
                        consumed = self.buf.len();
                        break;
                    }
                }
            }
        }
        self.buf.drain(..consumed);
        if self.buf.len() > 4096 {
            self.buf.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_client_order_and_accepts_comma_lists() {
        let offered: Vec<String> = [V5, V4, V3, V2, V1].iter().map(|s| s.to_string()).collect();
        assert_eq!(negotiate(&offered, &SPDY_SERVER_PROTOCOLS), Some(V4));
        let comma = vec![format!("{V2}, {V1}")];
        assert_eq!(negotiate(&comma, &SPDY_SERVER_PROTOCOLS), Some(V2));
        assert_eq!(negotiate(&["x".into()], &SPDY_SERVER_PROTOCOLS), None);
    }

    #[test]
    fn options_from_kubectl_query_and_to_kubelet() {
        let o = StreamOptions::from_query(Some(
            "command=sh&command=-c&command=echo+a%2Fb&container=c1&stderr=true&stdin=true&stdout=true",
        ));
        assert_eq!(o.command, vec!["sh", "-c", "echo a/b"]);
        assert!(o.stdin && o.stdout && o.stderr && !o.tty);
        assert_eq!(o.expected_streams(V4), 4);
        assert_eq!(
            o.to_kubelet_query(),
            "command=sh&command=-c&command=echo+a%2Fb&stdin=1&stdout=1&stderr=1"
        );
        let t = StreamOptions::from_query(Some("stdin=1&stdout=1&tty=1&stderr=0"));
        assert!(t.tty && !t.stderr);
        assert_eq!(t.expected_streams(V4), 4);
        assert_eq!(t.expected_streams(V2), 3);
        assert!(StreamOptions::default().validate().is_err());
    }

    #[test]
    fn exit_code_status_round_trips_as_kubectl_reads_it() {
        let s = Outcome::ExitCode(7).status_json();
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "7");
        let bytes = Outcome::ExitCode(7).error_stream_bytes(V4).expect("bytes");
        assert_eq!(Outcome::from_status(&bytes), Outcome::ExitCode(7));
        assert_eq!(
            Outcome::Success.error_stream_bytes(V4).expect("json"),
            br#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(Outcome::Success.error_stream_bytes(V2), None);
        let e = Outcome::Error("boom".into());
        assert_eq!(
            Outcome::from_status(&e.error_stream_bytes(V5).expect("json")),
            e
        );
    }

    #[test]
    fn resize_events_split_across_chunks() {
        let mut d = ResizeDecoder::default();
        assert!(d.feed(br#"{"Width":100,"#).is_empty());
        let ev = d.feed(b"\"Height\":30}\n{\"Width\":120,\"Height\":40}\n");
        assert_eq!(
            ev,
            vec![
                TerminalSize {
                    width: 100,
                    height: 30
                },
                TerminalSize {
                    width: 120,
                    height: 40
                }
            ]
        );
        assert!(d.feed(b"garbage").is_empty());
        assert_eq!(d.feed(br#"{"Width":1,"Height":2}"#).len(), 1);
    }
}
