//! PodTemplates: a stored pod template (no status). The template gets the PodSpec
//! defaults and is validated at `template` through the shared PodSpec code; any change to
//! it moves the generation, as upstream's strategy does.

use serde_json::{Value, json};

use super::{pod, podspec};
use crate::apiserver::kinds::{ListMerge, ResourceDef, Strategy};
use crate::apiserver::table::{Column, col, name_col, s};
use crate::apiserver::validation::Cause;

/// The `PodTemplate` strategy.
pub struct PodTemplates {
    def: ResourceDef,
}

impl PodTemplates {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        PodTemplates {
            def: ResourceDef::new("", "v1", "PodTemplate", "podtemplates"),
        }
    }
}

impl Default for PodTemplates {
    fn default() -> Self {
        Self::new()
    }
}

/// `k=v,...` sorted by key, or `<none>` (upstream's `labels.FormatLabels`).
pub fn format_labels(labels: &Value) -> String {
    let mut pairs: Vec<String> = labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
        .unwrap_or_default();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

impl Strategy for PodTemplates {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::PodTemplate);

    fn prepare_for_create(&self, obj: &mut Value) {
        podspec::set_template_defaults(&mut obj["template"]);
    }

    /// Defaults the new template and moves the generation when the template changed.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        podspec::set_template_defaults(&mut new["template"]);
        if old.get("template") != new.get("template") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        podspec::validate_template(&obj["template"], "template", &mut out);
        out
    }

    fn list_merge(&self, path: &[&str]) -> ListMerge {
        match path {
            ["template", "spec", rest @ ..] => pod::podspec_list_merge(rest),
            _ => ListMerge::Replace,
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col(
                "Containers",
                "string",
                0,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                0,
                "Images referenced by each container in the template.",
            ),
            col(
                "Pod Labels",
                "string",
                0,
                "The labels for the pod template.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        let (names, images) = podspec::container_cells(&obj["template"]["spec"]);
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(names),
            json!(images),
            json!(format_labels(&obj["template"]["metadata"]["labels"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::validation::invalid_message;

    fn template() -> Value {
        json!({"metadata": {"name": "t", "generation": 1},
            "template": {"metadata": {"labels": {"b": "2", "a": "1"}},
              "spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox:1.36"}]}}})
    }

    #[test]
    fn template_gets_podspec_defaults_but_not_pod_admission_ones() {
        let mut t = template();
        PodTemplates::new().prepare_for_create(&mut t);
        let spec = &t["template"]["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            spec["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert!(spec.get("serviceAccountName").is_none());
        assert!(spec.get("tolerations").is_none());
        assert!(spec.get("enableServiceLinks").is_none());
    }

    #[test]
    fn template_changes_move_the_generation() {
        let st = PodTemplates::new();
        let mut old = template();
        st.prepare_for_create(&mut old);
        let mut same = old.clone();
        same["metadata"]["labels"] = json!({"x": "y"});
        st.prepare_for_update(&old, &mut same);
        assert_eq!(same["metadata"]["generation"], 1);
        let mut changed = old.clone();
        changed["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        st.prepare_for_update(&old, &mut changed);
        assert_eq!(changed["metadata"]["generation"], 2);
    }

    #[test]
    fn errors_are_reported_under_template() {
        let bad = json!({"metadata": {"name": "t"},
            "template": {"metadata": {"labels": {"-bad": "x"}}, "spec": {"containers": [{"name": "c"}]}}});
        let causes = PodTemplates::new().validate(&bad);
        assert_eq!(
            invalid_message("PodTemplate", "t", &causes),
            "PodTemplate \"t\" is invalid: [template.labels: Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), template.spec.containers[0].image: Required value]"
        );
        let empty = PodTemplates::new().validate(&json!({"metadata": {"name": "t"}}));
        assert_eq!(empty[0].field, "template.spec.containers");
        assert_eq!(empty[0].message, "Required value");
        let eph = json!({"template": {"spec": {"containers": [{"name": "c", "image": "i"}],
            "ephemeralContainers": [{"name": "e", "image": "i"}]}}});
        let causes = PodTemplates::new().validate(&eph);
        assert_eq!(
            causes
                .last()
                .map(|c| (c.field.as_str(), c.message.as_str())),
            Some((
                "template.spec.ephemeralContainers",
                "Forbidden: ephemeral containers not allowed in pod template"
            ))
        );
    }

    #[test]
    fn rows() {
        let st = PodTemplates::new();
        let cells = st.cells(&template(), jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(cells[1], "web,side");
        assert_eq!(cells[2], "nginx,busybox:1.36");
        assert_eq!(cells[3], "a=1,b=2");
        let bare = json!({"metadata": {"name": "b"}, "template": {"spec": {"containers": []}}});
        assert_eq!(st.cells(&bare, jiff::Timestamp::now())[3], "<none>");
    }
}
