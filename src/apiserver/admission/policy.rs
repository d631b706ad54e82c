//! ValidatingAdmissionPolicy: CEL rules in the API server, as upstream's policy plugin
//! runs them. A write is checked by every policy whose `matchConstraints` (and
//! `matchConditions`) take it, once per binding whose `matchResources` take it and once per
//! parameter object the binding's `paramRef` selects; a failed validation denies, warns or
//! is only audited, as the binding's `validationActions` say.

use serde_json::{Value, json};

use super::matching::{admission_request, namespace_matches, object_matches, rule_matches};
use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::cel::{self, CelError};
use crate::apiserver::status::ApiError;

/// Upstream's ValidatingAdmissionPolicy plugin.
pub struct ValidatingAdmissionPolicy;

const GROUP: &str = "admissionregistration.k8s.io";

/// The objects of an admissionregistration kind, sorted by name.
fn objects(srv: &ApiServer, plural: &str) -> Vec<Value> {
    let snap = srv.registry.snapshot();
    let Some(kind) = snap.find(GROUP, "v1", plural) else {
        return Vec::new();
    };
    let mut all: Vec<Value> = srv
        .store
        .list_shared(&kind.def().prefix(None))
        .0
        .iter()
        .map(|o| (**o).clone())
        .collect();
    all.sort_by(|a, b| {
        a["metadata"]["name"]
            .as_str()
            .cmp(&b["metadata"]["name"].as_str())
    });
    all
}

/// A `NamedRuleWithOperations`: a rule plus, optionally, the object names it covers.
fn named_rule_matches(rule: &Value, req: &Request<'_>) -> bool {
    let names = rule["resourceNames"].as_array().filter(|a| !a.is_empty());
    rule_matches(rule, req) && names.is_none_or(|n| n.iter().any(|x| x == req.name))
}

/// Upstream's `MatchResources` matcher (a policy's `matchConstraints`, a binding's
/// `matchResources`): selectors, then included and not excluded rules.
fn resources_match(srv: &ApiServer, req: &Request<'_>, obj: &Value, m: &Value) -> bool {
    let rules = |f: &str| m[f].as_array().cloned().unwrap_or_default();
    namespace_matches(srv, req, obj, &m["namespaceSelector"])
        && object_matches(req, obj, &m["objectSelector"])
        && rules("resourceRules")
            .iter()
            .any(|r| named_rule_matches(r, req))
        && !rules("excludeResourceRules")
            .iter()
            .any(|r| named_rule_matches(r, req))
}

/// What a failed policy does, before the binding's actions apply.
struct Failure {
    message: String,
    /// `Invalid` unless the validation names another reason.
    reason: String,
}

/// The outcome of one policy under one binding.
enum Outcome {
    Pass,
    Failed(Vec<Failure>),
}

/// The CEL variables every expression of a policy sees.
struct Vars {
    list: Vec<(&'static str, ::cel::Value)>,
}

impl Vars {
    fn new(srv: &ApiServer, req: &Request<'_>, obj: &Value, params: &Value) -> Self {
        let r = admission_request(req, req.kind, "", obj);
        let namespace = match req.namespace {
            Some(ns) if req.kind.def().namespaced => super::matching::namespace_object(srv, ns),
            _ => Value::Null,
        };
        Vars {
            list: vec![
                ("object", cel::to_cel(&r["object"])),
                ("oldObject", cel::to_cel(&r["oldObject"])),
                ("request", cel::to_cel(&r)),
                ("params", cel::to_cel(params)),
                ("namespaceObject", cel::to_cel(&namespace)),
                ("variables", cel::map(Vec::new())),
            ],
        }
    }

