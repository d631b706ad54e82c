//! The structural-schema rules a CRD's `openAPIV3Schema` must follow (upstream's
//! `pkg/apiserver/schema` `ValidateStructural` and the CRD validation around it), for the
//! cases users meet: every specified field has a type, `properties` and
//! `additionalProperties` exclude each other, `metadata` at the root may only restrict
//! `name` and `generateName`.

use serde_json::Value;

use crate::apiserver::validation::{Cause, forbidden, required};

/// The types a schema may name.
const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// Checks `schema` (at `field`, the path of `openAPIV3Schema`) and appends the problems.
pub fn validate(schema: &Value, field: &str, out: &mut Vec<Cause>) {
    walk(schema, field, 0, out);
    if schema["type"].as_str() != Some("object") && !schema["type"].is_null() {
        out.push(crate::apiserver::validation::invalid(
            format!("{field}.type"),
            schema["type"].as_str().unwrap_or(""),
            "must be object at the root",
        ));
    }
    if let Some(meta) = schema["properties"].get("metadata") {
        let f = format!("{field}.properties[metadata]");
        let props_ok = meta["properties"]
            .as_object()
            .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"));
        let extra = meta.as_object().is_some_and(|m| {
            m.keys()
                .any(|k| !["type", "properties"].contains(&k.as_str()))
        });
        if !props_ok || extra {
            out.push(forbidden(
                f.as_str(),
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
        if meta["type"].as_str().is_some_and(|t| t != "object") {
            out.push(forbidden(format!("{f}.type").as_str(), "must be object"));
        }
    }
}

fn walk(s: &Value, field: &str, depth: usize, out: &mut Vec<Cause>) {
    let preserve = s["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    let int_or_string = s["x-kubernetes-int-or-string"].as_bool() == Some(true);
    match s["type"].as_str() {
        None | Some("") if !preserve && !int_or_string => {
            if depth == 0 {
                out.push(Cause {
                    message: "Required value: must not be empty at the root".into(),
                    ..required(format!("{field}.type"))
                });
            } else {
                out.push(Cause {
                    message: "Required value: must not be empty for specified object fields".into(),
                    ..required(format!("{field}.type"))
                });
            }
        }
        Some(t) if !t.is_empty() && !TYPES.contains(&t) => {
            out.push(crate::apiserver::validation::not_supported(
                format!("{field}.type"),
                t,
                TYPES,
            ));
        }
        _ => {}
    }
    if s["properties"].is_object() && !s["additionalProperties"].is_null() {
        out.push(forbidden(
            format!("{field}.additionalProperties").as_str(),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if s["type"].as_str() == Some("array") && s["items"].is_null() {
        out.push(Cause {
            message: "Required value: must be specified".into(),
            ..required(format!("{field}.items"))
        });
    }
    for (i, rule) in s["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = format!("{field}.x-kubernetes-validations[{i}]");
        let source = rule["rule"].as_str().unwrap_or("");
        if source.trim().is_empty() {
            out.push(required(format!("{f}.rule")));
        } else if let Err(e) = crate::apiserver::cel::compile(source) {
            out.push(crate::apiserver::validation::invalid(
                format!("{f}.rule"),
                source,
                &e.to_string(),
            ));
        }
        if let Some(r) = rule["reason"].as_str() {
            const REASONS: &[&str] = &[
                "FieldValueInvalid",
                "FieldValueForbidden",
                "FieldValueRequired",
                "FieldValueDuplicate",
            ];
            if !REASONS.contains(&r) {
                out.push(crate::apiserver::validation::not_supported(
                    format!("{f}.reason"),
                    r,
                    REASONS,
                ));
            }
        }
    }
    for (k, v) in s["properties"].as_object().into_iter().flatten() {
        walk(v, &format!("{field}.properties[{k}]"), depth + 1, out);
    }
    if s["items"].is_object() {
        walk(&s["items"], &format!("{field}.items"), depth + 1, out);
    }
    if s["additionalProperties"].is_object() {
        walk(
            &s["additionalProperties"],
            &format!("{field}.additionalProperties"),
            depth + 1,
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(s: Value) -> Vec<String> {
        let mut out = Vec::new();
        validate(&s, "spec.versions[0].schema.openAPIV3Schema", &mut out);
        out.iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn types_are_required_and_properties_exclude_additional_properties() {
        assert!(
            messages(json!({"type": "object", "properties": {"spec": {"type": "object"}}}))
                .is_empty()
        );
        assert_eq!(
            messages(json!({"type": "object", "properties": {"spec": {}}})),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
            ]
        );
        assert!(messages(json!({"type": "object", "properties": {"spec": {"x-kubernetes-preserve-unknown-fields": true}}})).is_empty());
        assert_eq!(
            messages(
                json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}}})
            ),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
            ]
        );
        assert_eq!(
            messages(
                json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}})
            ),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
            ]
        );
        assert_eq!(
            messages(json!({})),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.type: Required value: must not be empty at the root"
            ]
        );
    }
}
