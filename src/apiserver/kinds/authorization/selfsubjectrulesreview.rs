//! SelfSubjectRulesReview: every rule the caller holds in a namespace (`kubectl auth
//! can-i --list`).

use serde_json::{Value, json};

use crate::apiserver::kinds::{ResourceDef, Review, Strategy};

/// The `SelfSubjectRulesReview` strategy.
pub struct SelfSubjectRulesReviews {
    def: ResourceDef,
}

impl SelfSubjectRulesReviews {
    /// The strategy at v1.
    pub fn new() -> Self {
        SelfSubjectRulesReviews {
            def: ResourceDef::new(
                super::GROUP,
                "v1",
                "SelfSubjectRulesReview",
                "selfsubjectrulesreviews",
            )
            .cluster_scoped()
            .verbs(&["create"]),
        }
    }
}

impl Default for SelfSubjectRulesReviews {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for SelfSubjectRulesReviews {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn review<'a>(
        &'a self,
        srv: &'a crate::apiserver::ApiServer,
        user: &'a crate::pki::UserInfo,
        _namespace: Option<&'a str>,
        mut obj: Value,
    ) -> Option<Review<'a>> {
        Some(Box::pin(async move {
            let ns = obj["spec"]["namespace"].as_str().unwrap_or("").to_string();
            let (resource, non_resource) = srv.authz.rules_for(user, &ns);
            obj["status"] = json!({
                "resourceRules": resource,
                "nonResourceRules": non_resource,
                "incomplete": false,
            });
            if obj["metadata"].is_null() {
                obj["metadata"] = json!({"creationTimestamp": null});
            }
            Ok(obj)
        }))
    }
}
