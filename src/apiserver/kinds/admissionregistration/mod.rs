//! The admissionregistration.k8s.io group: webhook configurations and
//! ValidatingAdmissionPolicies with their bindings. What the kinds share (rule and
//! selector defaults and validation, upstream's `ValidateRuleWithOperations`, the
//! webhook printer) lives here; the admission plugins that act on them are
//! `admission::webhook` and `admission::policy`.

pub mod mutatingwebhookconfiguration;
pub mod validatingadmissionpolicy;
pub mod validatingadmissionpolicybinding;
pub mod validatingwebhookconfiguration;

use super::Kind;
use crate::apiserver::cel;
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{
    Cause, duplicate, invalid, invalid_num, is_dns1123_subdomain, not_supported, required,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// The API group.
pub const GROUP: &str = "admissionregistration.k8s.io";

/// The kinds of admissionregistration.k8s.io, in discovery order.
pub fn kinds() -> Vec<Kind> {
    vec![
        Arc::new(mutatingwebhookconfiguration::MutatingWebhookConfigurations::new()),
        Arc::new(validatingadmissionpolicy::ValidatingAdmissionPolicies::new()),
        Arc::new(validatingadmissionpolicybinding::ValidatingAdmissionPolicyBindings::new()),
        Arc::new(validatingwebhookconfiguration::ValidatingWebhookConfigurations::new()),
    ]
}

const OPERATIONS: &[&str] = &["*", "CREATE", "UPDATE", "DELETE", "CONNECT"];
const SCOPES: &[&str] = &["Cluster", "Namespaced", "*"];
const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Exact", "Equivalent"];

/// Upstream's defaults for `rules[*]` (scope `*`).
pub fn default_rules(rules: &mut Value) {
    for r in rules.as_array_mut().into_iter().flatten() {
        if r["scope"].is_null() {
            r["scope"] = json!("*");
        }
    }
}

/// Sets `obj[key]` to `value` when it is not set.
pub fn default_field(obj: &mut Value, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

/// Upstream's `ValidateRuleWithOperations` for every rule in `rules` at `at`.
pub fn validate_rules(rules: &Value, at: &str, out: &mut Vec<Cause>) {
    for (i, r) in rules.as_array().into_iter().flatten().enumerate() {
        let at = format!("{at}[{i}]");
        let list = |k: &str| -> Vec<&str> {
            r[k].as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        let ops = list("operations");
        if ops.is_empty() {
            out.push(required(format!("{at}.operations")));
        }
        if ops.len() > 1 && ops.contains(&"*") {
            out.push(invalid(
                format!("{at}.operations"),
                &r["operations"].to_string(),
                "if '*' is present, must not specify other operations",
            ));
        }
        for (j, op) in ops.iter().enumerate() {
            if !OPERATIONS.contains(op) {
                out.push(not_supported(
                    format!("{at}.operations[{j}]"),
                    op,
                    OPERATIONS,
                ));
            }
        }
        for (k, what) in [("apiGroups", "apiGroups"), ("apiVersions", "apiVersions")] {
            let items = list(k);
            if items.is_empty() {
                out.push(required(format!("{at}.{what}")));
            }
            if items.len() > 1 && items.contains(&"*") {
                out.push(invalid(
                    format!("{at}.{what}"),
                    &r[k].to_string(),
                    "if '*' is present, must not specify other API versions",
                ));
            }
        }
        let resources = list("resources");
        if resources.is_empty() {
            out.push(required(format!("{at}.resources")));
        }
        for (j, res) in resources.iter().enumerate() {
            if res.is_empty() {
                out.push(required(format!("{at}.resources[{j}]")));
            }
            if res.splitn(2, '/').any(str::is_empty) {
                out.push(invalid(
                    format!("{at}.resources[{j}]"),
                    res,
                    "must not be empty",
                ));
            }
        }
        if let Some(scope) = r["scope"].as_str()
            && !SCOPES.contains(&scope)
        {
            out.push(not_supported(format!("{at}.scope"), scope, SCOPES));
        }
    }
}

/// `failurePolicy` at `at`, when set.
pub fn validate_failure_policy(v: &Value, at: &str, out: &mut Vec<Cause>) {
    if let Some(p) = v.as_str()
        && !FAILURE_POLICIES.contains(&p)
    {
        out.push(not_supported(at, p, FAILURE_POLICIES));
    }
}

/// `matchPolicy` at `at`, when set.
pub fn validate_match_policy(v: &Value, at: &str, out: &mut Vec<Cause>) {
    if let Some(p) = v.as_str()
        && !MATCH_POLICIES.contains(&p)
    {
        out.push(not_supported(at, p, MATCH_POLICIES));
    }
}

/// Upstream's `validateMatchConditions`: unique DNS-label-like names and expressions that
/// compile.
pub fn validate_match_conditions(conds: &Value, at: &str, out: &mut Vec<Cause>) {
    let mut seen = std::collections::HashSet::new();
    for (i, c) in conds.as_array().into_iter().flatten().enumerate() {
        let at = format!("{at}[{i}]");
        let name = s(&c["name"]);
        if name.is_empty() {
            out.push(required(format!("{at}.name")));
        } else if !seen.insert(name.to_string()) {
            out.push(duplicate(format!("{at}.name"), name));
        }
        validate_expression(&c["expression"], &format!("{at}.expression"), out);
    }
}

/// A CEL `expression` at `at`: required, and it must compile.
pub fn validate_expression(expr: &Value, at: &str, out: &mut Vec<Cause>) {
    let e = s(expr);
    if e.trim().is_empty() {
        out.push(required(at));
        return;
    }
    if let Err(err) = cel::compile(e) {
        out.push(invalid(at, e, &err.to_string()));
    }
}

/// Upstream's webhook validation for a Mutating- or ValidatingWebhookConfiguration.
pub fn validate_webhooks(obj: &Value, mutating: bool, out: &mut Vec<Cause>) {
    let mut names = std::collections::HashSet::new();
    for (i, w) in obj["webhooks"].as_array().into_iter().flatten().enumerate() {
        let at = format!("webhooks[{i}]");
        let name = s(&w["name"]);
        if name.is_empty() {
            out.push(required(format!("{at}.name")));
        } else {
            if !is_dns1123_subdomain(name) {
                out.push(invalid(
                    format!("{at}.name"),
                    name,
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ));
            } else if name.split('.').count() < 3 {
                out.push(invalid(
                    format!("{at}.name"),
                    name,
                    "should be a domain with at least three segments separated by dots",
                ));
            }
            if !names.insert(name.to_string()) {
                out.push(duplicate(format!("{at}.name"), name));
            }
        }
        validate_rules(&w["rules"], &format!("{at}.rules"), out);
        validate_failure_policy(&w["failurePolicy"], &format!("{at}.failurePolicy"), out);
        validate_match_policy(&w["matchPolicy"], &format!("{at}.matchPolicy"), out);
        let side = ["None", "NoneOnDryRun"];
        match w["sideEffects"].as_str() {
            None => {
                let mut c = required(format!("{at}.sideEffects"));
                c.message = "Required value: must specify one of None, NoneOnDryRun".into();
                out.push(c);
            }
            Some(v) if !side.contains(&v) => {
                out.push(not_supported(format!("{at}.sideEffects"), v, &side));
            }
            _ => {}
        }
        let versions: Vec<&str> = w["admissionReviewVersions"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !versions.iter().any(|v| *v == "v1" || *v == "v1beta1") {
            let mut c = required(format!("{at}.admissionReviewVersions"));
            c.message = "Required value: must specify one of v1, v1beta1".into();
            out.push(c);
        }
        if let Some(t) = w["timeoutSeconds"].as_i64()
            && !(1..=30).contains(&t)
        {
            out.push(invalid_num(
                format!("{at}.timeoutSeconds"),
                t,
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
        if mutating
            && let Some(p) = w["reinvocationPolicy"].as_str()
            && !["Never", "IfNeeded"].contains(&p)
        {
            out.push(not_supported(
                format!("{at}.reinvocationPolicy"),
                p,
                &["Never", "IfNeeded"],
            ));
        }
        validate_match_conditions(&w["matchConditions"], &format!("{at}.matchConditions"), out);
        validate_client_config(&w["clientConfig"], &format!("{at}.clientConfig"), out);
    }
}

/// Upstream's `ValidateWebhookClientConfig`: exactly one of `url` (https, no query or
/// fragment) and `service` (name, namespace, a path starting with `/`, a valid port).
pub(crate) fn validate_client_config(cc: &Value, at: &str, out: &mut Vec<Cause>) {
    let url = cc["url"].as_str();
    let svc = cc.get("service").filter(|v| v.is_object());
    match (url, svc) {
        (Some(_), Some(_)) | (None, None) => {
            let mut c = required(at);
            c.message = "Required value: exactly one of url or service is required".into();
            out.push(c);
        }
        (Some(u), None) => {
            let at = format!("{at}.url");
            match u.split_once("://") {
                Some(("https", rest)) if !rest.is_empty() => {
                    if rest.contains('#') {
                        out.push(invalid(&at, u, "fragments are not permitted"));
                    }
                    if rest.contains('?') {
                        out.push(invalid(&at, u, "query parameters are not permitted"));
                    }
                }
                Some(("https", _)) => out.push(invalid(&at, u, "host must be specified")),
                _ => out.push(invalid(&at, u, "'https' is the only allowed URL scheme")),
            }
        }
        (None, Some(svc)) => {
            let at = format!("{at}.service");
            if s(&svc["name"]).is_empty() {
                out.push(required(format!("{at}.name")));
            }
            if s(&svc["namespace"]).is_empty() {
                out.push(required(format!("{at}.namespace")));
            }
            if let Some(p) = svc["path"].as_str()
                && !p.starts_with('/')
            {
                out.push(invalid(format!("{at}.path"), p, "must start with a '/'"));
            }
            if let Some(port) = svc["port"].as_i64()
                && !(1..=65535).contains(&port)
            {
                out.push(invalid_num(
                    format!("{at}.port"),
                    port,
                    "port is not valid: must be between 1 and 65535, inclusive",
                ));
            }
        }
    }
}

/// Upstream's defaults for every webhook of a configuration.
pub fn default_webhooks(obj: &mut Value, mutating: bool) {
    for w in obj["webhooks"].as_array_mut().into_iter().flatten() {
        default_field(w, "failurePolicy", json!("Fail"));
        default_field(w, "matchPolicy", json!("Equivalent"));
        default_field(w, "namespaceSelector", json!({}));
        default_field(w, "objectSelector", json!({}));
        default_field(w, "timeoutSeconds", json!(10));
        if mutating {
            default_field(w, "reinvocationPolicy", json!("Never"));
        }
        if let Some(svc) = w["clientConfig"].get_mut("service")
            && svc.is_object()
        {
            default_field(svc, "port", json!(443));
        }
        default_rules(&mut w["rules"]);
    }
}

/// The webhook printer: NAME, WEBHOOKS, AGE.
pub fn webhook_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Webhooks",
            "integer",
            0,
            "Webhooks indicates the number of webhooks in the configuration.",
        ),
        age_col(),
    ]
}

/// A webhook configuration's row.
pub fn webhook_cells(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    vec![
        json!(s(&obj["metadata"]["name"])),
        json!(obj["webhooks"].as_array().map_or(0, Vec::len)),
        json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
    ]
}
