//! ControllerRevisions: the immutable snapshots of a StatefulSet's or DaemonSet's template
//! (and what `kubectl rollout history` reads). Upstream's `ValidateControllerRevision*`
//! (data mandatory and immutable, a non-negative revision) and the
//! NAME CONTROLLER REVISION AGE columns. No status, not in category `all`.

use serde_json::{Value, json};

use super::{invalid_go, nonnegative};
use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, required};

/// The `ControllerRevision` strategy.
pub struct ControllerRevisions {
    def: ResourceDef,
}

impl ControllerRevisions {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ControllerRevisions {
            def: ResourceDef::new("apps", "v1", "ControllerRevision", "controllerrevisions"),
        }
    }
}

impl Default for ControllerRevisions {
    fn default() -> Self {
        Self::new()
    }
}

/// `data` as Go's `%#v` prints a `runtime.RawExtension` holding its JSON.
fn go_raw_extension(data: &Value) -> String {
    let raw = serde_json::to_vec(data).unwrap_or_default();
    let bytes: Vec<String> = raw.iter().map(|b| format!("{b:#x}")).collect();
    format!(
        "runtime.RawExtension{{Raw:[]uint8{{{}}}, Object:runtime.Object(nil)}}",
        bytes.join(", ")
    )
}

/// `<kind>.<group>/<name>` of the controller owner (upstream's `formatResourceName`),
/// `<none>` without one.
fn controller_cell(obj: &Value) -> String {
    let refs = obj["metadata"]["ownerReferences"].as_array();
    let Some(r) = refs
        .into_iter()
        .flatten()
        .find(|r| r["controller"].as_bool() == Some(true))
    else {
        return "<none>".into();
    };
    let group = s(&r["apiVersion"])
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("");
    let kind = if group.is_empty() {
        s(&r["kind"]).to_string()
    } else {
        format!("{}.{group}", s(&r["kind"]))
    };
    format!("{}/{}", kind.to_lowercase(), s(&r["name"]))
}

impl Strategy for ControllerRevisions {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::apps::v1::ControllerRevision);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "revision": 0})
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        if obj["data"].is_null() {
            out.push(Cause {
                message: "Required value: data is mandatory".into(),
                ..required("data")
            });
        }
        nonnegative(&obj["revision"], "revision", &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        if old["data"] != new["data"] {
            out.push(invalid_go(
                "data",
                &go_raw_extension(&new["data"]),
                "field is immutable",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col("Controller", "string", 0, "Controller of the object"),
            col(
                "Revision",
                "string",
                0,
                "Revision indicates the revision of the state represented by Data.",
            ),
            age_col(),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(controller_cell(obj)),
            json!(obj["revision"].as_i64().unwrap_or(0)),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_mandatory_and_immutable() {
        let st = ControllerRevisions::new();
        let got: Vec<String> = st
            .validate(&json!({"metadata": {"name": "x"}, "revision": -1}))
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            got,
            vec![
                "data: Required value: data is mandatory",
                "revision: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
        let old = json!({"data": {"a": 1}, "revision": 1});
        let new = json!({"data": {}, "revision": 1});
        let got = st.validate_update(&old, &new);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].message,
            "Invalid value: runtime.RawExtension{Raw:[]uint8{0x7b, 0x7d}, Object:runtime.Object(nil)}: field is immutable"
        );
    }

    #[test]
    fn controller_column() {
        let st = ControllerRevisions::new();
        let obj = json!({"metadata": {"name": "web-1", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": true}]},
            "revision": 3});
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells[1], "statefulset.apps/web");
        assert_eq!(cells[2], 3);
        assert_eq!(
            st.cells(&json!({"metadata": {"name": "x"}}), jiff::Timestamp::now())[1],
            "<none>"
        );
        assert!(st.def().categories.is_empty());
    }
}
