//! The runtime's streaming server — the URL CRI `Exec`/`Attach`/`PortForward` hand
//! back to the kubelet (`http://127.0.0.1:<port>/exec/{token}` …), as upstream's
//! `pkg/cri/streaming` does for containerd: one-shot random tokens that expire after a
//! minute, at most 1000 in flight, and SPDY/3.1 remote-command (v1–v4) and
//! port-forward sessions behind them; exec and attach also over the WebSocket channel
//! protocols (v5, v4, base64) for clients that come here directly, and port-forward over
//! port-forward's channel protocol (v4, base64), which the API server and the kubelet
//! proxy here unchanged.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::Instrument;

use crate::stream::listener::{self as conn_limits, PendingGate};
use crate::stream::portforward::{self, Pairer, PortStream, parse_headers};
use crate::stream::remotecommand::{
    self, Outcome, PORT_FORWARD_PROTOCOL, ResizeDecoder, SPDY_SERVER_PROTOCOLS, StreamOptions,
    StreamType, TerminalSize,
};
use crate::stream::session::{Role, Session, SpdyStream};
use crate::stream::upgrade;
use crate::stream::wschannel;
use crate::stream::wsserver::{self, ChannelInput, ChannelSession};
use crate::trace::recorder::TraceContext;
use crate::trace::{Hop, HopId, NamespaceInodes, ProcessInfo, Recorder, Tally};

use super::Runtime;
use super::exec::{self, ExecIo, ExecRequest};

/// How long a token stays valid (upstream: one minute).
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// Environment variable that shortens (or lengthens) [`TOKEN_TTL`], in seconds: lets
/// tests watch a token expire without waiting a minute.
pub const TOKEN_TTL_ENV: &str = "RKIND_STREAMING_TOKEN_TTL";

