//! The per-cluster trace ring and the trace context that travels between hops.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::broadcast;

use super::model::{Hop, Outcome, Trace, ms_between, rfc3339, unix_ns};

/// The header (and gRPC metadata key) that carries the trace context, as W3C Trace
/// Context defines it: `00-<32 hex trace id>-<16 hex parent span id>-01`.
pub const TRACEPARENT: &str = "traceparent";

/// Environment variable that turns recording off (`RKIND_TRACE=off`), for measuring
/// what recording costs.
pub const TRACE_ENV: &str = "RKIND_TRACE";

/// How many sessions the ring keeps.
pub const RING_CAPACITY: usize = 200;

/// How long after the client's connection ended a session is published to followers
/// (later hops' records are still being written as the chain tears down).
const PUBLISH_DELAY: Duration = Duration::from_millis(300);

/// A trace id and the span id of the hop that sends it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits.
    pub span_id: String,
}

impl TraceContext {
    /// A new trace.
    pub fn new() -> TraceContext {
        TraceContext {
            trace_id: hex::encode(rand::random::<[u8; 16]>()),
            span_id: hex::encode(rand::random::<[u8; 8]>()),
        }
    }

    /// The same trace, a new span (for the next hop).
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id.clone(),
            span_id: hex::encode(rand::random::<[u8; 8]>()),
        }
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }

    /// Parses a `traceparent` value; `None` if malformed or all-zero.
    pub fn parse(v: &str) -> Option<TraceContext> {
        let mut parts = v.trim().split('-');
        let (version, trace, span, _flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                && s.bytes().any(|b| b != b'0')
        };
        (version == "00" && hex(trace, 32) && hex(span, 16)).then(|| TraceContext {
            trace_id: trace.to_string(),
            span_id: span.to_string(),
        })
    }

    /// The context in request headers, if any.
    pub fn from_headers(h: &http::HeaderMap) -> Option<TraceContext> {
        h.get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse)
    }
}

impl Default for TraceContext {
    fn default() -> Self {
        Self::new()
    }
}

/// The bounded ring of sessions, shared by the components of one cluster.
pub struct Recorder {
    enabled: bool,
    ring: Mutex<VecDeque<Trace>>,
    done: broadcast::Sender<Trace>,
}

impl Recorder {
    /// A recorder; off when `RKIND_TRACE=off` is set.
    pub fn from_env() -> Arc<Recorder> {
        let off = std::env::var(TRACE_ENV).is_ok_and(|v| v == "off" || v == "0");
        Self::new(!off)
    }

    /// A recorder that records (or, `enabled = false`, ignores everything).
    pub fn new(enabled: bool) -> Arc<Recorder> {
        let (done, _) = broadcast::channel(64);
        Arc::new(Recorder {
            enabled,
            ring: Mutex::new(VecDeque::new()),
            done,
        })
    }

    /// Whether anything is recorded.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, VecDeque<Trace>> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session (the API server does, when a client's request arrives).
    pub fn begin(&self, ctx: &TraceContext, kind: &str, pod: &str) {
        if !self.enabled {
            return;
        }
        let now = unix_ns();
        let mut ring = self.ring();
        if ring.len() >= RING_CAPACITY {
            ring.pop_front();
        }
        ring.push_back(Trace {
            trace_id: ctx.trace_id.clone(),
            kind: kind.into(),
            pod: pod.into(),
            started_at: rfc3339(now),
            started_unix_ns: now,
            ..Default::default()
        });
    }

    /// Changes a session's description (container and command are known after
    /// validation).
    pub fn describe(&self, trace_id: &str, f: impl FnOnce(&mut Trace)) {
        if !self.enabled {
            return;
        }
        if let Some(t) = self
            .ring()
            .iter_mut()
            .rev()
            .find(|t| t.trace_id == trace_id)
        {
            f(t);
        }
    }

    /// Adds a hop's record to its session (ignored for unknown sessions: a request
    /// that did not come through the API server, e.g. a direct CRI client).
    pub fn hop(&self, trace_id: &str, mut hop: Hop) {
        if !self.enabled {
            return;
        }
        if hop.duration_ms == 0.0 {
            hop.finish();
        }
        if hop.started_at.is_empty() {
            hop.started_at = rfc3339(hop.started_unix_ns);
        }
        if let Some(t) = self
            .ring()
            .iter_mut()
            .rev()
            .find(|t| t.trace_id == trace_id)
        {
            hop.offset_ms = ms_between(t.started_unix_ns, hop.started_unix_ns);
            t.hops.push(hop);
            t.hops.sort_by(|a, b| {
                a.id.cmp(&b.id)
                    .then(a.started_unix_ns.cmp(&b.started_unix_ns))
            });
        }
    }

    /// Closes a session with what the client was told, and publishes it to followers a
    /// moment later.
    pub fn end(self: &Arc<Self>, trace_id: &str, outcome: Outcome) {
        if !self.enabled {
            return;
        }
        let now = unix_ns();
        // A byte-for-byte proxy does not know the outcome: the process hop tells, once
        // the runtime has written it (it may still be tearing down): decided at publish.
        let derive = outcome.status.is_empty();
        self.describe(trace_id, |t| {
            t.duration_ms = ms_between(t.started_unix_ns, now);
            if !derive {
                t.outcome = Some(outcome);
            }
        });
        let me = self.clone();
        let id = trace_id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(PUBLISH_DELAY).await;
            if derive {
                me.describe(&id, |t| t.outcome = Some(outcome_from_process(t)));
            }
            if let Some(t) = me.get(&id) {
                let _ = me.done.send(t);
            }
        });
    }

    /// One session by trace id.
    pub fn get(&self, trace_id: &str) -> Option<Trace> {
        self.ring()
            .iter()
            .rev()
            .find(|t| t.trace_id == trace_id)
            .cloned()
    }

    /// The most recent ended sessions of `kind` (all kinds if empty), oldest first.
    pub fn recent(&self, kind: &str, limit: usize) -> Vec<Trace> {
        let ring = self.ring();
        let mut out: Vec<Trace> = ring
            .iter()
            .rev()
            .filter(|t| t.outcome.is_some() && (kind.is_empty() || t.kind == kind))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Sessions as they end.
    pub fn follow(&self) -> broadcast::Receiver<Trace> {
        self.done.subscribe()
    }
}

