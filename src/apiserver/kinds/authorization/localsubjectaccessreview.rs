//! LocalSubjectAccessReview: a SubjectAccessReview limited to one namespace (namespace
//! admins may ask it).

use serde_json::Value;

use crate::apiserver::kinds::{ResourceDef, Review, Strategy};

/// The `LocalSubjectAccessReview` strategy.
pub struct LocalSubjectAccessReviews {
    def: ResourceDef,
}

impl LocalSubjectAccessReviews {
    /// The strategy at v1.
    pub fn new() -> Self {
        LocalSubjectAccessReviews {
            def: ResourceDef::new(
                super::GROUP,
                "v1",
                "LocalSubjectAccessReview",
                "localsubjectaccessreviews",
            )
            .verbs(&["create"]),
        }
    }
}

impl Default for LocalSubjectAccessReviews {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for LocalSubjectAccessReviews {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn review<'a>(
        &'a self,
        srv: &'a crate::apiserver::ApiServer,
        _user: &'a crate::pki::UserInfo,
        namespace: Option<&'a str>,
        obj: Value,
    ) -> Option<Review<'a>> {
        Some(Box::pin(async move {
            super::check_spec(&self.def, &obj["spec"])?;
            let ns = namespace.unwrap_or("");
            let asked = obj["spec"]["resourceAttributes"]["namespace"]
                .as_str()
                .unwrap_or("");
            if asked != ns {
                return Err(crate::apiserver::status::ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {ns}"
                )));
            }
            let subject = super::spec_user(&obj["spec"]);
            let attrs = super::spec_attributes(&obj["spec"]);
            Ok(super::answer(srv, &subject, obj, &attrs))
        }))
    }
}
