//! The LimitRanger admission plugin (upstream's `plugin/pkg/admission/limitranger`): the
//! mutating step gives a new pod's containers the `default` limits and `defaultRequest`
//! requests of the namespace's LimitRanges (and says so in the `kubernetes.io/limit-ranger`
//! annotation); the validating step refuses pods and PersistentVolumeClaims outside a
//! range's `min`, `max` or `maxLimitRequestRatio`, with upstream's messages.

use crate::apiserver::kinds::core::limitrange::{
    LIMIT_TYPE_CLAIM, LIMIT_TYPE_CONTAINER, LIMIT_TYPE_POD,
};
use serde_json::{Value, json};

use super::quantity::{self, Quantity, ResourceList};
use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::defaults::obj_mut;
use crate::apiserver::kinds::core::podspec;
use crate::apiserver::status::ApiError;

/// The annotation naming what the plugin set.
const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The `LimitRanger` plugin.
#[derive(Debug, Default)]
pub struct LimitRanger;

/// Which of the plugin's checks a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Pod,
    Claim,
}

/// Pods on create (their containers cannot change afterwards), claims on create and
/// update; never subresources or objects being deleted.
fn target(req: &Request<'_>) -> Option<Target> {
    let def = req.kind.def();
    if !def.group.is_empty() || req.subresource.is_some() || req.namespace.is_none() {
        return None;
    }
    if req
        .old
        .is_some_and(|o| o["metadata"]["deletionTimestamp"].is_string())
    {
        return None;
    }
    match (def.plural.as_str(), req.operation) {
        ("pods", Operation::Create) => Some(Target::Pod),
        ("persistentvolumeclaims", Operation::Create | Operation::Update) => Some(Target::Claim),
        _ => None,
    }
}

/// The LimitRanges of `namespace`.
fn ranges(srv: &ApiServer, namespace: &str) -> Result<Vec<Value>, ApiError> {
    let snap = srv.registry.snapshot();
    let Some(kind) = snap.find("", "v1", "limitranges") else {
        return Ok(Vec::new());
    };
    let (items, _) = srv
        .store
        .list(&kind.def().prefix(Some(namespace)))
        .map_err(|e| {
            ApiError::forbidden(format!(
                "unable to create pods at this time because there was an error enforcing limit ranges: {e}"
            ))
        })?;
    Ok(items.iter().map(|i| kind.to_view(i)).collect())
}

fn items_of<'a>(range: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    range["spec"]["limits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |l| l["type"] == kind)
}

/// Gives the containers of `pod` what the Container items of `range` default, and
/// records what was set in the annotation (upstream's `PodMutateLimitFunc`).
pub fn apply_defaults(range: &Value, pod: &mut Value) {
    let mut requests = ResourceList::new();
    let mut limits = ResourceList::new();
    for item in items_of(range, LIMIT_TYPE_CONTAINER) {
        requests.extend(quantity::list_of(&item["defaultRequest"]));
        limits.extend(quantity::list_of(&item["default"]));
    }
    let mut notes = Vec::new();
    for (list, prefix) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(containers) = pod["spec"][list].as_array_mut() else {
            continue;
        };
        for c in containers {
            let name = c["name"].as_str().unwrap_or("").to_string();
            let resources = &mut c["resources"];
            let mut set = |which: &str, defaults: &ResourceList| {
                let have = obj_mut(resources, which);
                let mut names: Vec<&str> = Vec::new();
                for (k, q) in defaults {
                    if !have.contains_key(k) {
                        have.insert(k.clone(), q.to_json());
                        names.push(k);
                    }
                }
                if have.is_empty() {
                    resources.as_object_mut().map(|m| m.remove(which));
                }
                names.join(", ")
            };
            let set_requests = set("requests", &requests);
            let set_limits = set("limits", &limits);
            if !set_requests.is_empty() {
                notes.push(format!("{set_requests} request for {prefix} {name}"));
            }
            if !set_limits.is_empty() {
                notes.push(format!("{set_limits} limit for {prefix} {name}"));
            }
        }
    }
    if !notes.is_empty() {
        obj_mut(&mut pod["metadata"], "annotations").insert(
            ANNOTATION.into(),
            json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
        );
    }
}

