//! The rbac.authorization.k8s.io group: Roles, ClusterRoles and their bindings. What the
//! four kinds share (policy-rule and subject validation, upstream's path-segment names,
//! the binding printer) lives here; each kind's own rules are in its file.

pub mod clusterrole;
pub mod clusterrolebinding;
pub mod role;
pub mod rolebinding;

use super::Kind;
use crate::apiserver::table::{Column, age, col, name_col, s};
use crate::apiserver::validation::{Cause, invalid, not_supported, required};
use serde_json::{Value, json};
use std::sync::Arc;

/// The API group of the RBAC kinds (what a `roleRef.apiGroup` must name).
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// The kinds of rbac.authorization.k8s.io, in discovery order.
pub fn kinds() -> Vec<Kind> {
    vec![
        Arc::new(clusterrolebinding::ClusterRoleBindings::new()),
        Arc::new(clusterrole::ClusterRoles::new()),
        Arc::new(rolebinding::RoleBindings::new()),
        Arc::new(role::Roles::new()),
    ]
}

/// Upstream's `ValidateRBACName` (`path.IsValidPathSegmentName`): RBAC names may hold
/// colons, so `system:controller:...` roles are valid.
pub fn path_segment_name(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name == "." || name == ".." {
        out.push(format!("may not be '{name}'"));
    }
    for c in ["/", "%"] {
        if name.contains(c) {
            out.push(format!("may not contain '{c}'"));
        }
    }
    out
}

/// Upstream's `ValidatePolicyRule` for `rules[i]` of a Role (`namespaced`) or
/// ClusterRole.
pub fn validate_rules(rules: &Value, namespaced: bool, out: &mut Vec<Cause>) {
    let Some(rules) = rules.as_array() else {
        return;
    };
    for (i, r) in rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        let len = |k: &str| r[k].as_array().map_or(0, Vec::len);
        if len("verbs") == 0 {
            let mut c = required(format!("{at}.verbs"));
            c.message = "Required value: verbs must contain at least one value".into();
            out.push(c);
        }
        if len("nonResourceURLs") > 0 {
            if namespaced {
                out.push(invalid(
                    format!("{at}.nonResourceURLs"),
                    &r["nonResourceURLs"].to_string(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if len("apiGroups") > 0 || len("resources") > 0 || len("resourceNames") > 0 {
                out.push(invalid(
                    format!("{at}.nonResourceURLs"),
                    &r["nonResourceURLs"].to_string(),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if len("apiGroups") == 0 {
            let mut c = required(format!("{at}.apiGroups"));
            c.message = "Required value: resource rules must supply at least one api group".into();
            out.push(c);
        }
        if len("resources") == 0 {
            let mut c = required(format!("{at}.resources"));
            c.message = "Required value: resource rules must supply at least one resource".into();
            out.push(c);
        }
    }
}

/// Upstream's `ValidateRoleBindingSubject` for every subject, and the roleRef checks of
/// a binding whose roleRef may name `kinds`.
pub fn validate_binding(obj: &Value, kinds: &[&str], out: &mut Vec<Cause>) {
    let rr = &obj["roleRef"];
    let group = s(&rr["apiGroup"]);
    if group != GROUP {
        out.push(not_supported("roleRef.apiGroup", group, &[GROUP]));
    }
    let kind = s(&rr["kind"]);
    if !kinds.contains(&kind) {
        out.push(not_supported("roleRef.kind", kind, kinds));
    }
    let name = s(&rr["name"]);
    if name.is_empty() {
        out.push(required("roleRef.name"));
    } else {
        for m in path_segment_name(name) {
            out.push(invalid("roleRef.name", name, &m));
        }
    }
    let Some(subjects) = obj["subjects"].as_array() else {
        return;
    };
    for (i, sub) in subjects.iter().enumerate() {
        let at = format!("subjects[{i}]");
        let name = s(&sub["name"]);
        if name.is_empty() {
            out.push(required(format!("{at}.name")));
        }
        match s(&sub["kind"]) {
            "ServiceAccount" => {
                let g = s(&sub["apiGroup"]);
                if !g.is_empty() {
                    out.push(not_supported(format!("{at}.apiGroup"), g, &[""]));
                }
                if s(&sub["namespace"]).is_empty() {
                    out.push(required(format!("{at}.namespace")));
                }
            }
            "User" | "Group" => {
                let g = s(&sub["apiGroup"]);
                if g != GROUP {
                    out.push(not_supported(format!("{at}.apiGroup"), g, &[GROUP]));
                }
            }
            other => out.push(not_supported(
                format!("{at}.kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

/// Upstream's `ValidateRoleBindingUpdate`: the role a binding grants never changes.
pub fn validate_role_ref_unchanged(old: &Value, new: &Value, out: &mut Vec<Cause>) {
    if old["roleRef"] != new["roleRef"] {
        out.push(invalid(
            "roleRef",
            &new["roleRef"].to_string(),
            "cannot change roleRef",
        ));
    }
}

/// Upstream's Role/ClusterRole printer columns: NAME, CREATED AT.
pub fn role_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Created At", "date", 0, "Time when this role was created."),
    ]
}

/// The cells of a Role or ClusterRole row (the creation time in RFC 3339, UTC).
pub fn role_cells(obj: &Value) -> Vec<Value> {
    vec![
        json!(s(&obj["metadata"]["name"])),
        json!(s(&obj["metadata"]["creationTimestamp"])),
    ]
}

/// Upstream's binding printer columns: NAME, ROLE, AGE and, wide, USERS, GROUPS,
/// SERVICEACCOUNTS.
pub fn binding_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Role", "string", 0, "Role is the role being bound"),
        col(
            "Age",
            "string",
            0,
            "CreationTimestamp is a timestamp representing the server time when this object was created.",
        ),
        col("Users", "string", 1, "Users in the binding"),
        col("Groups", "string", 1, "Groups in the binding"),
        col(
            "ServiceAccounts",
            "string",
            1,
            "ServiceAccounts in the binding",
        ),
    ]
}

/// The cells of a binding row: ROLE as `Kind/name`, subjects split by kind
/// (service accounts as `namespace/name`).
pub fn binding_cells(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut sas = Vec::new();
    for sub in obj["subjects"].as_array().into_iter().flatten() {
        let name = s(&sub["name"]).to_string();
        match s(&sub["kind"]) {
            "User" => users.push(name),
            "Group" => groups.push(name),
            "ServiceAccount" => sas.push(format!("{}/{}", s(&sub["namespace"]), name)),
            _ => {}
        }
    }
    vec![
        json!(s(&obj["metadata"]["name"])),
        json!(format!(
            "{}/{}",
            s(&obj["roleRef"]["kind"]),
            s(&obj["roleRef"]["name"])
        )),
        json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}
