//! Each controller's own credentials (upstream's `--use-service-account-credentials` and
//! its dynamic client builder): the controller manager, with its own certificate,
//! creates the controller's service account `kube-system/<name>` where missing and asks
//! for a token for it (TokenRequest, an hour long); the controller's client sends that
//! token, and a task renews it at 80 % of its life, or at once when the API server
//! refuses it (its service account was deleted, say), so the controller acts with only
//! what `system:controller:<name>` grants.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use serde_json::json;
use tracing::Instrument;

use super::client::{BearerToken, ComponentIdentity, SharedToken};
use super::{ControllerError, code, post_json};
use crate::apiserver::authz::controller_policy::NAMESPACE;

const COMPONENT: &str = "kube-controller-manager";
/// How long a controller's token lives (upstream's client builder asks for an hour).
const TOKEN_SECONDS: u64 = 3600;
/// How long to wait before trying again when a renewal failed.
const RETRY: Duration = Duration::from_secs(10);
/// The least time between two renewals.
const MIN_RENEWAL_GAP: Duration = Duration::from_secs(1);

/// Mints controllers' clients.
pub struct Credentials {
    /// The controller manager's own client.
    manager: kube_client::Client,
    api_addr: std::net::SocketAddr,
    /// TLS that trusts the cluster CA and presents no certificate.
    tls: Arc<rustls::ClientConfig>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Credentials {
    /// A builder that acts as `manager` towards the API server at `api_addr`.
    pub fn new(
        manager: kube_client::Client,
        api_addr: std::net::SocketAddr,
        tls: Arc<rustls::ClientConfig>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Credentials {
            manager,
            api_addr,
            tls,
            shutdown,
        }
    }

    /// A client acting as the service account `kube-system/<account>`, with a task that
    /// keeps its token fresh until shutdown.
    pub async fn client(
        &self,
        account: &'static str,
    ) -> Result<(kube_client::Client, tokio::task::JoinHandle<()>), ControllerError> {
        let (token, lifetime) = mint(&self.manager, account).await?;
        let shared: BearerToken = SharedToken::new(header(&token, account)?);
        let identity = ComponentIdentity::with_token(COMPONENT, self.tls.clone(), shared.clone());
        let client = super::kube_client(self.api_addr, &identity);
        let manager = self.manager.clone();
        let shutdown = self.shutdown.clone();
        let renew = tokio::spawn(
            async move {
                let mut wait = lifetime.mul_f64(0.8);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                        _ = shared.refused() => {
                            tracing::info!("token refused by the API server; renewing it now");
                        }
                    }
                    match mint(&manager, account)
                        .await
                        .and_then(|(t, l)| Ok((header(&t, account)?, l)))
                    {
                        Ok((h, l)) => {
                            shared.replace(h);
                            wait = l.mul_f64(0.8);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "token renewal failed");
                            wait = RETRY;
                        }
                    }
                    // A burst of refusals (every watch of the controller at once) asks
                    // for one renewal: let the new token reach them first.
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(MIN_RENEWAL_GAP) => {}
                    }
                    wait = wait.saturating_sub(MIN_RENEWAL_GAP);
                }
            }
            .instrument(tracing::info_span!("controller_token", account)),
        );
        Ok((client, renew))
    }
}

fn header(token: &str, account: &'static str) -> Result<HeaderValue, ControllerError> {
    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ControllerError::Credentials {
        account,
        message: "the token is not a valid header value".into(),
    })
}

/// Creates `account` if it is missing and requests a token for it; returns the token and
/// how long it lives.
async fn mint(
    manager: &kube_client::Client,
    account: &'static str,
) -> Result<(String, Duration), ControllerError> {
    let failed = |what: &str, source| ControllerError::Request {
        component: COMPONENT,
        what: format!("{what} for {NAMESPACE}/{account}"),
        source,
    };
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": account, "namespace": NAMESPACE}});
    match post_json(
        manager,
        &format!("/api/v1/namespaces/{NAMESPACE}/serviceaccounts"),
        &sa,
    )
    .await
    {
        Ok(_) => {}
        Err(e) if code(&e) == 409 => {}
        Err(e) => return Err(failed("creating the service account", e)),
    }
    let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": TOKEN_SECONDS}});
    let answer = post_json(
        manager,
        &format!("/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{account}/token"),
        &request,
    )
    .await
    .map_err(|e| failed("requesting a token", e))?;
    let token = answer["status"]["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ControllerError::Credentials {
            account,
            message: "the TokenRequest answer carries no token".into(),
        })?
        .to_string();
    let expires = answer["status"]["expirationTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let lifetime = expires
        .map(|e| e.duration_since(jiff::Timestamp::now()))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::from_secs(TOKEN_SECONDS));
    Ok((token, lifetime))
}
