//! policy/v1 PodDisruptionBudgets (+`status`): upstream's v1 defaults (minAvailable 1
//! when neither bound is set), `ValidatePodDisruptionBudget*` (minAvailable xor
//! maxUnavailable, int-or-percent bounds, the label selector, unhealthyPodEvictionPolicy),
//! the NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE columns and short name
//! `pdb`. The status is written by `crate::controller::disruption` and by evictions.

use serde_json::{Value, json};

use crate::apiserver::kinds::{GET_PATCH_UPDATE, ListMerge, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{
    Cause, invalid, invalid_num, label_key_ok, label_value_ok, not_supported, required,
};

/// The `unhealthyPodEvictionPolicy` values upstream supports (sorted, as its message lists
/// them).
pub const UNHEALTHY_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

/// The condition type the disruption controller and evictions maintain.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";

/// Upstream's `validation.IsValidPercent` message.
const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// The `PodDisruptionBudget` strategy.
pub struct PodDisruptionBudgets {
    def: ResourceDef,
}

impl PodDisruptionBudgets {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        PodDisruptionBudgets {
            def: ResourceDef::new(
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
            )
            .short_names(&["pdb"])
            .subresource("status", "PodDisruptionBudget", GET_PATCH_UPDATE),
        }
    }
}

impl Default for PodDisruptionBudgets {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `metav1.LabelSelector` `selector` matches the label map `labels`, as
/// `LabelSelectorAsSelector` builds it: an absent selector matches nothing, an empty
/// one everything (policy/v1 semantics); an unknown operator matches nothing.
pub fn selector_matches(selector: &Value, labels: &Value) -> bool {
    if !selector.is_object() {
        return false;
    }
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    for (k, v) in selector["matchLabels"].as_object().into_iter().flatten() {
        if get(k) != v.as_str() {
            return false;
        }
    }
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let ok = match e["operator"].as_str().unwrap_or("") {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// An int-or-percent as Go's `IntOrString.String()` prints it.
fn int_or_string_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The percentage of a percent string (`"50%"` → 50), as upstream's `getPercentValue`.
fn percent_of(v: &str) -> Option<i64> {
    let digits = v.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Upstream's `GetScaledValueFromIntOrPercent`: an integer as it is, a percentage of
/// `total` rounded up or down.
pub fn scaled_value(v: &Value, total: i64, round_up: bool) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("invalid value for IntOrString: {n}")),
        Value::String(s) => {
            let p = percent_of(s).ok_or_else(|| {
                "invalid value for IntOrString: invalid type: string is not a percentage"
                    .to_string()
            })?;
            let scaled = p * total;
            Ok(if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            })
        }
        _ => Err("invalid value for IntOrString: invalid type: neither int nor percentage".into()),
    }
}

/// Upstream's `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent` at `field`.
fn int_or_percent(v: &Value, field: &str, out: &mut Vec<Cause>) {
    let invalid_text = |why: &str| Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {why}", int_or_string_text(v)),
        field: field.into(),
    };
    match v {
        Value::String(s) => match percent_of(s) {
            None => out.push(invalid_text(PERCENT_MSG)),
            Some(p) if p > 100 => out.push(invalid_text("must not be greater than 100%")),
            Some(_) => {}
        },
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(-1);
            if n < 0 {
                out.push(invalid_num(field, n, "must be greater than or equal to 0"));
            }
        }
        _ => out.push(invalid_text("must be an integer or percentage (e.g '5%')")),
    }
}

