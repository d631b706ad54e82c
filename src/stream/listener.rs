//! Connection hardening shared by the three listeners (API server, kubelet, runtime
//! streaming server). A socket costs a file descriptor from the moment it is accepted,
//! so nothing a peer without credentials does may pin one for long:
//!
//! * TLS handshakes must finish within [`handshake_timeout`] (10 s, or
//!   `RKIND_TLS_HANDSHAKE_TIMEOUT` seconds);
//! * connections that are not yet authenticated (handshake under way, no accepted client
//!   certificate, no request yet) hold a [`Ticket`] of a [`PendingGate`] with a fixed
//!   capacity; when it is full the *oldest* such connection is closed, so a flood of idle
//!   sockets evicts itself while a fresh client's handshake (milliseconds) gets through;
//! * HTTP/1.1 must send a request head within [`HEADER_READ_TIMEOUT`] (also the
//!   keep-alive idle limit), HTTP/2 peers must answer keep-alive pings;
//! * request heads are bounded ([`MAX_HEADER_BYTES`], [`MAX_URI_BYTES`]) and refused with
//!   a `metav1.Status` body, also where hyper itself answers (see [`StatusOnParseError`]).

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Upstream-like bound on a TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable overriding [`HANDSHAKE_TIMEOUT`] (seconds, fractions allowed), so
/// tests can watch a stalled handshake being closed without waiting 10 s.
pub const HANDSHAKE_TIMEOUT_ENV: &str = "RKIND_TLS_HANDSHAKE_TIMEOUT";
/// How long an HTTP/1.1 peer may take to send a request head, idle keep-alive time
/// included (upstream's apiserver: `ReadHeaderTimeout` 32 s).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);
/// HTTP/2 keep-alive ping period and how long the peer has to answer one.
pub const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// See [`H2_PING_INTERVAL`].
pub const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Most bytes of a request head (upstream: Go's `MaxHeaderBytes` of 1 MiB).
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// Most header fields in an HTTP/1.1 request head.
pub const MAX_HEADERS: usize = 256;
/// Longest request-target (hyper's own HTTP/1.1 limit, and the http crate's).
pub const MAX_URI_BYTES: usize = u16::MAX as usize - 1;
/// Most connections of one listener that are not yet authenticated.
pub const MAX_PENDING: usize = 256;

/// The TLS handshake timeout: [`HANDSHAKE_TIMEOUT`] unless [`HANDSHAKE_TIMEOUT_ENV`] holds
/// a positive number of seconds.
pub fn handshake_timeout() -> Duration {
    std::env::var(HANDSHAKE_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(HANDSHAKE_TIMEOUT)
}

/// The connections of one listener that have not authenticated yet, oldest first.
#[derive(Debug)]
pub struct PendingGate {
    capacity: usize,
    inner: Mutex<GateInner>,
}

#[derive(Debug, Default)]
struct GateInner {
    next: u64,
    live: BTreeMap<u64, CancellationToken>,
    evicted: u64,
}

/// One not-yet-authenticated connection's place in a [`PendingGate`]; dropping it (the
/// connection authenticated or ended) frees the place.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<PendingGate>,
    id: u64,
    evict: CancellationToken,
}

impl PendingGate {
    /// A gate for at most `capacity` pending connections.
    pub fn new(capacity: usize) -> Arc<PendingGate> {
        Arc::new(PendingGate {
            capacity: capacity.max(1),
            inner: Mutex::new(GateInner::default()),
        })
    }

    /// Admits a new connection, evicting the oldest pending ones if the gate is full.
    pub fn admit(self: &Arc<Self>) -> Ticket {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while inner.live.len() >= self.capacity {
            let Some((_, oldest)) = inner.live.pop_first() else {
                break;
            };
            oldest.cancel();
            inner.evicted += 1;
        }
        let id = inner.next;
        inner.next += 1;
        let evict = CancellationToken::new();
        inner.live.insert(id, evict.clone());
        Ticket {
            gate: self.clone(),
            id,
            evict,
        }
    }

    /// How many connections wait now.
    pub fn pending(&self) -> usize {
        self.inner.lock().map(|i| i.live.len()).unwrap_or(0)
    }

    /// How many were closed to make room so far.
    pub fn evicted(&self) -> u64 {
        self.inner.lock().map(|i| i.evicted).unwrap_or(0)
    }
}

impl Ticket {
    /// Resolves when the gate closed this connection to make room.
    pub fn evicted(&self) -> WaitForCancellationFutureOwned {
        self.evict.clone().cancelled_owned()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut inner = self.gate.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.live.remove(&self.id);
    }
}

/// Why a connection never got past its TLS handshake.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer did not finish in time.
    #[error("TLS handshake not completed within {0:?}")]
    Timeout(Duration),
    /// The gate needed the place for a newer connection.
    #[error("closed to make room for newer connections (too many pending handshakes)")]
    Evicted,
    /// The handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(#[from] io::Error),
}

