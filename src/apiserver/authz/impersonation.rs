//! Impersonation (upstream's `filters/impersonation.go`): `Impersonate-User`,
//! `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-<key>` headers, each
//! checked with the `impersonate` verb before the request acts as that user.

use std::collections::BTreeMap;

use http::HeaderMap;

use super::{Attributes, Authorizer};
use crate::apiserver::status::ApiError;
use crate::pki::UserInfo;

fn impersonate(group: &str, resource: &str, namespace: &str, name: &str) -> Attributes {
    Attributes {
        verb: "impersonate".into(),
        resource_request: true,
        api_group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..Attributes::default()
    }
}

/// The user the request acts as: `user` itself without impersonation headers, else the
/// impersonated one once `user` may impersonate every part of it (403 otherwise).
pub fn apply(
    authz: &Authorizer,
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect()
    };
    let name = values("impersonate-user").into_iter().next();
    let groups = values("impersonate-group");
    let uid = values("impersonate-uid").into_iter().next();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        if let Some(key) = k.as_str().strip_prefix("impersonate-extra-") {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .into_owned();
            if let Ok(v) = v.to_str() {
                extra.entry(key).or_default().push(v.to_string());
            }
        }
    }
    let Some(name) = name else {
        if !groups.is_empty() || uid.is_some() || !extra.is_empty() {
            return Err(ApiError::internal(
                "requested impersonation of groups, uid or extra without impersonating a user",
            ));
        }
        return Ok(user);
    };
    let mut checks = Vec::new();
    let sa = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'));
    match sa {
        Some((ns, sa_name)) => checks.push(impersonate("", "serviceaccounts", ns, sa_name)),
        None => checks.push(impersonate("", "users", "", &name)),
    }
    for g in &groups {
        checks.push(impersonate("", "groups", "", g));
    }
    if let Some(u) = &uid {
        checks.push(impersonate("authentication.k8s.io", "uids", "", u));
    }
    for (k, vs) in &extra {
        for v in vs {
            let mut a = impersonate("authentication.k8s.io", "userextras", "", v);
            a.subresource = k.clone();
            checks.push(a);
        }
    }
    for a in &checks {
        if !authz.authorize(&user, a).allowed() {
            return Err(ApiError::forbidden(a.forbidden_message(&user)));
        }
    }
    let mut out_groups = groups;
    if let Some((ns, _)) = sa
        && out_groups.is_empty()
    {
        out_groups.push("system:serviceaccounts".into());
        out_groups.push(format!("system:serviceaccounts:{ns}"));
    }
    if name != "system:anonymous" && !out_groups.iter().any(|g| g == "system:authenticated") {
        out_groups.push("system:authenticated".into());
    }
    Ok(UserInfo {
        name,
        uid: uid.unwrap_or_default(),
        groups: out_groups,
        extra,
    })
}
