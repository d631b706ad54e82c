//! Pods: upstream's defaults and validation (through the shared PodSpec), the
//! update rules (only images, tolerations, deadlines may change), graceful deletion that
//! waits for the kubelet, the `kubectl get pods` columns and the pod field selectors.

use serde_json::{Value, json};

use super::podspec;
use crate::apiserver::kinds::{
    Deletion, GET_PATCH_UPDATE, ListMerge, ResourceDef, Strategy, default_status_update,
};
use crate::apiserver::table::{
    Column, age, age_col, col, human_duration, name_col, none_if_empty, s,
};
use crate::apiserver::validation::{Cause, forbidden, invalid};

/// Container lists of a PodSpec (their items merge by name).
pub const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// Verbs of the `proxy` subresources (pods, services, nodes): every HTTP method.
pub const PROXY_VERBS: &[&str] = &["create", "delete", "get", "patch", "update"];

/// The `Pod` strategy.
pub struct Pods {
    def: ResourceDef,
}

impl Pods {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Pods {
            def: ResourceDef::new("", "v1", "Pod", "pods")
                .short_names(&["po"])
                .categories(&["all"])
                .subresource("status", "Pod", GET_PATCH_UPDATE)
                .subresource("binding", "Binding", &["create"])
                .subresource("log", "Pod", &["get"])
                .subresource("exec", "PodExecOptions", &["create", "get"])
                .subresource("attach", "PodAttachOptions", &["create", "get"])
                .subresource("portforward", "PodPortForwardOptions", &["create", "get"])
                .subresource("ephemeralcontainers", "Pod", GET_PATCH_UPDATE)
                .subresource("resize", "Pod", GET_PATCH_UPDATE)
                .foreign_subresource("eviction", "policy", "v1", "Eviction", &["create"])
                .subresource("proxy", "PodProxyOptions", PROXY_VERBS),
        }
    }
}