/// Runs the server side of a TLS handshake, bounded by `timeout` and by `ticket`'s
/// eviction.
pub async fn tls_handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    ticket: &Ticket,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, HandshakeError> {
    tokio::select! {
        r = tokio::time::timeout(timeout, acceptor.accept(tcp)) => match r {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(HandshakeError::Tls(e)),
            Err(_) => Err(HandshakeError::Timeout(timeout)),
        },
        _ = ticket.evicted() => Err(HandshakeError::Evicted),
    }
}

/// hyper's connection builder with rkind's limits and timeouts (HTTP/1.1 and h2).
pub fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        // A flattened write per response head, so StatusOnParseError sees it whole.
        .writev(false);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT)
        // Room above our own limit, so oversized heads reach `oversized` (a Status)
        // instead of h2's bodiless 431.
        .max_header_list_size((MAX_HEADER_BYTES + (64 << 10)) as u32);
    b
}

/// A `metav1.Status` failure body (no `reason` where upstream has none for the code).
pub fn status_body(code: StatusCode, reason: Option<&str>, message: &str) -> Vec<u8> {
    let mut v = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "code": code.as_u16(),
    });
    if let Some(r) = reason {
        v["reason"] = serde_json::Value::from(r);
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

fn too_large_message() -> String {
    format!(
        "Request Header Fields Too Large: the request head exceeds {MAX_HEADER_BYTES} bytes or {MAX_HEADERS} fields"
    )
}

fn uri_too_long_message() -> String {
    format!("URI Too Long: the request target exceeds {MAX_URI_BYTES} bytes")
}

/// The refusal (code and Status body) for a request whose head is over
/// [`MAX_HEADER_BYTES`] although hyper parsed it (HTTP/2, where h2's own limit sits
/// above ours). Request-targets need no check here: the http crate holds none longer
/// than [`MAX_URI_BYTES`], so longer ones never reach a handler (HTTP/1.1: hyper's 414,
/// given a body by [`StatusOnParseError`]; HTTP/2: a stream reset by h2).
pub fn oversized<B>(req: &Request<B>) -> Option<(StatusCode, Vec<u8>)> {
    let uri_len = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    // HTTP/2's accounting (RFC 7540 §6.5.2): name + value + 32 per field.
    let head: usize = uri_len
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum::<usize>();
    if head > MAX_HEADER_BYTES {
        let code = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        return Some((code, status_body(code, None, &too_large_message())));
    }
    None
}

/// I/O wrapper that turns hyper's automatic, bodiless HTTP/1.1 answers to unparsable
/// request heads (400, 414, 431 with `content-length: 0`) into the same status with a
/// `metav1.Status` body. hyper writes such an answer as one flattened head (the builder
/// disables vectored writes) and closes the connection after it; handlers always send a
/// body with these codes, so a bodiless one is hyper's own.
pub struct StatusOnParseError<T> {
    inner: T,
    /// A replacement being written: the bytes, how far, and what to report to hyper.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<T> StatusOnParseError<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        StatusOnParseError {
            inner,
            replacing: None,
        }
    }

    /// The wrapped I/O.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

