//! `pods/exec`, `pods/attach` and `pods/portforward` — the kubectl → API server →
//! kubelet hops of the exec chain, as upstream does them since 1.30/1.31:
//!
//! * a SPDY upgrade (`POST`, `Upgrade: SPDY/3.1`) is proxied to the kubelet byte for byte
//!   (upgrade-aware proxy);
//! * a WebSocket channel upgrade (`v5.channel.k8s.io`, also v4 and the base64 variants)
//!   is accepted here and translated into a SPDY remote-command session with the kubelet
//!   (upstream's StreamTranslator);
//! * a WebSocket port-forward tunnel (`SPDY/3.1+portforward.k8s.io`) is turned into a SPDY
//!   upgrade to the kubelet whose bytes travel inside WebSocket binary messages
//!   (upstream's TunnelingHandler);
//! * a WebSocket port-forward with the channel protocol (`v4.channel.k8s.io`, `?ports=`,
//!   used by the python client, kr8s, client-node) is proxied to the kubelet byte for byte,
//!   which passes it on to the runtime's streaming server that speaks it.
//!
//! Pod and container are validated before any upgrade, so those errors are ordinary
//! `metav1.Status` answers.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tracing::Instrument;

use crate::stream::portforward;
use crate::stream::remotecommand::{
    self, Outcome, PORT_FORWARD_PROTOCOL, PROTOCOL_HEADER, SPDY_CLIENT_PROTOCOLS, StreamOptions,
    StreamType, TUNNEL_PREFIX,
};
use crate::stream::session::{Role as SpdyRole, Session, SpdyStream};
use crate::stream::spdy::Headers;
use crate::stream::upgrade::{self, ClientUpgrade, UpgradedIo};
use crate::stream::wschannel;
use crate::stream::wsserver::{self, ChannelInput, ChannelSession};
use crate::trace::model::Outcome as TraceOutcome;
use crate::trace::recorder::TRACEPARENT;
use crate::trace::{
    ByteCounter, Connection, Counted, Hop, HopId, HttpExchange, Recorder, StreamStats, TraceContext,
};

use super::kinds::ResourceDef;
use super::status::ApiError;
use super::{ApiServer, Body};

/// Which subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exec,
    Attach,
    PortForward,
}

/// The API server's two hops of one session (client → API server, API server →
/// kubelet), recorded in the cluster's trace ring when the session ends.
pub struct SessionTrace {
    recorder: Arc<Recorder>,
    ctx: TraceContext,
    client: Hop,
    kubelet: Option<Hop>,
}

impl SessionTrace {
    /// Records both hops and ends the session with `outcome` (`None`: the API server
    /// only proxied bytes, so the process's exit tells).
    #[allow(clippy::too_many_arguments)]
    fn finish(
        mut self,
        client_bytes: (u64, u64),
        first_byte_ms: Option<f64>,
        answered: Option<u128>,
        streams: Vec<StreamStats>,
        outcome: Option<TraceOutcome>,
        closed: &str,
    ) {
        if !self.recorder.enabled() {
            return;
        }
        self.client.bytes_to_callee = client_bytes.0;
        self.client.bytes_to_caller = client_bytes.1;
        self.client.time_to_first_byte_ms = first_byte_ms;
        self.client.streams = streams;
        self.client.closed = closed.to_string();
        self.client.finish_at(answered);
        let id = self.ctx.trace_id.clone();
        if let Some(k) = self.kubelet.take() {
            self.recorder.hop(&id, k);
        }
        self.recorder.hop(&id, self.client);
        self.recorder.end(&id, outcome.unwrap_or_default());
    }

    /// Fills in the kubelet hop from the counts on its connection: its answer was
    /// complete with the last byte read from the kubelet.
    fn kubelet_counted(&mut self, counter: &ByteCounter, closed: &str) {
        if let Some(k) = self.kubelet.as_mut() {
            k.bytes_to_callee = counter.written.load(Ordering::Relaxed);
            k.bytes_to_caller = counter.read.load(Ordering::Relaxed);
            k.closed = closed.to_string();
            k.finish_at(counter.last_read());
        }
    }

