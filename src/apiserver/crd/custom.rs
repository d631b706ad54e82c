//! The [`Strategy`] of one served version of a custom kind, built from its CRD (upstream's
//! `pkg/registry/customresource`): validation, pruning and defaulting from the version's
//! structural schema, the declared printer columns, `status` and `scale` subresources,
//! and `None` conversion: objects are stored with the storage version's apiVersion and
//! shown with the requested one.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{cel_rules, columns, conversion, default, prune, schema};
use crate::apiserver::kinds::apiextensions::customresourcedefinition::definition;
use crate::apiserver::kinds::{
    GET_PATCH_UPDATE, Kind, ResourceDef, ScalePaths, SelectorForm, Strategy,
};
use crate::apiserver::table::Column;
use crate::apiserver::validation::Cause;

/// One served version of a custom kind.
pub struct CustomKind {
    def: ResourceDef,
    /// The version's `openAPIV3Schema`.
    schema: Value,
    /// The storage version's apiVersion (`example.com/v1`).
    storage_api_version: String,
    columns: Vec<columns::PrinterColumn>,
    scale: Option<ScalePaths>,
    deprecation: Option<String>,
    /// The CRD's name (`widgets.example.com`): creates are refused while it is deleted.
    crd_name: String,
    /// The CRD's conversion webhook, when its strategy is `Webhook`.
    webhook: Option<conversion::ConversionWebhook>,
}

/// The storage segment of a CRD's objects: `<group>/<plural>`, as upstream keys them.
pub fn storage_segment(crd: &Value) -> String {
    format!(
        "{}/{}",
        crd["spec"]["group"].as_str().unwrap_or(""),
        crd["spec"]["names"]["plural"].as_str().unwrap_or("")
    )
}

/// A JSONPath of a scale subresource (`.spec.replicas`) as a JSON pointer.
fn pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, p| format!("{acc}/{p}"))
}

/// The served versions of `crd`, one strategy each.
pub fn kinds_of(crd: &Value) -> Vec<Kind> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("");
    let names = &spec["names"];
    let kind = names["kind"].as_str().unwrap_or("");
    let plural = names["plural"].as_str().unwrap_or("");
    let singular = names["singular"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str())
        .unwrap_or("");
    let storage_api_version = format!("{group}/{storage}");
    let webhook = conversion::ConversionWebhook::of(crd, &storage_api_version);
    let mut out: Vec<Kind> = Vec::new();
    for v in versions
        .iter()
        .filter(|v| v["served"].as_bool() == Some(true))
    {
        let version = v["name"].as_str().unwrap_or("");
        let mut def = ResourceDef::new(group, version, kind, plural).storage(&storage_segment(crd));
        def.singular = singular.clone();
        def.short_names = strings(&names["shortNames"]);
        def.categories = strings(&names["categories"]);
        if spec["scope"].as_str() == Some("Cluster") {
            def = def.cluster_scoped();
        }
        let subs = &v["subresources"];
        if subs.get("status").is_some_and(|s| !s.is_null()) {
            def = def.subresource("status", kind, GET_PATCH_UPDATE);
        }
        let scale = subs.get("scale").filter(|s| s.is_object()).map(|s| {
            def = def.clone().foreign_subresource(
                "scale",
                "autoscaling",
                "v1",
                "Scale",
                GET_PATCH_UPDATE,
            );
            ScalePaths {
                spec_replicas: pointer(s["specReplicasPath"].as_str().unwrap_or(".spec.replicas")),
                status_replicas: pointer(
                    s["statusReplicasPath"]
                        .as_str()
                        .unwrap_or(".status.replicas"),
                ),
                selector: s["labelSelectorPath"]
                    .as_str()
                    .filter(|p| !p.is_empty())
                    .map(|p| (pointer(p), SelectorForm::String)),
                not_found_group: group.to_string(),
            }
        });
        let deprecation = (v["deprecated"].as_bool() == Some(true)).then(|| {
            v["deprecationWarning"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| format!("{group}/{version} {kind} is deprecated"))
        });
        out.push(Arc::new(CustomKind {
            def,
            schema: v["schema"]["openAPIV3Schema"].clone(),
            storage_api_version: storage_api_version.clone(),
            columns: columns::from_version(v),
            scale,
            deprecation,
            crd_name: crd["metadata"]["name"].as_str().unwrap_or("").to_string(),
            webhook: webhook.clone(),
        }));
    }
    out
}

impl CustomKind {
    /// Upstream's OpenAPI component name: the reversed group, the version, the kind
    /// (`com.example.v1.Widget`).
    fn component_name(&self) -> String {
        let mut parts: Vec<&str> = self.def.group.split('.').collect();
        parts.reverse();
        format!("{}.{}.{}", parts.join("."), self.def.version, self.def.kind)
    }
}

impl Strategy for CustomKind {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    /// Prunes what the schema does not specify (the dropped paths are the unknown
    /// fields) and applies its defaults.
    fn normalize(&self, mut value: Value) -> Result<(Value, Vec<String>), String> {
        if !value.is_object() {
            return Err("expected an object".into());
        }
        let dropped = prune::prune(&self.schema, &mut value);
        default::apply(&self.schema, &mut value);
        Ok((value, dropped))
    }

