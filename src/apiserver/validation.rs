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

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

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

/// The name rule of each kind; returns the problems (upstream wording).
pub fn validate_name(kind: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    match kind {
        "Namespace" => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_string());
            }
            if !is_dns1123_label(name) {
                out.push(DNS1123_LABEL_MSG.to_string());
            }
        }
        "Service" => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_string());
            }
            if !is_dns1035_label(name) {
                out.push(DNS1035_MSG.to_string());
            }
        }
        _ => {
            if name.len() > 253 {
                out.push("must be no more than 253 characters".to_string());
            }
            if !is_dns1123_subdomain(name) {
                out.push(DNS1123_SUBDOMAIN_MSG.to_string());
            }
        }
    }
    out
}

fn required(field: impl Into<String>) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field: field.into(),
    }
}

fn invalid(field: impl Into<String>, value: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!(
            "Invalid value: {}: {why}",
            serde_json::to_string(value).unwrap_or_default()
        ),
        field: field.into(),
    }
}

fn invalid_num(field: impl Into<String>, value: i64, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {value}: {why}"),
        field: field.into(),
    }
}

fn duplicate(field: impl Into<String>, value: &str) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: format!(
            "Duplicate value: {}",
            serde_json::to_string(value).unwrap_or_default()
        ),
        field: field.into(),
    }
}

fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Cause {
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

fn forbidden(field: impl Into<String>, why: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {why}"),
        field: field.into(),
    }
}

fn label_key_ok(k: &str) -> bool {
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

fn label_value_ok(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()))
}

