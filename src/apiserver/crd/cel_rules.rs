//! `x-kubernetes-validations`: the CEL rules a CRD's schema attaches to any node, run
//! against every write of a custom object as upstream's CRD validator runs them — `self` is
//! the value at the node, `oldSelf` the stored value at the same place on updates.
//! Transition rules (those that name `oldSelf`) run only where the old value correlates:
//! object properties, map entries, and list entries matched by their
//! `x-kubernetes-list-map-keys`; nowhere on create.

use serde_json::Value;

use crate::apiserver::cel;
use crate::apiserver::validation::Cause;

/// The failures of the rules in `schema` for `new` (and `old`, on updates).
pub fn validate(schema: &Value, new: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    walk(schema, new, old, None, &mut out);
    out
}

/// The field a rule at `path` reports; upstream prints the root as `<nil>`.
fn field_of(path: Option<&str>, rule_path: Option<&str>) -> String {
    let base = path.unwrap_or("");
    let full = match rule_path {
        Some(p) => format!(
            "{base}{}",
            if base.is_empty() {
                p.trim_start_matches('.')
            } else {
                p
            }
        ),
        None => base.to_string(),
    };
    if full.is_empty() {
        "<nil>".into()
    } else {
        full
    }
}

fn child(path: Option<&str>, key: &str) -> String {
    match path {
        Some(p) => format!("{p}.{key}"),
        None => key.to_string(),
    }
}

/// The error for a failed rule, as upstream's `fieldErrorForReason`.
fn failure(rule: &Value, type_name: &str, field: String, detail: String) -> Cause {
    let (reason, message) = match rule["reason"].as_str().unwrap_or("FieldValueInvalid") {
        "FieldValueForbidden" => ("FieldValueForbidden", format!("Forbidden: {detail}")),
        "FieldValueRequired" => ("FieldValueRequired", format!("Required value: {detail}")),
        "FieldValueDuplicate" => (
            "FieldValueDuplicate",
            format!("Duplicate value: {type_name:?}"),
        ),
        _ => (
            "FieldValueInvalid",
            format!("Invalid value: {type_name:?}: {detail}"),
        ),
    };
    Cause {
        reason: reason.into(),
        message,
        field,
    }
}

/// Runs the rules of the node `s` on `v`.
fn rules(s: &Value, v: &Value, old: Option<&Value>, path: Option<&str>, out: &mut Vec<Cause>) {
    let type_name = s["type"].as_str().unwrap_or("");
    for rule in s["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let source = rule["rule"].as_str().unwrap_or("");
        let field = field_of(path, rule["fieldPath"].as_str());
        let program = match cel::compile(source) {
            Ok(p) => p,
            Err(e) => {
                out.push(failure(rule, type_name, field, e.to_string()));
                continue;
            }
        };
        let transition = cel::references(&program, "oldSelf");
        let optional_old = rule["optionalOldSelf"].as_bool() == Some(true);
        if transition && old.is_none() && !optional_old {
            continue;
        }
        let mut vars = vec![("self", cel::to_cel(v))];
        if transition {
            vars.push((
                "oldSelf",
                old.map(cel::to_cel).unwrap_or(::cel::Value::Null),
            ));
        }
        let detail = match cel::eval_bool(&program, &vars) {
            Ok(true) => continue,
            Ok(false) => rule["messageExpression"]
                .as_str()
                .and_then(|m| {
                    cel::compile(m)
                        .and_then(|p| cel::eval_string(&p, &vars))
                        .ok()
                })
                .filter(|m| !m.trim().is_empty())
                .or_else(|| {
                    rule["message"]
                        .as_str()
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| format!("failed rule: {}", source.trim())),
            Err(e) => format!("failed rule: {}: {e}", source.trim()),
        };
        out.push(failure(rule, type_name, field, detail));
    }
}

/// The old list entry that correlates with `item` by the list's map keys.
fn correlated<'a>(s: &Value, item: &Value, old: Option<&'a Value>) -> Option<&'a Value> {
    if s["x-kubernetes-list-type"].as_str() != Some("map") {
        return None;
    }
    let keys: Vec<&str> = s["x-kubernetes-list-map-keys"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    old?.as_array()?
        .iter()
        .find(|o| keys.iter().all(|k| o.get(*k) == item.get(*k)))
}

fn walk(s: &Value, v: &Value, old: Option<&Value>, path: Option<&str>, out: &mut Vec<Cause>) {
    if v.is_null() {
        return;
    }
    rules(s, v, old, path, out);
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                let sub = s["properties"].get(k).or_else(|| {
                    s["additionalProperties"]
                        .as_object()
                        .map(|_| &s["additionalProperties"])
                });
                if let Some(sub) = sub {
                    let f = child(path, k);
                    walk(sub, item, old.and_then(|o| o.get(k)), Some(&f), out);
                }
            }
        }
        Value::Array(items) if s["items"].is_object() => {
            for (i, item) in items.iter().enumerate() {
                let f = format!("{}[{i}]", path.unwrap_or(""));
                walk(&s["items"], item, correlated(s, item, old), Some(&f), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.min <= self.max"},
            {"rule": "self.max <= 10", "message": "max is at most 10", "fieldPath": ".max"},
            {"rule": "self.size == oldSelf.size", "message": "size is immutable",
             "reason": "FieldValueForbidden"},
        ],
        "properties": {
            "min": {"type": "integer"}, "max": {"type": "integer"}, "size": {"type": "string"},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "x-kubernetes-validations": [
                          {"rule": "self.port >= oldSelf.port", "message": "ports only grow"}]}},
        }}}})
    }

    fn messages(new: Value, old: Option<Value>) -> Vec<String> {
        validate(&schema(), &new, old.as_ref())
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn rules_fail_with_upstream_messages() {
        assert!(messages(json!({"spec": {"min": 1, "max": 2, "size": "s"}}), None).is_empty());
        assert_eq!(
            messages(json!({"spec": {"min": 13, "max": 12, "size": "s"}}), None),
            [
                "spec: Invalid value: \"object\": failed rule: self.min <= self.max",
                "spec.max: Invalid value: \"object\": max is at most 10",
            ]
        );
    }

    #[test]
    fn transition_rules_run_only_on_updates() {
        let old = json!({"spec": {"min": 1, "max": 2, "size": "s",
                                  "ports": [{"name": "a", "port": 80}]}});
        let new = json!({"spec": {"min": 1, "max": 2, "size": "m",
                                  "ports": [{"name": "b", "port": 1}, {"name": "a", "port": 79}]}});
        assert!(messages(new.clone(), None).is_empty());
        assert_eq!(
            messages(new, Some(old)),
            [
                "spec: Forbidden: size is immutable",
                "spec.ports[1]: Invalid value: \"object\": ports only grow",
            ]
        );
    }

    #[test]
    fn root_rules_name_no_field() {
        let s = json!({"type": "object", "x-kubernetes-validations": [{"rule": "has(self.spec)"}]});
        let c = validate(&s, &json!({"kind": "W"}), None);
        assert_eq!(c[0].field, "<nil>");
    }
}
