//! ReplicationControllers (+`status`, `scale`): upstream's v1 defaults (selector and
//! labels from the template, one replica), `ValidateReplicationController*`, the
//! NAME DESIRED CURRENT READY AGE columns (wide: CONTAINERS IMAGES SELECTOR) and the
//! `status.replicas` field selector. The controller that acts on them is
//! `crate::controller::replicationcontroller`.

use serde_json::{Map, Value, json};

use super::{pod, podspec};
use crate::apiserver::kinds::{
    GET_PATCH_UPDATE, ListMerge, ResourceDef, ScalePaths, SelectorForm, Strategy,
};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, forbidden, invalid_num, not_supported, required};

/// Upstream's message for a negative count.
const NEGATIVE: &str = "must be greater than or equal to 0";

/// The `ReplicationController` strategy.
pub struct ReplicationControllers {
    def: ResourceDef,
}

impl ReplicationControllers {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ReplicationControllers {
            def: ResourceDef::new("", "v1", "ReplicationController", "replicationcontrollers")
                .short_names(&["rc"])
                .categories(&["all"])
                .subresource("status", "ReplicationController", GET_PATCH_UPDATE)
                .foreign_subresource("scale", "autoscaling", "v1", "Scale", GET_PATCH_UPDATE),
        }
    }
}

impl Default for ReplicationControllers {
    fn default() -> Self {
        Self::new()
    }
}

/// A label map as Go's `%#v` prints a `map[string]string` (sorted keys), the way
/// upstream's field errors show a map value.
pub fn go_map(labels: &Value) -> String {
    match labels.as_object() {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let items: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        crate::apiserver::status::go_quote(k),
                        crate::apiserver::status::go_quote(s(v))
                    )
                })
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// Whether the (non-empty) label map `selector` matches `labels`.
pub fn map_matches(selector: &Map<String, Value>, labels: &Value) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.get(k).and_then(Value::as_str) == v.as_str())
}

/// Upstream's `SetDefaults_ReplicationController`: the selector and the labels default to
/// the template's labels, the replicas to 1; the template gets the PodSpec defaults.
fn set_defaults(obj: &mut Value) {
    let labels = obj["spec"]["template"]["metadata"]["labels"].clone();
    if labels.is_object() {
        let empty = |v: &Value| v.as_object().is_none_or(|m| m.is_empty());
        if empty(&obj["spec"]["selector"]) {
            obj["spec"]["selector"] = labels.clone();
        }
        if empty(&obj["metadata"]["labels"]) {
            obj["metadata"]["labels"] = labels;
        }
    }
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    if obj["spec"]["replicas"].is_null() {
        obj["spec"]["replicas"] = json!(1);
    }
    if obj["spec"]["template"].is_object() {
        podspec::set_template_defaults(&mut obj["spec"]["template"]);
    }
}

/// A non-negative count at `field` (upstream's `ValidateNonnegativeField`).
fn nonnegative(v: &Value, field: &str, out: &mut Vec<Cause>) {
    let n = v.as_i64().unwrap_or(0);
    if n < 0 {
        out.push(invalid_num(field, n, NEGATIVE));
    }
}

/// `ValidateReplicationControllerSpec` at `spec`.
fn validate_spec(spec: &Value, out: &mut Vec<Cause>) {
    nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds", out);
    let selector = spec["selector"].as_object().filter(|m| !m.is_empty());
    if selector.is_none() {
        out.push(required("spec.selector"));
    }
    nonnegative(&spec["replicas"], "spec.replicas", out);
    let template = &spec["template"];
    if !template.is_object() {
        out.push(required("spec.template"));
        return;
    }
    let labels = &template["metadata"]["labels"];
    if let Some(sel) = selector
        && !map_matches(sel, labels)
    {
        out.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: {}: `selector` does not match template `labels`",
                go_map(labels)
            ),
            field: "spec.template.metadata.labels".into(),
        });
    }
    podspec::validate_template(template, "spec.template", out);
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
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
}

/// `ValidateReplicationControllerStatus`.
fn validate_status(status: &Value, out: &mut Vec<Cause>) {
    let n = |k: &str| status[k].as_i64().unwrap_or(0);
    for k in [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ] {
        nonnegative(&status[k], &format!("status.{k}"), out);
    }
    let more = "cannot be greater than status.replicas";
    for k in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
        if n(k) > n("replicas") {
            out.push(invalid_num(format!("status.{k}"), n(k), more));
        }
    }
    if n("availableReplicas") > n("readyReplicas") {
        out.push(invalid_num(
            "status.availableReplicas",
            n("availableReplicas"),
            "cannot be greater than readyReplicas",
        ));
    }
}