/// The outcome a byte-for-byte proxy could not see, from the process hop's record.
fn outcome_from_process(t: &Trace) -> Outcome {
    let last = t
        .hops
        .iter()
        .rev()
        .find(|h| h.id == super::HopId::StreamingServerToProcess);
    match last {
        Some(h) if h.error.is_some() => Outcome {
            status: "Failure".into(),
            message: h.error.clone(),
            ..Default::default()
        },
        Some(h) => match h.process.as_ref().and_then(|p| p.exit_code) {
            Some(0) => Outcome {
                status: "Success".into(),
                exit_code: Some(0),
                ..Default::default()
            },
            Some(c) => Outcome {
                status: "Failure".into(),
                exit_code: Some(c),
                message: Some(format!(
                    "command terminated with non-zero exit code: exit status {c}"
                )),
                ..Default::default()
            },
            None => Outcome {
                status: "Success".into(),
                ..Default::default()
            },
        },
        None => Outcome {
            status: "Unknown".into(),
            message: Some("no record from the runtime".into()),
            ..Default::default()
        },
    }
}

/// Bytes (and reads/writes) each way through one connection, and when the first byte
/// went back towards the client.
#[derive(Debug, Default)]
pub struct ByteCounter {
    /// Bytes read from the wrapped connection.
    pub read: AtomicU64,
    /// Bytes written to it.
    pub written: AtomicU64,
    /// Unix ns of the first write (0 = none yet).
    pub first_write_ns: AtomicU64,
    /// Unix ns of the last read (0 = none).
    pub last_read_ns: AtomicU64,
    /// Unix ns of the last write (0 = none).
    pub last_write_ns: AtomicU64,
}

impl ByteCounter {
    /// When the last byte came in from the wrapped side (`None` if none did): a hop's
    /// answer is complete then, whatever the teardown that follows.
    pub fn last_read(&self) -> Option<u128> {
        match self.last_read_ns.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t as u128),
        }
    }

    /// When the last byte went out to the wrapped side.
    pub fn last_write(&self) -> Option<u128> {
        match self.last_write_ns.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t as u128),
        }
    }

    /// Milliseconds from `start_ns` to the first write, if there was one.
    pub fn first_write_after(&self, start_ns: u128) -> Option<f64> {
        match self.first_write_ns.load(Ordering::Relaxed) {
            0 => None,
            t => Some(ms_between(start_ns, t as u128)),
        }
    }
}

/// A connection that counts what passes through it.
pub struct Counted<T> {
    inner: T,
    counter: Arc<ByteCounter>,
}

impl<T> Counted<T> {
    /// Wraps `inner`; the counts land in `counter`.
    pub fn new(inner: T, counter: Arc<ByteCounter>) -> Self {
        Counted { inner, counter }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.counter.read.fetch_add(n as u64, Ordering::Relaxed);
            self.counter
                .last_read_ns
                .store(unix_ns() as u64, Ordering::Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            self.counter.written.fetch_add(n as u64, Ordering::Relaxed);
            let now = unix_ns() as u64;
            let _ = self.counter.first_write_ns.compare_exchange(
                0,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            self.counter.last_write_ns.store(now, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::HopId;

    #[test]
    fn traceparent_round_trips_and_rejects_garbage() {
        let c = TraceContext::new();
        assert_eq!(TraceContext::parse(&c.traceparent()), Some(c.clone()));
        assert_eq!(c.child().trace_id, c.trace_id);
        assert_ne!(c.child().span_id, c.span_id);
        let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            TraceContext::parse(w3c).map(|c| c.trace_id),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".into())
        );
        for bad in [
            "",
            "00-abc-def-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn the_ring_keeps_sessions_in_order_and_bounded() {
        let r = Recorder::new(true);
        let mut follow = r.follow();
        let ctx = TraceContext::new();
        r.begin(&ctx, "exec", "default/box");
        r.hop(&ctx.trace_id, Hop::start(HopId::StreamingServerToProcess));
        r.hop(&ctx.trace_id, Hop::start(HopId::KubectlToApiserver));
        assert!(r.recent("exec", 10).is_empty(), "not ended yet");
        r.end(
            &ctx.trace_id,
            Outcome {
                status: "Success".into(),
                ..Default::default()
            },
        );
        let t = &r.recent("exec", 10)[0];
        assert_eq!(t.hops[0].id, HopId::KubectlToApiserver);
        assert_eq!(t.hops[1].id, HopId::StreamingServerToProcess);
        assert!(r.recent("portforward", 10).is_empty());
        let published = tokio::time::timeout(Duration::from_secs(2), follow.recv())
            .await
            .expect("published")
            .expect("trace");
        assert_eq!(published.trace_id, ctx.trace_id);
        for _ in 0..RING_CAPACITY + 5 {
            r.begin(&TraceContext::new(), "exec", "default/box");
        }
        assert_eq!(r.ring().len(), RING_CAPACITY);
        let off = Recorder::new(false);
        off.begin(&ctx, "exec", "default/box");
        assert!(off.get(&ctx.trace_id).is_none());
    }
}
