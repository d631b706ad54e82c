//! The bootstrap RBAC policy, by upstream's names (`plugin/pkg/auth/authorizer/rbac/
//! bootstrappolicy`): the user-facing roles cluster-admin, admin, edit and view, and the
//! roles every authenticated user holds (system:basic-user, system:discovery,
//! system:public-info-viewer, system:service-account-issuer-discovery) with their
//! bindings, the scheduler's system:kube-scheduler, and the controller manager's
//! ([`controller_policy`]). Created at start where missing, and reconciled (the API
//! server's loopback identity posts them over HTTPS, as upstream's post-start hook).
//!
//! admin, edit and view are aggregated, as upstream's, from the `system:aggregate-to-*`
//! roles and each other (the controller manager's ClusterRole aggregation controller keeps
//! them up to date).

use serde_json::{Value, json};

use super::controller_policy;

/// The API path ClusterRoles are created at.
pub const CLUSTER_ROLES_PATH: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
/// The API path ClusterRoleBindings are created at.
pub const CLUSTER_ROLE_BINDINGS_PATH: &str =
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources})
}

fn role(name: &str, rules: Vec<Value>, labels: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "rules": rules,
    })
}

fn binding(name: &str, role: &str, subjects: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

fn group(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name})
}

/// What view grants: reading workloads and their configuration, not Secrets.
fn view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            "",
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        rule(
            READ,
            "",
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        rule(READ, "", &["namespaces"]),
        rule(READ, "discovery.k8s.io", &["endpointslices"]),
        rule(
            READ,
            "apps",
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            READ,
            "autoscaling",
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            "batch",
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        rule(
            READ,
            "policy",
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
    ]
}

/// edit: view and what system:aggregate-to-edit adds.
fn edit_rules() -> Vec<Value> {
    let mut r = view_rules();
    r.extend(edit_extra());
    r
}

/// What edit adds to view: writing workloads and their configuration, reading Secrets.
fn edit_extra() -> Vec<Value> {
    vec![
        rule(&["impersonate"], "", &["serviceaccounts"]),
        rule(
            WRITE,
            "",
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        rule(&["create"], "", &["pods/eviction"]),
        rule(
            WRITE,
            "",
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule(&["create"], "", &["serviceaccounts/token"]),
        rule(
            READ,
            "",
            &[
                "secrets",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "services/proxy",
            ],
        ),
        rule(
            WRITE,
            "apps",
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, "autoscaling", &["horizontalpodautoscalers"]),
        rule(WRITE, "batch", &["cronjobs", "jobs"]),
        rule(WRITE, "policy", &["poddisruptionbudgets"]),
        rule(WRITE, "discovery.k8s.io", &["endpointslices"]),
    ]
}

/// admin: edit and what system:aggregate-to-admin adds.
fn admin_rules() -> Vec<Value> {
    let mut r = edit_rules();
    r.extend(admin_extra());
    r
}

/// What admin adds to edit: roles and bindings in the namespace, local access reviews.
fn admin_extra() -> Vec<Value> {
    vec![
        rule(
            &["create"],
            "authorization.k8s.io",
            &["localsubjectaccessreviews"],
        ),
        rule(
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            "rbac.authorization.k8s.io",
            &["rolebindings", "roles"],
        ),
    ]
}

/// A ClusterRole made of the roles labelled `aggregate-to-<to>`. Its rules are written
/// in too (`rules`), so it grants them before the aggregation controller's first pass.
fn aggregated(name: &str, to: &str, rules: Vec<Value>, labels: Value) -> Value {
    let mut r = role(name, rules, labels);
    r["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {
        format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}}]});
    r
}