fn min_constraint(
    kind: &str,
    name: &str,
    enforced: Quantity,
    request: &ResourceList,
    limit: &ResourceList,
) -> Result<(), String> {
    let Some(req) = request.get(name) else {
        return Err(format!(
            "minimum {name} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    if req.milli_value() < enforced.milli_value() {
        return Err(format!(
            "minimum {name} usage per {kind} is {enforced}, but request is {req}"
        ));
    }
    if let Some(lim) = limit.get(name)
        && lim.milli_value() < enforced.milli_value()
    {
        return Err(format!(
            "minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
        ));
    }
    Ok(())
}

fn max_constraint(
    kind: &str,
    name: &str,
    enforced: Quantity,
    request: &ResourceList,
    limit: &ResourceList,
) -> Result<(), String> {
    let Some(lim) = limit.get(name) else {
        return Err(format!(
            "maximum {name} usage per {kind} is {enforced}.  No limit is specified"
        ));
    };
    if lim.milli_value() > enforced.milli_value() {
        return Err(format!(
            "maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
        ));
    }
    if let Some(req) = request.get(name)
        && req.milli_value() > enforced.milli_value()
    {
        return Err(format!(
            "maximum {name} usage per {kind} is {enforced}, but request is {req}"
        ));
    }
    Ok(())
}

/// The max check of claims, which have no limits.
fn max_request_constraint(
    kind: &str,
    name: &str,
    enforced: Quantity,
    request: &ResourceList,
) -> Result<(), String> {
    let Some(req) = request.get(name) else {
        return Err(format!(
            "maximum {name} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    if req.milli_value() > enforced.milli_value() {
        return Err(format!(
            "maximum {name} usage per {kind} is {enforced}, but request is {req}"
        ));
    }
    Ok(())
}

#[allow(clippy::cast_precision_loss)]
fn ratio_constraint(
    kind: &str,
    name: &str,
    enforced: Quantity,
    request: &ResourceList,
    limit: &ResourceList,
) -> Result<(), String> {
    let req = request.get(name).map(Quantity::milli_value).unwrap_or(0);
    let lim = limit.get(name).map(Quantity::milli_value).unwrap_or(0);
    if req == 0 {
        return Err(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
        ));
    }
    if lim == 0 {
        return Err(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
        ));
    }
    let observed = lim as f64 / req as f64;
    if observed * 1000.0 > enforced.milli_value() as f64 {
        return Err(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {observed:.6}"
        ));
    }
    Ok(())
}

/// The min, max and ratio checks of one item against one set of requests and limits.
fn check_item(
    item: &Value,
    kind: &str,
    request: &ResourceList,
    limit: &ResourceList,
    errs: &mut Vec<String>,
) {
    for (k, v) in quantity::list_of(&item["min"]) {
        errs.extend(min_constraint(kind, &k, v, request, limit).err());
    }
    for (k, v) in quantity::list_of(&item["max"]) {
        errs.extend(max_constraint(kind, &k, v, request, limit).err());
    }
    for (k, v) in quantity::list_of(&item["maxLimitRequestRatio"]) {
        errs.extend(ratio_constraint(kind, &k, v, request, limit).err());
    }
}

/// What is wrong with `pod` under `range` (upstream's `PodValidateLimitFunc`).
pub fn pod_violations(range: &Value, pod: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    for item in range["spec"]["limits"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some(LIMIT_TYPE_CONTAINER) => {
                for list in ["containers", "initContainers"] {
                    for c in pod["spec"][list].as_array().into_iter().flatten() {
                        let request = quantity::container_list(c, "requests");
                        let limit = quantity::container_list(c, "limits");
                        check_item(item, LIMIT_TYPE_CONTAINER, &request, &limit, &mut errs);
                    }
                }
            }
            Some(LIMIT_TYPE_POD) => {
                let request = quantity::pod_total(&pod["spec"], "requests", false);
                let limit = quantity::pod_total(&pod["spec"], "limits", false);
                check_item(item, LIMIT_TYPE_POD, &request, &limit, &mut errs);
            }
            _ => {}
        }
    }
    errs
}

