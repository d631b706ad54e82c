//! The API server → kubelet hop: finds the pod's node and its kubelet endpoint from the
//! Node object and connects over mutual TLS (the kubelet's serving certificate is
//! verified against the cluster CA — stricter than upstream's default — and the API
//! server presents its kubelet-client certificate). Used by `pods/log` now and by
//! exec/attach/port-forward with the streaming runtime.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;

use super::status::ApiError;
use super::{ApiServer, Body};

/// Where a node's kubelet listens, read from its Node object.
pub fn kubelet_endpoint(srv: &ApiServer, node_name: &str) -> Result<SocketAddr, ApiError> {
    let snap = srv.registry.snapshot();
    let nodes = snap
        .find("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("no nodes resource"))?
        .def();
    let node = srv
        .store
        .get(&nodes.key(None, node_name))
        .map_err(|e| ApiError::from_store(nodes, node_name, e))?
        .ok_or_else(|| ApiError::not_found(nodes, node_name))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .filter(|p| *p > 0 && *p < 65536)
        .ok_or_else(|| ApiError::internal(format!("node {node_name} has no kubelet endpoint")))?;
    let ip = node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or("127.0.0.1");
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| ApiError::internal(format!("node {node_name} has a bad InternalIP {ip:?}")))?;
    // Only loopback: rkind never sends traffic off the machine.
    if !ip.is_loopback() {
        return Err(ApiError::internal(format!(
            "node {node_name} kubelet address {ip} is not on this machine"
        )));
    }
    Ok(SocketAddr::new(ip, port as u16))
}

/// Opens a mutual-TLS connection to the kubelet of `node_name`.
pub async fn connect(srv: &ApiServer, node_name: &str) -> Result<TlsStream<TcpStream>, ApiError> {
    let addr = kubelet_endpoint(srv, node_name)?;
    let tls = srv
        .kubelet_tls
        .clone()
        .ok_or_else(|| ApiError::unavailable("no kubelet client credentials configured"))?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| {
        ApiError::unavailable(format!("error dialing backend: dial tcp {addr}: {e}"))
    })?;
    let _ = tcp.set_nodelay(true);
    TlsConnector::from(tls)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .map_err(|e| ApiError::unavailable(format!("error dialing backend: tls: {e}")))
}

/// Proxies a plain (non-upgrade) GET to the kubelet and streams the answer back.
pub async fn proxy_get(
    srv: &Arc<ApiServer>,
    node_name: &str,
    path_and_query: &str,
) -> Result<Response<Body>, ApiError> {
    let span =
        tracing::debug_span!("apiserver_to_kubelet", node = %node_name, path = %path_and_query);
    async move {
        let tls = connect(srv, node_name).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ApiError::unavailable(format!("kubelet handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::get(path_and_query)
            .header("host", node_name)
            .body(Empty::<Bytes>::new())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ApiError::unavailable(format!("kubelet request: {e}")))?;
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .cloned()
            .unwrap_or_else(|| http::HeaderValue::from_static("text/plain"));
        if !status.is_success() {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let msg = v["message"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            return Err(match status {
                StatusCode::NOT_FOUND => ApiError::bad_request(msg),
                _ => ApiError::bad_request(msg),
            });
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
        let mut body = resp.into_body();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data()
                    && tx.send(Ok(Frame::data(data))).await.is_err()
                {
                    return;
                }
            }
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", ct)
            .body(StreamBody::new(ReceiverStream::new(rx)).boxed())
            .map_err(|e| ApiError::internal(e.to_string()))
    }
    .instrument(span)
    .await
}