    /// Ends a session whose bytes went between the client and the kubelet unchanged
    /// (SPDY proxy, port-forward tunnel): one counter serves both hops.
    fn finish_relayed(
        mut self,
        counter: &ByteCounter,
        kubelet_closed: &str,
        outcome: Option<TraceOutcome>,
        closed: &str,
    ) {
        self.kubelet_counted(counter, kubelet_closed);
        let first = counter.first_write_after(self.client.started_unix_ns);
        self.finish(
            (
                counter.written.load(Ordering::Relaxed),
                counter.read.load(Ordering::Relaxed),
            ),
            first,
            counter.last_read(),
            Vec::new(),
            outcome,
            closed,
        );
    }

    /// Ends a session refused before the upgrade.
    fn refused(mut self, e: &ApiError) {
        if let Some(r) = self.client.request.as_mut() {
            r.status = e.code;
        }
        self.client.error = Some(e.message.clone());
        let outcome = TraceOutcome {
            status: "Failure".into(),
            message: Some(e.message.clone()),
            http_status: Some(e.code),
            ..Default::default()
        };
        self.finish(
            (0, 0),
            None,
            None,
            Vec::new(),
            Some(outcome),
            "refused before the upgrade",
        );
    }
}

/// What the client was told, for the trace.
fn trace_outcome(o: &Outcome) -> TraceOutcome {
    match o {
        Outcome::Success => TraceOutcome {
            status: "Success".into(),
            exit_code: Some(0),
            ..Default::default()
        },
        Outcome::ExitCode(c) => TraceOutcome {
            status: "Failure".into(),
            exit_code: Some(*c),
            message: Some(format!(
                "command terminated with non-zero exit code: exit status {c}"
            )),
            ..Default::default()
        },
        Outcome::Error(m) => TraceOutcome {
            status: "Failure".into(),
            message: Some(m.clone()),
            ..Default::default()
        },
    }
}