/// What the scheduler reads and writes (upstream's `system:kube-scheduler`, plus its
/// `system:volume-scheduler` reads).
fn scheduler_rules() -> Vec<Value> {
    vec![
        rule(&["create", "patch", "update"], "", &["events"]),
        rule(&["create", "patch", "update"], "events.k8s.io", &["events"]),
        rule(&["create"], "coordination.k8s.io", &["leases"]),
        rule(&["get", "update"], "coordination.k8s.io", &["leases"]),
        rule(READ, "", &["nodes", "namespaces"]),
        rule(&["delete", "get", "list", "watch"], "", &["pods"]),
        rule(&["create"], "", &["bindings", "pods/binding"]),
        rule(&["patch", "update"], "", &["pods/status"]),
        rule(
            READ,
            "",
            &[
                "replicationcontrollers",
                "services",
                "persistentvolumeclaims",
                "persistentvolumes",
            ],
        ),
        rule(READ, "apps", &["replicasets", "statefulsets"]),
        rule(READ, "policy", &["poddisruptionbudgets"]),
        rule(
            READ,
            "storage.k8s.io",
            &[
                "storageclasses",
                "csinodes",
                "csidrivers",
                "csistoragecapacities",
            ],
        ),
        rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
        rule(
            &["create"],
            "authorization.k8s.io",
            &["subjectaccessreviews"],
        ),
    ]
}

