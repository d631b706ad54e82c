//! PersistentVolumeClaims: upstream's defaults (volume mode Filesystem, phase Pending),
//! validation (access modes, a positive storage request), the update rule (the spec is
//! immutable except storage requests of bound claims, a first volumeName, and a class
//! set where none was), and `kubectl get pvc` columns. Binding to volumes is not here.

use serde_json::{Value, json};

use super::persistentvolume::{
    BETA_STORAGE_CLASS, access_modes_string, drop_volume_attributes_class, storage_class,
    validate_access_modes, validate_class_name, validate_positive_quantity, validate_volume_mode,
};
use super::podspec::quantity;
use crate::apiserver::kinds::{GET_PATCH_UPDATE, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, forbidden, invalid, required};

/// The `PersistentVolumeClaim` strategy.
pub struct PersistentVolumeClaims {
    def: ResourceDef,
}

impl PersistentVolumeClaims {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        PersistentVolumeClaims {
            def: ResourceDef::new("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
                .short_names(&["pvc"])
                .subresource("status", "PersistentVolumeClaim", GET_PATCH_UPDATE),
        }
    }
}

impl Default for PersistentVolumeClaims {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `SetDefaults_PersistentVolumeClaimSpec`: volume mode Filesystem.
fn set_spec_defaults(pvc: &mut Value) {
    if !pvc["spec"].is_object() {
        pvc["spec"] = json!({});
    }
    if pvc["spec"]["volumeMode"].is_null() {
        pvc["spec"]["volumeMode"] = json!("Filesystem");
    }
}

/// `ValidatePersistentVolumeClaimSpec` at `spec`.
fn validate_spec(spec: &Value, out: &mut Vec<Cause>) {
    let modes = &spec["accessModes"];
    if modes.as_array().is_none_or(|a| a.is_empty()) {
        let mut c = required("spec.accessModes");
        c.message = "Required value: at least 1 access mode is required".into();
        out.push(c);
    }
    validate_access_modes(modes, "spec.accessModes", out);
    let storage = &spec["resources"]["requests"]["storage"];
    if storage.is_null() {
        out.push(required("spec.resources[storage]"));
    } else {
        validate_positive_quantity(storage, "spec.resources[storage]", out);
    }
    if let Some(c) = spec["storageClassName"].as_str().filter(|c| !c.is_empty()) {
        validate_class_name(c, "spec.storageClassName", out);
    }
    validate_volume_mode(&spec["volumeMode"], "spec.volumeMode", out);
    for key in ["dataSource", "dataSourceRef"] {
        let ds = &spec[key];
        if !ds.is_object() {
            continue;
        }
        if s(&ds["name"]).is_empty() {
            out.push(required(format!("spec.{key}.name")));
        }
        let kind = s(&ds["kind"]);
        if kind.is_empty() {
            out.push(required(format!("spec.{key}.kind")));
        }
        if s(&ds["apiGroup"]).is_empty() && kind != "PersistentVolumeClaim" {
            out.push(invalid(
                format!("spec.{key}"),
                kind,
                "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            ));
        }
    }
}

/// The parts of an update's specs that must be equal: the specs with what may change
/// made equal (upstream's clone-and-compare in `ValidatePersistentVolumeClaimUpdate`).
fn comparable_specs(old: &Value, new: &Value) -> (Value, Value) {
    let (mut o, mut n) = (old["spec"].clone(), new["spec"].clone());
    if s(&o["volumeName"]).is_empty() {
        o["volumeName"] = n["volumeName"].clone();
    }
    let old_ann = old["metadata"]["annotations"][BETA_STORAGE_CLASS].as_str();
    let new_ann = new["metadata"]["annotations"][BETA_STORAGE_CLASS].as_str();
    // A class given by the beta annotation may move to storageClassName, and a claim
    // without any class may get one (upstream's retroactive default class).
    if o["storageClassName"].is_null() {
        let from_annotation =
            old_ann.is_some() && old_ann == new_ann && n["storageClassName"].as_str() == old_ann;
        if from_annotation || old_ann.is_none() {
            o["storageClassName"] = n["storageClassName"].clone();
        }
    }
    if new["status"]["phase"] == "Bound" && !n["resources"]["requests"].is_null() {
        n["resources"]["requests"]["storage"] =
            old["spec"]["resources"]["requests"]["storage"].clone();
    }
    for spec in [&mut o, &mut n] {
        if let Some(m) = spec.as_object_mut() {
            m.remove("volumeAttributesClassName");
            m.retain(|_, v| !v.is_null());
        }
    }
    (o, n)
}

impl Strategy for PersistentVolumeClaims {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::PersistentVolumeClaim);

    fn prepare_for_create(&self, obj: &mut Value) {
        set_spec_defaults(obj);
        drop_volume_attributes_class(None, obj);
        obj["status"] = json!({"phase": "Pending"});
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_spec_defaults(new);
        drop_volume_attributes_class(Some(old), new);
        match old.get("status") {
            Some(st) => new["status"] = st.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(&obj["spec"], &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        let old_ann = old["metadata"]["annotations"][BETA_STORAGE_CLASS].as_str();
        let new_ann = new["metadata"]["annotations"][BETA_STORAGE_CLASS].as_str();
        if old_ann.is_some() && old_ann != new_ann {
            out.push(invalid(
                format!("metadata.annotations[{BETA_STORAGE_CLASS}]"),
                new_ann.unwrap_or(""),
                "field is immutable",
            ));
        }
        let (o, n) = comparable_specs(old, new);
        if o != n {
            out.push(forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        let size = |v: &Value| quantity(&v["spec"]["resources"]["requests"]["storage"]);
        let status_size = quantity(&old["status"]["capacity"]["storage"]).unwrap_or(0.0);
        if let (Some(old_size), Some(new_size)) = (size(old), size(new))
            && new_size < old_size
            && new_size <= status_size
        {
            out.push(forbidden(
                "spec.resources.requests.storage",
                "field can not be less than status.capacity",
            ));
        }
        if old["spec"]["volumeMode"] != new["spec"]["volumeMode"] {
            out.push(invalid(
                "volumeMode",
                new["spec"]["volumeMode"].as_str().unwrap_or("null"),
                "field is immutable",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col(
                "Status",
                "string",
                0,
                "phase represents the current phase of PersistentVolumeClaim.",
            ),
            col(
                "Volume",
                "string",
                0,
                "volumeName is the binding reference to the PersistentVolume backing this claim.",
            ),
            col(
                "Capacity",
                "string",
                0,
                "capacity represents the actual resources of the underlying volume.",
            ),
            col(
                "Access Modes",
                "string",
                0,
                "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
            ),
            col("StorageClass", "string", 0, "StorageClass of the pvc"),
            col(
                "VolumeAttributesClass",
                "string",
                0,
                "VolumeAttributesClass of the pvc",
            ),
            age_col(),
            col(
                "VolumeMode",
                "string",
                1,
                "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let spec = &obj["spec"];
        let phase = if obj["metadata"]["deletionTimestamp"].is_string() {
            "Terminating"
        } else {
            s(&obj["status"]["phase"])
        };
        let volume = s(&spec["volumeName"]);
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                s(&obj["status"]["capacity"]["storage"]).to_string(),
                access_modes_string(&obj["status"]["accessModes"]),
            )
        };
        let unset = |v: &Value| v.as_str().unwrap_or("<unset>").to_string();
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(phase),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(storage_class(obj)),
            json!(unset(&spec["volumeAttributesClassName"])),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
            json!(unset(&spec["volumeMode"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::validation::invalid_message;

    fn pvc() -> Value {
        json!({"metadata": {"name": "data", "namespace": "default"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}})
    }

    #[test]
    fn defaults_and_pending_phase() {
        let mut c = pvc();
        c["spec"]["volumeAttributesClassName"] = json!("gold");
        c["status"] = json!({"phase": "Bound"});
        PersistentVolumeClaims::new().prepare_for_create(&mut c);
        assert_eq!(c["spec"]["volumeMode"], "Filesystem");
        assert_eq!(c["status"], json!({"phase": "Pending"}));
        assert!(c["spec"].get("volumeAttributesClassName").is_none());
        assert!(PersistentVolumeClaims::new().validate(&c).is_empty());
    }

    #[test]
    fn errors_have_upstream_wording() {
        let st = PersistentVolumeClaims::new();
        let empty = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(
            invalid_message("PersistentVolumeClaim", "x", &st.validate(&empty)),
            "PersistentVolumeClaim \"x\" is invalid: [spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]"
        );
        let mut bad = pvc();
        bad["spec"]["resources"]["requests"]["storage"] = json!("-1");
        bad["spec"]["storageClassName"] = json!("Fast_SSD");
        assert_eq!(
            invalid_message("PersistentVolumeClaim", "data", &st.validate(&bad)),
            "PersistentVolumeClaim \"data\" is invalid: [spec.resources[storage]: Invalid value: \"-1\": must be greater than zero, \
spec.storageClassName: Invalid value: \"Fast_SSD\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')]"
        );
    }

    #[test]
    fn spec_is_immutable_except_what_upstream_allows() {
        let st = PersistentVolumeClaims::new();
        let mut old = pvc();
        st.prepare_for_create(&mut old);
        let mut modes = old.clone();
        modes["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let causes = st.validate_update(&old, &modes);
        assert_eq!(causes.len(), 1);
        assert_eq!(
            causes[0].message,
            "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
        );
        // A pending claim cannot grow; a bound one can.
        let mut grow = old.clone();
        grow["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert_eq!(st.validate_update(&old, &grow).len(), 1);
        let mut bound = old.clone();
        bound["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
        bound["spec"]["volumeName"] = json!("pv1");
        let mut grown = bound.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(st.validate_update(&bound, &grown).is_empty());
        // The first volumeName and a first class are allowed.
        let mut named = old.clone();
        named["spec"]["volumeName"] = json!("pv1");
        named["spec"]["storageClassName"] = json!("standard");
        assert!(st.validate_update(&old, &named).is_empty());
    }

    #[test]
    fn rows() {
        let st = PersistentVolumeClaims::new();
        let mut c = pvc();
        st.prepare_for_create(&mut c);
        let cells = st.cells(&c, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(
            cells[..7],
            [
                json!("data"),
                json!("Pending"),
                json!(""),
                json!(""),
                json!(""),
                json!(""),
                json!("<unset>")
            ]
        );
        c["spec"]["volumeName"] = json!("pv1");
        c["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]});
        let cells = st.cells(&c, jiff::Timestamp::now());
        assert_eq!(
            cells[1..5],
            [json!("Bound"), json!("pv1"), json!("1Gi"), json!("RWO")]
        );
        assert_eq!(cells[8], "Filesystem");
    }
}