    /// Evaluates the policy's `variables` in order, each seeing the ones before it.
    fn with_variables(mut self, variables: &Value) -> Self {
        let mut done: Vec<(String, ::cel::Value)> = Vec::new();
        for v in variables.as_array().into_iter().flatten() {
            let name = v["name"].as_str().unwrap_or("").to_string();
            let value = cel::compile(v["expression"].as_str().unwrap_or(""))
                .and_then(|p| cel::eval(&p, &self.list));
            match value {
                Ok(value) => done.push((name, value)),
                Err(e) => tracing::debug!(variable = %name, error = %e, "policy variable failed"),
            }
            let entries = done.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
            if let Some(slot) = self.list.iter_mut().find(|(n, _)| *n == "variables") {
                slot.1 = cel::map(entries);
            }
        }
        self
    }
}

fn expression_error(expr: &str, e: &CelError) -> String {
    format!("expression '{expr}' resulted in error: {e}")
}

/// Runs the policy's validations with `vars`.
fn run_validations(policy: &Value, vars: &Vars) -> Outcome {
    let spec = &policy["spec"];
    let fail_closed = spec["failurePolicy"].as_str() != Some("Ignore");
    let mut failures = Vec::new();
    for v in spec["validations"].as_array().into_iter().flatten() {
        let expr = v["expression"].as_str().unwrap_or("");
        let reason = v["reason"].as_str().unwrap_or("Invalid").to_string();
        match cel::compile(expr).and_then(|p| cel::eval_bool(&p, &vars.list)) {
            Ok(true) => {}
            Ok(false) => {
                let from_expression = v["messageExpression"]
                    .as_str()
                    .and_then(|m| {
                        cel::compile(m)
                            .and_then(|p| cel::eval_string(&p, &vars.list))
                            .ok()
                    })
                    .filter(|m| !m.trim().is_empty() && !m.contains('\n'));
                let message = from_expression
                    .or_else(|| {
                        v["message"]
                            .as_str()
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| format!("failed expression: {}", expr.trim()));
                failures.push(Failure { message, reason });
            }
            Err(e) if fail_closed => failures.push(Failure {
                message: expression_error(expr, &e),
                reason,
            }),
            Err(e) => tracing::debug!(error = %e, "policy expression failed; ignored"),
        }
    }
    if failures.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Failed(failures)
    }
}

/// Whether the policy's `matchConditions` all hold (an error fails closed or open as the
/// policy's `failurePolicy` says).
fn conditions_hold(policy: &Value, vars: &Vars) -> Result<bool, Failure> {
    let fail_closed = policy["spec"]["failurePolicy"].as_str() != Some("Ignore");
    for c in policy["spec"]["matchConditions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let expr = c["expression"].as_str().unwrap_or("");
        match cel::compile(expr).and_then(|p| cel::eval_bool(&p, &vars.list)) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if fail_closed => {
                return Err(Failure {
                    message: expression_error(expr, &e),
                    reason: "Invalid".into(),
                });
            }
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// Why a binding's parameters could not be found.
enum ParamsError {
    /// A configuration problem (fails as the policy's `failurePolicy` says).
    Config(String),
    /// Nothing matched and the binding says `Allow`.
    AllowMissing,
}

/// The parameter objects of `binding` for this request (one `Null` when the policy takes
/// none).
fn params(
    srv: &ApiServer,
    req: &Request<'_>,
    policy: &Value,
    binding: &Value,
) -> Result<Vec<Value>, ParamsError> {
    let kind_ref = &policy["spec"]["paramKind"];
    let param_ref = &binding["spec"]["paramRef"];
    if !kind_ref.is_object() {
        return Ok(vec![Value::Null]);
    }
    if !param_ref.is_object() {
        return Err(ParamsError::Config(format!(
            "ValidatingAdmissionPolicy '{}' has a paramKind but binding '{}' has no paramRef",
            policy["metadata"]["name"].as_str().unwrap_or(""),
            binding["metadata"]["name"].as_str().unwrap_or("")
        )));
    }
    let api_version = kind_ref["apiVersion"].as_str().unwrap_or("");
    let (group, _version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = kind_ref["kind"].as_str().unwrap_or("");
    let snap = srv.registry.snapshot();
    let Some(param_kind) = snap.find_kind(group, kind) else {
        return Err(ParamsError::Config(format!(
            "failed to find resource referenced by paramKind: '{api_version}, Kind={kind}'"
        )));
    };
    let def = param_kind.def();
    let namespace = if def.namespaced {
        match param_ref["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .or(req.namespace)
        {
            Some(ns) => Some(ns),
            None => {
                return Err(ParamsError::Config(
                    "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources".into(),
                ));
            }
        }
    } else {
        None
    };
    let found: Vec<Value> = match param_ref["name"].as_str().filter(|n| !n.is_empty()) {
        Some(name) => srv
            .store
            .get_shared(&def.key(namespace, name))
            .map(|o| param_kind.to_view(&o))
            .into_iter()
            .collect(),
        None => {
            let selector = &param_ref["selector"];
            srv.store
                .list_shared(&def.prefix(namespace))
                .0
                .iter()
                .map(|o| param_kind.to_view(o))
                .filter(|o| {
                    let labels = if o["metadata"]["labels"].is_object() {
                        o["metadata"]["labels"].clone()
                    } else {
                        json!({})
                    };
                    crate::apiserver::kinds::apps::selector_matches(selector, &labels)
                })
                .collect()
        }
    };
    if !found.is_empty() {
        return Ok(found);
    }
    match param_ref["parameterNotFoundAction"]
        .as_str()
        .unwrap_or("Deny")
    {
        "Allow" => Err(ParamsError::AllowMissing),
        _ => Err(ParamsError::Config(
            "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
        )),
    }
}

/// Checks one policy under one binding.
fn check(
    srv: &ApiServer,
    req: &Request<'_>,
    obj: &Value,
    policy: &Value,
    binding: &Value,
) -> Outcome {
    let fail_closed = policy["spec"]["failurePolicy"].as_str() != Some("Ignore");
    let config_failure = |message: String| {
        if fail_closed {
            Outcome::Failed(vec![Failure {
                message,
                reason: "Invalid".into(),
            }])
        } else {
            Outcome::Pass
        }
    };
    let all = match params(srv, req, policy, binding) {
        Ok(p) => p,
        Err(ParamsError::AllowMissing) => return Outcome::Pass,
        Err(ParamsError::Config(m)) => return config_failure(m),
    };
    let mut failures = Vec::new();
    for p in &all {
        let vars = Vars::new(srv, req, obj, p).with_variables(&policy["spec"]["variables"]);
        match conditions_hold(policy, &vars) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(f) => {
                failures.push(f);
                continue;
            }
        }
        if let Outcome::Failed(f) = run_validations(policy, &vars) {
            failures.extend(f);
        }
    }
    if failures.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Failed(failures)
    }
}

fn code_of(reason: &str) -> u16 {
    match reason {
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    }
}

impl Plugin for ValidatingAdmissionPolicy {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionPolicy"
    }

    fn validate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            if req.kind.def().group == GROUP {
                return Ok(());
            }
            let policies = objects(srv, "validatingadmissionpolicies");
            if policies.is_empty() {
                return Ok(());
            }
            let bindings = objects(srv, "validatingadmissionpolicybindings");
            // On deletes the object checked is the stored one (`oldObject`), `object` is null.
            let obj = if req.operation == Operation::Delete {
                req.old.unwrap_or(obj)
            } else {
                obj
            };
            for policy in &policies {
                let pname = policy["metadata"]["name"].as_str().unwrap_or("");
                if !resources_match(srv, req, obj, &policy["spec"]["matchConstraints"]) {
                    continue;
                }
                for binding in bindings.iter().filter(|b| b["spec"]["policyName"] == pname) {
                    let m = &binding["spec"]["matchResources"];
                    if m.is_object() && m.as_object().is_some_and(|o| !o.is_empty()) {
                        let mut m = m.clone();
                        if m["resourceRules"].is_null() {
                            // A binding without rules narrows by selectors only.
                            m["resourceRules"] =
                                policy["spec"]["matchConstraints"]["resourceRules"].clone();
                        }
                        if !resources_match(srv, req, obj, &m) {
                            continue;
                        }
                    }
                    let Outcome::Failed(failures) = check(srv, req, obj, policy, binding) else {
                        continue;
                    };
                    let bname = binding["metadata"]["name"].as_str().unwrap_or("");
                    let actions: Vec<&str> = binding["spec"]["validationActions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    for f in &failures {
                        if actions.contains(&"Warn") {
                            req.warn(format!(
                                "Validation failed for ValidatingAdmissionPolicy '{pname}' with binding '{bname}': {}",
                                f.message
                            ));
                        }
                    }
                    if actions.contains(&"Deny") {
                        let f = &failures[0];
                        let message = format!(
                            "ValidatingAdmissionPolicy '{pname}' with binding '{bname}' denied request: {}",
                            f.message
                        );
                        let forbidden = req.forbidden(&message);
                        let def = req.kind.def();
                        let mut details = json!({"name": req.name, "kind": def.plural,
                                                 "causes": [{"message": message}]});
                        if !def.group.is_empty() {
                            details["group"] = json!(def.group);
                        }
                        return Err(ApiError::relayed(
                            code_of(&f.reason),
                            &f.reason,
                            forbidden.message,
                            details,
                        ));
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(validations: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"validations": validations}})
    }

    fn vars(obj: Value) -> Vars {
        Vars {
            list: vec![
                ("object", cel::to_cel(&obj)),
                ("variables", cel::map(Vec::new())),
            ],
        }
    }

    #[test]
    fn failed_validations_carry_upstream_messages() {
        let v = vars(json!({"spec": {"replicas": 7}}));
        let p = policy(json!([
            {"expression": "object.spec.replicas <= 5"},
            {"expression": "object.spec.replicas < 3", "message": "too many"},
            {"expression": "object.spec.replicas < 2", "reason": "Forbidden",
             "messageExpression": "'replicas is ' + string(object.spec.replicas)"},
            {"expression": "object.spec.replicas > 1"},
        ]));
        let Outcome::Failed(f) = run_validations(&p, &v) else {
            panic!("the validations should fail");
        };
        let got: Vec<(&str, &str)> = f
            .iter()
            .map(|f| (f.message.as_str(), f.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("failed expression: object.spec.replicas <= 5", "Invalid"),
                ("too many", "Invalid"),
                ("replicas is 7", "Forbidden"),
            ]
        );
    }

    #[test]
    fn evaluation_errors_fail_closed_unless_ignored() {
        let v = vars(json!({"spec": {}}));
        let p = policy(json!([{"expression": "object.spec.missing == 1"}]));
        assert!(matches!(run_validations(&p, &v), Outcome::Failed(_)));
        let mut ignore = p.clone();
        ignore["spec"]["failurePolicy"] = json!("Ignore");
        assert!(matches!(run_validations(&ignore, &v), Outcome::Pass));
    }

    #[test]
    fn variables_see_earlier_variables() {
        let v = vars(json!({"spec": {"replicas": 4}})).with_variables(&json!([
            {"name": "r", "expression": "object.spec.replicas"},
            {"name": "double", "expression": "variables.r * 2"},
        ]));
        let p = policy(json!([{"expression": "variables.double == 8"}]));
        assert!(matches!(run_validations(&p, &v), Outcome::Pass));
    }
}
