//! The kubelet → runtime hop of exec / attach / port-forward: `/exec/{ns}/{pod}[/{uid}]/{container}`,
//! `/attach/...` and `/portForward/{ns}/{pod}[/{uid}]` ask the runtime over CRI gRPC
//! (`Exec`, `Attach`, `PortForward`) for a one-shot streaming URL and then proxy the
//! client's upgrade to it byte for byte (never a redirect, as upstream since 1.20).

use std::convert::Infallible;

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

use super::logs::StreamBodyBox;

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
            match stream(req, cri, kind, &parts).await {
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
) -> Result<Response<StreamBodyBox>, KubeletError> {
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
    let url = match kind {
        Kind::PortForward => {
            rt.port_forward(cri::PortForwardRequest {
                pod_sandbox_id: sandbox.id.clone(),
                port: Vec::new(),
            })
            .await
            .map_err(grpc_error)?
            .into_inner()
            .url
        }
        Kind::Exec | Kind::Attach => {
            opts.validate()
                .map_err(|m| error(StatusCode::BAD_REQUEST, m))?;
            let id = find_container(&mut rt, &sandbox.id, container, pod).await?;
            if kind == Kind::Exec {
                rt.exec(cri::ExecRequest {
                    container_id: id,
                    cmd: opts.command.clone(),
                    tty: opts.tty,
                    stdin: opts.stdin,
                    stdout: opts.stdout,
                    stderr: opts.stderr,
                })
                .await
                .map_err(grpc_error)?
                .into_inner()
                .url
            } else {
                rt.attach(cri::AttachRequest {
                    container_id: id,
                    stdin: opts.stdin,
                    tty: opts.tty,
                    stdout: opts.stdout,
                    stderr: opts.stderr,
                })
                .await
                .map_err(grpc_error)?
                .into_inner()
                .url
            }
        }
    };
    proxy_upgrade(&mut req, &url).await
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
) -> Result<Response<StreamBodyBox>, KubeletError> {
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
    let mut out = Request::builder()
        .method(req.method().clone())
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header("host", authority.as_str());
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
    match upgrade::client_upgrade(tcp, out)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?
    {
        ClientUpgrade::Switched { parts, io } => Ok(upgrade::relay_switched(req, &parts, io)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))),
        ClientUpgrade::Refused { parts, body } => {
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