/// The Status answer replacing hyper's bodiless `head`, if it is one.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let (code, reason, message) = if head.starts_with(b"HTTP/1.1 431 ") {
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            None,
            too_large_message(),
        )
    } else if head.starts_with(b"HTTP/1.1 414 ") {
        (StatusCode::URI_TOO_LONG, None, uri_too_long_message())
    } else if head.starts_with(b"HTTP/1.1 400 ") {
        (
            StatusCode::BAD_REQUEST,
            Some("BadRequest"),
            "the request head could not be parsed as HTTP/1.1".to_string(),
        )
    } else {
        return None;
    };
    // Exactly one bodiless head, nothing after it.
    if !head.ends_with(b"\r\n\r\n") || head.len() > 512 {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?.to_ascii_lowercase();
    if !text.contains("\r\ncontent-length: 0\r\n") || text.matches("\r\n\r\n").count() != 1 {
        return None;
    }
    let body = status_body(code, reason, &message);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        code.as_u16(),
        code.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<T: AsyncRead + Unpin> AsyncRead for StatusOnParseError<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StatusOnParseError<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        if me.replacing.is_none()
            && let Some(out) = replacement(buf)
        {
            me.replacing = Some((out, 0, buf.len()));
        }
        let Some((out, pos, claimed)) = me.replacing.as_mut() else {
            return Pin::new(&mut me.inner).poll_write(cx, buf);
        };
        while *pos < out.len() {
            match Pin::new(&mut me.inner).poll_write(cx, &out[*pos..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *pos += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = *claimed;
        // Later writes (none expected: hyper closes) pass through.
        *claimed = 0;
        if n > 0 {
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut me.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_evicts_the_oldest_and_frees_places_on_drop() {
        let gate = PendingGate::new(2);
        let a = gate.admit();
        let b = gate.admit();
        assert_eq!(gate.pending(), 2);
        let c = gate.admit();
        assert!(a.evict.is_cancelled() && !b.evict.is_cancelled());
        assert_eq!((gate.pending(), gate.evicted()), (2, 1));
        drop(b);
        assert_eq!(gate.pending(), 1);
        let _d = gate.admit();
        assert!(!c.evict.is_cancelled());
        drop(a);
        assert_eq!(gate.pending(), 2);
    }

    #[test]
    fn hypers_bodiless_answers_become_status_answers() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 09:00:00 GMT\r\n\r\n";
        let out = replacement(head).expect("replaced");
        let text = String::from_utf8(out).expect("utf8");
        let (h, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(h.starts_with("HTTP/1.1 431 "));
        assert!(h.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            (v["kind"].as_str(), v["code"].as_u64()),
            (Some("Status"), Some(431))
        );
        assert!(replacement(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n").is_some());
        // A handler's own 431 with a body, or any other answer, passes unchanged.
        assert!(replacement(b"HTTP/1.1 431 X\r\ncontent-length: 5\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(
            replacement(b"HTTP/1.1 431 X\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
                .is_none()
        );
    }

    #[test]
    fn oversized_heads_are_refused_with_a_status() {
        let ok = Request::get("/api/v1/pods").body(()).expect("req");
        assert!(oversized(&ok).is_none());
        // The http crate itself refuses longer targets (so hyper answers 414 first).
        let long = format!("/api/v1/pods?labelSelector={}", "a".repeat(MAX_URI_BYTES));
        assert!(Request::get(long.as_str()).body(()).is_err());
        let big = Request::get("/")
            .header("x-big", "b".repeat(MAX_HEADER_BYTES))
            .body(())
            .expect("req");
        assert_eq!(
            oversized(&big).map(|x| x.0),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }
}
