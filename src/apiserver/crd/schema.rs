//! Validation of a custom object against its version's structural schema, with
//! kube-openapi's field error wording (`spec.replicas in body must be of type integer:
//! "string"`), as upstream's `pkg/apiserver/validation` reports it.

use serde_json::Value;

use crate::apiserver::validation::{Cause, required};

/// The JSON type name of `v`, as the messages name it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `%v` of a value inside `Invalid value: ...`.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        other => other.to_string(),
    }
}

fn invalid(field: &str, v: &Value, why: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {why}", shown(v)),
        field: field.into(),
    }
}

fn type_ok(want: &str, v: &Value) -> bool {
    match want {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        _ => true,
    }
}

/// Validates the whole object: the schema's root, skipping `apiVersion`, `kind` and
/// `metadata` (the generic code checks those).
pub fn validate(schema: &Value, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for r in schema["required"].as_array().into_iter().flatten() {
        if let Some(k) = r.as_str()
            && map.get(k).is_none_or(Value::is_null)
        {
            out.push(required(k));
        }
    }
    for (k, v) in map {
        if ["apiVersion", "kind", "metadata"].contains(&k.as_str()) {
            continue;
        }
        if let Some(s) = schema["properties"].get(k) {
            value(s, v, k, &mut out);
        }
    }
    out
}

/// Validates `v` at `field` against `s`.
pub fn value(s: &Value, v: &Value, field: &str, out: &mut Vec<Cause>) {
    if v.is_null() {
        if s["nullable"].as_bool() != Some(true)
            && !s["type"].is_null()
            && s["x-kubernetes-preserve-unknown-fields"].as_bool() != Some(true)
        {
            let t = s["type"].as_str().unwrap_or("");
            out.push(invalid(
                field,
                &Value::String("null".into()),
                format!("{field} in body must be of type {t}: \"null\""),
            ));
        }
        return;
    }
    if s["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        if !(v.is_string() || type_ok("integer", v)) {
            out.push(invalid(
                field,
                &Value::String(type_name(v).into()),
                format!(
                    "{field} in body must be of type integer-or-string: \"{}\"",
                    type_name(v)
                ),
            ));
            return;
        }
    } else if let Some(t) = s["type"].as_str()
        && !type_ok(t, v)
    {
        out.push(invalid(
            field,
            &Value::String(type_name(v).into()),
            format!("{field} in body must be of type {t}: \"{}\"", type_name(v)),
        ));
        return;
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        let list: Vec<String> = e.iter().map(shown).collect();
        out.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                list.join(", ")
            ),
            field: field.into(),
        });
    }
    numbers(s, v, field, out);
    if let Some(st) = v.as_str() {
        strings(s, st, v, field, out);
    }
    if let Some(items) = v.as_array() {
        if let Some(max) = s["maxItems"].as_u64()
            && items.len() as u64 > max
        {
            out.push(Cause {
                reason: "FieldValueTooMany".into(),
                message: format!("Too many: {}: must have at most {max} items", items.len()),
                field: field.into(),
            });
        }
        if let Some(min) = s["minItems"].as_u64()
            && (items.len() as u64) < min
        {
            out.push(invalid(
                field,
                v,
                format!("{field} in body should have at least {min} items"),
            ));
        }
        if s["uniqueItems"].as_bool() == Some(true) {
            for (i, a) in items.iter().enumerate() {
                if items[..i].contains(a) {
                    out.push(Cause {
                        reason: "FieldValueDuplicate".into(),
                        message: format!("Duplicate value: {}", shown(a)),
                        field: format!("{field}[{i}]"),
                    });
                }
            }
        }
        if s["items"].is_object() {
            for (i, it) in items.iter().enumerate() {
                value(&s["items"], it, &format!("{field}[{i}]"), out);
            }
        }
    }
    if let Some(map) = v.as_object() {
        for r in s["required"].as_array().into_iter().flatten() {
            if let Some(k) = r.as_str()
                && map.get(k).is_none_or(Value::is_null)
            {
                out.push(required(format!("{field}.{k}")));
            }
        }
        if let Some(max) = s["maxProperties"].as_u64()
            && map.len() as u64 > max
        {
            out.push(Cause {
                reason: "FieldValueTooMany".into(),
                message: format!("Too many: {}: must have at most {max} items", map.len()),
                field: field.into(),
            });
        }
        for (k, item) in map {
            let sub = format!("{field}.{k}");
            if let Some(ps) = s["properties"].get(k) {
                value(ps, item, &sub, out);
            } else if s["additionalProperties"].is_object() {
                value(&s["additionalProperties"], item, &sub, out);
            }
        }
    }
}

