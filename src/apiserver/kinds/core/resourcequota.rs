//! ResourceQuotas: upstream's validation (`ValidateResourceQuota`: standard or qualified
//! resource names, non-negative and, for counts, whole quantities, valid scopes and scope
//! selectors, immutable scopes), a status clients cannot set on create (the ResourceQuota
//! admission plugin computes it), quantities stored in canonical form, and the `kubectl
//! get quota` columns (`pods: 1/10` per resource).

use serde_json::{Value, json};

use crate::apiserver::admission::quantity::{self, Quantity};
use crate::apiserver::kinds::{GET_PATCH_UPDATE, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, invalid, is_dns1123_subdomain};

/// Upstream's message for a bad qualified name part.
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// Resource names known without a domain prefix.
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

/// Resource names quota tracks without a domain prefix.
const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// Counts, which must be whole numbers.
const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// The scopes a quota may name.
const SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

/// What the pod-only scopes may limit.
const POD_SCOPE_RESOURCES: &[&str] = &[
    "pods",
    "cpu",
    "memory",
    "limits.cpu",
    "limits.memory",
    "requests.cpu",
    "requests.memory",
];

fn is_hugepages_quota_name(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("requests.hugepages-")
}

/// Whether `name` is an extended resource (`example.com/dongle`): outside the
/// `kubernetes.io` domain and not a `requests.` quota name.
pub fn is_extended_resource(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// The problems of `value` as a qualified name (`[prefix/]name`).
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else if !is_dns1123_subdomain(prefix) {
                errs.push(format!(
                    "prefix part {}",
                    crate::apiserver::validation::DNS1123_SUBDOMAIN_MSG
                ));
            }
            name
        }
        _ => {
            return vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into()];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".into());
    }
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if !ok {
        errs.push(QUALIFIED_NAME_MSG.into());
    }
    errs
}

/// Upstream's `validateResourceName`: qualified, and standard when unprefixed.
pub fn validate_resource_name(value: &str, field: &str, out: &mut Vec<Cause>) {
    let errs = qualified_name_errors(value);
    if !errs.is_empty() {
        out.extend(errs.iter().map(|m| invalid(field, value, m)));
        return;
    }
    if !value.contains('/')
        && !STANDARD_RESOURCES.contains(&value)
        && !is_hugepages_quota_name(value)
    {
        out.push(invalid(
            field,
            value,
            "must be a standard resource type or fully qualified",
        ));
    }
}

/// Upstream's `ValidateResourceQuotaResourceName`.
fn validate_quota_resource_name(value: &str, field: &str, out: &mut Vec<Cause>) {
    validate_resource_name(value, field, out);
    if !value.contains('/')
        && !STANDARD_QUOTA_RESOURCES.contains(&value)
        && !is_hugepages_quota_name(value)
    {
        out.push(invalid(
            field,
            value,
            "must be a standard resource for quota",
        ));
    }
}

/// A quantity that must parse and be non-negative (upstream rejects a bad one at decode).
pub fn validate_quantity(value: &Value, field: &str, out: &mut Vec<Cause>) -> Option<Quantity> {
    let text = match value {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    };
    match quantity::parse_value(value) {
        Ok(q) if q.is_negative() => {
            out.push(invalid(
                field,
                &q.to_string(),
                "must be greater than or equal to 0",
            ));
            None
        }
        Ok(q) => Some(q),
        Err(e) => {
            out.push(invalid(field, &text, &e.to_string()));
            None
        }
    }
}

/// Upstream's `ValidateResourceQuantityValue` for quota resource `name`.
fn validate_quota_quantity(name: &str, value: &Value, field: &str, out: &mut Vec<Cause>) {
    if let Some(q) = validate_quantity(value, field, out)
        && (INTEGER_RESOURCES.contains(&name) || is_extended_resource(name))
        && q.milli_value() % 1000 != 0
    {
        out.push(invalid(field, &q.to_string(), "must be an integer"));
    }
}

/// The checks of one resource list (`spec.hard`, `status.used`).
fn validate_list(list: &Value, path: &str, out: &mut Vec<Cause>) {
    for (k, v) in list.as_object().into_iter().flatten() {
        let field = format!("{path}[{k}]");
        validate_quota_resource_name(k, &field, out);
        validate_quota_quantity(k, v, &field, out);
    }
}

