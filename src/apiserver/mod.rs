//! The API server: HTTPS (h2 and HTTP/1.1 over rustls), client-certificate
//! authentication, a small authoriser, and routing to discovery, OpenAPI and the
//! resource handlers.

pub mod admission;
pub mod apply;
pub mod authn;
pub mod authz;
pub mod cel;
pub mod crd;
pub mod debug_traces;
pub mod defaults;
pub mod deletion;
pub mod discovery;
pub mod eviction;
pub mod handlers;
pub mod kinds;
pub mod kubelet_proxy;
pub mod live;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod openapi_v2;
pub mod protobuf;
pub mod proxy;
pub mod registry;
pub mod scale;
pub mod selectors;
pub mod smp;
pub mod status;
pub mod streaming;
pub mod table;
pub mod validation;
pub mod watch;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::pki::{UserInfo, user_from_cert};
use crate::store::Store;
use crate::stream::listener::{self as conn_limits, PendingGate};
use kinds::Kind;
use registry::{Registry, Snapshot};
use status::ApiError;

/// The response body type of every handler (full bodies and watch/log streams).
pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted (upstream's limit is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The API server's shared state.
pub struct ApiServer {
    /// The object store.
    pub store: Arc<Store>,
    /// `host:port` clients reach this server at (for discovery's serverAddress).
    pub advertise: String,
    /// Cancelled when the cluster shuts down (ends watches and the accept loop).
    pub shutdown: CancellationToken,
    /// TLS client config for the API server → kubelet hop (trusts the cluster CA,
    /// presents the apiserver-kubelet-client certificate).
    pub kubelet_tls: Option<Arc<rustls::ClientConfig>>,
    /// The cluster's trace ring (exec/attach/port-forward sessions, hop by hop).
    pub trace: Arc<crate::trace::Recorder>,
    /// The kinds served, changed at run time as CustomResourceDefinitions come and go.
    pub registry: Registry,
    /// The admission plugins every write passes.
    pub admission: admission::Chain,
    /// Request counts and latencies for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Client-certificate and service-account-token authentication.
    pub authn: authn::Authenticator,
    /// Who may do what (RBAC, and rkind's own components).
    pub authz: authz::Authorizer,
}

/// One parsed request, as the handlers see it.
#[derive(Clone)]
pub struct Ctx {
    /// HTTP method.
    pub method: Method,
    /// URL path.
    pub path: String,
    /// Query parameters (last value wins; `multi` keeps all).
    pub query: HashMap<String, String>,
    /// All query values, for repeated parameters such as `command`.
    pub multi: Vec<(String, String)>,
    /// Request headers.
    pub headers: http::HeaderMap,
    /// The authenticated user.
    pub user: UserInfo,
}

impl Ctx {
    /// A query parameter.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A header as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Whether the client asked for a server-side Table.
    pub fn wants_table(&self) -> bool {
        let accept = self.header("accept");
        accept.contains("as=Table") && accept.contains("g=meta.k8s.io")
    }
}

/// Where a request path leads.
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`.
    Api,
    /// `/apis`.
    Apis,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<g>/<v>`.
    GroupVersion(String, String),
    /// `/openapi/v2` (Swagger 2.0, protobuf or JSON).
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiRoot,
    /// `/openapi/v3/<gv path>`.
    OpenApiDoc(String),
    /// A resource collection, object or subresource.
    Resource {
        /// The resource's kind.
        res: Kind,
        /// Namespace from the path.
        namespace: Option<String>,
        /// Object name.
        name: Option<String>,
        /// Subresource.
        sub: Option<String>,
    },
    /// `/debug/rkind/traces` (exec-chain traces, admins only).
    DebugTraces,
    /// `/metrics` (Prometheus text).
    Metrics,
    /// `/.well-known/openid-configuration` (public).
    OidcConfig,
    /// `/openid/v1/jwks` (public).
    Jwks,
    /// Nothing here.
    NotFound,
}

