//! The server side of a WebSocket remote-command session (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io` and the base64 variants): one task writes messages, one reads
//! them and routes stdin, resize events and the v5 stdin close signal to channels.
//! Shared by the API server's stream translator and the runtime's streaming server
//! (for clients that come to it with a WebSocket), so both speak the same dialect; its
//! writer (with server pings), [`next_payload`] (liveness bound, 1002 on malformed
//! frames) and [`channel_message`] also serve the port-forward channel sessions and the
//! port-forward tunnel.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;

use super::remotecommand::{self, StreamOptions};
use super::wschannel::{self, ChannelMessage, Framing};
use crate::trace::Tally;

/// WebSocket channel sub-protocols a remote-command server accepts, in preference order.
pub const CHANNEL_PROTOCOLS: [&str; 5] = [
    remotecommand::V5,
    remotecommand::V4,
    remotecommand::V4_BASE64,
    remotecommand::V1,
    remotecommand::V1_BASE64,
];

/// A channel's name in traces.
pub fn channel_name(channel: u8) -> &'static str {
    match channel {
        wschannel::STDIN => "stdin",
        wschannel::STDOUT => "stdout",
        wschannel::STDERR => "stderr",
        wschannel::ERROR => "error",
        wschannel::RESIZE => "resize",
        _ => "unknown",
    }
}

/// Picks the server's preferred protocol among those the client offered.
pub fn negotiate(offered: &[String]) -> Option<&'static str> {
    CHANNEL_PROTOCOLS
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .copied()
}

/// Frame limits: large enough for kubectl's 32 KiB stdin chunks and more.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// How long a session may go without a single frame from the client (data, ping, pong
/// or close) before it is ended and its process released. The server pings every third
/// of it, and every RFC 6455 client answers pings by itself, so only a client that is
/// gone or stalls on purpose reaches it. Upstream's kubelet ends sessions after 4 h
/// without *data*; a live kubectl pings every 5 s but may stay silent otherwise, so the
/// bound here is on frames (liveness), not on data (activity).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment variable overriding [`IDLE_TIMEOUT`] (seconds, fractions allowed), for
/// tests.
pub const IDLE_TIMEOUT_ENV: &str = "RKIND_WEBSOCKET_IDLE_TIMEOUT";

/// The idle bound in force ([`IDLE_TIMEOUT`] unless [`IDLE_TIMEOUT_ENV`] says otherwise).
pub fn idle_timeout() -> Duration {
    std::env::var(IDLE_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(IDLE_TIMEOUT)
}

/// How often the server pings (a third of the idle bound).
pub fn ping_period() -> Duration {
    idle_timeout() / 3
}

/// A message's payload as channel bytes: upstream reads text and binary messages alike
/// (the python client sends stdin as text); control frames carry none.
pub fn payload(msg: &Message) -> Option<&[u8]> {
    match msg {
        Message::Binary(b) => Some(b),
        Message::Text(t) => Some(t.as_bytes()),
        _ => None,
    }
}

/// The Close a server sends when the client broke the protocol (1002).
pub fn protocol_error_close(why: &str) -> Message {
    let mut reason = why.to_string();
    // Close reasons are limited to 123 bytes.
    while reason.len() > 120 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code: CloseCode::Protocol,
        reason: reason.into(),
    }))
}

/// The Close a server sends to a client that went silent.
pub fn idle_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "no frames from the client within the idle timeout".into(),
    }))
}

/// How the reader ended a session abnormally: the Close to send instead of a status.
type Abort = Arc<std::sync::Mutex<Option<Message>>>;

/// `data` on `channel` as one message (text for the base64 protocols).
pub fn channel_message(framing: Framing, channel: u8, data: &[u8]) -> Message {
    let body = wschannel::encode(framing, channel, data);
    if framing.base64 {
        Message::Text(String::from_utf8_lossy(&body).into_owned().into())
    } else {
        Message::Binary(Bytes::from(body))
    }
}