/// Handles `pods/{exec,attach,portforward}` (GET or POST), with its trace.
pub async fn connect(
    srv: &Arc<ApiServer>,
    req: Request<Incoming>,
    res: &ResourceDef,
    ns: &str,
    name: &str,
    sub: &str,
) -> Result<Response<Body>, ApiError> {
    // The client's trace context if it sent one (a trace spanning its own spans), else
    // a new trace.
    let ctx = TraceContext::from_headers(req.headers()).unwrap_or_default();
    let kind = match sub {
        "exec" => "exec",
        "attach" => "attach",
        _ => "portforward",
    };
    srv.trace.begin(&ctx, kind, &format!("{ns}/{name}"));
    // What was asked for, even if it is refused below.
    let asked = StreamOptions::from_query(req.uri().query());
    srv.trace.describe(&ctx.trace_id, |t| {
        t.container = asked.container.clone();
        t.command = asked.command.clone();
    });
    let websocket = upgrade::is_websocket(req.headers());
    let mut client = Hop::start(HopId::KubectlToApiserver);
    client.connection = req.extensions().get::<Connection>().cloned();
    client.request = Some(HttpExchange {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        upgrade: if websocket {
            "websocket".into()
        } else if upgrade::is_spdy(req.headers()) {
            "SPDY/3.1".into()
        } else {
            "none".into()
        },
        offered_protocols: if websocket {
            upgrade::websocket_protocols(req.headers())
        } else {
            upgrade::header_list(req.headers(), PROTOCOL_HEADER)
        },
        ..Default::default()
    });
    let mut slot = Some(SessionTrace {
        recorder: srv.trace.clone(),
        ctx,
        client,
        kubelet: None,
    });
    let result = connect_traced(srv, req, res, ns, name, sub, &mut slot).await;
    // Still here: no upgrade happened, the answer ends the session.
    if let Some(trace) = slot {
        match &result {
            Err(e) => trace.refused(e),
            Ok(_) => trace.refused(&ApiError::internal("answered without an upgrade")),
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn connect_traced(
    srv: &Arc<ApiServer>,
    mut req: Request<Incoming>,
    res: &ResourceDef,
    ns: &str,
    name: &str,
    sub: &str,
    trace: &mut Option<SessionTrace>,
) -> Result<Response<Body>, ApiError> {
    let kind = match sub {
        "exec" => Kind::Exec,
        "attach" => Kind::Attach,
        _ => Kind::PortForward,
    };
    if req.method() != Method::GET && req.method() != Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {sub})",
            req.method()
        )));
    }
    let pod = srv
        .store
        .get(&res.key(Some(ns), name))
        .map_err(|e| ApiError::from_store(res, name, e))?
        .ok_or_else(|| ApiError::not_found(res, name))?;
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let mut opts = StreamOptions::from_query(req.uri().query());
    let path = match kind {
        Kind::PortForward => format!("/portForward/{}/{}/{}", enc(ns), enc(name), enc(uid)),
        Kind::Exec | Kind::Attach => {
            opts.container = resolve_container(&pod, name, &opts.container)?;
            let phase = pod["status"]["phase"].as_str().unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" {
                let verb = if kind == Kind::Exec {
                    "exec into"
                } else {
                    "attach to"
                };
                return Err(ApiError::bad_request(format!(
                    "cannot {verb} a container in a completed pod; current phase is {phase}"
                )));
            }
            if kind == Kind::Exec && opts.command.is_empty() {
                return Err(ApiError::bad_request(
                    "you must specify at least one command for the container",
                ));
            }
            opts.validate().map_err(ApiError::bad_request)?;
            format!(
                "/{}/{}/{}/{}/{}?{}",
                if kind == Kind::Exec { "exec" } else { "attach" },
                enc(ns),
                enc(name),
                enc(uid),
                enc(&opts.container),
                opts.to_kubelet_query()
            )
        }
    };
    if let Some(t) = trace.as_ref() {
        srv.trace.describe(&t.ctx.trace_id, |t| {
            t.container = opts.container.clone();
            t.command = opts.command.clone();
        });
    }
    if !upgrade::is_upgrade(req.headers()) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let span = tracing::debug_span!("apiserver_to_kubelet", pod = %format!("{ns}/{name}"), sub = %sub, node = %node);
    if upgrade::is_websocket(req.headers()) {
        let offered = upgrade::websocket_protocols(req.headers());
        if kind == Kind::PortForward {
            if let Some(tunnel) = offered
                .iter()
                .find(|p| p.starts_with(TUNNEL_PREFIX) && p.ends_with(".k8s.io"))
                .cloned()
            {
                return tunnel_port_forward(srv, &mut req, &node, &path, &tunnel, trace)
                    .instrument(span)
                    .await;
            }
            // The channel protocol (python client, kr8s, client-node): proxied to the
            // kubelet like upstream does, ports renamed to the kubelet's `port`.
            if portforward::negotiate_ws(&offered).is_none() {
                return Err(ApiError::bad_request(format!(
                    "unable to upgrade: port-forward over WebSocket needs the {TUNNEL_PREFIX}{PORT_FORWARD_PROTOCOL}, {} or {} sub-protocol",
                    portforward::WS_PROTOCOLS[0],
                    portforward::WS_PROTOCOLS[1]
                )));
            }
            let ports = portforward::ports_from_query(req.uri().query(), "ports")
                .map_err(ApiError::bad_request)?;
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(ports.iter().map(|p| ("port", p.to_string())))
                .finish();
            let path = format!("{path}?{query}");
            return proxy_websocket(srv, &mut req, &node, &path, &offered, trace)
                .instrument(span)
                .await;
        }
        let protocol = wsserver::negotiate(&offered)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to upgrade: none of the offered WebSocket sub-protocols {offered:?} is supported"
                ))
            })?;
        let resp = upgrade::websocket_101(req.headers(), protocol)
            .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?
            .body(Full::new(Bytes::new()).boxed())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let on_upgrade = hyper::upgrade::on(&mut req);
        let srv = srv.clone();
        let mut trace = trace.take();
        if let Some(r) = trace.as_mut().and_then(|t| t.client.request.as_mut()) {
            r.negotiated_protocol = Some(protocol.to_string());
            r.status = 101;
        }
        tokio::spawn(
            async move {
                if let Ok(up) = on_upgrade.await {
                    translate(srv, TokioIo::new(up), protocol, node, path, opts, trace).await;
                }
            }
            .instrument(span),
        );
        return Ok(resp);
    }
    if upgrade::is_spdy(req.headers()) {
        return proxy_spdy(srv, &mut req, &node, &path, trace)
            .instrument(span)
            .await;
    }
    Err(ApiError::bad_request("Upgrade request required"))
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The container to use: the named one (which must exist), or the only one.
fn resolve_container(pod: &Value, pod_name: &str, wanted: &str) -> Result<String, ApiError> {
    let names: Vec<&str> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    if wanted.is_empty() {
        let main: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        return match main.as_slice() {
            [one] => Ok(one.to_string()),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                main.join(" ")
            ))),
        };
    }
    if names.contains(&wanted) {
        Ok(wanted.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "container {wanted} is not valid for pod {pod_name}"
        )))
    }
}

