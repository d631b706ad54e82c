//! StatefulSets (+`status`, `scale`): upstream's apps/v1 defaults (OrderedReady,
//! RollingUpdate with partition 0, revisionHistoryLimit 10, PVC retention Retain/Retain,
//! one replica), `ValidateStatefulSet*` (names are DNS labels; only replicas, ordinals,
//! template, updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds
//! may change), the selector immutable, and the NAME READY AGE columns (wide:
//! CONTAINERS IMAGES).

use serde_json::{Value, json};

use super::{
    collision_count_kept, invalid_go, nonnegative, restart_always, scale_paths, selector_immutable,
    validate_counts, validate_spec_selector,
};
use crate::apiserver::kinds::core::{pod, podspec};
use crate::apiserver::kinds::{GET_PATCH_UPDATE, ListMerge, ResourceDef, ScalePaths, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{self, Cause, forbidden, invalid, invalid_num, not_supported};

/// The `StatefulSet` strategy.
pub struct StatefulSets {
    def: ResourceDef,
}

impl StatefulSets {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        StatefulSets {
            def: ResourceDef::new("apps", "v1", "StatefulSet", "statefulsets")
                .short_names(&["sts"])
                .categories(&["all"])
                .subresource("status", "StatefulSet", GET_PATCH_UPDATE)
                .foreign_subresource("scale", "autoscaling", "v1", "Scale", GET_PATCH_UPDATE),
        }
    }
}

