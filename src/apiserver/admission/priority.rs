//! The Priority admission plugin (upstream's plugin/pkg/admission/priority): a new pod's
//! `spec.priorityClassName` is resolved to `spec.priority` and `spec.preemptionPolicy`
//! (no name: the global default class, or 0); an unknown class, or a priority or policy
//! the pod sets that the class does not give, is 403 Forbidden. Updates keep what
//! creation set. For PriorityClasses it keeps a single `globalDefault` and refuses to
//! delete the built-in classes.

use serde_json::{Value, json};

use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::kinds::scheduling::priorityclass::{PREEMPT_LOWER, SYSTEM_CLASSES};
use crate::apiserver::status::ApiError;

/// The plugin.
pub struct Priority;

/// What a request is to the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Pod,
    PriorityClass,
}

/// Pods and PriorityClasses themselves, never their subresources.
fn target(req: &Request<'_>) -> Option<Target> {
    if req.subresource.is_some() {
        return None;
    }
    let def = req.kind.def();
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => Some(Target::Pod),
        ("scheduling.k8s.io", "priorityclasses") => Some(Target::PriorityClass),
        _ => None,
    }
}

/// Upstream's `admission.NewForbidden`: `<resource> "<name>" is forbidden: <why>`.
fn forbidden(req: &Request<'_>, obj: &Value, why: &str) -> ApiError {
    let def = req.kind.def();
    let name = obj["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or(req.name);
    let mut e = ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: {why}",
        def.qualified()
    ));
    let mut details = json!({"name": name, "kind": def.plural});
    if !def.group.is_empty() {
        details["group"] = json!(def.group);
    }
    e.details = Some(details);
    e
}

/// Every stored PriorityClass (none while the kind is not served).
fn classes(srv: &ApiServer) -> Result<Vec<Value>, ApiError> {
    let snap = srv.registry.snapshot();
    let Some(kind) = snap.find("scheduling.k8s.io", "v1", "priorityclasses") else {
        return Ok(Vec::new());
    };
    let (items, _) = srv
        .store
        .list(&kind.def().prefix(None))
        .map_err(|e| ApiError::internal(format!("failed to list PriorityClasses: {e}")))?;
    Ok(items.iter().map(|i| kind.to_view(i)).collect())
}

/// The global default class: of several, the one with the lowest value (upstream's
/// `getDefaultPriorityClass`).
fn default_class(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|c| c["globalDefault"] == true)
        .min_by_key(|c| c["value"].as_i64().unwrap_or(0))
}

/// The class name, priority and preemption policy a new pod gets from `classes`, or why
/// it is refused.
fn resolve(classes: &[Value], pod: &Value) -> Result<(String, i64, Value), String> {
    let wanted = pod["spec"]["priorityClassName"].as_str().unwrap_or("");
    if wanted.is_empty() {
        return Ok(match default_class(classes) {
            Some(c) => (
                c["metadata"]["name"].as_str().unwrap_or("").to_string(),
                c["value"].as_i64().unwrap_or(0),
                c["preemptionPolicy"].clone(),
            ),
            None => (String::new(), 0, json!(PREEMPT_LOWER)),
        });
    }
    let c = classes
        .iter()
        .find(|c| c["metadata"]["name"] == wanted)
        .ok_or_else(|| format!("no PriorityClass with name {wanted} was found"))?;
    Ok((
        wanted.to_string(),
        c["value"].as_i64().unwrap_or(0),
        c["preemptionPolicy"].clone(),
    ))
}