/// The token lifetime: [`TOKEN_TTL`] unless [`TOKEN_TTL_ENV`] holds a number of seconds.
pub fn token_ttl_from_env() -> Duration {
    std::env::var(TOKEN_TTL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(TOKEN_TTL)
}
/// Most tokens in flight (upstream's cache size).
pub const MAX_TOKENS: usize = 1000;
/// How long the client has to open every stream of a session.
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

type Body = BoxBody<Bytes, Infallible>;

/// A request the kubelet asked for and the client has not yet connected to.
#[derive(Debug, Clone)]
enum Pending {
    Exec {
        container_id: String,
        opts: StreamOptions,
    },
    Attach {
        container_id: String,
        opts: StreamOptions,
    },
    PortForward {
        sandbox_id: String,
    },
}

impl Pending {
    /// The stream options of an exec or attach.
    fn options(&self) -> Option<&StreamOptions> {
        match self {
            Pending::Exec { opts, .. } | Pending::Attach { opts, .. } => Some(opts),
            Pending::PortForward { .. } => None,
        }
    }
}

/// The streaming server: token cache plus the HTTP listener.
pub struct StreamingServer {
    base_url: String,
    runtime: Arc<Runtime>,
    tokens: Mutex<HashMap<String, Token>>,
    token_ttl: Duration,
    trace: Arc<Recorder>,
}

/// A token's request, when it was issued, and the trace it belongs to.
type Token = (Pending, Instant, Option<TraceContext>);

impl StreamingServer {
    /// Binds 127.0.0.1 on a free port and serves until shutdown; tokens live `token_ttl`.
    pub async fn start(
        runtime: Arc<Runtime>,
        token_ttl: Duration,
        trace: Arc<Recorder>,
        shutdown: CancellationToken,
    ) -> std::io::Result<Arc<StreamingServer>> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let server = Arc::new(StreamingServer {
            base_url: format!("http://{addr}"),
            runtime,
            tokens: Mutex::new(HashMap::new()),
            token_ttl,
            trace,
        });
        tokio::spawn(server.clone().accept_loop(listener, shutdown));
        Ok(server)
    }

    /// Where the server listens.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// CRI `Exec`: validates and returns the one-shot URL.
    pub fn exec_url(
        &self,
        container_id: &str,
        opts: StreamOptions,
        trace: Option<TraceContext>,
    ) -> Result<String, Status> {
        if container_id.is_empty() {
            return Err(Status::invalid_argument("missing required container_id"));
        }
        if opts.command.is_empty() {
            return Err(Status::invalid_argument("cmd is required"));
        }
        opts.validate().map_err(Status::invalid_argument)?;
        let c = self.runtime.container(container_id)?;
        if c.state != super::ContainerStateKind::Running {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        self.insert(
            "exec",
            Pending::Exec {
                container_id: c.id,
                opts,
            },
            trace,
        )
    }

    /// CRI `Attach`: validates and returns the one-shot URL.
    pub fn attach_url(
        &self,
        container_id: &str,
        opts: StreamOptions,
        trace: Option<TraceContext>,
    ) -> Result<String, Status> {
        if container_id.is_empty() {
            return Err(Status::invalid_argument("missing required container_id"));
        }
        opts.validate().map_err(Status::invalid_argument)?;
        let c = self.runtime.container(container_id)?;
        if c.state != super::ContainerStateKind::Running {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        if opts.tty && !c.tty {
            return Err(Status::invalid_argument(format!(
                "container {} was not created with a tty",
                c.id
            )));
        }
        self.insert(
            "attach",
            Pending::Attach {
                container_id: c.id,
                opts,
            },
            trace,
        )
    }

    /// CRI `PortForward`: returns the one-shot URL.
    pub fn port_forward_url(
        &self,
        sandbox_id: &str,
        trace: Option<TraceContext>,
    ) -> Result<String, Status> {
        if sandbox_id.is_empty() {
            return Err(Status::invalid_argument("missing required pod_sandbox_id"));
        }
        let s = self.runtime.sandbox(sandbox_id)?;
        self.insert(
            "portforward",
            Pending::PortForward { sandbox_id: s.id },
            trace,
        )
    }

    fn insert(
        &self,
        kind: &str,
        p: Pending,
        trace: Option<TraceContext>,
    ) -> Result<String, Status> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let ttl = self.token_ttl;
        tokens.retain(|_, (_, t, _)| now.duration_since(*t) < ttl);
        if tokens.len() >= MAX_TOKENS {
            return Err(Status::resource_exhausted(
                "maximum number of in-flight requests exceeded",
            ));
        }
        let token = loop {
            let t = new_token();
            if !tokens.contains_key(&t) {
                break t;
            }
        };
        tokens.insert(token.clone(), (p, now, trace));
        Ok(format!("{}/{kind}/{token}", self.base_url))
    }

    /// Takes a token out of the cache (single use); expired tokens are gone.
    fn consume(&self, token: &str) -> Option<(Pending, Option<TraceContext>)> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let (p, t, trace) = tokens.remove(token)?;
        (t.elapsed() < self.token_ttl).then_some((p, trace))
    }

    /// Serves plain HTTP/1.1 on loopback. A connection is pending (see
    /// [`crate::stream::listener`]) until its first request arrives, which must happen
    /// within the TLS listeners' handshake bound; idle keep-alive is bounded alike.
    async fn accept_loop(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let gate = PendingGate::new(conn_limits::MAX_PENDING);
        let first_request = conn_limits::handshake_timeout();
        loop {
            let (tcp, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
            };
            let _ = tcp.set_nodelay(true);
            let ticket = gate.admit();
            let evicted = ticket.evicted();
            let ticket = Arc::new(Mutex::new(Some(ticket)));
            let me = self.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let me = me.clone();
                    // A request arrived: no longer pending.
                    ticket.lock().unwrap_or_else(|e| e.into_inner()).take();
                    async move { Ok::<_, Infallible>(me.handle(req).await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(first_request)
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades();
                tokio::select! {
                    _ = served => {}
                    _ = evicted => {}
                }
            });
        }
    }

    async fn handle(self: Arc<Self>, mut req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let (kind, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !matches!(kind, "exec" | "attach" | "portforward") || token.is_empty() {
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        }
        if req.method() != http::Method::GET && req.method() != http::Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        let Some((pending, trace)) = self.consume(token) else {
            return text(
                StatusCode::NOT_FOUND,
                &format!("invalid or expired streaming token {token:?}\n"),
            );
        };
        let kind_matches = matches!(
            (&pending, kind),
            (Pending::Exec { .. }, "exec")
                | (Pending::Attach { .. }, "attach")
                | (Pending::PortForward { .. }, "portforward")
        );
        if !kind_matches {
            return text(
                StatusCode::NOT_FOUND,
                &format!("invalid or expired streaming token {token:?}\n"),
            );
        }
        if upgrade::is_websocket(req.headers()) {
            return self.upgrade_websocket(req, kind, pending, trace);
        }
        if !upgrade::is_spdy(req.headers()) {
            return text(
                StatusCode::BAD_REQUEST,
                "Upgrade request required: this streaming server speaks SPDY/3.1 and WebSocket\n",
            );
        }
        let offered = upgrade::header_list(req.headers(), remotecommand::PROTOCOL_HEADER);
        let supported: &[&str] = match pending {
            Pending::Exec { .. } | Pending::Attach { .. } => &SPDY_SERVER_PROTOCOLS,
            Pending::PortForward { .. } => &[PORT_FORWARD_PROTOCOL],
        };
        if offered.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                "unable to upgrade: X-Stream-Protocol-Version header is missing\n",
            );
        }
        let Some(version) = remotecommand::negotiate(&offered, supported) else {
            let mut r = text(
                StatusCode::FORBIDDEN,
                &format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {supported:?}\n"
                ),
            );
            for s in supported {
                if let Ok(v) = http::HeaderValue::from_str(s) {
                    r.headers_mut()
                        .append("x-accepted-stream-protocol-versions", v);
                }
            }
            return r;
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let me = self.clone();
        let span =
            tracing::debug_span!("runtime_streaming_server", kind = %kind, version = %version);
        tokio::spawn(
            async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                let session = Session::new(TokioIo::new(upgraded), Role::Server);
                match pending {
                    Pending::PortForward { sandbox_id } => {
                        me.serve_port_forward(session, &sandbox_id, trace).await
                    }
                    command => {
                        me.serve_spdy_remote_command(session, version, command, trace)
                            .await
                    }
                }
            }
            .instrument(span),
        );
        upgrade::spdy_101(version)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response\n"))
    }

    /// Answers a WebSocket upgrade for exec/attach (clients that come to this server
    /// directly; kubectl and the API server use SPDY here).
    fn upgrade_websocket(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        kind: &str,
        pending: Pending,
        trace: Option<TraceContext>,
    ) -> Response<Body> {
        let offered = upgrade::websocket_protocols(req.headers());
        if let Pending::PortForward { sandbox_id } = &pending {
            return self.upgrade_websocket_port_forward(req, sandbox_id.clone(), &offered, trace);
        }
        let Some(protocol) = wsserver::negotiate(&offered) else {
            return text(
                StatusCode::BAD_REQUEST,
                &format!(
                    "unable to upgrade: none of the offered WebSocket sub-protocols {offered:?} is supported (server accepts {:?})\n",
                    wsserver::CHANNEL_PROTOCOLS
                ),
            );
        };
        let Some(resp) = upgrade::websocket_101(req.headers(), protocol) else {
            return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let span =
            tracing::debug_span!("runtime_streaming_server", kind = %kind, version = %protocol);
        tokio::spawn(
            async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                self.serve_ws_remote_command(TokioIo::new(upgraded), protocol, pending, trace)
                    .await;
            }
            .instrument(span),
        );
        resp.body(Full::new(Bytes::new()).boxed())
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response\n"))
    }

    /// Answers a WebSocket port-forward upgrade (channel protocol, `?port=`).
    fn upgrade_websocket_port_forward(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        sandbox_id: String,
        offered: &[String],
        trace: Option<TraceContext>,
    ) -> Response<Body> {
        let ports = match portforward::ports_from_query(req.uri().query(), "port") {
            Ok(p) => p,
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
        };
        let Some(protocol) = portforward::negotiate_ws(offered) else {
            return text(
                StatusCode::BAD_REQUEST,
                &format!(
                    "unable to upgrade: none of the offered WebSocket sub-protocols {offered:?} is supported (server accepts {:?})\n",
                    portforward::WS_PROTOCOLS
                ),
            );
        };
        let Some(resp) = upgrade::websocket_101(req.headers(), protocol) else {
            return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let span = tracing::debug_span!("runtime_streaming_server", kind = "portforward", version = %protocol);
        tokio::spawn(
            async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                self.serve_ws_port_forward(
                    TokioIo::new(upgraded),
                    protocol,
                    &sandbox_id,
                    ports,
                    trace,
                )
                .await;
            }
            .instrument(span),
        );
        resp.body(Full::new(Bytes::new()).boxed())
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response\n"))
    }

    /// Port-forward over a WebSocket channel protocol, as upstream's kubelet
    /// (`pkg/kubelet/cri/streaming/portforward/websocket.go`): for the i-th port, channel
    /// 2i carries data both ways and channel 2i+1 errors to the client, each opened with
    /// the port number (2 bytes, little-endian); one connection into the pod per port.
    /// The session ends (Close 1000) once every forward is done, or when the client
    /// leaves, breaks the protocol (1002) or goes silent (1001).
    async fn serve_ws_port_forward<S>(
        &self,
        io: S,
        protocol: &'static str,
        sandbox_id: &str,
        ports: Vec<u16>,
        trace: Option<TraceContext>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let framing = wschannel::Framing::for_protocol(protocol);
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            io,
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            Some(wsserver::config()),
        )
        .await;
        let (ws_tx, mut ws_rx) = futures_util::StreamExt::split(ws);
        let (out, writer) = wsserver::spawn_writer(ws_tx);
        let pid = self
            .runtime
            .sandbox(sandbox_id)
            .map(|s| s.holder_pid)
            .unwrap_or(0);
        let gone = CancellationToken::new();
        let mut to_pod = Vec::new();
        let mut forwards = tokio::task::JoinSet::new();
        for (i, &port) in ports.iter().enumerate() {
            let (data_ch, error_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
            for ch in [data_ch, error_ch] {
                let _ = out
                    .send(wsserver::channel_message(
                        framing,
                        ch,
                        &portforward::port_prefix(port),
                    ))
                    .await;
            }
            let (tx, rx) = mpsc::channel::<Bytes>(16);
            to_pod.push(tx);
            let out = out.clone();
            let gone = gone.clone();
            let sandbox_id = sandbox_id.to_string();
            let record = trace
                .as_ref()
                .filter(|_| self.trace.enabled())
                .map(|c| (self.trace.clone(), c.trace_id.clone()));
            forwards.spawn(async move {
                let mut hop = Hop::start(HopId::StreamingServerToProcess);
                hop.to = format!("port {port} in the pod");
                let tally = Tally::default();
                let closed = tokio::select! {
                    r = forward_channels(pid, &sandbox_id, port, (data_ch, error_ch), framing, rx, &out, &tally) => r,
                    _ = gone.cancelled() => Ok("the client's session ended".to_string()),
                };
                if let Some((recorder, trace_id)) = record {
                    hop.streams = tally.streams();
                    hop.time_to_first_byte_ms = tally.first_output_after(hop.started_unix_ns);
                    match closed {
                        Ok(how) => hop.closed = how,
                        Err(e) => {
                            hop.closed = "failed; error written on the error channel".into();
                            hop.error = Some(e);
                        }
                    }
                    hop.finish();
                    recorder.hop(&trace_id, hop);
                }
            });
        }
        let idle = wsserver::idle_timeout();
        let mut abort = None;
        loop {
            let body = tokio::select! {
                i = wsserver::next_payload(&mut ws_rx, idle) => match i {
                    wsserver::Incoming::Data(b) => b,
                    wsserver::Incoming::End => break,
                    wsserver::Incoming::Abort(m) => {
                        abort = Some(m);
                        break;
                    }
                },
                // Every forward is done: the session is.
                None = async {
                    while forwards.join_next().await.is_some() {}
                    None::<()>
                } => break,
            };
            match wschannel::decode(framing, &body) {
                // Data for a port (even channels); what clients write on error channels
                // is ignored, as upstream does.
                Ok(wschannel::ChannelMessage::Data(ch, d)) if ch % 2 == 0 => {
                    if let Some(tx) = to_pod.get(usize::from(ch / 2))
                        && !d.is_empty()
                    {
                        let _ = tx.send(Bytes::from(d)).await;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    abort = Some(wsserver::protocol_error_close(&e.to_string()));
                    break;
                }
            }
        }
        gone.cancel();
        drop(to_pod);
        while forwards.join_next().await.is_some() {}
        let close = abort.unwrap_or_else(|| {
            tokio_tungstenite::tungstenite::Message::Close(Some(
                tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code:
                        tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
                    reason: "".into(),
                },
            ))
        });
        let _ = out.send(close).await;
        drop(out);
        let _ = writer.await;
    }

    /// Exec/attach over SPDY: the client's streams, the command, the status.
    async fn serve_spdy_remote_command(
        &self,
        session: Arc<Session>,
        version: &'static str,
        command: Pending,
        trace: Option<TraceContext>,
    ) {
        let Some(opts) = command.options() else {
            return;
        };
        let tally = Arc::new(Tally::default());
        tally.declare_session(opts);
        let Some(streams) = collect_streams(&session, opts, version).await else {
            session.shutdown().await;
            return;
        };
        let (io, pumps, error_stream) = wire_streams(streams, &session, &tally);
        let run = self.run_remote_command(command, io, &tally).await;
        send_status(pumps, error_stream, &run.outcome, version).await;
        // Recorded as soon as the client has its status, before the hang-up.
        self.record(trace, run, &tally, version);
        linger(session).await;
    }

    /// Exec/attach over a WebSocket channel protocol: the same command, other framing.
    async fn serve_ws_remote_command<S>(
        &self,
        io: S,
        protocol: &'static str,
        command: Pending,
        trace: Option<TraceContext>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Some(opts) = command.options().cloned() else {
            return;
        };
        let tally = Arc::new(Tally::default());
        tally.declare_session(&opts);
        let (ws, input) = ChannelSession::accept(io, protocol, &opts, true).await;
        let (io, pumps) = wire_channels(&ws, input, &opts, &tally);
        let run = self.run_remote_command(command, io, &tally).await;
        for p in pumps {
            let _ = p.await;
        }
        let status = run.outcome.error_stream_bytes(protocol);
        self.record(trace, run, &tally, protocol);
        ws.finish(status).await;
    }

    /// Adds the process hop to the session's trace.
    fn record(
        &self,
        trace: Option<TraceContext>,
        run: RemoteCommandRun,
        tally: &Tally,
        protocol: &str,
    ) {
        let Some(ctx) = trace else {
            return;
        };
        if !self.trace.enabled() {
            return;
        }
        let mut hop = run.hop;
        if let Some(status) = run.outcome.error_stream_bytes(protocol) {
            tally.add("error", false, status.len());
        }
        tally.closed("error", "closed by the server after the status");
        hop.streams = tally.streams();
        hop.time_to_first_byte_ms = tally.first_output_after(hop.started_unix_ns);
        if let Some(p) = hop.process.as_mut() {
            p.resizes = tally.resizes(hop.started_unix_ns);
        }
        hop.closed = match &run.outcome {
            Outcome::Success => "process exited 0; status Success sent".into(),
            Outcome::ExitCode(c) => format!("process exited {c}; status Failure sent"),
            Outcome::Error(e) => {
                hop.error = Some(e.clone());
                "failed; status Failure sent".into()
            }
        };
        hop.finish();
        self.trace.hop(&ctx.trace_id, hop);
    }

    /// Runs the exec, or connects the attach, with the client's channels.
    async fn run_remote_command(
        &self,
        command: Pending,
        io: ExecIo,
        tally: &Tally,
    ) -> RemoteCommandRun {
        let mut hop = Hop::start(HopId::StreamingServerToProcess);
        let outcome = match command {
            Pending::Exec { container_id, opts } => match self.runtime.container(&container_id) {
                Ok(c) if c.state == super::ContainerStateKind::Running => {
                    let dir = self.runtime.container_dir(&c.id);
                    let req = ExecRequest {
                        pid: c.pid,
                        argv: opts.command,
                        env: c.env.clone(),
                        cwd: c.cwd.clone(),
                        tty: opts.tty,
                        error_file: dir.join(format!("exec-{}.err", new_token())),
                        report: self.trace.enabled(),
                        cgroup: c.exec_cgroup(),
                        uid: c.uid,
                        gid: c.gid,
                        level: self.runtime.isolation().level,
                        root: self.runtime.unprivileged_root(&c),
                        exec_id: new_token(),
                    };
                    let (outcome, report) = exec::run(req, io).await;
                    let process = ProcessInfo {
                        pid: report.pid,
                        container_id: c.id.clone(),
                        container_pid: c.pid,
                        tty: opts.tty,
                        namespaces: if self.trace.enabled() {
                            compare_namespaces(&report.namespaces, c.pid)
                        } else {
                            Vec::new()
                        },
                        exit_code: match &outcome {
                            Outcome::Success => Some(0),
                            Outcome::ExitCode(code) => Some(*code),
                            Outcome::Error(_) => None,
                        },
                        ..Default::default()
                    };
                    hop.process = Some(process);
                    outcome
                }
                Ok(c) => Outcome::Error(format!("container {} is not running", c.id)),
                Err(e) => Outcome::Error(e.message().to_string()),
            },
            Pending::Attach {
                container_id, opts, ..
            } => match self.runtime.attach_hub(&container_id) {
                Some(hub) => {
                    let pid = self
                        .runtime
                        .container(&container_id)
                        .map(|c| c.pid)
                        .unwrap_or(0);
                    hop.process = Some(ProcessInfo {
                        container_id: container_id.clone(),
                        container_pid: pid,
                        tty: opts.tty,
                        namespaces: if self.trace.enabled() {
                            compare_namespaces(&[], pid)
                        } else {
                            Vec::new()
                        },
                        ..Default::default()
                    });
                    attach_session(hub, io).await
                }
                None => Outcome::Error(format!(
                    "container {container_id} is not running or was started by an earlier rkind process"
                )),
            },
            Pending::PortForward { .. } => {
                Outcome::Error("port-forward is not a remote command".into())
            }
        };
        let _ = tally;
        RemoteCommandRun { outcome, hop }
    }

    async fn serve_port_forward(
        &self,
        session: Arc<Session>,
        sandbox_id: &str,
        trace: Option<TraceContext>,
    ) {
        let mut pairer: Pairer<SpdyStream> = Pairer::new();
        while let Some(stream) = session.accept().await {
            let meta = match parse_headers(stream.id, &stream.headers) {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward stream refused");
                    stream.writer.reset().await;
                    continue;
                }
            };
            match pairer.add(meta, stream) {
                Ok(None) => {}
                Ok(Some(((emeta, error), (_, data)))) => {
                    let pid = self
                        .runtime
                        .sandbox(sandbox_id)
                        .map(|s| s.holder_pid)
                        .unwrap_or(0);
                    let sandbox_id = sandbox_id.to_string();
                    let session = session.clone();
                    let record = trace
                        .as_ref()
                        .filter(|_| self.trace.enabled())
                        .map(|c| (self.trace.clone(), c.trace_id.clone()));
                    tokio::spawn(async move {
                        let mut hop = Hop::start(HopId::StreamingServerToProcess);
                        hop.to = format!("port {} in the pod", emeta.port);
                        let tally = Tally::default();
                        let closed = tokio::select! {
                            r = forward(pid, &sandbox_id, emeta, error, data, &tally) => r,
                            _ = session.closed() => Ok("the client's session ended".to_string()),
                        };
                        if let Some((recorder, trace_id)) = record {
                            hop.streams = tally.streams();
                            hop.time_to_first_byte_ms =
                                tally.first_output_after(hop.started_unix_ns);
                            match closed {
                                Ok(how) => hop.closed = how,
                                Err(e) => {
                                    hop.closed = "failed; error written on the error stream".into();
                                    hop.error = Some(e);
                                }
                            }
                            hop.finish();
                            recorder.hop(&trace_id, hop);
                        }
                    });
                }
                Err((_, dup)) => dup.writer.reset().await,
            }
        }
        session.shutdown().await;
    }
}