/// Sends a SPDY upgrade request for `path` to the node's kubelet over mutual TLS.
async fn kubelet_upgrade(
    srv: &ApiServer,
    node: &str,
    path: &str,
    protocols: &[String],
    trace: &mut Option<SessionTrace>,
) -> Result<ClientUpgrade, ApiError> {
    kubelet_upgrade_as(srv, node, path, protocols, None, trace).await
}

/// Sends an upgrade request for `path` to the node's kubelet: SPDY offering
/// `protocols`, or (with `websocket`, the client's request headers) the client's own
/// WebSocket handshake, passed on for an upgrade-aware proxy.
async fn kubelet_upgrade_as(
    srv: &ApiServer,
    node: &str,
    path: &str,
    protocols: &[String],
    websocket: Option<&http::HeaderMap>,
    trace: &mut Option<SessionTrace>,
) -> Result<ClientUpgrade, ApiError> {
    let mut hop = Hop::start(HopId::ApiserverToKubelet);
    let tls = super::kubelet_proxy::connect(srv, node).await?;
    {
        let (tcp, conn) = tls.get_ref();
        hop.connection = Some(Connection {
            transport: tls_transport(conn.protocol_version()),
            caller: tcp.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            callee: tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
            caller_subject: Some(format!(
                "CN={}, O=kubeadm:cluster-admins",
                crate::pki::APISERVER_KUBELET_CLIENT_CN
            )),
            callee_subject: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(crate::pki::subject_of),
        });
    }
    let mut b = match websocket {
        None => {
            let mut b = Request::post(path)
                .header("host", node)
                .header("connection", "Upgrade")
                .header("upgrade", "SPDY/3.1");
            for p in protocols {
                b = b.header(PROTOCOL_HEADER, p.as_str());
            }
            b
        }
        Some(h) => {
            let mut b = Request::get(path)
                .header("host", node)
                .header("connection", "Upgrade")
                .header("upgrade", "websocket");
            for name in [
                "sec-websocket-key",
                "sec-websocket-version",
                "sec-websocket-protocol",
            ] {
                for v in h.get_all(name) {
                    b = b.header(name, v);
                }
            }
            b
        }
    };
    if let Some(t) = trace.as_ref() {
        b = b.header(TRACEPARENT, t.ctx.child().traceparent());
    }
    let out = b
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let answer = upgrade::client_upgrade(tls, out)
        .await
        .map_err(|e| ApiError::unavailable(format!("error dialing backend: {e}")));
    let (status, negotiated) = match &answer {
        Ok(ClientUpgrade::Switched { parts, .. }) => (
            parts.status.as_u16(),
            parts
                .headers
                .get(if websocket.is_some() {
                    "sec-websocket-protocol"
                } else {
                    PROTOCOL_HEADER
                })
                .and_then(|v| v.to_str().ok())
                .map(String::from),
        ),
        Ok(ClientUpgrade::Refused { parts, body }) => {
            hop.error = Some(String::from_utf8_lossy(body).trim().to_string());
            (parts.status.as_u16(), None)
        }
        Err(e) => {
            hop.error = Some(e.message.clone());
            (0, None)
        }
    };
    hop.request = Some(HttpExchange {
        method: if websocket.is_some() { "GET" } else { "POST" }.into(),
        path: path.split('?').next().unwrap_or("").to_string(),
        query: path
            .split_once('?')
            .map(|(_, q)| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        upgrade: if websocket.is_some() {
            "websocket"
        } else {
            "SPDY/3.1"
        }
        .into(),
        offered_protocols: protocols.to_vec(),
        negotiated_protocol: negotiated,
        status,
    });
    if let Some(t) = trace.as_mut() {
        t.kubelet = Some(hop);
    }
    answer
}

/// How a TLS connection is named in traces.
fn tls_transport(v: Option<rustls::ProtocolVersion>) -> String {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3 over TCP".into(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2 over TCP".into(),
        Some(other) => format!("{other:?} over TCP"),
        None => "TLS over TCP".into(),
    }
}

