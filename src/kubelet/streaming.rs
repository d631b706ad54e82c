//! The kubelet → runtime hop of exec / attach / port-forward: `/exec/{ns}/{pod}[/{uid}]/{container}`,
//! `/attach/...` and `/portForward/{ns}/{pod}[/{uid}]` ask the runtime over CRI gRPC
//! (`Exec`, `Attach`, `PortForward`) for a one-shot streaming URL and then proxy the
//! client's upgrade to it byte for byte (never a redirect, as upstream since 1.20).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::runtime::cri;
use crate::runtime::cri::runtime_service_client::RuntimeServiceClient;
use crate::stream::remotecommand::{PROTOCOL_HEADER, StreamOptions};
use crate::stream::upgrade::{self, ClientUpgrade};
use crate::trace::model::mask_token;
use crate::trace::recorder::TRACEPARENT;
use crate::trace::{
    ByteCounter, Connection, Counted, GrpcCall, Hop, HopId, HttpExchange, Recorder, TraceContext,
};
use serde_json::json;

use super::logs::StreamBodyBox;

/// What the streaming endpoints need besides the CRI channel.
pub struct StreamingDeps {
    /// The CRI socket (named in traces).
    pub cri_socket: std::path::PathBuf,
    /// The cluster's trace ring.
    pub trace: Arc<Recorder>,
}

/// Which streaming endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exec,
    Attach,
    PortForward,
}

/// A kubelet error answer (upstream answers these as plain text with the HTTP code).
struct KubeletError {
    code: StatusCode,
    message: String,
}

fn error(code: StatusCode, message: impl Into<String>) -> KubeletError {
    KubeletError {
        code,
        message: message.into(),
    }
}

fn reply(e: KubeletError) -> Response<StreamBodyBox> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": e.message, "code": e.code.as_u16(),
        "reason": match e.code.as_u16() { 404 => "NotFound", 400 => "BadRequest", 429 => "TooManyRequests", _ => "InternalError" },
    });
    let mut r = Response::builder()
        .status(e.code)
        .header("content-type", "application/json");
    if e.code == StatusCode::TOO_MANY_REQUESTS {
        r = r.header("retry-after", "60");
    }
    r.body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap_or_default())).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// Handles a streaming path, or returns `None` if `path` is not one.
pub async fn handle(
    req: Request<Incoming>,
    cri: Option<Channel>,
    deps: &StreamingDeps,
) -> Option<Response<StreamBodyBox>> {
    let path = req.uri().path().to_string();
    let (kind, rest) = if let Some(r) = path.strip_prefix("/exec/") {
        (Kind::Exec, r)
    } else if let Some(r) = path.strip_prefix("/attach/") {
        (Kind::Attach, r)
    } else if let Some(r) = path.strip_prefix("/portForward/") {
        (Kind::PortForward, r)
    } else {
        return None;
    };
    let parts: Vec<String> = rest
        .split('/')
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let span = tracing::debug_span!("kubelet_to_runtime", kind = ?kind, path = %path);
    Some(
        async move {
            match stream(req, cri, kind, &parts, deps).await {
                Ok(r) => r,
                Err(e) => reply(e),
            }
        }
        .instrument(span)
        .await,
    )
}

