//! The authentication.k8s.io group: TokenReview and SelfSubjectReview (answered, never
//! stored) and the TokenRequest the `serviceaccounts/token` subresource answers.

pub mod selfsubjectreview;
pub mod tokenrequest;
pub mod tokenreview;

use super::Kind;
use serde_json::{Value, json};
use std::sync::Arc;

/// The kinds of authentication.k8s.io; SelfSubjectReview also at v1beta1 for kubectl
/// 1.27, which asks for it there.
pub fn kinds() -> Vec<Kind> {
    vec![
        Arc::new(tokenreview::TokenReviews::new()),
        Arc::new(selfsubjectreview::SelfSubjectReviews::new("v1")),
        Arc::new(selfsubjectreview::SelfSubjectReviews::new("v1beta1")),
    ]
}

/// A user as upstream's `UserInfo` object.
pub fn user_json(u: &crate::pki::UserInfo) -> Value {
    let mut out = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        out["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        out["extra"] = json!(u.extra);
    }
    out
}
