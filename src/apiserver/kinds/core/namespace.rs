//! Namespaces: DNS-1123 label names, the `kubernetes` finalizer and the
//! `kubernetes.io/metadata.name` label, `Active`/`Terminating` phases, and deletion held
//! until `spec.finalizers` is empty (the namespace controller empties the namespace,
//! then finalizes it).

use serde_json::{Value, json};

use crate::apiserver::kinds::{
    Deletion, GET_PATCH_UPDATE, ResourceDef, Strategy, default_status_update,
};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};

/// The finalizer of the namespace controller, on every namespace from its creation.
pub const FINALIZER: &str = "kubernetes";

/// Every namespace carries `kubernetes.io/metadata.name: <name>` (upstream keeps it on
/// every write).
fn name_label(obj: &mut Value) {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    crate::apiserver::defaults::obj_mut(&mut obj["metadata"], "labels")
        .insert("kubernetes.io/metadata.name".into(), json!(name));
}

/// The `Namespaces` strategy.
pub struct Namespaces {
    def: ResourceDef,
}

impl Namespaces {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Namespaces {
            def: ResourceDef::new("", "v1", "Namespace", "namespaces")
                .cluster_scoped()
                .short_names(&["ns"])
                .verbs(&[
                    "create", "delete", "get", "list", "patch", "update", "watch",
                ])
                .subresource("status", "Namespace", GET_PATCH_UPDATE)
                .subresource("finalize", "Namespace", &["update"]),
        }
    }
}

impl Default for Namespaces {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Namespaces {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {}, "status": {}})
    }

    /// Status writes of a namespace keep its metadata changes too.
    fn status_resets(&self) -> &'static [&'static str] {
        &["spec"]
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::Namespace);

    fn validate_name(&self, name: &str) -> Vec<String> {
        crate::apiserver::validation::label_name(name)
    }

    /// A new namespace keeps the finalizers it asks for and always gets `kubernetes`
    /// (the namespace controller's, removed once the namespace is empty).
    fn prepare_for_create(&self, obj: &mut Value) {
        name_label(obj);
        let mut finalizers: Vec<Value> = obj["spec"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            finalizers.push(json!(FINALIZER));
        }
        obj["spec"] = json!({"finalizers": finalizers});
        obj["status"] = json!({"phase": "Active"});
    }

    /// Only `finalize` changes `spec.finalizers`, only `status` the status.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        new["status"] = old
            .get("status")
            .cloned()
            .unwrap_or(json!({"phase": "Active"}));
        match old["spec"].get("finalizers") {
            Some(f) => new["spec"]["finalizers"] = f.clone(),
            None => {
                if let Some(spec) = new["spec"].as_object_mut() {
                    spec.remove("finalizers");
                }
            }
        }
        name_label(new);
    }

    fn writable_subresources(&self) -> &'static [&'static str] {
        &["status", "finalize"]
    }

    /// `finalize` writes only `spec.finalizers` (what the namespace controller removes
    /// once the namespace is empty).
    fn prepare_for_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Value {
        if sub == "finalize" {
            let mut out = old.clone();
            out["spec"]["finalizers"] = new["spec"]["finalizers"].clone();
            if let Some(rv) = new["metadata"].get("resourceVersion") {
                out["metadata"]["resourceVersion"] = rv.clone();
            }
            return out;
        }
        self.prepare_for_status_update(old, new)
    }

    fn prepare_for_status_update(&self, old: &Value, new: &Value) -> Value {
        let mut out = default_status_update(old, new);
        name_label(&mut out);
        out
    }

    fn deletion(&self, _current: &Value, _requested: Option<i64>) -> Deletion {
        Deletion {
            grace_seconds: 0,
            empties_namespace: true,
        }
    }

    fn deletion_started(&self, obj: &mut Value) {
        obj["status"]["phase"] = json!("Terminating");
    }

    /// A deleted namespace stays until its `spec.finalizers` are gone too (upstream's
    /// `ShouldDeleteNamespaceDuringUpdate`): the namespace controller removes
    /// `kubernetes` once the namespace is empty, other owners their own.
    fn deletion_held(&self, obj: &Value) -> bool {
        obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.phase"]
    }

    fn columns(&self) -> Vec<Column> {
        let age = age_col();
        vec![
            name_col(),
            col("Status", "string", 0, "The status of the namespace"),
            age,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = json!(s(&obj["metadata"]["name"]));
        let created = obj["metadata"]["creationTimestamp"].as_str();
        let age_cell = json!(age(created, now));
        vec![name, json!(s(&obj["status"]["phase"])), age_cell]
    }
}
