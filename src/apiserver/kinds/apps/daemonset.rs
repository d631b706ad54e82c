//! DaemonSets (+`status`): upstream's apps/v1 defaults (RollingUpdate maxUnavailable 1
//! maxSurge 0, revisionHistoryLimit 10), `ValidateDaemonSet*`, the template generation
//! (kept in apps/v1 as the `deprecated.daemonset.template.generation` annotation, moved
//! on every template change), the selector immutable, and the NAME DESIRED CURRENT READY
//! UP-TO-DATE AVAILABLE NODE SELECTOR AGE columns (wide: CONTAINERS IMAGES SELECTOR).

use serde_json::{Value, json};

use super::{
    collision_count_kept, go_int_or_string, go_map, int_or_percent_value, invalid_go, nonnegative,
    not_more_than_100, restart_always, selector_empty, selector_immutable, selector_matches,
    selector_missing, selector_text, validate_counts, validate_int_or_percent,
    validate_label_selector,
};
use crate::apiserver::kinds::core::podtemplate::format_labels;
use crate::apiserver::kinds::core::{pod, podspec};
use crate::apiserver::kinds::{GET_PATCH_UPDATE, ListMerge, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::Cause;

/// The annotation apps/v1 keeps the internal `spec.templateGeneration` in.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// The `DaemonSet` strategy.
pub struct DaemonSets {
    def: ResourceDef,
}

impl DaemonSets {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        DaemonSets {
            def: ResourceDef::new("apps", "v1", "DaemonSet", "daemonsets")
                .short_names(&["ds"])
                .categories(&["all"])
                .subresource("status", "DaemonSet", GET_PATCH_UPDATE),
        }
    }
}

impl Default for DaemonSets {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `SetDefaults_DaemonSet` (apps/v1) and the template's PodSpec defaults.
fn set_defaults(obj: &mut Value) {
    super::template_defaults(obj);
    let spec = &mut obj["spec"];
    let us = &mut spec["updateStrategy"];
    if us["type"].as_str().unwrap_or("").is_empty() {
        us["type"] = json!("RollingUpdate");
    }
    if us["type"] == "RollingUpdate" {
        if !us["rollingUpdate"].is_object() {
            us["rollingUpdate"] = json!({});
        }
        if us["rollingUpdate"]["maxUnavailable"].is_null() {
            us["rollingUpdate"]["maxUnavailable"] = json!(1);
        }
        if us["rollingUpdate"]["maxSurge"].is_null() {
            us["rollingUpdate"]["maxSurge"] = json!(0);
        }
    }
    if spec["revisionHistoryLimit"].is_null() {
        spec["revisionHistoryLimit"] = json!(10);
    }
}

fn template_generation(obj: &Value) -> i64 {
    obj["metadata"]["annotations"][TEMPLATE_GENERATION]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn set_template_generation(obj: &mut Value, g: i64) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][TEMPLATE_GENERATION] = json!(g.to_string());
}

/// `ValidateDaemonSetUpdateStrategy` at `spec.updateStrategy`.
fn validate_strategy(us: &Value, out: &mut Vec<Cause>) {
    match us["type"].as_str().unwrap_or("") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let ru = &us["rollingUpdate"];
            if !ru.is_object() {
                out.push(crate::apiserver::validation::required(
                    "spec.updateStrategy.rollingUpdate",
                ));
                return;
            }
            let (mu, ms) = (&ru["maxUnavailable"], &ru["maxSurge"]);
            let mu_f = "spec.updateStrategy.rollingUpdate.maxUnavailable";
            let ms_f = "spec.updateStrategy.rollingUpdate.maxSurge";
            validate_int_or_percent(mu, mu_f, out);
            validate_int_or_percent(ms, ms_f, out);
            not_more_than_100(mu, mu_f, out);
            not_more_than_100(ms, ms_f, out);
            let has_unavailable = int_or_percent_value(mu) != 0;
            let has_surge = int_or_percent_value(ms) != 0;
            if has_unavailable && has_surge {
                out.push(invalid_go(
                    ms_f,
                    &go_int_or_string(ms),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_unavailable && !has_surge {
                out.push(Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: cannot be 0 when maxSurge is 0".into(),
                    field: mu_f.into(),
                });
            }
        }
        other => out.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}: supported values: \"RollingUpdate\", \"OnDelete\"",
                crate::apiserver::status::go_quote(other)
            ),
            field: "spec.updateStrategy".into(),
        }),
    }
}