/// Parses a request path into a [`Route`], against the kinds served in `snap`.
pub fn route(path: &str, snap: &Snapshot) -> Route {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        [h, ..] if ["healthz", "livez", "readyz"].contains(h) => Route::Health,
        [".well-known", "openid-configuration"] => Route::OidcConfig,
        ["openid", "v1", "jwks"] => Route::Jwks,
        ["api"] => Route::Api,
        ["apis"] => Route::Apis,
        ["apis", g] => Route::Group(g.to_string()),
        ["api", v] => Route::GroupVersion(String::new(), v.to_string()),
        ["apis", g, v] => Route::GroupVersion(g.to_string(), v.to_string()),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["debug", "rkind", "traces"] => Route::DebugTraces,
        ["metrics"] => Route::Metrics,
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", rest @ ..] => Route::OpenApiDoc(rest.join("/")),
        ["api", v, rest @ ..] => resource_route(snap, "", v, rest),
        ["apis", g, v, rest @ ..] => resource_route(snap, g, v, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(snap: &Snapshot, group: &str, version: &str, rest: &[&str]) -> Route {
    let find = |plural: &str| snap.find(group, version, plural);
    let mk = |plural: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| match find(
        plural,
    ) {
        Some(res) if res.def().namespaced || ns.is_none() => Route::Resource {
            res: res.clone(),
            namespace: ns.map(String::from),
            name: name.map(String::from),
            sub: sub.map(String::from),
        },
        _ => Route::NotFound,
    };
    let namespaced_plural = |p: &str| find(p).is_some_and(|r| r.def().namespaced);
    match rest {
        ["namespaces", ns, plural] if namespaced_plural(plural) => mk(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] if namespaced_plural(plural) => {
            mk(plural, Some(ns), Some(name), None)
        }
        ["namespaces", ns, plural, name, sub] if namespaced_plural(plural) => {
            mk(plural, Some(ns), Some(name), Some(sub))
        }
        // `proxy` takes the rest of the path (`.../pods/web:80/proxy/some/page`).
        ["namespaces", ns, plural, name, "proxy", _, ..] if namespaced_plural(plural) => {
            mk(plural, Some(ns), Some(name), Some("proxy"))
        }
        [plural, name, "proxy", _, ..] => match find(plural) {
            Some(r) if !r.def().namespaced => mk(plural, None, Some(name), Some("proxy")),
            _ => Route::NotFound,
        },
        [plural] => mk(plural, None, None, None),
        [plural, name] => match find(plural) {
            Some(r) if !r.def().namespaced => mk(plural, None, Some(name), None),
            _ => Route::NotFound,
        },
        [plural, name, sub] => match find(plural) {
            Some(r) if !r.def().namespaced => mk(plural, None, Some(name), Some(sub)),
            _ => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

/// A JSON response.
pub fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    json_response_ct(code, body, "application/json")
}

/// A JSON response with a specific Content-Type.
pub fn json_response_ct(code: StatusCode, body: &Value, content_type: &str) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .body(full(bytes))
        .unwrap_or_else(|_| Response::new(full(Vec::new())))
}

/// A plain-text response.
pub fn text_response(code: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(text.as_bytes().to_vec()))
        .unwrap_or_else(|_| Response::new(full(Vec::new())))
}

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// The error response for `e`.
pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.status_code(), &e.to_status())
}

/// The `/version` document. The minor version decides which kubectl the system's
/// dispatcher runs, so it must be a real one.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": crate::KUBE_MINOR,
        "gitVersion": crate::KUBE_GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": format!("linux/{}", crate::go_arch()),
    })
}

