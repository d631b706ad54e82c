//! The API server → admission webhook hop: an HTTPS POST of an AdmissionReview to a
//! webhook's `clientConfig` — a URL, or a Service resolved through its Endpoints — trusting
//! only the configuration's `caBundle`, as upstream's webhook client does. Only loopback
//! addresses are dialled: rkind never sends traffic off the machine, and pod addresses
//! are not reachable from the API server's network namespace (a Service's endpoints are
//! usable once they are loopback, as for host-network pods).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::apiserver::ApiServer;

/// Why a webhook could not be called (upstream's `ErrCallingWebhook` reasons).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The configuration names no reachable endpoint.
    #[error("{0}")]
    Endpoint(String),
    /// Connecting, TLS or HTTP failed: `Post "<url>": <why>`.
    #[error("failed to call webhook: Post \"{url}\": {why}")]
    Post {
        /// The URL posted to.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The answer was not a usable AdmissionReview.
    #[error("{0}")]
    Response(String),
}

/// Where a webhook is reached.
struct Target {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    /// `https://host:port/path` as upstream prints it in errors.
    url: String,
    path: String,
}

fn loopback(host: &str) -> Option<IpAddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" {
        return Some(IpAddr::from([127, 0, 0, 1]));
    }
    host.parse::<IpAddr>().ok().filter(IpAddr::is_loopback)
}

/// Resolves a `url` client config.
fn url_target(url: &str) -> Result<Target, CallError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| CallError::Endpoint(format!("webhook URL {url:?} is not https")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| CallError::Endpoint(format!("webhook URL {url:?} has a bad port")))?,
        ),
        _ => (authority, 443),
    };
    let ip = loopback(host).ok_or_else(|| CallError::Post {
        url: url.to_string(),
        why: format!("dial tcp {host}:{port}: rkind only calls webhooks on loopback addresses"),
    })?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let server_name = match bare.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(bare.to_string()).map_err(|_| {
            CallError::Endpoint(format!("webhook host {bare:?} is not a valid name"))
        })?,
    };
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        server_name,
        url: url.to_string(),
        path: path.to_string(),
    })
}

/// Resolves a `service` client config: the Service's port → its target port on a loopback
/// endpoint address; TLS names the Service as `<name>.<namespace>.svc`.
fn service_target(srv: &ApiServer, svc_ref: &Value) -> Result<Target, CallError> {
    let ns = svc_ref["namespace"].as_str().unwrap_or("");
    let name = svc_ref["name"].as_str().unwrap_or("");
    let port = svc_ref["port"].as_i64().unwrap_or(443);
    let path = svc_ref["path"].as_str().unwrap_or("/").to_string();
    let host = format!("{name}.{ns}.svc");
    let url = format!("https://{host}:{port}{path}");
    let snap = srv.registry.snapshot();
    let get = |plural: &str| {
        snap.find("", "v1", plural)
            .and_then(|k| srv.store.get_shared(&k.def().key(Some(ns), name)))
    };
    let not_found = |what: &str| CallError::Post {
        url: url.clone(),
        why: format!("{what} \"{name}\" not found"),
    };
    let service = get("services").ok_or_else(|| not_found("service"))?;
    let svc_port = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == Some(port))
        .cloned()
        .ok_or_else(|| CallError::Post {
            url: url.clone(),
            why: format!("service \"{name}\" has no port {port}"),
        })?;
    let endpoints = get("endpoints").ok_or_else(|| not_found("endpoints"))?;
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        let ep_port = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| svc_port["name"].is_null() || p["name"] == svc_port["name"])
            .and_then(|p| p["port"].as_u64());
        let ip = subset["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["ip"].as_str())
            .find_map(loopback);
        if let (Some(p), Some(ip)) = (ep_port, ip) {
            return Ok(Target {
                addr: SocketAddr::new(ip, p as u16),
                server_name: ServerName::try_from(host.clone())
                    .map_err(|_| CallError::Endpoint(format!("bad service host {host:?}")))?,
                url,
                path,
            });
        }
    }
    Err(CallError::Post {
        url,
        why: format!(
            "no loopback endpoint for service \"{ns}/{name}\" (pod addresses are reachable only inside the pod network)"
        ),
    })
}

/// A TLS client that trusts `ca_bundle` (base64 of PEM certificates, as stored).
fn tls_config(ca_bundle: &Value) -> Result<Arc<rustls::ClientConfig>, CallError> {
    let pem = ca_bundle
        .as_str()
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
        .transpose()
        .map_err(|e| CallError::Endpoint(format!("caBundle is not base64: {e}")))?
        .unwrap_or_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| CallError::Endpoint(format!("caBundle: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| CallError::Endpoint(format!("caBundle: {e}")))?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| CallError::Endpoint(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Posts `review` to the webhook of `client_config` and returns the answer's JSON.
pub async fn post(
    srv: &ApiServer,
    client_config: &Value,
    review: &Value,
    timeout: Duration,
) -> Result<Value, CallError> {
    let target = match client_config["url"].as_str() {
        Some(url) => url_target(url)?,
        None => service_target(srv, &client_config["service"])?,
    };
    let secs = timeout.as_secs().max(1);
    let url = format!("{}?timeout={secs}s", target.url);
    let fail = |why: String| CallError::Post {
        url: url.clone(),
        why,
    };
    let tls = tls_config(&client_config["caBundle"])?;
    let body = serde_json::to_vec(review).map_err(|e| CallError::Endpoint(e.to_string()))?;
    let call = async {
        let tcp = TcpStream::connect(target.addr)
            .await
            .map_err(|e| fail(format!("dial tcp {}: connect: {e}", target.addr)))?;
        let _ = tcp.set_nodelay(true);
        let stream = TlsConnector::from(tls)
            .connect(target.server_name.clone(), tcp)
            .await
            .map_err(|e| fail(format!("tls: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let host = match &target.server_name {
            ServerName::DnsName(d) => d.as_ref().to_string(),
            _ => target.addr.ip().to_string(),
        };
        let req = http::Request::post(format!("{}?timeout={secs}s", target.path))
            .header("host", host)
            .header("content-type", "application/json")
            .header("accept", "application/json, */*")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| fail(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(fail(format!(
                "the server responded with the status code {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&bytes).trim()
            )));
        }
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| CallError::Response(format!("failed to decode the webhook response: {e}")))
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(fail("context deadline exceeded".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_dialled() {
        let t = url_target("https://127.0.0.1:8443/validate").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(t.path, "/validate");
        let t = url_target("https://localhost/x").unwrap();
        assert_eq!(t.addr.port(), 443);
        assert!(matches!(t.server_name, ServerName::DnsName(_)));
        let t = url_target("https://[::1]:9443").unwrap();
        assert_eq!(t.addr, "[::1]:9443".parse().unwrap());
        assert!(url_target("https://10.0.0.1:443/").is_err());
        assert!(url_target("https://example.invalid/").is_err());
        assert!(url_target("http://127.0.0.1/").is_err());
    }
}