/// `ValidateDaemonSetSpec`.
fn validate_spec(spec: &Value, out: &mut Vec<Cause>) {
    let sel = &spec["selector"];
    let missing = selector_missing(sel);
    if !missing {
        validate_label_selector(sel, "spec.selector", out);
    }
    // Upstream requires no selector here: a missing one selects nothing.
    let labels = &spec["template"]["metadata"]["labels"];
    if missing || (super::selector_parses(sel) && !selector_matches(sel, labels)) {
        out.push(invalid_go(
            "spec.template.metadata.labels",
            &go_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    if !missing && selector_empty(sel) {
        out.push(invalid_go(
            "spec.selector",
            &super::go_label_selector(sel),
            "empty selector is invalid for daemonset",
        ));
    }
    podspec::validate_template(&spec["template"], "spec.template", out);
    restart_always(&spec["template"], "DaemonSet", out);
    nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds", out);
    validate_strategy(&spec["updateStrategy"], out);
    nonnegative(
        &spec["revisionHistoryLimit"],
        "spec.revisionHistoryLimit",
        out,
    );
}

impl Strategy for DaemonSets {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::apps::v1::DaemonSet);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null},
            "spec": {"selector": null, "template": {"metadata": {"creationTimestamp": null},
                "spec": {"containers": null}}, "updateStrategy": {}},
            "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                "desiredNumberScheduled": 0, "numberReady": 0}})
    }

    /// Defaults, an empty status, generation 1 and template generation 1 (upstream's
    /// `PrepareForCreate`).
    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
        obj["status"] = json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
            "desiredNumberScheduled": 0, "numberReady": 0});
        obj["metadata"]["generation"] = json!(1);
        if template_generation(obj) < 1 {
            set_template_generation(obj, 1);
        }
    }

    /// Keeps the stored status; a template change moves the template generation (the
    /// handler moves the generation with the spec).
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_defaults(new);
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
        let g = template_generation(old).max(1);
        let next = if old["spec"]["template"] != new["spec"]["template"] {
            g + 1
        } else {
            g
        };
        set_template_generation(new, next);
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
        if sub != "status" {
            return self.validate_update(old, new);
        }
        let mut out = Vec::new();
        validate_counts(
            &new["status"],
            &[
                "currentNumberScheduled",
                "numberMisscheduled",
                "desiredNumberScheduled",
                "numberReady",
                "observedGeneration",
                "updatedNumberScheduled",
                "numberAvailable",
                "numberUnavailable",
                "collisionCount",
            ],
            &[],
            &mut out,
        );
        collision_count_kept(old, new, &mut out);
        out
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
                "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
            ),
            col(
                "Current",
                "integer",
                0,
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
            ),
            col(
                "Ready",
                "integer",
                0,
                "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
            ),
            col(
                "Up-to-date",
                "integer",
                0,
                "The total number of nodes that are running updated daemon pod",
            ),
            col(
                "Available",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
            ),
            col(
                "Node Selector",
                "string",
                0,
                "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
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
                "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (names, images) = podspec::container_cells(&obj["spec"]["template"]["spec"]);
        let st = &obj["status"];
        let n = |k: &str| json!(st[k].as_i64().unwrap_or(0));
        vec![
            json!(s(&obj["metadata"]["name"])),
            n("desiredNumberScheduled"),
            n("currentNumberScheduled"),
            n("numberReady"),
            n("updatedNumberScheduled"),
            n("numberAvailable"),
            json!(format_labels(
                &obj["spec"]["template"]["spec"]["nodeSelector"]
            )),
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

    fn ds() -> Value {
        json!({"metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
              "template": {"metadata": {"labels": {"app": "agent"}},
              "spec": {"containers": [{"name": "c", "image": "rkind/host"}]}}}})
    }

    fn messages(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn defaults_and_template_generation() {
        let st = DaemonSets::new();
        let mut obj = ds();
        st.prepare_for_create(&mut obj);
        assert_eq!(
            obj["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(obj["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(obj["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        assert_eq!(obj["status"]["numberReady"], 0);
        assert!(st.validate(&obj).is_empty(), "{:?}", st.validate(&obj));
        let mut same = obj.clone();
        st.prepare_for_update(&obj, &mut same);
        assert_eq!(same["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        let mut changed = obj.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("x");
        st.prepare_for_update(&obj, &mut changed);
        assert_eq!(changed["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
    }

    #[test]
    fn rolling_update_rules() {
        let st = DaemonSets::new();
        let mut both = ds();
        both["spec"]["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "10%"}});
        st.prepare_for_create(&mut both);
        assert_eq!(
            messages(&st.validate(&both)),
            vec![
                "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"10%\"}: may not be set when maxUnavailable is non-zero"
            ]
        );
        let mut none = ds();
        none["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}});
        st.prepare_for_create(&mut none);
        assert_eq!(
            messages(&st.validate(&none)),
            vec![
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
            ]
        );
    }

    #[test]
    fn selector_rules() {
        let st = DaemonSets::new();
        let mut obj = ds();
        obj["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
        st.prepare_for_create(&mut obj);
        assert_eq!(
            messages(&st.validate(&obj)),
            vec![
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"agent\"}: `selector` does not match template `labels`"
            ]
        );
        let mut old = ds();
        st.prepare_for_create(&mut old);
        let mut new = old.clone();
        new["spec"]["selector"]["matchLabels"]["b"] = json!("c");
        new["spec"]["template"]["metadata"]["labels"]["b"] = json!("c");
        let got = messages(&st.validate_update(&old, &new));
        assert_eq!(got.len(), 1);
        assert!(got[0].ends_with("field is immutable"), "{got:?}");
    }

    #[test]
    fn rows() {
        let st = DaemonSets::new();
        let mut obj = ds();
        obj["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
        st.prepare_for_create(&mut obj);
        obj["status"] = json!({"desiredNumberScheduled": 1, "currentNumberScheduled": 1,
            "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1});
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(
            &cells[1..6],
            &[json!(1), json!(1), json!(1), json!(1), json!(1)]
        );
        assert_eq!(cells[6], "kubernetes.io/os=linux");
        assert_eq!(cells[10], "app=agent");
        assert!(st.scale().is_none());
    }
}