async fn stream(
    mut req: Request<Incoming>,
    cri: Option<Channel>,
    kind: Kind,
    parts: &[String],
    deps: &StreamingDeps,
) -> Result<Response<StreamBodyBox>, KubeletError> {
    // The API server's trace context: this hop's records join its session, and the
    // context travels on to the runtime (gRPC metadata, then the streaming request).
    let trace = TraceContext::from_headers(req.headers())
        .filter(|_| deps.trace.enabled())
        .map(|c| c.child());
    if req.method() != http::Method::GET && req.method() != http::Method::POST {
        return Err(error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"));
    }
    let (ns, pod, container) = match (kind, parts) {
        (Kind::PortForward, [ns, pod]) | (Kind::PortForward, [ns, pod, _]) => {
            (ns.as_str(), pod.as_str(), "")
        }
        (Kind::Exec | Kind::Attach, [ns, pod, c])
        | (Kind::Exec | Kind::Attach, [ns, pod, _, c]) => (ns.as_str(), pod.as_str(), c.as_str()),
        _ => return Err(error(StatusCode::NOT_FOUND, "404 page not found")),
    };
    let channel = cri.ok_or_else(|| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "container runtime is not available",
        )
    })?;
    let mut rt = RuntimeServiceClient::new(channel);
    let opts = StreamOptions::from_query(req.uri().query());
    let sandbox = find_sandbox(&mut rt, ns, pod).await?;
    let mut cri_hop = Hop::start(HopId::KubeletToCri);
    cri_hop.connection = Some(Connection {
        transport: "gRPC (HTTP/2) over a unix socket".into(),
        caller: "kubelet".into(),
        callee: format!("unix:{}", deps.cri_socket.display()),
        ..Default::default()
    });
    let (method, request, reply) = match kind {
        Kind::PortForward => {
            let msg = cri::PortForwardRequest {
                pod_sandbox_id: sandbox.id.clone(),
                port: Vec::new(),
            };
            let request = json!({"podSandboxId": msg.pod_sandbox_id, "port": msg.port});
            let reply = rt
                .port_forward(traced(msg, &trace))
                .await
                .map(|r| r.into_inner().url);
            ("PortForward", request, reply)
        }
        Kind::Exec | Kind::Attach => {
            opts.validate()
                .map_err(|m| error(StatusCode::BAD_REQUEST, m))?;
            let id = find_container(&mut rt, &sandbox.id, container, pod).await?;
            if kind == Kind::Exec {
                let msg = cri::ExecRequest {
                    container_id: id,
                    cmd: opts.command.clone(),
                    tty: opts.tty,
                    stdin: opts.stdin,
                    stdout: opts.stdout,
                    stderr: opts.stderr,
                };
                let request = json!({"containerId": msg.container_id, "cmd": msg.cmd, "tty": msg.tty,
                    "stdin": msg.stdin, "stdout": msg.stdout, "stderr": msg.stderr});
                // The hop starts with the call itself, not the lookups before it.
                cri_hop = Hop {
                    connection: cri_hop.connection.take(),
                    ..Hop::start(HopId::KubeletToCri)
                };
                let reply = rt
                    .exec(traced(msg, &trace))
                    .await
                    .map(|r| r.into_inner().url);
                ("Exec", request, reply)
            } else {
                let msg = cri::AttachRequest {
                    container_id: id,
                    stdin: opts.stdin,
                    tty: opts.tty,
                    stdout: opts.stdout,
                    stderr: opts.stderr,
                };
                let request = json!({"containerId": msg.container_id, "tty": msg.tty,
                    "stdin": msg.stdin, "stdout": msg.stdout, "stderr": msg.stderr});
                cri_hop = Hop {
                    connection: cri_hop.connection.take(),
                    ..Hop::start(HopId::KubeletToCri)
                };
                let reply = rt
                    .attach(traced(msg, &trace))
                    .await
                    .map(|r| r.into_inner().url);
                ("Attach", request, reply)
            }
        }
    };
    cri_hop.grpc = Some(GrpcCall {
        method: format!("/runtime.v1.RuntimeService/{method}"),
        request,
        response_url: reply.as_ref().ok().map(|u| mask_token(u)),
        code: match &reply {
            Ok(_) => "OK".into(),
            Err(s) => format!("{:?}", s.code()),
        },
    });
    if let Err(s) = &reply {
        cri_hop.error = Some(s.message().to_string());
    }
    cri_hop.finish();
    if let Some(c) = &trace {
        deps.trace.hop(&c.trace_id, cri_hop);
    }
    let url = reply.map_err(grpc_error)?;
    proxy_upgrade(&mut req, &url, trace, deps).await
}

/// A CRI request carrying the trace context as `traceparent` metadata.
fn traced<T>(msg: T, trace: &Option<TraceContext>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(c) = trace
        && let Ok(v) = c.traceparent().parse()
    {
        r.metadata_mut().insert(TRACEPARENT, v);
    }
    r
}

/// Upstream's mapping of CRI errors (`pkg/cri/streaming/errors.go`).
fn grpc_error(s: tonic::Status) -> KubeletError {
    let code = match s.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(code, s.message().to_string())
}

async fn find_sandbox(
    rt: &mut RuntimeServiceClient<Channel>,
    ns: &str,
    pod: &str,
) -> Result<cri::PodSandbox, KubeletError> {
    let mut sandboxes: Vec<cri::PodSandbox> = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .map_err(grpc_error)?
        .into_inner()
        .items
        .into_iter()
        .filter(|s| {
            s.state == cri::PodSandboxState::SandboxReady as i32
                && s.metadata
                    .as_ref()
                    .is_some_and(|m| m.name == pod && m.namespace == ns)
        })
        .collect();
    sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    sandboxes
        .into_iter()
        .next()
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "pod does not exist"))
}