/// A kubelet's non-101 answer as the error the client sees.
fn refused_error(status: StatusCode, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let msg = v["message"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    match status.as_u16() {
        404 => ApiError::not_found_message(msg),
        400 => ApiError::bad_request(msg),
        429 => ApiError::too_many_requests(msg),
        _ => ApiError::internal(msg),
    }
}

/// Relays a kubelet upgrade that switched protocols to the client byte for byte,
/// recording the protocol the kubelet chose (its `protocol_header`) and, once both sides
/// closed, the bytes relayed (`outcome` says how).
fn relay_switched_upgrade(
    req: &mut Request<Incoming>,
    parts: &http::response::Parts,
    io: upgrade::UpgradedIo,
    trace: &mut Option<SessionTrace>,
    protocol_header: &str,
    outcome: &'static str,
) -> Result<Response<Body>, ApiError> {
    let counter = Arc::new(ByteCounter::default());
    let io = Counted::new(io, counter.clone());
    let mut trace = trace.take();
    if let Some(r) = trace.as_mut().and_then(|t| t.client.request.as_mut()) {
        r.status = 101;
        r.negotiated_protocol = parts
            .headers
            .get(protocol_header)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
    }
    let done = move || {
        if let Some(t) = trace {
            t.finish_relayed(&counter, "both sides closed; splice ended", None, outcome);
        }
    };
    upgrade::relay_switched(req, parts, io, done)
        .body(Full::new(Bytes::new()).boxed())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// SPDY from the client: proxied to the kubelet byte for byte.
async fn proxy_spdy(
    srv: &Arc<ApiServer>,
    req: &mut Request<Incoming>,
    node: &str,
    path: &str,
    trace: &mut Option<SessionTrace>,
) -> Result<Response<Body>, ApiError> {
    let offered = upgrade::header_list(req.headers(), PROTOCOL_HEADER);
    match kubelet_upgrade(srv, node, path, &offered, trace).await? {
        ClientUpgrade::Switched { parts, io } => relay_switched_upgrade(
            req,
            &parts,
            io,
            trace,
            PROTOCOL_HEADER,
            "proxied byte for byte until both sides closed",
        ),
        ClientUpgrade::Refused { parts, body } => Err(refused_error(parts.status, &body)),
    }
}

/// A WebSocket upgrade the kubelet's side speaks itself (port-forward's channel
/// protocol): the handshake and then the bytes are proxied unchanged.
async fn proxy_websocket(
    srv: &Arc<ApiServer>,
    req: &mut Request<Incoming>,
    node: &str,
    path: &str,
    offered: &[String],
    trace: &mut Option<SessionTrace>,
) -> Result<Response<Body>, ApiError> {
    let headers = req.headers().clone();
    match kubelet_upgrade_as(srv, node, path, offered, Some(&headers), trace).await? {
        ClientUpgrade::Switched { parts, io } => relay_switched_upgrade(
            req,
            &parts,
            io,
            trace,
            "sec-websocket-protocol",
            "WebSocket proxied byte for byte until both sides closed",
        ),
        ClientUpgrade::Refused { parts, body } => Err(refused_error(parts.status, &body)),
    }
}

/// Port-forward over WebSocket: a SPDY upgrade to the kubelet whose bytes are carried
/// in binary messages. A kubelet refusal is relayed before any WebSocket handshake,
/// so kubectl falls back to SPDY and reports the same error.
async fn tunnel_port_forward(
    srv: &Arc<ApiServer>,
    req: &mut Request<Incoming>,
    node: &str,
    path: &str,
    tunnel_protocol: &str,
    trace: &mut Option<SessionTrace>,
) -> Result<Response<Body>, ApiError> {
    let inner = tunnel_protocol
        .strip_prefix(TUNNEL_PREFIX)
        .unwrap_or(PORT_FORWARD_PROTOCOL);
    let backend = match kubelet_upgrade(srv, node, path, &[inner.to_string()], trace).await? {
        ClientUpgrade::Switched { parts, io } => {
            let chosen = parts
                .headers
                .get(PROTOCOL_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if chosen != inner {
                return Err(ApiError::internal(format!(
                    "kubelet chose port-forward protocol {chosen:?}"
                )));
            }
            io
        }
        ClientUpgrade::Refused { parts, body } => return Err(refused_error(parts.status, &body)),
    };
    let resp = upgrade::websocket_101(req.headers(), tunnel_protocol)
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?
        .body(Full::new(Bytes::new()).boxed())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let on_client = hyper::upgrade::on(req);
    let mut trace = trace.take();
    if let Some(r) = trace.as_mut().and_then(|t| t.client.request.as_mut()) {
        r.status = 101;
        r.negotiated_protocol = Some(tunnel_protocol.to_string());
    }
    tokio::spawn(
        async move {
            if let Ok(client) = on_client.await {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(client),
                    Role::Server,
                    Some(wsserver::config()),
                )
                .await;
                let counter = Arc::new(ByteCounter::default());
                shovel_tunnel(ws, Counted::new(backend, counter.clone())).await;
                if let Some(t) = trace {
                    t.finish_relayed(
                        &counter,
                        "the tunnel ended",
                        Some(TraceOutcome {
                            status: "Success".into(),
                            message: Some("port-forward tunnel closed".into()),
                            ..Default::default()
                        }),
                        "SPDY frames carried in WebSocket binary messages until the tunnel closed",
                    );
                }
            }
        }
        .in_current_span(),
    );
    Ok(resp)
}

/// Moves raw SPDY bytes between WebSocket binary messages and the kubelet connection.
/// The client must keep sending frames (kubectl's SPDY pings every 10 s, pongs to ours):
/// a silent or protocol-breaking client ends the tunnel (Close 1001 / 1002).
async fn shovel_tunnel<B>(ws: WebSocketStream<UpgradedIo>, backend: B)
where
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut be_rd, mut be_wr) = tokio::io::split(backend);
    let abort = std::sync::Mutex::new(None::<Message>);
    let aborted = tokio_util::sync::CancellationToken::new();
    let idle = wsserver::idle_timeout();
    let up = async {
        loop {
            let msg = match tokio::time::timeout(idle, ws_rx.next()).await {
                Err(_) => Some(wsserver::idle_close()),
                Ok(Some(Ok(Message::Binary(b)))) => {
                    if be_wr.write_all(&b).await.is_err() {
                        break;
                    }
                    continue;
                }
                Ok(Some(Err(e))) => {
                    use tokio_tungstenite::tungstenite::Error as WsError;
                    matches!(
                        e,
                        WsError::Protocol(_) | WsError::Utf8(_) | WsError::Capacity(_)
                    )
                    .then(|| wsserver::protocol_error_close(&e.to_string()))
                }
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => None,
                Ok(Some(Ok(_))) => continue,
            };
            if let Some(m) = msg {
                *abort.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
                aborted.cancel();
            }
            break;
        }
        let _ = be_wr.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut ping = tokio::time::interval(wsserver::ping_period());
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                r = be_rd.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if ws_tx
                            .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                },
                _ = ping.tick() => {
                    if ws_tx.send(Message::Ping(Bytes::new())).await.is_err() {
                        return;
                    }
                }
                _ = aborted.cancelled() => {
                    let close = abort.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(m) = close {
                        let _ = ws_tx.send(m).await;
                    }
                    return;
                }
            }
        }
        // Close 1000 is a clean EOF for kubectl's SPDY layer.
        let _ = ws_tx
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
    };
    // The kubelet side ending ends the tunnel; the client side ending only half-closes
    // (unless it broke the protocol or went silent, which ends both).
    tokio::join!(up, down);
}