/// Go's `%#v` of a scope slice, as upstream's messages print it.
fn go_scopes(scopes: &Value) -> String {
    let items: Vec<String> = scopes
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{:?}", s.as_str().unwrap_or("")))
        .collect();
    format!("[]core.ResourceQuotaScope{{{}}}", items.join(", "))
}

fn invalid_raw(field: &str, value: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {value}: {why}"),
        field: field.into(),
    }
}

fn scope_valid_for(scope: &str, resource: &str) -> bool {
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => POD_SCOPE_RESOURCES.contains(&resource),
        "BestEffort" => resource == "pods",
        _ => true,
    }
}

fn standard_quota_name(name: &str) -> bool {
    STANDARD_QUOTA_RESOURCES.contains(&name) || is_hugepages_quota_name(name)
}

fn conflicting(scopes: &[&str]) -> bool {
    [
        ("BestEffort", "NotBestEffort"),
        ("Terminating", "NotTerminating"),
    ]
    .iter()
    .any(|(a, b)| scopes.contains(a) && scopes.contains(b))
}

/// Upstream's `validateResourceQuotaScopes` and `validateScopeSelector`.
fn validate_scopes(spec: &Value, out: &mut Vec<Cause>) {
    let hard: Vec<&str> = spec["hard"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let scopes: Vec<&str> = spec["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let shown = go_scopes(&spec["scopes"]);
    for scope in &scopes {
        if !SCOPES.contains(scope) {
            out.push(invalid_raw("spec.scopes", &shown, "unsupported scope"));
        }
        for k in &hard {
            if standard_quota_name(k) && !scope_valid_for(scope, k) {
                out.push(invalid_raw(
                    "spec.scopes",
                    &shown,
                    "unsupported scope applied to resource",
                ));
            }
        }
    }
    if conflicting(&scopes) {
        out.push(invalid_raw("spec.scopes", &shown, "conflicting scopes"));
    }
    let Some(exprs) = spec["scopeSelector"]["matchExpressions"].as_array() else {
        return;
    };
    let path = "spec.scopeSelector.matchExpressions";
    let mut seen: Vec<&str> = Vec::new();
    for e in exprs {
        let scope = e["scopeName"].as_str().unwrap_or("");
        let op = e["operator"].as_str().unwrap_or("");
        let values = e["values"].as_array().map(Vec::len).unwrap_or(0);
        if !SCOPES.contains(&scope) {
            out.push(invalid(
                format!("{path}.scopeName"),
                scope,
                "unsupported scope",
            ));
        }
        for k in &hard {
            if standard_quota_name(k) && !scope_valid_for(scope, k) {
                out.push(invalid_raw(
                    path,
                    "core.ScopeSelector",
                    "unsupported scope applied to resource",
                ));
            }
        }
        if scope != "PriorityClass" && SCOPES.contains(&scope) && op != "Exists" {
            out.push(invalid(format!("{path}.operator"), op, "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"));
        }
        match op {
            "In" | "NotIn" if values == 0 => out.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector".into(),
                field: format!("{path}.values"),
            }),
            "Exists" | "DoesNotExist" if values != 0 => out.push(invalid_raw(
                &format!("{path}.values"),
                &e["values"].to_string(),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            _ => out.push(invalid(format!("{path}.operator"), op, "not a valid selector operator")),
        }
        seen.push(scope);
    }
    if conflicting(&seen) {
        out.push(invalid_raw(path, &shown, "conflicting scopes"));
    }
}

/// Canonical quantities in the spec and status lists.
fn canonicalize(obj: &mut Value) {
    if obj["spec"]["hard"].is_object() {
        quantity::canonicalize(&mut obj["spec"]["hard"]);
    }
    for k in ["hard", "used"] {
        if obj["status"][k].is_object() {
            quantity::canonicalize(&mut obj["status"][k]);
        }
    }
}

/// The `ResourceQuotas` strategy.
pub struct ResourceQuotas {
    def: ResourceDef,
}

impl ResourceQuotas {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ResourceQuotas {
            def: ResourceDef::new("", "v1", "ResourceQuota", "resourcequotas")
                .short_names(&["quota"])
                .subresource("status", "ResourceQuota", GET_PATCH_UPDATE),
        }
    }
}

impl Default for ResourceQuotas {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for ResourceQuotas {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::ResourceQuota);

    /// Clients may not set the status; admission computes it.
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
        canonicalize(obj);
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
        canonicalize(new);
    }

    fn prepare_for_status_update(&self, old: &Value, new: &Value) -> Value {
        let mut out = crate::apiserver::kinds::default_status_update(old, new);
        canonicalize(&mut out);
        out
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_list(&obj["spec"]["hard"], "spec.hard", &mut out);
        validate_scopes(&obj["spec"], &mut out);
        validate_list(&obj["status"]["hard"], "status.hard", &mut out);
        validate_list(&obj["status"]["used"], "status.used", &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        let set = |v: &Value| {
            let mut s: Vec<String> = v["spec"]["scopes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            s.sort();
            s.dedup();
            s
        };
        if set(old) != set(new) {
            out.push(invalid_raw(
                "spec.scopes",
                &go_scopes(&new["spec"]["scopes"]),
                "field is immutable",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            age_col(),
            col(
                "Request",
                "string",
                0,
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
            col(
                "Limit",
                "string",
                0,
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
            ),
        ]
    }

    /// `resource: used/hard` for every hard resource in name order; `limits.*` in the
    /// LIMIT column, the rest in REQUEST.
    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let show = |v: &Value| match quantity::parse_value(v) {
            Ok(q) => q.to_string(),
            Err(_) if v.is_null() => "0".to_string(),
            Err(_) => s(v).to_string(),
        };
        let mut names: Vec<&String> = obj["status"]["hard"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        names.sort();
        let (mut request, mut limit) = (Vec::new(), Vec::new());
        for name in names {
            let cell = format!(
                "{name}: {}/{}",
                show(&obj["status"]["used"][name]),
                show(&obj["status"]["hard"][name])
            );
            if name.split('.').next() == Some("limits") && name.contains('.') {
                limit.push(cell);
            } else {
                request.push(cell);
            }
        }
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
            json!(request.join(", ")),
            json!(limit.join(", ")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::validation::invalid_message;

    fn causes(obj: Value) -> String {
        invalid_message("ResourceQuota", "q", &ResourceQuotas::new().validate(&obj))
    }

    #[test]
    fn validation_has_upstream_wording() {
        let text = causes(
            json!({"spec": {"hard": {"pods": "1.5", "foo": "1", "cpu": "-1", "memory": "lots", "count/pods": "2"}}}),
        );
        assert!(
            text.contains("spec.hard[pods]: Invalid value: \"1500m\": must be an integer"),
            "{text}"
        );
        assert!(text.contains("spec.hard[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified"), "{text}");
        assert!(
            text.contains(
                "spec.hard[foo]: Invalid value: \"foo\": must be a standard resource for quota"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "spec.hard[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("spec.hard[memory]: Invalid value: \"lots\": quantities must match"),
            "{text}"
        );
        assert!(!text.contains("count/pods"), "{text}");
        let text = causes(
            json!({"spec": {"hard": {"configmaps": "1"}, "scopes": ["BestEffort", "NotBestEffort"]}}),
        );
        assert!(text.contains("spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: unsupported scope applied to resource"), "{text}");
        assert!(text.contains("conflicting scopes"), "{text}");
        assert!(ResourceQuotas::new()
            .validate(&json!({"spec": {"hard": {"pods": "2", "requests.cpu": "1"}, "scopes": ["NotTerminating"]}}))
            .is_empty());
        let old = json!({"spec": {"scopes": ["Terminating"]}});
        let new = json!({"spec": {"scopes": ["NotTerminating"]}});
        let text = invalid_message(
            "ResourceQuota",
            "q",
            &ResourceQuotas::new().validate_update(&old, &new),
        );
        assert!(text.contains("spec.scopes: Invalid value: []core.ResourceQuotaScope{\"NotTerminating\"}: field is immutable"), "{text}");
    }

    #[test]
    fn status_is_server_owned_and_printed_per_resource() {
        let rq = ResourceQuotas::new();
        let mut obj = json!({"spec": {"hard": {"memory": "1.5Gi", "pods": "10"}}, "status": {"used": {"pods": "99"}}});
        rq.prepare_for_create(&mut obj);
        assert!(obj.get("status").is_none());
        assert_eq!(obj["spec"]["hard"]["memory"], "1536Mi");
        obj["metadata"] = json!({"name": "q"});
        obj["status"] = json!({"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
                               "used": {"pods": "1", "limits.cpu": "500m"}});
        let cells = rq.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells[2], "pods: 1/10, requests.cpu: 0/1");
        assert_eq!(cells[3], "limits.cpu: 500m/2");
        assert_eq!(rq.columns()[1].name, "Age");
    }
}
