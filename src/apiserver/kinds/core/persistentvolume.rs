//! PersistentVolumes: cluster-scoped storage with upstream's defaults (reclaim policy
//! Retain, volume mode Filesystem), validation (capacity, access modes, exactly one volume
//! source, immutable source) and `kubectl get pv` columns. Without a PV controller yet, a
//! new volume that is not pre-bound goes `Available` at once, which is what upstream's
//! controller does right after the create; binding claims to volumes is not done here.

use serde_json::{Value, json};

use super::podspec::quantity;
use crate::apiserver::defaults::now_rfc3339;
use crate::apiserver::kinds::{GET_PATCH_UPDATE, ResourceDef, Strategy, default_status_update};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{self, Cause, forbidden, invalid, not_supported, required};

/// The beta annotation that named a volume's (or claim's) class before `storageClassName`.
pub const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// Access modes upstream supports, sorted as its messages list them.
const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// The volume sources of a PersistentVolumeSpec in upstream's validation order: the JSON
/// key and the path upstream's "more than 1 volume type" error names.
const SOURCES: &[(&str, &str)] = &[
    ("hostPath", "hostPath"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("nfs", "nfs"),
    ("rbd", "rbd"),
    ("quobyte", "quobyte"),
    ("cephfs", "cephFS"),
    ("iscsi", "iscsi"),
    ("cinder", "cinder"),
    ("fc", "fc"),
    ("flexVolume", ""),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("scaleIO", "scaleIO"),
    ("local", "local"),
    ("storageos", "storageos"),
    ("csi", "csi"),
];

/// The `PersistentVolume` strategy.
pub struct PersistentVolumes {
    def: ResourceDef,
}

impl PersistentVolumes {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        PersistentVolumes {
            def: ResourceDef::new("", "v1", "PersistentVolume", "persistentvolumes")
                .cluster_scoped()
                .short_names(&["pv"])
                .subresource("status", "PersistentVolume", GET_PATCH_UPDATE),
        }
    }
}

impl Default for PersistentVolumes {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `SetDefaults_PersistentVolume` (and the hostPath type default).
fn set_spec_defaults(pv: &mut Value) {
    if !pv["spec"].is_object() {
        pv["spec"] = json!({});
    }
    let spec = &mut pv["spec"];
    if s(&spec["persistentVolumeReclaimPolicy"]).is_empty() {
        spec["persistentVolumeReclaimPolicy"] = json!("Retain");
    }
    if spec["volumeMode"].is_null() {
        spec["volumeMode"] = json!("Filesystem");
    }
    if spec["hostPath"].is_object() && spec["hostPath"]["type"].is_null() {
        spec["hostPath"]["type"] = json!("");
    }
}

/// Drops `spec.volumeAttributesClassName` unless `old` uses it: the VolumeAttributesClass
/// feature gate is off by default in upstream v1.32, whose strategies drop the field then.
pub fn drop_volume_attributes_class(old: Option<&Value>, new: &mut Value) {
    let in_use = old.is_some_and(|o| !o["spec"]["volumeAttributesClassName"].is_null());
    if !in_use && let Some(spec) = new["spec"].as_object_mut() {
        spec.remove("volumeAttributesClassName");
    }
}

/// The access modes as `kubectl get` abbreviates them (`RWO,ROX,RWX,RWOP`, in that order).
pub fn access_modes_string(modes: &Value) -> String {
    let has = |m: &str| {
        modes
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(m)))
    };
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The class of a volume or claim: the beta annotation first, then `storageClassName`.
pub fn storage_class(obj: &Value) -> String {
    match obj["metadata"]["annotations"][BETA_STORAGE_CLASS].as_str() {
        Some(c) => c.to_string(),
        None => s(&obj["spec"]["storageClassName"]).to_string(),
    }
}

