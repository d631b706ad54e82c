//! Strategic merge patch (`application/strategic-merge-patch+json`), what client-side
//! `kubectl apply` and `kubectl patch` send: maps merge, `null` deletes, lists with a
//! merge key merge item by item, and the `$patch`, `$setElementOrder`, `$retainKeys` and
//! `$deleteFromPrimitiveList` directives are honoured and never stored.

use serde_json::{Map, Value};

use super::kinds::{ListMerge, Strategy as KindStrategy};

/// A patch that cannot be applied (becomes a 400/422 Status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmpError {
    /// The patch document is not a JSON object.
    #[error("strategic merge patch: the patch must be a JSON object")]
    NotAnObject,
    /// A list item lacks the list's merge key.
    #[error("strategic merge patch: map in list {field} is missing its merge key {key:?}")]
    MissingMergeKey {
        /// The list.
        field: String,
        /// The key.
        key: &'static str,
    },
    /// An unknown `$patch` value or malformed directive.
    #[error("strategic merge patch: invalid directive at {field}: {message}")]
    BadDirective {
        /// Where.
        field: String,
        /// What.
        message: String,
    },
}

/// The patch strategy of a list at `path` (field names from the object root): the
/// metadata lists every kind shares, then what the kind says.
fn strategy(kind: &dyn KindStrategy, path: &[String]) -> ListMerge {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["metadata", "finalizers"] => ListMerge::MergePrimitives,
        ["metadata", "ownerReferences"] => ListMerge::MergeByKey("uid"),
        _ => kind.list_merge(&p),
    }
}

/// Applies a strategic merge patch to `original` for an object of `kind`.
pub fn strategic_merge_patch(
    kind: &dyn KindStrategy,
    original: &Value,
    patch: &Value,
) -> Result<Value, SmpError> {
    let Value::Object(p) = patch else {
        return Err(SmpError::NotAnObject);
    };
    let orig = original.as_object().cloned().unwrap_or_default();
    match merge_map(kind, &mut Vec::new(), orig, p)? {
        Some(m) => Ok(Value::Object(m)),
        None => Ok(Value::Object(Map::new())),
    }
}

fn field_name(path: &[String]) -> String {
    path.join(".")
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|i| {
                    !(i.is_object()
                        && i.get("$patch").is_some()
                        && i.as_object().is_some_and(|m| m.len() == 1))
                })
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Merges `patch` into `orig`; `None` means the map itself is to be deleted.
fn merge_map(
    kind: &dyn KindStrategy,
    path: &mut Vec<String>,
    mut orig: Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, SmpError> {
    match patch.get("$patch").map(|v| v.as_str()) {
        None => {}
        Some(Some("replace")) => {
            return match strip_directives(&Value::Object(patch.clone())) {
                Value::Object(m) => Ok(Some(m)),
                _ => Ok(Some(Map::new())),
            };
        }
        Some(Some("delete")) => return Ok(None),
        Some(Some("merge")) => {}
        Some(other) => {
            return Err(SmpError::BadDirective {
                field: field_name(path),
                message: format!("unknown $patch value {other:?}"),
            });
        }
    }
    if let Some(keep) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep
            .as_array()
            .ok_or_else(|| SmpError::BadDirective {
                field: field_name(path),
                message: "$retainKeys must be a list".into(),
            })?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        orig.retain(|k, _| keep.contains(&k.as_str()));
    }
    let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
    let mut deletions: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            orders.push((
                field.to_string(),
                pv.as_array().cloned().unwrap_or_default(),
            ));
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            deletions.push((
                field.to_string(),
                pv.as_array().cloned().unwrap_or_default(),
            ));
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        path.push(k.clone());
        match pv {
            Value::Null => {
                orig.remove(k);
            }
            Value::Object(pm) => {
                let base = match orig.remove(k) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                if let Some(m) = merge_map(kind, path, base, pm)? {
                    orig.insert(k.clone(), Value::Object(m));
                }
            }
            Value::Array(pa) => {
                let base = match orig.remove(k) {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let merged = merge_list(kind, path, base, pa)?;
                orig.insert(k.clone(), Value::Array(merged));
            }
            other => {
                orig.insert(k.clone(), other.clone());
            }
        }
        path.pop();
    }
    for (field, values) in deletions {
        if let Some(Value::Array(a)) = orig.get_mut(&field) {
            a.retain(|v| !values.contains(v));
        }
    }
    for (field, order) in orders {
        path.push(field.clone());
        let strat = strategy(kind, path);
        path.pop();
        if let Some(Value::Array(a)) = orig.get_mut(&field) {
            reorder(a, &order, strat);
        }
    }
    Ok(Some(orig))
}

fn item_key<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    item.get(key)
}

