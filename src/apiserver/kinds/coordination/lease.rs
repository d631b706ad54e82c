//! coordination.k8s.io/v1 Leases (node heartbeats, leader election).

use serde_json::{Value, json};

use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};

/// The `Leases` strategy.
pub struct Leases {
    def: ResourceDef,
}

impl Leases {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Leases {
            def: ResourceDef::new("coordination.k8s.io", "v1", "Lease", "leases"),
        }
    }
}

impl Default for Leases {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Leases {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {}})
    }

    crate::typed_kind!(k8s_openapi::api::coordination::v1::Lease);

    fn columns(&self) -> Vec<Column> {
        let age = age_col();
        vec![
            name_col(),
            col("Holder", "string", 0, "Holder identity of the lease."),
            age,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = json!(s(&obj["metadata"]["name"]));
        let created = obj["metadata"]["creationTimestamp"].as_str();
        let age_cell = json!(age(created, now));
        vec![name, json!(s(&obj["spec"]["holderIdentity"])), age_cell]
    }
}