/// The access-mode rules PersistentVolumes and claims share: each supported, and
/// ReadWriteOncePod alone.
pub fn validate_access_modes(modes: &Value, path: &str, out: &mut Vec<Cause>) {
    let (mut once_pod, mut other) = (false, false);
    for m in modes.as_array().into_iter().flatten() {
        let m = s(m);
        if !ACCESS_MODES.contains(&m) {
            out.push(not_supported(path, m, ACCESS_MODES));
        } else if m == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            other = true;
        }
    }
    if once_pod && other {
        out.push(forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

/// A class name (`storageClassName`, `volumeAttributesClassName`) is a DNS-1123 subdomain.
pub fn validate_class_name(name: &str, path: &str, out: &mut Vec<Cause>) {
    for m in validation::subdomain_name(name) {
        out.push(invalid(path, name, &m));
    }
}

/// `volumeMode`, when set, is Block or Filesystem.
pub fn validate_volume_mode(mode: &Value, path: &str, out: &mut Vec<Cause>) {
    if let Some(m) = mode.as_str()
        && m != "Block"
        && m != "Filesystem"
    {
        out.push(not_supported(path, m, &["Block", "Filesystem"]));
    }
}

/// A positive quantity (`ValidatePositiveQuantityValue`).
pub fn validate_positive_quantity(q: &Value, path: &str, out: &mut Vec<Cause>) {
    let text = match q {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    };
    if quantity(q).is_some_and(|v| v <= 0.0) {
        out.push(invalid(path, &text, "must be greater than zero"));
    }
}

/// Not negative (`validateBasicResource`, which reports the value as an integer).
fn validate_basic_quantity(q: &Value, path: &str, out: &mut Vec<Cause>) {
    if let Some(v) = quantity(q).filter(|v| *v < 0.0) {
        out.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: {}: must be a valid resource quantity",
                v.ceil() as i64
            ),
            field: path.into(),
        });
    }
}

/// A `Required value: <detail>` cause.
fn required_because(field: impl Into<String>, detail: &str) -> Cause {
    let mut c = required(field);
    c.message = format!("Required value: {detail}");
    c
}

/// The path `..` steps out of, if any (`validatePathNoBacksteps`).
fn validate_no_backsteps(p: &str, path: &str, out: &mut Vec<Cause>) {
    if p.split('/').any(|part| part == "..") {
        out.push(invalid(path, p, "must not contain '..'"));
    }
}

/// The checks of the volume sources rkind knows in detail (hostPath, nfs, local, csi);
/// the others are only counted.
fn validate_source(key: &str, src: &Value, out: &mut Vec<Cause>) {
    let base = format!("spec.{key}");
    match key {
        "hostPath" => {
            let p = s(&src["path"]);
            if p.is_empty() {
                out.push(required(format!("{base}.path")));
                return;
            }
            validate_no_backsteps(p, &format!("{base}.path"), out);
            if let Some(t) = src["type"].as_str() {
                const TYPES: &[&str] = &[
                    "",
                    "BlockDevice",
                    "CharDevice",
                    "Directory",
                    "DirectoryOrCreate",
                    "File",
                    "FileOrCreate",
                    "Socket",
                ];
                if !TYPES.contains(&t) {
                    out.push(not_supported(format!("{base}.type"), t, TYPES));
                }
            }
        }
        "nfs" => {
            let p = s(&src["path"]);
            if s(&src["server"]).is_empty() {
                out.push(required(format!("{base}.server")));
            }
            if p.is_empty() {
                out.push(required(format!("{base}.path")));
            }
            if !p.starts_with('/') {
                out.push(invalid(
                    format!("{base}.path"),
                    p,
                    "must be an absolute path",
                ));
            }
        }
        "local" => {
            let p = s(&src["path"]);
            if p.is_empty() {
                out.push(required(format!("{base}.path")));
                return;
            }
            validate_no_backsteps(p, &format!("{base}.path"), out);
        }
        "csi" => {
            let driver = s(&src["driver"]);
            if driver.is_empty() {
                out.push(required(format!("{base}.driver")));
            } else {
                for m in validation::subdomain_name(&driver.to_lowercase()) {
                    out.push(invalid(format!("{base}.driver"), driver, &m));
                }
            }
            if s(&src["volumeHandle"]).is_empty() {
                out.push(required(format!("{base}.volumeHandle")));
            }
        }
        _ => {}
    }
}