    fn raw_schema(&self, object_meta_ref: &str) -> Option<(String, Value)> {
        let mut s = self.schema.clone();
        if !s.is_object() {
            s = json!({"type": "object"});
        }
        s["properties"]["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"});
        s["properties"]["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"});
        s["properties"]["metadata"] = json!({"allOf": [{"$ref": object_meta_ref}], "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"});
        Some((self.component_name(), s))
    }

    /// `None` conversion relabels the object; a webhook converts it at the storage
    /// boundary instead (`conversion_webhook`), so here it stays as it is.
    fn to_view(&self, stored: &Value) -> Value {
        let mut v = stored.clone();
        if self.webhook.is_none() {
            v["apiVersion"] = json!(self.def.api_version());
        }
        v
    }

    fn stored_is_view(&self) -> bool {
        self.webhook.is_some() || self.def.api_version() == self.storage_api_version
    }

    fn to_storage(&self, mut obj: Value) -> Value {
        if self.webhook.is_none() {
            obj["apiVersion"] = json!(self.storage_api_version);
        }
        obj
    }

    fn conversion_webhook(&self) -> Option<&conversion::ConversionWebhook> {
        self.webhook.as_ref()
    }

    /// With a `status` subresource the status is the controller's: a create drops it.
    fn prepare_for_create(&self, obj: &mut Value) {
        if self.def.has_status()
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
    }

    /// Keeps the stored status when it is a subresource, and moves the generation on a
    /// change of anything but the metadata (and the status, when it is a subresource), as
    /// upstream's customresource strategy; a spec change is counted by the caller.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        let status = self.def.has_status();
        if status {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        let counted = |k: &str| k != "metadata" && k != "spec" && !(status && k == "status");
        let keys: Vec<String> = [old, &*new]
            .iter()
            .filter_map(|v| v.as_object())
            .flat_map(|m| m.keys().cloned())
            .collect();
        let changed = keys.iter().any(|k| counted(k) && old.get(k) != new.get(k));
        if changed && old.get("spec") == new.get("spec") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = schema::validate(&self.schema, obj);
        out.extend(cel_rules::validate(&self.schema, obj, None));
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = schema::validate(&self.schema, new);
        out.extend(cel_rules::validate(&self.schema, new, Some(old)));
        out
    }

    fn columns(&self) -> Vec<Column> {
        columns::columns(&self.columns)
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        columns::cells(&self.columns, obj, now)
    }

    fn scale(&self) -> Option<ScalePaths> {
        self.scale.clone()
    }

    fn creates_refused(&self, store: &crate::store::Store) -> Option<String> {
        let key = definition().key(None, &self.crd_name);
        // Shared, not copied: this runs on every create.
        let crd = store.get_shared(&key)?;
        crd["metadata"]["deletionTimestamp"]
            .is_string()
            .then(|| "create not allowed while custom resource definition is terminating".into())
    }

    fn deprecation_warning(&self) -> Option<String> {
        self.deprecation.clone()
    }

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                     "replicas": {"type": "integer", "default": 1}}}, "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}},
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                {"name": "v0", "served": false, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn each_served_version_is_a_kind_sharing_storage() {
        let kinds = kinds_of(&crd());
        assert_eq!(kinds.len(), 2);
        let v1 = kinds[0].def();
        assert_eq!(
            v1.key(Some("default"), "w1"),
            "/registry/example.com/widgets/default/w1"
        );
        assert_eq!(kinds[1].def().storage, v1.storage);
        assert!(v1.has_status());
        assert!(v1.find_subresource("scale").is_some());
        assert!(!kinds[1].def().has_status());
        assert_eq!(kinds[0].scale().unwrap().spec_replicas, "/spec/replicas");
        let (obj, dropped) = kinds[0]
            .normalize(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"colour": "red"}}))
            .unwrap();
        assert_eq!(dropped, vec!["spec.colour"]);
        assert_eq!(obj["spec"], json!({"replicas": 1}));
        let stored = kinds[1].to_storage(json!({"apiVersion": "example.com/v1beta1"}));
        assert_eq!(stored["apiVersion"], "example.com/v1");
        assert_eq!(
            kinds[1].to_view(&stored)["apiVersion"],
            "example.com/v1beta1"
        );
        assert_eq!(
            kinds[0].raw_schema("#/x").unwrap().0,
            "com.example.v1.Widget"
        );
    }

    #[test]
    fn generation_moves_on_non_metadata_changes_unless_status_is_a_subresource() {
        let kinds = kinds_of(&crd());
        let old = json!({"metadata": {"generation": 4}, "spec": {"a": 1}, "status": {"x": 1}});
        // v1: status is a subresource, so a main-resource status change is dropped.
        let mut new = json!({"metadata": {"generation": 4}, "spec": {"a": 1}, "status": {"x": 2}});
        kinds[0].prepare_for_update(&old, &mut new);
        assert_eq!(new["status"]["x"], 1);
        assert_eq!(new["metadata"]["generation"], 4);
        // v1beta1: no status subresource, the status is data like any other.
        let mut new = json!({"metadata": {"generation": 4}, "spec": {"a": 1}, "status": {"x": 2}});
        kinds[1].prepare_for_update(&old, &mut new);
        assert_eq!(new["status"]["x"], 2);
        assert_eq!(new["metadata"]["generation"], 5);
        let mut same = old.clone();
        kinds[1].prepare_for_update(&old, &mut same);
        assert_eq!(same["metadata"]["generation"], 4);
    }
}
