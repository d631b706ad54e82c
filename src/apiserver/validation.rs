//! Validation with upstream's rules and wording, producing the `details.causes` of a 422
//! Invalid Status (kubectl prints them as `The Pod "x" is invalid: field: message`).

use serde::Serialize;
use serde_json::Value;

/// One reason an object is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// FieldValueRequired, FieldValueInvalid, FieldValueDuplicate, FieldValueNotSupported, FieldValueForbidden, FieldValueNotFound, FieldValueTooLong.
    pub reason: String,
    /// `Required value`, `Invalid value: "x": ...`, ...
    pub message: String,
    /// `spec.containers[0].image`.
    pub field: String,
}

/// Upstream's message for a bad DNS-1123 label.
pub const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
/// Upstream's message for a bad DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
/// Upstream's message for a bad DNS-1035 label.
pub const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && label_chars(s)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, of any length.
fn label_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters in all. As upstream's
/// regex, the labels themselves have no length limit (a 70-character pod name is valid).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(label_chars)
}

/// DNS-1035 label: like an RFC 1123 label but starting with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
}

/// The problems with `name` as a DNS-1123 subdomain name (most kinds). As upstream, a
/// name that is only too long gets only the length message (its regex has no bound).
pub fn subdomain_name(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if name.is_empty() || !name.split('.').all(label_chars) {
        out.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    out
}

/// The problems with `name` as a DNS-1123 label name (namespaces).
pub fn label_name(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if !label_chars(name) {
        out.push(DNS1123_LABEL_MSG.to_string());
    }
    out
}

/// The problems with `name` as a DNS-1035 label name (services).
pub fn dns1035_name(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if !label_chars(name) || !name.bytes().next().is_some_and(|b| b.is_ascii_lowercase()) {
        out.push(DNS1035_MSG.to_string());
    }
    out
}

pub fn required(field: impl Into<String>) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field: field.into(),
    }
}

pub fn invalid(field: impl Into<String>, value: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!(
            "Invalid value: {}: {why}",
            serde_json::to_string(value).unwrap_or_default()
        ),
        field: field.into(),
    }
}

pub fn invalid_num(field: impl Into<String>, value: i64, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {value}: {why}"),
        field: field.into(),
    }
}

pub fn duplicate(field: impl Into<String>, value: &str) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: format!(
            "Duplicate value: {}",
            serde_json::to_string(value).unwrap_or_default()
        ),
        field: field.into(),
    }
}

pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Cause {
        reason: "FieldValueNotSupported".into(),
        message: format!(
            "Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ),
        field: field.into(),
    }
}

pub fn forbidden(field: impl Into<String>, why: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {why}"),
        field: field.into(),
    }
}

pub fn label_key_ok(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    name_ok && prefix.is_none_or(is_dns1123_subdomain)
}

pub fn label_value_ok(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()))
}

