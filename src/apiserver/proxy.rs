//! `pods/proxy`, `services/proxy` and `nodes/proxy`: any HTTP request to
//! `.../{name}/proxy/<path>` goes on to `<path>` of the pod's port, a ready pod behind the
//! service, or the node's kubelet, and the answer comes back unchanged (upstream's
//! ProxyREST with its upgrade-aware handler). `{name}` may be `name`, `name:port` or
//! `scheme:name:port`.
//!
//! Pods have no IP on a network the API server could dial (and rkind never dials into a
//! pod from the host's network namespace), so a pod's port is reached the way
//! port-forward reaches it: over mutual TLS to the pod's kubelet, which hands a
//! WebSocket port-forward (`v4.channel.k8s.io`) to the runtime's streaming server, which
//! connects inside the pod's network namespace. The proxied HTTP/1.1 exchange travels
//! in that tunnel's data channel.
//!
//! No Endpoints controller runs yet, so `services/proxy` picks the pod itself: a ready,
//! not terminating pod of the namespace that the service's selector matches, and the
//! service port's `targetPort` on it.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite::Message;
use tracing::Instrument;

use super::kinds::Strategy;
use super::status::ApiError;
use super::{ApiServer, Body, Ctx, read_body};

/// Headers that belong to one connection, not to the proxied request (RFC 9110 §7.6.1),
/// and the client's credentials for the API server, which the backend never sees.
const DROPPED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "authorization",
    "host",
];

/// `name`, `name:port` or `scheme:name:port` (upstream's `SplitSchemeNamePort`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProxyId {
    scheme: String,
    name: String,
    port: String,
}

impl ProxyId {
    fn parse(id: &str) -> Option<ProxyId> {
        let parts: Vec<&str> = id.split(':').collect();
        let (scheme, name, port) = match parts.as_slice() {
            [n] => ("", *n, ""),
            [n, p] => ("", *n, *p),
            [s, n, p] => (*s, *n, *p),
            _ => return None,
        };
        (!name.is_empty() && ["", "http", "https"].contains(&scheme)).then(|| ProxyId {
            scheme: scheme.into(),
            name: name.into(),
            port: port.into(),
        })
    }
}

/// The proxied request: method, path below `/proxy`, query, headers and body.
struct Outgoing {
    method: http::Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// Handles `{pods,services,nodes}/{id}/proxy[/<path>]`.
pub async fn serve(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    req: Request<Incoming>,
    res: &dyn Strategy,
    ns: Option<&str>,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let plural = res.def().plural.as_str();
    let target = ProxyId::parse(id).ok_or_else(|| {
        let what = match plural {
            "pods" => "pod",
            "services" => "service",
            _ => "node",
        };
        ApiError::bad_request(format!("invalid {what} request {id:?}"))
    })?;
    let marker = format!("/{id}/proxy");
    let rest = ctx
        .path
        .find(&marker)
        .map(|i| &ctx.path[i + marker.len()..])
        .unwrap_or("");
    let mut path_and_query = if rest.is_empty() {
        "/".to_string()
    } else {
        rest.to_string()
    };
    if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
        path_and_query = format!("{path_and_query}?{q}");
    }
    let mut headers = req.headers().clone();
    for h in DROPPED_HEADERS {
        headers.remove(*h);
    }
    let out = Outgoing {
        method: req.method().clone(),
        path_and_query,
        headers,
        body: read_body(req).await?,
    };
    let span = tracing::debug_span!("apiserver_proxy", resource = %plural, target = %id, path = %out.path_and_query);
    async move {
        match plural {
            "pods" => {
                let pod = get(srv, res, ns, &target.name)?;
                proxy_to_pod(srv, &pod, &target, out).await
            }
            "services" => proxy_to_service(srv, res, ns.unwrap_or("default"), &target, out).await,
            _ => proxy_to_node(srv, &target, out).await,
        }
    }
    .instrument(span)
    .await
}

fn get(
    srv: &ApiServer,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    srv.store
        .get(&res.def().key(ns, name))
        .map_err(|e| ApiError::from_store(res.def(), name, e))?
        .map(|o| res.to_view(&o))
        .ok_or_else(|| ApiError::not_found(res.def(), name))
}

/// The port of `pod` that `port` names: a number, a container port's name, or (empty)
/// the first declared container port, else the scheme's default.
fn pod_port(pod: &Value, port: &str, scheme: &str) -> Result<u16, ApiError> {
    let ports: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .collect();
    if port.is_empty() {
        return Ok(ports
            .first()
            .and_then(|p| p["containerPort"].as_u64())
            .map(|p| p as u16)
            .unwrap_or(if scheme == "https" { 443 } else { 80 }));
    }
    if let Ok(n) = port.parse::<u16>() {
        return Ok(n);
    }
    ports
        .iter()
        .find(|p| p["name"] == port)
        .and_then(|p| p["containerPort"].as_u64())
        .map(|p| p as u16)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "pod {} has no port named {port:?}",
                pod["metadata"]["name"].as_str().unwrap_or("")
            ))
        })
}

