//! Pruning: fields a structural schema does not specify are dropped (upstream's
//! `pkg/apiserver/schema/pruning`), unless `x-kubernetes-preserve-unknown-fields` or
//! `additionalProperties` keeps them. The dropped paths are what `fieldValidation=Warn`
//! warns about and `Strict` refuses (`unknown field "spec.colour"`).

use serde_json::Value;

/// Prunes the whole object in place and returns the dropped field paths. `apiVersion`,
/// `kind` and `metadata` at the root are always kept.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    if let Some(map) = obj.as_object_mut() {
        let preserve = preserves(schema);
        map.retain(|k, v| {
            if ["apiVersion", "kind", "metadata"].contains(&k.as_str()) {
                return true;
            }
            match schema["properties"].get(k) {
                Some(s) => {
                    walk(s, v, k, &mut dropped);
                    true
                }
                None if preserve => true,
                None => {
                    dropped.push(k.clone());
                    false
                }
            }
        });
    }
    dropped
}

fn preserves(s: &Value) -> bool {
    s["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
}

fn walk(s: &Value, v: &mut Value, path: &str, dropped: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if s["x-kubernetes-embedded-resource"].as_bool() == Some(true)
                && s["properties"].is_null()
            {
                return;
            }
            let preserve = preserves(s);
            let additional = &s["additionalProperties"];
            map.retain(|k, item| {
                let sub = format!("{path}.{k}");
                if let Some(ps) = s["properties"].get(k) {
                    walk(ps, item, &sub, dropped);
                    return true;
                }
                if additional.is_object() {
                    walk(additional, item, &sub, dropped);
                    return true;
                }
                if additional.as_bool() == Some(true) || preserve {
                    return true;
                }
                dropped.push(sub);
                false
            });
        }
        Value::Array(items) if s["items"].is_object() => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(&s["items"], item, &format!("{path}[{i}]"), dropped);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_go_unless_preserved() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "a": {"type": "string"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}}}}}});
        let mut obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"a": "1", "b": 2, "free": {"anything": {"deep": 1}}, "labels": {"k": "v"},
                     "list": [{"x": 1, "y": 2}]},
            "extra": true});
        let dropped = prune(&schema, &mut obj);
        assert_eq!(dropped, vec!["spec.b", "spec.list[0].y", "extra"]);
        assert_eq!(obj["spec"]["free"]["anything"]["deep"], 1);
        assert_eq!(obj["spec"]["labels"]["k"], "v");
        assert_eq!(obj["metadata"]["name"], "w");
        assert!(obj.get("extra").is_none());
    }
}
