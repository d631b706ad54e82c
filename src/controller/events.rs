//! core/v1 Events about objects, as components record them for `kubectl describe`.

use serde_json::{Value, json};

use crate::apiserver::defaults::now_rfc3339;
use crate::client::ApiClient;

/// The Event a component (`component`, e.g. `default-scheduler`, `kubelet`) records about
/// `obj` (a JSON object with apiVersion, kind and metadata).
pub fn event_body(
    obj: &Value,
    kind_type: &str,
    reason: &str,
    message: &str,
    component: &str,
) -> Value {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let now = now_rfc3339();
    json!({
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
    })
}

/// Records an Event about `obj` through `api` (best effort: a lost Event is only logged).
pub async fn record_event(
    api: &ApiClient,
    obj: &Value,
    kind_type: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ev = event_body(obj, kind_type, reason, message, component);
    let ns = ev["metadata"]["namespace"].as_str().unwrap_or("default");
    if let Err(e) = api
        .post(&format!("/api/v1/namespaces/{ns}/events"), &ev)
        .await
    {
        tracing::debug!(error = %e, "event not recorded");
    }
}

/// Records an Event about `obj` through a kube client (best effort, like [`record_event`]).
pub async fn record_event_kube(
    client: &kube_client::Client,
    obj: &Value,
    kind_type: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ev = event_body(obj, kind_type, reason, message, component);
    let ns = ev["metadata"]["namespace"].as_str().unwrap_or("default");
    if let Err(e) = super::post_json(client, &format!("/api/v1/namespaces/{ns}/events"), &ev).await
    {
        tracing::debug!(error = %e, "event not recorded");
    }
}
