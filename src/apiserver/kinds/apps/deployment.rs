//! Deployments (+`status`, `scale`): upstream's apps/v1 defaults (RollingUpdate 25%/25%,
//! revisionHistoryLimit 10, progressDeadlineSeconds 600, one replica),
//! `ValidateDeployment*`, the strategy (generation bumped on spec or annotation changes,
//! the selector immutable, status writes keep the spec and the labels) and the
//! NAME READY UP-TO-DATE AVAILABLE AGE columns (wide: CONTAINERS IMAGES SELECTOR). The
//! controller that acts on them is the Deployment controller.

use serde_json::{Value, json};

use super::{
    collision_count_kept, go_int_or_string, int_or_percent_value, invalid_go, nonnegative,
    not_more_than_100, scale_paths, selector_immutable, selector_text, template_defaults,
    validate_counts, validate_int_or_percent, validate_spec_selector,
    validate_template_for_replicas,
};
use crate::apiserver::kinds::core::{pod, podspec};
use crate::apiserver::kinds::{
    GET_PATCH_UPDATE, ListMerge, ResourceDef, ScalePaths, Strategy, default_status_update,
};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, forbidden, invalid_num};

/// The `Deployment` strategy.
pub struct Deployments {
    def: ResourceDef,
}

impl Deployments {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Deployments {
            def: ResourceDef::new("apps", "v1", "Deployment", "deployments")
                .short_names(&["deploy"])
                .categories(&["all"])
                .subresource("status", "Deployment", GET_PATCH_UPDATE)
                .foreign_subresource("scale", "autoscaling", "v1", "Scale", GET_PATCH_UPDATE),
        }
    }
}

impl Default for Deployments {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `SetDefaults_Deployment` (apps/v1) and the template's PodSpec defaults.
fn set_defaults(obj: &mut Value) {
    template_defaults(obj);
    let spec = &mut obj["spec"];
    if spec["replicas"].is_null() {
        spec["replicas"] = json!(1);
    }
    if spec["strategy"]["type"].as_str().unwrap_or("").is_empty() {
        spec["strategy"]["type"] = json!("RollingUpdate");
    }
    if spec["strategy"]["type"] == "RollingUpdate" {
        let ru = &mut spec["strategy"]["rollingUpdate"];
        if !ru.is_object() {
            *ru = json!({});
        }
        for k in ["maxUnavailable", "maxSurge"] {
            if ru[k].is_null() {
                ru[k] = json!("25%");
            }
        }
    }
    if spec["revisionHistoryLimit"].is_null() {
        spec["revisionHistoryLimit"] = json!(10);
    }
    if spec["progressDeadlineSeconds"].is_null() {
        spec["progressDeadlineSeconds"] = json!(600);
    }
}

/// `ValidateDeploymentStrategy` at `spec.strategy`.
fn validate_strategy(strategy: &Value, out: &mut Vec<Cause>) {
    let ru = &strategy["rollingUpdate"];
    match strategy["type"].as_str().unwrap_or("") {
        "Recreate" => {
            if !ru.is_null() {
                out.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            if !ru.is_object() {
                out.push(Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: this should be defaulted and never be nil".into(),
                    field: "spec.strategy.rollingUpdate".into(),
                });
                return;
            }
            let (mu, ms) = (&ru["maxUnavailable"], &ru["maxSurge"]);
            validate_int_or_percent(mu, "spec.strategy.rollingUpdate.maxUnavailable", out);
            validate_int_or_percent(ms, "spec.strategy.rollingUpdate.maxSurge", out);
            if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                out.push(invalid_go(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    &go_int_or_string(mu),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
            not_more_than_100(mu, "spec.strategy.rollingUpdate.maxUnavailable", out);
        }
        other => out.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: apps.DeploymentStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}: supported values: \"Recreate\", \"RollingUpdate\"",
                crate::apiserver::status::go_quote(other)
            ),
            field: "spec.strategy".into(),
        }),
    }
}