/// Upstream's `ValidateLabelSelector` at `field` (keys and values of matchLabels, the
/// operators and values of matchExpressions).
pub fn validate_label_selector(sel: &Value, field: &str, out: &mut Vec<Cause>) {
    if !sel.is_object() {
        return;
    }
    let key_msg = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let value_msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    for (k, v) in sel["matchLabels"].as_object().into_iter().flatten() {
        if !label_key_ok(k) {
            out.push(invalid(format!("{field}.matchLabels"), k, key_msg));
        }
        let v = v.as_str().unwrap_or("");
        if !label_value_ok(v) {
            out.push(invalid(format!("{field}.matchLabels"), v, value_msg));
        }
    }
    for (i, e) in sel["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{field}.matchExpressions[{i}]");
        let op = e["operator"].as_str().unwrap_or("");
        let n = e["values"].as_array().map_or(0, Vec::len);
        match op {
            "In" | "NotIn" if n == 0 => out.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: must be specified when `operator` is 'In' or 'NotIn'"
                    .into(),
                field: format!("{at}.values"),
            }),
            "Exists" | "DoesNotExist" if n > 0 => out.push(Cause {
                reason: "FieldValueForbidden".into(),
                message:
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                        .into(),
                field: format!("{at}.values"),
            }),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => out.push(invalid(
                format!("{at}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = e["key"].as_str().unwrap_or("");
        if !label_key_ok(key) {
            out.push(invalid(format!("{at}.key"), key, key_msg));
        }
    }
}

/// Upstream's `ValidatePodDisruptionBudgetSpec` at `spec`.
fn validate_spec(spec: &Value, out: &mut Vec<Cause>) {
    let min = &spec["minAvailable"];
    let max = &spec["maxUnavailable"];
    if !min.is_null() && !max.is_null() {
        out.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: policy.PodDisruptionBudgetSpec{{MinAvailable:{}, Selector:..., MaxUnavailable:{}}}: minAvailable and maxUnavailable cannot be both set",
                int_or_string_text(min),
                int_or_string_text(max)
            ),
            field: "spec".into(),
        });
    }
    if !min.is_null() {
        int_or_percent(min, "spec.minAvailable", out);
    }
    if !max.is_null() {
        int_or_percent(max, "spec.maxUnavailable", out);
    }
    validate_label_selector(&spec["selector"], "spec.selector", out);
    if let Some(p) = spec["unhealthyPodEvictionPolicy"].as_str()
        && !UNHEALTHY_POLICIES.contains(&p)
    {
        out.push(not_supported(
            "spec.unhealthyPodEvictionPolicy",
            p,
            UNHEALTHY_POLICIES,
        ));
    }
}

