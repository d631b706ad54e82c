//! SelfSubjectReview: the caller's own user, as the authenticator saw it
//! (`kubectl auth whoami`).

use serde_json::{Value, json};

use crate::apiserver::kinds::{ResourceDef, Review, Strategy};

/// The `SelfSubjectReview` strategy at one version.
pub struct SelfSubjectReviews {
    def: ResourceDef,
}

impl SelfSubjectReviews {
    /// The strategy at `version` (`v1`, `v1beta1`).
    pub fn new(version: &str) -> Self {
        SelfSubjectReviews {
            def: ResourceDef::new(
                "authentication.k8s.io",
                version,
                "SelfSubjectReview",
                "selfsubjectreviews",
            )
            .cluster_scoped()
            .verbs(&["create"]),
        }
    }
}

impl Strategy for SelfSubjectReviews {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn review<'a>(
        &'a self,
        _srv: &'a crate::apiserver::ApiServer,
        user: &'a crate::pki::UserInfo,
        _namespace: Option<&'a str>,
        _obj: Value,
    ) -> Option<Review<'a>> {
        let reply = json!({
            "apiVersion": self.def.api_version(),
            "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": null},
            "status": {"userInfo": super::user_json(user)},
        });
        Some(Box::pin(async move { Ok(reply) }))
    }
}
