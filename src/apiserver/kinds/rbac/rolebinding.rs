//! rbac.authorization.k8s.io/v1 RoleBindings: grant a Role or ClusterRole to subjects within one namespace; `roleRef` is immutable, as upstream.

use serde_json::Value;

use super::*;
use crate::apiserver::kinds::{ResourceDef, Strategy};

/// The `RoleBinding` strategy.
pub struct RoleBindings {
    def: ResourceDef,
}

impl RoleBindings {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        RoleBindings {
            def: ResourceDef::new(GROUP, "v1", "RoleBinding", "rolebindings"),
        }
    }
}

impl Default for RoleBindings {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for RoleBindings {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::rbac::v1::RoleBinding);

    fn validate_name(&self, name: &str) -> Vec<String> {
        path_segment_name(name)
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_binding(obj, &["Role", "ClusterRole"], &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        validate_role_ref_unchanged(old, new, &mut out);
        out
    }

    fn columns(&self) -> Vec<Column> {
        binding_columns()
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        binding_cells(obj, now)
    }
}
