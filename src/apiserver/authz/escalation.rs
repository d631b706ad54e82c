//! RBAC's escalation prevention (upstream's `pkg/registry/rbac/validation`): a user may
//! write a role only with rules they already hold, and bind a role only when they hold its
//! rules, unless they have the `escalate` (roles) or `bind` (bindings) verb on it.
//!
//! A wanted rule is split into its single permissions (one group, resource, verb and
//! name each, or one URL and verb), and each must be allowed by a held rule, as
//! upstream's `Covers`.

use serde_json::Value;

use super::Attributes;
use super::rbac::rule_allows;
use crate::pki::UserInfo;

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a held rule grants a `*` that is asked for literally (a wanted `*` is only
/// covered by a held `*`).
fn star_covered(held: &Value, field: &str, want: &str) -> bool {
    want != "*" || strings(&held[field]).contains(&"*")
}

/// Whether the rules `held` cover every permission of `wanted`.
fn covers_rule(held: &[Value], wanted: &Value) -> bool {
    let verbs = strings(&wanted["verbs"]);
    let urls = strings(&wanted["nonResourceURLs"]);
    if !urls.is_empty() {
        return urls.iter().all(|url| {
            verbs.iter().all(|verb| {
                held.iter().any(|h| {
                    let urls = strings(&h["nonResourceURLs"]);
                    let url_ok = urls.iter().any(|u| {
                        *u == "*"
                            || u == url
                            || u.strip_suffix('*').is_some_and(|p| url.starts_with(p))
                    });
                    url_ok
                        && star_covered(h, "verbs", verb)
                        && strings(&h["verbs"]).iter().any(|v| *v == "*" || v == verb)
                })
            })
        });
    }
    let names = strings(&wanted["resourceNames"]);
    let names: Vec<&str> = if names.is_empty() { vec![""] } else { names };
    for group in strings(&wanted["apiGroups"]) {
        for resource in strings(&wanted["resources"]) {
            let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
            for verb in &verbs {
                for name in &names {
                    let atom = Attributes {
                        verb: verb.to_string(),
                        resource_request: true,
                        api_group: group.into(),
                        resource: res.into(),
                        subresource: sub.into(),
                        name: name.to_string(),
                        ..Attributes::default()
                    };
                    let ok = held.iter().any(|h| {
                        // A held rule limited to names does not cover "every name".
                        let limited = !strings(&h["resourceNames"]).is_empty();
                        rule_allows(h, &atom)
                            && !(limited && name.is_empty())
                            && star_covered(h, "verbs", verb)
                            && star_covered(h, "apiGroups", group)
                            && (resource != "*" || strings(&h["resources"]).contains(&"*"))
                    });
                    if !ok {
                        return false;
                    }
                }
            }
        }
    }
    true
}

/// The wanted rules `held` does not cover, in upstream's short form for the message.
pub fn uncovered(held: &[Value], wanted: &[Value]) -> Vec<String> {
    wanted
        .iter()
        .filter(|w| !covers_rule(held, w))
        .map(describe_rule)
        .collect()
}

/// `{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}`, as upstream prints a rule.
fn describe_rule(r: &Value) -> String {
    let list = |field: &str| {
        strings(&r[field])
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut parts = Vec::new();
    if !strings(&r["nonResourceURLs"]).is_empty() {
        parts.push(format!("NonResourceURLs:[{}]", list("nonResourceURLs")));
    } else {
        parts.push(format!("APIGroups:[{}]", list("apiGroups")));
        parts.push(format!("Resources:[{}]", list("resources")));
        if !strings(&r["resourceNames"]).is_empty() {
            parts.push(format!("ResourceNames:[{}]", list("resourceNames")));
        }
    }
    parts.push(format!("Verbs:[{}]", list("verbs")));
    format!("{{{}}}", parts.join(", "))
}

/// upstream's refusal: `user "u" (groups=["a" "b"]) is attempting to grant RBAC
/// permissions not currently held:` and the rules, one per line.
pub fn message(user: &UserInfo, missing: &[String]) -> String {
    let groups = user
        .groups
        .iter()
        .map(|g| format!("{g:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "user {:?} (groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        missing.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_held_permissions_are_covered() {
        let held = vec![
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}),
            json!({"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"]}),
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s"]}),
            json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"]}),
        ];
        let ok = |r: Value| uncovered(&held, &[r]).is_empty();
        assert!(ok(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]})
        ));
        assert!(ok(
            json!({"verbs": ["list"], "apiGroups": [""], "resources": ["pods/log"]})
        ));
        assert!(ok(
            json!({"verbs": ["delete", "patch"], "apiGroups": ["apps"], "resources": ["deployments"]})
        ));
        assert!(ok(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s"]})
        ));
        assert!(ok(
            json!({"verbs": ["get"], "nonResourceURLs": ["/api/v1"]})
        ));
        assert!(!ok(
            json!({"verbs": ["delete"], "apiGroups": [""], "resources": ["pods"]})
        ));
        assert!(!ok(
            json!({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]})
        ));
        assert!(!ok(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]})
        ));
        assert!(!ok(
            json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["deployments"]})
        ));
        assert!(!ok(
            json!({"verbs": ["post"], "nonResourceURLs": ["/healthz"]})
        ));
        assert_eq!(
            uncovered(
                &held,
                &[json!({"verbs": ["delete"], "apiGroups": [""], "resources": ["pods"]})]
            ),
            vec![r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#.to_string()]
        );
    }
}
