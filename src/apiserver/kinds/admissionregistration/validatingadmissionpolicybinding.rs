//! admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBindings (cluster-scoped):
//! which policy applies where, with which parameters and actions. Upstream's defaults
//! and validation (`validationActions` required, unique, not both Deny and Warn), the
//! NAME POLICYNAME PARAMREF AGE printer.

use serde_json::{Value, json};

use super::validatingadmissionpolicy::{default_match_resources, validate_match_resources};
use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, duplicate, invalid, not_supported, required};

const ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];

/// The `ValidatingAdmissionPolicyBinding` strategy.
pub struct ValidatingAdmissionPolicyBindings {
    def: ResourceDef,
}

impl ValidatingAdmissionPolicyBindings {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ValidatingAdmissionPolicyBindings {
            def: ResourceDef::new(
                super::GROUP,
                "v1",
                "ValidatingAdmissionPolicyBinding",
                "validatingadmissionpolicybindings",
            )
            .cluster_scoped()
            .categories(&["api-extensions"]),
        }
    }
}

impl Default for ValidatingAdmissionPolicyBindings {
    fn default() -> Self {
        Self::new()
    }
}

fn set_defaults(obj: &mut Value) {
    if let Some(mr) = obj["spec"]
        .get_mut("matchResources")
        .filter(|m| m.is_object())
    {
        default_match_resources(mr);
    }
    if let Some(pr) = obj["spec"].get_mut("paramRef").filter(|m| m.is_object()) {
        super::default_field(pr, "parameterNotFoundAction", json!("Deny"));
    }
}

impl Strategy for ValidatingAdmissionPolicyBindings {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(
        k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding
    );

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {}})
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
    }

    fn prepare_for_update(&self, _old: &Value, new: &mut Value) {
        set_defaults(new);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let spec = &obj["spec"];
        if s(&spec["policyName"]).is_empty() {
            out.push(required("spec.policyName"));
        }
        let actions: Vec<&str> = spec["validationActions"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if actions.is_empty() {
            out.push(required("spec.validationActions"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, a) in actions.iter().enumerate() {
            let at = format!("spec.validationActions[{i}]");
            if !seen.insert(*a) {
                out.push(duplicate(&at, a));
            }
            if !ACTIONS.contains(a) {
                out.push(not_supported(&at, a, ACTIONS));
            }
        }
        if seen.contains("Deny") && seen.contains("Warn") {
            out.push(invalid(
                "spec.validationActions",
                &spec["validationActions"].to_string(),
                "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
            ));
        }
        if let Some(pr) = spec.get("paramRef").filter(|p| p.is_object()) {
            let named = !s(&pr["name"]).is_empty();
            let selected = pr["selector"].is_object();
            if named == selected {
                let mut c = required("spec.paramRef");
                c.message = "Required value: one of name or selector must be specified".into();
                out.push(c);
            }
            if let Some(a) = pr["parameterNotFoundAction"].as_str()
                && !["Allow", "Deny"].contains(&a)
            {
                out.push(not_supported(
                    "spec.paramRef.parameterNotFoundAction",
                    a,
                    &["Allow", "Deny"],
                ));
            }
        }
        if let Some(mr) = spec.get("matchResources").filter(|m| m.is_object()) {
            validate_match_resources(mr, "spec.matchResources", &mut out);
        }
        out
    }

    fn validate_update(&self, _old: &Value, new: &Value) -> Vec<Cause> {
        self.validate(new)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col(
                "PolicyName",
                "string",
                0,
                "PolicyName indicates the policy definition which the policy binding binded to.",
            ),
            col(
                "ParamRef",
                "string",
                0,
                "ParamRef indicates the param resource which sets the configration param",
            ),
            age_col(),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let pr = &obj["spec"]["paramRef"];
        let param = if pr.is_object() {
            let name = match s(&pr["name"]) {
                "" if pr["selector"].is_object() => {
                    crate::apiserver::kinds::apps::go_label_selector(&pr["selector"])
                }
                "" => "<unset>".to_string(),
                n => n.to_string(),
            };
            match s(&pr["namespace"]) {
                "" => name,
                ns => format!("{ns}/{name}"),
            }
        } else {
            "<unset>".to_string()
        };
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(s(&obj["spec"]["policyName"])),
            json!(param),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
        ]
    }
}