/// The StreamTranslator: a WebSocket channel session with the client, a SPDY
/// remote-command session with the kubelet, and the status at the end.
async fn translate(
    srv: Arc<ApiServer>,
    client: UpgradedIo,
    protocol: &'static str,
    node: String,
    path: String,
    opts: StreamOptions,
    mut trace: Option<SessionTrace>,
) {
    let client_counter = Arc::new(ByteCounter::default());
    let (ws, input) = ChannelSession::accept(
        Counted::new(client, client_counter.clone()),
        protocol,
        &opts,
        false,
    )
    .await;
    let kubelet_counter = Arc::new(ByteCounter::default());
    let outcome = match open_kubelet_session(&srv, &node, &path, &mut trace).await {
        Ok((io, parts_version)) => {
            let session = Session::new(Counted::new(io, kubelet_counter.clone()), SpdyRole::Client);
            match open_streams(&session, parts_version, &opts).await {
                Ok(streams) => run_translation(session, streams, input, &ws).await,
                Err(e) => {
                    session.shutdown().await;
                    Outcome::Error(e)
                }
            }
        }
        Err(e) => Outcome::Error(e),
    };
    let tally = ws.tally.clone();
    ws.finish(outcome.error_stream_bytes(protocol)).await;
    if let Some(mut t) = trace {
        t.kubelet_counted(&kubelet_counter, "SPDY session shut down after the status");
        let first = tally.first_output_after(t.client.started_unix_ns);
        t.finish(
            (
                client_counter.read.load(Ordering::Relaxed),
                client_counter.written.load(Ordering::Relaxed),
            ),
            first,
            client_counter.last_write(),
            tally.streams(),
            Some(trace_outcome(&outcome)),
            "status sent on channel 3, then WebSocket Close 1000",
        );
    }
}

