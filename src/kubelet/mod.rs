//! The kubelet: registers its Node through the API server (with its own certificate),
//! keeps the Node status and its Lease fresh, watches the pods bound to it, and serves
//! its own HTTPS port (mutual TLS: only the API server's client certificate is let in).
//!
//! Running pods through the CRI runtime is the next step (see the runtime issue); until
//! then the pod worker only finishes deletions so that `kubectl delete` returns.

pub mod node;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::client::ApiClient;

/// What the kubelet needs to run.
pub struct KubeletConfig {
    /// The node name (`<cluster>-control-plane`).
    pub node_name: String,
    /// The kubelet's HTTPS port (published in the Node's daemonEndpoints).
    pub port: u16,
}

/// Registers the node and returns once it is Ready; then keeps it alive in the background.
pub async fn start(
    cfg: KubeletConfig,
    api: Arc<ApiClient>,
    shutdown: CancellationToken,
) -> Result<(), crate::client::ClientError> {
    node::register(&api, &cfg).await?;
    let a = api.clone();
    let name = cfg.node_name.clone();
    let s = shutdown.clone();
    tokio::spawn(async move { node::heartbeat(a, name, s).await });
    let a = api.clone();
    let name = cfg.node_name.clone();
    tokio::spawn(async move { pod_worker(a, name, shutdown).await });
    Ok(())
}

/// Watches the pods bound to this node. For now it finishes graceful deletions (no
/// containers run yet, so there is nothing to stop).
async fn pod_worker(api: Arc<ApiClient>, node: String, shutdown: CancellationToken) {
    let selector = format!("spec.nodeName%3D{node}");
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let path = format!("/api/v1/pods?watch=true&fieldSelector={selector}&allowWatchBookmarks=true");
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
            let obj = &ev["object"];
            if ev["type"] == "DELETED" || ev["type"] == "BOOKMARK" {
                continue;
            }
            if obj["metadata"]["deletionTimestamp"].is_string() {
                finalize_deletion(&api, obj).await;
            }
        }
    }
}

async fn finalize_deletion(api: &ApiClient, pod: &Value) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let opts = json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}});
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    if let Err(e) = api.delete(&path, Some(&opts)).await {
        if e.code() != 404 && e.code() != 409 {
            tracing::warn!(pod = %name, error = %e, "kubelet could not finish the deletion");
        }
    }
}
