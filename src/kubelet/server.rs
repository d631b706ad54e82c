//! The kubelet's own HTTPS port. Mutual TLS: the client certificate must be signed by
//! the cluster CA *and* be the API server's kubelet-client certificate, as only the API
//! server may talk to a kubelet. Serves `/healthz` and `/pods` now; the streaming
//! endpoints (`/exec`, `/attach`, `/portForward`, `/containerLogs`) come with the runtime.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::pki::{APISERVER_KUBELET_CLIENT_CN, user_from_cert};

fn reply(code: StatusCode, ct: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", ct)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(req: Request<Incoming>, node: Arc<String>) -> Response<Full<Bytes>> {
    match req.uri().path() {
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
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let node = Arc::new(node);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
        };
        let acceptor = acceptor.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                tracing::debug!(%peer, "kubelet: TLS handshake refused");
                return;
            };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(user_from_cert);
            let allowed = user.as_ref().is_some_and(|u| u.name == APISERVER_KUBELET_CLIENT_CN);
            let svc = service_fn(move |req| {
                let node = node.clone();
                async move {
                    if !allowed {
                        return Ok::<_, Infallible>(reply(
                            StatusCode::FORBIDDEN,
                            "text/plain",
                            b"Forbidden: only the API server may call the kubelet\n".to_vec(),
                        ));
                    }
                    Ok(handle(req, node).await)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await;
        });
    }
}