impl Strategy for ReplicationControllers {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::ReplicationController);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {}, "status": {"replicas": 0}})
    }

    /// Defaults, an empty status and generation 1 (upstream's `PrepareForCreate`).
    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
        obj["status"] = json!({"replicas": 0});
        obj["metadata"]["generation"] = json!(1);
    }

    /// Defaults the new object (every decode does upstream) and keeps the stored status;
    /// the handler moves the generation when the spec changed.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_defaults(new);
        new["status"] = old.get("status").cloned().unwrap_or(json!({"replicas": 0}));
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

    fn scale(&self) -> Option<ScalePaths> {
        Some(ScalePaths {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            selector: Some(("/spec/selector".into(), SelectorForm::Map)),
            not_found_group: "autoscaling".into(),
        })
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
                "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
            ),
            col(
                "Current",
                "integer",
                0,
                "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
            ),
            col(
                "Ready",
                "integer",
                0,
                "The number of ready replicas for this replication controller.",
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
                "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
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
            json!(super::podtemplate::format_labels(&obj["spec"]["selector"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::validation::invalid_message;

    fn rc() -> Value {
        json!({"metadata": {"name": "web"},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
              "spec": {"containers": [{"name": "c", "image": "rkind/host"}]}}}})
    }

    #[test]
    fn selector_labels_and_replicas_default_from_the_template() {
        let mut obj = rc();
        ReplicationControllers::new().prepare_for_create(&mut obj);
        assert_eq!(obj["spec"]["selector"], json!({"app": "web", "tier": "fe"}));
        assert_eq!(
            obj["metadata"]["labels"],
            json!({"app": "web", "tier": "fe"})
        );
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["status"], json!({"replicas": 0}));
        assert_eq!(
            obj["spec"]["template"]["spec"]["restartPolicy"], "Always",
            "PodSpec defaults"
        );
        let mut own = rc();
        own["spec"]["selector"] = json!({"app": "web"});
        own["metadata"]["labels"] = json!({"mine": "x"});
        own["spec"]["replicas"] = json!(0);
        ReplicationControllers::new().prepare_for_create(&mut own);
        assert_eq!(own["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(own["metadata"]["labels"], json!({"mine": "x"}));
        assert_eq!(own["spec"]["replicas"], 0);
    }

    #[test]
    fn selector_must_match_the_template_labels() {
        let st = ReplicationControllers::new();
        let mut obj = rc();
        obj["spec"]["selector"] = json!({"app": "other"});
        st.prepare_for_create(&mut obj);
        assert_eq!(
            invalid_message("ReplicationController", "web", &st.validate(&obj)),
            "ReplicationController \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\", \"tier\":\"fe\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn spec_rules() {
        let st = ReplicationControllers::new();
        let mut obj = rc();
        st.prepare_for_create(&mut obj);
        obj["spec"]["replicas"] = json!(-1);
        obj["spec"]["minReadySeconds"] = json!(-2);
        obj["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        let got: Vec<String> = st
            .validate(&obj)
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.minReadySeconds: Invalid value: -2: must be greater than or equal to 0",
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController is not Supported",
            ]
        );
        let bare = json!({"metadata": {"name": "x"}, "spec": {}});
        let fields: Vec<String> = st.validate(&bare).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, vec!["spec.selector", "spec.template"]);
    }

    #[test]
    fn status_rules() {
        let st = ReplicationControllers::new();
        let new = json!({"status": {"replicas": 1, "readyReplicas": 2, "availableReplicas": 2}});
        let got: Vec<String> = st
            .validate_subresource_update("status", &json!({}), &new)
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            got,
            vec![
                "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas",
            ]
        );
    }

    #[test]
    fn rows_and_go_maps() {
        let st = ReplicationControllers::new();
        let mut obj = rc();
        st.prepare_for_create(&mut obj);
        obj["status"] = json!({"replicas": 2, "readyReplicas": 1});
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(&cells[1..4], &[json!(1), json!(2), json!(1)]);
        assert_eq!(cells[5], "c");
        assert_eq!(cells[6], "rkind/host");
        assert_eq!(cells[7], "app=web,tier=fe");
        assert_eq!(go_map(&Value::Null), "map[string]string(nil)");
        assert_eq!(go_map(&json!({})), "map[string]string{}");
    }
}
