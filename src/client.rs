//! A small HTTPS client of the API server, used by the kubelet's writes (node status,
//! lease, pod status) and by the CLI and tools. It speaks to the API server's real
//! endpoint over h2 with the caller's own client certificate, exactly like a real kubelet
//! does: there is no in-process shortcut to the store. Watches and caches of the
//! components go through [`crate::controller`] (kube-rs) instead.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Errors of API calls.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or TLS failed.
    #[error("cannot reach the API server at {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// HTTP-level failure.
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    /// Building the request failed.
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    /// The server answered with an error Status.
    #[error("{code} {reason}: {message}")]
    Status {
        /// HTTP code.
        code: u16,
        /// Status reason.
        reason: String,
        /// Status message.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("decoding the response: {0}")]
    Decode(#[from] serde_json::Error),
}

impl ClientError {
    /// The HTTP code of a Status error (0 otherwise).
    pub fn code(&self) -> u16 {
        match self {
            ClientError::Status { code, .. } => *code,
            _ => 0,
        }
    }
}

/// A client bound to one API server and one identity.
pub struct ApiClient {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    /// A bearer token sent with every request (a service account's), for identities that
    /// have no client certificate.
    bearer: Option<String>,
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl ApiClient {
    /// A client for the server at `addr`, authenticating with the identity in `tls`.
    pub fn new(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Self {
        let mut cfg = (*tls).clone();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        ApiClient {
            addr,
            tls: Arc::new(cfg),
            bearer: None,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// The same client, also sending `token` as `Authorization: Bearer` (use it with a
    /// TLS configuration that has no client certificate: a certificate wins, as upstream).
    pub fn with_bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let mut slot = self.conn.lock().await;
        if let Some(s) = slot.as_ref()
            && !s.is_closed()
        {
            return Ok(s.clone());
        }
        let io = |source| ClientError::Connect {
            addr: self.addr,
            source,
        };
        let tcp = TcpStream::connect(self.addr).await.map_err(io)?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(io)?;
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        *slot = Some(sender.clone());
        Ok(sender)
    }

    /// Sends one request and returns the status and the whole body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let resp = self.send(method, path, content_type, body).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        let mut last = None;
        // One retry on a fresh connection if the cached one went away.
        for _ in 0..2 {
            let mut sender = self.sender().await?;
            let mut b = Request::builder()
                .method(method.clone())
                .uri(format!("https://{}{}", self.addr, path))
                .header("accept", "application/json")
                .header("user-agent", concat!("rkind/", env!("CARGO_PKG_VERSION")));
            if let Some(ct) = content_type {
                b = b.header("content-type", ct);
            }
            if let Some(token) = &self.bearer {
                b = b.header("authorization", format!("Bearer {token}"));
            }
            let req = b.body(Full::new(Bytes::from(body.clone().unwrap_or_default())))?;
            match sender.send_request(req).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    *self.conn.lock().await = None;
                    last = Some(e);
                }
            }
        }
        Err(ClientError::Http(last.expect("loop ran")))
    }

    /// Sends a request with a JSON body (or none) and decodes the JSON answer; error
    /// Statuses become [`ClientError::Status`].
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let bytes = body.map(serde_json::to_vec).transpose()?;
        let (status, resp) = self
            .request(method, path, Some(content_type), bytes)
            .await?;
        let v: Value = serde_json::from_slice(&resp).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(ClientError::Status {
                code: status.as_u16(),
                reason: v["reason"].as_str().unwrap_or("").to_string(),
                message: v["message"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| String::from_utf8_lossy(&resp).into_owned()),
            });
        }
        Ok(v)
    }

    /// GET a JSON document.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, path, "application/json", None).await
    }

    /// POST a JSON object.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.json(Method::POST, path, "application/json", Some(body))
            .await
    }

    /// PUT a JSON object.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.json(Method::PUT, path, "application/json", Some(body))
            .await
    }

    /// PATCH with a JSON merge patch.
    pub async fn merge_patch(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.json(
            Method::PATCH,
            path,
            "application/merge-patch+json",
            Some(body),
        )
        .await
    }

    /// DELETE with optional DeleteOptions.
    pub async fn delete(&self, path: &str, options: Option<&Value>) -> Result<Value, ClientError> {
        self.json(Method::DELETE, path, "application/json", options)
            .await
    }

    /// Opens a watch (`path` must include `watch=true`) and yields its events as JSON
    /// values until the server ends the stream.
    pub async fn watch(
        &self,
        path: &str,
    ) -> Result<impl Stream<Item = Result<Value, ClientError>> + use<>, ClientError> {
        let resp = self.send(Method::GET, path, None, None).await?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.into_body().collect().await?.to_bytes();
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(ClientError::Status {
                code: status.as_u16(),
                reason: v["reason"].as_str().unwrap_or("").to_string(),
                message: v["message"].as_str().unwrap_or("").to_string(),
            });
        }
        let body = resp.into_body();
        Ok(futures_util::stream::unfold(
            (body, Vec::<u8>::new()),
            |(mut body, mut buf)| async move {
                loop {
                    if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        let item =
                            serde_json::from_slice::<Value>(&line).map_err(ClientError::from);
                        return Some((item, (body, buf)));
                    }
                    match body.frame().await {
                        Some(Ok(f)) => {
                            if let Ok(d) = f.into_data() {
                                buf.extend_from_slice(&d);
                            }
                        }
                        Some(Err(e)) => return Some((Err(ClientError::Http(e)), (body, buf))),
                        None => return None,
                    }
                }
            },
        ))
    }
}