async fn proxy_to_pod(
    srv: &Arc<ApiServer>,
    pod: &Value,
    target: &ProxyId,
    out: Outgoing,
) -> Result<Response<Body>, ApiError> {
    if target.scheme == "https" {
        return Err(ApiError::bad_request(
            "proxying to a pod over https is not supported by rkind yet",
        ));
    }
    let port = pod_port(pod, &target.port, &target.scheme)?;
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
    let running = pod["status"]["phase"] == "Running";
    // Upstream refuses a pod without an IP it may dial; here, one without a sandbox.
    if node.is_empty() || !running {
        return Err(ApiError::bad_request("address not allowed"));
    }
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let (io, errors) = pod_tunnel(srv, node, ns, name, uid, port).await?;
    let host = format!("127.0.0.1:{port}");
    http_exchange(io, &host, out).await.map_err(|e| {
        let why = errors
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let why = if why.is_empty() { e } else { why };
        ApiError::unavailable(format!("error trying to reach service: {why}"))
    })
}

/// Opens a byte stream to `port` inside the pod: a WebSocket port-forward session with
/// the kubelet whose data channel is bridged to the returned stream. What the runtime
/// writes on the error channel (a refused connection, say) is collected in the string.
async fn pod_tunnel(
    srv: &ApiServer,
    node: &str,
    ns: &str,
    name: &str,
    uid: &str,
    port: u16,
) -> Result<(tokio::io::DuplexStream, Arc<Mutex<String>>), ApiError> {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let path = format!(
        "/portForward/{}/{}/{}?port={port}",
        enc(ns),
        enc(name),
        enc(uid)
    );
    let tls = super::kubelet_proxy::connect(srv, node).await?;
    let request = Request::get(format!("wss://{node}{path}"))
        .header("host", node)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header(
            "sec-websocket-key",
            tokio_tungstenite::tungstenite::handshake::client::generate_key(),
        )
        .header("sec-websocket-protocol", crate::stream::remotecommand::V4)
        .body(())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (ws, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .map_err(|e| ApiError::unavailable(format!("error dialing backend: {e}")))?;
    let (mine, theirs) = tokio::io::duplex(64 * 1024);
    let errors = Arc::new(Mutex::new(String::new()));
    tokio::spawn(bridge(ws, theirs, errors.clone()));
    Ok((mine, errors))
}

/// Moves bytes between the port-forward session (channel 0 data, channel 1 errors,
/// each opened by the 2-byte port number) and the local end of the stream.
async fn bridge<S, L>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    local: L,
    errors: Arc<Mutex<String>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    L: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut rd, mut wr) = tokio::io::split(local);
    let from_pod = async move {
        let mut opened = [false; 2];
        while let Some(Ok(msg)) = ws_rx.next().await {
            let data = match msg {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&ch, mut payload)) = data.split_first() else {
                continue;
            };
            if let Some(seen) = opened.get_mut(usize::from(ch))
                && !*seen
            {
                *seen = true;
                payload = payload.get(2..).unwrap_or_default();
            }
            match ch {
                0 if wr.write_all(payload).await.is_err() => break,
                0 => {}
                1 => {
                    if let Ok(mut e) = errors.lock() {
                        e.push_str(&String::from_utf8_lossy(payload));
                    }
                }
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    };
    let to_pod = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match rd.read(&mut buf[1..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf[0] = 0;
            if ws_tx
                .send(Message::Binary(Bytes::copy_from_slice(&buf[..=n])))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = ws_tx.send(Message::Close(None)).await;
    };
    tokio::join!(from_pod, to_pod);
}

/// Sends `out` as one HTTP/1.1 request over `io` and streams the answer back as it is.
async fn http_exchange<T>(io: T, host: &str, out: Outgoing) -> Result<Response<Body>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::builder()
        .method(out.method)
        .uri(out.path_and_query.as_str())
        .body(Full::new(out.body))
        .map_err(|e| e.to_string())?;
    *req.headers_mut() = out.headers;
    if let Ok(h) = host.parse() {
        req.headers_mut().insert("host", h);
    }
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(stream_back(resp))
}

/// The backend's answer with its status and headers, the body streamed as it comes.
fn stream_back(resp: Response<Incoming>) -> Response<Body> {
    let (parts, mut body) = resp.into_parts();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
    tokio::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data()
                && tx.send(Ok(Frame::data(data))).await.is_err()
            {
                return;
            }
        }
    });
    let mut out = Response::new(BodyExt::boxed(StreamBody::new(ReceiverStream::new(rx))));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    for h in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "trailer",
    ] {
        out.headers_mut().remove(h);
    }
    out
}