/// Upstream's `admitPod` on create: fills the priority fields or refuses.
fn admit_new_pod(classes: &[Value], pod: &mut Value) -> Result<(), String> {
    let (name, priority, policy) = resolve(classes, pod)?;
    if !pod["spec"].is_object() {
        pod["spec"] = json!({});
    }
    let spec = &mut pod["spec"];
    if !name.is_empty() {
        spec["priorityClassName"] = json!(name);
    }
    if let Some(p) = spec["priority"].as_i64()
        && p != priority
    {
        return Err(format!(
            "the integer value of priority ({p}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        ));
    }
    spec["priority"] = json!(priority);
    if let Some(policy) = policy.as_str() {
        if let Some(own) = spec["preemptionPolicy"].as_str()
            && own != policy
        {
            return Err(format!(
                "the string value of PreemptionPolicy ({own}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ));
        }
        spec["preemptionPolicy"] = json!(policy);
    }
    Ok(())
}

/// On update a pod keeps the priority fields creation gave it.
fn keep_old_priority(old: &Value, pod: &mut Value) {
    for k in ["priority", "priorityClassName", "preemptionPolicy"] {
        match old["spec"].get(k) {
            Some(v) if !v.is_null() => pod["spec"][k] = v.clone(),
            _ => {
                if let Some(m) = pod["spec"].as_object_mut() {
                    m.remove(k);
                }
            }
        }
    }
}

impl Plugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    fn mutate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a mut Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            if target(req) != Some(Target::Pod) {
                return Ok(());
            }
            match (req.operation, req.old) {
                (Operation::Update, Some(old)) => {
                    keep_old_priority(old, obj);
                    Ok(())
                }
                (Operation::Create, _) => {
                    let classes = classes(srv)?;
                    admit_new_pod(&classes, obj).map_err(|why| forbidden(req, obj, &why))
                }
                _ => Ok(()),
            }
        })
    }

    fn validate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            if target(req) != Some(Target::PriorityClass) {
                return Ok(());
            }
            let name = obj["metadata"]["name"].as_str().unwrap_or(req.name);
            match req.operation {
                Operation::Delete => {
                    if SYSTEM_CLASSES.iter().any(|(n, _, _)| *n == name) {
                        return Err(forbidden(
                            req,
                            obj,
                            "this is a system priority class and cannot be deleted",
                        ));
                    }
                    Ok(())
                }
                Operation::Create | Operation::Update => {
                    if obj["globalDefault"] != true {
                        return Ok(());
                    }
                    let classes = classes(srv)?;
                    match default_class(&classes) {
                        Some(d)
                            if req.operation == Operation::Create
                                || d["metadata"]["name"] != name =>
                        {
                            Err(forbidden(
                                req,
                                obj,
                                &format!(
                                    "PriorityClass {} is already marked as default. Only one default can exist",
                                    d["metadata"]["name"].as_str().unwrap_or("")
                                ),
                            ))
                        }
                        _ => Ok(()),
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, value: i64, default: bool) -> Value {
        json!({"metadata": {"name": name}, "value": value, "globalDefault": default,
            "preemptionPolicy": "PreemptLowerPriority"})
    }

    #[test]
    fn a_named_class_gives_its_value_and_policy() {
        let classes = vec![class("high", 1000, false)];
        let mut pod = json!({"spec": {"priorityClassName": "high"}});
        admit_new_pod(&classes, &mut pod).unwrap();
        assert_eq!(pod["spec"]["priority"], 1000);
        assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        let mut unknown = json!({"spec": {"priorityClassName": "nope"}});
        assert_eq!(
            admit_new_pod(&classes, &mut unknown).unwrap_err(),
            "no PriorityClass with name nope was found"
        );
    }

    #[test]
    fn without_a_name_the_lowest_global_default_or_zero() {
        let mut pod = json!({"spec": {}});
        admit_new_pod(&[], &mut pod).unwrap();
        assert_eq!(pod["spec"]["priority"], 0);
        assert!(pod["spec"]["priorityClassName"].is_null());
        let classes = vec![
            class("a", 50, true),
            class("b", 10, true),
            class("c", 5, false),
        ];
        let mut pod = json!({"spec": {}});
        admit_new_pod(&classes, &mut pod).unwrap();
        assert_eq!(pod["spec"]["priorityClassName"], "b");
        assert_eq!(pod["spec"]["priority"], 10);
    }

    #[test]
    fn a_priority_the_class_does_not_give_is_refused() {
        let classes = vec![class("high", 1000, false)];
        let mut pod = json!({"spec": {"priorityClassName": "high", "priority": 7}});
        assert_eq!(
            admit_new_pod(&classes, &mut pod).unwrap_err(),
            "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"
        );
        let mut same = json!({"spec": {"priorityClassName": "high", "priority": 1000}});
        assert!(admit_new_pod(&classes, &mut same).is_ok());
        let mut policy =
            json!({"spec": {"priorityClassName": "high", "preemptionPolicy": "Never"}});
        assert!(
            admit_new_pod(&classes, &mut policy)
                .unwrap_err()
                .starts_with("the string value of PreemptionPolicy (Never)")
        );
    }

    #[test]
    fn updates_keep_the_created_priority() {
        let old = json!({"spec": {"priority": 5, "priorityClassName": "x"}});
        let mut new = json!({"spec": {"priority": 9, "preemptionPolicy": "Never"}});
        keep_old_priority(&old, &mut new);
        assert_eq!(
            new["spec"],
            json!({"priority": 5, "priorityClassName": "x"})
        );
    }
}