/// The task writing a session's messages: what arrives on the sender, a Ping every
/// [`ping_period`], and after a Close a moment for the client's echo.
pub fn spawn_writer<S>(
    mut ws_tx: SplitSink<WebSocketStream<S>, Message>,
) -> (mpsc::Sender<Message>, JoinHandle<()>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (out, mut out_rx) = mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(ping_period());
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            let m = tokio::select! {
                m = out_rx.recv() => match m { Some(m) => m, None => break },
                _ = ping.tick() => Message::Ping(Bytes::new()),
            };
            let close = matches!(m, Message::Close(_));
            if ws_tx.send(m).await.is_err() {
                return;
            }
            if close {
                break;
            }
        }
        let _ = ws_tx.flush().await;
        // Give the client a moment to echo the close before the TCP goes.
        let _ = tokio::time::timeout(Duration::from_secs(1), ws_tx.close()).await;
    });
    (out, writer)
}

/// What the client sent next, as the session sees it.
pub enum Incoming {
    /// A data message's payload (text or binary), never empty.
    Data(Vec<u8>),
    /// The client closed or the connection ended.
    End,
    /// The session must end with this Close (protocol error or idle client).
    Abort(Message),
}

/// The next non-empty data payload, skipping control frames and empty messages (as
/// upstream does); a malformed frame or `idle` without any frame aborts.
pub async fn next_payload<S>(rx: &mut SplitStream<WebSocketStream<S>>, idle: Duration) -> Incoming
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let msg = match tokio::time::timeout(idle, rx.next()).await {
            Err(_) => {
                tracing::debug!(?idle, "no frames from the client; ending the session");
                return Incoming::Abort(idle_close());
            }
            Ok(None) => return Incoming::End,
            Ok(Some(Err(e))) => {
                use tokio_tungstenite::tungstenite::Error as WsError;
                tracing::debug!(error = %e, "bad frame from the client");
                return match e {
                    WsError::Protocol(_) | WsError::Utf8(_) | WsError::Capacity(_) => {
                        Incoming::Abort(protocol_error_close(&e.to_string()))
                    }
                    _ => Incoming::End,
                };
            }
            Ok(Some(Ok(m))) => m,
        };
        if matches!(msg, Message::Close(_)) {
            return Incoming::End;
        }
        match payload(&msg) {
            Some(b) if !b.is_empty() => return Incoming::Data(b.to_vec()),
            _ => continue,
        }
    }
}

/// What the client sends, as channels.
pub struct ChannelInput {
    /// Client stdin (when asked for); ends on the v5 stdin close signal or when the
    /// client leaves.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Terminal-size messages, each one JSON `{"Width":…,"Height":…}` (tty only).
    pub resize: Option<mpsc::Receiver<Bytes>>,
    /// Cancelled when the client closed the WebSocket, sent garbage or vanished.
    pub gone: CancellationToken,
}

/// The writing half of a session: channel messages out, then the status and Close.
pub struct ChannelSession {
    framing: Framing,
    /// Per-channel counts (for the session's trace).
    pub tally: Arc<Tally>,
    out: mpsc::Sender<Message>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
    /// Set when the client broke the protocol or went silent.
    abort: Abort,
}