/// Upstream's `ValidatePodDisruptionBudgetStatusUpdate`: no negative counts, conditions
/// with a type and a status.
fn validate_status(status: &Value, out: &mut Vec<Cause>) {
    for k in [
        "disruptionsAllowed",
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
    ] {
        let n = status[k].as_i64().unwrap_or(0);
        if n < 0 {
            out.push(invalid_num(
                format!("status.{k}"),
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
    for (i, c) in status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if c["type"].as_str().unwrap_or("").is_empty() {
            out.push(required(format!("status.conditions[{i}].type")));
        }
        let st = c["status"].as_str().unwrap_or("");
        if !["True", "False", "Unknown"].contains(&st) {
            out.push(not_supported(
                format!("status.conditions[{i}].status"),
                st,
                &["False", "True", "Unknown"],
            ));
        }
    }
}

/// Upstream's v1 `SetDefaults_PodDisruptionBudgetSpec`.
fn set_defaults(obj: &mut Value) {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    if obj["spec"]["minAvailable"].is_null() && obj["spec"]["maxUnavailable"].is_null() {
        obj["spec"]["minAvailable"] = json!(1);
    }
}

/// The status every new budget starts with (the Go zero values that are always encoded).
fn empty_status() -> Value {
    json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
}

impl Strategy for PodDisruptionBudgets {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::policy::v1::PodDisruptionBudget);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {}, "status": empty_status()})
    }

    /// Defaults, an empty status and generation 1 (upstream's `PrepareForCreate`).
    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
        obj["status"] = empty_status();
        obj["metadata"]["generation"] = json!(1);
    }

    /// Defaults and keeps the stored status (the handler moves the generation when the
    /// spec changed).
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_defaults(new);
        new["status"] = old.get("status").cloned().unwrap_or_else(empty_status);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(&obj["spec"], &mut out);
        out
    }

    fn validate_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Vec<Cause> {
        if sub == "status" {
            let mut out = Vec::new();
            validate_status(&new["status"], &mut out);
            return out;
        }
        self.validate_update(old, new)
    }

    fn list_merge(&self, path: &[&str]) -> ListMerge {
        match path {
            ["status", "conditions"] => ListMerge::MergeByKey("type"),
            _ => ListMerge::Replace,
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col(
                "Min Available",
                "string",
                0,
                "The minimum number of pods that must be available.",
            ),
            col(
                "Max Unavailable",
                "string",
                0,
                "The maximum number of pods that may be unavailable.",
            ),
            col(
                "Allowed Disruptions",
                "integer",
                0,
                "Calculated number of pods that may be disrupted at this time.",
            ),
            age_col(),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let bound = |v: &Value| {
            if v.is_null() {
                "N/A".to_string()
            } else {
                int_or_string_text(v)
            }
        };
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(bound(&obj["spec"]["minAvailable"])),
            json!(bound(&obj["spec"]["maxUnavailable"])),
            json!(obj["status"]["disruptionsAllowed"].as_i64().unwrap_or(0)),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn min_available_defaults_to_one_and_status_starts_empty() {
        let st = PodDisruptionBudgets::new();
        let mut obj = json!({"metadata": {"name": "b"}, "spec": {"selector": {}},
            "status": {"disruptionsAllowed": 5}});
        st.prepare_for_create(&mut obj);
        assert_eq!(obj["spec"]["minAvailable"], 1);
        assert_eq!(obj["status"], empty_status());
        assert_eq!(obj["metadata"]["generation"], 1);
        let mut max = json!({"spec": {"maxUnavailable": "10%"}});
        st.prepare_for_create(&mut max);
        assert!(max["spec"]["minAvailable"].is_null());
    }

    #[test]
    fn bounds_are_exclusive_and_int_or_percent() {
        let st = PodDisruptionBudgets::new();
        let both = json!({"spec": {"minAvailable": 1, "maxUnavailable": "20%"}});
        let got = messages(&st.validate(&both));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].ends_with("minAvailable and maxUnavailable cannot be both set"),
            "{got:?}"
        );
        let bad = json!({"spec": {"minAvailable": "abc"}});
        assert_eq!(
            messages(&st.validate(&bad)),
            vec![format!(
                "spec.minAvailable: Invalid value: abc: {PERCENT_MSG}"
            )]
        );
        let over = json!({"spec": {"maxUnavailable": "150%"}});
        assert_eq!(
            messages(&st.validate(&over)),
            vec!["spec.maxUnavailable: Invalid value: 150%: must not be greater than 100%"]
        );
        let neg = json!({"spec": {"minAvailable": -1}});
        assert_eq!(
            messages(&st.validate(&neg)),
            vec!["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]
        );
        let policy = json!({"spec": {"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"}});
        assert_eq!(
            messages(&st.validate(&policy)),
            vec![
                "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Never\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\""
            ]
        );
    }

    #[test]
    fn selector_rules() {
        let st = PodDisruptionBudgets::new();
        let obj = json!({"spec": {"minAvailable": 1, "selector": {"matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c", "operator": "Near"}]}}});
        let fields: Vec<String> = st.validate(&obj).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            vec![
                "spec.selector.matchExpressions[0].values",
                "spec.selector.matchExpressions[1].values",
                "spec.selector.matchExpressions[2].operator",
            ]
        );
    }

    #[test]
    fn selectors_match_as_upstream() {
        let labels = json!({"app": "web", "tier": "fe"});
        assert!(!selector_matches(&Value::Null, &labels), "nil: nothing");
        assert!(selector_matches(&json!({}), &labels), "empty: everything");
        assert!(selector_matches(
            &json!({"matchLabels": {"app": "web"}}),
            &labels
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"app": "db"}}),
            &labels
        ));
        let expr = |op: &str, values: Value| json!({"matchExpressions": [{"key": "tier", "operator": op, "values": values}]});
        assert!(selector_matches(&expr("In", json!(["fe", "be"])), &labels));
        assert!(!selector_matches(&expr("NotIn", json!(["fe"])), &labels));
        assert!(selector_matches(&expr("Exists", json!(null)), &labels));
        assert!(!selector_matches(
            &expr("DoesNotExist", json!(null)),
            &labels
        ));
    }

    #[test]
    fn percentages_scale_with_rounding() {
        assert_eq!(scaled_value(&json!(3), 10, true), Ok(3));
        assert_eq!(scaled_value(&json!("50%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&json!("50%"), 3, false), Ok(1));
        assert!(scaled_value(&json!("x"), 3, false).is_err());
    }

    #[test]
    fn rows_show_bounds_and_allowed_disruptions() {
        let st = PodDisruptionBudgets::new();
        let obj = json!({"metadata": {"name": "b"}, "spec": {"minAvailable": "50%"},
            "status": {"disruptionsAllowed": 2}});
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(
            &cells[..4],
            &[json!("b"), json!("50%"), json!("N/A"), json!(2)]
        );
        let status = json!({"status": {"disruptionsAllowed": -1}});
        assert_eq!(
            messages(&st.validate_subresource_update("status", &json!({}), &status)),
            vec![
                "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"
            ]
        );
    }
}
