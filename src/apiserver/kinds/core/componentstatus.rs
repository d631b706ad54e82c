//! ComponentStatuses: upstream's deprecated, read-only view of the control plane's
//! health. Nothing is stored: each read probes the components now (see
//! [`crate::apiserver::live`]). The scheduler and the controllers are tasks of the process
//! that answers the request, so they are up when it can answer; the store is probed with
//! a read, as upstream probes etcd.

use serde_json::{Value, json};

use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::{Column, col, name_col, s};
use crate::store::Store;

/// The `ComponentStatus` strategy.
pub struct ComponentStatuses {
    def: ResourceDef,
}

impl ComponentStatuses {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ComponentStatuses {
            def: ResourceDef::new("", "v1", "ComponentStatus", "componentstatuses")
                .cluster_scoped()
                .short_names(&["cs"])
                .verbs(&["get", "list"]),
        }
    }
}

impl Default for ComponentStatuses {
    fn default() -> Self {
        Self::new()
    }
}

/// One ComponentStatus object with a `Healthy` condition.
pub fn component(name: &str, healthy: Result<&str, String>) -> Value {
    let condition = match healthy {
        Ok(message) => json!({"type": "Healthy", "status": "True", "message": message}),
        Err(error) => json!({"type": "Healthy", "status": "False", "error": error}),
    };
    json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name, "creationTimestamp": null},
        "conditions": [condition],
    })
}

impl Strategy for ComponentStatuses {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::ComponentStatus);

    fn live_objects(&self, store: &Store) -> Option<Vec<Value>> {
        let etcd = store
            .list("/registry/namespaces/default")
            .map(|_| "ok")
            .map_err(|e| e.to_string());
        Some(vec![
            component("scheduler", Ok("ok")),
            component("controller-manager", Ok("ok")),
            component("etcd-0", etcd),
        ])
    }

    fn deprecation_warning(&self) -> Option<String> {
        Some("v1 ComponentStatus is deprecated in v1.19+".into())
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col("Status", "string", 0, "Status of the component conditions"),
            col(
                "Message",
                "string",
                0,
                "Message of the component conditions",
            ),
            col("Error", "string", 0, "Error of the component conditions"),
        ]
    }

    /// STATUS is Healthy/Unhealthy from the `Healthy` condition (Unknown without one),
    /// with its message and error.
    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        let cond = obj["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Healthy"));
        let (status, message, error) = match cond {
            Some(c) if c["status"] == "True" => ("Healthy", s(&c["message"]), s(&c["error"])),
            Some(c) => ("Unhealthy", s(&c["message"]), s(&c["error"])),
            None => ("Unknown", "", ""),
        };
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(status),
            json!(message),
            json!(error),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows() {
        let st = ComponentStatuses::new();
        let now = jiff::Timestamp::now();
        let ok = st.cells(&component("scheduler", Ok("ok")), now);
        assert_eq!(ok.len(), st.columns().len());
        assert_eq!(
            ok,
            [json!("scheduler"), json!("Healthy"), json!("ok"), json!("")]
        );
        let bad = st.cells(&component("etcd-0", Err("down".into())), now);
        assert_eq!(bad[1..], [json!("Unhealthy"), json!(""), json!("down")]);
        let none = st.cells(&json!({"metadata": {"name": "x"}}), now);
        assert_eq!(none[1], "Unknown");
    }
}
