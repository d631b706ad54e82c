//! admissionregistration.k8s.io/v1 ValidatingAdmissionPolicies (cluster-scoped, with a
//! status): CEL validations a binding applies to matching writes. Upstream's defaults
//! and `validatePolicySpec` (every expression must compile), the NAME VALIDATIONS
//! PARAMKIND AGE printer. `crate::apiserver::admission::policy` evaluates them.

use serde_json::{Value, json};

use super::{
    default_field, default_rules, validate_expression, validate_failure_policy,
    validate_match_conditions, validate_match_policy, validate_rules,
};
use crate::apiserver::kinds::{GET_PATCH_UPDATE, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, invalid, not_supported, required};

/// The reasons a validation may give (upstream's `supportedValidationPolicyReason`).
pub const REASONS: &[&str] = &[
    "Forbidden",
    "Invalid",
    "RequestEntityTooLarge",
    "Unauthorized",
];

/// The `ValidatingAdmissionPolicy` strategy.
pub struct ValidatingAdmissionPolicies {
    def: ResourceDef,
}

impl ValidatingAdmissionPolicies {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ValidatingAdmissionPolicies {
            def: ResourceDef::new(
                super::GROUP,
                "v1",
                "ValidatingAdmissionPolicy",
                "validatingadmissionpolicies",
            )
            .cluster_scoped()
            .categories(&["api-extensions"])
            .subresource("status", "ValidatingAdmissionPolicy", GET_PATCH_UPDATE),
        }
    }
}

impl Default for ValidatingAdmissionPolicies {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `SetDefaults_ValidatingAdmissionPolicySpec` and its match resources.
fn set_defaults(obj: &mut Value) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        return;
    }
    default_field(spec, "failurePolicy", json!("Fail"));
    if let Some(mc) = spec.get_mut("matchConstraints").filter(|m| m.is_object()) {
        default_match_resources(mc);
    }
}

/// Defaults of a `matchResources` (policies' constraints and bindings' narrowing).
pub fn default_match_resources(mc: &mut Value) {
    default_field(mc, "matchPolicy", json!("Equivalent"));
    default_field(mc, "namespaceSelector", json!({}));
    default_field(mc, "objectSelector", json!({}));
    default_rules(&mut mc["resourceRules"]);
    default_rules(&mut mc["excludeResourceRules"]);
}

/// Validation of a `matchResources` at `at`.
pub fn validate_match_resources(mc: &Value, at: &str, out: &mut Vec<Cause>) {
    validate_rules(&mc["resourceRules"], &format!("{at}.resourceRules"), out);
    validate_rules(
        &mc["excludeResourceRules"],
        &format!("{at}.excludeResourceRules"),
        out,
    );
    validate_match_policy(&mc["matchPolicy"], &format!("{at}.matchPolicy"), out);
}

/// Whether `name` can be a CEL identifier (a variable's name).
fn is_cel_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Strategy for ValidatingAdmissionPolicies {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy);

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
        match spec.get("matchConstraints").filter(|m| m.is_object()) {
            None => out.push(required("spec.matchConstraints")),
            Some(mc) => {
                if mc["resourceRules"].as_array().is_none_or(Vec::is_empty) {
                    out.push(required("spec.matchConstraints.resourceRules"));
                }
                validate_match_resources(mc, "spec.matchConstraints", &mut out);
            }
        }
        let validations = spec["validations"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        let audits = spec["auditAnnotations"].as_array().map_or(0, Vec::len);
        if validations.is_empty() && audits == 0 {
            let mut c = required("spec.validations");
            c.message =
                "Required value: validations or auditAnnotations must contain at least one item"
                    .into();
            out.push(c);
        }
        for (i, v) in validations.iter().enumerate() {
            let at = format!("spec.validations[{i}]");
            validate_expression(&v["expression"], &format!("{at}.expression"), &mut out);
            if let Some(m) = v["messageExpression"].as_str()
                && !m.trim().is_empty()
            {
                validate_expression(
                    &v["messageExpression"],
                    &format!("{at}.messageExpression"),
                    &mut out,
                );
            }
            let msg = s(&v["message"]);
            if msg.contains('\n') {
                out.push(invalid(
                    format!("{at}.message"),
                    msg,
                    "message must not contain line breaks",
                ));
            }
            if let Some(r) = v["reason"].as_str()
                && !REASONS.contains(&r)
            {
                out.push(not_supported(format!("{at}.reason"), r, REASONS));
            }
        }
        for (i, v) in spec["variables"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("spec.variables[{i}]");
            let name = s(&v["name"]);
            if name.is_empty() {
                out.push(required(format!("{at}.name")));
            } else if !is_cel_identifier(name) {
                out.push(invalid(
                    format!("{at}.name"),
                    name,
                    "name is not a valid CEL identifier",
                ));
            }
            validate_expression(&v["expression"], &format!("{at}.expression"), &mut out);
        }
        validate_match_conditions(&spec["matchConditions"], "spec.matchConditions", &mut out);
        validate_failure_policy(&spec["failurePolicy"], "spec.failurePolicy", &mut out);
        if let Some(pk) = spec.get("paramKind").filter(|p| p.is_object()) {
            for k in ["apiVersion", "kind"] {
                if s(&pk[k]).is_empty() {
                    out.push(required(format!("spec.paramKind.{k}")));
                }
            }
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
                "Validations",
                "integer",
                0,
                "Validations indicates the number of validation rules.",
            ),
            col(
                "ParamKind",
                "string",
                0,
                "ParamKind specifies the kind of resources used to parameterize this policy",
            ),
            age_col(),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let pk = &obj["spec"]["paramKind"];
        let param_kind = if pk.is_object() {
            format!("{}/{}", s(&pk["apiVersion"]), s(&pk["kind"]))
        } else {
            "<unset>".to_string()
        };
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(obj["spec"]["validations"].as_array().map_or(0, Vec::len)),
            json!(param_kind),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
        ]
    }
}