impl ChannelSession {
    /// Starts the session on an upgraded connection; with `announce_ready`, sends
    /// upstream kubelet's "ready" message (an empty write on the lowest output channel)
    /// that older channel clients wait for. The API server's translator sends none, as
    /// kubectl (v5) registers its streams while its reader already runs: an early message
    /// for a stream it has not created yet is logged on the user's terminal as "Unknown
    /// stream id 1, discarding message".
    pub async fn accept<S>(
        io: S,
        protocol: &str,
        opts: &StreamOptions,
        announce_ready: bool,
    ) -> (ChannelSession, ChannelInput)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let framing = Framing::for_protocol(protocol);
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await;
        let (ws_tx, mut ws_rx) = ws.split();
        let (out, writer) = spawn_writer(ws_tx);
        let gone = CancellationToken::new();
        let (stdin_tx, stdin_rx) = if opts.stdin {
            let (tx, rx) = mpsc::channel::<Bytes>(16);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let (resize_tx, resize_rx) = if opts.tty && remotecommand::supports_resize(protocol) {
            let (tx, rx) = mpsc::channel::<Bytes>(4);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let tally = Arc::new(Tally::default());
        tally.declare_session(opts);
        let abort: Abort = Arc::default();
        let reader = {
            let gone = gone.clone();
            let tally = tally.clone();
            let abort = abort.clone();
            let idle = idle_timeout();
            tokio::spawn(async move {
                let mut stdin_tx = stdin_tx;
                let set_abort = |m: Message| {
                    *abort.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
                };
                loop {
                    let body = match next_payload(&mut ws_rx, idle).await {
                        Incoming::Data(b) => b,
                        Incoming::End => break,
                        Incoming::Abort(m) => {
                            set_abort(m);
                            break;
                        }
                    };
                    match wschannel::decode(framing, &body) {
                        Ok(ChannelMessage::Data(wschannel::STDIN, d)) => {
                            tally.add("stdin", true, d.len());
                            if let Some(tx) = &stdin_tx
                                && !d.is_empty()
                                && tx.send(Bytes::from(d)).await.is_err()
                            {
                                stdin_tx = None;
                            }
                        }
                        Ok(ChannelMessage::Data(wschannel::RESIZE, d)) => {
                            tally.add("resize", true, d.len());
                            if let Some(tx) = &resize_tx {
                                let _ = tx.send(Bytes::from(d)).await;
                            }
                        }
                        // Dropping the sender is stdin EOF.
                        Ok(ChannelMessage::Close(wschannel::STDIN)) => {
                            tally.closed("stdin", "close signal from the client (v5)");
                            stdin_tx = None;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(error = %e, "bad message from the client");
                            set_abort(protocol_error_close(&e.to_string()));
                            break;
                        }
                    }
                }
                drop(stdin_tx);
                tally.closed("stdin", "the client closed the WebSocket");
                gone.cancel();
            })
        };
        let session = ChannelSession {
            framing,
            tally,
            out,
            writer,
            reader,
            abort,
        };
        if !announce_ready {
            return (
                session,
                ChannelInput {
                    stdin: stdin_rx,
                    resize: resize_rx,
                    gone,
                },
            );
        }
        let ready = if opts.stdout {
            wschannel::STDOUT
        } else if opts.stderr && !opts.tty {
            wschannel::STDERR
        } else {
            wschannel::ERROR
        };
        session.send(ready, b"").await;
        (
            session,
            ChannelInput {
                stdin: stdin_rx,
                resize: resize_rx,
                gone,
            },
        )
    }

    /// Sends `data` on `channel`; false once the client is gone.
    pub async fn send(&self, channel: u8, data: &[u8]) -> bool {
        self.out
            .send(channel_message(self.framing, channel, data))
            .await
            .is_ok()
    }

    /// A sender for one output channel, and the task that forwards it (await it before
    /// [`finish`](Self::finish) so output precedes the status).
    pub fn output(&self, channel: u8) -> (mpsc::Sender<Bytes>, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Bytes>(16);
        let out = self.out.clone();
        let framing = self.framing;
        let tally = self.tally.clone();
        let name = channel_name(channel);
        let pump = tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                tally.add(name, false, d.len());
                if out
                    .send(channel_message(framing, channel, &d))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        (tx, pump)
    }

    /// Writes the status (if any) on the error channel, closes with 1000 and waits for
    /// the writer to finish; a session the client broke (protocol error: 1002) or
    /// abandoned (idle: 1001) gets that Close and no status.
    pub async fn finish(self, status: Option<Vec<u8>>) {
        let abort = self.abort.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(close) = abort {
            self.tally.closed(
                "error",
                "no status: the client broke or abandoned the session",
            );
            let _ = self.out.send(close).await;
        } else {
            if let Some(bytes) = status {
                self.tally.add("error", false, bytes.len());
                self.send(wschannel::ERROR, &bytes).await;
            }
            self.tally
                .closed("error", "status sent, then WebSocket Close 1000");
            let _ = self
                .out
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                })))
                .await;
        }
        drop(self.out);
        let _ = self.writer.await;
        self.reader.abort();
    }
}
