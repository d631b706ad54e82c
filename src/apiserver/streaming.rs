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
//!   (upstream's TunnelingHandler).
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tracing::Instrument;

use crate::stream::remotecommand::{
    self, Outcome, PORT_FORWARD_PROTOCOL, PROTOCOL_HEADER, SPDY_CLIENT_PROTOCOLS, StreamOptions,
    StreamType, TUNNEL_PREFIX,
};
use crate::stream::session::{Role as SpdyRole, Session, SpdyStream};
use crate::stream::spdy::Headers;
use crate::stream::upgrade::{self, ClientUpgrade, UpgradedIo};
use crate::stream::wschannel;
use crate::stream::wsserver::{self, ChannelInput, ChannelSession};

use super::registry::ResourceDef;
use super::status::ApiError;
use super::{ApiServer, Body};

/// Which subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exec,
    Attach,
    PortForward,
}

/// Handles `pods/{exec,attach,portforward}` (GET or POST).
pub async fn connect(
    srv: &Arc<ApiServer>,
    mut req: Request<Incoming>,
    res: &'static ResourceDef,
    ns: &str,
    name: &str,
    sub: &str,
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
    if !upgrade::is_upgrade(req.headers()) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let span = tracing::debug_span!("apiserver_to_kubelet", pod = %format!("{ns}/{name}"), sub = %sub, node = %node);
    if upgrade::is_websocket(req.headers()) {
        let offered = upgrade::websocket_protocols(req.headers());
        if kind == Kind::PortForward {
            let tunnel = offered
                .iter()
                .find(|p| p.starts_with(TUNNEL_PREFIX) && p.ends_with(".k8s.io"))
                .cloned()
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unable to upgrade: port-forward over WebSocket needs the {TUNNEL_PREFIX}{PORT_FORWARD_PROTOCOL} sub-protocol"
                    ))
                })?;
            return tunnel_port_forward(srv, &mut req, &node, &path, &tunnel)
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
        tokio::spawn(
            async move {
                if let Ok(up) = on_upgrade.await {
                    translate(srv, TokioIo::new(up), protocol, node, path, opts).await;
                }
            }
            .instrument(span),
        );
        return Ok(resp);
    }
    if upgrade::is_spdy(req.headers()) {
        return proxy_spdy(srv, &mut req, &node, &path)
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
) -> Result<ClientUpgrade, ApiError> {
    let tls = super::kubelet_proxy::connect(srv, node).await?;
    let mut b = Request::post(path)
        .header("host", node)
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1");
    for p in protocols {
        b = b.header(PROTOCOL_HEADER, p.as_str());
    }
    let out = b
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    upgrade::client_upgrade(tls, out)
        .await
        .map_err(|e| ApiError::unavailable(format!("error dialing backend: {e}")))
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

/// SPDY from the client: proxied to the kubelet byte for byte.
async fn proxy_spdy(
    srv: &Arc<ApiServer>,
    req: &mut Request<Incoming>,
    node: &str,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    let offered = upgrade::header_list(req.headers(), PROTOCOL_HEADER);
    match kubelet_upgrade(srv, node, path, &offered).await? {
        ClientUpgrade::Switched { parts, io } => upgrade::relay_switched(req, &parts, io)
            .body(Full::new(Bytes::new()).boxed())
            .map_err(|e| ApiError::internal(e.to_string())),
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
) -> Result<Response<Body>, ApiError> {
    let inner = tunnel_protocol
        .strip_prefix(TUNNEL_PREFIX)
        .unwrap_or(PORT_FORWARD_PROTOCOL);
    let backend = match kubelet_upgrade(srv, node, path, &[inner.to_string()]).await? {
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
    tokio::spawn(
        async move {
            if let Ok(client) = on_client.await {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(client),
                    Role::Server,
                    Some(wsserver::config()),
                )
                .await;
                shovel_tunnel(ws, backend).await;
            }
        }
        .in_current_span(),
    );
    Ok(resp)
}

/// Moves raw SPDY bytes between WebSocket binary messages and the kubelet connection.
async fn shovel_tunnel(ws: WebSocketStream<UpgradedIo>, backend: UpgradedIo) {
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut be_rd, mut be_wr) = tokio::io::split(backend);
    let up = async {
        while let Some(msg) = ws_rx.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    if be_wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = be_wr.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match be_rd.read(&mut buf).await {
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
    // The kubelet side ending ends the tunnel; the client side ending only half-closes.
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
    }
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
) {
    let (ws, input) = ChannelSession::accept(client, protocol, &opts).await;
    let outcome = match open_kubelet_session(&srv, &node, &path, &opts).await {
        Ok((session, streams)) => run_translation(session, streams, input, &ws).await,
        Err(e) => Outcome::Error(e),
    };
    ws.finish(outcome.error_stream_bytes(protocol)).await;
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

async fn open_kubelet_session(
    srv: &ApiServer,
    node: &str,
    path: &str,
    opts: &StreamOptions,
) -> Result<(Arc<Session>, KubeletStreams), String> {
    let offered: Vec<String> = SPDY_CLIENT_PROTOCOLS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (parts, io) = match kubelet_upgrade(srv, node, path, &offered).await {
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
    let session = Session::new(io, SpdyRole::Client);
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
    Ok((
        session,
        KubeletStreams {
            version,
            error,
            stdin,
            stdout,
            stderr,
            resize,
        },
    ))
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
