//! rbac.authorization.k8s.io/v1 Roles: namespaced sets of permissions (no non-resource URLs), validated as upstream's `ValidateRole`.

use serde_json::Value;

use super::*;
use crate::apiserver::kinds::{ResourceDef, Strategy};

/// The `Role` strategy.
pub struct Roles {
    def: ResourceDef,
}

impl Roles {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Roles {
            def: ResourceDef::new(GROUP, "v1", "Role", "roles"),
        }
    }
}

impl Default for Roles {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Roles {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::rbac::v1::Role);

    fn validate_name(&self, name: &str) -> Vec<String> {
        path_segment_name(name)
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_rules(&obj["rules"], true, &mut out);
        out
    }

    fn columns(&self) -> Vec<Column> {
        role_columns()
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        role_cells(obj)
    }
}