/// The kubelet-side streams of a translated session.
struct KubeletStreams {
    version: String,
    error: SpdyStream,
    stdin: Option<SpdyStream>,
    stdout: Option<SpdyStream>,
    stderr: Option<SpdyStream>,
    resize: Option<SpdyStream>,
}

/// The SPDY upgrade to the kubelet for a translated session: the connection and the
/// remote-command version the kubelet chose.
async fn open_kubelet_session(
    srv: &ApiServer,
    node: &str,
    path: &str,
    trace: &mut Option<SessionTrace>,
) -> Result<(UpgradedIo, String), String> {
    let offered: Vec<String> = SPDY_CLIENT_PROTOCOLS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (parts, io) = match kubelet_upgrade(srv, node, path, &offered, trace).await {
        Ok(ClientUpgrade::Switched { parts, io }) => (parts, io),
        Ok(ClientUpgrade::Refused { parts, body }) => {
            return Err(refused_error(parts.status, &body).message);
        }
        Err(e) => return Err(e.message),
    };
    let version = parts
        .headers
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(remotecommand::V1)
        .to_string();
    Ok((io, version))
}

/// Opens the remote-command streams on the kubelet session, in client-go's order.
async fn open_streams(
    session: &Arc<Session>,
    version: String,
    opts: &StreamOptions,
) -> Result<KubeletStreams, String> {
    let open = |t: StreamType| {
        let session = session.clone();
        async move {
            let mut h = Headers::new();
            h.insert("streamtype", t.as_str());
            session
                .open(h)
                .await
                .map_err(|e| format!("creating the {} stream: {e}", t.as_str()))
        }
    };
    // Same order as client-go: error, stdin, stdout, stderr, resize.
    let error = open(StreamType::Error).await?;
    let stdin = if opts.stdin {
        Some(open(StreamType::Stdin).await?)
    } else {
        None
    };
    let stdout = if opts.stdout {
        Some(open(StreamType::Stdout).await?)
    } else {
        None
    };
    let stderr = if opts.stderr && !opts.tty {
        Some(open(StreamType::Stderr).await?)
    } else {
        None
    };
    let resize = if opts.tty && remotecommand::supports_resize(&version) {
        Some(open(StreamType::Resize).await?)
    } else {
        None
    };
    Ok(KubeletStreams {
        version,
        error,
        stdin,
        stdout,
        stderr,
        resize,
    })
}