/// What is wrong with a claim's storage request under `range`.
pub fn claim_violations(range: &Value, claim: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let request = quantity::list_of(&claim["spec"]["resources"]["requests"]);
    for item in items_of(range, LIMIT_TYPE_CLAIM) {
        for (k, v) in quantity::list_of(&item["min"]) {
            errs.extend(
                min_constraint(LIMIT_TYPE_CLAIM, &k, v, &request, &ResourceList::new()).err(),
            );
        }
        for (k, v) in quantity::list_of(&item["max"]) {
            errs.extend(max_request_constraint(LIMIT_TYPE_CLAIM, &k, v, &request).err());
        }
    }
    errs
}

/// Upstream's error aggregate: one message as it is, several (duplicates dropped) in
/// brackets.
fn aggregate(errs: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errs {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    if seen.len() == 1 {
        seen[0].to_string()
    } else {
        format!("[{}]", seen.join(", "))
    }
}

impl Plugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    fn mutate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a mut Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            let (Some(Target::Pod), Some(ns)) = (target(req), req.namespace) else {
                return Ok(());
            };
            let ranges = ranges(srv, ns)?;
            for range in &ranges {
                apply_defaults(range, obj);
            }
            // The QoS class follows the resources the defaults gave the pod.
            if !ranges.is_empty() && obj["status"].is_object() {
                obj["status"]["qosClass"] = json!(podspec::qos_class(&obj["spec"]));
            }
            Ok(())
        })
    }

    fn validate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            let (Some(t), Some(ns)) = (target(req), req.namespace) else {
                return Ok(());
            };
            for range in ranges(srv, ns)? {
                let errs = match t {
                    Target::Pod => pod_violations(&range, obj),
                    Target::Claim => claim_violations(&range, obj),
                };
                if !errs.is_empty() {
                    return Err(ApiError::forbidden(format!(
                        "{} \"{}\" is forbidden: {}",
                        req.kind.def().qualified(),
                        req.name,
                        aggregate(&errs)
                    )));
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> Value {
        json!({"spec": {"limits": [{
            "type": "Container",
            "max": {"cpu": "500m", "memory": "1Gi"},
            "min": {"cpu": "50m"},
            "default": {"cpu": "500m", "memory": "1Gi"},
            "defaultRequest": {"cpu": "100m", "memory": "200Mi"}
        }]}})
    }

    #[test]
    fn defaults_fill_what_containers_leave_unset() {
        let mut pod = json!({"metadata": {}, "spec": {"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"requests": {"cpu": "300m"}, "limits": {"cpu": "300m"}}}
        ]}});
        apply_defaults(&range(), &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "100m", "memory": "200Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}})
        );
        assert_eq!(
            pod["spec"]["containers"][1]["resources"],
            json!({"requests": {"cpu": "300m", "memory": "200Mi"}, "limits": {"cpu": "300m", "memory": "1Gi"}})
        );
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a; memory request for container b; memory limit for container b"
        );
        assert!(pod_violations(&range(), &pod).is_empty());
    }

    #[test]
    fn violations_have_upstream_messages() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "a", "resources": res}]}});
        let big = pod(
            json!({"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}),
        );
        assert_eq!(
            pod_violations(&range(), &big),
            vec!["maximum cpu usage per Container is 500m, but limit is 1"]
        );
        let small = pod(json!({"requests": {"cpu": "10m"}}));
        let errs = pod_violations(&range(), &small);
        assert_eq!(
            aggregate(&errs),
            "[minimum cpu usage per Container is 50m, but request is 10m, maximum cpu usage per Container is 500m.  No limit is specified, maximum memory usage per Container is 1Gi.  No limit is specified]"
        );
        let ratio =
            json!({"spec": {"limits": [{"type": "Pod", "maxLimitRequestRatio": {"cpu": "2"}}]}});
        let burst = pod(json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "300m"}}));
        assert_eq!(
            pod_violations(&ratio, &burst),
            vec!["cpu max limit to request ratio per Pod is 2, but provided ratio is 3.000000"]
        );
        let claims = json!({"spec": {"limits": [{"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}]}});
        let claim = json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}});
        assert_eq!(
            claim_violations(&claims, &claim),
            vec!["maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 2Gi"]
        );
    }
}
