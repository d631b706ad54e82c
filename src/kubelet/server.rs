//! The kubelet's own HTTPS port. Mutual TLS: the client certificate must be signed by
//! the cluster CA *and* be the API server's kubelet-client certificate, as only the API
//! server may talk to a kubelet. Serves `/healthz`, `/pods`, `/containerLogs` and the
//! streaming endpoints (`/exec`, `/attach`, `/portForward`, see [`super::streaming`]).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::pki::{APISERVER_KUBELET_CLIENT_CN, user_from_cert};
use crate::stream::listener::{self as conn_limits, PendingGate};

use super::logs::{LogQuery, StreamBodyBox};
use crate::runtime::cri::runtime_service_client::RuntimeServiceClient;

fn reply(code: StatusCode, ct: &str, body: Vec<u8>) -> Response<StreamBodyBox> {
    Response::builder()
        .status(code)
        .header("content-type", ct)
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn status_reply(code: u16, message: &str) -> Response<StreamBodyBox> {
    let reason = match code {
        404 => "NotFound",
        400 => "BadRequest",
        _ => "InternalError",
    };
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    reply(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/json",
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

async fn handle(
    req: Request<Incoming>,
    node: Arc<String>,
    cri: Option<tonic::transport::Channel>,
    streaming: Arc<super::streaming::StreamingDeps>,
) -> Response<StreamBodyBox> {
    let path = req.uri().path().to_string();
    if path.starts_with("/exec/")
        || path.starts_with("/attach/")
        || path.starts_with("/portForward/")
    {
        if let Some(r) = super::streaming::handle(req, cri, &streaming).await {
            return r;
        }
        return status_reply(404, "404 page not found");
    }
    if let Some(rest) = path.strip_prefix("/containerLogs/") {
        let parts: Vec<&str> = rest.split('/').collect();
        let [ns, pod, container] = parts.as_slice() else {
            return status_reply(400, "expected /containerLogs/{namespace}/{pod}/{container}");
        };
        let Some(channel) = cri else {
            return status_reply(500, "no container runtime");
        };
        let span = tracing::debug_span!("kubelet_container_logs", pod = %format!("{ns}/{pod}"), container = %container);
        let _e = span.enter();
        let q = LogQuery::parse(req.uri().query());
        let mut rt = RuntimeServiceClient::new(channel);
        return match super::logs::find_log(&mut rt, ns, pod, container, q.previous).await {
            Ok((id, log_path)) => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/plain")
                .body(super::logs::stream(rt, id, log_path, q))
                .unwrap_or_else(|_| status_reply(500, "response")),
            Err(e) => status_reply(e.code, &e.message),
        };
    }
    match path.as_str() {
        "/healthz" => reply(StatusCode::OK, "text/plain", b"ok".to_vec()),
        "/pods" => reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_vec(&json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [], "node": *node}))
                .unwrap_or_default(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", b"404 page not found\n".to_vec()),
    }
}

/// Serves the kubelet port until shutdown.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    node: String,
    cri_socket: std::path::PathBuf,
    trace: Arc<crate::trace::Recorder>,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let node = Arc::new(node);
    let streaming = Arc::new(super::streaming::StreamingDeps {
        cri_socket: cri_socket.clone(),
        trace,
    });
    let cri = super::pods::connect_cri(&cri_socket).await.ok();
    let gate = PendingGate::new(conn_limits::MAX_PENDING);
    let handshake_timeout = conn_limits::handshake_timeout();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
        };
        let _ = tcp.set_nodelay(true);
        let ticket = gate.admit();
        let acceptor = acceptor.clone();
        let node = node.clone();
        let cri = cri.clone();
        let streaming = streaming.clone();
        tokio::spawn(async move {
            let tls = match conn_limits::tls_handshake(&acceptor, tcp, &ticket, handshake_timeout)
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "kubelet: TLS handshake refused");
                    return;
                }
            };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(user_from_cert);
            let allowed = user
                .as_ref()
                .is_some_and(|u| u.name == APISERVER_KUBELET_CLIENT_CN);
            // Only the API server is authenticated here; anyone else stays pending.
            let ticket = if allowed {
                drop(ticket);
                None
            } else {
                Some(ticket)
            };
            let svc = service_fn(move |req| {
                let node = node.clone();
                let cri = cri.clone();
                let streaming = streaming.clone();
                async move {
                    if !allowed {
                        return Ok::<_, Infallible>(reply(
                            StatusCode::FORBIDDEN,
                            "text/plain",
                            b"Forbidden: only the API server may call the kubelet\n".to_vec(),
                        ));
                    }
                    if let Some((code, body)) = conn_limits::oversized(&req) {
                        return Ok(reply(code, "application/json", body));
                    }
                    Ok(handle(req, node, cri, streaming).await)
                }
            });
            let builder = conn_limits::http_builder();
            let served = builder.serve_connection_with_upgrades(
                TokioIo::new(conn_limits::StatusOnParseError::new(tls)),
                svc,
            );
            match ticket {
                Some(t) => {
                    tokio::select! {
                        _ = served => {}
                        _ = t.evicted() => {}
                    }
                }
                None => {
                    let _ = served.await;
                }
            }
        });
    }
}
