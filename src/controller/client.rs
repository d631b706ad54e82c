//! kube-rs clients for rkind's own components, built from our pieces: the API server's
//! address, the cluster CA and the component's own client certificate or bearer token
//! (one rustls `ClientConfig` per identity, ring only), over hyper's pooled h2 client. No
//! kubeconfig file and no second TLS stack: kube-client runs without its TLS features.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube_client::client::Body;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Who a component is towards the API server: its certificate (in `tls`) or a bearer
/// token, and the user agent it announces (upstream components announce their binary's
/// name).
#[derive(Clone)]
pub struct ComponentIdentity {
    /// The rustls client configuration (presenting the component's certificate, or none
    /// when it uses a token).
    pub tls: Arc<rustls::ClientConfig>,
    /// The `User-Agent` it sends (`kube-scheduler/…`, `kubelet/…`).
    pub user_agent: String,
    /// The bearer token sent with every request, if any (replaced when it is renewed).
    pub token: Option<BearerToken>,
}

/// A bearer token shared by a client and whatever renews it.
pub type BearerToken = Arc<SharedToken>;

/// The current `Authorization` header of a token-authenticated client, and a signal
/// that the API server refused it (401), so the renewer replaces it at once instead of
/// at its timer (a deleted service account invalidates a token long before it expires).
#[derive(Debug)]
pub struct SharedToken {
    header: std::sync::RwLock<HeaderValue>,
    refused: tokio::sync::Notify,
}

impl SharedToken {
    /// A token whose header is `header` (`Bearer …`).
    pub fn new(header: HeaderValue) -> BearerToken {
        Arc::new(SharedToken {
            header: std::sync::RwLock::new(header),
            refused: tokio::sync::Notify::new(),
        })
    }

    /// The header to send.
    pub fn header(&self) -> HeaderValue {
        self.header
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Replaces the header with a renewed one.
    pub fn replace(&self, header: HeaderValue) {
        match self.header.write() {
            Ok(mut g) => *g = header,
            Err(e) => *e.into_inner() = header,
        }
    }

    /// Waits until a request with this token is refused.
    pub async fn refused(&self) {
        self.refused.notified().await;
    }
}

impl ComponentIdentity {
    /// The identity `tls` of the component `binary` (its user agent is
    /// `<binary>/<rkind's Kubernetes version>`, as upstream components announce).
    pub fn new(binary: &str, tls: Arc<rustls::ClientConfig>) -> Self {
        ComponentIdentity {
            tls,
            user_agent: format!("{binary}/{}", crate::KUBE_GIT_VERSION),
            token: None,
        }
    }

    /// The same, authenticated by `token` (with `tls` presenting no certificate).
    pub fn with_token(binary: &str, tls: Arc<rustls::ClientConfig>, token: BearerToken) -> Self {
        ComponentIdentity {
            token: Some(token),
            ..ComponentIdentity::new(binary, tls)
        }
    }
}

/// A kube-rs client for the API server at `addr`, authenticated as `identity`.
pub fn kube_client(addr: SocketAddr, identity: &ComponentIdentity) -> kube_client::Client {
    let mut tls = (*identity.tls).clone();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = Connector {
        addr,
        tls: TlsConnector::from(Arc::new(tls)),
    };
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector);
    let service = ApiService {
        http,
        base: format!("https://{addr}"),
        user_agent: HeaderValue::from_str(&identity.user_agent)
            .unwrap_or_else(|_| HeaderValue::from_static("rkind")),
        token: identity.token.clone(),
    };
    kube_client::Client::new(service, "default")
}

/// Opens TLS connections to the one API server, whatever the URI says.
#[derive(Clone)]
struct Connector {
    addr: SocketAddr,
    tls: TlsConnector,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TlsIo;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TlsIo, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let addr = self.addr;
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            let stream = tls
                .connect(ServerName::IpAddress(addr.ip().into()), tcp)
                .await?;
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            Ok(TlsIo {
                inner: TokioIo::new(stream),
                h2,
            })
        })
    }
}

/// A TLS connection as hyper's pooled client wants it (it must know whether h2 was
/// negotiated).
struct TlsIo {
    inner: TokioIo<TlsStream<TcpStream>>,
    h2: bool,
}

impl Connection for TlsIo {
    fn connected(&self) -> Connected {
        let c = Connected::new();
        if self.h2 { c.negotiated_h2() } else { c }
    }
}

impl hyper::rt::Read for TlsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TlsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// kube-client sends paths only: this makes them absolute and adds the user agent (and
/// the bearer token, if the identity has one).
#[derive(Clone)]
struct ApiService {
    http: hyper_util::client::legacy::Client<Connector, Body>,
    base: String,
    user_agent: HeaderValue,
    token: Option<BearerToken>,
}

impl tower_service::Service<Request<Body>> for ApiService {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri = format!("{}{}", self.base, path).parse::<Uri>();
        parts
            .headers
            .insert(http::header::USER_AGENT, self.user_agent.clone());
        if let Some(token) = &self.token {
            parts
                .headers
                .insert(http::header::AUTHORIZATION, token.header());
        }
        let http = self.http.clone();
        let token = self.token.clone();
        Box::pin(async move {
            parts.uri = uri?;
            let resp = http.request(Request::from_parts(parts, body)).await?;
            if resp.status() == http::StatusCode::UNAUTHORIZED
                && let Some(token) = token
            {
                token.refused.notify_one();
            }
            Ok(resp)
        })
    }
}
