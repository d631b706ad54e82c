//! A SPDY/3.1 connection as Kubernetes peers use it: streams opened by the client
//! only, no flow control (TCP backpressure only), PINGs echoed, a stream's direction
//! closed by an empty DATA frame with FIN, RST_STREAM / GOAWAY / EOF read as a clean
//! end of every affected stream (spdystream semantics, exec-protocols.md §4.5).
//!
//! The same session type plays both roles: the runtime's streaming server accepts
//! streams ([`Session::accept`]) and the API server's WebSocket translator opens them
//! ([`Session::open`]). Framing comes from [`super::spdy`]; this module adds tasks,
//! channels and the per-stream state machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::spdy::{Codec, Frame, GoAwayStatus, Headers, RstStatus};

/// How long a client waits for the SYN_REPLY of a stream it opened (spdystream's
/// `createStreamResponseTimeout`).
pub const STREAM_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest DATA payload written in one frame; kubectl's own writes are 32 KiB.
const MAX_DATA_CHUNK: usize = 32 * 1024;

/// Which end of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens streams (odd ids), e.g. kubectl or the API server's translator.
    Client,
    /// Accepts streams, e.g. the runtime's streaming server.
    Server,
}

/// Why a stream operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The connection is gone (peer closed, GOAWAY, or a protocol error).
    #[error("SPDY connection closed")]
    Closed,
    /// The peer did not answer a SYN_STREAM in time.
    #[error("timed out waiting for the SPDY stream reply")]
    ReplyTimeout,
    /// The peer refused the stream.
    #[error("SPDY stream was reset by the peer")]
    Refused,
}

/// One stream's data as it arrives; `None` from [`StreamReader::recv`] is EOF (FIN,
/// RST_STREAM, GOAWAY or connection loss — all clean ends in spdystream).
pub struct StreamReader {
    rx: mpsc::Receiver<Bytes>,
}

impl StreamReader {
    /// Next chunk of data, or `None` at the end of the stream.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// The stream's data as a plain channel (for code that also takes channels from
    /// other transports).
    pub fn into_receiver(self) -> mpsc::Receiver<Bytes> {
        self.rx
    }
}

/// The writing half of one stream. Cheap to clone.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Frame>,
    state: Arc<Mutex<Shared>>,
}

impl StreamWriter {
    /// Sends `data` (split into frames of at most 32 KiB). Fails once the stream was
    /// finished or reset or the connection closed.
    pub async fn write(&self, mut data: Bytes) -> Result<(), SessionError> {
        while !data.is_empty() {
            if self.is_done() {
                return Err(SessionError::Closed);
            }
            let chunk = data.split_to(data.len().min(MAX_DATA_CHUNK));
            self.out
                .send(Frame::Data {
                    stream_id: self.id,
                    fin: false,
                    data: chunk,
                })
                .await
                .map_err(|_| SessionError::Closed)?;
        }
        Ok(())
    }

    /// Half-closes the stream (empty DATA with FIN). Idempotent.
    pub async fn close(&self) {
        if self.mark_done() {
            let _ = self
                .out
                .send(Frame::Data {
                    stream_id: self.id,
                    fin: true,
                    data: Bytes::new(),
                })
                .await;
        }
    }

    /// Aborts the stream (RST_STREAM CANCEL) unless it was already finished.
    pub async fn reset(&self) {
        if self.mark_done() {
            let _ = self
                .out
                .send(Frame::RstStream {
                    stream_id: self.id,
                    status: RstStatus::Cancel,
                })
                .await;
        }
    }

    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn is_done(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.closed || s.write_done.get(&self.id).copied().unwrap_or(true)
    }

    /// Marks our direction finished; true if it was open.
    fn mark_done(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.closed {
            return false;
        }
        match s.write_done.get_mut(&self.id) {
            Some(done) if !*done => {
                *done = true;
                true
            }
            _ => false,
        }
    }
}

/// A stream with its headers and both halves.
pub struct SpdyStream {
    /// The stream id.
    pub id: u32,
    /// The SYN_STREAM headers (lowercase names).
    pub headers: Headers,
    /// Data from the peer.
    pub reader: StreamReader,
    /// Data to the peer.
    pub writer: StreamWriter,
}

