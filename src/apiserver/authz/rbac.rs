//! The RBAC authoriser (upstream's `plugin/pkg/auth/authorizer/rbac`): a request is
//! allowed when a ClusterRoleBinding, or a RoleBinding in the request's namespace, names
//! the user (by name, group or service account) and its role holds a rule covering the
//! request. Objects are read from the store's in-memory objects on every decision, so a
//! binding takes effect with the write that creates it.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Attributes, Decision};
use crate::pki::UserInfo;
use crate::store::Store;

const CLUSTER_ROLES: &str = "/registry/clusterroles/";
const CLUSTER_ROLE_BINDINGS: &str = "/registry/clusterrolebindings/";
const ROLES: &str = "/registry/roles/";
const ROLE_BINDINGS: &str = "/registry/rolebindings/";

/// RBAC over the store.
pub struct Rbac {
    store: Arc<Store>,
}

/// Whether `list` (a JSON array of strings) holds `want` or `*`.
fn has(list: &Value, want: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v == "*" || v == want))
}

/// Whether a binding's subject is `user`.
fn subject_matches(subject: &Value, user: &UserInfo, binding_ns: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or("");
    match subject["kind"].as_str().unwrap_or("") {
        "User" => name == user.name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// Whether one policy rule covers `a` (upstream's `RuleAllows`).
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !has(&rule["verbs"], &a.verb) {
        return false;
    }
    if !a.resource_request {
        return rule["nonResourceURLs"].as_array().is_some_and(|urls| {
            urls.iter().filter_map(Value::as_str).any(|u| {
                u == "*"
                    || u == a.path
                    || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
            })
        });
    }
    if !has(&rule["apiGroups"], &a.api_group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resource_ok = rule["resources"].as_array().is_some_and(|rs| {
        rs.iter().filter_map(Value::as_str).any(|r| {
            r == "*"
                || r == combined
                || (!a.subresource.is_empty()
                    && (r == format!("*/{}", a.subresource) || r == format!("{}/*", a.resource)))
        })
    });
    if !resource_ok {
        return false;
    }
    match rule["resourceNames"].as_array() {
        Some(names) if !names.is_empty() => names.iter().any(|n| n == a.name.as_str()),
        _ => true,
    }
}

impl Rbac {
    /// RBAC reading `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Rbac { store }
    }

    /// The rules of the role a binding refers to (`namespace` for a Role).
    fn role_rules(&self, role_ref: &Value, namespace: &str) -> Vec<Value> {
        let name = role_ref["name"].as_str().unwrap_or("");
        let key = match role_ref["kind"].as_str() {
            Some("ClusterRole") => format!("{CLUSTER_ROLES}{name}"),
            Some("Role") if !namespace.is_empty() => format!("{ROLES}{namespace}/{name}"),
            _ => return Vec::new(),
        };
        self.store
            .get_shared(&key)
            .and_then(|r| r["rules"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Every rule that applies to `user` in `namespace` ("" for cluster-wide rules only),
    /// with the binding that grants it.
    fn each_rule(&self, user: &UserInfo, namespace: &str, mut f: impl FnMut(&str, &Value) -> bool) {
        let (cluster, _) = self.store.list_shared(CLUSTER_ROLE_BINDINGS);
        for b in cluster {
            let subjects = b["subjects"].as_array().cloned().unwrap_or_default();
            if !subjects.iter().any(|s| subject_matches(s, user, "")) {
                continue;
            }
            let why = format!(
                "RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{}\" to {}",
                b["metadata"]["name"].as_str().unwrap_or(""),
                b["roleRef"]["name"].as_str().unwrap_or(""),
                describe(&subjects, user)
            );
            for rule in self.role_rules(&b["roleRef"], "") {
                if f(&why, &rule) {
                    return;
                }
            }
        }
        if namespace.is_empty() {
            return;
        }
        let (local, _) = self
            .store
            .list_shared(&format!("{ROLE_BINDINGS}{namespace}/"));
        for b in local {
            let subjects = b["subjects"].as_array().cloned().unwrap_or_default();
            if !subjects.iter().any(|s| subject_matches(s, user, namespace)) {
                continue;
            }
            let why = format!(
                "RBAC: allowed by RoleBinding \"{}/{namespace}\" of {} \"{}\" to {}",
                b["metadata"]["name"].as_str().unwrap_or(""),
                b["roleRef"]["kind"].as_str().unwrap_or(""),
                b["roleRef"]["name"].as_str().unwrap_or(""),
                describe(&subjects, user)
            );
            for rule in self.role_rules(&b["roleRef"], namespace) {
                if f(&why, &rule) {
                    return;
                }
            }
        }
    }

    /// Decides `a` for `user`.
    pub fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        let mut allowed = None;
        self.each_rule(user, &a.namespace, |why, rule| {
            if rule_allows(rule, a) {
                allowed = Some(why.to_string());
                true
            } else {
                false
            }
        });
        match allowed {
            Some(why) => Decision::Allow(why),
            None => Decision::Deny(String::new()),
        }
    }

    /// The resource and non-resource rules `user` holds in `namespace`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Value>, Vec<Value>) {
        let mut resource = Vec::new();
        let mut non_resource = Vec::new();
        self.each_rule(user, namespace, |_, rule| {
            if rule["nonResourceURLs"]
                .as_array()
                .is_some_and(|u| !u.is_empty())
            {
                non_resource.push(json!({
                    "verbs": rule["verbs"],
                    "nonResourceURLs": rule["nonResourceURLs"],
                }));
            } else {
                let mut r = json!({
                    "verbs": rule["verbs"],
                    "apiGroups": rule["apiGroups"],
                    "resources": rule["resources"],
                });
                if rule["resourceNames"].is_array() {
                    r["resourceNames"] = rule["resourceNames"].clone();
                }
                resource.push(r);
            }
            false
        });
        (resource, non_resource)
    }
}

/// The subject a binding matched, as upstream names it in its reasons.
fn describe(subjects: &[Value], user: &UserInfo) -> String {
    subjects
        .iter()
        .find(|s| subject_matches(s, user, ""))
        .map(|s| {
            format!(
                "{} \"{}\"",
                s["kind"].as_str().unwrap_or(""),
                s["name"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_else(|| format!("User \"{}\"", user.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "default".into(),
            path: String::new(),
        }
    }

    #[test]
    fn rules_match_as_upstreams() {
        let r = json!({"verbs":["get","list"],"apiGroups":[""],"resources":["pods","pods/log"]});
        assert!(rule_allows(&r, &attrs("get", "", "pods", "", "x")));
        assert!(rule_allows(&r, &attrs("get", "", "pods", "log", "x")));
        assert!(!rule_allows(&r, &attrs("get", "", "pods", "exec", "x")));
        assert!(!rule_allows(&r, &attrs("delete", "", "pods", "", "x")));
        assert!(!rule_allows(&r, &attrs("get", "apps", "pods", "", "x")));
        let named = json!({"verbs":["*"],"apiGroups":["*"],"resources":["configmaps"],"resourceNames":["a"]});
        assert!(rule_allows(
            &named,
            &attrs("update", "", "configmaps", "", "a")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("update", "", "configmaps", "", "b")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("list", "", "configmaps", "", "")
        ));
        let sub = json!({"verbs":["get"],"apiGroups":["*"],"resources":["*/scale"]});
        assert!(rule_allows(
            &sub,
            &attrs("get", "apps", "deployments", "scale", "d")
        ));
        let urls = json!({"verbs":["get"],"nonResourceURLs":["/api","/apis/*"]});
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Attributes::default()
        };
        assert!(rule_allows(&urls, &path("/api")));
        assert!(rule_allows(&urls, &path("/apis/apps/v1")));
        assert!(!rule_allows(&urls, &path("/metrics")));
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let bot = UserInfo {
            name: "system:serviceaccount:dev:bot".into(),
            groups: vec!["system:serviceaccounts".into()],
            ..UserInfo::default()
        };
        assert!(subject_matches(
            &json!({"kind":"ServiceAccount","name":"bot","namespace":"dev"}),
            &bot,
            ""
        ));
        assert!(subject_matches(
            &json!({"kind":"ServiceAccount","name":"bot"}),
            &bot,
            "dev"
        ));
        assert!(!subject_matches(
            &json!({"kind":"ServiceAccount","name":"bot","namespace":"prod"}),
            &bot,
            ""
        ));
        assert!(subject_matches(
            &json!({"kind":"Group","name":"system:serviceaccounts"}),
            &bot,
            ""
        ));
        assert!(!subject_matches(
            &json!({"kind":"User","name":"bot"}),
            &bot,
            ""
        ));
    }
}
