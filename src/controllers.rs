//! The few control loops a kind cluster has that kubectl users notice: the bootstrap
//! objects (system namespaces, the `kubernetes` service) and the `default`
//! ServiceAccount in every namespace. They run as API clients, like kube-controller-manager.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::apiserver::defaults::now_rfc3339;
use crate::client::{ApiClient, ClientError};

/// Creates the objects every cluster starts with (idempotent).
pub async fn bootstrap(api: &ApiClient, api_port: u16) -> Result<(), ClientError> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        ignore_exists(api.post("/api/v1/namespaces", &body).await)?;
    }
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}]},
    });
    ignore_exists(api.post("/api/v1/namespaces/default/services", &svc).await)?;
    Ok(())
}

fn ignore_exists(r: Result<Value, ClientError>) -> Result<(), ClientError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keeps a `default` ServiceAccount in every active namespace.
pub async fn service_accounts(api: Arc<ApiClient>, shutdown: CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let stream = match api.watch("/api/v1/namespaces?watch=true").await {
            Ok(s) => s,
            Err(_) => {
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
            let ns = &ev["object"];
            if ev["type"] == "DELETED" || ns["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            let Some(name) = ns["metadata"]["name"].as_str() else {
                continue;
            };
            let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": "default", "namespace": name}});
            let path = format!("/api/v1/namespaces/{name}/serviceaccounts");
            match api.post(&path, &sa).await {
                Ok(_) => {}
                Err(e) if e.code() == 409 || e.code() == 403 || e.code() == 404 => {}
                Err(e) => tracing::warn!(namespace = %name, error = %e, "default service account"),
            }
        }
    }
}

/// Records a core/v1 Event about `obj`, as components do for `kubectl describe`.
pub async fn record_event(
    api: &ApiClient,
    obj: &Value,
    kind_type: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let now = now_rfc3339();
    let ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{name}."), "namespace": ns},
        "involvedObject": {
            "apiVersion": obj["apiVersion"].as_str().unwrap_or("v1"),
            "kind": obj["kind"].as_str().unwrap_or("Pod"),
            "name": name,
            "namespace": ns,
            "uid": obj["metadata"]["uid"],
            "resourceVersion": obj["metadata"]["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "type": kind_type,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": "",
    });
    if let Err(e) = api
        .post(&format!("/api/v1/namespaces/{ns}/events"), &ev)
        .await
    {
        tracing::debug!(error = %e, "event not recorded");
    }
}
