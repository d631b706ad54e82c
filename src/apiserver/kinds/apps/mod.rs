//! The apps group (`/apis/apps/v1`): Deployments, ReplicaSets, StatefulSets, DaemonSets
//! and ControllerRevisions. What the workload kinds share is here: upstream's
//! `metav1.LabelSelector` rules (validation, matching, Go's `%#v` of a selector in error
//! messages), the ints-or-percent rules of rolling updates, and the template checks of
//! `ValidatePodTemplateSpecForReplicaSet` (pkg/apis/apps/validation).

pub mod controllerrevision;
pub mod daemonset;
pub mod deployment;
pub mod replicaset;
pub mod statefulset;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Kind;
use super::core::podspec;
use super::core::replicationcontroller::go_map;
use crate::apiserver::status::go_quote;
use crate::apiserver::validation::{
    self, Cause, forbidden, invalid, invalid_num, label_key_ok, not_supported, required,
};

/// The group's name.
pub const GROUP: &str = "apps";

/// Upstream's message for a negative count.
pub const NEGATIVE: &str = "must be greater than or equal to 0";

/// The kinds of apps/v1, in upstream's discovery order.
pub fn kinds() -> Vec<Kind> {
    vec![
        Arc::new(controllerrevision::ControllerRevisions::new()),
        Arc::new(daemonset::DaemonSets::new()),
        Arc::new(deployment::Deployments::new()),
        Arc::new(replicaset::ReplicaSets::new()),
        Arc::new(statefulset::StatefulSets::new()),
    ]
}

/// A cause with a value already printed the way Go prints it.
pub fn invalid_go(field: impl Into<String>, go_value: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {go_value}: {why}"),
        field: field.into(),
    }
}

/// A non-negative count at `field` (upstream's `ValidateNonnegativeField`).
pub fn nonnegative(v: &Value, field: &str, out: &mut Vec<Cause>) {
    let n = v.as_i64().unwrap_or(0);
    if n < 0 {
        out.push(invalid_num(field, n, NEGATIVE));
    }
}

fn go_strings(v: &Value) -> String {
    match v.as_array() {
        None => "[]string(nil)".into(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|s| go_quote(s.as_str().unwrap_or("")))
                .collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// A `metav1.LabelSelector` as Go's `%#v` prints it in field errors
/// (`v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:...}`).
pub fn go_label_selector(sel: &Value) -> String {
    let exprs = match sel["matchExpressions"].as_array() {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(e["key"].as_str().unwrap_or("")),
                        go_quote(e["operator"].as_str().unwrap_or("")),
                        go_strings(&e["values"])
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_map(&sel["matchLabels"]),
        exprs
    )
}

/// An `intstr.IntOrString` as Go's `%#v` prints it.
pub fn go_int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
        other => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or(0)
        ),
    }
}

/// The requirements of a label selector are well formed (upstream's
/// `LabelSelectorAsSelector` succeeds).
fn selector_parses(sel: &Value) -> bool {
    sel["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let n = e["values"].as_array().map_or(0, Vec::len);
            match e["operator"].as_str().unwrap_or("") {
                "In" | "NotIn" => n > 0,
                "Exists" | "DoesNotExist" => n == 0,
                _ => false,
            }
        })
}

/// Whether the `metav1.LabelSelector` `sel` selects an object with `labels`, as
/// `LabelSelectorAsSelector(sel).Matches(labels)`: a missing selector selects nothing,
/// an empty one everything, an ill-formed one nothing.
pub fn selector_matches(sel: &Value, labels: &Value) -> bool {
    if !sel.is_object() || !selector_parses(sel) {
        return false;
    }
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| get(k) == v.as_str());
    by_labels
        && sel["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| {
                let v = get(e["key"].as_str().unwrap_or(""));
                let values: Vec<&str> = e["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                match e["operator"].as_str().unwrap_or("") {
                    "In" => v.is_some_and(|v| values.contains(&v)),
                    "NotIn" => v.is_none_or(|v| !values.contains(&v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    _ => false,
                }
            })
}

/// Whether a selector has no requirement at all.
fn selector_empty(sel: &Value) -> bool {
    sel["matchLabels"].as_object().is_none_or(Map::is_empty)
        && sel["matchExpressions"].as_array().is_none_or(Vec::is_empty)
}