fn numbers(s: &Value, v: &Value, field: &str, out: &mut Vec<Cause>) {
    let Some(n) = v.as_f64() else {
        return;
    };
    if let Some(max) = s["maximum"].as_f64() {
        let excl = s["exclusiveMaximum"].as_bool() == Some(true);
        if n > max || (excl && n >= max) {
            let rel = if excl {
                "less than"
            } else {
                "less than or equal to"
            };
            out.push(invalid(
                field,
                v,
                format!("{field} in body should be {rel} {}", s["maximum"]),
            ));
        }
    }
    if let Some(min) = s["minimum"].as_f64() {
        let excl = s["exclusiveMinimum"].as_bool() == Some(true);
        if n < min || (excl && n <= min) {
            let rel = if excl {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(invalid(
                field,
                v,
                format!("{field} in body should be {rel} {}", s["minimum"]),
            ));
        }
    }
    if let Some(m) = s["multipleOf"].as_f64()
        && m != 0.0
        && (n / m).fract() != 0.0
    {
        out.push(invalid(
            field,
            v,
            format!(
                "{field} in body should be a multiple of {}",
                s["multipleOf"]
            ),
        ));
    }
}

fn strings(s: &Value, st: &str, v: &Value, field: &str, out: &mut Vec<Cause>) {
    let len = st.chars().count() as u64;
    if let Some(max) = s["maxLength"].as_u64()
        && len > max
    {
        out.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {max} bytes"),
            field: field.into(),
        });
    }
    if let Some(min) = s["minLength"].as_u64()
        && len < min
    {
        out.push(invalid(
            field,
            v,
            format!("{field} in body should be at least {min} chars long"),
        ));
    }
    if let Some(p) = s["pattern"].as_str()
        && let Ok(re) = regex::Regex::new(p)
        && !re.is_match(st)
    {
        out.push(invalid(
            field,
            v,
            format!("{field} in body should match '{p}'"),
        ));
    }
    if let Some(f) = s["format"].as_str()
        && !format_ok(f, st)
    {
        out.push(invalid(
            field,
            v,
            format!("{field} in body must be of type {f}: {}", shown(v)),
        ));
    }
}

/// The common OpenAPI formats kube-openapi checks.
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok(),
        "uuid" => uuid::Uuid::parse_str(s).is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(schema: Value, obj: Value) -> Vec<String> {
        validate(&schema, &obj)
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    fn widget_schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
            "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
            "size": {"type": "string", "enum": ["small", "large"]},
            "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "when": {"type": "string", "format": "date-time"}}}}})
    }

    #[test]
    fn messages_follow_kube_openapi() {
        assert!(
            messages(
                widget_schema(),
                json!({"spec": {"size": "small", "replicas": 3}})
            )
            .is_empty()
        );
        assert_eq!(
            messages(
                widget_schema(),
                json!({"spec": {"size": "small", "replicas": "x"}})
            ),
            vec![
                "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
            ]
        );
        assert_eq!(
            messages(widget_schema(), json!({"spec": {"replicas": 11}})),
            vec![
                "spec.size: Required value",
                "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
            ]
        );
        assert_eq!(
            messages(
                widget_schema(),
                json!({"spec": {"size": "mid", "name": "ABCDEFG", "tags": ["a", "b", 3], "when": "soon"}})
            ),
            vec![
                "spec.size: Unsupported value: \"mid\": supported values: \"small\", \"large\"",
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.name: Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'",
                "spec.tags: Too many: 3: must have at most 2 items",
                "spec.tags[2]: Invalid value: \"integer\": spec.tags[2] in body must be of type string: \"integer\"",
                "spec.when: Invalid value: \"soon\": spec.when in body must be of type date-time: \"soon\"",
            ]
        );
    }
}
