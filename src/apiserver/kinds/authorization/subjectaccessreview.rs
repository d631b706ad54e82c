//! SubjectAccessReview: may the user the spec names do this? (webhook authorisers and
//! admins ask it for others).

use serde_json::Value;

use crate::apiserver::kinds::{ResourceDef, Review, Strategy};

/// The `SubjectAccessReview` strategy.
pub struct SubjectAccessReviews {
    def: ResourceDef,
}

impl SubjectAccessReviews {
    /// The strategy at v1.
    pub fn new() -> Self {
        SubjectAccessReviews {
            def: ResourceDef::new(
                super::GROUP,
                "v1",
                "SubjectAccessReview",
                "subjectaccessreviews",
            )
            .cluster_scoped()
            .verbs(&["create"]),
        }
    }
}

impl Default for SubjectAccessReviews {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for SubjectAccessReviews {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn review<'a>(
        &'a self,
        srv: &'a crate::apiserver::ApiServer,
        _user: &'a crate::pki::UserInfo,
        _namespace: Option<&'a str>,
        obj: Value,
    ) -> Option<Review<'a>> {
        Some(Box::pin(async move {
            super::check_spec(&self.def, &obj["spec"])?;
            let subject = super::spec_user(&obj["spec"]);
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(crate::apiserver::status::ApiError::invalid(
                    &self.def,
                    "",
                    &[crate::apiserver::validation::Cause {
                        reason: "FieldValueInvalid".into(),
                        message:
                            "Invalid value: \"\": at least one of user or group must be specified"
                                .into(),
                        field: "spec.user".into(),
                    }],
                ));
            }
            let attrs = super::spec_attributes(&obj["spec"]);
            Ok(super::answer(srv, &subject, obj, &attrs))
        }))
    }
}