#[derive(Default)]
struct Shared {
    /// Per stream: the sender feeding its reader (dropped at EOF).
    inbound: HashMap<u32, mpsc::Sender<Bytes>>,
    /// Per stream: whether our direction is finished.
    write_done: HashMap<u32, bool>,
    /// Client role: SYN_STREAMs waiting for their reply.
    pending_replies: HashMap<u32, oneshot::Sender<bool>>,
    next_id: u32,
    last_accepted: u32,
    closed: bool,
}

/// A running SPDY connection. Dropping it does not close the connection; call
/// [`Session::shutdown`].
pub struct Session {
    role: Role,
    out: mpsc::Sender<Frame>,
    state: Arc<Mutex<Shared>>,
    incoming: tokio::sync::Mutex<mpsc::Receiver<SpdyStream>>,
    closed: tokio_util::sync::CancellationToken,
}

impl Session {
    /// Starts reader and writer tasks on `io`, which must be positioned right after
    /// the HTTP 101 (nothing is written until the peer speaks, pitfall P8).
    pub fn new<T>(io: T, role: Role) -> Arc<Session>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel::<Frame>(64);
        let (in_tx, in_rx) = mpsc::channel::<SpdyStream>(16);
        let state = Arc::new(Mutex::new(Shared {
            next_id: if role == Role::Client { 1 } else { 2 },
            ..Default::default()
        }));
        let closed = tokio_util::sync::CancellationToken::new();
        tokio::spawn(write_loop(wr, out_rx, closed.clone()));
        tokio::spawn(read_loop(
            rd,
            role,
            out_tx.clone(),
            state.clone(),
            in_tx,
            closed.clone(),
        ));
        Arc::new(Session {
            role,
            out: out_tx,
            state,
            incoming: tokio::sync::Mutex::new(in_rx),
            closed,
        })
    }

    /// Server role: the next stream the peer opened (already answered with an empty
    /// SYN_REPLY), or `None` once the connection ended.
    pub async fn accept(&self) -> Option<SpdyStream> {
        self.incoming.lock().await.recv().await
    }

    /// Client role: opens a stream with `headers` and waits for the peer's SYN_REPLY.
    pub async fn open(&self, headers: Headers) -> Result<SpdyStream, SessionError> {
        debug_assert_eq!(self.role, Role::Client);
        let (reply_tx, reply_rx) = oneshot::channel();
        let (data_tx, data_rx) = mpsc::channel(32);
        let id = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.closed {
                return Err(SessionError::Closed);
            }
            let id = s.next_id;
            s.next_id += 2;
            s.inbound.insert(id, data_tx);
            s.write_done.insert(id, false);
            s.pending_replies.insert(id, reply_tx);
            id
        };
        self.out
            .send(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: headers.clone(),
            })
            .await
            .map_err(|_| SessionError::Closed)?;
        match tokio::time::timeout(STREAM_REPLY_TIMEOUT, reply_rx).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(SessionError::Refused),
            Ok(Err(_)) => return Err(SessionError::Closed),
            Err(_) => return Err(SessionError::ReplyTimeout),
        }
        Ok(SpdyStream {
            id,
            headers,
            reader: StreamReader { rx: data_rx },
            writer: StreamWriter {
                id,
                out: self.out.clone(),
                state: self.state.clone(),
            },
        })
    }

    /// Ends the connection as the kubelet does: RST_STREAM for every stream we have
    /// not finished, GOAWAY, then close the socket.
    pub async fn shutdown(&self) {
        let open: Vec<u32> = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.closed {
                Vec::new()
            } else {
                let ids = s
                    .write_done
                    .iter()
                    .filter(|(_, d)| !**d)
                    .map(|(id, _)| *id)
                    .collect();
                for d in s.write_done.values_mut() {
                    *d = true;
                }
                ids
            }
        };
        for id in open {
            let _ = self
                .out
                .send(Frame::RstStream {
                    stream_id: id,
                    status: RstStatus::Cancel,
                })
                .await;
        }
        let last = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_accepted;
        let _ = self
            .out
            .send(Frame::GoAway {
                last_good_stream_id: last,
                status: GoAwayStatus::Ok,
            })
            .await;
        // The writer closes the socket once it has written the GOAWAY.
        let _ = self.out.send(CLOSE_MARKER).await;
        tokio::select! {
            _ = self.closed.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }

    /// Resolves when the connection has ended (peer EOF, GOAWAY, error or shutdown).
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }
}