fn merge_list(
    kind: &dyn KindStrategy,
    path: &mut Vec<String>,
    orig: Vec<Value>,
    patch: &[Value],
) -> Result<Vec<Value>, SmpError> {
    match strategy(kind, path) {
        ListMerge::Replace => Ok(patch.iter().map(strip_directives).collect()),
        ListMerge::MergePrimitives => {
            let mut out = orig;
            for v in patch {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(out)
        }
        ListMerge::MergeByKey(key) => {
            // `{"$patch": "replace"}` as an item: the patch list replaces the original.
            if patch
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                return Ok(patch
                    .iter()
                    .filter(|i| i.get("$patch").is_none())
                    .map(strip_directives)
                    .collect());
            }
            let mut out = orig;
            for item in patch {
                let Value::Object(pm) = item else {
                    out.push(item.clone());
                    continue;
                };
                let k = item_key(item, key)
                    .cloned()
                    .ok_or_else(|| SmpError::MissingMergeKey {
                        field: field_name(path),
                        key,
                    })?;
                let pos = out.iter().position(|o| item_key(o, key) == Some(&k));
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    if let Some(i) = pos {
                        out.remove(i);
                    }
                    continue;
                }
                match pos {
                    Some(i) => {
                        let base = out[i].as_object().cloned().unwrap_or_default();
                        match merge_map(kind, path, base, pm)? {
                            Some(m) => out[i] = Value::Object(m),
                            None => {
                                out.remove(i);
                            }
                        }
                    }
                    None => {
                        if let Some(m) = merge_map(kind, path, Map::new(), pm)? {
                            out.push(Value::Object(m));
                        }
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Orders `list` as `order` says; items not named keep their relative order after.
fn reorder(list: &mut Vec<Value>, order: &[Value], strat: ListMerge) {
    let key_of = |v: &Value| -> Option<Value> {
        match strat {
            ListMerge::MergeByKey(k) => v.get(k).cloned(),
            _ => Some(v.clone()),
        }
    };
    let wanted: Vec<Value> = order.iter().filter_map(&key_of).collect();
    let mut sorted = Vec::with_capacity(list.len());
    for w in &wanted {
        if let Some(i) = list.iter().position(|v| key_of(v).as_ref() == Some(w)) {
            sorted.push(list.remove(i));
        }
    }
    sorted.append(list);
    *list = sorted;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::kinds::core::pod::Pods;
    use serde_json::json;

    fn pod() -> Value {
        json!({"apiVersion": "v1",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "x"}, "finalizers": ["a"]},
            "spec": {"containers": [
                {"name": "web", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
                {"name": "side", "image": "busybox"}],
              "volumes": [{"name": "v", "emptyDir": {}}]},
            "status": {"phase": "Running"}})
    }

    #[test]
    fn kubectl_apply_patch() {
        let patch = json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}, "labels": {"tier": null, "new": "y"}},
            "spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "web"}], "containers": [{"image": "nginx:1.28", "name": "web"}]}});
        let out = strategic_merge_patch(&Pods::new(), &pod(), &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "y"}));
        assert_eq!(out["spec"]["containers"][0]["name"], "side");
        assert_eq!(out["spec"]["containers"][1]["image"], "nginx:1.28");
        assert_eq!(out["spec"]["containers"][1]["env"][0]["name"], "A");
        assert_eq!(out["status"]["phase"], "Running");
        assert!(!serde_json::to_string(&out).unwrap().contains('$'));
    }

    #[test]
    fn delete_replace_and_lists() {
        let out = strategic_merge_patch(
            &Pods::new(),
            &pod(),
            &json!({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
        let out = strategic_merge_patch(&Pods::new(), &pod(), &json!({"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}})).unwrap();
        assert_eq!(
            out["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let out = strategic_merge_patch(&Pods::new(), &pod(), &json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}})).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "only", "image": "x"}])
        );
        let out = strategic_merge_patch(
            &Pods::new(),
            &pod(),
            &json!({"metadata": {"labels": {"$patch": "replace", "z": "1"}}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"z": "1"}));
        let out = strategic_merge_patch(
            &Pods::new(),
            &pod(),
            &json!({"metadata": {"finalizers": ["b"]}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        let out = strategic_merge_patch(
            &Pods::new(),
            &pod(),
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!([]));
        let out = strategic_merge_patch(&Pods::new(), &pod(), &json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}})).unwrap();
        assert_eq!(
            out["spec"]["volumes"][0],
            json!({"name": "v", "hostPath": {"path": "/x"}})
        );
        // Lists without a strategy are replaced.
        let out = strategic_merge_patch(
            &Pods::new(),
            &json!({"spec": {"tolerations": [{"key": "a"}]}}),
            &json!({"spec": {"tolerations": [{"key": "b"}]}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "b"}]));
    }

    #[test]
    fn errors() {
        assert_eq!(
            strategic_merge_patch(&Pods::new(), &pod(), &json!([1])),
            Err(SmpError::NotAnObject)
        );
        assert!(matches!(
            strategic_merge_patch(
                &Pods::new(),
                &pod(),
                &json!({"spec": {"containers": [{"image": "x"}]}})
            ),
            Err(SmpError::MissingMergeKey { .. })
        ));
        assert!(
            strategic_merge_patch(
                &Pods::new(),
                &pod(),
                &json!({"metadata": {"$patch": "explode"}})
            )
            .is_err()
        );
    }
}