/// The bootstrap objects, each with the path it is created at.
pub fn policy() -> Vec<(&'static str, Value)> {
    let aggregate = |to: &str| json!({"kubernetes.io/bootstrapping": "rbac-defaults", format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"});
    let defaults = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    let roles = vec![
        role(
            "cluster-admin",
            vec![
                json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
                json!({"verbs": ["*"], "nonResourceURLs": ["*"]}),
            ],
            defaults.clone(),
        ),
        // As upstream: view is part of edit, edit of admin; each takes the rest from its
        // system:aggregate-to-* role (and from any role a user labels so).
        aggregated("admin", "admin", admin_rules(), defaults.clone()),
        aggregated("edit", "edit", edit_rules(), aggregate("admin")),
        aggregated("view", "view", view_rules(), aggregate("edit")),
        role(
            "system:aggregate-to-admin",
            admin_extra(),
            aggregate("admin"),
        ),
        role("system:aggregate-to-edit", edit_extra(), aggregate("edit")),
        role("system:aggregate-to-view", view_rules(), aggregate("view")),
        role(
            "system:basic-user",
            vec![
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    "authentication.k8s.io",
                    &["selfsubjectreviews"],
                ),
            ],
            defaults.clone(),
        ),
        role(
            "system:discovery",
            vec![json!({"verbs": ["get"], "nonResourceURLs": [
                "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                "/openapi/*", "/readyz", "/version", "/version/"]})],
            defaults.clone(),
        ),
        role(
            "system:public-info-viewer",
            vec![json!({"verbs": ["get"], "nonResourceURLs": [
                "/healthz", "/livez", "/readyz", "/version", "/version/"]})],
            defaults.clone(),
        ),
        role(
            "system:service-account-issuer-discovery",
            vec![json!({"verbs": ["get"], "nonResourceURLs": [
                "/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                "/openid/v1/jwks", "/openid/v1/jwks/"]})],
            defaults.clone(),
        ),
        role("system:kube-scheduler", scheduler_rules(), defaults.clone()),
        role(
            "system:kube-controller-manager",
            controller_policy::manager_rules(),
            defaults.clone(),
        ),
    ];
    let controllers = controller_policy::controller_rules();
    let controller_roles = controllers.iter().map(|(account, rules)| {
        let name = format!("{}{account}", controller_policy::ROLE_PREFIX);
        role(&name, rules.clone(), defaults.clone())
    });
    let controller_bindings = controllers.iter().map(|(account, _)| {
        let name = format!("{}{account}", controller_policy::ROLE_PREFIX);
        binding(&name, &name, json!([controller_policy::subject(account)]))
    });
    let bindings = vec![
        binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                    "name": "system:kube-scheduler"}]),
        ),
        binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                    "name": "system:kube-controller-manager"}]),
        ),
        binding(
            "cluster-admin",
            "cluster-admin",
            json!([group("system:masters")]),
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            json!([group("system:authenticated")]),
        ),
        binding(
            "system:discovery",
            "system:discovery",
            json!([group("system:authenticated")]),
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            json!([
                group("system:authenticated"),
                group("system:unauthenticated")
            ]),
        ),
        binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            json!([group("system:serviceaccounts")]),
        ),
    ];
    roles
        .into_iter()
        .chain(controller_roles)
        .map(|r| (CLUSTER_ROLES_PATH, r))
        .chain(
            bindings
                .into_iter()
                .chain(controller_bindings)
                .map(|b| (CLUSTER_ROLE_BINDINGS_PATH, b)),
        )
        .collect()
}

/// The annotation that opts a bootstrap object out of reconciliation (`"false"`).
pub const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

/// A stored bootstrap object brought up to date with `wanted`, as upstream's
/// reconciliation at every start: missing rules, aggregation selectors, subjects, labels
/// and annotations are added; nothing the cluster's users added is taken away. `None`
/// when nothing is missing or the object opted out.
pub fn reconciled(existing: &Value, wanted: &Value) -> Option<Value> {
    if existing["metadata"]["annotations"][AUTOUPDATE] == "false" {
        return None;
    }
    let mut out = existing.clone();
    let mut changed = false;
    let mut union = |field: &str, out: &mut Value| {
        let Some(want) = wanted.pointer(field).and_then(Value::as_array) else {
            return;
        };
        if out.pointer(field).is_none_or(|v| !v.is_array()) {
            let (parent, key) = field.rsplit_once('/').unwrap_or(("", field));
            if let Some(p) = out.pointer_mut(parent).and_then(Value::as_object_mut) {
                p.insert(key.to_string(), json!([]));
            }
        }
        if let Some(have) = out.pointer_mut(field).and_then(Value::as_array_mut) {
            for w in want {
                if !have.contains(w) {
                    have.push(w.clone());
                    changed = true;
                }
            }
        }
    };
    // An aggregated role's rules are the aggregation controller's to write.
    if wanted["aggregationRule"].is_object() {
        if !out["aggregationRule"].is_object() {
            out["aggregationRule"] = json!({"clusterRoleSelectors": []});
        }
        union("/aggregationRule/clusterRoleSelectors", &mut out);
    } else {
        union("/rules", &mut out);
    }
    union("/subjects", &mut out);
    for meta in ["labels", "annotations"] {
        for (k, v) in wanted["metadata"][meta].as_object().into_iter().flatten() {
            if out["metadata"][meta].get(k).is_none() {
                if !out["metadata"][meta].is_object() {
                    out["metadata"][meta] = json!({});
                }
                out["metadata"][meta][k] = v.clone();
                changed = true;
            }
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::authz::Attributes;
    use crate::apiserver::authz::rbac::rule_allows;

    #[test]
    fn reconciliation_adds_what_is_missing_and_keeps_what_users_added() {
        let wanted = role(
            "r",
            vec![rule(&["get"], "", &["pods"])],
            json!({"kubernetes.io/bootstrapping": "rbac-defaults"}),
        );
        let mut stored = wanted.clone();
        assert!(reconciled(&stored, &wanted).is_none());
        stored["rules"] = json!([rule(&["list"], "", &["secrets"])]);
        let fixed = reconciled(&stored, &wanted).expect("the bootstrap rule is missing");
        assert_eq!(fixed["rules"].as_array().unwrap().len(), 2);
        stored["metadata"]["annotations"][AUTOUPDATE] = json!("false");
        assert!(reconciled(&stored, &wanted).is_none(), "opted out");
        let b = binding("b", "r", json!([group("g1")]));
        let mut sb = b.clone();
        sb["subjects"] = json!([group("mine")]);
        let fixed = reconciled(&sb, &b).unwrap();
        assert_eq!(fixed["subjects"], json!([group("mine"), group("g1")]));
    }

    fn allows(rules: &[Value], verb: &str, group: &str, resource: &str) -> bool {
        let a = Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            namespace: "default".into(),
            ..Attributes::default()
        };
        rules.iter().any(|r| rule_allows(r, &a))
    }

    #[test]
    fn view_edit_admin_grant_what_upstreams_do() {
        let (view, edit, admin) = (view_rules(), edit_rules(), admin_rules());
        assert!(allows(&view, "list", "", "pods"));
        assert!(!allows(&view, "get", "", "secrets"));
        assert!(!allows(&view, "delete", "", "pods"));
        assert!(allows(&edit, "get", "", "secrets"));
        assert!(allows(&edit, "create", "apps", "deployments"));
        assert!(!allows(
            &edit,
            "create",
            "rbac.authorization.k8s.io",
            "roles"
        ));
        assert!(allows(
            &admin,
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings"
        ));
        assert!(!allows(&admin, "create", "", "namespaces"));
    }
}
