//! rbac.authorization.k8s.io/v1 ClusterRoleBindings: grant a ClusterRole to subjects cluster-wide; `roleRef` is immutable, as upstream.

use serde_json::Value;

use super::*;
use crate::apiserver::kinds::{ResourceDef, Strategy};

/// The `ClusterRoleBinding` strategy.
pub struct ClusterRoleBindings {
    def: ResourceDef,
}

impl ClusterRoleBindings {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ClusterRoleBindings {
            def: ResourceDef::new(GROUP, "v1", "ClusterRoleBinding", "clusterrolebindings")
                .cluster_scoped(),
        }
    }
}

impl Default for ClusterRoleBindings {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for ClusterRoleBindings {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::rbac::v1::ClusterRoleBinding);

    fn validate_name(&self, name: &str) -> Vec<String> {
        path_segment_name(name)
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_binding(obj, &["ClusterRole"], &mut out);
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