/// Connects an attach client to a container's stdio until the container exits or
/// the client leaves.
async fn attach_session(hub: Arc<super::attach::AttachHub>, mut io: ExecIo) -> Outcome {
    use super::attach::OutputStream;
    let mut output = hub.subscribe();
    let stdin_task = io.stdin.take().map(|mut rx| {
        let hub = hub.clone();
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                let h = hub.clone();
                let ok = tokio::task::spawn_blocking(move || h.write_stdin(&d))
                    .await
                    .map(|r| r.is_ok())
                    .unwrap_or(false);
                if !ok {
                    break;
                }
            }
            if hub.stdin_once {
                hub.close_stdin();
            }
        })
    });
    let resize_task = io.resize.take().map(|mut rx| {
        let hub = hub.clone();
        tokio::spawn(async move {
            while let Some(size) = rx.recv().await {
                hub.resize(size);
            }
        })
    });
    loop {
        tokio::select! {
            m = output.recv() => match m {
                Ok((OutputStream::Stdout, d)) => {
                    if let Some(tx) = &io.stdout && tx.send(d).await.is_err() { break; }
                }
                Ok((OutputStream::Stderr, d)) => {
                    if let Some(tx) = io.stderr.as_ref() {
                        let _ = tx.send(d).await;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = hub.exited.cancelled() => {
                // Deliver what is still queued, then end.
                while let Ok((s, d)) = output.try_recv() {
                    let tx = match s { OutputStream::Stdout => io.stdout.as_ref(), OutputStream::Stderr => io.stderr.as_ref() };
                    if let Some(tx) = tx { let _ = tx.send(d).await; }
                }
                break;
            }
            _ = io.cancel.cancelled() => break,
        }
    }
    if let Some(t) = stdin_task {
        if hub.exited.is_cancelled() || io.cancel.is_cancelled() {
            t.abort();
            if hub.stdin_once {
                hub.close_stdin();
            }
        } else {
            let _ = t.await;
        }
    }
    if let Some(t) = resize_task {
        t.abort();
    }
    Outcome::Success
}

/// Upstream's token: 6 random bytes, base64url without padding, first 8 characters.
fn new_token() -> String {
    use base64::Engine;
    let bytes: [u8; 6] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)[..8].to_string()
}

fn text(code: StatusCode, msg: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(msg.to_string())).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// The streams of one remote-command session, by role.
#[derive(Default)]
pub struct RoleStreams {
    error: Option<SpdyStream>,
    stdin: Option<SpdyStream>,
    stdout: Option<SpdyStream>,
    stderr: Option<SpdyStream>,
    resize: Option<SpdyStream>,
}

/// Accepts the streams the options call for (identified by `streamtype`, never by
/// id); `None` if the client did not open them in time or went away.
async fn collect_streams(
    session: &Session,
    opts: &StreamOptions,
    version: &str,
) -> Option<RoleStreams> {
    let expected = opts.expected_streams(version);
    let mut got = RoleStreams::default();
    let mut count = 0;
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    while count < expected {
        let stream = tokio::select! {
            s = session.accept() => s?,
            _ = &mut deadline => {
                tracing::debug!(count, expected, "timed out waiting for client streams");
                return None;
            }
        };
        let slot = match stream.headers.get("streamtype").and_then(StreamType::parse) {
            Some(StreamType::Error) => &mut got.error,
            Some(StreamType::Stdin) => &mut got.stdin,
            Some(StreamType::Stdout) => &mut got.stdout,
            Some(StreamType::Stderr) => &mut got.stderr,
            Some(StreamType::Resize) => &mut got.resize,
            other => {
                tracing::debug!(?other, "ignoring a stream of unknown type");
                stream.writer.reset().await;
                continue;
            }
        };
        if slot.is_some() {
            stream.writer.reset().await;
            continue;
        }
        *slot = Some(stream);
        count += 1;
    }
    got.error.as_ref()?;
    Some(got)
}

/// Tasks copying process output to SPDY streams; awaited before the status is sent.
type Pumps = Vec<tokio::task::JoinHandle<()>>;

/// Connects SPDY streams to exec channels.
fn wire_streams(
    s: RoleStreams,
    session: &Arc<Session>,
    tally: &Arc<Tally>,
) -> (ExecIo, Pumps, Option<SpdyStream>) {
    let cancel = CancellationToken::new();
    {
        // The client vanishing (TCP gone, GOAWAY) kills the process.
        let session = session.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            session.closed().await;
            cancel.cancel();
        });
    }
    let stdin = s
        .stdin
        .map(|st| counted_stdin(st.reader.into_receiver(), tally));
    let resize = s
        .resize
        .map(|st| decoded_resizes(st.reader.into_receiver(), tally));
    let mut pumps = Vec::new();
    let mut out_channel = |st: Option<SpdyStream>, name: &'static str| {
        st.map(|st| {
            let (tx, mut rx) = mpsc::channel::<Bytes>(16);
            let tally = tally.clone();
            pumps.push(tokio::spawn(async move {
                while let Some(d) = rx.recv().await {
                    tally.add(name, false, d.len());
                    if st.writer.write(d).await.is_err() {
                        break;
                    }
                }
                tally.closed(name, "EOF from the process");
                st.writer.close().await;
            }));
            tx
        })
    };
    let stdout = out_channel(s.stdout, "stdout");
    let stderr = out_channel(s.stderr, "stderr");
    (
        ExecIo {
            stdin,
            resize,
            stdout,
            stderr,
            cancel,
        },
        pumps,
        s.error,
    )
}