/// How upstream prints a ResourceList it refuses (Go's `%#v`), for the capacity message.
fn resource_list_go(v: &Value) -> String {
    match v.as_object() {
        None => "core.ResourceList(nil)".into(),
        Some(m) => {
            let items: Vec<String> = m.iter().map(|(k, q)| format!("{k:?}:{:?}", s(q))).collect();
            format!("core.ResourceList{{{}}}", items.join(", "))
        }
    }
}

/// `ValidatePersistentVolumeSpec` for a stored (not inline) volume.
fn validate_spec(spec: &Value, out: &mut Vec<Cause>) {
    let modes = &spec["accessModes"];
    if modes.as_array().is_none_or(|a| a.is_empty()) {
        out.push(required("spec.accessModes"));
    }
    validate_access_modes(modes, "spec.accessModes", out);
    let cap = &spec["capacity"];
    let cap_len = cap.as_object().map_or(0, |m| m.len());
    if cap_len == 0 {
        out.push(required("spec.capacity"));
    }
    if cap.get("storage").is_none() || cap_len > 1 {
        out.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: \"storage\"",
                resource_list_go(cap)
            ),
            field: "spec.capacity".into(),
        });
    }
    for (k, q) in cap.as_object().into_iter().flatten() {
        let path = format!("spec.capacity[{k}]");
        validate_basic_quantity(q, &path, out);
        validate_positive_quantity(q, &path, out);
    }
    if let Some(p) = spec["persistentVolumeReclaimPolicy"]
        .as_str()
        .filter(|p| !p.is_empty())
        && !["Delete", "Recycle", "Retain"].contains(&p)
    {
        out.push(not_supported(
            "spec.persistentVolumeReclaimPolicy",
            p,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let affinity_required = spec["nodeAffinity"]["required"].is_object();
    let mut count = 0;
    for (key, forbidden_path) in SOURCES {
        let src = &spec[*key];
        if src.is_null() {
            continue;
        }
        if count > 0 && !forbidden_path.is_empty() {
            out.push(forbidden(
                format!("spec.{forbidden_path}"),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        validate_source(key, src, out);
        if *key == "local" && !affinity_required {
            out.push(required_because(
                "spec.nodeAffinity",
                "Local volume requires node affinity",
            ));
        }
    }
    if count == 0 {
        out.push(required_because("spec", "must specify a volume type"));
    }
    if let Some(p) = spec["hostPath"]["path"].as_str()
        && p.trim_end_matches('/').is_empty()
        && p.starts_with('/')
        && s(&spec["persistentVolumeReclaimPolicy"]) == "Recycle"
    {
        out.push(forbidden(
            "spec.persistentVolumeReclaimPolicy",
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }
    if let Some(c) = spec["storageClassName"].as_str().filter(|c| !c.is_empty()) {
        validate_class_name(c, "spec.storageClassName", out);
    }
    validate_volume_mode(&spec["volumeMode"], "spec.volumeMode", out);
}

/// The spec without what is not a volume source, for the immutability check.
fn source_of(spec: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (key, _) in SOURCES {
        if let Some(v) = spec.get(*key).filter(|v| !v.is_null()) {
            out.insert((*key).into(), v.clone());
        }
    }
    Value::Object(out)
}

impl Strategy for PersistentVolumes {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::PersistentVolume);

    /// Defaults, and the phase upstream's PV controller gives a new volume at once:
    /// `Available` unless it is bound to a particular claim already (binding is later).
    fn prepare_for_create(&self, obj: &mut Value) {
        set_spec_defaults(obj);
        drop_volume_attributes_class(None, obj);
        let bound = obj["spec"]["claimRef"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty());
        let phase = if bound { "Pending" } else { "Available" };
        obj["status"] = json!({"phase": phase, "lastPhaseTransitionTime": now_rfc3339()});
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

    /// The status write, with `lastPhaseTransitionTime` kept while the phase stays and
    /// moved to now when the phase changes and the client did not set a new time.
    fn prepare_for_status_update(&self, old: &Value, new: &Value) -> Value {
        let mut out = default_status_update(old, new);
        let (old_st, new_st) = (&old["status"], &new["status"]);
        let new_time = &new_st["lastPhaseTransitionTime"];
        if old_st["phase"] == new_st["phase"] {
            if new_time.is_null() && !old_st["lastPhaseTransitionTime"].is_null() {
                out["status"]["lastPhaseTransitionTime"] =
                    old_st["lastPhaseTransitionTime"].clone();
            }
        } else if new_time.is_null() || *new_time == old_st["lastPhaseTransitionTime"] {
            out["status"]["lastPhaseTransitionTime"] = json!(now_rfc3339());
        }
        out
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(&obj["spec"], &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        if source_of(&old["spec"]) != source_of(&new["spec"]) {
            out.push(forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation",
            ));
        }
        if old["spec"]["volumeMode"] != new["spec"]["volumeMode"] {
            let v = &new["spec"]["volumeMode"];
            out.push(match v.as_str() {
                Some(m) => invalid("volumeMode", m, "field is immutable"),
                None => Cause {
                    reason: "FieldValueInvalid".into(),
                    message: "Invalid value: \"null\": field is immutable".into(),
                    field: "volumeMode".into(),
                },
            });
        }
        if old["spec"]["volumeAttributesClassName"] != new["spec"]["volumeAttributesClassName"] {
            out.push(forbidden(
                "spec.volumeAttributesClassName",
                "update is forbidden when the VolumeAttributesClass feature gate is disabled",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col(
                "Capacity",
                "string",
                0,
                "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity",
            ),
            col(
                "Access Modes",
                "string",
                0,
                "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes",
            ),
            col(
                "Reclaim Policy",
                "string",
                0,
                "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming",
            ),
            col(
                "Status",
                "string",
                0,
                "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase",
            ),
            col(
                "Claim",
                "string",
                0,
                "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding",
            ),
            col("StorageClass", "string", 0, "StorageClass of the pv"),
            col(
                "VolumeAttributesClass",
                "string",
                0,
                "VolumeAttributesClass of the pv",
            ),
            col(
                "Reason",
                "string",
                0,
                "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
            ),
            age_col(),
            col(
                "VolumeMode",
                "string",
                1,
                "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let spec = &obj["spec"];
        let claim = match spec["claimRef"].as_object() {
            Some(c) => format!(
                "{}/{}",
                c.get("namespace").map(s).unwrap_or(""),
                c.get("name").map(s).unwrap_or("")
            ),
            None => String::new(),
        };
        let phase = if obj["metadata"]["deletionTimestamp"].is_string() {
            "Terminating"
        } else {
            s(&obj["status"]["phase"])
        };
        let unset = |v: &Value| v.as_str().unwrap_or("<unset>").to_string();
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(s(&spec["capacity"]["storage"])),
            json!(access_modes_string(&spec["accessModes"])),
            json!(s(&spec["persistentVolumeReclaimPolicy"])),
            json!(phase),
            json!(claim),
            json!(storage_class(obj)),
            json!(unset(&spec["volumeAttributesClassName"])),
            json!(s(&obj["status"]["reason"])),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
            json!(unset(&spec["volumeMode"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::validation::invalid_message;

    fn pv() -> Value {
        json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce", "ReadOnlyMany"], "hostPath": {"path": "/tmp/pv1"}}})
    }

    #[test]
    fn defaults_and_available_phase() {
        let mut v = pv();
        PersistentVolumes::new().prepare_for_create(&mut v);
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(v["spec"]["volumeMode"], "Filesystem");
        assert_eq!(v["spec"]["hostPath"]["type"], "");
        assert_eq!(v["status"]["phase"], "Available");
        assert!(v["status"]["lastPhaseTransitionTime"].is_string());
        assert!(PersistentVolumes::new().validate(&v).is_empty());
    }

    #[test]
    fn errors_have_upstream_wording() {
        let st = PersistentVolumes::new();
        let empty = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(
            invalid_message("PersistentVolume", "x", &st.validate(&empty)),
            "PersistentVolume \"x\" is invalid: [spec.accessModes: Required value, spec.capacity: Required value, spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\", spec: Required value: must specify a volume type]"
        );
        let mut bad = pv();
        bad["spec"]["accessModes"] = json!(["ReadWriteOncePod", "ReadWriteOnce", "Sometimes"]);
        bad["spec"]["capacity"]["storage"] = json!("0");
        bad["spec"]["nfs"] = json!({"server": "s", "path": "/x"});
        bad["spec"]["persistentVolumeReclaimPolicy"] = json!("Keep");
        bad["spec"]["volumeMode"] = json!("Raw");
        assert_eq!(
            invalid_message("PersistentVolume", "pv1", &st.validate(&bad)),
            "PersistentVolume \"pv1\" is invalid: [spec.accessModes: Unsupported value: \"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\", \
spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes, \
spec.capacity[storage]: Invalid value: \"0\": must be greater than zero, \
spec.persistentVolumeReclaimPolicy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Recycle\", \"Retain\", \
spec.nfs: Forbidden: may not specify more than 1 volume type, \
spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"]"
        );
    }

    #[test]
    fn source_and_volume_mode_are_immutable() {
        let st = PersistentVolumes::new();
        let mut old = pv();
        st.prepare_for_create(&mut old);
        let mut new = old.clone();
        new["spec"]["hostPath"]["path"] = json!("/elsewhere");
        new["spec"]["volumeMode"] = json!("Block");
        let fields: Vec<String> = st
            .validate_update(&old, &new)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            fields,
            [
                "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation",
                "volumeMode: Invalid value: \"Block\": field is immutable",
            ]
        );
        let mut cap = old.clone();
        cap["spec"]["capacity"]["storage"] = json!("2Gi");
        assert!(st.validate_update(&old, &cap).is_empty());
    }

    #[test]
    fn phase_changes_move_the_transition_time() {
        let st = PersistentVolumes::new();
        let old = json!({"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Available", "lastPhaseTransitionTime": "2020-01-01T00:00:00Z"}});
        let same = st.prepare_for_status_update(
            &old,
            &json!({"metadata": {"name": "p"}, "status": {"phase": "Available"}}),
        );
        assert_eq!(
            same["status"]["lastPhaseTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        let moved = st.prepare_for_status_update(
            &old,
            &json!({"metadata": {"name": "p"}, "status": {"phase": "Released"}}),
        );
        assert_ne!(
            moved["status"]["lastPhaseTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        assert_eq!(moved["status"]["phase"], "Released");
    }

    #[test]
    fn rows() {
        let st = PersistentVolumes::new();
        let mut v = pv();
        st.prepare_for_create(&mut v);
        v["spec"]["claimRef"] = json!({"namespace": "dev", "name": "data"});
        v["spec"]["storageClassName"] = json!("manual");
        let cells = st.cells(&v, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(
            cells[..8],
            [
                json!("pv1"),
                json!("1Gi"),
                json!("RWO,ROX"),
                json!("Retain"),
                json!("Available"),
                json!("dev/data"),
                json!("manual"),
                json!("<unset>")
            ]
        );
        assert_eq!(cells[10], "Filesystem");
        assert_eq!(
            access_modes_string(&json!([
                "ReadWriteOncePod",
                "ReadWriteMany",
                "ReadWriteMany"
            ])),
            "RWX,RWOP"
        );
    }
}
