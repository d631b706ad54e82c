//! Defaulting from a structural schema's `default` values (upstream's
//! `pkg/apiserver/schema/defaulting`): a missing property with a default gets it, then
//! defaulting goes on inside it, so nested defaults apply too.

use serde_json::Value;

/// Applies the schema's defaults to `obj` in place.
pub fn apply(schema: &Value, obj: &mut Value) {
    match obj {
        Value::Object(map) => {
            for (k, ps) in schema["properties"].as_object().into_iter().flatten() {
                if map.get(k).is_none()
                    && let Some(d) = ps.get("default")
                {
                    map.insert(k.clone(), d.clone());
                }
                if let Some(item) = map.get_mut(k) {
                    apply(ps, item);
                }
            }
            if schema["additionalProperties"].is_object() {
                for (_, item) in map.iter_mut() {
                    apply(&schema["additionalProperties"], item);
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for item in items.iter_mut() {
                apply(&schema["items"], item);
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
    fn missing_fields_get_their_defaults_nested_too() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "default": {},
            "properties": {"size": {"type": "string", "default": "small"},
                           "replicas": {"type": "integer", "default": 1},
                           "ports": {"type": "array", "items": {"type": "object", "properties": {"proto": {"type": "string", "default": "TCP"}}}}}}}});
        let mut obj = json!({"metadata": {"name": "w"}});
        apply(&schema, &mut obj);
        assert_eq!(obj["spec"], json!({"size": "small", "replicas": 1}));
        let mut obj = json!({"spec": {"replicas": 3, "ports": [{"proto": "UDP"}, {}]}});
        apply(&schema, &mut obj);
        assert_eq!(obj["spec"]["replicas"], 3);
        assert_eq!(
            obj["spec"]["ports"],
            json!([{"proto": "UDP"}, {"proto": "TCP"}])
        );
    }
}
