//! ServiceAccounts.

use serde_json::{Value, json};

use crate::apiserver::kinds::{ListMerge, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};

/// The `ServiceAccounts` strategy.
pub struct ServiceAccounts {
    def: ResourceDef,
}

impl ServiceAccounts {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ServiceAccounts {
            def: ResourceDef::new("", "v1", "ServiceAccount", "serviceaccounts")
                .short_names(&["sa"])
                .foreign_subresource(
                    "token",
                    "authentication.k8s.io",
                    "v1",
                    "TokenRequest",
                    &["create"],
                ),
        }
    }
}

impl Default for ServiceAccounts {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for ServiceAccounts {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::ServiceAccount);

    fn list_merge(&self, path: &[&str]) -> ListMerge {
        match path {
            ["secrets"] => ListMerge::MergeByKey("name"),
            _ => ListMerge::Replace,
        }
    }

    fn columns(&self) -> Vec<Column> {
        let age = age_col();
        vec![
            name_col(),
            col("Secrets", "integer", 0, "Number of secrets."),
            age,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = json!(s(&obj["metadata"]["name"]));
        let created = obj["metadata"]["creationTimestamp"].as_str();
        let age_cell = json!(age(created, now));
        vec![
            name,
            json!(obj["secrets"].as_array().map(|a| a.len()).unwrap_or(0)),
            age_cell,
        ]
    }
}