async fn proxy_to_node(
    srv: &Arc<ApiServer>,
    target: &ProxyId,
    out: Outgoing,
) -> Result<Response<Body>, ApiError> {
    let kubelet = super::kubelet_proxy::kubelet_endpoint(srv, &target.name)?;
    let kubelet_port = kubelet.port().to_string();
    if target.port.is_empty() || target.port == kubelet_port {
        if target.scheme == "http" {
            return Err(ApiError::bad_request(format!(
                "the kubelet of node {} serves https only",
                target.name
            )));
        }
        let tls = super::kubelet_proxy::connect(srv, &target.name).await?;
        return http_exchange(tls, &target.name, out)
            .await
            .map_err(|e| ApiError::unavailable(format!("error trying to reach service: {e}")));
    }
    // Another port of the node: plain HTTP on its (loopback) address.
    let port: u16 = target
        .port
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid node request {:?}", target.name)))?;
    if target.scheme == "https" {
        return Err(ApiError::bad_request(
            "proxying to a node port over https is not supported by rkind yet",
        ));
    }
    let addr = std::net::SocketAddr::new(kubelet.ip(), port);
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
        ApiError::unavailable(format!(
            "error trying to reach service: dial tcp {addr}: {e}"
        ))
    })?;
    http_exchange(tcp, &addr.to_string(), out)
        .await
        .map_err(|e| ApiError::unavailable(format!("error trying to reach service: {e}")))
}

async fn proxy_to_service(
    srv: &Arc<ApiServer>,
    services: &dyn Strategy,
    ns: &str,
    target: &ProxyId,
    out: Outgoing,
) -> Result<Response<Body>, ApiError> {
    let svc = get(srv, services, Some(ns), &target.name)?;
    let name = target.name.as_str();
    let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    // A port number names the service port that has it; else the port's name.
    let port_name = match target.port.parse::<i64>() {
        Ok(n) => ports
            .iter()
            .find(|p| p["port"].as_i64() == Some(n))
            .map(|p| p["name"].as_str().unwrap_or("").to_string())
            .ok_or_else(|| {
                ApiError::unavailable(format!("no service port {n} found for service {name:?}"))
            })?,
        Err(_) => target.port.clone(),
    };
    let no_endpoints =
        || ApiError::unavailable(format!("no endpoints available for service {name:?}"));
    let svc_port = ports
        .iter()
        .find(|p| p["name"].as_str().unwrap_or("") == port_name)
        .ok_or_else(no_endpoints)?;
    let selector = svc["spec"]["selector"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if selector.is_empty() {
        return Err(no_endpoints());
    }
    let snap = srv.registry.snapshot();
    let pods = snap
        .find("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("no pods resource"))?;
    let (items, _) = srv
        .store
        .list(&pods.def().prefix(Some(ns)))
        .map_err(|e| ApiError::from_store(pods.def(), "", e))?;
    let pod = items
        .into_iter()
        .map(|p| pods.to_view(&p))
        .find(|p| {
            let labels = &p["metadata"]["labels"];
            selector.iter().all(|(k, v)| labels[k] == *v)
                && p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .ok_or_else(no_endpoints)?;
    let target_port = match &svc_port["targetPort"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => svc_port["port"].as_i64().unwrap_or(80).to_string(),
    };
    let to_pod = ProxyId {
        scheme: target.scheme.clone(),
        name: pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
        port: target_port,
    };
    proxy_to_pod(srv, &pod, &to_pod, out).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_split_as_upstream_splits_them() {
        let id = |s: &str| ProxyId::parse(s).map(|p| (p.scheme, p.name, p.port));
        assert_eq!(id("web"), Some(("".into(), "web".into(), "".into())));
        assert_eq!(
            id("web:8000"),
            Some(("".into(), "web".into(), "8000".into()))
        );
        assert_eq!(
            id("https:web:443"),
            Some(("https".into(), "web".into(), "443".into()))
        );
        assert_eq!(id("ftp:web:21"), None);
        assert_eq!(id(":80"), None);
        assert_eq!(id("a:b:c:d"), None);
    }

    #[test]
    fn pod_ports_by_number_name_or_first() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090}]}]}});
        assert_eq!(pod_port(&pod, "", "").unwrap(), 8080);
        assert_eq!(pod_port(&pod, "http", "").unwrap(), 8080);
        assert_eq!(pod_port(&pod, "9000", "").unwrap(), 9000);
        assert_eq!(pod_port(&pod, "nope", "").unwrap_err().code, 400);
        let bare = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(pod_port(&bare, "", "").unwrap(), 80);
    }
}