pub fn validate_meta(obj: &Value, out: &mut Vec<Cause>) {
    let meta = &obj["metadata"];
    if let Some(labels) = meta["labels"].as_object() {
        for (k, v) in labels {
            if !label_key_ok(k) {
                out.push(invalid("metadata.labels", k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
            }
            let v = v.as_str().unwrap_or("");
            if !label_value_ok(v) {
                out.push(invalid("metadata.labels", v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
            }
        }
    }
    validate_owner_references(&meta["ownerReferences"], out);
    if let Some(ann) = meta["annotations"].as_object() {
        let mut total = 0usize;
        for (k, v) in ann {
            if !label_key_ok(&k.to_lowercase()) {
                out.push(invalid("metadata.annotations", k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
            }
            total += k.len() + v.as_str().map(str::len).unwrap_or(0);
        }
        if total > 256 * 1024 {
            out.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: "Too long: must have at most 262144 bytes".into(),
                field: "metadata.annotations".into(),
            });
        }
    }
}

/// `metadata.ownerReferences` as upstream's `ValidateOwnerReferences`: apiVersion (with a
/// version), kind, name and uid present, no Event as owner, at most one controller.
pub fn validate_owner_references(refs: &Value, out: &mut Vec<Cause>) {
    const FIELD: &str = "metadata.ownerReferences";
    let Some(list) = refs.as_array() else {
        return;
    };
    let mut first_controller: Option<String> = None;
    for r in list {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let (api_version, kind, name, uid) = (s("apiVersion"), s("kind"), s("name"), s("uid"));
        // Upstream's schema.ParseGroupVersion: `v`, or `group/version` with one slash.
        let version = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => v.to_string(),
            [_, v] => v.to_string(),
            _ => String::new(),
        };
        if version.is_empty() {
            out.push(invalid(
                format!("{FIELD}.apiVersion"),
                &api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            out.push(invalid(
                format!("{FIELD}.kind"),
                &kind,
                "kind must not be empty",
            ));
        }
        if name.is_empty() {
            out.push(invalid(
                format!("{FIELD}.name"),
                &name,
                "name must not be empty",
            ));
        }
        if uid.is_empty() {
            out.push(invalid(
                format!("{FIELD}.uid"),
                &uid,
                "uid must not be empty",
            ));
        }
        if api_version == "v1" && kind == "Event" {
            out.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {r}: /v1, Kind=Event is disallowed from being an owner"
                ),
                field: FIELD.into(),
            });
        }
        if r["controller"].as_bool() == Some(true) {
            let this = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => out.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {refs}: Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"
                    ),
                    field: FIELD.into(),
                }),
                None => first_controller = Some(this),
            }
        }
    }
}

/// The Status message upstream builds for an Invalid error.
pub fn invalid_message(kind: &str, name: &str, causes: &[Cause]) -> String {
    let errs: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    let agg = if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("[{}]", errs.join(", "))
    };
    format!("{kind} {name:?} is invalid: {agg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_label("web-1") && !is_dns1123_label("Web") && !is_dns1123_label("-a"));
        assert!(is_dns1123_subdomain("a.b-c") && !is_dns1123_subdomain("a..b"));
        assert!(is_dns1123_subdomain(&"a".repeat(70)) && !is_dns1123_label(&"a".repeat(70)));
        assert!(is_dns1035_label("svc") && !is_dns1035_label("1svc"));
        assert_eq!(
            subdomain_name("Bad_Name"),
            vec![DNS1123_SUBDOMAIN_MSG.to_string()]
        );
        assert!(label_name("a.b").len() == 1);
        assert!(subdomain_name(&"a".repeat(253)).is_empty());
        assert_eq!(
            subdomain_name(&"a".repeat(254)),
            vec!["must be no more than 253 characters".to_string()]
        );
        assert_eq!(label_name(&"a".repeat(64)).len(), 1);
        assert_eq!(dns1035_name(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn owner_references() {
        let mut out = Vec::new();
        let refs = serde_json::json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "apps/", "kind": "", "name": "", "uid": ""},
            {"apiVersion": "v1", "kind": "Secret", "name": "b", "uid": "2", "controller": true},
        ]);
        validate_owner_references(&refs, &mut out);
        let fields: Vec<&str> = out.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.ownerReferences.apiVersion",
                "metadata.ownerReferences.kind",
                "metadata.ownerReferences.name",
                "metadata.ownerReferences.uid",
                "metadata.ownerReferences",
            ]
        );
        assert_eq!(
            out[0].message,
            "Invalid value: \"apps/\": version must not be empty"
        );
        assert!(out[4].message.ends_with(
            "Only one reference can have Controller set to true. Found \"true\" in references for ConfigMap/a and Secret/b"
        ));
        out.clear();
        validate_owner_references(
            &serde_json::json!([{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "3"}]),
            &mut out,
        );
        assert!(
            out[0]
                .message
                .ends_with("/v1, Kind=Event is disallowed from being an owner")
        );
    }

    #[test]
    fn messages() {
        let one = invalid_message("Widget", "bad", &[required("spec.containers")]);
        assert_eq!(
            one,
            "Widget \"bad\" is invalid: spec.containers: Required value"
        );
    }
}
