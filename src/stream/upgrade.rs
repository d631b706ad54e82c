//! HTTP/1.1 upgrade plumbing shared by the API server, the kubelet and the runtime's
//! streaming server: recognising WebSocket and SPDY upgrade requests, building the 101
//! answers kubectl checks, upgrading an outgoing connection (as a client), and
//! splicing two upgraded connections together byte for byte.

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, response};
use http_body_util::{BodyExt, Empty};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Every value of header `name`, each comma-separated list split into items.
pub fn header_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    header_list(headers, name)
        .iter()
        .any(|v| v.eq_ignore_ascii_case(token))
}

/// Whether the request asks for `Connection: Upgrade`.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, "connection", "upgrade")
}

/// A WebSocket upgrade (`Upgrade: websocket`).
pub fn is_websocket(headers: &HeaderMap) -> bool {
    is_upgrade(headers) && has_token(headers, "upgrade", "websocket")
}

/// A SPDY upgrade (`Upgrade: SPDY/3.1`).
pub fn is_spdy(headers: &HeaderMap) -> bool {
    is_upgrade(headers) && has_token(headers, "upgrade", "spdy/3.1")
}

/// The WebSocket sub-protocols offered, in order.
pub fn websocket_protocols(headers: &HeaderMap) -> Vec<String> {
    header_list(headers, "sec-websocket-protocol")
}

/// The `101 Switching Protocols` answer to a WebSocket upgrade choosing `protocol`
/// (no extensions: kubectl's client rejects unsolicited ones).
pub fn websocket_101(headers: &HeaderMap, protocol: &str) -> Option<response::Builder> {
    let key = headers.get("sec-websocket-key")?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut b = response::Builder::new()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept);
    if !protocol.is_empty() {
        b = b.header("sec-websocket-protocol", protocol);
    }
    Some(b)
}

/// The `101 Switching Protocols` answer to a SPDY upgrade choosing `protocol`
/// (always echoed: without it kubectl silently assumes v1, pitfall P12).
pub fn spdy_101(protocol: &str) -> response::Builder {
    response::Builder::new()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header(super::remotecommand::PROTOCOL_HEADER, protocol)
}

/// An upgraded connection as tokio I/O.
pub type UpgradedIo = TokioIo<Upgraded>;

/// The backend's answer to an upgrade request.
pub enum ClientUpgrade {
    /// 101: the connection now speaks the new protocol.
    Switched {
        /// Status and headers of the 101.
        parts: response::Parts,
        /// The connection (bytes the backend sent after the 101 are not lost).
        io: UpgradedIo,
    },
    /// Any other status, with its body.
    Refused {
        /// Status and headers.
        parts: response::Parts,
        /// The body.
        body: Bytes,
    },
}

/// Sends `req` (an upgrade request) on a fresh HTTP/1.1 connection over `io`.
pub async fn client_upgrade<T>(io: T, req: Request<Empty<Bytes>>) -> Result<ClientUpgrade, String>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("upgrade request: {e}"))?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upgraded = hyper::upgrade::on(&mut resp)
            .await
            .map_err(|e| format!("upgrade: {e}"))?;
        let (parts, _) = resp.into_parts();
        return Ok(ClientUpgrade::Switched {
            parts,
            io: TokioIo::new(upgraded),
        });
    }
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Ok(ClientUpgrade::Refused { parts, body })
}

/// The upgrade-aware proxy step shared by the API server and the kubelet: once the
/// client's side of `req` has switched protocols, splice it with the already-upgraded
/// `backend`, then call `done` (the hop's trace record); returns the 101 to send the
/// client, carrying the backend's headers (its negotiated sub-protocol included).
pub fn relay_switched<B, Io, F>(
    req: &mut Request<B>,
    backend_parts: &response::Parts,
    backend: Io,
    done: F,
) -> response::Builder
where
    B: Send + 'static,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce() + Send + 'static,
{
    use tracing::Instrument;
    let on_client = hyper::upgrade::on(req);
    tokio::spawn(
        async move {
            if let Ok(client) = on_client.await {
                splice(TokioIo::new(client), backend).await;
            }
            done();
        }
        .in_current_span(),
    );
    let mut resp = response::Builder::new().status(StatusCode::SWITCHING_PROTOCOLS);
    for (k, v) in &backend_parts.headers {
        resp = resp.header(k, v);
    }
    resp
}

/// Copies bytes both ways until both directions ended (an EOF on one side is passed
/// on as a write shutdown to the other) or one side fails.
pub async fn splice<A, B>(mut a: A, mut b: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, 64 * 1024, 64 * 1024).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_upgrades_as_kubectl_sends_them() {
        let mut h = HeaderMap::new();
        h.insert("connection", "Upgrade".parse().expect("v"));
        h.insert("upgrade", "SPDY/3.1".parse().expect("v"));
        h.append(
            "x-stream-protocol-version",
            "v5.channel.k8s.io".parse().expect("v"),
        );
        h.append(
            "x-stream-protocol-version",
            "v4.channel.k8s.io, channel.k8s.io".parse().expect("v"),
        );
        assert!(is_spdy(&h) && !is_websocket(&h));
        assert_eq!(
            header_list(&h, "x-stream-protocol-version"),
            vec!["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]
        );
        let mut w = HeaderMap::new();
        w.insert("connection", "Upgrade".parse().expect("v"));
        w.insert("upgrade", "websocket".parse().expect("v"));
        w.insert(
            "sec-websocket-key",
            "dGhlIHNhbXBsZSBub25jZQ==".parse().expect("v"),
        );
        w.insert(
            "sec-websocket-protocol",
            "v5.channel.k8s.io".parse().expect("v"),
        );
        assert!(is_websocket(&w));
        let r = websocket_101(&w, "v5.channel.k8s.io")
            .expect("key")
            .body(())
            .expect("resp");
        // RFC 6455's worked example.
        assert_eq!(
            r.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