impl ApiServer {
    /// Accepts TLS connections on `listener` until shutdown, serving each with hyper's
    /// auto (h2 / HTTP/1.1 with upgrades) connection builder. Connections without an
    /// accepted client certificate stay in a [`PendingGate`] for their whole life (they
    /// may only read the public endpoints), so idle anonymous sockets cannot exhaust the
    /// process's descriptors (see [`crate::stream::listener`]).
    pub async fn serve(self: Arc<Self>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
        let acceptor = TlsAcceptor::from(tls);
        let graceful = GracefulShutdown::new();
        let gate = PendingGate::new(conn_limits::MAX_PENDING);
        let handshake_timeout = conn_limits::handshake_timeout();
        loop {
            let (tcp, peer) = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let ticket = gate.admit();
            let acceptor = acceptor.clone();
            let me = self.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls =
                    match conn_limits::tls_handshake(&acceptor, tcp, &ticket, handshake_timeout)
                        .await
                    {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    };
                let (tcp, conn) = tls.get_ref();
                let cert = conn.peer_certificates().and_then(|c| c.first());
                let user = cert.and_then(user_from_cert);
                // Who connected, for the traces of exec sessions on this connection.
                let connection = crate::trace::Connection {
                    transport: match conn.protocol_version() {
                        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3 over TCP".into(),
                        Some(v) => format!("{v:?} over TCP"),
                        None => "TLS over TCP".into(),
                    },
                    caller: peer.to_string(),
                    callee: tcp.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                    caller_subject: cert.and_then(crate::pki::subject_of),
                    callee_subject: None,
                };
                // Authenticated: no longer pending.
                let ticket = if user.is_some() {
                    drop(ticket);
                    None
                } else {
                    Some(ticket)
                };
                // A connection whose requests carry a valid bearer token leaves the gate
                // on its first such request (it is no longer anonymous); the eviction
                // signal is taken now, and never fires once the ticket is dropped.
                let evicted = ticket.as_ref().map(|t| t.evicted());
                let held = Arc::new(std::sync::Mutex::new(ticket));
                let svc = service_fn(move |mut req: Request<Incoming>| {
                    let me = me.clone();
                    let mut user = user.clone();
                    let held = held.clone();
                    let mut refused = false;
                    if user.is_none() {
                        let header = req
                            .headers()
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(authn::bearer)
                            .map(String::from);
                        if let Some(token) = header {
                            let _span = tracing::debug_span!("bearer_token_authn").entered();
                            match me.authn.bearer_user(&me, &token) {
                                Ok(u) => {
                                    user = Some(u);
                                    held.lock().unwrap_or_else(|e| e.into_inner()).take();
                                }
                                Err(e) => {
                                    tracing::debug!(%peer, error = %e, "bearer token refused");
                                    refused = true;
                                }
                            }
                        }
                    }
                    req.extensions_mut().insert(connection.clone());
                    async move {
                        if refused {
                            return Ok(error_response(&ApiError::unauthorized()));
                        }
                        if let Some((code, body)) = conn_limits::oversized(&req) {
                            return Ok::<_, Infallible>(
                                Response::builder()
                                    .status(code)
                                    .header(header::CONTENT_TYPE, "application/json")
                                    .body(full(body))
                                    .unwrap_or_else(|_| Response::new(full(Vec::new()))),
                            );
                        }
                        Ok::<_, Infallible>(me.handle(req, user, peer).await)
                    }
                });
                let builder = conn_limits::http_builder();
                let conn = builder
                    .serve_connection_with_upgrades(
                        TokioIo::new(conn_limits::StatusOnParseError::new(tls)),
                        svc,
                    )
                    .into_owned();
                let served = watcher.watch(conn);
                match evicted {
                    Some(evicted) => {
                        tokio::select! {
                            _ = served => {}
                            _ = evicted => {
                                tracing::debug!(%peer, "anonymous connection closed to make room");
                            }
                        }
                    }
                    None => {
                        let _ = served.await;
                    }
                }
            });
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), graceful.shutdown()).await;
    }

    /// Handles one request: authentication, authorisation, routing.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        user: Option<UserInfo>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let span = tracing::debug_span!("kubectl_to_apiserver", method = %req.method(), path = %req.uri().path(), %peer);
        async move {
            let path = req.uri().path().to_string();
            let snap = self.registry.snapshot();
            let r = route(&path, &snap);
            let public = matches!(
                r,
                Route::Version | Route::Health | Route::OidcConfig | Route::Jwks
            );
            let user = user.map(authn::authenticated);
            let Some(user) = user else {
                if public {
                    return self.public(&r);
                }
                return error_response(&ApiError::unauthorized());
            };
            if public {
                return self.public(&r);
            }
            let user = match authz::impersonation::apply(&self.authz, user, req.headers()) {
                Ok(u) => u,
                Err(e) => return error_response(&e),
            };
            let watch = req.uri().query().is_some_and(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .any(|(k, v)| k == "watch" && (v == "true" || v == "1"))
            });
            let attrs = authz::Attributes::of_request(&r, req.method(), &path, watch);
            if let authz::Decision::Deny(reason) = self.authz.authorize(&user, &attrs) {
                let mut message = attrs.forbidden_message(&user);
                if !reason.is_empty() {
                    message = format!("{message}: {reason}");
                }
                return error_response(&ApiError::forbidden(message));
            }
            let multi: Vec<(String, String)> = req
                .uri()
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default();
            let ctx = Ctx {
                method: req.method().clone(),
                path,
                query: multi.iter().cloned().collect(),
                multi,
                headers: req.headers().clone(),
                user,
            };
            let labels = match &r {
                Route::Resource {
                    res,
                    namespace,
                    name,
                    sub,
                } => {
                    let d = res.def();
                    Some(metrics::RequestLabels::new(
                        &ctx.method,
                        d,
                        sub.as_deref(),
                        namespace.as_deref(),
                        name.as_deref(),
                        matches!(ctx.q("watch"), Some("true" | "1")),
                    ))
                }
                _ => None,
            };
            let started = std::time::Instant::now();
            let resp = match self.dispatch(r, &snap, ctx, req).await {
                Ok(resp) => resp,
                Err(e) => error_response(&e),
            };
            if let Some(labels) = labels {
                self.metrics
                    .observe(labels, resp.status().as_u16(), started.elapsed());
            }
            resp
        }
        .instrument(span)
        .await
    }

    fn public(&self, r: &Route) -> Response<Body> {
        match r {
            Route::Version => json_response(StatusCode::OK, &version_info()),
            Route::OidcConfig => json_response(StatusCode::OK, &self.authn.openid_configuration()),
            Route::Jwks => json_response_ct(
                StatusCode::OK,
                &self.authn.signer.jwks(),
                "application/jwk-set+json",
            ),
            _ => text_response(StatusCode::OK, "ok"),
        }
    }

    async fn dispatch(
        self: &Arc<Self>,
        r: Route,
        snap: &Snapshot,
        ctx: Ctx,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        let get_only = |ctx: &Ctx| {
            if ctx.method == Method::GET {
                Ok(())
            } else {
                Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({})",
                    ctx.method
                )))
            }
        };
        match r {
            Route::Api => {
                get_only(&ctx)?;
                if let Some(v) = discovery::wants_aggregated(ctx.header("accept")) {
                    Ok(json_response_ct(
                        StatusCode::OK,
                        &discovery::aggregated(snap, true, v),
                        &discovery::aggregated_content_type(v),
                    ))
                } else {
                    Ok(json_response(
                        StatusCode::OK,
                        &discovery::api_versions(&self.advertise),
                    ))
                }
            }
            Route::Apis => {
                get_only(&ctx)?;
                if let Some(v) = discovery::wants_aggregated(ctx.header("accept")) {
                    Ok(json_response_ct(
                        StatusCode::OK,
                        &discovery::aggregated(snap, false, v),
                        &discovery::aggregated_content_type(v),
                    ))
                } else {
                    Ok(json_response(
                        StatusCode::OK,
                        &discovery::api_group_list(snap),
                    ))
                }
            }
            Route::Group(g) => {
                get_only(&ctx)?;
                discovery::api_group(snap, &g)
                    .map(|v| json_response(StatusCode::OK, &v))
                    .ok_or_else(ApiError::path_not_found)
            }
            Route::GroupVersion(g, v) => {
                get_only(&ctx)?;
                discovery::resource_list(snap, &g, &v)
                    .map(|d| json_response(StatusCode::OK, &d))
                    .ok_or_else(ApiError::path_not_found)
            }
            Route::OpenApiV2 => {
                get_only(&ctx)?;
                if ctx.header("accept").contains("protobuf") {
                    let bytes = snap
                        .derived
                        .openapi_v2_protobuf
                        .get_or_init(|| Bytes::from(openapi_v2::encode_document(openapi::v2(snap))))
                        .clone();
                    return Response::builder()
                        .status(StatusCode::OK)
                        .header(header::CONTENT_TYPE, openapi_v2::CONTENT_TYPE)
                        .body(full(bytes))
                        .map_err(|e| ApiError::internal(e.to_string()));
                }
                Ok(json_response(StatusCode::OK, openapi::v2(snap)))
            }
            Route::OpenApiRoot => {
                get_only(&ctx)?;
                Ok(json_response(StatusCode::OK, &openapi::get(snap).root()))
            }
            Route::OpenApiDoc(p) => {
                get_only(&ctx)?;
                openapi::get(snap)
                    .doc(&p)
                    .map(|d| json_response(StatusCode::OK, d))
                    .ok_or_else(ApiError::path_not_found)
            }
            Route::Resource {
                res,
                namespace,
                name,
                sub,
            } => {
                // Upstream negotiates the response type before acting (406 has no effect).
                if sub.as_deref().is_none_or(|s| s == "status") {
                    negotiate::check_acceptable(&ctx)?;
                }
                handlers::resource(self, &ctx, req, res, namespace, name, sub).await
            }
            Route::Version | Route::Health | Route::OidcConfig | Route::Jwks => Ok(self.public(&r)),
            Route::DebugTraces => debug_traces::serve(self, &ctx),
            Route::Metrics => {
                get_only(&ctx)?;
                Response::builder()
                    .status(StatusCode::OK)
                    .header(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )
                    .body(full(self.metrics.render()))
                    .map_err(|e| ApiError::internal(e.to_string()))
            }
            Route::NotFound => Err(ApiError::path_not_found()),
        }
    }
}

