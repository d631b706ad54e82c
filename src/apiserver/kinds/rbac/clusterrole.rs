//! rbac.authorization.k8s.io/v1 ClusterRoles: cluster-wide sets of permissions, possibly aggregated from others by label (`aggregationRule`; the aggregation controller fills their rules).

use serde_json::Value;

use super::*;
use crate::apiserver::kinds::{ResourceDef, Strategy};

/// The `ClusterRole` strategy.
pub struct ClusterRoles {
    def: ResourceDef,
}

impl ClusterRoles {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        ClusterRoles {
            def: ResourceDef::new(GROUP, "v1", "ClusterRole", "clusterroles").cluster_scoped(),
        }
    }
}

impl Default for ClusterRoles {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for ClusterRoles {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::rbac::v1::ClusterRole);

    fn validate_name(&self, name: &str) -> Vec<String> {
        path_segment_name(name)
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        // An aggregated role's rules belong to the aggregation controller; upstream
        // validates them all the same.
        validate_rules(&obj["rules"], false, &mut out);
        if let Some(sels) = obj["aggregationRule"]["clusterRoleSelectors"].as_array()
            && sels.is_empty()
        {
            out.push(crate::apiserver::validation::required(
                "aggregationRule.clusterRoleSelectors",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        role_columns()
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        role_cells(obj)
    }
}