impl Default for StatefulSets {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `SetDefaults_StatefulSet` (apps/v1), the template's PodSpec defaults and
/// each claim template's PVC defaults.
fn set_defaults(obj: &mut Value) {
    super::template_defaults(obj);
    let spec = &mut obj["spec"];
    if spec["podManagementPolicy"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        spec["podManagementPolicy"] = json!("OrderedReady");
    }
    let us = &mut spec["updateStrategy"];
    if us["type"].as_str().unwrap_or("").is_empty() {
        us["type"] = json!("RollingUpdate");
        if us["rollingUpdate"].is_null() {
            us["rollingUpdate"] = json!({});
        }
    }
    if us["type"] == "RollingUpdate"
        && us["rollingUpdate"].is_object()
        && us["rollingUpdate"]["partition"].is_null()
    {
        us["rollingUpdate"]["partition"] = json!(0);
    }
    let policy = &mut spec["persistentVolumeClaimRetentionPolicy"];
    if !policy.is_object() {
        *policy = json!({});
    }
    for k in ["whenDeleted", "whenScaled"] {
        if policy[k].as_str().unwrap_or("").is_empty() {
            policy[k] = json!("Retain");
        }
    }
    if spec["replicas"].is_null() {
        spec["replicas"] = json!(1);
    }
    if spec["revisionHistoryLimit"].is_null() {
        spec["revisionHistoryLimit"] = json!(10);
    }
    if let Some(claims) = spec["volumeClaimTemplates"].as_array_mut() {
        for c in claims {
            if !c["spec"].is_object() {
                c["spec"] = json!({});
            }
            if c["spec"]["volumeMode"].is_null() {
                c["spec"]["volumeMode"] = json!("Filesystem");
            }
            if c["status"]["phase"].is_null() {
                c["status"]["phase"] = json!("Pending");
            }
        }
    }
}

/// `ValidateStatefulSetSpec`.
fn validate_spec(spec: &Value, out: &mut Vec<Cause>) {
    let pmp = spec["podManagementPolicy"].as_str().unwrap_or("");
    match pmp {
        "" => out.push(validation::required("spec.podManagementPolicy")),
        "OrderedReady" | "Parallel" => {}
        other => out.push(invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = &spec["updateStrategy"];
    match us["type"].as_str().unwrap_or("") {
        "" => out.push(validation::required("spec.updateStrategy")),
        "OnDelete" => {
            if !us["rollingUpdate"].is_null() {
                out.push(invalid_go(
                    "spec.updateStrategy.rollingUpdate",
                    &format!(
                        "apps.RollingUpdateStatefulSetStrategy{{Partition:{}, MaxUnavailable:(*intstr.IntOrString)(nil)}}",
                        us["rollingUpdate"]["partition"].as_i64().unwrap_or(0)
                    ),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            nonnegative(
                &us["rollingUpdate"]["partition"],
                "spec.updateStrategy.rollingUpdate.partition",
                out,
            );
        }
        other => out.push(invalid_go(
            "spec.updateStrategy",
            &format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}",
                crate::apiserver::status::go_quote(other)
            ),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let policy = &spec["persistentVolumeClaimRetentionPolicy"];
    if policy.is_object() {
        for k in ["whenDeleted", "whenScaled"] {
            let v = policy[k].as_str().unwrap_or("");
            if v != "Retain" && v != "Delete" {
                out.push(not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{k}"),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonnegative(&spec["replicas"], "spec.replicas", out);
    nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds", out);
    nonnegative(&spec["ordinals"]["start"], "spec.ordinals.start", out);
    if validate_spec_selector(spec, "statefulset", out) {
        let template = &spec["template"];
        super::template_matches(&spec["selector"], &template["metadata"]["labels"], out);
        // Upstream checks only the template's metadata here (its volumes may name the
        // claim templates, which a PodSpec check would refuse).
        let mut meta = Vec::new();
        validation::validate_meta(&json!({"metadata": template["metadata"]}), &mut meta);
        out.extend(meta.into_iter().map(|mut c| {
            c.field = c.field.replacen("metadata", "spec.template", 1);
            c
        }));
    }
    restart_always(&spec["template"], "StatefulSet", out);
}

/// The spec without what an update may change.
fn fixed_part(spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(m) = s.as_object_mut() {
        for k in [
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
        ] {
            m.remove(k);
        }
    }
    s
}

impl Strategy for StatefulSets {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::apps::v1::StatefulSet);

    /// StatefulSet names become pod hostnames: DNS labels.
    fn validate_name(&self, name: &str) -> Vec<String> {
        validation::label_name(name)
    }

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null},
            "spec": {"selector": null, "template": {"metadata": {"creationTimestamp": null},
                "spec": {"containers": null}}, "serviceName": "", "updateStrategy": {}},
            "status": {"replicas": 0, "availableReplicas": 0}})
    }

    /// Defaults, an empty status and generation 1 (upstream's `PrepareForCreate`).
    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
        obj["status"] = json!({"replicas": 0, "availableReplicas": 0});
        obj["metadata"]["generation"] = json!(1);
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_defaults(new);
        new["status"] = old
            .get("status")
            .cloned()
            .unwrap_or(json!({"replicas": 0, "availableReplicas": 0}));
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(&obj["spec"], &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        let (o, n) = (&old["spec"], &new["spec"]);
        if fixed_part(o) != fixed_part(n) {
            out.push(forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        } else {
            // The selector is part of the fixed spec; say so only once.
            let mut sel = Vec::new();
            selector_immutable(old, new, &mut sel);
            out.extend(sel);
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
                "replicas",
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
                "availableReplicas",
                "observedGeneration",
                "collisionCount",
            ],
            &[
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
                "availableReplicas",
            ],
            &mut out,
        );
        let n = |k: &str| st[k].as_i64().unwrap_or(0);
        if n("availableReplicas") > n("readyReplicas") {
            out.push(invalid_num(
                "status.availableReplicas",
                n("availableReplicas"),
                "cannot be greater than status.readyReplicas",
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
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (names, images) = podspec::container_cells(&obj["spec"]["template"]["spec"]);
        let n = |v: &Value| v.as_i64().unwrap_or(0);
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(format!(
                "{}/{}",
                n(&obj["status"]["readyReplicas"]),
                n(&obj["spec"]["replicas"])
            )),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
            json!(names),
            json!(images),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts() -> Value {
        json!({"metadata": {"name": "web"},
            "spec": {"serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
              "template": {"metadata": {"labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c", "image": "rkind/host"}]}},
              "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}]}})
    }

    fn messages(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn defaults_as_apps_v1() {
        let st = StatefulSets::new();
        let mut obj = sts();
        st.prepare_for_create(&mut obj);
        let spec = &obj["spec"];
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            obj["status"],
            json!({"replicas": 0, "availableReplicas": 0})
        );
        assert!(st.validate(&obj).is_empty(), "{:?}", st.validate(&obj));
        let mut on_delete = sts();
        on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        st.prepare_for_create(&mut on_delete);
        assert_eq!(
            on_delete["spec"]["updateStrategy"],
            json!({"type": "OnDelete"})
        );
    }

    #[test]
    fn spec_rules_and_names() {
        let st = StatefulSets::new();
        let mut obj = sts();
        obj["spec"]["podManagementPolicy"] = json!("Random");
        obj["spec"]["selector"] = json!({"matchLabels": {"app": "db"}});
        st.prepare_for_create(&mut obj);
        assert_eq!(
            messages(&st.validate(&obj)),
            vec![
                "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        assert!(!st.validate_name("a.b").is_empty(), "a DNS label");
    }

    #[test]
    fn only_some_fields_may_change() {
        let st = StatefulSets::new();
        let mut old = sts();
        st.prepare_for_create(&mut old);
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other");
        assert!(st.validate_update(&old, &scaled).is_empty());
        let mut renamed = old.clone();
        renamed["spec"]["serviceName"] = json!("other");
        assert_eq!(
            messages(&st.validate_update(&old, &renamed)),
            vec![
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
            ]
        );
    }

    #[test]
    fn rows() {
        let st = StatefulSets::new();
        let mut obj = sts();
        obj["spec"]["replicas"] = json!(2);
        st.prepare_for_create(&mut obj);
        obj["status"]["readyReplicas"] = json!(1);
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[3], "c");
    }
}