async fn find_container(
    rt: &mut RuntimeServiceClient<Channel>,
    sandbox_id: &str,
    container: &str,
    pod: &str,
) -> Result<String, KubeletError> {
    let mut cs: Vec<cri::Container> = rt
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                pod_sandbox_id: sandbox_id.to_string(),
                ..Default::default()
            }),
        })
        .await
        .map_err(grpc_error)?
        .into_inner()
        .containers
        .into_iter()
        .filter(|c| c.metadata.as_ref().is_some_and(|m| m.name == container))
        .collect();
    cs.sort_by_key(|c| std::cmp::Reverse(c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0)));
    let c = cs.into_iter().next().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            format!("container {container} is not found in pod {pod}"),
        )
    })?;
    if c.state != cri::ContainerState::ContainerRunning as i32 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("container {container} is not running in pod {pod}"),
        ));
    }
    Ok(c.id)
}

/// Proxies the client's upgrade to the runtime's streaming URL and, once both sides
/// switched protocols, splices the two connections.
async fn proxy_upgrade(
    req: &mut Request<Incoming>,
    url: &str,
    trace: Option<TraceContext>,
    deps: &StreamingDeps,
) -> Result<Response<StreamBodyBox>, KubeletError> {
    let mut hop = Hop::start(HopId::KubeletToStreamingServer);
    let uri: http::Uri = url.parse().map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("bad streaming URL {url}: {e}"),
        )
    })?;
    let authority = uri
        .authority()
        .ok_or_else(|| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "streaming URL has no host",
            )
        })?
        .clone();
    let host = authority.host();
    if host != "127.0.0.1" && host != "localhost" && host != "[::1]" {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("streaming URL {url} is not on this machine"),
        ));
    }
    let tcp = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("dialing the streaming server: {e}"),
            )
        })?;
    let _ = tcp.set_nodelay(true);
    hop.connection = Some(Connection {
        transport: "TCP (plain HTTP on loopback)".into(),
        caller: tcp.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        callee: tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
        ..Default::default()
    });
    // The client's query travels on when the URL has none, as upstream's upgrade-aware
    // proxy does: WebSocket port-forward names its ports there (`?port=`).
    let target = match (uri.query(), req.uri().query()) {
        (None, Some(q)) if !q.is_empty() => format!("{}?{q}", uri.path()),
        _ => uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
    };
    let mut out = Request::builder()
        .method(req.method().clone())
        .uri(target.as_str())
        .header("host", authority.as_str());
    if let Some(c) = &trace {
        out = out.header(TRACEPARENT, c.child().traceparent());
    }
    let websocket = upgrade::is_websocket(req.headers());
    let offered = if websocket {
        upgrade::websocket_protocols(req.headers())
    } else {
        upgrade::header_list(req.headers(), PROTOCOL_HEADER)
    };
    let mut exchange = HttpExchange {
        method: req.method().to_string(),
        path: mask_token(uri.path()),
        upgrade: if websocket { "websocket" } else { "SPDY/3.1" }.into(),
        offered_protocols: offered,
        ..Default::default()
    };
    for name in [
        "connection",
        "upgrade",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        PROTOCOL_HEADER,
    ] {
        for v in req.headers().get_all(name) {
            out = out.header(name, v);
        }
    }
    let out = out
        .body(Empty::<Bytes>::new())
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let record = trace.map(|c| (deps.trace.clone(), c.trace_id));
    match upgrade::client_upgrade(tcp, out)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?
    {
        ClientUpgrade::Switched { parts, io } => {
            exchange.status = parts.status.as_u16();
            exchange.negotiated_protocol = parts
                .headers
                .get(if websocket {
                    "sec-websocket-protocol"
                } else {
                    PROTOCOL_HEADER
                })
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            hop.request = Some(exchange);
            let counter = Arc::new(ByteCounter::default());
            let io = Counted::new(io, counter.clone());
            let done = move || {
                if let Some((recorder, trace_id)) = record {
                    hop.bytes_to_callee = counter.written.load(Ordering::Relaxed);
                    hop.bytes_to_caller = counter.read.load(Ordering::Relaxed);
                    hop.closed = "both sides closed; splice ended".into();
                    hop.finish_at(counter.last_read());
                    recorder.hop(&trace_id, hop);
                }
            };
            Ok(upgrade::relay_switched(req, &parts, io, done)
                .body(Full::new(Bytes::new()).boxed())
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())))
        }
        ClientUpgrade::Refused { parts, body } => {
            exchange.status = parts.status.as_u16();
            hop.request = Some(exchange);
            hop.error = Some(String::from_utf8_lossy(&body).trim().to_string());
            hop.finish();
            if let Some((recorder, trace_id)) = record {
                recorder.hop(&trace_id, hop);
            }
            let mut resp = Response::builder().status(parts.status);
            if let Some(ct) = parts.headers.get("content-type") {
                resp = resp.header("content-type", ct);
            }
            Ok(resp
                .body(Full::new(body).map_err(|e: Infallible| match e {}).boxed())
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())))
        }
    }
}
