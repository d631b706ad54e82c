//! SelfSubjectAccessReview: may the caller do this? (`kubectl auth can-i`).

use serde_json::Value;

use crate::apiserver::kinds::{ResourceDef, Review, Strategy};

/// The `SelfSubjectAccessReview` strategy.
pub struct SelfSubjectAccessReviews {
    def: ResourceDef,
}

impl SelfSubjectAccessReviews {
    /// The strategy at v1.
    pub fn new() -> Self {
        SelfSubjectAccessReviews {
            def: ResourceDef::new(
                super::GROUP,
                "v1",
                "SelfSubjectAccessReview",
                "selfsubjectaccessreviews",
            )
            .cluster_scoped()
            .verbs(&["create"]),
        }
    }
}

impl Default for SelfSubjectAccessReviews {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for SelfSubjectAccessReviews {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn review<'a>(
        &'a self,
        srv: &'a crate::apiserver::ApiServer,
        user: &'a crate::pki::UserInfo,
        _namespace: Option<&'a str>,
        obj: Value,
    ) -> Option<Review<'a>> {
        Some(Box::pin(async move {
            super::check_spec(&self.def, &obj["spec"])?;
            let attrs = super::spec_attributes(&obj["spec"]);
            Ok(super::answer(srv, user, obj, &attrs))
        }))
    }
}