/// Upstream's `ValidateLabelSelector` (strict: values must be label values) at `field`.
pub fn validate_label_selector(sel: &Value, field: &str, out: &mut Vec<Cause>) {
    for (i, e) in sel["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{field}.matchExpressions[{i}]");
        let n = e["values"].as_array().map_or(0, Vec::len);
        let op = e["operator"].as_str().unwrap_or("");
        match op {
            "In" | "NotIn" if n == 0 => out.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: must be specified when `operator` is 'In' or 'NotIn'"
                    .into(),
                field: format!("{at}.values"),
            }),
            "Exists" | "DoesNotExist" if n > 0 => out.push(forbidden(
                format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            _ => out.push(invalid(
                format!("{at}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let key = e["key"].as_str().unwrap_or("");
        if !label_key_ok(key) {
            out.push(invalid(format!("{at}.key"), key, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
        }
        for v in e["values"].as_array().into_iter().flatten() {
            let v = v.as_str().unwrap_or("");
            if !validation::label_value_ok(v) {
                out.push(invalid(format!("{at}.values"), v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
            }
        }
    }
    let mut labels = Vec::new();
    validation::validate_meta(
        &json!({"metadata": {"labels": sel["matchLabels"]}}),
        &mut labels,
    );
    out.extend(labels.into_iter().map(|mut c| {
        c.field = format!("{field}.matchLabels");
        c
    }));
}

/// Whether a selector is absent. The typed round trip turns a missing selector into
/// `{}` (k8s-openapi's field is not optional), so a bare `{}` counts as absent too; an
/// explicit empty one still has its `matchLabels: {}`.
pub fn selector_missing(sel: &Value) -> bool {
    sel.as_object().is_none_or(Map::is_empty)
}

/// The selector rules every workload spec shares: required, well formed, not empty
/// (`empty selector is invalid for <what>`). Returns whether the template check may run
/// (the selector converts; a missing one converts to one that selects nothing).
pub fn validate_spec_selector(spec: &Value, what: &str, out: &mut Vec<Cause>) -> bool {
    let sel = &spec["selector"];
    if selector_missing(sel) {
        out.push(required("spec.selector"));
        return true;
    }
    validate_label_selector(sel, "spec.selector", out);
    if selector_empty(sel) {
        out.push(invalid_go(
            "spec.selector",
            &go_label_selector(sel),
            &format!("empty selector is invalid for {what}"),
        ));
    }
    if !selector_parses(sel) {
        out.push(invalid_go(
            "spec.selector",
            &go_label_selector(sel),
            "invalid label selector",
        ));
        return false;
    }
    true
}

/// Upstream's `ValidatePodTemplateSpecForReplicaSet` at `spec.template` for `kind`
/// (ReplicaSet, Deployment): the selector matches the labels, the template is valid,
/// restartPolicy Always, no activeDeadlineSeconds.
pub fn validate_template_for_replicas(spec: &Value, kind: &str, out: &mut Vec<Cause>) {
    let template = &spec["template"];
    let labels = &template["metadata"]["labels"];
    template_matches(&spec["selector"], labels, out);
    podspec::validate_template(template, "spec.template", out);
    restart_always(template, kind, out);
}

/// The template's labels must be selected: a missing selector selects nothing, an empty
/// one everything.
pub fn template_matches(sel: &Value, labels: &Value, out: &mut Vec<Cause>) {
    if selector_missing(sel) || (!selector_empty(sel) && !selector_matches(sel, labels)) {
        out.push(invalid_go(
            "spec.template.metadata.labels",
            &go_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
}

/// restartPolicy Always and no activeDeadlineSeconds in a workload's template.
pub fn restart_always(template: &Value, kind: &str, out: &mut Vec<Cause>) {
    let policy = template["spec"]["restartPolicy"].as_str().unwrap_or("");
    if policy != "Always" {
        out.push(not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    if !template["spec"]["activeDeadlineSeconds"].is_null() {
        out.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

/// The message upstream's `IsValidPercent` gives.
const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// The number of a valid percent string (`25%` → 25).
fn percent(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    let digits = s.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Upstream's `getIntOrPercentValue`: the percent or the int (0 for anything else).
pub fn int_or_percent_value(v: &Value) -> i64 {
    percent(v).unwrap_or_else(|| v.as_i64().unwrap_or(0))
}

/// Upstream's `ValidatePositiveIntOrPercent` at `field` (a missing value is an int 0).
pub fn validate_int_or_percent(v: &Value, field: &str, out: &mut Vec<Cause>) {
    match v {
        Value::String(_) if percent(v).is_none() => {
            out.push(invalid_go(field, &go_int_or_string(v), PERCENT_MSG));
        }
        Value::String(_) => {}
        other => nonnegative(other, field, out),
    }
}

/// Upstream's `IsNotMoreThan100Percent` at `field`.
pub fn not_more_than_100(v: &Value, field: &str, out: &mut Vec<Cause>) {
    if percent(v).is_some_and(|p| p > 100) {
        out.push(invalid_go(
            field,
            &go_int_or_string(v),
            "must not be greater than 100%",
        ));
    }
}

/// The selector of `spec.selector` may not change (apps/v1's `ValidateImmutableField`).
pub fn selector_immutable(old: &Value, new: &Value, out: &mut Vec<Cause>) {
    let (o, n) = (&old["spec"]["selector"], &new["spec"]["selector"]);
    if o != n {
        out.push(invalid_go(
            "spec.selector",
            &go_label_selector(n),
            "field is immutable",
        ));
    }
}

/// Non-negative status counts, and `cannot be greater than status.replicas` for the
/// `bounded` ones (upstream's `Validate<Kind>Status`).
pub fn validate_counts(status: &Value, counts: &[&str], bounded: &[&str], out: &mut Vec<Cause>) {
    for k in counts {
        nonnegative(&status[*k], &format!("status.{k}"), out);
    }
    let n = |k: &str| status[k].as_i64().unwrap_or(0);
    for k in bounded {
        if n(k) > n("replicas") {
            out.push(invalid_num(
                format!("status.{k}"),
                n(k),
                "cannot be greater than status.replicas",
            ));
        }
    }
}

/// `status.collisionCount` may not go down.
pub fn collision_count_kept(old: &Value, new: &Value, out: &mut Vec<Cause>) {
    let o = old["status"]["collisionCount"].as_i64();
    let n = new["status"]["collisionCount"].as_i64();
    if let Some(o) = o
        && n.is_none_or(|n| n < o)
    {
        out.push(invalid_num(
            "status.collisionCount",
            n.unwrap_or(0),
            "cannot be decremented",
        ));
    }
}

/// The template of `obj` gets the PodSpec defaults.
pub fn template_defaults(obj: &mut Value) {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    podspec::set_template_defaults(&mut obj["spec"]["template"]);
}

/// `spec.selector` as upstream's `labels.Selector.String()` prints it.
pub fn selector_text(obj: &Value) -> String {
    let paths = super::ScalePaths {
        spec_replicas: String::new(),
        status_replicas: String::new(),
        selector: Some(("/spec/selector".into(), super::SelectorForm::LabelSelector)),
        not_found_group: String::new(),
    };
    crate::apiserver::scale::selector_string(obj, &paths)
}

/// The scale paths of an apps/v1 workload.
pub fn scale_paths() -> super::ScalePaths {
    super::ScalePaths {
        spec_replicas: "/spec/replicas".into(),
        status_replicas: "/status/replicas".into(),
        selector: Some(("/spec/selector".into(), super::SelectorForm::LabelSelector)),
        not_found_group: GROUP.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_as_upstream() {
        let sel = json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]});
        assert!(selector_matches(&sel, &json!({"app": "web", "tier": "fe"})));
        assert!(!selector_matches(
            &sel,
            &json!({"app": "web", "tier": "fe", "canary": "1"})
        ));
        assert!(!selector_matches(&sel, &json!({"app": "web", "tier": "x"})));
        assert!(
            selector_matches(&json!({}), &json!({"a": "b"})),
            "empty: all"
        );
        assert!(
            !selector_matches(&Value::Null, &json!({"a": "b"})),
            "nil: none"
        );
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In"}]});
        assert!(!selector_matches(&bad, &json!({"a": "b"})));
    }

    #[test]
    fn go_values_print_as_percent_hash_v() {
        assert_eq!(
            go_label_selector(&json!({"matchLabels": {"app": "web"}})),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        assert_eq!(
            go_label_selector(&json!({"matchExpressions": [{"key": "a", "operator": "Exists"}]})),
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"a\", Operator:\"Exists\", Values:[]string(nil)}}}"
        );
        assert_eq!(
            go_int_or_string(&json!(0)),
            "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}"
        );
        assert_eq!(
            go_int_or_string(&json!("5x")),
            "intstr.IntOrString{Type:1, IntVal:0, StrVal:\"5x\"}"
        );
    }

    #[test]
    fn selector_requirements_are_checked() {
        let sel = json!({"matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c", "operator": "Near", "values": ["x"]}]});
        let mut out = Vec::new();
        validate_label_selector(&sel, "spec.selector", &mut out);
        let got: Vec<String> = out
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator",
            ]
        );
    }

    #[test]
    fn ints_or_percents() {
        assert_eq!(int_or_percent_value(&json!("25%")), 25);
        assert_eq!(int_or_percent_value(&json!(3)), 3);
        assert_eq!(int_or_percent_value(&json!("x")), 0);
        let mut out = Vec::new();
        validate_int_or_percent(&json!("5x"), "f", &mut out);
        validate_int_or_percent(&json!(-1), "g", &mut out);
        not_more_than_100(&json!("101%"), "h", &mut out);
        let fields: Vec<&str> = out.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["f", "g", "h"]);
        assert!(out[2].message.ends_with("must not be greater than 100%"));
    }
}