/// `ValidateDeploymentSpec`.
fn validate_spec(spec: &Value, out: &mut Vec<Cause>) {
    nonnegative(&spec["replicas"], "spec.replicas", out);
    if validate_spec_selector(spec, "deployment", out) {
        validate_template_for_replicas(spec, "ReplicaSet", out);
    }
    validate_strategy(&spec["strategy"], out);
    nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds", out);
    nonnegative(
        &spec["revisionHistoryLimit"],
        "spec.revisionHistoryLimit",
        out,
    );
    if let Some(p) = spec["progressDeadlineSeconds"].as_i64() {
        nonnegative(
            &spec["progressDeadlineSeconds"],
            "spec.progressDeadlineSeconds",
            out,
        );
        if p <= spec["minReadySeconds"].as_i64().unwrap_or(0) {
            out.push(invalid_num(
                "spec.progressDeadlineSeconds",
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

impl Strategy for Deployments {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::apps::v1::Deployment);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null},
            "spec": {"selector": null, "template": {"metadata": {"creationTimestamp": null},
                "spec": {"containers": null}}, "strategy": {}},
            "status": {}})
    }

    /// Defaults, an empty status and generation 1 (upstream's `PrepareForCreate`).
    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
        obj["status"] = json!({});
        obj["metadata"]["generation"] = json!(1);
    }

    /// Keeps the stored status; a change of the annotations moves the generation too
    /// (they are copied to the ReplicaSets), the handler moves it for spec changes.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_defaults(new);
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
        let ann = |v: &Value| {
            v["metadata"]["annotations"]
                .as_object()
                .filter(|m| !m.is_empty())
                .cloned()
        };
        if ann(old) != ann(new) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(&obj["spec"], &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        selector_immutable(old, new, &mut out);
        out
    }

    /// Status writes keep the spec and the labels (upstream's status strategy).
    fn prepare_for_status_update(&self, old: &Value, new: &Value) -> Value {
        let mut out = default_status_update(old, new);
        match old["metadata"].get("labels") {
            Some(l) => out["metadata"]["labels"] = l.clone(),
            None => {
                if let Some(m) = out["metadata"].as_object_mut() {
                    m.remove("labels");
                }
            }
        }
        out
    }

    fn validate_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Vec<Cause> {
        if sub != "status" {
            return self.validate_update(old, new);
        }
        let mut out = Vec::new();
        let st = &new["status"];
        validate_counts(
            st,
            &[
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
                "collisionCount",
            ],
            &["updatedReplicas", "readyReplicas", "availableReplicas"],
            &mut out,
        );
        let n = |k: &str| st[k].as_i64().unwrap_or(0);
        if n("availableReplicas") > n("readyReplicas") {
            out.push(invalid_num(
                "status.availableReplicas",
                n("availableReplicas"),
                "cannot be greater than readyReplicas",
            ));
        }
        collision_count_kept(old, new, &mut out);
        out
    }

    fn scale(&self) -> Option<ScalePaths> {
        Some(scale_paths())
    }

    fn list_merge(&self, path: &[&str]) -> ListMerge {
        match path {
            ["spec", "template", "spec", rest @ ..] => pod::podspec_list_merge(rest),
            ["status", "conditions"] => ListMerge::MergeByKey("type"),
            _ => ListMerge::Replace,
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col("Ready", "string", 0, "Number of the pod with ready state"),
            col(
                "Up-to-date",
                "string",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            col(
                "Available",
                "string",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            age_col(),
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col(
                "Selector",
                "string",
                1,
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (names, images) = podspec::container_cells(&obj["spec"]["template"]["spec"]);
        let n = |v: &Value| v.as_i64().unwrap_or(0);
        let st = &obj["status"];
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(format!(
                "{}/{}",
                n(&st["readyReplicas"]),
                n(&obj["spec"]["replicas"])
            )),
            json!(n(&st["updatedReplicas"])),
            json!(n(&st["availableReplicas"])),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
            json!(names),
            json!(images),
            json!(selector_text(obj)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::validation::invalid_message;

    fn deploy() -> Value {
        json!({"metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
              "template": {"metadata": {"labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c", "image": "rkind/host"}]}}}})
    }

    fn messages(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn defaults_as_apps_v1() {
        let mut obj = deploy();
        Deployments::new().prepare_for_create(&mut obj);
        let spec = &obj["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(obj["status"], json!({}));
        assert_eq!(obj["metadata"]["generation"], 1);
        assert!(
            obj["metadata"]["labels"].is_null(),
            "apps/v1 does not default labels"
        );
        let mut recreate = deploy();
        recreate["spec"]["strategy"] = json!({"type": "Recreate"});
        Deployments::new().prepare_for_create(&mut recreate);
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn selector_rules() {
        let st = Deployments::new();
        let mut obj = deploy();
        obj["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        st.prepare_for_create(&mut obj);
        assert_eq!(
            invalid_message("Deployment.apps", "web", &st.validate(&obj)),
            "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
        );
        let mut none = deploy();
        none["spec"]["selector"] = Value::Null;
        st.prepare_for_create(&mut none);
        assert_eq!(
            messages(&st.validate(&none)),
            vec![
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
            ]
        );
        let mut empty = deploy();
        empty["spec"]["selector"] = json!({"matchLabels": {}});
        st.prepare_for_create(&mut empty);
        assert_eq!(
            messages(&st.validate(&empty)),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
            ]
        );
    }

    #[test]
    fn selector_is_immutable_and_annotations_move_the_generation() {
        let st = Deployments::new();
        let mut old = deploy();
        st.prepare_for_create(&mut old);
        let mut new = old.clone();
        new["spec"]["selector"]["matchLabels"]["x"] = json!("y");
        new["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
        assert_eq!(
            messages(&st.validate_update(&old, &new)),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"x\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
        let mut annotated = old.clone();
        annotated["metadata"]["annotations"] = json!({"a": "b"});
        st.prepare_for_update(&old, &mut annotated);
        assert_eq!(annotated["metadata"]["generation"], 2);
        let mut same = old.clone();
        st.prepare_for_update(&old, &mut same);
        assert_eq!(same["metadata"]["generation"], 1);
    }

    #[test]
    fn strategy_rules() {
        let st = Deployments::new();
        let mut obj = deploy();
        obj["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}});
        obj["spec"]["minReadySeconds"] = json!(700);
        st.prepare_for_create(&mut obj);
        assert_eq!(
            messages(&st.validate(&obj)),
            vec![
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
                "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
            ]
        );
        let mut pct = deploy();
        pct["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%", "maxSurge": "x"}});
        st.prepare_for_create(&mut pct);
        let fields: Vec<String> = st.validate(&pct).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            vec![
                "spec.strategy.rollingUpdate.maxSurge",
                "spec.strategy.rollingUpdate.maxUnavailable"
            ]
        );
        let mut rec = deploy();
        rec["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}});
        st.prepare_for_create(&mut rec);
        assert_eq!(
            messages(&st.validate(&rec)),
            vec![
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
            ]
        );
    }

    #[test]
    fn status_writes_keep_spec_and_labels() {
        let st = Deployments::new();
        let mut old = deploy();
        old["metadata"]["labels"] = json!({"a": "1"});
        st.prepare_for_create(&mut old);
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"a": "2"});
        new["spec"]["replicas"] = json!(9);
        new["status"] = json!({"replicas": 1, "readyReplicas": 1});
        let out = st.prepare_for_status_update(&old, &new);
        assert_eq!(out["metadata"]["labels"], json!({"a": "1"}));
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["status"]["readyReplicas"], 1);
        let bad = json!({"status": {"replicas": 1, "availableReplicas": 2, "readyReplicas": 1}});
        assert_eq!(
            messages(&st.validate_subresource_update("status", &old, &bad)),
            vec![
                "status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas",
            ]
        );
    }

    #[test]
    fn rows() {
        let st = Deployments::new();
        let mut obj = deploy();
        obj["spec"]["replicas"] = json!(3);
        st.prepare_for_create(&mut obj);
        obj["status"] = json!({"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2});
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(&cells[1..4], &[json!("2/3"), json!(3), json!(2)]);
        assert_eq!(cells[5], "c");
        assert_eq!(cells[6], "rkind/host");
        assert_eq!(cells[7], "app=web");
    }
}