fn validate_meta(obj: &Value, out: &mut Vec<Cause>) {
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

fn validate_pod_spec(spec: &Value, out: &mut Vec<Cause>) {
    let volumes: Vec<String> = spec["volumes"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|v| v["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for (i, v) in spec["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let name = v["name"].as_str().unwrap_or("");
        let f = format!("spec.volumes[{i}].name");
        if name.is_empty() {
            out.push(required(f));
        } else if !is_dns1123_label(name) {
            out.push(invalid(f, name, DNS1123_LABEL_MSG));
        } else if volumes.iter().filter(|n| *n == name).count() > 1
            && volumes.iter().position(|n| n == name) != Some(i)
        {
            out.push(duplicate(f, name));
        }
    }
    let mut names: Vec<String> = Vec::new();
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        out.push(required("spec.containers"));
    }
    for list in ["initContainers", "containers"] {
        for (i, c) in spec[list]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let base = format!("spec.{list}[{i}]");
            let name = c["name"].as_str().unwrap_or("");
            if name.is_empty() {
                out.push(required(format!("{base}.name")));
            } else if !is_dns1123_label(name) {
                out.push(invalid(format!("{base}.name"), name, DNS1123_LABEL_MSG));
            } else if names.iter().any(|n| n == name) {
                out.push(duplicate(format!("{base}.name"), name));
            } else {
                names.push(name.to_string());
            }
            if c["image"].as_str().unwrap_or("").trim().is_empty() {
                out.push(required(format!("{base}.image")));
            }
            let mut port_names: Vec<String> = Vec::new();
            for (j, p) in c["ports"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let pf = format!("{base}.ports[{j}]");
                let port = p["containerPort"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    out.push(invalid_num(
                        format!("{pf}.containerPort"),
                        port,
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if let Some(proto) = p["protocol"].as_str()
                    && !["TCP", "UDP", "SCTP"].contains(&proto)
                {
                    out.push(not_supported(
                        format!("{pf}.protocol"),
                        proto,
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
                if let Some(n) = p["name"].as_str().filter(|n| !n.is_empty()) {
                    if n.len() > 15
                        || !n
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        || !n.bytes().any(|b| b.is_ascii_lowercase())
                    {
                        out.push(invalid(format!("{pf}.name"), n, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), at most 15 characters, and at least one letter"));
                    } else if port_names.iter().any(|x| x == n) {
                        out.push(duplicate(format!("{pf}.name"), n));
                    } else {
                        port_names.push(n.to_string());
                    }
                }
            }
            for (j, e) in c["env"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let n = e["name"].as_str().unwrap_or("");
                if n.is_empty() {
                    out.push(required(format!("{base}.env[{j}].name")));
                } else if n.contains('=') || n.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
                    out.push(invalid(format!("{base}.env[{j}].name"), n, "a valid environment variable name must consist only of printable ASCII characters other than '='"));
                }
            }
            for (j, m) in c["volumeMounts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let n = m["name"].as_str().unwrap_or("");
                if !volumes.iter().any(|v| v == n) {
                    out.push(Cause {
                        reason: "FieldValueNotFound".into(),
                        message: format!(
                            "Not found: {}",
                            serde_json::to_string(n).unwrap_or_default()
                        ),
                        field: format!("{base}.volumeMounts[{j}].name"),
                    });
                }
                if m["mountPath"].as_str().unwrap_or("").is_empty() {
                    out.push(required(format!("{base}.volumeMounts[{j}].mountPath")));
                }
            }
        }
    }
    if let Some(rp) = spec["restartPolicy"].as_str()
        && !["Always", "OnFailure", "Never"].contains(&rp)
    {
        out.push(not_supported(
            "spec.restartPolicy",
            rp,
            &["Always", "OnFailure", "Never"],
        ));
    }
    if let Some(dp) = spec["dnsPolicy"].as_str()
        && !["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"].contains(&dp)
    {
        out.push(not_supported(
            "spec.dnsPolicy",
            dp,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ));
    }
    if let Some(g) = spec["terminationGracePeriodSeconds"].as_i64()
        && g < 0
    {
        out.push(invalid_num(
            "spec.terminationGracePeriodSeconds",
            g,
            "must be greater than or equal to 0",
        ));
    }
}

/// Validates an object of `kind` on create.
pub fn validate_create(kind: &str, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    validate_meta(obj, &mut out);
    match kind {
        "Pod" => validate_pod_spec(&obj["spec"], &mut out),
        "Service" => {
            let ty = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
            if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
                out.push(not_supported(
                    "spec.type",
                    ty,
                    &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
                ));
            }
            let ports = obj["spec"]["ports"].as_array().cloned().unwrap_or_default();
            let headless = obj["spec"]["clusterIP"].as_str() == Some("None");
            if ports.is_empty() && ty != "ExternalName" && !headless {
                out.push(required("spec.ports"));
            }
            for (i, p) in ports.iter().enumerate() {
                let port = p["port"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    out.push(invalid_num(
                        format!("spec.ports[{i}].port"),
                        port,
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if ports.len() > 1 && p["name"].as_str().unwrap_or("").is_empty() {
                    out.push(required(format!("spec.ports[{i}].name")));
                }
            }
        }
        "ConfigMap" | "Secret" => {
            let mut total = 0usize;
            for field in ["data", "binaryData", "stringData"] {
                if let Some(m) = obj[field].as_object() {
                    for (k, v) in m {
                        if k.is_empty()
                            || k.len() > 253
                            || !k
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                        {
                            out.push(invalid(format!("{field}[{k}]"), k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
                        }
                        total += v.as_str().map(str::len).unwrap_or(0);
                    }
                }
            }
            if total > 1024 * 1024 {
                out.push(Cause {
                    reason: "FieldValueTooLong".into(),
                    message: "Too long: must have at most 1048576 bytes".into(),
                    field: "data".into(),
                });
            }
        }
        "Event"
            if obj.get("involvedObject").is_some()
                && obj["involvedObject"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .is_empty()
                && obj["involvedObject"]["kind"]
                    .as_str()
                    .unwrap_or("")
                    .is_empty() =>
        {
            out.push(required("involvedObject"));
        }
        _ => {}
    }
    out
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

/// Validates an update: create rules plus immutability.
pub fn validate_update(kind: &str, old: &Value, new: &Value) -> Vec<Cause> {
    let mut out = validate_create(kind, new);
    if old["metadata"]["name"] != new["metadata"]["name"] {
        out.push(invalid(
            "metadata.name",
            new["metadata"]["name"].as_str().unwrap_or(""),
            "field is immutable",
        ));
    }
    match kind {
        "Pod"
            if old.get("spec").is_some()
                && mutable_masked(&old["spec"]) != mutable_masked(&new["spec"]) =>
        {
            out.push(forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"));
        }
        "ConfigMap" | "Secret"
            if old["immutable"].as_bool() == Some(true)
                && (old["data"] != new["data"] || old["binaryData"] != new["binaryData"]) =>
        {
            out.push(forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
        "Service" => {
            let (o, n) = (&old["spec"]["clusterIP"], &new["spec"]["clusterIP"]);
            if !o.is_null() && !n.is_null() && o != n {
                out.push(invalid(
                    "spec.clusterIPs[0]",
                    n.as_str().unwrap_or(""),
                    "may not change once set",
                ));
            }
        }
        _ => {}
    }
    out
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
    use serde_json::json;

    #[test]
    fn names() {
        assert!(is_dns1123_label("web-1") && !is_dns1123_label("Web") && !is_dns1123_label("-a"));
        assert!(is_dns1123_subdomain("a.b-c") && !is_dns1123_subdomain("a..b"));
        assert!(is_dns1123_subdomain(&"a".repeat(70)) && !is_dns1123_label(&"a".repeat(70)));
        assert!(is_dns1035_label("svc") && !is_dns1035_label("1svc"));
        assert_eq!(
            validate_name("Pod", "Bad_Name"),
            vec![DNS1123_SUBDOMAIN_MSG.to_string()]
        );
        assert!(validate_name("Namespace", "a.b").len() == 1);
    }

    #[test]
    fn kubectl_run_pod_is_valid() {
        let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","labels":{"run":"x"}},"spec":{"containers":[{"name":"x","image":"busybox","args":["sleep","100"],"resources":{}}],"restartPolicy":"Never","dnsPolicy":"ClusterFirst"},"status":{}});
        assert_eq!(validate_create("Pod", &pod), vec![]);
    }

    #[test]
    fn pod_errors_have_upstream_wording() {
        let pod = json!({"metadata":{"name":"bad"},"spec":{"containers":[{"name":"a"},{"name":"a","image":"i","volumeMounts":[{"name":"v","mountPath":"/v"}]}],"restartPolicy":"Sometimes"}});
        let causes = validate_create("Pod", &pod);
        let text = invalid_message("Pod", "bad", &causes);
        assert!(
            text.contains("spec.containers[0].image: Required value"),
            "{text}"
        );
        assert!(
            text.contains("spec.containers[1].name: Duplicate value: \"a\""),
            "{text}"
        );
        assert!(
            text.contains("spec.containers[1].volumeMounts[0].name: Not found: \"v\""),
            "{text}"
        );
        assert!(
            text.contains("spec.restartPolicy: Unsupported value: \"Sometimes\""),
            "{text}"
        );
        let one = invalid_message("Pod", "bad", &[required("spec.containers")]);
        assert_eq!(
            one,
            "Pod \"bad\" is invalid: spec.containers: Required value"
        );
    }

    #[test]
    fn pod_spec_is_immutable_except_images() {
        let old =
            json!({"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i:1"}]}});
        let img =
            json!({"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i:2"}]}});
        assert!(validate_update("Pod", &old, &img).is_empty());
        let cmd = json!({"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"i:1","command":["x"]}]}});
        assert_eq!(
            validate_update("Pod", &old, &cmd)[0].reason,
            "FieldValueForbidden"
        );
        let bad_label = json!({"metadata":{"name":"p","labels":{"a b":"c"}},"spec":{"containers":[{"name":"a","image":"i"}]}});
        assert!(!validate_create("Pod", &bad_label).is_empty());
    }
}