/// Reads a request body up to [`MAX_BODY`] bytes (413 beyond).
pub async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::too_large(MAX_BODY))
            } else {
                Err(ApiError::bad_request(format!(
                    "error reading request body: {e}"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let reg = Registry::builtin();
        let snap = reg.snapshot();
        let route = |p: &str| super::route(p, &snap);
        assert!(
            matches!(route("/api/v1/namespaces/dev/pods"), Route::Resource { res, namespace: Some(ns), name: None, .. } if res.def().plural == "pods" && ns == "dev")
        );
        assert!(
            matches!(route("/api/v1/namespaces/dev"), Route::Resource { res, namespace: None, name: Some(n), .. } if res.def().plural == "namespaces" && n == "dev")
        );
        assert!(
            matches!(route("/api/v1/namespaces/dev/status"), Route::Resource { sub: Some(s), .. } if s == "status")
        );
        assert!(matches!(
            route("/api/v1/pods"),
            Route::Resource {
                namespace: None,
                name: None,
                ..
            }
        ));
        assert!(matches!(route("/api/v1/pods/x"), Route::NotFound));
        assert!(
            matches!(route("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n"), Route::Resource { res, .. } if res.def().kind == "Lease")
        );
        assert!(
            matches!(route("/api/v1/namespaces/d/pods/p/exec"), Route::Resource { sub: Some(s), .. } if s == "exec")
        );
        assert!(matches!(
            route("/apis/example.com/v1/widgets"),
            Route::NotFound
        ));
    }
}
