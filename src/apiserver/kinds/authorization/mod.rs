//! The authorization.k8s.io group: access reviews, answered by the API server's
//! authoriser and never stored (`kubectl auth can-i` creates them).

pub mod localsubjectaccessreview;
pub mod selfsubjectaccessreview;
pub mod selfsubjectrulesreview;
pub mod subjectaccessreview;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::Kind;
use crate::apiserver::ApiServer;
use crate::apiserver::authz::{Attributes, Decision};
use crate::pki::UserInfo;

/// The group's name.
pub const GROUP: &str = "authorization.k8s.io";

/// The kinds of authorization.k8s.io.
pub fn kinds() -> Vec<Kind> {
    vec![
        Arc::new(localsubjectaccessreview::LocalSubjectAccessReviews::new()),
        Arc::new(selfsubjectaccessreview::SelfSubjectAccessReviews::new()),
        Arc::new(selfsubjectrulesreview::SelfSubjectRulesReviews::new()),
        Arc::new(subjectaccessreview::SubjectAccessReviews::new()),
    ]
}

/// The attributes a review's `spec` asks about (`resourceAttributes` or
/// `nonResourceAttributes`).
pub fn spec_attributes(spec: &Value) -> Attributes {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let r = &spec["resourceAttributes"];
    if r.is_object() {
        return Attributes {
            verb: s(&r["verb"]),
            resource_request: true,
            api_group: s(&r["group"]),
            resource: s(&r["resource"]),
            subresource: s(&r["subresource"]),
            namespace: s(&r["namespace"]),
            name: s(&r["name"]),
            path: String::new(),
        };
    }
    let n = &spec["nonResourceAttributes"];
    Attributes {
        verb: s(&n["verb"]),
        resource_request: false,
        path: s(&n["path"]),
        ..Attributes::default()
    }
}

/// The user a SubjectAccessReview's `spec` names.
pub fn spec_user(spec: &Value) -> UserInfo {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let extra: BTreeMap<String, Vec<String>> = spec["extra"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
        .unwrap_or_default();
    UserInfo {
        name: spec["user"].as_str().unwrap_or("").to_string(),
        uid: spec["uid"].as_str().unwrap_or("").to_string(),
        groups: strings(&spec["groups"]),
        extra,
    }
}

/// Decides `attrs` for `user` and returns the review with its `status`.
pub fn answer(srv: &ApiServer, user: &UserInfo, mut review: Value, attrs: &Attributes) -> Value {
    let status = match srv.authz.authorize(user, attrs) {
        Decision::Allow(reason) => json!({"allowed": true, "reason": reason}),
        Decision::Deny(reason) if reason.is_empty() => json!({"allowed": false}),
        Decision::Deny(reason) => json!({"allowed": false, "reason": reason}),
    };
    review["status"] = status;
    if review["metadata"].is_null() {
        review["metadata"] = json!({"creationTimestamp": null});
    }
    review
}

/// 422 for a review whose spec asks about both or neither kind of attributes.
pub fn check_spec(
    def: &super::ResourceDef,
    spec: &Value,
) -> Result<(), crate::apiserver::status::ApiError> {
    let res = spec["resourceAttributes"].is_object();
    let non = spec["nonResourceAttributes"].is_object();
    let message = match (res, non) {
        (true, true) => "cannot be specified in combination with resourceAttributes",
        (false, false) => {
            "exactly one of nonResourceAttributes or resourceAttributes must be specified"
        }
        _ => return Ok(()),
    };
    let field = if res && non {
        "spec.nonResourceAttributes"
    } else {
        "spec.resourceAttributes"
    };
    Err(crate::apiserver::status::ApiError::invalid(
        def,
        "",
        &[crate::apiserver::validation::Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: \"null\": {message}"),
            field: field.into(),
        }],
    ))
}