async fn run_translation(
    session: Arc<Session>,
    s: KubeletStreams,
    input: ChannelInput,
    ws: &ChannelSession,
) -> Outcome {
    let KubeletStreams {
        version,
        mut error,
        stdin,
        stdout,
        stderr,
        resize,
    } = s;
    // kubelet → client output.
    let mut outputs = Vec::new();
    for (st, ch) in [(stdout, wschannel::STDOUT), (stderr, wschannel::STDERR)] {
        if let Some(mut st) = st {
            let (tx, pump) = ws.output(ch);
            outputs.push(pump);
            tokio::spawn(async move {
                while let Some(d) = st.reader.recv().await {
                    if tx.send(d).await.is_err() {
                        break;
                    }
                }
            });
        }
    }
    // client → kubelet input: stdin (its end is the client's close signal) and resizes.
    let forward = |rx: Option<mpsc::Receiver<Bytes>>, st: Option<&SpdyStream>| {
        let (Some(mut rx), Some(w)) = (rx, st.map(|s| s.writer.clone())) else {
            return;
        };
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                if w.write(d).await.is_err() {
                    break;
                }
            }
            w.close().await;
        });
    };
    forward(input.stdin, stdin.as_ref());
    forward(input.resize, resize.as_ref());
    let outputs_done = async {
        for o in outputs {
            let _ = o.await;
        }
    };
    tokio::select! {
        _ = outputs_done => {}
        _ = input.gone.cancelled() => {
            // The client closed or vanished: it must not leave the command running.
            session.shutdown().await;
            return Outcome::Error("the client went away".into());
        }
    }
    let mut status = Vec::new();
    while let Some(d) = error.reader.recv().await {
        status.extend_from_slice(&d);
    }
    session.shutdown().await;
    if remotecommand::status_on_error_stream(&version) {
        Outcome::from_status(&status)
    } else if status.is_empty() {
        Outcome::Success
    } else {
        Outcome::Error(String::from_utf8_lossy(&status).into_owned())
    }
}
