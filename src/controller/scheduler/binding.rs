//! The scheduler's writes: the `pods/binding` subresource and the `Scheduled` Event
//! (upstream's DefaultBinder), the PodScheduled=False condition and `FailedScheduling`
//! Event of a pod that fits nowhere, and the eviction of preemption victims.

use k8s_openapi::api::core::v1::Pod;
use kube_client::Api;
use kube_client::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::NAME;
use crate::apiserver::defaults::now_rfc3339;
use crate::controller::events::record_event_kube;
use crate::controller::{code, post_json};

fn pod_json(pod: &Pod) -> serde_json::Value {
    let mut v = serde_json::to_value(pod).unwrap_or_default();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Pod");
    v
}

fn ns_name(pod: &Pod) -> (&str, &str) {
    (
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or(""),
    )
}

/// Binds `pod` to `node`; false if it is gone or bound meanwhile (404/409).
pub async fn bind(
    client: &kube_client::Client,
    pod: &Pod,
    node: &str,
) -> Result<bool, kube_client::Error> {
    let (ns, name) = ns_name(pod);
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": ns, "uid": pod.metadata.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}/binding");
    match post_json(client, &path, &binding).await {
        Ok(_) => {
            record_event_kube(
                client,
                &pod_json(pod),
                "Normal",
                "Scheduled",
                &format!("Successfully assigned {ns}/{name} to {node}"),
                NAME,
            )
            .await;
            Ok(true)
        }
        Err(e) if matches!(code(&e), 409 | 404) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Records that `pod` fits nowhere (upstream's `handleSchedulingFailure`): the
/// `FailedScheduling` Warning and, where it changed, the PodScheduled=False condition
/// with reason Unschedulable and the nominated node.
pub async fn unschedulable(
    client: &kube_client::Client,
    pod: &Pod,
    message: &str,
    nominated: Option<&str>,
) -> Result<(), kube_client::Error> {
    let (ns, name) = ns_name(pod);
    record_event_kube(
        client,
        &pod_json(pod),
        "Warning",
        "FailedScheduling",
        message,
        NAME,
    )
    .await;
    let status = pod.status.as_ref();
    let same = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message)
        });
    let had_nominated = status.and_then(|s| s.nominated_node_name.as_deref());
    if same && (nominated.is_none() || had_nominated == nominated) {
        return Ok(());
    }
    let mut patch = json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": now_rfc3339(),
    }]}});
    if let Some(n) = nominated {
        patch["status"]["nominatedNodeName"] = json!(n);
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Evicts a preemption victim as upstream's `PreemptPod`: the DisruptionTarget condition
/// (reason PreemptionByScheduler), the deletion, the `Preempted` Event naming the
/// preemptor by uid.
pub async fn preempt_victim(
    client: &kube_client::Client,
    victim: &Pod,
    preemptor: &Pod,
    node: &str,
) -> Result<(), kube_client::Error> {
    let (ns, name) = ns_name(victim);
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let patch = json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": format!("{NAME}: preempting to accommodate a higher priority pod"),
        "lastTransitionTime": now_rfc3339(),
    }]}});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(_) => {}
        Err(e) if code(&e) == 404 => return Ok(()),
        Err(e) => return Err(e),
    }
    let dp = DeleteParams {
        preconditions: victim
            .metadata
            .uid
            .clone()
            .map(|uid| kube_client::api::Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => {}
        Err(e) if matches!(code(&e), 404 | 409) => return Ok(()),
        Err(e) => return Err(e),
    }
    record_event_kube(
        client,
        &pod_json(victim),
        "Normal",
        "Preempted",
        &format!(
            "Preempted by pod {} on node {node}",
            preemptor.metadata.uid.as_deref().unwrap_or("")
        ),
        NAME,
    )
    .await;
    Ok(())
}
