//! The Node authoriser (upstream's `plugin/pkg/auth/authorizer/node`): a kubelet, known
//! by its `system:node:<name>` identity in the `system:nodes` group, may read a Secret,
//! ConfigMap, PersistentVolumeClaim or PersistentVolume, and ask for a service account's
//! token, only when a pod bound to its node uses it; everything else it may do is the
//! fixed list of what kubelets do ([`node_rules`], upstream's `NodeRules`). Which pods
//! are bound where is read from the store at each decision (upstream keeps a graph fed
//! by informers; a namespace's pods are few enough to scan).
//!
//! Writes to other nodes' objects are refused later, by the NodeRestriction admission
//! plugin.

use std::sync::Arc;

use serde_json::{Value, json};

use super::rbac::rule_allows;
use super::{Attributes, Decision};
use crate::pki::UserInfo;
use crate::store::Store;

const PODS: &str = "/registry/pods/";

/// The node a user is the kubelet of (`system:node:<name>` in `system:nodes`).
pub fn node_of(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix("system:node:")?;
    (!name.is_empty() && user.groups.iter().any(|g| g == "system:nodes")).then_some(name)
}

/// The Node authoriser over `store`.
pub struct NodeAuthorizer {
    store: Arc<Store>,
}

/// What a kubelet may do without a relationship (upstream's `NodeRules`, for the
/// resources rkind serves), built once: every kubelet request is checked against them.
static NODE_RULES: std::sync::LazyLock<Vec<Value>> = std::sync::LazyLock::new(node_rules);

fn node_rules() -> Vec<Value> {
    let rule = |verbs: &[&str], group: &str, resources: &[&str]| json!({"verbs": verbs, "apiGroups": [group], "resources": resources});
    vec![
        rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
        rule(
            &["create"],
            "authorization.k8s.io",
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        rule(&["get", "list", "watch"], "", &["services", "nodes"]),
        rule(&["create", "update", "patch", "delete"], "", &["nodes"]),
        rule(&["update", "patch"], "", &["nodes/status"]),
        rule(&["create", "update", "patch"], "", &["events"]),
        rule(&["create", "update", "patch"], "events.k8s.io", &["events"]),
        rule(&["get", "list", "watch", "create", "delete"], "", &["pods"]),
        rule(&["update", "patch"], "", &["pods/status"]),
        rule(&["create"], "", &["pods/eviction"]),
        rule(
            &["get", "update", "patch"],
            "",
            &["persistentvolumeclaims/status"],
        ),
        rule(
            &["get", "create", "update", "patch", "delete"],
            "coordination.k8s.io",
            &["leases"],
        ),
        rule(
            &["create", "get", "list", "watch"],
            "certificates.k8s.io",
            &["certificatesigningrequests"],
        ),
        rule(
            &["get", "list", "watch"],
            "node.k8s.io",
            &["runtimeclasses"],
        ),
        rule(&["get"], "storage.k8s.io", &["volumeattachments"]),
        rule(&["get", "list", "watch"], "storage.k8s.io", &["csidrivers"]),
        rule(
            &["get", "create", "update", "patch", "delete"],
            "storage.k8s.io",
            &["csinodes"],
        ),
        json!({"verbs": ["get"], "nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/version", "/version/",
            "/healthz", "/livez", "/readyz", "/openapi", "/openapi/*"]}),
    ]
}

/// The objects a pod uses, by kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Used {
    Secret,
    ConfigMap,
    Claim,
}

/// Whether `pod` uses the `kind` object `name` (volumes, projected sources, env and
/// envFrom of every container, image pull secrets).
fn pod_uses(pod: &Value, kind: Used, name: &str) -> bool {
    let spec = &pod["spec"];
    let is = |v: &Value| v.as_str() == Some(name);
    let volumes = spec["volumes"].as_array().into_iter().flatten();
    for v in volumes {
        let hit = match kind {
            Used::Secret => {
                is(&v["secret"]["secretName"]) || projected(v).any(|s| is(&s["secret"]["name"]))
            }
            Used::ConfigMap => {
                is(&v["configMap"]["name"]) || projected(v).any(|s| is(&s["configMap"]["name"]))
            }
            Used::Claim => {
                is(&v["persistentVolumeClaim"]["claimName"])
                    || (v["ephemeral"].is_object()
                        && format!(
                            "{}-{}",
                            pod["metadata"]["name"].as_str().unwrap_or(""),
                            v["name"].as_str().unwrap_or("")
                        ) == name)
            }
        };
        if hit {
            return true;
        }
    }
    if kind == Used::Secret
        && spec["imagePullSecrets"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| is(&r["name"])))
    {
        return true;
    }
    if kind == Used::Claim {
        return false;
    }
    let (key_ref, from_ref) = match kind {
        Used::Secret => ("secretKeyRef", "secretRef"),
        _ => ("configMapKeyRef", "configMapRef"),
    };
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| spec[*l].as_array().into_iter().flatten())
        .any(|c| {
            c["env"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| is(&e["valueFrom"][key_ref]["name"])))
                || c["envFrom"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| is(&e[from_ref]["name"])))
        })
}