/// Passes the client's stdin on, counting it; the end of `raw` is stdin EOF.
fn counted_stdin(mut raw: mpsc::Receiver<Bytes>, tally: &Arc<Tally>) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let tally = tally.clone();
    tokio::spawn(async move {
        while let Some(d) = raw.recv().await {
            tally.add("stdin", true, d.len());
            if tx.send(d).await.is_err() {
                break;
            }
        }
        tally.closed("stdin", "closed by the client (EOF)");
    });
    rx
}

/// Decodes the client's resize messages into terminal sizes, noting each.
fn decoded_resizes(
    mut raw: mpsc::Receiver<Bytes>,
    tally: &Arc<Tally>,
) -> mpsc::Receiver<TerminalSize> {
    let (tx, rx) = mpsc::channel(4);
    let tally = tally.clone();
    tokio::spawn(async move {
        let mut dec = ResizeDecoder::default();
        while let Some(d) = raw.recv().await {
            tally.add("resize", true, d.len());
            for size in dec.feed(&d) {
                tally.resize(size);
                if tx.send(size).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Connects WebSocket channels to exec channels (resize messages decoded on the way).
fn wire_channels(
    ws: &ChannelSession,
    input: ChannelInput,
    opts: &StreamOptions,
    tally: &Arc<Tally>,
) -> (ExecIo, Pumps) {
    let mut pumps = Vec::new();
    let mut output = |wanted: bool, channel: u8, name: &'static str| {
        wanted.then(|| {
            let (ws_tx, pump) = ws.output(channel);
            pumps.push(pump);
            let (tx, mut rx) = mpsc::channel::<Bytes>(16);
            let tally = tally.clone();
            pumps.push(tokio::spawn(async move {
                while let Some(d) = rx.recv().await {
                    tally.add(name, false, d.len());
                    if ws_tx.send(d).await.is_err() {
                        break;
                    }
                }
                tally.closed(name, "EOF from the process");
            }));
            tx
        })
    };
    let stdout = output(opts.stdout, wschannel::STDOUT, "stdout");
    let stderr = output(opts.stderr && !opts.tty, wschannel::STDERR, "stderr");
    let stdin = input.stdin.map(|rx| counted_stdin(rx, tally));
    let resize = input.resize.map(|rx| decoded_resizes(rx, tally));
    (
        ExecIo {
            stdin,
            resize,
            stdout,
            stderr,
            cancel: input.gone,
        },
        pumps,
    )
}

/// What a remote command did, for its trace.
struct RemoteCommandRun {
    outcome: Outcome,
    hop: Hop,
}

/// The exec'd process's namespaces next to its container's and the host's (rkind's own).
fn compare_namespaces(process: &[(String, u64)], container_pid: u32) -> Vec<NamespaceInodes> {
    // rkind's own namespaces never change: read once, not on every traced exec.
    static HOST: std::sync::OnceLock<std::collections::BTreeMap<String, u64>> =
        std::sync::OnceLock::new();
    let host = HOST.get_or_init(|| super::linux::namespace_inodes(std::process::id()));
    let container = super::linux::namespace_inodes(container_pid);
    ["pid", "mnt", "net", "ipc", "uts"]
        .iter()
        .map(|t| NamespaceInodes {
            r#type: t.to_string(),
            process: process.iter().find(|(n, _)| n == t).map(|(_, i)| *i),
            container: container.get(*t).copied(),
            host: host.get(*t).copied(),
        })
        .collect()
}

/// Flushes output and writes the status on the error stream, as the kubelet does.
async fn send_status(pumps: Pumps, error: Option<SpdyStream>, outcome: &Outcome, version: &str) {
    for p in pumps {
        let _ = p.await;
    }
    if let Some(err) = error {
        if let Some(bytes) = outcome.error_stream_bytes(version) {
            let _ = err.writer.write(Bytes::from(bytes)).await;
        }
        err.writer.close().await;
    }
}

/// Gives the client a moment to read the status and hang up itself, then ends the
/// connection.
async fn linger(session: Arc<Session>) {
    tokio::select! {
        _ = session.closed() => {}
        _ = tokio::time::sleep(Duration::from_secs(1)) => session.shutdown().await,
    }
}

/// One forwarded connection: dial `port` inside the pod's network namespace and relay
/// until both sides are done; says how it ended (or why it failed).
async fn forward(
    holder_pid: u32,
    sandbox_id: &str,
    meta: PortStream,
    error: SpdyStream,
    data: SpdyStream,
    tally: &Tally,
) -> Result<String, String> {
    let port = meta.port;
    let name = format!("port {port} data");
    let span = tracing::debug_span!("runtime_port_forward", port, request = %meta.request_id);
    async move {
        let tcp = match connect_in_netns(holder_pid, port).await {
            Ok(t) => t,
            Err(e) => {
                let msg = format!(
                    "error forwarding port {port} to pod {sandbox_id}, uid : failed to connect to localhost:{port} inside namespace {sandbox_id:?}, {e}"
                );
                tally.add(&format!("port {port} error"), false, msg.len());
                let _ = error.writer.write(Bytes::from(msg.clone())).await;
                error.writer.close().await;
                data.writer.reset().await;
                return Err(msg);
            }
        };
        let (mut rd, mut wr) = tcp.into_split();
        let SpdyStream {
            reader: mut data_in,
            writer: data_out,
            ..
        } = data;
        let (count_tx, mut count_rx) = mpsc::unbounded_channel::<usize>();
        let to_pod = tokio::spawn(async move {
            while let Some(d) = data_in.recv().await {
                let _ = count_tx.send(d.len());
                if wr.write_all(&d).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            while let Ok(n) = count_rx.try_recv() {
                tally.add(&name, true, n);
            }
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tally.add(&name, false, n);
                    if data_out
                        .write(Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // The pod side ending ends the forward: FIN on both streams, so kubectl closes
        // its local socket (pitfall P19).
        data_out.close().await;
        let abort = to_pod.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), to_pod).await.is_err() {
            abort.abort();
        }
        while let Ok(n) = count_rx.try_recv() {
            tally.add(&name, true, n);
        }
        tally.closed(&name, "the pod's side closed; FIN sent on both streams");
        error.writer.close().await;
        Ok(format!("connection to port {port} closed by the pod"))
    }
    .instrument(span)
    .await
}

/// Connects to `port` on the loopback of the network namespace of `pid`: a dedicated
/// thread joins that namespace (setns on a thread affects only that thread, or a helper
/// does it for pods in a user namespace), dials, and hands the socket back; the socket
/// stays in the pod's namespace.
async fn connect_in_netns(pid: u32, port: u16) -> Result<tokio::net::TcpStream, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("portforward-dial".into())
        .spawn(move || {
            let _ = tx.send(crate::runtime::linux::dial_pod_loopback(pid, port));
        })
        .map_err(|e| e.to_string())?;
    let std_stream = rx.await.map_err(|_| "dial thread failed".to_string())??;
    std_stream
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let _ = std_stream.set_nodelay(true);
    tokio::net::TcpStream::from_std(std_stream).map_err(|e| e.to_string())
}

/// One WebSocket port-forward channel pair: dial `port` inside the pod, then relay the
/// client's data channel both ways until the pod's side closes; a failed dial is written
/// on the error channel, as upstream does.
#[allow(clippy::too_many_arguments)]
async fn forward_channels(
    holder_pid: u32,
    sandbox_id: &str,
    port: u16,
    (data_ch, error_ch): (u8, u8),
    framing: wschannel::Framing,
    mut from_client: mpsc::Receiver<Bytes>,
    out: &mpsc::Sender<tokio_tungstenite::tungstenite::Message>,
    tally: &Tally,
) -> Result<String, String> {
    let name = format!("port {port} data");
    let tcp = match connect_in_netns(holder_pid, port).await {
        Ok(t) => t,
        Err(e) => {
            let msg = format!(
                "error forwarding port {port} to pod {sandbox_id}, uid : failed to connect to localhost:{port} inside namespace {sandbox_id:?}, {e}"
            );
            tally.add(&format!("port {port} error"), false, msg.len());
            let _ = out
                .send(wsserver::channel_message(framing, error_ch, msg.as_bytes()))
                .await;
            return Err(msg);
        }
    };
    let (mut rd, mut wr) = tcp.into_split();
    let (count_tx, mut count_rx) = mpsc::unbounded_channel::<usize>();
    let to_pod = tokio::spawn(async move {
        while let Some(d) = from_client.recv().await {
            let _ = count_tx.send(d.len());
            if wr.write_all(&d).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        while let Ok(n) = count_rx.try_recv() {
            tally.add(&name, true, n);
        }
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tally.add(&name, false, n);
                if out
                    .send(wsserver::channel_message(framing, data_ch, &buf[..n]))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    to_pod.abort();
    while let Ok(n) = count_rx.try_recv() {
        tally.add(&name, true, n);
    }
    tally.closed(&name, "the pod's side closed");
    Ok(format!("connection to port {port} closed by the pod"))
}
