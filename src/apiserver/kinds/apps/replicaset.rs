//! ReplicaSets (+`status`, `scale`): upstream's apps/v1 defaults (one replica),
//! `ValidateReplicaSet*` (a label selector matching the template, restartPolicy Always),
//! the selector immutable on update, the NAME DESIRED CURRENT READY AGE columns (wide:
//! CONTAINERS IMAGES SELECTOR) and the `status.replicas` field selector. The controller
//! that acts on them is `crate::controller::replicaset`.

use serde_json::{Value, json};

use super::{
    nonnegative, scale_paths, selector_immutable, selector_text, template_defaults,
    validate_counts, validate_spec_selector, validate_template_for_replicas,
};
use crate::apiserver::kinds::core::{pod, podspec};
use crate::apiserver::kinds::{GET_PATCH_UPDATE, ListMerge, ResourceDef, ScalePaths, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, invalid_num};

/// The `ReplicaSet` strategy.
pub struct ReplicaSets {
    def: ResourceDef,
}

impl ReplicaSets {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ReplicaSets {
            def: ResourceDef::new("apps", "v1", "ReplicaSet", "replicasets")
                .short_names(&["rs"])
                .categories(&["all"])
                .subresource("status", "ReplicaSet", GET_PATCH_UPDATE)
                .foreign_subresource("scale", "autoscaling", "v1", "Scale", GET_PATCH_UPDATE),
        }
    }
}

impl Default for ReplicaSets {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `SetDefaults_ReplicaSet` (apps/v1: no selector or labels from the
/// template) and the template's PodSpec defaults.
fn set_defaults(obj: &mut Value) {
    template_defaults(obj);
    if obj["spec"]["replicas"].is_null() {
        obj["spec"]["replicas"] = json!(1);
    }
}

/// `ValidateReplicaSetSpec`.
fn validate_spec(spec: &Value, out: &mut Vec<Cause>) {
    nonnegative(&spec["replicas"], "spec.replicas", out);
    nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds", out);
    // Upstream's ReplicaSet validation names the deployment here too.
    if validate_spec_selector(spec, "deployment", out) {
        validate_template_for_replicas(spec, "ReplicaSet", out);
    }
}

/// `ValidateReplicaSetStatus`.
pub fn validate_status(status: &Value, out: &mut Vec<Cause>) {
    validate_counts(
        status,
        &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ],
        &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"],
        out,
    );
    let n = |k: &str| status[k].as_i64().unwrap_or(0);
    if n("availableReplicas") > n("readyReplicas") {
        out.push(invalid_num(
            "status.availableReplicas",
            n("availableReplicas"),
            "cannot be greater than readyReplicas",
        ));
    }
}

impl Strategy for ReplicaSets {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::apps::v1::ReplicaSet);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null},
            "spec": {"selector": null, "template": {"metadata": {"creationTimestamp": null},
                "spec": {"containers": null}}},
            "status": {"replicas": 0}})
    }

    /// Defaults, an empty status and generation 1 (upstream's `PrepareForCreate`).
    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
        obj["status"] = json!({"replicas": 0});
        obj["metadata"]["generation"] = json!(1);
    }

    /// Defaults the new object and keeps the stored status; the handler moves the
    /// generation when the spec changed.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_defaults(new);
        new["status"] = old.get("status").cloned().unwrap_or(json!({"replicas": 0}));
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

    fn validate_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Vec<Cause> {
        if sub == "status" {
            let mut out = Vec::new();
            validate_status(&new["status"], &mut out);
            return out;
        }
        self.validate_update(old, new)
    }

    fn scale(&self) -> Option<ScalePaths> {
        Some(scale_paths())
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }

    fn field_value(&self, obj: &Value, path: &str) -> String {
        match path {
            "status.replicas" => obj["status"]["replicas"].as_i64().unwrap_or(0).to_string(),
            _ => crate::apiserver::selectors::field_value(obj, path),
        }
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
            col(
                "Desired",
                "integer",
                0,
                "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
            ),
            col(
                "Current",
                "integer",
                0,
                "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
            ),
            col(
                "Ready",
                "integer",
                0,
                "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
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
                "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (names, images) = podspec::container_cells(&obj["spec"]["template"]["spec"]);
        let n = |v: &Value| json!(v.as_i64().unwrap_or(0));
        vec![
            json!(s(&obj["metadata"]["name"])),
            n(&obj["spec"]["replicas"]),
            n(&obj["status"]["replicas"]),
            n(&obj["status"]["readyReplicas"]),
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

    fn rs() -> Value {
        json!({"metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]},
              "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
              "spec": {"containers": [{"name": "c", "image": "rkind/host"}]}}}})
    }

    fn messages(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn defaults_and_create() {
        let mut obj = rs();
        ReplicaSets::new().prepare_for_create(&mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["status"], json!({"replicas": 0}));
        assert_eq!(obj["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(obj["metadata"]["labels"].is_null());
        assert!(ReplicaSets::new().validate(&obj).is_empty());
    }

    #[test]
    fn spec_rules() {
        let st = ReplicaSets::new();
        let mut obj = rs();
        obj["spec"]["template"]["metadata"]["labels"]["tier"] = json!("be");
        obj["spec"]["replicas"] = json!(-1);
        obj["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(3);
        st.prepare_for_create(&mut obj);
        assert_eq!(
            messages(&st.validate(&obj)),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\", \"tier\":\"be\"}: `selector` does not match template `labels`",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
            ]
        );
        let mut old = rs();
        st.prepare_for_create(&mut old);
        let mut new = old.clone();
        new["spec"]["selector"]["matchExpressions"] = json!([]);
        assert_eq!(
            messages(&st.validate_update(&old, &new)),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement{}}: field is immutable"
            ]
        );
    }

    #[test]
    fn rows_status_and_fields() {
        let st = ReplicaSets::new();
        let mut obj = rs();
        st.prepare_for_create(&mut obj);
        obj["status"] = json!({"replicas": 2, "readyReplicas": 1});
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(&cells[1..4], &[json!(1), json!(2), json!(1)]);
        assert_eq!(cells[7], "app=web,tier in (fe)");
        assert_eq!(st.field_value(&obj, "status.replicas"), "2");
        let bad = json!({"status": {"replicas": 1, "readyReplicas": 2}});
        assert_eq!(
            messages(&st.validate_subresource_update("status", &obj, &bad)),
            vec!["status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"]
        );
    }
}