fn projected(v: &Value) -> impl Iterator<Item = &Value> {
    v["projected"]["sources"].as_array().into_iter().flatten()
}

impl NodeAuthorizer {
    /// The authoriser reading pods from `store`.
    pub fn new(store: Arc<Store>) -> Self {
        NodeAuthorizer { store }
    }

    /// `None` when `user` is not a kubelet (the decision is RBAC's). Otherwise an allow,
    /// or a denial carrying upstream's reason (RBAC may still allow it).
    pub fn authorize(&self, user: &UserInfo, a: &Attributes) -> Option<Decision> {
        let node = node_of(user)?;
        if !a.resource_request || !a.api_group.is_empty() {
            return Some(self.by_rules(a));
        }
        let guarded = match (a.resource.as_str(), a.subresource.as_str()) {
            ("secrets", "") => Some(Used::Secret),
            ("configmaps", "") => Some(Used::ConfigMap),
            ("persistentvolumeclaims", "") => Some(Used::Claim),
            ("persistentvolumes", "") => return Some(self.volume(node, a)),
            ("serviceaccounts", "token") => return Some(self.token(node, a)),
            _ => None,
        };
        let Some(kind) = guarded else {
            return Some(self.by_rules(a));
        };
        if !matches!(a.verb.as_str(), "get" | "list" | "watch") {
            return Some(Decision::Deny(
                "can only read resources of this type".into(),
            ));
        }
        if a.name.is_empty() {
            return Some(Decision::Deny("No Object name found".into()));
        }
        let related = self
            .pods_on(node, Some(&a.namespace))
            .iter()
            .any(|p| pod_uses(p, kind, &a.name));
        Some(related_or_not(node, related))
    }

    fn by_rules(&self, a: &Attributes) -> Decision {
        match NODE_RULES.iter().any(|r| rule_allows(r, a)) {
            true => Decision::Allow("a kubelet's own rights (Node authorizer)".into()),
            false => Decision::Deny(String::new()),
        }
    }

    /// The pods bound to `node` (in `namespace`, or everywhere).
    fn pods_on(&self, node: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let prefix = match namespace {
            Some(ns) => format!("{PODS}{ns}/"),
            None => PODS.to_string(),
        };
        let (pods, _) = self.store.list_shared(&prefix);
        pods.into_iter()
            .filter(|p| p["spec"]["nodeName"] == node)
            .collect()
    }

    /// A PersistentVolume is related when a claim a pod on the node uses is bound to it.
    fn volume(&self, node: &str, a: &Attributes) -> Decision {
        if a.verb != "get" || a.name.is_empty() {
            return Decision::Deny("can only get individual resources of this type".into());
        }
        let related = self.pods_on(node, None).iter().any(|p| {
            let ns = p["metadata"]["namespace"].as_str().unwrap_or("");
            let (claims, _) = self
                .store
                .list_shared(&format!("/registry/persistentvolumeclaims/{ns}/"));
            claims.iter().any(|c| {
                c["spec"]["volumeName"] == a.name.as_str()
                    && pod_uses(p, Used::Claim, c["metadata"]["name"].as_str().unwrap_or(""))
            })
        });
        related_or_not(node, related)
    }

    /// A token may be asked for an account a pod on the node runs as.
    fn token(&self, node: &str, a: &Attributes) -> Decision {
        if a.verb != "create" || a.name.is_empty() {
            return Decision::Deny("can only create tokens for individual service accounts".into());
        }
        let related = self
            .pods_on(node, Some(&a.namespace))
            .iter()
            .any(|p| p["spec"]["serviceAccountName"] == a.name.as_str());
        related_or_not(node, related)
    }
}

fn related_or_not(node: &str, related: bool) -> Decision {
    if related {
        Decision::Allow(format!("a pod on node {node:?} uses it (Node authorizer)"))
    } else {
        Decision::Deny(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_use_what_their_volumes_and_env_name() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {
            "volumes": [
                {"name": "a", "secret": {"secretName": "s1"}},
                {"name": "b", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}},
                {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
            ],
            "imagePullSecrets": [{"name": "pull"}],
            "containers": [{"name": "x",
                "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "cm"}}]}],
        }});
        for s in ["s1", "s2", "pull"] {
            assert!(pod_uses(&pod, Used::Secret, s), "{s}");
        }
        assert!(!pod_uses(&pod, Used::Secret, "other"));
        assert!(pod_uses(&pod, Used::ConfigMap, "kube-root-ca.crt"));
        assert!(pod_uses(&pod, Used::ConfigMap, "cm"));
        assert!(!pod_uses(&pod, Used::ConfigMap, "s1"));
        assert!(pod_uses(&pod, Used::Claim, "data"));
        assert!(pod_uses(&pod, Used::Claim, "p-scratch"));
    }

    #[test]
    fn only_kubelets_are_nodes() {
        let mut u = UserInfo {
            name: "system:node:n1".into(),
            groups: vec!["system:nodes".into()],
            ..Default::default()
        };
        assert_eq!(node_of(&u), Some("n1"));
        u.groups.clear();
        assert_eq!(node_of(&u), None);
    }
}