impl Default for Pods {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Pods {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {"containers": null}, "status": {}})
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::Pod);

    fn prepare_for_create(&self, obj: &mut Value) {
        podspec::set_defaults(&mut obj["spec"]);
        let qos = podspec::qos_class(&obj["spec"]);
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
    }

    /// Upstream's `ValidatePodCreate`: the spec, and no ephemeral containers yet (they
    /// are added through `pods/ephemeralcontainers` only).
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        podspec::validate(&obj["spec"], "spec", &mut out);
        if obj["spec"]["ephemeralContainers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            out.push(forbidden(
                "spec.ephemeralContainers",
                "cannot be set on create",
            ));
        }
        out
    }

    fn writable_subresources(&self) -> &'static [&'static str] {
        &["status", "ephemeralcontainers", "resize"]
    }

    /// `status` writes the status; `ephemeralcontainers` only the ephemeral container
    /// list and `resize` only the containers' resources and resize policies (upstream's
    /// `podEphemeralContainersStrategy` and `podResizeStrategy`): everything else,
    /// labels and annotations included, stays as stored, and the generation moves when
    /// the spec changed.
    fn prepare_for_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Value {
        let mut out = match sub {
            "ephemeralcontainers" => {
                let mut out = old.clone();
                match new["spec"].get("ephemeralContainers") {
                    Some(ecs) if !ecs.is_null() => out["spec"]["ephemeralContainers"] = ecs.clone(),
                    _ => {
                        if let Some(m) = out["spec"].as_object_mut() {
                            m.remove("ephemeralContainers");
                        }
                    }
                }
                podspec::set_ephemeral_defaults(&mut out["spec"]);
                out
            }
            "resize" => {
                let mut out = old.clone();
                out["spec"] = resize_spec(&old["spec"], &new["spec"]);
                out
            }
            _ => return default_status_update(old, new),
        };
        if let Some(rv) = new["metadata"].get("resourceVersion") {
            out["metadata"]["resourceVersion"] = rv.clone();
        }
        if out["spec"] != old["spec"] {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            out["metadata"]["generation"] = json!(g + 1);
        }
        out
    }

    fn validate_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Vec<Cause> {
        match sub {
            "ephemeralcontainers" => {
                let mut out = Vec::new();
                podspec::validate(&new["spec"], "spec", &mut out);
                validate_ephemeral_update(old, new, &mut out);
                out
            }
            "resize" => {
                let mut out = Vec::new();
                podspec::validate(&new["spec"], "spec", &mut out);
                validate_resize(old, new, &mut out);
                out
            }
            _ => self.validate_update(old, new),
        }
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        podspec::validate(&new["spec"], "spec", &mut out);
        if old.get("spec").is_some() && mutable_masked(&old["spec"]) != mutable_masked(&new["spec"])
        {
            out.push(forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"));
        }
        out
    }

    /// Unscheduled and finished pods go at once; others get their grace period, and
    /// the kubelet confirms the stop with a grace-0 delete.
    fn deletion(&self, current: &Value, requested: Option<i64>) -> Deletion {
        let phase = current["status"]["phase"].as_str().unwrap_or("");
        let scheduled = current["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let grace = if !scheduled || phase == "Succeeded" || phase == "Failed" {
            0
        } else {
            requested
                .or_else(|| current["spec"]["terminationGracePeriodSeconds"].as_i64())
                .unwrap_or(30)
        };
        Deletion {
            grace_seconds: grace,
            empties_namespace: false,
        }
    }

    fn deletion_held(&self, obj: &Value) -> bool {
        obj["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0)
            > 0
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ]
    }

    fn field_value(&self, obj: &Value, path: &str) -> String {
        match path {
            "status.podIPs" => crate::apiserver::selectors::field_value(obj, "status.podIP"),
            "spec.hostNetwork" if obj["spec"]["hostNetwork"].is_null() => "false".into(),
            p => crate::apiserver::selectors::field_value(obj, p),
        }
    }

    fn list_merge(&self, path: &[&str]) -> ListMerge {
        match path {
            ["spec", rest @ ..] => podspec_list_merge(rest),
            ["status", "conditions"] => ListMerge::MergeByKey("type"),
            _ => ListMerge::Replace,
        }
    }

    fn columns(&self) -> Vec<Column> {
        let age = age_col();
        vec![
            name_col(),
            col(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age,
            col("IP", "string", 1, "IP address allocated to the pod."),
            col(
                "Node",
                "string",
                1,
                "Name of the node the pod is assigned to.",
            ),
            col(
                "Nominated Node",
                "string",
                1,
                "Name of the node the pod is nominated to.",
            ),
            col(
                "Readiness Gates",
                "string",
                1,
                "Readiness gates of the pod.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = json!(s(&obj["metadata"]["name"]));
        let created = obj["metadata"]["creationTimestamp"].as_str();
        let age_cell = json!(age(created, now));
        {
            let total = obj["spec"]["containers"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0);
            let ready = obj["status"]["containerStatuses"]
                .as_array()
                .map(|a| a.iter().filter(|c| c["ready"] == true).count())
                .unwrap_or(0);
            let gates = obj["spec"]["readinessGates"]
                .as_array()
                .map(|g| g.len())
                .unwrap_or(0);
            let gates_cell = if gates == 0 {
                "<none>".to_string()
            } else {
                let ok = obj["spec"]["readinessGates"]
                    .as_array()
                    .map(|gs| {
                        gs.iter()
                            .filter(|g| {
                                obj["status"]["conditions"].as_array().is_some_and(|cs| {
                                    cs.iter().any(|c| {
                                        c["type"] == g["conditionType"] && c["status"] == "True"
                                    })
                                })
                            })
                            .count()
                    })
                    .unwrap_or(0);
                format!("{ok}/{gates}")
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(obj)),
                json!(pod_restarts(obj, now)),
                age_cell,
                json!(none_if_empty(s(&obj["status"]["podIP"]))),
                json!(none_if_empty(s(&obj["spec"]["nodeName"]))),
                json!(none_if_empty(s(&obj["status"]["nominatedNodeName"]))),
                json!(gates_cell),
            ]
        }
    }

    fn row_conditions(&self, obj: &Value) -> Vec<Value> {
        let phase = s(&obj["status"]["phase"]);
        if phase == "Succeeded" || phase == "Failed" {
            return vec![
                json!({"type": "Completed", "status": "True", "reason": phase, "message": "The pod has completed successfully."}),
            ];
        }
        Vec::new()
    }
}

/// How strategic merge patch treats a list inside a PodSpec (`path` below the spec).
pub fn podspec_list_merge(path: &[&str]) -> ListMerge {
    match path {
        [list] if CONTAINER_LISTS.contains(list) => ListMerge::MergeByKey("name"),
        [list, field] if CONTAINER_LISTS.contains(list) => match *field {
            "ports" => ListMerge::MergeByKey("containerPort"),
            "env" => ListMerge::MergeByKey("name"),
            "volumeMounts" => ListMerge::MergeByKey("mountPath"),
            "volumeDevices" => ListMerge::MergeByKey("devicePath"),
            "resizePolicy" => ListMerge::MergeByKey("resourceName"),
            _ => ListMerge::Replace,
        },
        ["volumes"] => ListMerge::MergeByKey("name"),
        ["imagePullSecrets"] => ListMerge::MergeByKey("name"),
        ["hostAliases"] => ListMerge::MergeByKey("ip"),
        ["topologySpreadConstraints"] => ListMerge::MergeByKey("topologyKey"),
        ["resourceClaims"] => ListMerge::MergeByKey("name"),
        _ => ListMerge::Replace,
    }
}

/// The spec a resize stores: the old spec with each container's new `resources` and
/// `resizePolicy`. Containers added, removed, reordered or renamed leave the new spec as
/// it is, for validation to refuse.
fn resize_spec(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    for list in ["containers", "initContainers"] {
        let (o, n) = (
            old[list].as_array().cloned().unwrap_or_default(),
            new[list].as_array().cloned().unwrap_or_default(),
        );
        if o.len() != n.len() || o.iter().zip(&n).any(|(a, b)| a["name"] != b["name"]) {
            return new.clone();
        }
        if n.is_empty() {
            continue;
        }
        let merged: Vec<Value> = o
            .iter()
            .zip(&n)
            .map(|(a, b)| {
                let mut c = a.clone();
                for k in ["resources", "resizePolicy"] {
                    match b.get(k) {
                        Some(v) if !v.is_null() => c[k] = v.clone(),
                        _ => {
                            if let Some(m) = c.as_object_mut() {
                                m.remove(k);
                            }
                        }
                    }
                }
                c
            })
            .collect();
        out[list] = json!(merged);
    }
    out
}

/// Upstream's `ValidatePodEphemeralContainersUpdate`, part 2: existing ephemeral
/// containers may be neither removed nor changed.
fn validate_ephemeral_update(old: &Value, new: &Value, out: &mut Vec<Cause>) {
    if old["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
        out.clear();
        out.push(forbidden(
            "",
            "static pods do not support ephemeral containers",
        ));
        return;
    }
    let news = new["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for o in old["spec"]["ephemeralContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = o["name"].as_str().unwrap_or("");
        match news.iter().find(|n| n["name"] == o["name"]) {
            None => out.push(forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if n != o => out.push(forbidden(
                "spec.ephemeralContainers",
                &format!(
                    "existing ephemeral containers {name:?} may not be changed\n{}",
                    changed_fields(o, n)
                ),
            )),
            _ => {}
        }
    }
}

/// A short account of what differs between two containers (upstream prints a Go diff).
fn changed_fields(old: &Value, new: &Value) -> String {
    let mut keys: Vec<&String> = old
        .as_object()
        .into_iter()
        .flatten()
        .chain(new.as_object().into_iter().flatten())
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(k.as_str()) != new.get(k.as_str()))
        .map(|k| {
            format!(
                "  {k}: {} -> {}",
                old.get(k.as_str()).unwrap_or(&Value::Null),
                new.get(k.as_str()).unwrap_or(&Value::Null)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Upstream's `ValidatePodResize`, part 2: the QoS class stays, requests and limits are
/// not removed, memory limits only grow (or get added) with a `RestartContainer` policy,
/// only cpu and memory change, and nothing else in the spec does.
fn validate_resize(old: &Value, new: &Value, out: &mut Vec<Cause>) {
    let pod_level = |p: &Value| {
        ["requests", "limits"].iter().any(|k| {
            p["spec"]["resources"][*k]
                .as_object()
                .is_some_and(|m| !m.is_empty())
        })
    };
    let fail_alone = |out: &mut Vec<Cause>, why: &str| {
        out.clear();
        out.push(forbidden("", why));
    };
    if pod_level(old) || pod_level(new) {
        return fail_alone(out, "pods with pod-level resources cannot be resized");
    }
    if old["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
        return fail_alone(out, "static pods cannot be resized");
    }
    if old["spec"]["os"]["name"] == "windows" {
        return fail_alone(out, "windows pods cannot be resized");
    }
    let old_qos = old["status"]["qosClass"]
        .as_str()
        .filter(|q| !q.is_empty())
        .unwrap_or_else(|| podspec::qos_class(&old["spec"]));
    if old_qos != podspec::qos_class(&new["spec"]) {
        out.push(invalid(
            "spec",
            new["status"]["qosClass"].as_str().unwrap_or(old_qos),
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
    // A node that supports resizing reports the resources of its running containers.
    if let Some(c) = old["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["state"]["running"].is_object())
        && c["resources"].is_null()
    {
        out.push(forbidden(
            "spec",
            "Pod running on node without support for resize",
        ));
    }
    let olds = old["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let news = new["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if olds.len() == news.len() {
        for (i, (o, n)) in olds.iter().zip(&news).enumerate() {
            validate_container_resize(
                &n["resources"],
                &o["resources"],
                &n["resizePolicy"],
                &format!("spec.containers[{i}].resources"),
                out,
            );
        }
    }
    let mut munged = new["spec"].clone();
    if olds.len() == news.len() {
        let mut cs = Vec::new();
        for (o, n) in olds.iter().zip(&news) {
            let c = without_cpu_memory_changes(n, o);
            if c != *o {
                out.push(forbidden(
                    "spec",
                    "only cpu and memory resources are mutable",
                ));
            }
            cs.push(c);
        }
        munged["containers"] = json!(cs);
    }
    let old_inits = old["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let new_inits = new["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if old_inits.len() == new_inits.len() && !new_inits.is_empty() {
        let mut cs = Vec::new();
        for (o, n) in old_inits.iter().zip(&new_inits) {
            if o["restartPolicy"] == "Always" {
                let c = without_cpu_memory_changes(n, o);
                if c != *o {
                    out.push(forbidden(
                        "spec",
                        "only cpu and memory resources for sidecar containers are mutable",
                    ));
                }
                cs.push(c);
            } else {
                if n != o {
                    out.push(forbidden(
                        "spec",
                        "resources for non-sidecar init containers are immutable",
                    ));
                }
                cs.push(n.clone());
            }
        }
        munged["initContainers"] = json!(cs);
    }
    if out.is_empty() && munged != old["spec"] {
        out.push(forbidden(
            "spec",
            "only cpu and memory resources are mutable",
        ));
    }
}

/// Upstream's `validateContainerResize` for one container's resources at `path`.
fn validate_container_resize(
    new: &Value,
    old: &Value,
    policies: &Value,
    path: &str,
    out: &mut Vec<Cause>,
) {
    let removed = |k: &str| {
        old[k]
            .as_object()
            .into_iter()
            .flatten()
            .any(|(name, _)| new[k].get(name).is_none())
    };
    if removed("requests") {
        out.push(forbidden(
            format!("{path}.requests"),
            "resource requests cannot be removed",
        ));
    }
    if removed("limits") {
        out.push(forbidden(
            format!("{path}.limits"),
            "resource limits cannot be removed",
        ));
    }
    let mem_policy = policies
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["resourceName"] == "memory")
        .and_then(|p| p["restartPolicy"].as_str())
        .unwrap_or("");
    if mem_policy == "NotRequired" || mem_policy.is_empty() {
        let field = format!("{path}.limits[memory]");
        match (
            podspec::quantity(&new["limits"]["memory"]),
            podspec::quantity(&old["limits"]["memory"]),
        ) {
            (Some(n), Some(o)) if n < o => out.push(forbidden(
                field,
                "memory limits cannot be decreased unless resizePolicy is RestartContainer",
            )),
            (Some(_), None) => out.push(forbidden(
                field,
                "memory limits cannot be added unless resizePolicy is RestartContainer",
            )),
            _ => {}
        }
    }
}

/// `new` with its cpu and memory requests and limits put back to `old`'s (upstream's
/// `dropCPUMemoryResourcesFromContainer`): what must then equal `old`.
fn without_cpu_memory_changes(new: &Value, old: &Value) -> Value {
    let mut c = new.clone();
    let mut res = json!({});
    for k in ["limits", "requests"] {
        let Some(old_list) = old["resources"][k].as_object() else {
            continue;
        };
        let mut list = new["resources"][k].as_object().cloned().unwrap_or_default();
        for r in ["cpu", "memory"] {
            list.remove(r);
            if let Some(v) = old_list.get(r) {
                list.insert(r.into(), v.clone());
            }
        }
        res[k] = Value::Object(list);
    }
    c["resources"] = res;
    c
}

/// Masks the pod spec fields that may change on update.
fn mutable_masked(spec: &Value) -> Value {
    let mut s = spec.clone();
    for list in ["containers", "initContainers"] {
        if let Some(cs) = s[list].as_array_mut() {
            for c in cs {
                if let Some(m) = c.as_object_mut() {
                    m.remove("image");
                }
            }
        }
    }
    if let Some(m) = s.as_object_mut() {
        for k in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "nodeName",
        ] {
            m.remove(k);
        }
    }
    s
}

/// The pod STATUS column, following upstream's precedence rules.
fn pod_status(pod: &Value) -> String {
    let st = &pod["status"];
    let mut reason = s(&st["phase"]).to_string();
    if !s(&st["reason"]).is_empty() {
        reason = s(&st["reason"]).to_string();
    }
    let init_total = pod["spec"]["initContainers"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let mut initializing = false;
    for (i, c) in st["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let term = &c["state"]["terminated"];
        if term.is_object() && term["exitCode"].as_i64() == Some(0) {
            continue;
        }
        if term.is_object() {
            reason = if !s(&term["reason"]).is_empty() {
                format!("Init:{}", s(&term["reason"]))
            } else if let Some(sig) = term["signal"].as_i64().filter(|x| *x != 0) {
                format!("Init:Signal:{sig}")
            } else {
                format!("Init:ExitCode:{}", term["exitCode"].as_i64().unwrap_or(0))
            };
        } else if !s(&c["state"]["waiting"]["reason"]).is_empty()
            && s(&c["state"]["waiting"]["reason"]) != "PodInitializing"
        {
            reason = format!("Init:{}", s(&c["state"]["waiting"]["reason"]));
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in st["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .rev()
        {
            let w = &c["state"]["waiting"];
            let t = &c["state"]["terminated"];
            if !s(&w["reason"]).is_empty() {
                reason = s(&w["reason"]).to_string();
            } else if t.is_object() {
                reason = if !s(&t["reason"]).is_empty() {
                    s(&t["reason"]).to_string()
                } else if let Some(sig) = t["signal"].as_i64().filter(|x| *x != 0) {
                    format!("Signal:{sig}")
                } else {
                    format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0))
                };
            } else if c["state"]["running"].is_object() && c["ready"].as_bool() == Some(true) {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            let ready_cond = st["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map(|c| s(&c["status"]) == "True");
            reason = if ready_cond == Some(true) {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if pod["metadata"]["deletionTimestamp"].is_string() {
        reason = if s(&st["reason"]) == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn pod_restarts(pod: &Value, now: jiff::Timestamp) -> String {
    let mut restarts = 0i64;
    let mut last: Option<jiff::Timestamp> = None;
    for list in ["initContainerStatuses", "containerStatuses"] {
        for c in pod["status"][list].as_array().cloned().unwrap_or_default() {
            restarts += c["restartCount"].as_i64().unwrap_or(0);
            if let Some(t) = c["lastState"]["terminated"]["finishedAt"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                && last.is_none_or(|l| t > l)
            {
                last = Some(t);
            }
        }
    }
    match last {
        Some(t) if restarts > 0 => format!(
            "{restarts} ({} ago)",
            human_duration((now - t).get_seconds())
        ),
        _ => restarts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_spec_is_immutable_except_images() {
        let pods = Pods::new();
        let old =
            json!({"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i:1"}]}});
        let img =
            json!({"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i:2"}]}});
        assert!(pods.validate_update(&old, &img).is_empty());
        let cmd = json!({"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i:1","command":["x"]}]}});
        assert_eq!(
            pods.validate_update(&old, &cmd)[0].reason,
            "FieldValueForbidden"
        );
    }

    #[test]
    fn ephemeral_containers_subresource_writes_only_them() {
        let pods = Pods::new();
        let old = json!({"metadata": {"name": "p", "labels": {"a": "1"}, "generation": 1},
            "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}});
        let new = json!({"metadata": {"name": "p", "labels": {"a": "2"}},
            "spec": {"containers": [{"name": "c", "image": "other"}],
                     "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]},
            "status": {"phase": "Failed"}});
        let out = pods.prepare_for_subresource_update("ephemeralcontainers", &old, &new);
        assert_eq!(out["spec"]["containers"][0]["image"], "i");
        assert_eq!(out["metadata"]["labels"]["a"], "1");
        assert_eq!(out["status"]["phase"], "Running");
        assert_eq!(out["metadata"]["generation"], 2);
        assert_eq!(
            out["spec"]["ephemeralContainers"][0]["imagePullPolicy"],
            "Always"
        );
        assert!(
            pods.validate_subresource_update("ephemeralcontainers", &old, &out)
                .is_empty()
        );
        // The main resource may not add them.
        assert_eq!(
            pods.validate_update(&old, &out)[0].reason,
            "FieldValueForbidden"
        );
        let removed = old.clone();
        let causes = pods.validate_subresource_update("ephemeralcontainers", &out, &removed);
        assert!(
            causes[0].message.contains("\"dbg\" may not be removed"),
            "{causes:?}"
        );
    }

    #[test]
    fn resize_keeps_qos_and_only_cpu_and_memory() {
        let pods = Pods::new();
        let res = |cpu: &str, mem: &str| json!({"requests": {"cpu": cpu, "memory": mem}, "limits": {"cpu": cpu, "memory": mem}});
        let old = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", "resources": res("100m", "64Mi")}]},
            "status": {"qosClass": "Guaranteed"}});
        let patched = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "other", "resources": res("200m", "128Mi")}]}});
        let out = pods.prepare_for_subresource_update("resize", &old, &patched);
        assert_eq!(out["spec"]["containers"][0]["image"], "i");
        assert_eq!(
            out["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "200m"
        );
        assert!(
            pods.validate_subresource_update("resize", &old, &out)
                .is_empty()
        );
        let mut burst = out.clone();
        burst["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("50m");
        let causes = pods.validate_subresource_update("resize", &old, &burst);
        assert!(
            causes
                .iter()
                .any(|c| c.message.contains("Pod QOS Class may not change")),
            "{causes:?}"
        );
        let smaller = pods.prepare_for_subresource_update(
            "resize",
            &old,
            &json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": res("100m", "32Mi")}]}}),
        );
        let causes = pods.validate_subresource_update("resize", &old, &smaller);
        assert_eq!(
            causes[0].field,
            "spec.containers[0].resources.limits[memory]"
        );
        let mut storage = out.clone();
        storage["spec"]["containers"][0]["resources"]["limits"]["ephemeral-storage"] = json!("1Gi");
        let causes = pods.validate_subresource_update("resize", &old, &storage);
        assert!(
            causes
                .iter()
                .any(|c| c.message == "Forbidden: only cpu and memory resources are mutable"),
            "{causes:?}"
        );
    }

    #[test]
    fn create_defaults_reset_status() {
        let mut pod = json!({"metadata":{"name":"x"},"spec":{"containers":[{"name":"x","image":"busybox"}]},"status":{"phase":"Running"}});
        Pods::new().prepare_for_create(&mut pod);
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn rows() {
        let pods = Pods::new();
        let now: jiff::Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let running = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "web"}], "nodeName": "n"},
            "status": {"phase": "Running", "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        let cells = pods.cells(&running, now);
        assert_eq!(cells.len(), pods.columns().len());
        assert_eq!(cells[1], "1/1");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "0");
        assert_eq!(cells[4], "10m");
        assert_eq!(cells[6], "n");
        let crash = json!({"metadata": {"name": "c"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 2,
              "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:05:00Z"}}}]}});
        let cells = pods.cells(&crash, now);
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "2 (5m ago)");
        let done = json!({"metadata": {"name": "d"}, "spec": {"containers": [{"name": "d"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{"name": "d", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        assert_eq!(pods.cells(&done, now)[2], "Completed");
        assert_eq!(pods.row_conditions(&done)[0]["type"], "Completed");
        let init = json!({"metadata": {"name": "i"}, "spec": {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0}}}, {"name": "b", "state": {"running": {}}}]}});
        assert_eq!(pods.cells(&init, now)[2], "Init:1/2");
        let mut term = running.clone();
        term["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:10:00Z");
        assert_eq!(pods.cells(&term, now)[2], "Terminating");
    }
}
