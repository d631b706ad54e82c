//! The kubelet: registers its Node through the API server (with its own certificate),
//! keeps the Node status and its Lease fresh, watches the pods bound to it, and serves
//! its own HTTPS port (mutual TLS: only the API server's client certificate is let in).
//!
//! Pods run through the CRI runtime: the kubelet is only ever a gRPC client of it
//! (see [`pods`]).

pub mod logs;
pub mod node;
pub mod pods;
pub mod server;
pub mod streaming;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::client::ApiClient;

/// What the kubelet needs to run.
pub struct KubeletConfig {
    /// The node name (`<cluster>-control-plane`).
    pub node_name: String,
    /// The kubelet's HTTPS port (published in the Node's daemonEndpoints).
    pub port: u16,
    /// The runtime's CRI socket.
    pub cri_socket: std::path::PathBuf,
    /// Where pod directories (volumes, logs) live.
    pub pods_dir: std::path::PathBuf,
}

/// Registers the node and returns once it is Ready; then keeps it alive in the background.
pub async fn start(
    cfg: KubeletConfig,
    api: Arc<ApiClient>,
    shutdown: CancellationToken,
) -> Result<(), KubeletError> {
    let channel = pods::connect_cri(&cfg.cri_socket).await.map_err(|e| {
        KubeletError::Cri(format!("connecting to {}: {e}", cfg.cri_socket.display()))
    })?;
    let mut runtime =
        crate::runtime::cri::runtime_service_client::RuntimeServiceClient::new(channel.clone());
    let version = runtime
        .version(crate::runtime::cri::VersionRequest {
            version: "v1".into(),
        })
        .await
        .map_err(|e| KubeletError::Cri(format!("CRI Version: {}", e.message())))?
        .into_inner();
    let runtime_version = format!("{}://{}", version.runtime_name, version.runtime_version);
    // What the runtime reports beyond readiness (e.g. whether limits are enforced).
    let runtime_conditions: Vec<node::RuntimeCondition> = runtime
        .status(crate::runtime::cri::StatusRequest { verbose: false })
        .await
        .map(|r| {
            r.into_inner()
                .status
                .map(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.r#type != "RuntimeReady" && c.r#type != "NetworkReady")
                .map(|c| node::RuntimeCondition {
                    kind: c.r#type,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                })
                .collect()
        })
        .unwrap_or_default();
    node::register(&api, &cfg, &runtime_version, &runtime_conditions).await?;
    let a = api.clone();
    let name = cfg.node_name.clone();
    let s = shutdown.clone();
    tokio::spawn(async move { node::heartbeat(a, name, runtime_conditions, s).await });
    let env = pods::PodEnv {
        api: api.clone(),
        runtime,
        images: crate::runtime::cri::image_service_client::ImageServiceClient::new(channel),
        node: cfg.node_name.clone(),
        pods_dir: cfg.pods_dir.clone(),
    };
    let manager = pods::PodManager::new(env, shutdown.clone());
    let name = cfg.node_name.clone();
    tokio::spawn(async move { pod_watch(api, name, manager, shutdown).await });
    Ok(())
}

/// Errors starting the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The API server refused or could not be reached.
    #[error(transparent)]
    Api(#[from] crate::client::ClientError),
    /// The CRI runtime could not be reached.
    #[error("container runtime: {0}")]
    Cri(String),
}

/// Watches the pods bound to this node and hands each change to its pod worker.
async fn pod_watch(
    api: Arc<ApiClient>,
    node: String,
    mut manager: pods::PodManager,
    shutdown: CancellationToken,
) {
    let selector = format!("spec.nodeName%3D{node}");
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let path =
            format!("/api/v1/pods?watch=true&fieldSelector={selector}&allowWatchBookmarks=true");
        let stream = match api.watch(&path).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "kubelet pod watch failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        };
        tokio::pin!(stream);
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = stream.next() => ev,
            };
            let Some(Ok(ev)) = ev else { break };
            if ev["type"] == "DELETED" {
                // Gone from the API without the kubelet's final delete (forced): stop it.
                manager.removed(ev["object"].clone()).await;
                continue;
            }
            if ev["type"] == "BOOKMARK" || ev["type"] == "ERROR" {
                continue;
            }
            manager.update(ev["object"].clone()).await;
        }
    }
}
