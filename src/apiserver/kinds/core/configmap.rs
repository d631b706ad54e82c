//! ConfigMaps: `data`/`binaryData` keys checked as upstream, and `immutable` enforced.

use serde_json::{Value, json};

use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::Cause;

/// The `ConfigMaps` strategy.
pub struct ConfigMaps {
    def: ResourceDef,
}

impl ConfigMaps {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ConfigMaps {
            def: ResourceDef::new("", "v1", "ConfigMap", "configmaps").short_names(&["cm"]),
        }
    }
}

impl Default for ConfigMaps {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for ConfigMaps {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::ConfigMap);

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        super::validate_data_keys(obj, &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        super::validate_immutable_data(old, new, &mut out);
        out
    }

    fn columns(&self) -> Vec<Column> {
        let age = age_col();
        vec![
            name_col(),
            col("Data", "integer", 0, "Number of keys."),
            age,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = json!(s(&obj["metadata"]["name"]));
        let created = obj["metadata"]["creationTimestamp"].as_str();
        let age_cell = json!(age(created, now));
        {
            let n = obj["data"].as_object().map(|m| m.len()).unwrap_or(0)
                + obj["binaryData"].as_object().map(|m| m.len()).unwrap_or(0);
            vec![name, json!(n), age_cell]
        }
    }
}
