//! The scheduler: binds every unscheduled pod to a Ready node through the `binding`
//! subresource, as kube-scheduler does, speaking to the API server over HTTPS.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::client::ApiClient;

/// Runs until shutdown.
pub async fn run(api: Arc<ApiClient>, shutdown: CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let stream = match api
            .watch("/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3D")
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "scheduler watch failed; retrying");
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
            if ev["type"] == "ADDED" || ev["type"] == "MODIFIED" {
                schedule(&api, &ev["object"]).await;
            }
        }
    }
}

async fn ready_node(api: &ApiClient) -> Option<String> {
    let nodes = api.get("/api/v1/nodes").await.ok()?;
    nodes["items"].as_array()?.iter().find_map(|n| {
        let ready = n["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        let schedulable = !n["spec"]["unschedulable"].as_bool().unwrap_or(false);
        (ready && schedulable).then(|| n["metadata"]["name"].as_str().map(String::from))?
    })
}

async fn schedule(api: &ApiClient, pod: &Value) {
    if pod["metadata"]["deletionTimestamp"].is_string()
        || pod["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    {
        return;
    }
    let scheduler = pod["spec"]["schedulerName"]
        .as_str()
        .unwrap_or("default-scheduler");
    if scheduler != "default-scheduler" {
        return;
    }
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let Some(node) = ready_node(api).await else {
        tracing::info!(pod = %name, "no Ready node to schedule on yet");
        return;
    };
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}/binding");
    match api.post(&path, &binding).await {
        Ok(_) => {
            crate::controllers::record_event(
                api,
                pod,
                "Normal",
                "Scheduled",
                &format!("Successfully assigned {ns}/{name} to {node}"),
                "default-scheduler",
            )
            .await;
        }
        Err(e) if e.code() == 409 || e.code() == 404 => {}
        Err(e) => tracing::warn!(pod = %name, error = %e, "binding failed"),
    }
}