/// Sent through the writer queue to make it close the socket (not a real frame: PING
/// id 0 is invalid on the wire, so it can never be confused with one).
const CLOSE_MARKER: Frame = Frame::Ping { id: 0 };

async fn write_loop<W: AsyncWrite + Send + Unpin + 'static>(
    wr: W,
    mut rx: mpsc::Receiver<Frame>,
    closed: tokio_util::sync::CancellationToken,
) {
    let mut sink = FramedWrite::new(wr, Codec::new());
    loop {
        let frame = tokio::select! {
            f = rx.recv() => f,
            _ = closed.cancelled() => None,
        };
        let Some(frame) = frame else { break };
        if frame == CLOSE_MARKER {
            break;
        }
        // Batch what is queued into one flush.
        if sink.feed(frame).await.is_err() {
            break;
        }
        let mut failed = false;
        let mut close_now = false;
        while let Ok(f) = rx.try_recv() {
            if f == CLOSE_MARKER {
                close_now = true;
                break;
            }
            if sink.feed(f).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed || SinkExt::<Frame>::flush(&mut sink).await.is_err() || close_now {
            break;
        }
    }
    let _ = SinkExt::<Frame>::close(&mut sink).await;
    closed.cancel();
}

async fn read_loop<R: AsyncRead + Send + Unpin + 'static>(
    rd: R,
    role: Role,
    out: mpsc::Sender<Frame>,
    state: Arc<Mutex<Shared>>,
    incoming: mpsc::Sender<SpdyStream>,
    closed: tokio_util::sync::CancellationToken,
) {
    let mut frames = FramedRead::with_capacity(rd, Codec::new(), 64 * 1024);
    loop {
        let next = tokio::select! {
            f = frames.next() => f,
            _ = closed.cancelled() => None,
        };
        let frame = match next {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "SPDY protocol error; dropping the connection");
                let _ = out
                    .send(Frame::GoAway {
                        last_good_stream_id: 0,
                        status: GoAwayStatus::ProtocolError,
                    })
                    .await;
                let _ = out.send(CLOSE_MARKER).await;
                break;
            }
            None => break,
        };
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                let tx = {
                    let s = state.lock().unwrap_or_else(|e| e.into_inner());
                    s.inbound.get(&stream_id).cloned()
                };
                if let Some(tx) = tx
                    && !data.is_empty()
                {
                    // Backpressure: a slow consumer slows the whole connection, as
                    // TCP would; there is no SPDY flow control with these peers.
                    let _ = tx.send(data).await;
                }
                if fin {
                    state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .inbound
                        .remove(&stream_id);
                }
            }
            Frame::SynStream {
                stream_id, headers, ..
            } => {
                if role != Role::Server || stream_id % 2 == 0 {
                    let _ = out
                        .send(Frame::RstStream {
                            stream_id,
                            status: RstStatus::ProtocolError,
                        })
                        .await;
                    continue;
                }
                let (data_tx, data_rx) = mpsc::channel(32);
                let reused = {
                    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                    let reused = s.write_done.contains_key(&stream_id);
                    if !reused {
                        s.inbound.insert(stream_id, data_tx);
                        s.write_done.insert(stream_id, false);
                        s.last_accepted = stream_id;
                    }
                    reused
                };
                {
                    if reused {
                        let _ = out
                            .send(Frame::RstStream {
                                stream_id,
                                status: RstStatus::StreamInUse,
                            })
                            .await;
                        continue;
                    }
                }
                // Reply first: the peer writes only after it has the reply.
                let _ = out
                    .send(Frame::SynReply {
                        stream_id,
                        fin: false,
                        headers: Headers::new(),
                    })
                    .await;
                let stream = SpdyStream {
                    id: stream_id,
                    headers,
                    reader: StreamReader { rx: data_rx },
                    writer: StreamWriter {
                        id: stream_id,
                        out: out.clone(),
                        state: state.clone(),
                    },
                };
                if incoming.send(stream).await.is_err() {
                    // Nobody accepts any more: refuse politely.
                    let _ = out
                        .send(Frame::RstStream {
                            stream_id,
                            status: RstStatus::RefusedStream,
                        })
                        .await;
                }
            }
            Frame::SynReply { stream_id, .. } => {
                let waiter = state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pending_replies
                    .remove(&stream_id);
                if let Some(w) = waiter {
                    let _ = w.send(true);
                }
            }
            Frame::RstStream { stream_id, .. } => {
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                s.inbound.remove(&stream_id);
                if let Some(d) = s.write_done.get_mut(&stream_id) {
                    *d = true;
                }
                if let Some(w) = s.pending_replies.remove(&stream_id) {
                    let _ = w.send(false);
                }
            }
            Frame::Ping { id } => {
                // Echo the peer's pings (their parity differs from ours).
                let peer_parity = if role == Role::Server { 1 } else { 0 };
                if id % 2 == peer_parity {
                    let _ = out.send(Frame::Ping { id }).await;
                }
            }
            Frame::GoAway { .. } => break,
            Frame::Settings { .. }
            | Frame::WindowUpdate { .. }
            | Frame::Headers { .. }
            | Frame::Unknown { .. } => {}
        }
    }
    {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.closed = true;
        s.inbound.clear();
        for (_, w) in s.pending_replies.drain() {
            let _ = w.send(false);
        }
    }
    drop(incoming);
    // Let queued frames (e.g. a final status) drain, then stop the writer.
    let _ = out.send(CLOSE_MARKER).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[tokio::test]
    async fn client_and_server_exchange_data_and_half_close() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let client = Session::new(a, Role::Client);
        let server = Session::new(b, Role::Server);
        let srv = tokio::spawn(async move {
            let mut s = server.accept().await.expect("stream");
            assert_eq!(s.headers.get("streamtype"), Some("stdin"));
            let mut got = Vec::new();
            while let Some(d) = s.reader.recv().await {
                got.extend_from_slice(&d);
            }
            s.writer.write(Bytes::from(got)).await.expect("echo");
            s.writer.close().await;
            server
        });
        let mut c = client
            .open(hdrs(&[("streamtype", "stdin")]))
            .await
            .expect("open");
        let big = Bytes::from(vec![7u8; 100_000]);
        c.writer.write(big.clone()).await.expect("write");
        c.writer.close().await;
        let mut back = Vec::new();
        while let Some(d) = c.reader.recv().await {
            back.extend_from_slice(&d);
        }
        assert_eq!(back.len(), big.len());
        assert!(back.iter().all(|b| *b == 7));
        let server = srv.await.expect("server task");
        server.shutdown().await;
        tokio::time::timeout(Duration::from_secs(2), client.closed())
            .await
            .expect("client sees the GOAWAY");
    }

    #[tokio::test]
    async fn reset_ends_the_reader_and_garbage_closes_the_connection() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let client = Session::new(a, Role::Client);
        let server = Session::new(b, Role::Server);
        let mut c = client
            .open(hdrs(&[("streamtype", "error")]))
            .await
            .expect("open");
        let s = server.accept().await.expect("stream");
        s.writer.reset().await;
        assert!(c.reader.recv().await.is_none(), "RST reads as EOF");
        assert!(s.writer.write(Bytes::from_static(b"x")).await.is_err());

        // A control frame of an unknown SPDY version: the session ends at once.
        let (mut raw, srv_io) = tokio::io::duplex(1024);
        let server = Session::new(srv_io, Role::Server);
        use tokio::io::AsyncWriteExt;
        raw.write_all(&[
            0x80, 0x02, 0x00, 0x01, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
        ])
        .await
        .expect("write");
        let accepted = tokio::time::timeout(Duration::from_secs(2), server.accept())
            .await
            .expect("session ends on a bad version");
        assert!(accepted.is_none());

        // A truncated frame, then the client vanishes: a clean end, no panic.
        let (mut raw, srv_io) = tokio::io::duplex(1024);
        let server = Session::new(srv_io, Role::Server);
        raw.write_all(&[0x80, 0x03, 0x00, 0x01, 0, 0, 0, 40, 0, 0])
            .await
            .expect("write");
        drop(raw);
        let accepted = tokio::time::timeout(Duration::from_secs(2), server.accept())
            .await
            .expect("session ends at EOF");
        assert!(accepted.is_none());
        tokio::time::timeout(Duration::from_secs(2), server.closed())
            .await
            .expect("closed");
    }
}
