//! scheduling.k8s.io/v1 PriorityClasses (cluster-scoped, short name `pc`): upstream's
//! defaults (preemptionPolicy PreemptLowerPriority), `ValidatePriorityClass*` (values
//! above 1e9 only for the reserved `system-` classes, value and preemptionPolicy
//! immutable), the NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY columns, and the two
//! built-in classes every cluster has ([`SYSTEM_CLASSES`], created at boot).

use serde_json::{Value, json};

use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, forbidden, invalid, not_supported};

/// The name prefix reserved for the system classes.
pub const SYSTEM_PREFIX: &str = "system-";

/// The highest value a user-defined class may have (upstream's
/// `HighestUserDefinablePriority`).
pub const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;

/// The preemption policies a class (and a pod) may have.
pub const PREEMPTION_POLICIES: &[&str] = &["Never", "PreemptLowerPriority"];

/// The default preemption policy.
pub const PREEMPT_LOWER: &str = "PreemptLowerPriority";

/// The built-in classes: name, value, description (upstream's `SystemPriorityClasses`;
/// neither is the global default).
pub const SYSTEM_CLASSES: [(&str, i64, &str); 2] = [
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// A built-in class as it is created at boot.
pub fn system_class(name: &str, value: i64, description: &str) -> Value {
    json!({
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "description": description,
    })
}

/// The `PriorityClass` strategy.
pub struct PriorityClasses {
    def: ResourceDef,
}

impl PriorityClasses {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        PriorityClasses {
            def: ResourceDef::new(
                "scheduling.k8s.io",
                "v1",
                "PriorityClass",
                "priorityclasses",
            )
            .cluster_scoped()
            .short_names(&["pc"]),
        }
    }
}

impl Default for PriorityClasses {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `IsKnownSystemPriorityClass`: why a `system-` class is not one of the
/// built-ins exactly, if it is not.
fn system_class_error(name: &str, value: i64, global_default: bool) -> Option<String> {
    let Some((n, v, _)) = SYSTEM_CLASSES.iter().find(|(n, _, _)| *n == name) else {
        return Some(format!("{name} is not a known system priority class"));
    };
    if *v != value {
        return Some(format!("value of {n} PriorityClass must be {v}"));
    }
    if global_default {
        return Some(format!("globalDefault of {n} PriorityClass must be false"));
    }
    None
}

/// Upstream's `ValidatePreemptionPolicy` at `field`.
pub fn validate_preemption_policy(v: &Value, field: &str, out: &mut Vec<Cause>) {
    if let Some(p) = v.as_str()
        && !PREEMPTION_POLICIES.contains(&p)
    {
        out.push(not_supported(field, p, PREEMPTION_POLICIES));
    }
}

impl Strategy for PriorityClasses {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::scheduling::v1::PriorityClass);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "value": 0})
    }

    /// Upstream's v1 `SetDefaults_PriorityClass`.
    fn prepare_for_create(&self, obj: &mut Value) {
        if obj["preemptionPolicy"].is_null() {
            obj["preemptionPolicy"] = json!(PREEMPT_LOWER);
        }
    }

    fn prepare_for_update(&self, _old: &Value, new: &mut Value) {
        self.prepare_for_create(new);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        let value = obj["value"].as_i64().unwrap_or(0);
        if name.starts_with(SYSTEM_PREFIX) {
            let global = obj["globalDefault"].as_bool().unwrap_or(false);
            if let Some(e) = system_class_error(name, value, global) {
                out.push(forbidden(
                    "metadata.name",
                    &format!("priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {e}"),
                ));
            }
        } else if value > HIGHEST_USER_PRIORITY {
            out.push(forbidden(
                "value",
                &format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"
                ),
            ));
        }
        validate_preemption_policy(&obj["preemptionPolicy"], "preemptionPolicy", &mut out);
        out
    }

    /// Upstream's `ValidatePriorityClassUpdate`: value and preemptionPolicy never change.
    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        if old["value"].as_i64().unwrap_or(0) != new["value"].as_i64().unwrap_or(0) {
            out.push(forbidden("value", "may not be changed in an update."));
        }
        if old["preemptionPolicy"] != new["preemptionPolicy"] {
            out.push(invalid(
                "preemptionPolicy",
                new["preemptionPolicy"].as_str().unwrap_or(""),
                "field is immutable",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col(
                "Value",
                "integer",
                0,
                "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
            ),
            col(
                "Global-Default",
                "boolean",
                0,
                "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.",
            ),
            age_col(),
            col(
                "PreemptionPolicy",
                "string",
                0,
                "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(obj["value"].as_i64().unwrap_or(0)),
            json!(obj["globalDefault"].as_bool().unwrap_or(false)),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
            json!(s(&obj["preemptionPolicy"])),
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

    fn pc(name: &str, value: i64) -> Value {
        json!({"metadata": {"name": name}, "value": value})
    }

    #[test]
    fn user_values_are_capped_and_the_system_prefix_is_reserved() {
        let st = PriorityClasses::new();
        assert!(st.validate(&pc("high", HIGHEST_USER_PRIORITY)).is_empty());
        assert_eq!(
            messages(&st.validate(&pc("higher", HIGHEST_USER_PRIORITY + 1))),
            vec![
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
            ]
        );
        assert_eq!(
            messages(&st.validate(&pc("system-mine", 5))),
            vec![
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"
            ]
        );
        assert_eq!(
            messages(&st.validate(&pc("system-node-critical", 5))),
            vec![
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000"
            ]
        );
        for (n, v, d) in SYSTEM_CLASSES {
            assert!(st.validate(&system_class(n, v, d)).is_empty(), "{n}");
        }
    }

    #[test]
    fn value_and_preemption_policy_are_immutable() {
        let st = PriorityClasses::new();
        let mut old = pc("a", 1);
        st.prepare_for_create(&mut old);
        assert_eq!(old["preemptionPolicy"], PREEMPT_LOWER);
        let mut new = pc("a", 2);
        new["preemptionPolicy"] = json!("Never");
        assert_eq!(
            messages(&st.validate_update(&old, &new)),
            vec![
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"Never\": field is immutable",
            ]
        );
        let mut bad = pc("b", 1);
        bad["preemptionPolicy"] = json!("Sometimes");
        assert_eq!(
            messages(&st.validate(&bad)),
            vec![
                "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"Never\", \"PreemptLowerPriority\""
            ]
        );
    }

    #[test]
    fn rows() {
        let st = PriorityClasses::new();
        let mut obj = pc("a", 7);
        st.prepare_for_create(&mut obj);
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(cells[1], 7);
        assert_eq!(cells[2], false);
        assert_eq!(cells[4], PREEMPT_LOWER);
    }
}
